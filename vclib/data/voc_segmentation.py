"""Pascal VOC 2012 semantic segmentation (full mode): images with their class masks, resized to a square.

The layout is VOC's own (what torchvision's ``VOCSegmentation`` reads)::

    root/VOCdevkit/VOC2012/JPEGImages/2007_000032.jpg
    root/VOCdevkit/VOC2012/SegmentationClass/2007_000032.png   (palette PNG: index = class)
    root/VOCdevkit/VOC2012/ImageSets/Segmentation/train.txt   (one image id per line)

A mask's palette indices are the labels: 0 background, 1..20 the classes of ``VOC_CLASSES`` in order, and 255
for the outlines and regions the annotators left undecided, kept as 255 for ``ignore_index``. VOC 2012 has
1,464 ``train`` and 1,449 ``val`` segmentation images; the test masks are not public, so ``val`` is where
results are measured here (the FCN paper's 62.2 mIoU is on the test server). The archive is the same one the
detection loader uses, downloaded with its MD5 checked and extracted with tarfile's ``"data"`` filter.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from vclib.checks import check_choice, check_positive_int
from vclib.data.pets import read_segmentation_pair
from vclib.data.sources import announce, resolve_data_dir
from vclib.data.voc_detection import VOC_CLASSES, download_voc

VOC_SEGMENTATION_CLASSES = ("background", *VOC_CLASSES)
IMAGE_SETS = ("train", "val", "trainval")
IGNORE_INDEX = 255


class VOCSegmentationMasks(Dataset):
    """One VOC 2012 image set for semantic segmentation, each image resized to ``size x size``.

    An item is ``(image, target)``: ``tv_tensors.Image`` (3, size, size) float32 in [0, 1] and
    ``target["mask"]`` ``tv_tensors.Mask`` (size, size) int64 with values in 0..20 (indices into
    ``VOC_SEGMENTATION_CLASSES``) and 255 (ignored). Images are resized bilinearly with antialiasing, masks with
    nearest neighbours (no new values appear).

    Args:
        root: the folder that holds ``VOCdevkit``.
        image_set: ``"train"``, ``"val"`` or ``"trainval"``.
        size: side of the square images.
        download: download the archive first if it is missing.
        transforms: optional ``torchvision.transforms.v2`` callable on ``(image, target)``, after resizing.
    """

    classes = VOC_SEGMENTATION_CLASSES

    def __init__(self, root: str | Path, image_set: str = "train", size: int = 320, download: bool = False,
                 transforms: Callable[..., Any] | None = None) -> None:
        from torchvision.datasets import VOCSegmentation

        check_choice(image_set, "image_set", IMAGE_SETS)
        check_positive_int(size, "size")
        self.root, self.image_set, self.size, self.transforms = Path(root), image_set, size, transforms
        if download:
            download_voc(self.root, "2012", image_set)
        split_file = self.root / "VOCdevkit" / "VOC2012" / "ImageSets" / "Segmentation" / f"{image_set}.txt"
        if not split_file.is_file():
            raise FileNotFoundError(f"VOC 2012 {image_set}: split file {split_file} not found "
                                    "(pass download=True, or put VOCdevkit under root)")
        voc = VOCSegmentation(self.root, year="2012", image_set=image_set)  # torchvision lists the files
        self.images = [Path(path) for path in voc.images]
        self.masks = [Path(path) for path in voc.masks]
        self.resize = v2.Resize((size, size), antialias=True)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[tv_tensors.Image, dict[str, torch.Tensor]]:
        image, mask = read_segmentation_pair(self.images[index], self.masks[index], "VOC 2012")
        mask = mask.long()  # (H, W) int64
        bad = (mask > len(VOC_CLASSES)) & (mask != IGNORE_INDEX)
        if bad.any():
            raise ValueError(f"VOC 2012 mask {self.masks[index]} has values {mask[bad].unique().tolist()}, "
                             f"expected 0..{len(VOC_CLASSES)} or {IGNORE_INDEX}")
        image, target = self.resize(image, {"mask": tv_tensors.Mask(mask)})
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        return image, target


def load_voc_segmentation(split: str, size: int = 320, data_dir: str | Path | None = None, download: bool = True,
                          transforms: Callable[..., Any] | None = None) -> VOCSegmentationMasks:
    """``"train"`` is VOC 2012 ``train`` and ``"test"`` is VOC 2012 ``val``, under ``data_dir / "voc"`` (the
    session's data folder by default, shared with the detection loader)."""
    check_choice(split, "split", ("train", "test"))
    root = resolve_data_dir(data_dir) / "voc"
    dataset = VOCSegmentationMasks(root, "train" if split == "train" else "val", size, download, transforms)
    announce("Pascal VOC 2012 segmentation", "real", f"train / val, {size} x {size}")
    return dataset
