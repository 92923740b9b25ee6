"""Scene augmentation: masks keep their label values, boxes follow, emptied boxes go with their labels."""

from __future__ import annotations

import pytest
import torch

from vclib.augment import scene_transforms
from vclib.data.scenes import IGNORE_INDEX, DigitScenes


@pytest.fixture(scope="module")
def scenes() -> DigitScenes:
    return DigitScenes("train", 12, size=64, source="embedded", transforms=scene_transforms(True, 64))


def test_draws_keep_labels_and_boxes(scenes: DigitScenes) -> None:
    torch.manual_seed(0)
    rows, cols = torch.meshgrid(torch.arange(64), torch.arange(64), indexing="ij")
    changed = 0
    for _draw in range(3):
        for index in range(len(scenes)):
            image, target = scenes[index]
            mask, boxes, labels = target["mask"], target["boxes"], target["labels"]
            assert image.shape == (3, 64, 64) and 0 <= image.min() and image.max() <= 1
            assert set(mask.unique().tolist()) <= set(range(11)) | {IGNORE_INDEX}
            assert len(boxes) == len(labels)
            changed += int(not torch.equal(mask, scenes.masks[index].long()))
            for k in mask.unique().tolist():
                if k in (0, IGNORE_INDEX):
                    continue
                inside = torch.zeros(64, 64, dtype=torch.bool)
                for box, label in zip(boxes.as_subclass(torch.Tensor), labels, strict=True):
                    if label == k:
                        x0, y0, x1, y1 = box.tolist()
                        inside |= (cols + 0.5 >= x0 - 1) & (cols + 0.5 <= x1 + 1) & (rows + 0.5 >= y0 - 1) & (
                            rows + 0.5 <= y1 + 1)
                assert not ((mask == k) & ~inside).any()
    assert changed > 0


def test_eval_pipeline_is_identity() -> None:
    plain = DigitScenes("train", 2, size=48, source="embedded")
    same = DigitScenes("train", 2, size=48, source="embedded", transforms=scene_transforms(False, 48))
    assert torch.equal(plain[1][0], same[1][0]) and torch.equal(plain[1][1]["mask"], same[1][1]["mask"])
    with pytest.raises(ValueError, match="size"):
        scene_transforms(True, 0)
