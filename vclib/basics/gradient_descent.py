"""Gradient descent written out by hand, with autograd supplying the gradients."""

from __future__ import annotations

from collections.abc import Callable

import torch

from vclib.checks import check_positive_int, check_tensor


def gradient_descent(loss_fn: Callable[[torch.Tensor], torch.Tensor], start: torch.Tensor, lr: float,
                     steps: int) -> tuple[torch.Tensor, list[float]]:
    """Minimise ``loss_fn`` from ``start`` with plain gradient descent: ``w <- w - lr * grad``.

    Args:
        loss_fn: maps parameters ``(P,)`` (any shape) to a scalar loss.
        start: initial parameters; not modified.
        lr: learning rate, > 0.
        steps: number of updates.

    Returns:
        The parameter trajectory ``(steps + 1, *start.shape)`` and the loss before each update and at the end.
    """
    check_tensor(start, "start", floating=True)
    check_positive_int(steps, "steps")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    params = start.detach().clone().requires_grad_(True)
    trajectory = [params.detach().clone()]
    losses = []
    for _ in range(steps):
        loss = loss_fn(params)
        if loss.dim() != 0:
            raise ValueError(f"loss_fn must return a scalar, got shape {tuple(loss.shape)}")
        (grad,) = torch.autograd.grad(loss, params)
        with torch.no_grad():
            params -= lr * grad
        losses.append(loss.item())
        trajectory.append(params.detach().clone())
    losses.append(loss_fn(params).item())
    return torch.stack(trajectory), losses
