"""Project 1 figures: notebook wall times from build/report.json, and cross-entropy speed.

Run ``python -m vclib run`` first for the notebook times, then::

    python benchmarks/bench_p1.py

It times ``vclib.basics.cross_entropy`` against ``F.cross_entropy`` on a (4096, 1000) batch in the same
run (forward, and forward + backward), interleaving the two so machine noise hits both alike, and
prints the ratios (target: <= 2).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from vclib.basics import cross_entropy
from vclib.session import load_report

REPORT = Path(__file__).resolve().parent.parent / "build" / "report.json"


def time_call(fn, repeats: int) -> float:
    """Median seconds of ``fn()`` over ``repeats`` calls after two warm-ups."""
    fn()
    fn()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    torch.set_num_threads(2)
    if REPORT.is_file():
        report = load_report(REPORT)
        print(f"notebook times ({report['mode']} mode):")
        for name, result in report["notebooks"].items():
            print(f"  {name:<48} {result['seconds']:>7.1f} s  {'ok' if result['ok'] else 'FAILED'}")
    else:
        print(
            f"no {REPORT.relative_to(REPORT.parent.parent)} yet: run `python -m vclib run` for notebook times"
        )

    torch.manual_seed(0)
    logits = torch.randn(4096, 1000, requires_grad=True)
    target = torch.randint(0, 1000, (4096,))

    def forward(loss_fn):
        return lambda: loss_fn(logits.detach(), target)

    def forward_backward(loss_fn):
        return lambda: torch.autograd.grad(loss_fn(logits, target), logits)

    print("\ncross-entropy on (4096, 1000) float32, median of 30:")
    for label, wrap in (("forward", forward), ("forward+backward", forward_backward)):
        ours, theirs = [], []
        for _ in range(3):  # interleave rounds so load changes affect both
            ours.append(time_call(wrap(cross_entropy), 10))
            theirs.append(time_call(wrap(F.cross_entropy), 10))
        ours_s, theirs_s = statistics.median(ours), statistics.median(theirs)
        print(
            f"  {label:<17} vclib {ours_s * 1e3:7.2f} ms   F.cross_entropy {theirs_s * 1e3:7.2f} ms   "
            f"ratio {ours_s / theirs_s:4.2f}"
        )


if __name__ == "__main__":
    main()
