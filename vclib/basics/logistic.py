"""Logistic regression pieces written from scratch: the sigmoid and binary cross-entropy."""

from __future__ import annotations

import torch

from vclib.checks import check_same_shape, check_tensor

REDUCTIONS = ("mean", "sum", "none")


def sigmoid(z: torch.Tensor) -> torch.Tensor:
    """σ(z) = 1 / (1 + exp(-z)), computed without overflow for large |z|.

    For z >= 0 it uses 1 / (1 + e^{-z}); for z < 0 the equal form e^{z} / (1 + e^{z}). Each branch only
    sees the half of z it is used for, so no exponent is ever positive (nor is any gradient nan).
    """
    check_tensor(z, "z", floating=True)
    non_negative = z >= 0
    zero = torch.zeros_like(z)
    exp_neg = torch.exp(-torch.where(non_negative, z, zero))  # e^{-z} where z >= 0, in (0, 1]
    exp_pos = torch.exp(torch.where(non_negative, zero, z))  # e^{z} where z < 0, in (0, 1)
    return torch.where(non_negative, 1 / (1 + exp_neg), exp_pos / (1 + exp_pos))


def reduce(losses: torch.Tensor, reduction: str) -> torch.Tensor:
    """Apply ``"mean"``, ``"sum"`` or ``"none"`` to per-element losses."""
    if reduction == "mean":
        return losses.mean()
    if reduction == "sum":
        return losses.sum()
    if reduction == "none":
        return losses
    raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def binary_cross_entropy_with_logits(logits: torch.Tensor, targets: torch.Tensor,
                                     reduction: str = "mean") -> torch.Tensor:
    """-[y log σ(z) + (1 - y) log(1 - σ(z))] from logits z, stable for any z.

    Uses the identity  loss = max(z, 0) - z y + log(1 + e^{-|z|}).

    Args:
        logits: ``(*)`` float.
        targets: ``(*)`` float in [0, 1], same shape.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
    """
    check_tensor(logits, "logits", floating=True)
    check_tensor(targets, "targets", floating=True)
    check_same_shape(logits, targets, "logits", "targets")
    losses = logits.clamp(min=0) - logits * targets + torch.log1p(torch.exp(-logits.abs()))
    return reduce(losses, reduction)
