"""vclib.data.modelnet: the real modelnet40_ply_hdf5_2048 layout, on a tiny fixture written with h5py."""

import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from vclib.data import modelnet
from vclib.data.modelnet import FOLDER, MODELNET10, load_modelnet40, read_split, safe_extract_zip

NAMES = ["airplane", "bathtub", "bed", "bench", "bookshelf", "bottle", "bowl", "car", "chair", "cone", "cup",
         "curtain", "desk", "door", "dresser", "flower_pot", "glass_box", "guitar", "keyboard", "lamp", "laptop",
         "mantel", "monitor", "night_stand", "person", "piano", "plant", "radio", "range_hood", "sink", "sofa",
         "stairs", "stool", "table", "tent", "toilet", "tv_stand", "vase", "wardrobe", "xbox"]


def write_release(root: Path) -> Path:
    """The release's layout: h5 files with data/label/normal, the file lists and shape_names.txt."""
    folder = root / FOLDER
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, files in (("train", 2), ("test", 1)):
        listed = []
        for i in range(files):
            name = f"ply_data_{split}{i}.h5"
            with h5py.File(folder / name, "w") as f:
                f.create_dataset("data", data=rng.standard_normal((4, 2048, 3)).astype(np.float32))
                f.create_dataset("label", data=np.array([[1], [8], [35], [0]], dtype=np.uint8) + i)
                f.create_dataset("normal", data=np.zeros((4, 2048, 3), dtype=np.float32))
            listed.append(f"data/{FOLDER}/{name}")
        (folder / f"{split}_files.txt").write_text("\n".join(listed) + "\n")
    (folder / "shape_names.txt").write_text("\n".join(NAMES) + "\n")
    return folder


def test_reads_the_release_layout(tmp_path):
    folder = write_release(tmp_path / "modelnet40")
    points, labels, names = read_split(folder, "train")
    assert points.shape == (8, 2048, 3) and points.dtype == np.float32
    assert labels.tolist() == [1, 8, 35, 0, 2, 9, 36, 1] and names == NAMES
    with h5py.File(folder / "ply_data_train1.h5") as f:
        assert np.array_equal(points[4:], f["data"][:])


def test_load_modelnet40_slices_points_and_filters_classes(tmp_path):
    write_release(tmp_path / "modelnet40")
    data = load_modelnet40("train", num_points=512, source="hdf5", data_dir=tmp_path)
    assert data.points.shape == (8, 512, 3) and data.labels.dtype == torch.int64
    ten = load_modelnet40("train", num_points=16, source="hdf5", data_dir=tmp_path, classes=MODELNET10)
    assert ten.class_names == list(MODELNET10)
    kept = ["bathtub", "chair", "toilet", "bed", "bathtub"]  # labels 1, 8, 35 | 2, 1 of the two files
    assert ten.labels.tolist() == [MODELNET10.index(name) for name in kept]
    assert torch.equal(ten.points[3], data.points[4, :16])


def test_missing_and_corrupt_files_are_named(tmp_path):
    folder = write_release(tmp_path / "modelnet40")
    (folder / "ply_data_test0.h5").write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="ply_data_test0.h5"):
        read_split(folder, "test")
    (folder / "ply_data_train1.h5").unlink()
    with pytest.raises(FileNotFoundError, match="ply_data_train1.h5"):
        read_split(folder, "train")
    (folder / "shape_names.txt").unlink()
    with pytest.raises(FileNotFoundError, match="shape_names.txt"):
        read_split(folder, "train")


def test_download_verifies_and_extracts_a_local_copy(tmp_path, monkeypatch):
    folder = write_release(tmp_path / "src")
    archive = tmp_path / f"{FOLDER}.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in folder.iterdir():
            zf.write(path, f"{FOLDER}/{path.name}")
    monkeypatch.delenv("VCLIB_OFFLINE", raising=False)
    with pytest.raises(ValueError, match="SHA-256"):
        modelnet.download(tmp_path / "data", urls=(archive.as_uri(),), sha256="0" * 64)
    got = modelnet.download(tmp_path / "data", urls=(archive.as_uri(),), sha256=modelnet.sha256sum(archive))
    assert (got / "ply_data_train0.h5").is_file()
    data = load_modelnet40("test", num_points=32, source="auto", data_dir=tmp_path / "data")
    assert data.points.shape == (4, 32, 3)


def test_unsafe_or_corrupt_zip_is_refused(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../outside.txt", "x")
    with pytest.raises(ValueError, match="outside"):
        safe_extract_zip(archive, tmp_path / "out")
    assert not (tmp_path / "outside.txt").exists()
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 broken")
    with pytest.raises(ValueError, match="corrupt"):
        safe_extract_zip(tmp_path / "broken.zip", tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="missing.zip"):
        safe_extract_zip(tmp_path / "missing.zip", tmp_path / "out")


def test_offline_without_files(tmp_path):
    with pytest.raises(ConnectionError, match="source='embedded'"):
        load_modelnet40("train", source="hdf5", data_dir=tmp_path)
    with pytest.raises(ValueError, match="source"):
        load_modelnet40("train", source="web", data_dir=tmp_path)
    with pytest.raises(ValueError, match="num_points"):
        load_modelnet40("train", num_points=4096, data_dir=tmp_path)
