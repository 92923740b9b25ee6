"""Time and peak memory of ``vclib.video.metrics.gap`` at YouTube-8M validation scale, against a NumPy version.

Inputs: N = 100,000 videos x C = 3,862 classes of uniform random float32 scores and float32 multi-hot
labels with 3 labels per video (about 1.5 GB each), GAP@20. The NumPy contender does the same work with
``np.argpartition`` (per-row top-k without a full sort), then sorts the pooled N * k list; both must agree.

Peak memory is the growth of the process's resident set (VmHWM, reset before each call through
/proc/self/clear_refs) above what it held with the inputs in memory.

Usage: python benchmarks/bench_gap.py [--videos 100000] [--classes 3862] [--top-k 20] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from vclib.video.metrics import gap

GIB = 1024**3


def numpy_gap(scores: np.ndarray, labels: np.ndarray, top_k: int) -> float:
    """GAP@k with NumPy: argpartition per row, then one sort of the pooled predictions."""
    rows = np.arange(scores.shape[0])[:, None]
    top_classes = np.argpartition(-scores, top_k - 1, axis=1)[:, :top_k]  # (N, k), unordered
    pooled_scores = scores[rows, top_classes].ravel()
    pooled_hits = labels[rows, top_classes].ravel().astype(np.float64)
    hits = pooled_hits[np.argsort(-pooled_scores, kind="stable")]
    precision = np.cumsum(hits) / np.arange(1, hits.size + 1)
    return float((precision * hits).sum() / np.count_nonzero(labels))


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def measure(fn: Callable[[], float]) -> tuple[float, float, float]:
    """(value, seconds, peak resident growth in bytes) of one call."""
    Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark to the current RSS
    before = _status_kib("VmRSS")
    started = time.perf_counter()
    value = fn()
    seconds = time.perf_counter() - started
    return value, seconds, (_status_kib("VmHWM") - before) * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=100_000)
    parser.add_argument("--classes", type=int, default=3862)
    parser.add_argument("--top-k", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    scores = torch.rand(args.videos, args.classes, generator=generator)  # (N, C)
    labels = torch.zeros(args.videos, args.classes)  # (N, C)
    rows = torch.arange(args.videos).repeat_interleave(3)
    labels[rows, torch.randint(args.classes, (3 * args.videos,), generator=generator)] = 1.0
    inputs = (scores.numel() * scores.element_size() + labels.numel() * labels.element_size()) / GIB
    print(
        f"GAP@{args.top_k} on {args.videos:,} x {args.classes:,} scores, {args.threads} threads; "
        f"inputs {inputs:.2f} GiB"
    )
    contenders = {
        "vclib.video.metrics.gap": lambda: gap(scores, labels, top_k=args.top_k),
        "numpy argpartition": lambda: numpy_gap(scores.numpy(), labels.numpy(), args.top_k),
    }
    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in contenders}
    for _ in range(args.rounds):  # interleaved, so a noisy machine slows both alike
        for name, fn in contenders.items():
            results[name].append(measure(fn))
    values = [runs[0][0] for runs in results.values()]
    print(f"{'contender':<22}{'median s':>10}{'min s':>8}{'peak extra GiB':>16}")
    for name, runs in results.items():
        seconds = [run[1] for run in runs]
        peak = max(run[2] for run in runs) / GIB
        print(f"{name:<22}{statistics.median(seconds):>10.2f}{min(seconds):>8.2f}{peak:>16.2f}")
    vclib_seconds = statistics.median(run[1] for run in results["vclib.video.metrics.gap"])
    ratio = statistics.median(run[1] for run in results["numpy argpartition"]) / vclib_seconds
    print(f"GAP = {values[0]:.6f}; values agree: {abs(values[0] - values[1]) < 1e-9}; "
          f"numpy / vclib time: {ratio:.2f}x; vclib under 3 s: {vclib_seconds < 3}")


if __name__ == "__main__":
    main()
