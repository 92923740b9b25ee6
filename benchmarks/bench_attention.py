"""Forward + backward time of vclib's MultiHeadAttention against nn.MultiheadAttention.

Configuration of a ViT-Tiny-like block on CIFAR: B=64 sequences of L=65 tokens (64 patches + class
token), E=192, 3 heads. Both modules hold the same weights. Three contenders run in one process,
interleaved over several rounds so that a noisy machine slows all of them alike:

- ``vclib (math)``: the from-scratch path, softmax(QK^T / sqrt(d)) V written out;
- ``vclib (fused)``: the same module with ``fused=True``, which calls F.scaled_dot_product_attention;
- ``torch``: nn.MultiheadAttention(batch_first=True) with need_weights=False (its fast path).

Usage: python benchmarks/bench_attention.py [--threads 2] [--rounds 5] [--device cpu]
"""

from __future__ import annotations

import torch
from common import interleaved_medians, parse_args
from torch import nn

from vclib.transformer import MultiHeadAttention

BATCH, LENGTH, EMBED, HEADS = 64, 65, 192, 3


def main() -> None:
    args = parse_args(__doc__)
    torch.manual_seed(0)
    device = torch.device(args.device)
    reference = nn.MultiheadAttention(EMBED, HEADS, batch_first=True).to(device)
    math_path = MultiHeadAttention(EMBED, HEADS, batch_first=True).to(device)
    fused_path = MultiHeadAttention(EMBED, HEADS, batch_first=True, fused=True).to(device)
    math_path.load_state_dict(reference.state_dict())
    fused_path.load_state_dict(reference.state_dict())
    x = torch.randn(BATCH, LENGTH, EMBED, device=device, requires_grad=True)
    with torch.no_grad():
        expected = reference(x, x, x, need_weights=False)[0]
        same = torch.allclose(math_path(x, x, x, need_weights=False)[0], expected, atol=1e-5)
        same &= torch.allclose(fused_path(x, x, x, need_weights=False)[0], expected, atol=1e-5)

    def step(module: nn.Module, **kwargs: bool) -> None:
        module(x, x, x, **kwargs)[0].sum().backward()

    contenders = {
        "vclib (math)": lambda: step(math_path, need_weights=False),
        "vclib (fused)": lambda: step(fused_path, need_weights=False),
        "torch nn.MultiheadAttention": lambda: step(reference, need_weights=False),
    }
    times = interleaved_medians(contenders, args.rounds, args.threads, device)
    baseline = times["torch nn.MultiheadAttention"]
    print(
        f"MultiHeadAttention forward+backward, B={BATCH} L={LENGTH} E={EMBED} heads={HEADS}, "
        f"{args.threads} thread(s), {device.type}; outputs equal: {bool(same)}"
    )
    for name, median in times.items():
        print(f"  {name:<30} {median * 1e3:8.2f} ms   ratio to torch {median / baseline:5.2f}")


if __name__ == "__main__":
    main()
