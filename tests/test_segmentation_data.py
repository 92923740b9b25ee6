"""The Oxford-IIIT Pet and VOC 2012 segmentation loaders on tiny fixtures in each dataset's real layout
(oxford-iiit-pet/images + annotations/trimaps + annotations/<split>.txt; VOCdevkit/VOC2012 with JPEGImages,
palette-PNG SegmentationClass and ImageSets/Segmentation), offline; value sets, resizing, transforms, errors."""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import tv_tensors
from torchvision.datasets import OxfordIIITPet, VOCSegmentation
from torchvision.transforms import v2

from vclib.data import pets
from vclib.data.pets import PetSegmentation, load_pets_segmentation
from vclib.data.voc_detection import VOC_CLASSES
from vclib.data.voc_segmentation import VOC_SEGMENTATION_CLASSES, VOCSegmentationMasks, load_voc_segmentation

PETS = {  # split: [(name, class_id, species, breed_id, width, height, mode of the trimap PNG)]
    "trainval": [("Abyssinian_1", 1, 1, 1, 40, 30, "L"), ("american_bulldog_10", 2, 2, 1, 33, 47, "P")],
    "test": [("Abyssinian_2", 1, 1, 1, 16, 16, "L")],
}
VOC = {"2007_000032": (50, 37, 1), "2007_000039": (29, 41, 15)}  # id: (width, height, class inside the object)


def trimap(width: int, height: int) -> np.ndarray:
    """Background 2, an off-centre pet rectangle 1 and a one-pixel border 3 around it, as the dataset draws
    them."""
    values = np.full((height, width), 2, dtype=np.uint8)
    values[height // 6:2 * height // 3, width // 6:2 * width // 3] = 3
    values[height // 6 + 1:2 * height // 3 - 1, width // 6 + 1:2 * width // 3 - 1] = 1
    return values


def random_photo(width: int, height: int, seed: int) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def write_pets(root: Path) -> Path:
    base = root / "oxford-iiit-pet"
    (base / "images").mkdir(parents=True)
    (base / "annotations" / "trimaps").mkdir(parents=True)
    for split, entries in PETS.items():
        lines = []
        for seed, (name, class_id, species, breed_id, width, height, mode) in enumerate(entries):
            random_photo(width, height, seed).save(base / "images" / f"{name}.jpg", quality=95)
            png = Image.fromarray(trimap(width, height)) if mode == "L" else palette_png(trimap(width, height))
            png.save(base / "annotations" / "trimaps" / f"{name}.png")
            lines.append(f"{name} {class_id} {species} {breed_id}")
        (base / "annotations" / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return base


def voc_palette() -> list[int]:
    """VOC's colour map: the bits of the index spread over R, G and B (index 255 is the cream border)."""
    palette = []
    for index in range(256):
        red = green = blue = 0
        bits = index
        for shift in range(8):
            red |= (bits & 1) << (7 - shift)
            green |= ((bits >> 1) & 1) << (7 - shift)
            blue |= ((bits >> 2) & 1) << (7 - shift)
            bits >>= 3
        palette += [red, green, blue]
    return palette


def palette_png(values: np.ndarray) -> Image.Image:
    """A 'P' (palette) image whose indices are exactly ``values`` (H, W) uint8, with VOC's colours."""
    png = Image.frombytes("P", (values.shape[1], values.shape[0]), np.ascontiguousarray(values).tobytes())
    png.putpalette(voc_palette())
    return png


def voc_mask(width: int, height: int, label: int) -> np.ndarray:
    """Background 0, an off-centre object of class ``label`` with a two-pixel 255 outline."""
    values = np.zeros((height, width), dtype=np.uint8)
    values[height // 6:2 * height // 3, width // 6:2 * width // 3] = 255
    values[height // 6 + 2:2 * height // 3 - 2, width // 6 + 2:2 * width // 3 - 2] = label
    return values


def write_voc(root: Path, image_set: str = "train") -> Path:
    base = root / "VOCdevkit" / "VOC2012"
    for folder in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (base / folder).mkdir(parents=True, exist_ok=True)
    for seed, (name, (width, height, label)) in enumerate(VOC.items()):
        random_photo(width, height, seed).save(base / "JPEGImages" / f"{name}.jpg", quality=95)
        palette_png(voc_mask(width, height, label)).save(base / "SegmentationClass" / f"{name}.png")
    (base / "ImageSets" / "Segmentation" / f"{image_set}.txt").write_text("\n".join(VOC) + "\n")
    return base


def test_pets_items_shapes_values_and_trimap_mapping(tmp_path) -> None:
    write_pets(tmp_path)
    dataset = PetSegmentation(tmp_path, "trainval", size=24)
    assert len(dataset) == 2 == len(OxfordIIITPet(tmp_path, "trainval", target_types="segmentation"))
    assert dataset.classes == ("background", "pet") and dataset.breeds == ["Abyssinian", "American Bulldog"]
    for index in range(len(dataset)):
        image, target = dataset[index]
        assert isinstance(image, tv_tensors.Image) and isinstance(target["mask"], tv_tensors.Mask)
        assert image.shape == (3, 24, 24) and image.dtype == torch.float32 and 0 <= image.min() <= image.max() <= 1
        assert target["mask"].shape == (24, 24) and target["mask"].dtype == torch.int64
        assert set(target["mask"].unique().tolist()) == {0, 1, 255}  # nearest resizing makes no new values
    # At the file's own size resizing is the identity: 1 (pet) -> 1, 2 (background) -> 0, 3 (border) -> 255,
    # read against what torchvision's OxfordIIITPet returns for the same item.
    test_set = PetSegmentation(tmp_path, "test", size=16)
    image, target = test_set[0]
    _, raw = OxfordIIITPet(tmp_path, "test", target_types="segmentation")[0]
    raw = torch.from_numpy(np.array(raw)).long()
    expected = torch.where(raw == 1, 1, torch.where(raw == 2, 0, 255))
    assert torch.equal(target["mask"].as_subclass(torch.Tensor), expected)
    assert (raw == 3).any() and (raw == 1).any() and (raw == 2).any()


def test_pets_transforms_are_joint_and_loader_reads_splits(tmp_path) -> None:
    write_pets(tmp_path)
    plain = PetSegmentation(tmp_path, "trainval", size=20)[1]
    flipped = PetSegmentation(tmp_path, "trainval", size=20, transforms=v2.RandomHorizontalFlip(p=1.0))[1]
    assert torch.equal(flipped[0], plain[0].flip(-1)) and torch.equal(flipped[1]["mask"], plain[1]["mask"].flip(-1))
    assert not torch.equal(plain[1]["mask"], plain[1]["mask"].flip(-1))  # the flip is visible in the mask
    (tmp_path / "pets").mkdir()
    write_pets(tmp_path / "pets")
    assert len(load_pets_segmentation("train", size=8, data_dir=tmp_path, download=False)) == 2
    assert len(load_pets_segmentation("test", size=8, data_dir=tmp_path, download=False)) == 1


def test_pets_download_extracts_both_archives_safely(tmp_path, monkeypatch) -> None:
    assert [(url, md5) for url, md5, _ in pets.ARCHIVES] == [tuple(r) for r in OxfordIIITPet._RESOURCES]
    source = write_pets(tmp_path / "source")

    def fake_download_url(url: str, root: Path, filename: str, md5: str) -> None:
        folder = dict((u, f) for u, _, f in pets.ARCHIVES)[url]
        Path(root).mkdir(parents=True, exist_ok=True)
        with tarfile.open(Path(root) / filename, "w:gz") as tar:
            tar.add(source / folder, arcname=folder)

    monkeypatch.setattr("torchvision.datasets.utils.download_url", fake_download_url)
    dataset = PetSegmentation(tmp_path / "fresh", "trainval", size=8, download=True)
    assert len(dataset) == 2 and dataset[0][1]["mask"].shape == (8, 8)


def test_pets_missing_corrupt_and_bad_arguments(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="oxford-iiit-pet.*download=True"):
        PetSegmentation(tmp_path, "trainval")
    base = write_pets(tmp_path)
    with pytest.raises(ValueError, match="size"):
        PetSegmentation(tmp_path, "trainval", size=0)
    with pytest.raises(ValueError, match="split"):
        PetSegmentation(tmp_path, "train")
    dataset = PetSegmentation(tmp_path, "trainval", size=8)
    (base / "images" / "Abyssinian_1.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match="Abyssinian_1.jpg"):
        dataset[0]
    Image.fromarray(np.full((47, 33), 7, dtype=np.uint8)).save(base / "annotations" / "trimaps" /
                                                                "american_bulldog_10.png")
    with pytest.raises(ValueError, match="american_bulldog_10.png"):
        dataset[1]
    (base / "annotations" / "trimaps" / "american_bulldog_10.png").unlink()
    with pytest.raises(FileNotFoundError, match="american_bulldog_10.png"):
        dataset[1]
    (base / "annotations" / "test.txt").unlink()
    with pytest.raises(FileNotFoundError, match="test.txt"):
        PetSegmentation(tmp_path, "test")


def test_voc_items_shapes_values_and_palette_indices(tmp_path) -> None:
    write_voc(tmp_path)
    dataset = VOCSegmentationMasks(tmp_path, "train", size=23)
    assert len(dataset) == 2 == len(VOCSegmentation(tmp_path, "2012", "train"))
    assert dataset.classes == ("background", *VOC_CLASSES) and len(VOC_SEGMENTATION_CLASSES) == 21
    reference = VOCSegmentation(tmp_path, "2012", "train")
    for index, (_, _, label) in enumerate(VOC.values()):
        image, target = dataset[index]
        assert isinstance(image, tv_tensors.Image) and isinstance(target["mask"], tv_tensors.Mask)
        assert image.shape == (3, 23, 23) and image.dtype == torch.float32 and 0 <= image.min() <= image.max() <= 1
        assert target["mask"].shape == (23, 23) and target["mask"].dtype == torch.int64
        assert set(target["mask"].unique().tolist()) == {0, label, 255}  # palette indices, border kept as 255
        # torchvision's item, its palette indices resized with nearest neighbours, is the same mask.
        png = reference[index][1]
        indices = torch.from_numpy(np.array(png)).long()[None]  # (1, H, W)
        oracle = v2.functional.resize(indices, [23, 23], interpolation=v2.InterpolationMode.NEAREST)[0]
        assert png.mode == "P" and torch.equal(target["mask"].as_subclass(torch.Tensor), oracle)
        assert np.array(png.convert("RGB")).max() > 20  # the colours are not the labels; the indices are


def test_voc_transforms_loader_and_errors(tmp_path) -> None:
    base = write_voc(tmp_path / "voc")
    write_voc(tmp_path / "voc", "val")
    plain = VOCSegmentationMasks(tmp_path / "voc", "train", size=16)[0]
    flipped = VOCSegmentationMasks(tmp_path / "voc", "train", size=16, transforms=v2.RandomVerticalFlip(p=1.0))[0]
    assert torch.equal(flipped[0], plain[0].flip(-2)) and torch.equal(flipped[1]["mask"], plain[1]["mask"].flip(-2))
    assert not torch.equal(plain[1]["mask"], plain[1]["mask"].flip(-2))  # the flip is visible in the mask
    assert len(load_voc_segmentation("train", size=8, data_dir=tmp_path, download=False)) == 2
    assert len(load_voc_segmentation("test", size=8, data_dir=tmp_path, download=False)) == 2
    with pytest.raises(FileNotFoundError, match="trainval.txt.*download=True"):
        VOCSegmentationMasks(tmp_path / "voc", "trainval")
    with pytest.raises(FileNotFoundError, match="VOCdevkit"):
        VOCSegmentationMasks(tmp_path / "elsewhere", "train")
    with pytest.raises(ValueError, match="size"):
        VOCSegmentationMasks(tmp_path / "voc", "train", size=-3)
    with pytest.raises(ValueError, match="image_set"):
        VOCSegmentationMasks(tmp_path / "voc", "test")
    dataset = VOCSegmentationMasks(tmp_path / "voc", "train", size=8)
    palette_png(np.full((37, 50), 30, dtype=np.uint8)).save(base / "SegmentationClass" / "2007_000032.png")
    with pytest.raises(ValueError, match="2007_000032.png"):
        dataset[0]
    Image.new("RGB", (29, 41)).save(base / "SegmentationClass" / "2007_000039.png")
    with pytest.raises(ValueError, match="2007_000039.png.*mode"):
        dataset[1]
    (base / "JPEGImages" / "2007_000039.jpg").write_bytes(b"\x89PNG broken")
    with pytest.raises(ValueError, match="2007_000039.jpg"):
        dataset[1]
    (base / "JPEGImages" / "2007_000039.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="2007_000039.jpg"):
        dataset[1]
