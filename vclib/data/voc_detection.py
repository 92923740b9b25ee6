"""Pascal VOC detection (full mode): boxes and labels from VOC's XML annotations, resized to a square.

The layout is VOC's own (what torchvision's ``VOCDetection`` reads)::

    root/VOCdevkit/VOC2007/Annotations/000005.xml
    root/VOCdevkit/VOC2007/JPEGImages/000005.jpg
    root/VOCdevkit/VOC2007/ImageSets/Main/trainval.txt   (one image id per line)

The usual detection protocol trains on VOC 2007 trainval + VOC 2012 trainval (16,551 images) and tests on
VOC 2007 test (4,952 images). Archives are downloaded with their published MD5 checked and extracted with
tarfile's ``"data"`` filter.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import ConcatDataset, Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from vclib.checks import check_choice, check_positive_int
from vclib.data.sources import announce, resolve_data_dir, safe_extract

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable", "dog",
    "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)
YEARS = ("2007", "2012")
IMAGE_SETS = ("train", "val", "trainval", "test")


def parse_voc_objects(annotation: ET.Element, keep_difficult: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Boxes and labels of one VOC annotation.

    VOC's pixel coordinates start at 1 and include both ends, so ``xmin - 1, ymin - 1, xmax, ymax`` is the box
    in the usual 0-based, end-exclusive convention.

    Args:
        annotation: the ``<annotation>`` element of a VOC XML file.
        keep_difficult: keep objects marked ``<difficult>1</difficult>`` (VOC's evaluation ignores them; mAP
            here has no ignore flag, so by default they are dropped from both training and testing).

    Returns:
        boxes (N, 4) float32 xyxy in pixels and labels (N,) int64 indices into ``VOC_CLASSES``.
    """
    boxes, labels = [], []
    for obj in annotation.iter("object"):
        name = obj.findtext("name", "").strip()
        if name not in VOC_CLASSES:
            raise ValueError(f"unknown VOC class {name!r}")
        if not keep_difficult and obj.findtext("difficult", "0").strip() == "1":
            continue
        box = obj.find("bndbox")
        if box is None:
            raise ValueError(f"object {name!r} has no <bndbox>")
        x1, y1, x2, y2 = (float(box.findtext(tag)) for tag in ("xmin", "ymin", "xmax", "ymax"))
        boxes.append([x1 - 1, y1 - 1, x2, y2])
        labels.append(VOC_CLASSES.index(name))
    return torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4), torch.tensor(labels, dtype=torch.int64)


def download_voc(root: str | Path, year: str, image_set: str) -> None:
    """Download and extract one VOC archive into ``root`` (skipped when its folder already exists)."""
    from torchvision.datasets.utils import download_url
    from torchvision.datasets.voc import DATASET_YEAR_DICT

    entry = DATASET_YEAR_DICT["2007-test" if (year, image_set) == ("2007", "test") else year]
    root = Path(root)
    split_file = root / entry["base_dir"] / "ImageSets" / "Main" / f"{image_set}.txt"
    if split_file.is_file():
        return
    download_url(entry["url"], root, entry["filename"], entry["md5"])
    safe_extract(root / entry["filename"], root)


class VOCDetectionBoxes(Dataset):
    """One VOC year and image set for detection, each image resized to ``size x size``.

    An item is ``(image, target)``: ``tv_tensors.Image`` (3, size, size) float32 in [0, 1] and
    ``target["boxes"]`` ``tv_tensors.BoundingBoxes`` (N, 4) XYXY in pixels of the resized image,
    ``target["labels"]`` (N,) int64 indices into ``VOC_CLASSES``.

    Args:
        root: the folder that holds ``VOCdevkit``.
        year: ``"2007"`` or ``"2012"``.
        image_set: ``"train"``, ``"val"``, ``"trainval"`` or (2007 only) ``"test"``.
        size: side of the square images (YOLOv3 on VOC uses 416).
        keep_difficult: keep objects marked difficult.
        download: download the archive first if it is missing.
        transforms: optional ``torchvision.transforms.v2`` callable on ``(image, target)``, after resizing.
    """

    classes = VOC_CLASSES

    def __init__(self, root: str | Path, year: str = "2007", image_set: str = "trainval", size: int = 416,
                 keep_difficult: bool = False, download: bool = False,
                 transforms: Callable[..., Any] | None = None) -> None:
        check_choice(year, "year", YEARS)
        check_choice(image_set, "image_set", IMAGE_SETS if year == "2007" else IMAGE_SETS[:3])
        check_positive_int(size, "size")
        self.root, self.keep_difficult, self.transforms = Path(root), keep_difficult, transforms
        if download:
            download_voc(self.root, year, image_set)
        base = self.root / "VOCdevkit" / f"VOC{year}"
        split_file = base / "ImageSets" / "Main" / f"{image_set}.txt"
        if not split_file.is_file():
            raise FileNotFoundError(f"VOC {year} {image_set}: split file {split_file} not found "
                                    "(pass download=True, or put VOCdevkit under root)")
        self.ids = [line.strip() for line in split_file.read_text().splitlines() if line.strip()]
        self.images = [base / "JPEGImages" / f"{name}.jpg" for name in self.ids]
        self.annotations = [base / "Annotations" / f"{name}.xml" for name in self.ids]
        self.size, self.resize = size, v2.Resize((size, size), antialias=True)

    def __len__(self) -> int:
        return len(self.ids)

    def box_sizes(self) -> torch.Tensor:
        """Widths and heights ``(N, 2)`` of every kept box, in pixels of the resized images, read from the
        annotations alone (for anchor clustering without decoding any image)."""
        sizes = []
        for path in self.annotations:
            annotation = ET.parse(path).getroot()
            boxes, _ = parse_voc_objects(annotation, self.keep_difficult)
            scale = torch.tensor([self.size / float(annotation.findtext("size/width")),
                                  self.size / float(annotation.findtext("size/height"))])
            sizes.append((boxes[:, 2:] - boxes[:, :2]) * scale)
        return torch.cat(sizes) if sizes else torch.zeros(0, 2)

    def __getitem__(self, index: int) -> tuple[tv_tensors.Image, dict[str, torch.Tensor]]:
        from PIL import Image, UnidentifiedImageError

        image_path, annotation_path = self.images[index], self.annotations[index]
        for path in (image_path, annotation_path):
            if not path.is_file():
                raise FileNotFoundError(f"VOC file {path} not found")
        try:
            annotation = ET.parse(annotation_path).getroot()
            boxes, labels = parse_voc_objects(annotation, self.keep_difficult)
        except (ET.ParseError, ValueError, TypeError) as error:
            raise ValueError(f"VOC annotation {annotation_path} is corrupt: {error}") from error
        try:
            with Image.open(image_path) as pil:
                image = v2.functional.pil_to_tensor(pil.convert("RGB"))  # (3, H, W) uint8
        except (OSError, UnidentifiedImageError) as error:
            raise ValueError(f"VOC image {image_path} is corrupt: {error}") from error
        image = tv_tensors.Image(image.float() / 255)
        target = {"boxes": tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=tuple(image.shape[-2:])),
                  "labels": labels}
        image, target = self.resize(image, target)
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        return image, target


def load_voc_detection(split: str, size: int = 416, data_dir: str | Path | None = None, download: bool = True,
                       transforms: Callable[..., Any] | None = None) -> Dataset:
    """The standard detection protocol: ``"train"`` is VOC 2007 trainval + VOC 2012 trainval, ``"test"`` is
    VOC 2007 test, under ``data_dir / "voc"`` (the session's data folder by default)."""
    check_choice(split, "split", ("train", "test"))
    root = resolve_data_dir(data_dir) / "voc"
    parts = [("2007", "trainval"), ("2012", "trainval")] if split == "train" else [("2007", "test")]
    datasets = [VOCDetectionBoxes(root, year, image_set, size, download=download, transforms=transforms)
                for year, image_set in parts]
    announce("Pascal VOC detection", "real", f"{' + '.join(f'{y} {s}' for y, s in parts)}, {size} x {size}")
    return datasets[0] if len(datasets) == 1 else ConcatDataset(datasets)
