"""Robust accuracy: how often a classifier is still right after an attack has perturbed its inputs."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

from vclib.train import eval_mode

Attack = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def accuracy_under_attack(
    model: nn.Module,
    loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
    attack: Attack | None = None,
    device: torch.device | str | None = None,
) -> float:
    """Fraction of examples that ``model`` classifies correctly after ``attack``.

    Args:
        model: maps ``(B, C, H, W)`` images in ``[0, 1]`` to ``(B, K)`` logits.
        loader: yields ``(images (B, C, H, W) in [0, 1], labels (B,) int64, *rest)``.
        attack: ``attack(model, images, labels) -> adversarial images``, for example
            ``functools.partial(pgd, eps=0.25, alpha=0.025, steps=20)``; ``None`` gives clean accuracy.
        device: where to run; defaults to the device of the model's parameters.

    Returns:
        Accuracy in ``[0, 1]``.
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    correct, total = 0, 0
    with eval_mode(model):
        for images, labels, *_ in loader:
            images, labels = images.to(device), labels.to(device)
            if attack is not None:
                images = attack(model, images, labels)
            with torch.no_grad():
                predictions = model(images).argmax(dim=1)  # (B,)
            correct += int((predictions == labels).sum())
            total += labels.shape[0]
    if total == 0:
        raise ValueError("loader must yield at least one example, got an empty loader")
    return correct / total
