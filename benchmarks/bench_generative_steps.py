"""Per-step costs of Project 4's quick-mode training loops, and the notebook's compute budget from them.

On a shared machine, wall times swing with the load of other processes. This script times each kind of
step many times and keeps the fastest repeat (the least disturbed one), then multiplies by how many
steps the quick-mode notebook runs. Run it on an idle machine for the real figure:

    VCLIB_THREADS=2 python benchmarks/bench_generative_steps.py
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from vclib import generative
from vclib.adversarial import pgd
from vclib.basics.cnn import DigitCNN
from vclib.generative import ConvVAE, Discriminator, Generator, beta_vae_objective


def fastest(step: Callable[[], None], repeats: int = 7, steps: int = 10) -> float:
    """Seconds per call of ``step``: the minimum over ``repeats`` timings of ``steps`` calls."""
    step()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(steps):
            step()
        best = min(best, (time.perf_counter() - started) / steps)
    return best


def vae_step(batch: int) -> Callable[[], None]:
    model = ConvVAE(latent_dim=8, width=32)
    optimizer = torch.optim.Adam(model.parameters())
    objective = beta_vae_objective(0.5)
    x = torch.rand(batch, 1, 28, 28)

    def step() -> None:
        loss = objective(model(x), x)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


def cnn_step(batch: int) -> Callable[[], None]:
    model = DigitCNN(width=16)
    optimizer = torch.optim.Adam(model.parameters())
    x, y = torch.rand(batch, 1, 28, 28), torch.randint(0, 10, (batch,))

    def step() -> None:
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


def gan_step(batch: int, generator_width: int = 32, discriminator_width: int = 16,
             latent: int = 32) -> Callable[[], None]:
    generator_model, discriminator_model = Generator(latent, generator_width), Discriminator(discriminator_width)
    optimizer_g = torch.optim.Adam(generator_model.parameters())
    optimizer_d = torch.optim.Adam(discriminator_model.parameters())
    real = torch.rand(batch, 1, 28, 28)
    return lambda: generative.gan_step(generator_model, discriminator_model, real, torch.randn(batch, latent),
                                       optimizer_g, optimizer_d)


def pgd_step(batch: int) -> Callable[[], None]:
    model = DigitCNN(width=16).eval()
    x, y = torch.rand(batch, 1, 28, 28), torch.randint(0, 10, (batch,))
    return lambda: pgd(model, x, y, eps=0.25, alpha=0.0625, steps=1)


def main() -> None:
    torch.set_num_threads(int(os.environ.get("VCLIB_THREADS", 2)))
    torch.manual_seed(0)
    costs = {
        "vae step (batch 32)": fastest(vae_step(32)),
        "cnn step (batch 32)": fastest(cnn_step(32)),
        "gan step (batch 32)": fastest(gan_step(32)),
        "pgd step (batch 100)": fastest(pgd_step(100)),
    }
    for name, seconds in costs.items():
        print(f"{name:<24} {1000 * seconds:8.1f} ms")
    # How many of each step the quick-mode notebook runs (4,000 training digits, batch 32 = 125 steps/epoch).
    counts = {
        "vae step (batch 32)": 125 * 10 + 3 * 2 * 125,  # main VAE 10 epochs, beta sweep 3 x 2 epochs
        "cnn step (batch 32)": 125 * 2 + 125,  # judge 2 epochs, adversarial fine-tuning 1 epoch
        "gan step (batch 32)": 125 * 8 + 40,  # GAN 8 epochs, the saturating run's first 40 steps
        # eps sweeps (3 batches of 100, 7 eps): FGSM, PGD-10 twice; PGD-3 on 125 batches of 32 in training
        "pgd step (batch 100)": 3 * 7 * (1 + 2 * 10) + 125 * 3 * 32 / 100,
    }
    total = sum(costs[name] * counts[name] for name in costs)
    print(f"quick-mode training and attacks, at the fastest step times: {total:.0f} s")


if __name__ == "__main__":
    main()
