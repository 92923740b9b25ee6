"""Per-pixel cross-entropy and whole-set scores for segmentation models."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from vclib.segmentation.metrics import confusion_matrix, segmentation_scores
from vclib.train import eval_mode, to_device


def pixel_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, ignore_index: int = 255) -> torch.Tensor:
    """Mean cross-entropy over the pixels that are not ignored.

    ``logits`` (B, C, H, W) class scores, ``targets`` (B, H, W) int64 class map; pixels equal to
    ``ignore_index`` contribute neither loss nor gradient.
    """
    return F.cross_entropy(logits, targets, ignore_index=ignore_index)


def miou_metric(num_classes: int, ignore_index: int = 255) -> Callable[[torch.Tensor, torch.Tensor], float]:
    """``fn(logits (N, C, H, W), targets (N, H, W)) -> mIoU``, for ``vclib.train.fit(metrics=...)``."""

    def miou(logits: torch.Tensor, targets: torch.Tensor) -> float:
        confmat = confusion_matrix(logits.argmax(1), targets, num_classes, ignore_index)
        return float(segmentation_scores(confmat)["miou"])

    return miou


@torch.no_grad()
def evaluate_segmentation(model: nn.Module, loader: DataLoader, num_classes: int, ignore_index: int = 255,
                          device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
    """:func:`segmentation_scores` of ``model`` over a loader of ``(images, masks)``, plus ``confmat``.

    Confusion matrices are summed batch by batch, so the scores are those of the whole set.
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    confmat = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    with eval_mode(model):
        for images, masks, *_ in loader:
            preds = model(to_device(images, device)).argmax(1).cpu()  # (B, H, W)
            confmat += confusion_matrix(preds, masks, num_classes, ignore_index)
    return {**segmentation_scores(confmat), "confmat": confmat}
