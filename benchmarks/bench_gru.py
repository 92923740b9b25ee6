"""Time of vclib's from-scratch GRU against nn.GRU on the same batch, forward and forward + backward.

Configuration of P3's row classifier: B=64 MNIST images read as T=28 rows of 28 pixels, hidden size 128.
Both modules hold the same weights; contenders are interleaved over several rounds.

Expect vclib's GRU to be slower, by how much depends on the device. On the CPU, nn.GRU runs the same
algorithm as vclib (all input projections in one matrix product, then a loop over time of a matrix product
and a few gate operations, each recorded by autograd), but its loop is C++ and its gate arithmetic is
in place, while vclib's loop is Python: about ten small operator dispatches per step forward and twice as
many backward, each costing microseconds of interpreter and dispatcher overhead. With small batches that
overhead is a large part of the step, so the ratio is largest for backward. On a GPU, nn.GRU calls cuDNN's
fused RNN kernels (one launch for the whole sequence) while vclib launches several small kernels per step, so
expect a much wider gap there (run with --device cuda to measure it).

Usage: python benchmarks/bench_gru.py [--threads 2] [--rounds 5] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics

import torch
from torch import nn
from torch.utils.benchmark import Timer

from vclib.sequence import GRU

BATCH, STEPS, FEATURES, HIDDEN = 64, 28, 28, 128


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.manual_seed(0)
    device = torch.device(args.device)
    reference = nn.GRU(FEATURES, HIDDEN, batch_first=True).to(device)
    ours = GRU(FEATURES, HIDDEN).to(device)
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(BATCH, STEPS, FEATURES, device=device, requires_grad=True)
    with torch.no_grad():
        same = torch.allclose(ours(x)[0], reference(x)[0], atol=1e-5)

    def forward(module: nn.Module) -> None:
        with torch.no_grad():
            module(x)

    def forward_backward(module: nn.Module) -> None:
        output, h_n = module(x)
        (output.sum() + h_n.sum()).backward()

    sync = "torch.cuda.synchronize()" if device.type == "cuda" else "pass"
    print(
        f"GRU, B={BATCH} T={STEPS} input={FEATURES} hidden={HIDDEN}, {args.threads} thread(s), "
        f"{device.type}; outputs equal: {same}"
    )
    for label, run in (("forward", forward), ("forward+backward", forward_backward)):
        times: dict[str, list[float]] = {"vclib GRU": [], "torch nn.GRU": []}
        for _ in range(args.rounds):
            for name, module in (("vclib GRU", ours), ("torch nn.GRU", reference)):
                timer = Timer(
                    f"run(module); {sync}",
                    globals={"run": run, "module": module, "torch": torch},
                    num_threads=args.threads,
                )
                times[name].append(timer.blocked_autorange(min_run_time=0.5).median)
        ours_ms, torch_ms = (statistics.median(times[name]) * 1e3 for name in times)
        print(f"  {label:<17} vclib {ours_ms:8.2f} ms   torch {torch_ms:8.2f} ms   ratio {ours_ms / torch_ms:5.2f}")


if __name__ == "__main__":
    main()
