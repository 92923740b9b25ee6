"""Data sources. Each module has a loader for the real public format and, where possible, an embedded
default that works with no network."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from vclib.checks import check_positive_int


def make_loader(dataset: Dataset, batch_size: int, shuffle: bool = False, seed: int = 0, **kwargs: Any) -> DataLoader:
    """A ``DataLoader`` whose shuffling is driven by its own seeded generator (reproducible per call)."""
    check_positive_int(batch_size, "batch_size")
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator, **kwargs)
