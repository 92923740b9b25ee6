"""Per-pixel cross-entropy, training and whole-set scores for segmentation models."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from vclib.checks import check_positive_int
from vclib.segmentation.metrics import confusion_matrix, segmentation_scores
from vclib.train import eval_mode, fit, to_device


def pixel_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, ignore_index: int = 255,
                        weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean cross-entropy over the pixels that are not ignored.

    Args:
        logits: (B, C, H, W) class scores.
        targets: (B, H, W) int64 class map; pixels equal to ``ignore_index`` give neither loss nor gradient.
        ignore_index: the label of ignored pixels.
        weight: optional (C,) weight per class; the mean is then weighted (``F.cross_entropy``'s rule).
    """
    return F.cross_entropy(logits, targets, weight=weight, ignore_index=ignore_index)


def miou_metric(num_classes: int, ignore_index: int = 255) -> Callable[[torch.Tensor, torch.Tensor], float]:
    """``fn(logits (N, C, H, W), targets (N, H, W)) -> mIoU``, for ``vclib.train.fit(metrics=...)``."""

    def miou(logits: torch.Tensor, targets: torch.Tensor) -> float:
        confmat = confusion_matrix(logits.argmax(1), targets, num_classes, ignore_index)
        return float(segmentation_scores(confmat)["miou"])

    return miou


def collate_masks(batch: list[tuple[torch.Tensor, object]]) -> tuple[torch.Tensor, torch.Tensor]:
    """``collate_fn`` for segmentation: ``(image, mask)`` or ``(image, {"mask": ...})`` items become
    images (B, 3, H, W) and masks (B, H, W) int64, as plain tensors."""
    images = torch.stack([image.as_subclass(torch.Tensor) for image, _ in batch])
    masks = [target["mask"] if isinstance(target, dict) else target for _, target in batch]
    return images, torch.stack([mask.as_subclass(torch.Tensor).long() for mask in masks])


def _miou_of_scores(logits: torch.Tensor, masks: torch.Tensor) -> float:
    """mIoU of (N, C, H, W) scores against (N, H, W) masks, C read from the scores."""
    return miou_metric(logits.shape[1])(logits, masks)


def train_segmentation(model: nn.Module, loader: DataLoader, epochs: int, lr: float = 3e-3,
                       class_weights: torch.Tensor | None = None, val_loader: DataLoader | None = None,
                       desc: str = "train") -> list[dict[str, float]]:
    """Adam with a one-cycle learning rate (stepped per batch) on :func:`pixel_cross_entropy`.

    Args:
        model: maps (B, 3, H, W) images to (B, C, H, W) scores; only parameters with ``requires_grad``
            are optimised (so a frozen backbone stays frozen).
        loader: yields ``(images (B, 3, H, W), masks (B, H, W))``.
        epochs: passes over ``loader``.
        lr: the peak learning rate of the one-cycle schedule.
        class_weights: optional (C,) weight per class for the loss.
        val_loader: optional; adds ``val_loss`` and ``val_miou`` per epoch.
        desc: progress-bar label.

    Returns:
        :func:`vclib.train.fit`'s history, one dict per epoch.
    """
    check_positive_int(epochs, "epochs")
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=lr)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=epochs * len(loader))
    weight = None if class_weights is None else class_weights.to(next(model.parameters()).device)
    metrics = {"miou": _miou_of_scores} if val_loader is not None else None
    return fit(model, loader, epochs=epochs, optimizer=optimizer, scheduler=scheduler, scheduler_step="batch",
               loss_fn=lambda logits, masks: pixel_cross_entropy(logits, masks, weight=weight),
               val_loader=val_loader, metrics=metrics, desc=desc)


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
