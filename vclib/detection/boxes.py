"""Boxes: formats, areas, IoU, generalized IoU and non-maximum suppression, written from scratch.

Each function has a ``torchvision.ops`` twin with the same call signature and returns the same values
(the tests compare them). Boxes are in pixels; ``"xyxy"`` is ``(x1, y1, x2, y2)`` with ``x1 <= x2`` and
``y1 <= y2``. Two boxes of zero area give an IoU of 0 here (torchvision gives NaN).
"""

from __future__ import annotations

import torch

from vclib.checks import check_choice, check_fraction, check_shape, check_tensor

BOX_FORMATS = ("xyxy", "xywh", "cxcywh")


def check_boxes(boxes: object, name: str) -> torch.Tensor:
    """Check ``(..., 4)`` float boxes in ``"xyxy"`` format with ``x1 <= x2`` and ``y1 <= y2``."""
    check_tensor(boxes, name, floating=True)
    if boxes.dim() == 0 or boxes.shape[-1] != 4:
        raise ValueError(f"{name} must have shape (..., 4), got {tuple(boxes.shape)}")
    if bool(((boxes[..., 2] < boxes[..., 0]) | (boxes[..., 3] < boxes[..., 1])).any()):
        raise ValueError(f"{name} must be xyxy boxes with x1 <= x2 and y1 <= y2")
    return boxes


def box_convert(boxes: torch.Tensor, in_fmt: str, out_fmt: str) -> torch.Tensor:
    """Convert ``boxes (..., 4)`` between ``"xyxy"``, ``"xywh"`` (corner, size) and ``"cxcywh"`` (centre, size)."""
    check_choice(in_fmt, "in_fmt", BOX_FORMATS)
    check_choice(out_fmt, "out_fmt", BOX_FORMATS)
    check_tensor(boxes, "boxes", floating=True)
    a, b, c, d = boxes.unbind(-1)
    if in_fmt == "xywh":
        a, b, c, d = a, b, a + c, b + d
    elif in_fmt == "cxcywh":
        a, b, c, d = a - 0.5 * c, b - 0.5 * d, a + 0.5 * c, b + 0.5 * d
    if out_fmt == "xywh":
        a, b, c, d = a, b, c - a, d - b
    elif out_fmt == "cxcywh":
        a, b, c, d = (a + c) / 2, (b + d) / 2, c - a, d - b
    return torch.stack([a, b, c, d], dim=-1)


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    """Areas of ``boxes (..., 4)`` xyxy: ``(x2 - x1) (y2 - y1)``, shape ``(...)``."""
    check_boxes(boxes, "boxes")
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def _safe_divide(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    """``numerator / denominator``, and 0 where the denominator is 0 (a finite value and gradient)."""
    positive = denominator > 0
    return torch.where(positive, numerator / torch.where(positive, denominator, 1), 0)


def _inter_union(boxes1: torch.Tensor, boxes2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Intersection and union areas of broadcastable xyxy boxes ``(..., 4)``."""
    ### BEGIN SOLUTION
    top_left = torch.maximum(boxes1[..., :2], boxes2[..., :2])  # (..., 2)
    bottom_right = torch.minimum(boxes1[..., 2:], boxes2[..., 2:])  # (..., 2)
    size = (bottom_right - top_left).clamp(min=0)  # (..., 2): 0 where the boxes do not overlap
    inter = size[..., 0] * size[..., 1]
    area1 = (boxes1[..., 2] - boxes1[..., 0]) * (boxes1[..., 3] - boxes1[..., 1])
    area2 = (boxes2[..., 2] - boxes2[..., 0]) * (boxes2[..., 3] - boxes2[..., 1])
    return inter, area1 + area2 - inter
    ### END SOLUTION


def _giou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """GIoU of broadcastable xyxy boxes: ``IoU - (|C| - |A u B|) / |C|``, C the smallest enclosing box."""
    inter, union = _inter_union(boxes1, boxes2)
    enclosing_size = torch.maximum(boxes1[..., 2:], boxes2[..., 2:]) - torch.minimum(boxes1[..., :2], boxes2[..., :2])
    enclosing = enclosing_size[..., 0] * enclosing_size[..., 1]
    return _safe_divide(inter, union) - _safe_divide(enclosing - union, enclosing)


def box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """Intersection over union of every pair.

    Args:
        boxes1: (N, 4) float xyxy, or (..., N, 4) for a batch of sets.
        boxes2: (M, 4) float xyxy, or (..., M, 4) with the same leading dimensions.

    Returns:
        (N, M) IoU in [0, 1] (or (..., N, M)).
    """
    check_boxes(boxes1, "boxes1")
    check_boxes(boxes2, "boxes2")
    if boxes1.dim() < 2 or boxes1.shape[:-2] != boxes2.shape[:-2]:
        raise ValueError(f"boxes1 and boxes2 must be (..., N, 4) and (..., M, 4) with the same leading dimensions, "
                         f"got {tuple(boxes1.shape)} and {tuple(boxes2.shape)}")
    inter, union = _inter_union(boxes1[..., :, None, :], boxes2[..., None, :, :])  # (..., N, M) each
    return _safe_divide(inter, union)


def generalized_box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """Generalized IoU (Rezatofighi et al., 2019) of every pair: ``(N, 4), (M, 4) -> (N, M)`` in [-1, 1].

    Unlike IoU it is informative for boxes that do not overlap: the further apart, the closer to -1.
    """
    check_shape(check_boxes(boxes1, "boxes1"), "boxes1", (None, 4))
    check_shape(check_boxes(boxes2, "boxes2"), "boxes2", (None, 4))
    return _giou(boxes1[:, None], boxes2[None, :])  # (N, M)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression.

    Visit boxes from the highest score down; keep a box unless a box kept before it overlaps it with
    IoU > ``iou_threshold``.

    Args:
        boxes: (N, 4) float xyxy.
        scores: (N,) float.
        iou_threshold: in [0, 1]; 0 removes every overlapping box, 1 removes none.

    Returns:
        (K,) int64 indices of the kept boxes, by decreasing score (as ``torchvision.ops.nms``).
    """
    check_shape(check_boxes(boxes, "boxes"), "boxes", (None, 4))
    check_shape(scores, "scores", (boxes.shape[0],))
    check_fraction(iou_threshold, "iou_threshold")
    ### BEGIN SOLUTION
    order = scores.argsort(descending=True)  # (N,)
    overlaps = box_iou(boxes[order], boxes[order]) > iou_threshold  # (N, N), in score order
    removed = torch.zeros(len(order), dtype=torch.bool)
    keep = []
    for i in range(len(order)):
        if removed[i]:
            continue
        keep.append(i)
        removed |= overlaps[i].cpu()  # suppress everything that box i overlaps (the earlier ones are done)
    return order[torch.tensor(keep, dtype=torch.int64, device=boxes.device)]
    ### END SOLUTION


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Non-maximum suppression within each category: boxes with different ``idxs`` never suppress each other.

    Each category's boxes are shifted by ``idx * (largest coordinate + 1)``, so that boxes of different
    categories cannot overlap, and one :func:`nms` runs over all of them (torchvision's trick).

    Args:
        boxes: (N, 4) float xyxy.
        scores: (N,) float.
        idxs: (N,) int category of each box.
        iou_threshold: in [0, 1].

    Returns:
        (K,) int64 indices of the kept boxes, by decreasing score.
    """
    check_shape(check_boxes(boxes, "boxes"), "boxes", (None, 4))
    check_shape(idxs, "idxs", (boxes.shape[0],))
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    offsets = idxs.to(boxes) * (boxes.max() + 1)  # (N,)
    return nms(boxes + offsets[:, None], scores, iou_threshold)
