"""YouTube-8M (2018) video-level features: records, a streaming dataset, a synthetic default, downloads.

Each video is one ``tf.train.Example`` in a TFRecord shard, with four features:

- ``id``: bytes, an anonymised 4-character video id;
- ``labels``: int64 list, class indices out of 3,862;
- ``mean_rgb``: 1,024 floats, the average over frames of Inception features (PCA-reduced);
- ``mean_audio``: 128 floats, the average over seconds of VGGish-style audio features.

``iter_records`` / ``write_records`` read and write such shards; :class:`YouTube8M` streams them as an
``IterableDataset`` that splits shards across DataLoader workers; :class:`VideoFeatures` holds a split in
memory. With no real shards at hand, :func:`write_synthetic_shards` writes learnable synthetic videos in
the same format, and :func:`load_youtube8m` picks real or synthetic data. :func:`download` fetches real
shards following the dataset's public download layout.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import string
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from vclib.checks import check_choice, check_positive_int
from vclib.data.sources import announce, check_source, resolve_data_dir
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


# ---------------------------------------------------------------------------------------------------
# The embedded default: synthetic videos in the real format

GENERATOR_VERSION = 1
ID_ALPHABET = string.ascii_letters + string.digits
LABELS_PER_VIDEO = (0.25, 0.3, 0.22, 0.14, 0.09)  # P(1 label), ..., P(5 labels)


@dataclass(frozen=True)
class SyntheticConfig:
    """How the synthetic YouTube-8M stand-in is made (the defaults are quick mode's).

    Classes have Zipf-like frequencies (class 0 is the most common, as in the real vocabulary) and
    belong to topics; a video's extra labels come mostly from its first label's topic, so labels
    co-occur. Each class has a prototype in both modalities, strong in one of them (vision classes,
    audio classes) or moderate in both. A video's features are the sum of its labels' prototypes plus
    noise. A strong class's prototype is ``3 * signal`` long, a weak one ``0.3 * signal``, and the noise
    vector is about 1 long, spread over all dimensions. Some classes come in two "looks" that are mirror
    images around the average video: no single hyperplane separates both looks from the rest, which is
    what a mixture of experts is for.
    """

    num_classes: int = 100
    train_videos: int = 4000
    validate_videos: int = 1500
    test_videos: int = 1500
    videos_per_shard: int = 500
    num_topics: int = 10
    zipf_exponent: float = 1.0
    same_topic: float = 0.7
    two_look_fraction: float = 0.4
    topic_similarity: float = 0.3
    signal: float = 0.3
    seed: int = 0

    def videos(self, split: str) -> int:
        """Number of videos in ``split``."""
        check_choice(split, "split", SPLITS)
        return {"train": self.train_videos, "validate": self.validate_videos, "test": self.test_videos}[split]


@dataclass
class SyntheticClasses:
    """The hidden class structure behind the synthetic videos (``C`` classes)."""

    frequency: np.ndarray  # (C,) Zipf weights, summing to 1
    topic: np.ndarray  # (C,) topic of each class
    two_looks: np.ndarray  # (C,) bool: the class appears as +prototype or -prototype
    rgb_strength: np.ndarray  # (C,) length of the class's rgb prototype (the noise is about 1 long)
    audio_strength: np.ndarray  # (C,) ... and in the audio features
    rgb_prototype: np.ndarray  # (C, 1024) unit-norm directions
    audio_prototype: np.ndarray  # (C, 128) unit-norm directions


def synthetic_classes(config: SyntheticConfig) -> SyntheticClasses:
    """Draw the class structure from ``config.seed``; every split shares it."""
    rng = np.random.default_rng([config.seed, 0])
    count = config.num_classes
    frequency = 1.0 / np.arange(1, count + 1) ** config.zipf_exponent
    topic = rng.permutation(np.arange(count) % config.num_topics)
    kind = rng.permutation(np.arange(count) % 3)  # 0 vision, 1 audio, 2 both
    strong, weak, both = 3.0, 0.3, 2.0
    rgb_strength = np.choose(kind, [strong, weak, both]) * config.signal
    audio_strength = np.choose(kind, [weak, strong, both]) * config.signal
    two_looks = rng.random(count) < config.two_look_fraction
    prototypes = []
    for dim in (RGB_DIM, AUDIO_DIM):
        topic_part = rng.standard_normal((config.num_topics, dim))[topic]  # (C, dim) shared within a topic
        own_part = rng.standard_normal((count, dim))  # (C, dim)
        share = config.topic_similarity
        prototype = np.sqrt(share) * topic_part + np.sqrt(1 - share) * own_part  # (C, dim)
        prototypes.append(prototype / np.linalg.norm(prototype, axis=1, keepdims=True))
    return SyntheticClasses(frequency / frequency.sum(), topic, two_looks, rgb_strength, audio_strength,
                            prototypes[0], prototypes[1])


def _draw_labels(rng: np.random.Generator, classes: SyntheticClasses, config: SyntheticConfig,
                 count: int) -> list[list[int]]:
    """1-5 distinct labels per video: the first by frequency, the others mostly from its topic."""
    num_labels = rng.choice(len(LABELS_PER_VIDEO), size=count, p=LABELS_PER_VIDEO) + 1  # (count,)
    videos = []
    for wanted in num_labels:
        labels = [int(rng.choice(config.num_classes, p=classes.frequency))]
        same_topic = classes.frequency * (classes.topic == classes.topic[labels[0]])  # (C,)
        while len(labels) < wanted:
            weights = same_topic if rng.random() < config.same_topic else classes.frequency
            weights = weights.copy()
            weights[labels] = 0.0
            if weights.sum() == 0:
                weights = classes.frequency.copy()
                weights[labels] = 0.0
            labels.append(int(rng.choice(config.num_classes, p=weights / weights.sum())))
        videos.append(labels)
    return videos


def _video_ids(config: SyntheticConfig) -> dict[str, list[str]]:
    """Distinct random 4-character ids (like the real anonymised ones) for every split."""
    rng = np.random.default_rng([config.seed, 1])
    total = sum(config.videos(split) for split in SPLITS)
    base = len(ID_ALPHABET)
    draws = rng.integers(0, base**4, size=2 * total + 100)
    _, first = np.unique(draws, return_index=True)
    numbers = draws[np.sort(first)][:total]  # distinct, in drawing order
    ids = ["".join(ID_ALPHABET[(n // base**p) % base] for p in (3, 2, 1, 0)) for n in numbers]
    out, start = {}, 0
    for split in SPLITS:
        out[split] = ids[start : start + config.videos(split)]
        start += config.videos(split)
    return out


def synthetic_videos(split: str, config: SyntheticConfig = SyntheticConfig()) -> list[Record]:
    """The synthetic videos of ``split`` as records (deterministic for a given config)."""
    classes = synthetic_classes(config)
    count = config.videos(split)
    rng = np.random.default_rng([config.seed, 2, SPLITS.index(split)])
    label_lists = _draw_labels(rng, classes, config, count)
    weights = np.zeros((count, config.num_classes))  # (N, C): sign of each present label's look
    for row, labels in enumerate(label_lists):
        weights[row, labels] = 1.0
    look = np.where(rng.random((count, config.num_classes)) < 0.5, -1.0, 1.0)  # (N, C)
    weights *= np.where(classes.two_looks, look, 1.0)
    rgb = (weights * classes.rgb_strength) @ classes.rgb_prototype  # (N, 1024)
    audio = (weights * classes.audio_strength) @ classes.audio_prototype  # (N, 128)
    rgb += rng.standard_normal(rgb.shape) / np.sqrt(RGB_DIM)  # a noise vector about 1 long
    audio += rng.standard_normal(audio.shape) / np.sqrt(AUDIO_DIM)
    # Like PCA components, the first dimensions vary most; the audio features spread wider than rgb.
    rgb *= 8.0 * np.arange(1, RGB_DIM + 1) ** -0.15
    audio *= 6.0 * np.arange(1, AUDIO_DIM + 1) ** -0.15
    ids = _video_ids(config)[split]
    return [{"id": ids[i], "labels": label_lists[i], "mean_rgb": rgb[i].astype(np.float32),
             "mean_audio": audio[i].astype(np.float32)} for i in range(count)]


def synthetic_dir(data_dir: str | Path | None, config: SyntheticConfig) -> Path:
    """Where the synthetic shards for ``config`` live: a folder named by the generator and config."""
    digest = hashlib.sha1(json.dumps(asdict(config), sort_keys=True).encode()).hexdigest()[:10]
    return resolve_data_dir(data_dir) / "youtube8m" / "synthetic" / f"v{GENERATOR_VERSION}-{digest}"


def write_synthetic_shards(split: str, config: SyntheticConfig = SyntheticConfig(),
                           data_dir: str | Path | None = None) -> list[Path]:
    """Write (once) and return the synthetic shards ``{split}0000.tfrecord, ...`` of ``split``."""
    folder = synthetic_dir(data_dir, config) / split
    done = folder / "complete.json"
    if done.is_file():
        paths = [folder / name for name in json.loads(done.read_text())]
        if all(path.is_file() for path in paths):
            return paths
    videos = synthetic_videos(split, config)
    size = config.videos_per_shard
    paths = [write_records(folder / f"{split}{i // size:04d}.tfrecord", videos[i : i + size])
             for i in range(0, len(videos), size)]
    done.write_text(json.dumps([path.name for path in paths]))
    return paths


# ---------------------------------------------------------------------------------------------------
# Real shards: the public download layout
#
# http://data.yt8m.org/2/download_plans/video_{split}.json lists a split's shards with their MD5 sums,
# as {"files": {"trainXY.tfrecord": "<md5>", ...}}; each shard is served from a mirror at
# http://{mirror}.data.yt8m.org/2/video/{split}/trainXY.tfrecord. XY is two characters of a-z, A-Z, 0-9
# (62 * 62 = 3,844 shards per split); shard XY is saved as {split}NNNN.tfrecord with NNNN = its index.

PLAN_URL = "http://data.yt8m.org/2/download_plans/video_{split}.json"
SHARD_URL = "http://{mirror}.data.yt8m.org/2/video/{split}/{name}"
MIRRORS = ("us", "eu", "asia")
SHARD_ALPHABET = string.ascii_lowercase + string.ascii_uppercase + string.digits


def shard_index(name: str) -> int:
    """The index of a remote shard name: ``"trainaa.tfrecord"`` -> 0, ``"train99.tfrecord"`` -> 3843."""
    stem = name.removesuffix(".tfrecord")
    first, second = stem[-2:-1], stem[-1:]
    if first not in SHARD_ALPHABET or second not in SHARD_ALPHABET or len(stem) < 3:
        raise ValueError(f"name must end in two characters of a-z, A-Z, 0-9 before .tfrecord, got {name!r}")
    return SHARD_ALPHABET.index(first) * len(SHARD_ALPHABET) + SHARD_ALPHABET.index(second)


def real_shard_dir(split: str, data_dir: str | Path | None = None) -> Path:
    """Where real shards of ``split`` are looked for and downloaded to: ``<data_dir>/youtube8m/<split>``."""
    check_choice(split, "split", SPLITS)
    return resolve_data_dir(data_dir) / "youtube8m" / split


def md5sum(path: Path) -> str:
    """Hex MD5 digest of a file, read in 1 MiB blocks."""
    digest = hashlib.md5()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _offline_error(url: str, reason: object, folder: Path) -> ConnectionError:
    return ConnectionError(
        f"cannot reach {url} ({reason}). Real YouTube-8M shards need a network connection: run "
        f"vclib.data.youtube8m.download() on a connected machine and copy the *.tfrecord files into "
        f"{folder}, or use the embedded synthetic data (source='embedded')."
    )


def _fetch(url: str, target: Path, expected_md5: str, timeout: float, folder: Path) -> None:
    """Download ``url`` to ``target`` through ``target.part``, resuming a partial download with an HTTP
    Range request, and check the MD5 before the rename."""
    if os.environ.get("VCLIB_OFFLINE") == "1":
        raise _offline_error(url, "VCLIB_OFFLINE=1", folder)
    partial = target.with_name(target.name + ".part")
    start = partial.stat().st_size if partial.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={start}-"} if start else {})
    print(f"downloading {url} -> {target.name}" + (f" (resuming after {start:,} bytes)" if start else ""))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s) URLs only
            mode = "ab" if start and response.status == 206 else "wb"  # 200: the server sent it all again
            with partial.open(mode) as out:
                shutil.copyfileobj(response, out, 1 << 20)
    except urllib.error.HTTPError as error:
        if not (error.code == 416 and start):  # 416 after a full .part: nothing left to send
            raise ConnectionError(f"downloading {url} failed: HTTP {error.code} {error.reason}") from error
    except (urllib.error.URLError, OSError) as error:
        raise _offline_error(url, getattr(error, "reason", error), folder) from error
    digest = md5sum(partial)
    if digest != expected_md5:
        partial.unlink()
        raise ValueError(f"{url}: MD5 of the download is {digest}, but the download plan expects "
                         f"{expected_md5}; the partial file was removed, call download() again")
    os.replace(partial, target)


def _download_plan(split: str, folder: Path, plan_url: str, timeout: float) -> dict[str, str]:
    """The split's {remote shard name: md5}, from a cached copy in ``folder`` or from ``plan_url``."""
    cached = folder / f"download_plan_video_{split}.json"
    if not cached.is_file():
        if os.environ.get("VCLIB_OFFLINE") == "1":
            raise _offline_error(plan_url, "VCLIB_OFFLINE=1", folder)
        try:
            with urllib.request.urlopen(plan_url, timeout=timeout) as response:  # noqa: S310
                text = response.read().decode("utf-8")
        except (urllib.error.URLError, OSError) as error:
            raise _offline_error(plan_url, getattr(error, "reason", error), folder) from error
        partial = cached.with_name(cached.name + ".part")
        partial.write_text(text)
        os.replace(partial, cached)
    try:
        files = json.loads(cached.read_text())["files"]
    except (ValueError, KeyError, TypeError) as error:
        cached.unlink()
        raise ValueError(f"{cached} is not a YouTube-8M download plan ({error}); it was removed, "
                         "call download() again") from error
    return dict(files)


def download(split: str = "train", num_shards: int = 1, data_dir: str | Path | None = None,
             mirror: str = "us", base_url: str | None = None, timeout: float = 60.0) -> list[Path]:
    """Download the first ``num_shards`` video-level shards of ``split`` (about 8 MB each).

    Shards land in ``<data_dir>/youtube8m/<split>/<split>NNNN.tfrecord``, where ``load_youtube8m`` finds
    them. Shards already there with the right MD5 are kept; a partial ``.part`` file is resumed.

    Args:
        split: ``"train"``, ``"validate"`` or ``"test"``.
        num_shards: how many shards (3,844 make the whole split).
        data_dir: defaults to the session's data directory.
        mirror: ``"us"``, ``"eu"`` or ``"asia"``.
        base_url: serve everything from ``base_url + "/2/..."`` instead (a local copy, or a test server).
        timeout: seconds to wait for the server.

    Raises:
        ConnectionError: the server cannot be reached (offline); the message says what to do instead.
        ValueError: a downloaded shard does not match the MD5 of the download plan.
    """
    check_choice(split, "split", SPLITS)
    check_positive_int(num_shards, "num_shards")
    check_choice(mirror, "mirror", MIRRORS)
    folder = real_shard_dir(split, data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    plan_url = PLAN_URL.format(split=split) if base_url is None \
        else f"{base_url}/2/download_plans/video_{split}.json"
    plan = _download_plan(split, folder, plan_url, timeout)
    names = sorted(plan, key=shard_index)[:num_shards]
    paths = []
    for name in names:
        target = folder / f"{split}{shard_index(name):04d}.tfrecord"
        if not (target.is_file() and md5sum(target) == plan[name]):
            url = SHARD_URL.format(mirror=mirror, split=split, name=name) if base_url is None \
                else f"{base_url}/2/video/{split}/{name}"
            _fetch(url, target, plan[name], timeout, folder)
        paths.append(target)
    return paths


# ---------------------------------------------------------------------------------------------------
# Choosing the data


def load_youtube8m(split: str = "train", source: str = "auto", data_dir: str | Path | None = None,
                   modality: str = "both", shuffle: bool = False,
                   synthetic: SyntheticConfig | None = None) -> YouTube8M:
    """A streaming :class:`YouTube8M` dataset over real or synthetic shards; prints which, in one line.

    Load the validation split with ``source=train.source`` so that both splits come from the same place.

    Args:
        split: ``"train"``, ``"validate"`` or ``"test"``.
        source: ``"real"`` (shards in ``<data_dir>/youtube8m/<split>``, 3,862 classes), ``"embedded"``
            (synthetic shards in the same format, written once into the data directory), or ``"auto"``
            (real shards when there are any, otherwise embedded).
        data_dir: defaults to the session's data directory.
        modality: ``"both"``, ``"rgb"``, ``"audio"`` or ``"split"`` (see :class:`YouTube8M`).
        shuffle: shuffle shards and records every epoch.
        synthetic: the generator's settings (the default is quick mode's 100 classes).
    """
    check_choice(split, "split", SPLITS)
    check_source(source, SOURCES)
    folder = real_shard_dir(split, data_dir)
    real = sorted(folder.glob("*.tfrecord")) if folder.is_dir() else []
    if source == "real" and not real:
        raise FileNotFoundError(f"no YouTube-8M {split} shards (*.tfrecord) in {folder}; fetch some "
                                f"with vclib.data.youtube8m.download({split!r}, num_shards=...) or copy "
                                "them there")
    if real and source != "embedded":
        announce("YouTube-8M", "real", f"{len(real)} {split} shards in {folder}, {NUM_CLASSES:,} classes")
        return YouTube8M(real, NUM_CLASSES, modality, shuffle, source="real")
    config = synthetic or SyntheticConfig()
    files = write_synthetic_shards(split, config, data_dir)
    announce("YouTube-8M", "embedded", f"synthetic shards in the real format, {config.num_classes} classes, "
             f"{config.videos(split):,} {split} videos")
    return YouTube8M(files, config.num_classes, modality, shuffle, source="embedded")
