"""Adversarial training (Madry et al., 2018): minimise the loss on the worst case an attack finds.

The min-max problem

    min_theta E_(x, y) [ max_{||delta||_inf <= eps} CE(f_theta(x + delta), y) ]

is solved approximately: the inner maximum by an attack such as PGD, the outer minimum by an ordinary
optimiser step on the adversarial batch.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from vclib.adversarial.evaluation import Attack
from vclib.checks import check_positive_int
from vclib.train import progress


def adversarial_fit(
    model: nn.Module,
    loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
    attack: Attack,
    *,
    epochs: int,
    optimizer: torch.optim.Optimizer | None = None,
    device: torch.device | str | None = None,
    progress_bar: bool | None = None,
) -> list[dict[str, float]]:
    """Train ``model`` on adversarial examples that ``attack`` makes from each batch.

    Args:
        model: maps ``(B, C, H, W)`` images in ``[0, 1]`` to ``(B, K)`` logits; trained in place.
        loader: yields ``(images (B, C, H, W) in [0, 1], labels (B,) int64, *rest)``.
        attack: ``attack(model, images, labels) -> adversarial images``, e.g. a ``functools.partial``
            of :func:`vclib.adversarial.pgd`; it runs the model in eval mode and restores train mode.
        epochs: number of passes over ``loader``.
        optimizer: defaults to ``Adam(lr=1e-3)``.
        device: defaults to the device of the model's parameters.
        progress_bar: force a progress bar on or off; default is on except in headless runs.

    Returns:
        History, one dict per epoch: ``epoch``, ``train_loss`` and ``train_accuracy`` (both on the
        adversarial examples) and ``seconds``.
    """
    check_positive_int(epochs, "epochs")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    if optimizer is None:
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    history: list[dict[str, float]] = []
    for epoch in range(epochs):
        started = time.perf_counter()
        model.train()
        loss_sum, correct, total = 0.0, 0, 0
        batches = progress(loader, enabled=progress_bar, desc=f"adversarial {epoch + 1}/{epochs}")
        for images, labels, *_ in batches:
            images, labels = images.to(device), labels.to(device)
            adversarial = attack(model, images, labels)  # inner maximisation
            logits = model(adversarial)  # (B, K)
            loss = F.cross_entropy(logits, labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # outer minimisation
            optimizer.step()
            loss_sum += loss.item() * labels.shape[0]
            correct += int((logits.argmax(dim=1) == labels).sum())
            total += labels.shape[0]
        if total == 0:
            raise ValueError("loader must yield at least one example, got an empty loader")
        history.append({"epoch": epoch + 1, "train_loss": loss_sum / total, "train_accuracy": correct / total,
                        "seconds": time.perf_counter() - started})
    return history
