"""Robust accuracy: how often a classifier is still right after an attack has perturbed its inputs."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

from vclib.train import eval_mode, model_device, progress

Attack = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def accuracy_under_attack(
    model: nn.Module,
    loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
    attack: Attack | None = None,
    device: torch.device | str | None = None,
    progress_bar: bool | None = None,
) -> float:
    """Fraction of examples that ``model`` classifies correctly after ``attack``.

    Args:
        model: maps ``(B, C, H, W)`` images in ``[0, 1]`` to ``(B, K)`` logits.
        loader: yields ``(images (B, C, H, W) in [0, 1], targets (B,) int64, *rest)``.
        attack: ``attack(model, images, targets) -> adversarial images``, for example
            ``functools.partial(pgd, eps=0.25, alpha=0.025, steps=20)``; ``None`` gives clean accuracy.
        device: where to run; None: the device of the model's first parameter (CPU without parameters).
        progress_bar: show a progress bar; None: on in interactive sessions, off when ``VCLIB_PROGRESS=0``.

    Returns:
        Accuracy in ``[0, 1]``.
    """
    device = model_device(model, device)
    correct, total = 0, 0
    with eval_mode(model):
        for images, targets, *_ in progress(loader, progress_bar=progress_bar, desc="attack"):
            images, targets = images.to(device), targets.to(device)
            if attack is not None:
                images = attack(model, images, targets)
            with torch.no_grad():
                predictions = model(images).argmax(dim=1)  # (B,)
            correct += int((predictions == targets).sum())
            total += targets.shape[0]
    if total == 0:
        raise ValueError("loader must yield at least one example, got an empty loader")
    return correct / total
