"""Project 1 figures: notebook wall times from build/report.json, and cross-entropy speed.

Run ``python -m vclib run`` first for the notebook times, then::

    python benchmarks/bench_p1.py

It times ``vclib.basics.cross_entropy`` against ``F.cross_entropy`` on a (4096, 1000) batch in the same
run (forward, and forward + backward), interleaving the two so machine noise hits both alike, and
prints the ratios (target: <= 2). Options: --threads 2 --rounds 5.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from common import interleaved_medians, parse_args

from vclib.basics import cross_entropy
from vclib.notebooks import load_report

REPORT = Path(__file__).resolve().parent.parent / "build" / "report.json"


def main() -> None:
    args = parse_args(__doc__)
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

    print(f"\ncross-entropy on (4096, 1000) float32, {args.threads} thread(s), median over {args.rounds} rounds:")
    for label, wrap in (("forward", forward), ("forward+backward", forward_backward)):
        times = interleaved_medians({"vclib": wrap(cross_entropy), "torch": wrap(F.cross_entropy)}, args.rounds,
                                    args.threads, torch.device("cpu"))
        print(f"  {label:<17} vclib {times['vclib'] * 1e3:7.2f} ms   F.cross_entropy {times['torch'] * 1e3:7.2f} ms   "
              f"ratio {times['vclib'] / times['torch']:4.2f}")

if __name__ == "__main__":
    main()
