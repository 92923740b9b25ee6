"""Digit scenes: types, label/box consistency, determinism, splits, clutter and argument checks."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest
import torch
from torch.utils.data import DataLoader
from torchvision import tv_tensors
from torchvision.transforms import v2

from vclib.data import scenes
from vclib.data.mnist import ImageDataset
from vclib.data.scenes import IGNORE_INDEX, DigitScenes, collate_scenes


@pytest.fixture(scope="module")
def train_scenes() -> DigitScenes:
    return DigitScenes("train", 40, size=64, source="embedded")


def test_item_types_shapes_and_ranges(train_scenes: DigitScenes) -> None:
    assert len(train_scenes) == 40
    image, target = train_scenes[3]
    assert isinstance(image, tv_tensors.Image) and image.dtype == torch.float32 and image.shape == (3, 64, 64)
    assert 0 <= image.min() and image.max() <= 1
    mask, boxes, labels = target["mask"], target["boxes"], target["labels"]
    assert isinstance(mask, tv_tensors.Mask) and mask.dtype == torch.int64 and mask.shape == (64, 64)
    assert isinstance(boxes, tv_tensors.BoundingBoxes)
    assert boxes.format == tv_tensors.BoundingBoxFormat.XYXY and tuple(boxes.canvas_size) == (64, 64)
    assert labels.dtype == torch.int64 and labels.shape == (boxes.shape[0],)


def test_labels_masks_and_boxes_agree(train_scenes: DigitScenes) -> None:
    for index in range(len(train_scenes)):
        _, target = train_scenes[index]
        mask, boxes, labels = target["mask"], target["boxes"].as_subclass(torch.Tensor), target["labels"]
        assert 1 <= len(labels) <= 4
        assert ((labels >= 1) & (labels <= 10)).all()
        values = set(mask.unique().tolist())
        assert values <= set(range(11)) | {IGNORE_INDEX}
        assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
        assert boxes.min() >= 0 and boxes.max() <= 64
        # Boxes do not overlap.
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, b = boxes[i], boxes[j]
                overlap_x = min(a[2], b[2]) - max(a[0], b[0])
                overlap_y = min(a[3], b[3]) - max(a[1], b[1])
                assert overlap_x <= 0 or overlap_y <= 0
        # Every pixel labelled k lies inside a box of class k, and every box holds pixels of its class.
        rows, cols = torch.meshgrid(torch.arange(64), torch.arange(64), indexing="ij")
        for k in range(1, 11):
            pixels = mask == k
            inside = torch.zeros_like(pixels)
            for box, label in zip(boxes, labels, strict=True):
                if label == k:
                    x0, y0, x1, y1 = box.tolist()
                    inside |= (cols >= x0) & (cols < x1) & (rows >= y0) & (rows < y1)
            assert not (pixels & ~inside).any()
        for box, label in zip(boxes, labels, strict=True):
            x0, y0, x1, y1 = (int(v) for v in box.tolist())
            assert (mask[y0:y1, x0:x1] == label).any()


def test_edges_are_ignored_and_digits_cover_pixels(train_scenes: DigitScenes) -> None:
    masks = train_scenes.masks.long()
    digit_fraction = ((masks >= 1) & (masks <= 10)).float().mean()
    ignored_fraction = (masks == IGNORE_INDEX).float().mean()
    assert 0.03 < digit_fraction < 0.4
    assert 0 < ignored_fraction < digit_fraction


def test_thresholding_does_not_solve_the_task(train_scenes: DigitScenes) -> None:
    """The best global threshold on any channel or on luminance finds digits with a foreground IoU < 0.5."""
    images, masks = train_scenes.tensors().tensors
    valid = masks != IGNORE_INDEX
    foreground = (masks >= 1) & valid
    luminance = (0.299 * images[:, 0] + 0.587 * images[:, 1] + 0.114 * images[:, 2])[:, None]
    best = 0.0
    for channel in torch.cat([images, luminance], dim=1).unbind(1):  # (N, H, W) each
        for threshold in torch.linspace(0.05, 0.95, 19):
            for guess in (channel > threshold, channel < threshold):
                intersection = (guess & foreground).sum()
                union = ((guess & valid) | foreground).sum()
                best = max(best, float(intersection / union))
    assert best < 0.5


def test_same_arguments_same_scenes_and_prefix_stable() -> None:
    a = DigitScenes("train", 6, size=48, seed=3, source="embedded")
    scenes._render_all.cache_clear()
    b = DigitScenes("train", 6, size=48, seed=3, source="embedded")
    longer = DigitScenes("train", 9, size=48, seed=3, source="embedded")
    other_seed = DigitScenes("train", 6, size=48, seed=4, source="embedded")
    assert a.images is not b.images and torch.equal(a.images, b.images) and torch.equal(a.masks, b.masks)
    assert torch.equal(longer.images[:6], a.images) and torch.equal(longer.masks[:6], a.masks)
    assert all(torch.equal(x, y) for x, y in zip(a.boxes, longer.boxes[:6], strict=True))
    assert not torch.equal(a.images, other_seed.images)


def _digest(dataset: DigitScenes) -> str:
    hasher = hashlib.sha256(dataset.images.numpy().tobytes())
    hasher.update(dataset.masks.numpy().tobytes())
    for boxes, labels in zip(dataset.boxes, dataset.labels, strict=True):
        hasher.update(boxes.numpy().tobytes() + labels.numpy().tobytes())
    return hasher.hexdigest()


def test_same_scenes_in_another_process() -> None:
    here = _digest(DigitScenes("test", 5, size=40, seed=1, source="embedded"))
    code = (
        "import sys; sys.path.insert(0, 'tests'); from test_scenes import _digest; "
        "from vclib.data.scenes import DigitScenes; "
        "print(_digest(DigitScenes('test', 5, size=40, seed=1, source='embedded')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == here


def test_splits_draw_from_their_own_digits(monkeypatch: pytest.MonkeyPatch) -> None:
    """Train scenes ask the loader for training digits, test scenes for test digits, and use only those."""
    requested = []

    def fake_load_mnist(split: str, source: str = "auto") -> ImageDataset:
        requested.append(split)
        digit = 3 if split == "train" else 7
        images = torch.zeros(5, 1, 28, 28)
        images[:, :, 6:22, 12:16] = 1.0  # a bar, enough to label
        return ImageDataset(images, torch.full((5,), digit), [str(d) for d in range(10)])

    monkeypatch.setattr(scenes, "load_mnist", fake_load_mnist)
    scenes._render_all.cache_clear()
    train = DigitScenes("train", 4, size=48, seed=11, source="embedded")
    test = DigitScenes("test", 4, size=48, seed=11, source="embedded")
    scenes._render_all.cache_clear()
    assert requested == ["train", "test"]
    assert all((labels == 4).all() for labels in train.labels)
    assert all((labels == 8).all() for labels in test.labels)
    assert set(train.masks.unique().tolist()) <= {0, 4, IGNORE_INDEX}


def test_real_digit_splits_differ() -> None:
    train = DigitScenes("train", 4, size=48, source="embedded")
    test = DigitScenes("test", 4, size=48, source="embedded")
    assert not torch.equal(train.masks, test.masks)


def test_transforms_apply_jointly() -> None:
    plain = DigitScenes("train", 3, size=48, source="embedded")
    flipped = DigitScenes("train", 3, size=48, source="embedded", transforms=v2.RandomHorizontalFlip(p=1.0))
    image, target = plain[1]
    image_f, target_f = flipped[1]
    assert torch.equal(image_f, image.flip(-1))
    assert torch.equal(target_f["mask"], target["mask"].flip(-1))
    boxes, boxes_f = target["boxes"], target_f["boxes"]
    assert torch.allclose(boxes_f[:, 0], 48 - boxes[:, 2]) and torch.allclose(boxes_f[:, 2], 48 - boxes[:, 0])
    assert torch.equal(target_f["labels"], target["labels"])


def test_collate_and_tensors(train_scenes: DigitScenes) -> None:
    loader = DataLoader(train_scenes, batch_size=5, collate_fn=collate_scenes)
    images, targets = next(iter(loader))
    assert images.shape == (5, 3, 64, 64) and type(images) is torch.Tensor
    assert len(targets) == 5 and all(set(t) == {"mask", "boxes", "labels"} for t in targets)
    tensor_images, tensor_masks = train_scenes.tensors()[:5]
    assert torch.equal(tensor_images, images) and torch.equal(tensor_masks, torch.stack([t["mask"] for t in targets]))


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"split": "val", "num_scenes": 2}, "split"),
        ({"split": "train", "num_scenes": 0}, "num_scenes"),
        ({"split": "train", "num_scenes": 2, "size": 16}, "size"),
        ({"split": "train", "num_scenes": 2, "size": 64.0}, "size"),
        ({"split": "train", "num_scenes": 2, "max_digits": 0}, "max_digits"),
        ({"split": "train", "num_scenes": 2, "max_digits": 11}, "max_digits"),
        ({"split": "train", "num_scenes": 2, "seed": -1}, "seed"),
        ({"split": "train", "num_scenes": 2, "source": "web"}, "source"),
    ],
)
def test_bad_arguments_name_themselves(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        DigitScenes(**kwargs)


def test_max_digits_and_crowding() -> None:
    single = DigitScenes("train", 10, size=32, max_digits=1, source="embedded")
    assert all(len(labels) == 1 for labels in single.labels)
    crowded = DigitScenes("train", 10, size=48, max_digits=10, source="embedded")
    assert all(1 <= len(labels) <= 10 for labels in crowded.labels)
