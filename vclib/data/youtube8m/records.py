"""YouTube-8M video-level records: constants, reading and writing shards, streaming and in-memory datasets."""

from __future__ import annotations

import glob
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from vclib.checks import check_choice, check_positive_int
from vclib.data.tfrecord import decode_example, encode_example, read_tfrecord, write_tfrecord

NUM_CLASSES = 3862
RGB_DIM = 1024
AUDIO_DIM = 128
SPLITS = ("train", "validate", "test")
MODALITIES = ("both", "rgb", "audio", "split")
SOURCES = ("auto", "real", "embedded")
REQUIRED_FEATURES = ("id", "labels", "mean_rgb", "mean_audio")

Record = dict[str, Any]  # {"id": str, "labels": list[int], "mean_rgb": (1024,) float32, "mean_audio": (128,)}


# ---------------------------------------------------------------------------------------------------
# Records


def _check_record(features: Mapping[str, Any], where: str) -> Record:
    """Validate a decoded (or user-given) record and return it in canonical form."""
    missing = [name for name in REQUIRED_FEATURES if name not in features]
    if missing:
        raise ValueError(f"{where} lacks the feature(s) {missing}: a video-level record needs "
                         f"{list(REQUIRED_FEATURES)}, got {sorted(features)}")
    video_id = features["id"]
    if isinstance(video_id, list) and len(video_id) == 1 and isinstance(video_id[0], bytes):
        video_id = video_id[0].decode("utf-8", errors="replace")
    if not isinstance(video_id, str):
        raise ValueError(f"{where}: 'id' must be one string (one bytes value), got {video_id!r:.60}")
    labels = np.asarray(features["labels"])
    if labels.size and (labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer)):
        raise ValueError(f"{where}: 'labels' must be a list of integers, got {labels.dtype} {labels.shape}")
    if labels.size and labels.min() < 0:
        raise ValueError(f"{where}: 'labels' must be >= 0, got {int(labels.min())}")
    record: Record = {"id": video_id, "labels": [int(label) for label in labels]}
    for name, dim in (("mean_rgb", RGB_DIM), ("mean_audio", AUDIO_DIM)):
        values = features[name]
        if isinstance(values, (list, tuple)):
            values = np.asarray(values)
        is_array = isinstance(values, np.ndarray)
        if not is_array or not np.issubdtype(values.dtype, np.floating) or values.shape != (dim,):
            shape = values.shape if is_array else type(values).__name__
            raise ValueError(f"{where}: {name!r} must be {dim} floats, got {shape}")
        record[name] = values.astype(np.float32)
    return record


def iter_records(path: str | Path) -> Iterator[Record]:
    """Yield the videos of one shard as dicts: ``id`` (str), ``labels`` (list of int), ``mean_rgb``
    ``(1024,)`` float32 and ``mean_audio`` ``(128,)`` float32.

    The TFRecord framing (lengths and masked CRC-32C checksums) is verified for the whole shard first.

    Raises:
        FileNotFoundError: the shard does not exist.
        ValueError: a truncated or corrupted record, or one without the required features; the message
            names the file and the record index.
    """
    path = Path(path)
    for index, data in enumerate(read_tfrecord(path)):
        where = f"{path}: record {index}"
        try:
            features = decode_example(data)
        except ValueError as error:
            raise ValueError(f"{where} is corrupt: {error}") from error
        yield _check_record(features, where)


def write_records(path: str | Path, records: Iterable[Mapping[str, Any]]) -> Path:
    """Write video dicts (the format :func:`iter_records` yields) to a TFRecord shard."""
    payloads = []
    for index, record in enumerate(records):
        record = _check_record(record, f"records[{index}]")
        payloads.append(encode_example({
            "id": [record["id"].encode("utf-8")],
            "labels": np.asarray(record["labels"], dtype=np.int64),
            "mean_rgb": record["mean_rgb"],
            "mean_audio": record["mean_audio"],
        }))
    return write_tfrecord(path, payloads)


# ---------------------------------------------------------------------------------------------------
# Datasets


def resolve_shards(files: str | Path | Sequence[str | Path]) -> list[Path]:
    """Shard paths from a glob pattern, a directory (its ``*.tfrecord``), one path or a list of paths."""
    if isinstance(files, (str, Path)):
        text = str(Path(files).expanduser())
        if glob.has_magic(text):
            matches = sorted(Path(p) for p in glob.glob(text))
            if not matches:
                raise FileNotFoundError(f"no shard file matches the pattern {text!r}")
            return matches
        if Path(text).is_dir():
            matches = sorted(Path(text).glob("*.tfrecord"))
            if not matches:
                raise FileNotFoundError(f"no *.tfrecord shard in the directory {text}")
            return matches
        files = [text]
    paths = [Path(f).expanduser() for f in files]
    if not paths:
        raise ValueError("files must name at least one shard, got an empty list")
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"shard file not found: {path}")
    return paths


def _check_labels(record: Record, num_classes: int, where: str) -> None:
    if record["labels"] and max(record["labels"]) >= num_classes:
        raise ValueError(f"{where} (video {record['id']!r}) has label {max(record['labels'])}, but "
                         f"num_classes is {num_classes}; labels must lie in [0, {num_classes - 1}]")


def _sample(rgb: torch.Tensor, audio: torch.Tensor, labels: torch.Tensor, video_id: str,
            modality: str) -> tuple:
    """``(inputs, labels, id)``; inputs is ``(1152,)``, ``(1024,)``, ``(128,)`` or ``((1024,), (128,))``."""
    if modality == "both":
        inputs: Any = torch.cat([rgb, audio])  # (1152,)
    elif modality == "rgb":
        inputs = rgb
    elif modality == "audio":
        inputs = audio
    else:
        inputs = (rgb, audio)
    return inputs, labels, video_id


class YouTube8M(IterableDataset):
    """Video-level YouTube-8M shards, streamed record by record.

    Yields ``(features, labels, id)``: ``features`` ``(1152,)`` float32 (``mean_rgb`` then ``mean_audio``),
    ``labels`` multi-hot ``(num_classes,)`` float32 and the video id. ``modality="split"`` yields
    ``((rgb (1024,), audio (128,)), labels, id)`` instead; ``"rgb"`` and ``"audio"`` yield one modality.

    With DataLoader workers, worker ``w`` of ``W`` reads shards ``w, w + W, ...``: every record is read
    exactly once. ``shuffle=True`` shuffles each worker's shard order and the records within each shard,
    differently in every epoch (driven by torch's seeded generator). ``source`` records where the shards
    came from (``"real"`` or ``"embedded"``), so that another split can be loaded from the same source.
    """

    def __init__(self, files: str | Path | Sequence[str | Path], num_classes: int = NUM_CLASSES,
                 modality: str = "both", shuffle: bool = False, source: str = "real") -> None:
        check_positive_int(num_classes, "num_classes")
        check_choice(modality, "modality", MODALITIES)
        check_choice(source, "source", ("real", "embedded"))
        self.files = resolve_shards(files)
        self.num_classes = num_classes
        self.modality = modality
        self.shuffle = shuffle
        self.source = source

    def _worker_files(self) -> list[Path]:
        worker = get_worker_info()
        return self.files if worker is None else self.files[worker.id :: worker.num_workers]

    def __iter__(self) -> Iterator[tuple]:
        files = self._worker_files()
        generator = torch.Generator()
        if self.shuffle:
            generator.manual_seed(int(torch.randint(2**62, ()).item()))  # a new seed each epoch
            files = [files[i] for i in torch.randperm(len(files), generator=generator)]
        for path in files:
            records = list(enumerate(iter_records(path)))
            if self.shuffle:
                records = [records[i] for i in torch.randperm(len(records), generator=generator)]
            for index, record in records:
                _check_labels(record, self.num_classes, f"{path}: record {index}")
                labels = torch.zeros(self.num_classes)
                labels[record["labels"]] = 1.0
                rgb, audio = torch.from_numpy(record["mean_rgb"]), torch.from_numpy(record["mean_audio"])
                yield _sample(rgb, audio, labels, record["id"], self.modality)

    def read_all(self) -> VideoFeatures:
        """Read every shard, in order, into a :class:`VideoFeatures` held in memory."""
        rgb, audio, label_lists, ids = [], [], [], []
        for path in self.files:
            for index, record in enumerate(iter_records(path)):
                _check_labels(record, self.num_classes, f"{path}: record {index}")
                rgb.append(record["mean_rgb"])
                audio.append(record["mean_audio"])
                label_lists.append(record["labels"])
                ids.append(record["id"])
        labels = torch.zeros(len(ids), self.num_classes)
        rows = [row for row, video_labels in enumerate(label_lists) for _ in video_labels]
        labels[rows, [label for video_labels in label_lists for label in video_labels]] = 1.0
        return VideoFeatures(torch.from_numpy(np.stack(rgb)), torch.from_numpy(np.stack(audio)), labels, ids,
                             self.modality)


class VideoFeatures(Dataset):
    """A split held in memory: ``rgb (N, 1024)``, ``audio (N, 128)``, multi-hot ``labels (N, C)`` and ids.

    Items have the same form as :class:`YouTube8M`'s for the chosen ``modality``.
    """

    def __init__(self, rgb: torch.Tensor, audio: torch.Tensor, labels: torch.Tensor, ids: list[str],
                 modality: str = "both") -> None:
        check_choice(modality, "modality", MODALITIES)
        count = len(ids)
        for name, tensor, width in (("rgb", rgb, RGB_DIM), ("audio", audio, AUDIO_DIM)):
            if tensor.shape != (count, width):
                raise ValueError(f"{name} must have shape ({count}, {width}), got {tuple(tensor.shape)}")
        if labels.dim() != 2 or labels.shape[0] != count:
            raise ValueError(f"labels must have shape ({count}, num_classes), got {tuple(labels.shape)}")
        self.rgb, self.audio, self.labels, self.ids = rgb, audio, labels, ids
        self.modality = modality

    @property
    def num_classes(self) -> int:
        return self.labels.shape[1]

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> tuple:
        return _sample(self.rgb[index], self.audio[index], self.labels[index], self.ids[index], self.modality)

    def with_modality(self, modality: str) -> VideoFeatures:
        """The same videos (tensors shared, not copied) with items of another modality."""
        return VideoFeatures(self.rgb, self.audio, self.labels, self.ids, modality)


