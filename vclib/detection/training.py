"""Training and inference loops for YOLOv3 on batches of ``(images, targets)``.

A batch is ``images (B, 3, H, W)`` and a list of B dicts with ``boxes`` (N, 4) xyxy pixels and ``labels``
(N,) int64 class indices in ``[0, C)``.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from vclib.detection.loss import yolo_loss
from vclib.detection.targets import build_targets, decode, postprocess
from vclib.train import eval_mode, model_device, progress

Batch = tuple[torch.Tensor, list[dict[str, torch.Tensor]]]


def collate_detection(batch: list[tuple[torch.Tensor, dict[str, torch.Tensor]]], label_offset: int = 0) -> Batch:
    """``collate_fn`` for detection data sets: images stacked to ``(B, 3, H, W)``, targets as a list of dicts
    of plain tensors (``boxes`` float, ``labels`` int64 minus ``label_offset``)."""
    images = torch.stack([image.as_subclass(torch.Tensor) for image, _ in batch])  # (B, 3, H, W)
    targets = [{"boxes": target["boxes"].as_subclass(torch.Tensor).float(),
                "labels": target["labels"].as_subclass(torch.Tensor).long() - label_offset} for _, target in batch]
    return images, targets


def collate_digit_detection(batch: list[tuple[torch.Tensor, dict[str, torch.Tensor]]]) -> Batch:
    """:func:`collate_detection` for :class:`vclib.data.scenes.DigitScenes`: scene labels ``1..10`` (0 is the
    segmentation background) become class indices ``0..9``, so that class ``d`` is digit ``d``."""
    return collate_detection(batch, label_offset=1)


def train_yolo(model: nn.Module, loader: Iterable[Batch], epochs: int, lr: float = 2e-3, weight_decay: float = 5e-4,
               device: torch.device | str | None = None, progress_bar: bool | None = None) -> list[dict[str, float]]:
    """Train ``model`` (a :class:`vclib.detection.YOLOv3`) with AdamW and a one-cycle learning rate.

    Args:
        model: the detector; it keeps ``anchors`` and ``strides``.
        loader: batches of ``(images, targets)``.
        epochs: passes over ``loader``.
        lr: the peak learning rate.
        weight_decay: AdamW's decoupled weight decay.
        device: where to train; ``None`` is the device of the model's first parameter.
        progress_bar: show a progress bar (``None``: on unless ``VCLIB_PROGRESS=0``).

    Returns:
        one dict per step: ``step``, ``epoch``, ``loss`` and the parts ``box``, ``obj``, ``cls``.
    """
    device = model_device(model, device)
    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * len(loader),
                                                    pct_start=0.15)
    history = []
    for epoch in progress(range(epochs), progress_bar, desc="train YOLOv3"):
        for images, targets in loader:
            images = images.to(device)
            encoded = build_targets([t["boxes"].to(device) for t in targets], [t["labels"].to(device) for t in targets],
                                    model.anchors, model.strides, tuple(images.shape[-2:]))
            loss, parts = yolo_loss(model(images), encoded)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            optimizer.step()
            scheduler.step()
            history.append({"step": len(history), "epoch": epoch, "loss": loss.item(),
                            **{name: value.item() for name, value in parts.items()}})
    return history


@torch.no_grad()
def detect(model: nn.Module, loader: Iterable[Batch], conf_threshold: float = 0.01, iou_threshold: float = 0.45,
           max_det: int = 100, device: torch.device | str | None = None
           ) -> tuple[list[dict[str, torch.Tensor]], list[dict[str, torch.Tensor]]]:
    """Run ``model`` over ``loader`` in eval mode: the detections (one dict per image, :func:`postprocess`) and
    the targets, on the CPU. The low default ``conf_threshold`` keeps the low-score tail that mAP's
    precision-recall curve needs."""
    device = model_device(model, device)
    preds, targets = [], []
    with eval_mode(model):
        for images, batch_targets in loader:
            decoded = decode(model(images.to(device)), model.anchors, model.strides)  # (B, N, 5 + C)
            preds += [{key: value.cpu() for key, value in p.items()}
                      for p in postprocess(decoded, conf_threshold, iou_threshold, max_det)]
            targets += [{key: value.cpu() for key, value in t.items()} for t in batch_targets]
    return preds, targets
