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

from pathlib import Path

from vclib.checks import check_choice
from vclib.data.sources import announce, check_source
from vclib.data.youtube8m.download import MIRRORS, PLAN_URL, SHARD_URL, download, md5sum, real_shard_dir, shard_index
from vclib.data.youtube8m.records import (
    AUDIO_DIM,
    MODALITIES,
    NUM_CLASSES,
    REQUIRED_FEATURES,
    RGB_DIM,
    SOURCES,
    SPLITS,
    Record,
    VideoFeatures,
    YouTube8M,
    iter_records,
    resolve_shards,
    write_records,
)
from vclib.data.youtube8m.synthetic import (
    SyntheticClasses,
    SyntheticConfig,
    synthetic_classes,
    synthetic_dir,
    synthetic_videos,
    write_synthetic_shards,
)

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
    sizes = ", ".join(f"{config.videos(name):,} {name}" for name in SPLITS)
    announce("YouTube-8M", "embedded", f"synthetic shards in the real format, {config.num_classes} classes, "
             f"videos: {sizes}")
    return YouTube8M(files, config.num_classes, modality, shuffle, source="embedded")


__all__ = [
    "AUDIO_DIM", "MIRRORS", "MODALITIES", "NUM_CLASSES", "PLAN_URL", "REQUIRED_FEATURES", "RGB_DIM", "SHARD_URL",
    "SOURCES", "SPLITS", "Record", "SyntheticClasses", "SyntheticConfig", "VideoFeatures", "YouTube8M", "download",
    "iter_records", "load_youtube8m", "md5sum", "real_shard_dir", "resolve_shards", "shard_index", "synthetic_classes",
    "synthetic_dir", "synthetic_videos", "write_records", "write_synthetic_shards",
]
