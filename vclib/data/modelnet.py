"""ModelNet40 in the standard ``modelnet40_ply_hdf5_2048`` release (the PointNet / DGCNN benchmark files).

The archive unpacks to a folder ``modelnet40_ply_hdf5_2048/`` with ``ply_data_train0.h5`` ...
``ply_data_train4.h5``, ``ply_data_test0.h5``, ``ply_data_test1.h5``, the lists ``train_files.txt`` and
``test_files.txt``, and ``shape_names.txt`` (40 names, one a line). Each HDF5 file holds ``data``
``(N, 2048, 3)`` float32 (centred, in the unit sphere) and ``label`` ``(N, 1)`` integer class indices.
Without the files, ``source="auto"`` falls back to :class:`~vclib.data.shapes.ProceduralShapes`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from vclib.checks import check_choice, check_int_range
from vclib.data.sources import announce, resolve_data_dir

SPLITS = ("train", "test")
FOLDER = "modelnet40_ply_hdf5_2048"
URLS = ("https://shapenet.cs.stanford.edu/media/modelnet40_ply_hdf5_2048.zip",
        "https://huggingface.co/datasets/Msun/modelnet40/resolve/main/modelnet40_ply_hdf5_2048.zip")
#: The ten ModelNet10 categories, a subset of ModelNet40's.
MODELNET10 = ("bathtub", "bed", "chair", "desk", "dresser", "monitor", "night_stand", "sofa", "table", "toilet")


class PointCloudDataset(Dataset):
    """Clouds ``(M, N, 3)`` float32 with int64 labels ``(M,)`` and the class names."""

    def __init__(self, points: torch.Tensor, labels: torch.Tensor, class_names: list[str]) -> None:
        self.points, self.labels, self.class_names = points, labels, class_names

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.points[index], self.labels[index]

    def tensors(self) -> TensorDataset:
        """The same data as a ``TensorDataset`` of ``(points, labels)``."""
        return TensorDataset(self.points, self.labels)


def read_split(folder: str | Path, split: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read every HDF5 file of ``split`` listed in ``<split>_files.txt``.

    Returns:
        points ``(M, 2048, 3)`` float32, labels ``(M,)`` int64 and the class names.

    Raises:
        FileNotFoundError: a list, a listed file or ``shape_names.txt`` is missing (named).
        ValueError: a file is not HDF5 or lacks ``data`` / ``label`` of the expected shapes (named).
    """
    import h5py

    check_choice(split, "split", SPLITS)
    folder = Path(folder)
    names_file, list_file = folder / "shape_names.txt", folder / f"{split}_files.txt"
    for required in (names_file, list_file):
        if not required.is_file():
            raise FileNotFoundError(f"{required} is missing: not a complete {FOLDER} folder")
    class_names = [line.strip() for line in names_file.read_text().splitlines() if line.strip()]
    points, labels = [], []
    for line in list_file.read_text().split():
        path = folder / Path(line).name  # the lists hold paths like data/modelnet40_ply_hdf5_2048/x.h5
        if not path.is_file():
            raise FileNotFoundError(f"{path} is listed in {list_file.name} but missing")
        try:
            with h5py.File(path, "r") as f:
                data, label = np.asarray(f["data"], dtype=np.float32), np.asarray(f["label"]).reshape(-1)
        except (OSError, KeyError) as error:
            raise ValueError(f"{path} is corrupt or not a ModelNet40 HDF5 file ({error})") from error
        if data.ndim != 3 or data.shape[2] != 3 or len(label) != len(data):
            raise ValueError(f"{path}: expected data (N, P, 3) and label (N, 1), got {data.shape} and {label.shape}")
        if label.size and not 0 <= label.min() <= label.max() < len(class_names):
            raise ValueError(f"{path}: labels must lie in [0, {len(class_names) - 1}]")
        points.append(data)
        labels.append(label.astype(np.int64))
    if not points:
        raise ValueError(f"{list_file} lists no files")
    return np.concatenate(points), np.concatenate(labels), class_names


def safe_extract_zip(archive: str | Path, destination: str | Path) -> None:
    """Extract a zip archive after checking its CRCs and that no member is absolute, climbs out with
    ``..`` or is a symbolic link (the zip equivalent of tarfile's ``"data"`` filter)."""
    archive, destination = Path(archive), Path(destination).resolve()
    if not archive.is_file():
        raise FileNotFoundError(f"archive {archive} does not exist")
    try:
        with zipfile.ZipFile(archive) as zf:
            broken = zf.testzip()
            if broken is not None:
                raise ValueError(f"archive {archive} is corrupt: bad CRC in {broken!r}")
            for member in zf.infolist():
                target = (destination / member.filename).resolve()
                if Path(member.filename).is_absolute() or (destination not in target.parents and target != destination):
                    raise ValueError(f"archive {archive} has a member outside the destination: {member.filename!r}")
                if (member.external_attr >> 16) & 0o170000 == 0o120000:
                    raise ValueError(f"archive {archive} has a symbolic link: {member.filename!r}")
            zf.extractall(destination)
    except zipfile.BadZipFile as error:
        raise ValueError(f"archive {archive} is corrupt: {error}") from error


def sha256sum(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download(data_dir: str | Path | None = None, urls: tuple[str, ...] = URLS, sha256: str | None = None,
             timeout: float = 60.0) -> Path:
    """Download the 435 MB archive, verify it, extract it safely and return the data folder.

    The publisher gives no checksum, so the archive is verified by its zip CRCs and by reading both
    splits after extraction; pass ``sha256`` to pin a known copy as well.

    Raises:
        ConnectionError: no URL could be reached (offline); the message says where to put the files.
        ValueError: the download is corrupt, unsafe or not in the expected layout.
    """
    root = resolve_data_dir(data_dir) / "modelnet40"
    root.mkdir(parents=True, exist_ok=True)
    archive = root / f"{FOLDER}.zip"
    errors = []
    for url in urls if not archive.is_file() else ():
        if os.environ.get("VCLIB_OFFLINE") == "1":
            errors.append(f"{url}: VCLIB_OFFLINE=1")
            break
        try:
            print(f"downloading {url} -> {archive}")
            partial = archive.with_suffix(".part")
            with urllib.request.urlopen(url, timeout=timeout) as response, partial.open("wb") as out:  # noqa: S310
                shutil.copyfileobj(response, out, 1 << 20)
            os.replace(partial, archive)
            break
        except (urllib.error.URLError, OSError) as error:
            errors.append(f"{url}: {getattr(error, 'reason', error)}")
    if not archive.is_file():
        raise ConnectionError(f"cannot download ModelNet40 ({'; '.join(errors)}). Copy {FOLDER}.zip or the "
                              f"unpacked {FOLDER}/ folder into {root} on a connected machine, or use "
                              "source='embedded'.")
    if sha256 is not None and sha256sum(archive) != sha256:
        archive.unlink()
        raise ValueError(f"{archive}: SHA-256 does not match {sha256}; the file was removed")
    safe_extract_zip(archive, root)
    for split in SPLITS:
        read_split(root / FOLDER, split)
    return root / FOLDER


def load_modelnet40(split: str, num_points: int = 1024, source: str = "auto", data_dir: str | Path | None = None,
                    classes: tuple[str, ...] | None = None) -> Dataset:
    """ModelNet40 clouds: ``(points (num_points, 3) float32, label int64)`` items.

    Args:
        split: ``"train"`` or ``"test"``.
        num_points: the first ``num_points`` of the 2,048 stored points (as the DGCNN code does).
        source: ``"hdf5"`` (the real files, downloaded when missing), ``"embedded"`` (the procedural
            ten classes, :class:`~vclib.data.shapes.ProceduralShapes`), or ``"auto"`` (the real files when
            present or downloadable, else embedded). One line says which.
        data_dir: looks in ``<data_dir>/modelnet40/modelnet40_ply_hdf5_2048``.
        classes: keep only these categories, relabelled ``0 .. len - 1`` (e.g. :data:`MODELNET10`).

    Returns:
        a dataset with ``points``, ``labels`` and ``class_names``.
    """
    from vclib.data.shapes import ProceduralShapes
    from vclib.data.sources import url_reachable

    check_choice(split, "split", SPLITS)
    check_choice(source, "source", ("auto", "hdf5", "embedded"))
    check_int_range(num_points, "num_points", 1, 2048)
    folder = resolve_data_dir(data_dir) / "modelnet40" / FOLDER
    if source == "auto":
        have = (folder / f"{split}_files.txt").is_file()
        source = "hdf5" if have or url_reachable(URLS[0]) else "embedded"
    if source == "embedded":
        announce("ModelNet40", "embedded", "procedural ModelNet10 categories, vclib.data.shapes")
        dataset = ProceduralShapes(split, num_per_class=50 if split == "train" else 20, num_points=num_points)
        return PointCloudDataset(dataset.points, dataset.labels, dataset.class_names)
    if not (folder / f"{split}_files.txt").is_file():
        folder = download(data_dir)
    points, labels, class_names = read_split(folder, split)
    announce("ModelNet40", "real", f"{len(labels):,} {split} clouds from {folder}")
    points, labels = torch.from_numpy(points[:, :num_points].copy()), torch.from_numpy(labels)
    if classes is not None:
        for name in classes:
            check_choice(name, "classes", class_names)
        keep = torch.isin(labels, torch.tensor([class_names.index(n) for n in classes]))
        remap = {class_names.index(n): i for i, n in enumerate(classes)}
        points, labels = points[keep], torch.tensor([remap[int(v)] for v in labels[keep]], dtype=torch.int64)
        class_names = list(classes)
    return PointCloudDataset(points, labels, class_names)
