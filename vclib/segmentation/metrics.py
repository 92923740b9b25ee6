"""Segmentation metrics from one confusion matrix: pixel accuracy, per-class IoU, mIoU, Dice, FWIoU.

Every score is a ratio of counts in the ``(C, C)`` confusion matrix (rows: targets, columns: predictions),
so a whole test set is scored by summing matrices, never by averaging per-image scores.
"""

from __future__ import annotations

import torch

from vclib.checks import check_positive_int, check_range, check_same_shape, check_tensor


def confusion_matrix(preds: torch.Tensor, targets: torch.Tensor, num_classes: int,
                     ignore_index: int | None = 255) -> torch.Tensor:
    """Count (target, prediction) pairs over all pixels that are not ignored.

    Args:
        preds: (...) int class map, values in ``[0, num_classes)``.
        targets: (...) int class map of the same shape; pixels equal to ``ignore_index`` are skipped.
        num_classes: C, the number of classes.
        ignore_index: the target value to skip, or ``None``.

    Returns:
        (C, C) int64 matrix; entry ``[t, p]`` counts pixels of class ``t`` predicted as ``p``.
    """
    check_tensor(preds, "preds")
    check_tensor(targets, "targets")
    check_same_shape(preds, targets, "preds", "targets")
    check_positive_int(num_classes, "num_classes")
    for name, x in (("preds", preds), ("targets", targets)):
        if x.is_floating_point() or x.dtype == torch.bool:
            raise ValueError(f"{name} must be an integer class map, got dtype {x.dtype}")
    keep = targets != ignore_index if ignore_index is not None else torch.ones_like(targets, dtype=torch.bool)
    preds, targets = preds[keep].long(), targets[keep].long()  # (P,) valid pixels
    check_range(preds, "preds", 0, num_classes - 1)
    check_range(targets, "targets (not ignored)", 0, num_classes - 1)
    ### BEGIN SOLUTION
    pairs = targets * num_classes + preds  # (P,): one bin per (target, prediction) pair
    counts = torch.bincount(pairs, minlength=num_classes * num_classes)  # (C*C,)
    return counts.reshape(num_classes, num_classes)  # (C, C)
    ### END SOLUTION


def segmentation_scores(confmat: torch.Tensor) -> dict[str, torch.Tensor]:
    """Scores of a confusion matrix (rows: targets, columns: predictions).

    With ``tp`` the diagonal, ``support`` the row sums and ``predicted`` the column sums:
    ``iou = tp / (support + predicted - tp)``, ``dice = 2 tp / (support + predicted)``.
    Classes with an empty union (absent and never predicted) are NaN in ``iou`` and ``dice`` and are
    left out of ``miou``; classes absent from the targets are left out of ``mean_accuracy``.

    Args:
        confmat: (C, C) counts.

    Returns:
        ``pixel_accuracy``, ``mean_accuracy``, ``miou`` and ``frequency_weighted_iou`` (scalars),
        ``iou`` and ``dice`` (C,). When no pixel is counted, ``pixel_accuracy`` is 0 (as in torchmetrics)
        and the other scalars are NaN.
    """
    check_tensor(confmat, "confmat", ndim=2)
    if confmat.shape[0] != confmat.shape[1]:
        raise ValueError(f"confmat must be square (C, C), got {tuple(confmat.shape)}")
    check_range(confmat, "confmat", 0, float("inf"))
    confmat = confmat.double()
    ### BEGIN SOLUTION
    tp = confmat.diagonal()  # (C,)
    support, predicted = confmat.sum(1), confmat.sum(0)  # (C,) target and prediction counts
    union = support + predicted - tp  # (C,)
    iou = tp / union  # NaN where the union is empty
    present = union > 0
    frequency = support / support.sum()  # (C,)
    scores = {
        "pixel_accuracy": tp.sum() / confmat.sum().clamp(min=1),  # 0 when nothing is counted
        "mean_accuracy": (tp / support)[support > 0].mean(),
        "iou": iou,
        "miou": iou[present].mean(),
        "dice": 2 * tp / (support + predicted),
        "frequency_weighted_iou": (frequency[present] * iou[present]).sum() / frequency[present].sum(),
    }
    ### END SOLUTION
    return {name: value.float() for name, value in scores.items()}
