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

import torch
from common import interleaved_medians, parse_args
from torch import nn

from vclib.sequence import GRU

BATCH, STEPS, FEATURES, HIDDEN = 64, 28, 28, 128


def main() -> None:
    args = parse_args(__doc__)
    torch.manual_seed(0)
    device = torch.device(args.device)
    reference = nn.GRU(FEATURES, HIDDEN, batch_first=True).to(device)
    ours = GRU(FEATURES, HIDDEN, batch_first=True).to(device)
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

    print(
        f"GRU, B={BATCH} T={STEPS} input={FEATURES} hidden={HIDDEN}, {args.threads} thread(s), "
        f"{device.type}; outputs equal: {same}"
    )
    for label, run in (("forward", forward), ("forward+backward", forward_backward)):
        contenders = {"vclib GRU": lambda run=run: run(ours), "torch nn.GRU": lambda run=run: run(reference)}
        times = interleaved_medians(contenders, args.rounds, args.threads, device)
        ours_ms, torch_ms = (times[name] * 1e3 for name in contenders)
        print(f"  {label:<17} vclib {ours_ms:8.2f} ms   torch {torch_ms:8.2f} ms   ratio {ours_ms / torch_ms:5.2f}")


if __name__ == "__main__":
    main()
