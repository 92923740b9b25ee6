"""What the benchmark scripts share: their command line and interleaved timing of contenders."""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable

import torch
from torch.utils.benchmark import Timer


def parse_args(description: str | None, config: tuple[str, ...] | None = None) -> argparse.Namespace:
    """``--threads`` (default 2), ``--rounds`` (default 5), ``--device`` (default cpu) and, when ``config``
    names choices, ``--config`` (default: the last choice)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    if config:
        parser.add_argument("--config", choices=config, default=config[-1])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    return parser.parse_args()


def interleaved_medians(contenders: dict[str, Callable[[], object]], rounds: int, threads: int,
                        device: torch.device) -> dict[str, float]:
    """Median seconds per call of each contender.

    Contenders take turns for ``rounds`` rounds (each a ``blocked_autorange`` of at least 0.5 s), so a
    noisy, shared machine slows all of them alike and their ratios stay meaningful.
    """
    sync = "torch.cuda.synchronize()" if device.type == "cuda" else "pass"
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, run in contenders.items():
            timer = Timer(f"run(); {sync}", globals={"run": run, "torch": torch}, num_threads=threads)
            samples[name].append(timer.blocked_autorange(min_run_time=0.5).median)
    return {name: statistics.median(values) for name, values in samples.items()}
