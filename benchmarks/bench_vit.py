"""One training step (forward, cross-entropy, backward, AdamW update) of vclib's VisionTransformer
against timm's VisionTransformer with the same configuration.

Two configurations: ``quick`` is P3's MNIST model (28x28, patch 7, width 64, depth 4, 4 heads, MLP ratio 2,
batch 64); ``cifar`` is the full-mode CIFAR-10 model (32x32, patch 4, width 256, depth 8, 8 heads, MLP
ratio 2, batch 128). The models have the same parameter count and compute the same function (tests/test_vit.py
loads timm's weights into ours). vclib runs twice: with attention written out (``fused=False``, the default)
and with ``fused=True`` (F.scaled_dot_product_attention, as timm uses). Contenders are interleaved.

Usage: python benchmarks/bench_vit.py [--config quick|cifar|both] [--threads 2] [--rounds 5] [--device cpu]
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from common import interleaved_medians, parse_args
from torch import nn

from vclib.transformer import VisionTransformer

CONFIGS = {
    "quick": {
        "image_size": 28,
        "patch_size": 7,
        "in_channels": 1,
        "embed_dim": 64,
        "depth": 4,
        "num_heads": 4,
        "mlp_ratio": 2.0,
        "batch": 64,
    },
    "cifar": {
        "image_size": 32,
        "patch_size": 4,
        "in_channels": 3,
        "embed_dim": 256,
        "depth": 8,
        "num_heads": 8,
        "mlp_ratio": 2.0,
        "batch": 128,
    },
}


def timm_vit(config: dict) -> nn.Module:
    from timm.models.vision_transformer import VisionTransformer as TimmVisionTransformer

    return TimmVisionTransformer(
        img_size=config["image_size"],
        patch_size=config["patch_size"],
        in_chans=config["in_channels"],
        num_classes=10,
        embed_dim=config["embed_dim"],
        depth=config["depth"],
        num_heads=config["num_heads"],
        mlp_ratio=config["mlp_ratio"],
    )


def benchmark(name: str, config: dict, threads: int, rounds: int, device: torch.device) -> None:
    model_args = {k: v for k, v in config.items() if k != "batch"}
    models = {
        "vclib ViT (math)": VisionTransformer(**model_args, num_classes=10),
        "vclib ViT (fused)": VisionTransformer(**model_args, num_classes=10, fused=True),
        "timm VisionTransformer": timm_vit(config),
    }
    counts = {label: sum(p.numel() for p in model.parameters()) for label, model in models.items()}
    images = torch.rand(
        config["batch"], config["in_channels"], config["image_size"], config["image_size"], device=device
    )
    labels = torch.randint(0, 10, (config["batch"],), device=device)
    steps = {}
    for label, model in models.items():
        model.to(device).train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

        def step(model: nn.Module = model, optimizer: torch.optim.Optimizer = optimizer) -> None:
            loss = F.cross_entropy(model(images), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        steps[label] = step
    times = interleaved_medians(steps, rounds, threads, device)
    baseline = times["timm VisionTransformer"]
    print(f"ViT training step, config {name} {config}, {threads} thread(s), {device.type}")
    for label, median in times.items():
        print(
            f"  {label:<24} {counts[label]:>10,} parameters {median * 1e3:9.2f} ms   "
            f"ratio to timm {median / baseline:5.2f}"
        )


def main() -> None:
    args = parse_args(__doc__, config=("quick", "cifar", "both"))
    torch.manual_seed(0)
    for name in ("quick", "cifar") if args.config == "both" else (args.config,):
        benchmark(name, CONFIGS[name], args.threads, args.rounds, torch.device(args.device))


if __name__ == "__main__":
    main()
