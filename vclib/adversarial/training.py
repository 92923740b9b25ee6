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
from vclib.train import model_device, progress


def adversarial_step(
    model: nn.Module,
    images: torch.Tensor,
    targets: torch.Tensor,
    attack: Attack,
    optimizer: torch.optim.Optimizer,
) -> tuple[float, int]:
    """One step of adversarial training on a batch: attack it, then descend the loss on the attacked images.

    Args:
        model: in train mode; images: ``(B, C, H, W)`` in [0, 1]; targets: ``(B,)`` int64 labels.
        attack: ``attack(model, images, targets) -> adversarial images``; optimizer: updates ``model``.

    Returns:
        The batch's mean loss and its number of correct predictions, both on the adversarial images.
    """
    adversarial = attack(model, images, targets)  # inner maximisation
    logits = model(adversarial)  # (B, K)
    loss = F.cross_entropy(logits, targets)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()  # outer minimisation
    optimizer.step()
    return loss.item(), int((logits.argmax(dim=1) == targets).sum())


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
        loader: yields ``(images (B, C, H, W) in [0, 1], targets (B,) int64, *rest)``.
        attack: ``attack(model, images, targets) -> adversarial images``, e.g. a ``functools.partial``
            of :func:`vclib.adversarial.pgd`; it runs the model in eval mode and restores train mode.
        epochs: number of passes over ``loader``.
        optimizer: defaults to ``Adam(lr=1e-3)``.
        device: where to run; None: the device of the model's first parameter (CPU without parameters).
        progress_bar: show a progress bar; None: on in interactive sessions, off when ``VCLIB_PROGRESS=0``.

    Returns:
        History, one dict per epoch: ``epoch``, ``train_loss`` and ``train_accuracy`` (both on the
        adversarial examples) and ``seconds``.
    """
    check_positive_int(epochs, "epochs")
    device = model_device(model, device)
    if optimizer is None:
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    history: list[dict[str, float]] = []
    for epoch in range(epochs):
        started = time.perf_counter()
        model.train()
        loss_sum, correct, total = 0.0, 0, 0
        batches = progress(loader, progress_bar=progress_bar, desc=f"adversarial {epoch + 1}/{epochs}")
        for images, targets, *_ in batches:
            loss, batch_correct = adversarial_step(model, images.to(device), targets.to(device), attack, optimizer)
            loss_sum += loss * targets.shape[0]
            correct += batch_correct
            total += targets.shape[0]
        if total == 0:
            raise ValueError("loader must yield at least one example, got an empty loader")
        history.append({"epoch": epoch + 1, "train_loss": loss_sum / total, "train_accuracy": correct / total,
                        "seconds": time.perf_counter() - started})
    return history
