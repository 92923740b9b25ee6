"""Shared classification metrics: accuracy and confusion matrices.

A topic's own metrics live in its package; YouTube-8M's ranking metrics (GAP, Hit@1, PERR, per-class AP)
are in :mod:`vclib.video.metrics` and re-exported here so that ``vclib.metrics.gap`` keeps working.
"""

from __future__ import annotations

import torch

from vclib.checks import check_positive_int, check_tensor
from vclib.video.metrics import average_precision_per_class, gap, hit_at_one, mean_ap, perr


def _as_predictions(outputs: torch.Tensor) -> torch.Tensor:
    """Class predictions from logits ``(N, C)`` or labels ``(N,)``."""
    check_tensor(outputs, "outputs", ndim=(1, 2))
    return outputs.argmax(dim=1) if outputs.dim() == 2 else outputs


def accuracy(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Fraction of correct predictions.

    Args:
        outputs: logits or scores ``(N, C)``, or predicted labels ``(N,)``.
        targets: true labels ``(N,)`` int.
    """
    predictions = _as_predictions(outputs)
    check_tensor(targets, "targets", ndim=1)
    if predictions.shape[0] != targets.shape[0]:
        raise ValueError(
            f"outputs and targets must have the same length, got {predictions.shape[0]} and {targets.shape[0]}"
        )
    if targets.numel() == 0:
        raise ValueError("targets must not be empty")
    return (predictions == targets).float().mean().item()


def confusion_matrix(predictions: torch.Tensor, targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Count matrix ``(num_classes, num_classes)``: row = true class, column = predicted class.

    Args:
        predictions: predicted labels ``(N,)`` or logits ``(N, C)``.
        targets: true labels ``(N,)``.
        num_classes: number of classes C.
    """
    check_positive_int(num_classes, "num_classes")
    predictions = _as_predictions(predictions).long()
    targets = check_tensor(targets, "targets", ndim=1).long()
    if predictions.shape != targets.shape:
        raise ValueError(
            f"predictions and targets must have the same length, got {predictions.shape[0]} and {targets.shape[0]}"
        )
    for name, labels in (("predictions", predictions), ("targets", targets)):
        if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(f"{name} must lie in [0, {num_classes - 1}], got [{labels.min()}, {labels.max()}]")
    flat_index = targets * num_classes + predictions  # (N,) index into the flattened matrix
    counts = torch.bincount(flat_index, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)  # (C_true, C_pred)

__all__ = ["accuracy", "average_precision_per_class", "confusion_matrix", "gap", "hit_at_one", "mean_ap", "perr"]
