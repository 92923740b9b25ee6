"""The embedded default: learnable synthetic videos written as real-format YouTube-8M shards."""

from __future__ import annotations

import hashlib
import json
import string
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from vclib.checks import check_choice
from vclib.data.sources import resolve_data_dir
from vclib.data.youtube8m.records import AUDIO_DIM, RGB_DIM, SPLITS, Record, write_records

# ---------------------------------------------------------------------------------------------------
# The embedded default: synthetic videos in the real format

GENERATOR_VERSION = 1
ID_ALPHABET = string.ascii_letters + string.digits
LABELS_PER_VIDEO = (0.25, 0.3, 0.22, 0.14, 0.09)  # P(1 label), ..., P(5 labels)
STRONG, WEAK, BOTH = 3.0, 0.3, 2.0  # prototype lengths (times config.signal) of a class's strong/weak/shared modality
FEATURE_GAIN = {"rgb": 8.0, "audio": 6.0}  # PCA-like scale of the first dimension per modality
FEATURE_DECAY = 0.15  # dimension d is scaled by gain * d ** -decay


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
    rgb_strength = np.choose(kind, [STRONG, WEAK, BOTH]) * config.signal
    audio_strength = np.choose(kind, [WEAK, STRONG, BOTH]) * config.signal
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


def feature_scale(modality: str) -> np.ndarray:
    """The PCA-like per-dimension scale ``(D,)`` applied to ``"rgb"`` (D = 1024) or ``"audio"`` (D = 128)."""
    check_choice(modality, "modality", tuple(FEATURE_GAIN))
    dim = RGB_DIM if modality == "rgb" else AUDIO_DIM
    return FEATURE_GAIN[modality] * np.arange(1, dim + 1) ** -FEATURE_DECAY


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
    rgb *= feature_scale("rgb")
    audio *= feature_scale("audio")
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


