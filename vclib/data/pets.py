"""Oxford-IIIT Pet segmentation (full mode): images with their trimaps, resized to a square.

The layout is the dataset's own (what torchvision's ``OxfordIIITPet`` reads)::

    root/oxford-iiit-pet/images/Abyssinian_1.jpg
    root/oxford-iiit-pet/annotations/trimaps/Abyssinian_1.png
    root/oxford-iiit-pet/annotations/trainval.txt   (lines "name class_id species breed_id")

The dataset's README says the trimap pixels are 1 for the pet, 2 for the background and 3 for the border
("not classified"). Here they become 0 background, 1 pet and 255 for the border, so that
``ignore_index=255`` leaves the uncertain outline out of the loss and the metrics. The official split has
3,680 ``trainval`` and 3,669 ``test`` images of 37 breeds. Archives are downloaded with their MD5 checked and
extracted with tarfile's ``"data"`` filter.
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
from vclib.data.sources import announce, resolve_data_dir, safe_extract

PETS_CLASSES = ("background", "pet")
SPLITS = ("trainval", "test")
ARCHIVES = (  # (url, md5, the folder it extracts to), as torchvision's OxfordIIITPet lists them
    ("https://www.robots.ox.ac.uk/~vgg/data/pets/data/images.tar.gz", "5c4f3ee8e5d25df40f4fd59a7f44e54c", "images"),
    ("https://www.robots.ox.ac.uk/~vgg/data/pets/data/annotations.tar.gz", "95a8c909bbe2e81eed6a22bccdf3f68f",
     "annotations"),
)
TRIMAP_TO_CLASS = torch.full((256,), -1, dtype=torch.int64)  # trimap value -> class index; -1 marks a bad value
TRIMAP_TO_CLASS[1], TRIMAP_TO_CLASS[2], TRIMAP_TO_CLASS[3] = 1, 0, 255  # pet, background, border


def download_pets(root: str | Path) -> None:
    """Download and extract both Pet archives into ``root / "oxford-iiit-pet"`` (each skipped when its folder
    already exists)."""
    from torchvision.datasets.utils import download_url

    base = Path(root) / "oxford-iiit-pet"
    for url, md5, folder in ARCHIVES:
        if (base / folder).is_dir():
            continue
        filename = url.rsplit("/", 1)[1]
        download_url(url, base, filename, md5)
        safe_extract(base / filename, base)


def read_segmentation_pair(image_path: Path, mask_path: Path, dataset: str
                           ) -> tuple[tv_tensors.Image, torch.Tensor]:
    """Read one RGB image and its single-channel label PNG, naming the file that is missing or corrupt.

    Args:
        image_path: the photograph (any format PIL reads; converted to RGB).
        mask_path: the label image, mode ``"L"`` or ``"P"`` (a palette PNG gives its palette indices).
        dataset: the dataset's name, for error messages.

    Returns:
        image (3, H, W) float32 in [0, 1] and mask (H, W) uint8 holding the file's raw values.
    """
    from PIL import Image, UnidentifiedImageError

    for path in (image_path, mask_path):
        if not path.is_file():
            raise FileNotFoundError(f"{dataset} file {path} not found")
    try:
        with Image.open(image_path) as pil:
            image = v2.functional.pil_to_tensor(pil.convert("RGB"))  # (3, H, W) uint8
    except (OSError, UnidentifiedImageError) as error:
        raise ValueError(f"{dataset} image {image_path} is corrupt: {error}") from error
    try:
        with Image.open(mask_path) as pil:
            if pil.mode not in ("L", "P"):
                raise ValueError(f"{dataset} mask {mask_path} has mode {pil.mode!r}, expected 'L' or 'P'")
            mask = v2.functional.pil_to_tensor(pil)[0]  # (H, W) uint8
    except (OSError, UnidentifiedImageError) as error:
        raise ValueError(f"{dataset} mask {mask_path} is corrupt: {error}") from error
    if mask.shape != image.shape[-2:]:
        raise ValueError(f"{dataset} mask {mask_path} is {tuple(mask.shape)} but image {image_path} is "
                         f"{tuple(image.shape[-2:])} (H, W)")
    return tv_tensors.Image(image.float() / 255), mask


class PetSegmentation(Dataset):
    """One Oxford-IIIT Pet split for foreground segmentation, each image resized to ``size x size``.

    An item is ``(image, target)``: ``tv_tensors.Image`` (3, size, size) float32 in [0, 1] and
    ``target["mask"]`` ``tv_tensors.Mask`` (size, size) int64 with 0 background, 1 pet and 255 border.
    Images are resized bilinearly with antialiasing, masks with nearest neighbours (no new values appear).

    Args:
        root: the folder that holds ``oxford-iiit-pet``.
        split: ``"trainval"`` or ``"test"``.
        size: side of the square images.
        download: download the archives first if they are missing.
        transforms: optional ``torchvision.transforms.v2`` callable on ``(image, target)``, after resizing.
    """

    classes = PETS_CLASSES

    def __init__(self, root: str | Path, split: str = "trainval", size: int = 128, download: bool = False,
                 transforms: Callable[..., Any] | None = None) -> None:
        from torchvision.datasets import OxfordIIITPet

        check_choice(split, "split", SPLITS)
        check_positive_int(size, "size")
        self.root, self.split, self.size, self.transforms = Path(root), split, size, transforms
        if download:
            download_pets(self.root)
        base = self.root / "oxford-iiit-pet"
        split_file = base / "annotations" / f"{split}.txt"
        for path in (base / "images", base / "annotations" / "trimaps", split_file):
            if not path.exists():
                raise FileNotFoundError(f"Oxford-IIIT Pet {split}: {path} not found "
                                        "(pass download=True, or put oxford-iiit-pet under root)")
        self.breeds = OxfordIIITPet(self.root, split, target_types="segmentation").classes  # torchvision's check
        self.ids = [line.split()[0] for line in split_file.read_text().splitlines() if line.strip()]
        self.images = [base / "images" / f"{name}.jpg" for name in self.ids]
        self.masks = [base / "annotations" / "trimaps" / f"{name}.png" for name in self.ids]
        self.resize = v2.Resize((size, size), antialias=True)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> tuple[tv_tensors.Image, dict[str, torch.Tensor]]:
        image, trimap = read_segmentation_pair(self.images[index], self.masks[index], "Oxford-IIIT Pet")
        mask = TRIMAP_TO_CLASS[trimap.long()]  # (H, W) int64
        if (mask < 0).any():
            raise ValueError(f"Oxford-IIIT Pet trimap {self.masks[index]} has values "
                             f"{trimap.unique().tolist()}, expected 1, 2 and 3")
        image, target = self.resize(image, {"mask": tv_tensors.Mask(mask)})
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        return image, target


def load_pets_segmentation(split: str, size: int = 128, data_dir: str | Path | None = None, download: bool = True,
                           transforms: Callable[..., Any] | None = None) -> PetSegmentation:
    """``"train"`` is the official ``trainval`` split and ``"test"`` the official ``test`` split, under
    ``data_dir / "pets"`` (the session's data folder by default)."""
    check_choice(split, "split", ("train", "test"))
    root = resolve_data_dir(data_dir) / "pets"
    dataset = PetSegmentation(root, "trainval" if split == "train" else "test", size, download, transforms)
    announce("Oxford-IIIT Pet segmentation", "real", f"trainval / test, {size} x {size}")
    return dataset
