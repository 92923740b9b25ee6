"""MNIST loaders: embedded split, the torchvision path on a tiny IDX fixture, and clear errors."""

import struct

import numpy as np
import pytest
import torch

from vclib.data import make_loader
from vclib.data.mnist import load_cifar10, load_fashion_mnist, load_mnist
from vclib.data.sources import reset_announcements

IDX_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


@pytest.fixture(autouse=True)
def _fresh_announcements():
    """Loaders print their data line once per session; each test starts a new one."""
    reset_announcements()


def write_idx_fixture(root, count=12, seed=0):
    """Tiny MNIST in the real IDX format and torchvision's folder layout: root/MNIST/raw/*."""
    rng = np.random.default_rng(seed)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    arrays = {}
    for split, (image_name, label_name) in IDX_FILES.items():
        images = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=count, dtype=np.uint8)
        (raw / image_name).write_bytes(struct.pack(">iiii", 2051, count, 28, 28) + images.tobytes())
        (raw / label_name).write_bytes(struct.pack(">ii", 2049, count) + labels.tobytes())
        arrays[split] = (images, labels)
    return arrays


def test_embedded_split_is_stratified_and_deterministic(capsys):
    train, test = load_mnist("train", source="embedded"), load_mnist("test", source="embedded")
    assert "embedded" in capsys.readouterr().out
    assert len(train) == 4000 and len(test) == 1000
    assert torch.equal(torch.bincount(train.labels), torch.full((10,), 400))
    assert torch.equal(torch.bincount(test.labels), torch.full((10,), 100))
    image, label = train[0]
    assert image.shape == (1, 28, 28) and image.dtype == torch.float32 and isinstance(label, int)
    assert 0 <= image.min() and image.max() <= 1
    assert torch.equal(load_mnist("test", source="embedded").images, test.images)
    train_rows = {row.numpy().tobytes() for row in train.images.flatten(1)}
    assert not any(row.numpy().tobytes() in train_rows for row in test.images.flatten(1))


def test_torchvision_path_reads_idx_fixture(tmp_path, capsys):
    arrays = write_idx_fixture(tmp_path)
    for split in ("train", "test"):
        dataset = load_mnist(split, source="torchvision", data_dir=tmp_path)
        images, labels = arrays[split]
        assert len(dataset) == 12
        torch.testing.assert_close(dataset.images[:, 0], torch.from_numpy(images).float() / 255)
        assert dataset.labels.tolist() == labels.tolist()
    load_mnist("train", source="auto", data_dir=tmp_path)
    assert "MNIST: using torchvision data (files found under" in capsys.readouterr().out


def test_auto_falls_back_to_embedded_offline_and_says_so(tmp_path, capsys):
    dataset = load_mnist("test", source="auto", data_dir=tmp_path)
    assert len(dataset) == 1000
    assert "using embedded data (no files under" in capsys.readouterr().out


def test_explicit_torchvision_offline_raises_with_instructions(tmp_path):
    with pytest.raises(FileNotFoundError, match="MNIST is not under .* cannot be downloaded"):
        load_mnist("train", source="torchvision", data_dir=tmp_path)


def test_corrupt_idx_file_is_named(tmp_path):
    write_idx_fixture(tmp_path)
    (tmp_path / "MNIST" / "raw" / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01garbage")
    with pytest.raises(ValueError, match="MNIST files under .* are corrupt"):
        load_mnist("train", source="torchvision", data_dir=tmp_path)


@pytest.mark.parametrize("loader", [load_fashion_mnist, load_cifar10])
def test_full_mode_datasets_offline_raise_clear_error(loader, tmp_path):
    with pytest.raises(FileNotFoundError, match="download=True"):
        loader("train", source="auto", data_dir=tmp_path)
    with pytest.raises(ValueError, match="source must be one of"):
        loader("train", source="embedded", data_dir=tmp_path)


def test_bad_split_and_source():
    with pytest.raises(ValueError, match="split must be one of"):
        load_mnist("validation")
    with pytest.raises(ValueError, match=r"source must be one of .* got 'kaggle'"):
        load_mnist("train", source="kaggle")


def test_make_loader_is_reproducible():
    data = torch.utils.data.TensorDataset(torch.arange(20))
    first = [b[0].tolist() for b in make_loader(data, 5, shuffle=True, seed=3)]
    second = [b[0].tolist() for b in make_loader(data, 5, shuffle=True, seed=3)]
    assert first == second and first != [list(range(i, i + 5)) for i in range(0, 20, 5)]
    with pytest.raises(ValueError, match="batch_size"):
        make_loader(data, 0)


def _tar_with(path, name, data=b"x", symlink_to=None):
    import io
    import tarfile

    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(name)
        if symlink_to is not None:
            info.type, info.linkname = tarfile.SYMTYPE, symlink_to
            tar.addfile(info)
        else:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_safe_extract_accepts_plain_archives_and_refuses_escapes(tmp_path):
    from vclib.data.sources import safe_extract

    good = tmp_path / "good.tar.gz"
    _tar_with(good, "cifar-10-batches-py/data_batch_1", b"payload")
    safe_extract(good, tmp_path / "out")
    assert (tmp_path / "out" / "cifar-10-batches-py" / "data_batch_1").read_bytes() == b"payload"
    absolute = tmp_path / "absolute.tar.gz"
    _tar_with(absolute, "/tmp/vclib-absolute-member.txt")
    safe_extract(absolute, tmp_path / "out1")  # the leading slash is stripped: it lands inside out1
    assert (tmp_path / "out1" / "tmp" / "vclib-absolute-member.txt").is_file()
    for name, link in (("../escape.txt", None), ("link", "/etc/passwd")):
        bad = tmp_path / "bad.tar.gz"
        _tar_with(bad, name, symlink_to=link)
        with pytest.raises(ValueError, match="unsafe member|outside the destination|link"):
            safe_extract(bad, tmp_path / "out2")
    assert not (tmp_path / "escape.txt").exists()
    (tmp_path / "corrupt.tar.gz").write_bytes(b"not a tar file")
    with pytest.raises(ValueError, match="corrupt"):
        safe_extract(tmp_path / "corrupt.tar.gz", tmp_path / "out3")
    with pytest.raises(FileNotFoundError, match="missing.tar"):
        safe_extract(tmp_path / "missing.tar", tmp_path)


def test_binary_subset_keeps_two_classes():
    test = load_mnist("test", source="embedded")
    images, targets = test.binary_subset(negative=3, positive=5)
    assert images.shape == (200, 784) and targets.dtype == torch.float32
    assert targets.sum().item() == 100
    with pytest.raises(ValueError, match="positive must be a class"):
        test.binary_subset(negative=3, positive=11)


def test_sample_photo_is_a_real_rgb_image():
    from vclib.data.photo import load_sample_photo

    photo = load_sample_photo(64)
    assert photo.shape == (1, 3, 64, 64) and 0 <= photo.min() and photo.max() <= 1
    assert photo.std() > 0.1  # a photograph, not a blank
