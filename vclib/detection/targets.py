"""YOLOv3's box encoding: ground truth to targets in the heads' layout, and raw outputs back to boxes.

A box with centre ``(cx, cy)`` and size ``(w, h)`` is the responsibility of one anchor in one cell: the
anchor (of all ``L * A``, across the three strides) that it overlaps most at a shared centre, in the cell
of that anchor's grid that holds its centre. The head predicts ``(tx, ty, tw, th)`` and

    cx = (sigmoid(tx) + i) * stride,   w = anchor_w * exp(tw)   (and likewise for y, h),

with ``i`` the cell's column. :func:`build_targets` inverts this, :func:`decode` applies it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torchvision.ops import batched_nms as library_batched_nms

from vclib.checks import check_fraction, check_positive_int, check_shape, check_tensor
from vclib.detection.anchors import wh_iou
from vclib.detection.boxes import box_convert, check_boxes

MAX_LOG_SCALE = 6.0  # tw, th are clamped here before exp (a box at most e^6 ~ 400 times its anchor)


def _anchor_groups(anchors: torch.Tensor, strides: Sequence[int]) -> torch.Tensor:
    """``anchors (L * A, 2)`` -> ``(L, A, 2)``, checking that each stride gets the same number."""
    check_shape(anchors, "anchors", (None, 2))
    if len(anchors) == 0 or len(anchors) % len(strides) != 0:
        raise ValueError(f"anchors must hold the same number (>= 1) per stride, got {len(anchors)} "
                         f"for {len(strides)} strides")
    return anchors.view(len(strides), -1, 2)  # (L, A, 2)


def encode_boxes(boxes: torch.Tensor, labels: torch.Tensor, image: torch.Tensor, anchors: torch.Tensor,
                 strides: Sequence[int], shape: tuple[int, int, int]) -> list[dict[str, torch.Tensor]]:
    """The core of :func:`build_targets`: ``boxes (N, 4)`` xyxy, ``labels (N,)`` and the ``image (N,)`` index
    of each box, ``anchors (L * A, 2)``, and ``shape = (B, H, W)`` -> one dict of targets per stride."""
    num_images, height, width = shape
    groups = _anchor_groups(anchors, strides)  # (L, A, 2)
    centre_size = box_convert(boxes, "xyxy", "cxcywh")  # (N, 4)
    levels = []
    ### BEGIN SOLUTION
    best = wh_iou(centre_size[:, 2:].clamp(min=1e-6), anchors.float()).argmax(1)  # (N,) over all L * A anchors
    for level, stride in enumerate(strides):
        grid = (num_images, groups.shape[1], height // stride, width // stride)  # (B, A, H / s, W / s)
        target = {"mask": torch.zeros(grid, dtype=torch.bool), "offsets": torch.zeros(*grid, 2),
                  "log_wh": torch.zeros(*grid, 2), "boxes": torch.zeros(*grid, 4),
                  "labels": torch.zeros(grid, dtype=torch.int64)}
        target = {key: value.to(boxes.device) for key, value in target.items()}
        here = (best // groups.shape[1]) == level  # boxes whose best anchor is at this stride
        anchor = best[here] % groups.shape[1]
        grid_xy = centre_size[here, :2] / stride  # (n, 2) centres in grid units
        last = torch.tensor([grid[3] - 1, grid[2] - 1], device=boxes.device)  # last column and row
        cell = torch.minimum(grid_xy.floor().long().clamp(min=0), last)
        where = (image[here], anchor, cell[:, 1], cell[:, 0])  # (image, anchor, row, column)
        target["mask"][where] = True
        target["offsets"][where] = grid_xy - cell
        target["log_wh"][where] = torch.log(centre_size[here, 2:].clamp(min=1e-6) / groups[level, anchor])
        target["boxes"][where] = boxes[here]
        target["labels"][where] = labels[here]
        levels.append(target)
    ### END SOLUTION
    return levels


def build_targets(boxes: Sequence[torch.Tensor], labels: Sequence[torch.Tensor], anchors: torch.Tensor,
                  strides: Sequence[int], image_size: int | tuple[int, int]) -> dict:
    """Assign each ground-truth box to one anchor in one grid cell, and encode it there.

    Args:
        boxes: B tensors (N_b, 4) float xyxy in pixels.
        labels: B tensors (N_b,) int64 class indices in ``[0, C)``.
        anchors: (L * A, 2) anchor widths and heights in pixels, ``A`` per stride, smallest stride first.
        strides: the L strides, e.g. ``(8, 16, 32)``.
        image_size: ``(H, W)`` or one side, multiples of every stride.

    Returns:
        ``levels``: one dict per stride, each in the heads' layout ``(B, A, H / s, W / s, ...)``: ``mask`` bool
        (responsible anchors), ``offsets`` (..., 2) the centre's position in its cell in [0, 1), ``log_wh``
        (..., 2) ``log(w / anchor_w), log(h / anchor_h)``, ``boxes`` (..., 4) the xyxy box, ``labels`` int64;
        ``gt_boxes`` (B, N_max, 4) and ``gt_valid`` (B, N_max) bool, every box per image (for the loss's
        ignore rule); ``anchors`` and ``strides``. When two boxes pick the same anchor and cell, one wins.
    """
    height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
    _anchor_groups(anchors, strides)
    if len(boxes) != len(labels):
        raise ValueError(f"boxes and labels must have one tensor per image, got {len(boxes)} and {len(labels)}")
    if any(height % s or width % s for s in strides):
        raise ValueError(f"image_size must be a multiple of every stride {tuple(strides)}, got {(height, width)}")
    for i, (b, c) in enumerate(zip(boxes, labels, strict=True)):
        check_shape(check_boxes(b, f"boxes[{i}]"), f"boxes[{i}]", (None, 4))
        check_shape(c, f"labels[{i}]", (len(b),))
    device, counts = anchors.device, [len(b) for b in boxes]
    all_boxes = torch.cat([b.float().reshape(-1, 4) for b in boxes]).to(device)  # (N, 4)
    all_labels = torch.cat([c.long().reshape(-1) for c in labels]).to(device)  # (N,)
    image = torch.repeat_interleave(torch.arange(len(boxes), device=device), torch.tensor(counts, device=device))
    levels = encode_boxes(all_boxes, all_labels, image, anchors, strides, (len(boxes), height, width))
    gt_boxes = torch.zeros(len(boxes), max(counts, default=0), 4, device=device)
    gt_valid = torch.zeros(len(boxes), max(counts, default=0), dtype=torch.bool, device=device)
    for i, b in enumerate(boxes):
        gt_boxes[i, : len(b)] = b.float().to(device)
        gt_valid[i, : len(b)] = True
    return {"levels": levels, "gt_boxes": gt_boxes, "gt_valid": gt_valid, "anchors": anchors, "strides": tuple(strides)}


def decode_boxes(raw: torch.Tensor, anchors: torch.Tensor, stride: int) -> torch.Tensor:
    """Boxes of one head: ``raw (B, A, H, W, >= 4)`` logits and ``anchors (A, 2)`` -> ``(B, A, H, W, 4)`` xyxy
    pixels, differentiable (the loss uses it)."""
    ### BEGIN SOLUTION
    rows, cols = raw.shape[2], raw.shape[3]
    grid_y, grid_x = torch.meshgrid(torch.arange(rows, device=raw.device), torch.arange(cols, device=raw.device),
                                    indexing="ij")
    grid = torch.stack([grid_x, grid_y], dim=-1).to(raw.dtype)  # (H, W, 2) as (column, row)
    centre = (raw[..., :2].sigmoid() + grid) * stride  # (B, A, H, W, 2)
    size = anchors.to(raw.dtype)[None, :, None, None] * raw[..., 2:4].clamp(max=MAX_LOG_SCALE).exp()
    return torch.cat([centre - size / 2, centre + size / 2], dim=-1)  # (B, A, H, W, 4)
    ### END SOLUTION


def decode(outputs: Sequence[torch.Tensor], anchors: torch.Tensor, strides: Sequence[int]) -> torch.Tensor:
    """Turn the heads' raw outputs into boxes and probabilities.

    Args:
        outputs: one (B, A, H / s, W / s, 5 + C) tensor of logits per stride s.
        anchors: (L * A, 2) anchor sizes in pixels, ``A`` per stride.
        strides: the L strides.

    Returns:
        (B, N, 5 + C) with N = sum of A H W / s^2 over the strides: xyxy box in pixels, objectness
        probability, then C independent class probabilities (sigmoids, YOLOv3's multi-label classes).
    """
    groups = _anchor_groups(anchors, strides)  # (L, A, 2)
    if len(outputs) != len(strides):
        raise ValueError(f"outputs must have one tensor per stride, got {len(outputs)} for {len(strides)}")
    decoded = []
    for raw, level_anchors, stride in zip(outputs, groups, strides, strict=True):
        check_tensor(raw, "outputs[i]", ndim=5, floating=True)
        boxes = decode_boxes(raw, level_anchors, stride)  # (B, A, H, W, 4)
        probabilities = raw[..., 4:].sigmoid()  # (B, A, H, W, 1 + C)
        level = torch.cat([boxes, probabilities], dim=-1)
        decoded.append(level.flatten(1, 3))  # (B, A * H * W, 5 + C)
    return torch.cat(decoded, dim=1)  # (B, N, 5 + C)


def postprocess(decoded: torch.Tensor, conf_threshold: float = 0.25, iou_threshold: float = 0.45,
                max_det: int = 100) -> list[dict[str, torch.Tensor]]:
    """Detections per image: score = objectness x best class probability, threshold, per-class NMS.

    Args:
        decoded: (B, N, 5 + C) from :func:`decode`.
        conf_threshold: drop boxes whose score is not above this.
        iou_threshold: NMS threshold (``torchvision.ops.batched_nms``; the from-scratch
            :func:`vclib.detection.boxes.batched_nms` gives the same result, more slowly).
        max_det: most detections kept per image (K).

    Returns:
        one dict per image in torchmetrics' format: ``boxes`` (K, 4) xyxy, ``scores`` (K,), ``labels`` (K,) int64.
    """
    check_tensor(decoded, "decoded", ndim=3, floating=True)
    if decoded.shape[-1] < 6:
        raise ValueError(f"decoded must have 5 + C >= 6 values per box, got {decoded.shape[-1]}")
    check_fraction(conf_threshold, "conf_threshold")
    check_fraction(iou_threshold, "iou_threshold")
    check_positive_int(max_det, "max_det")
    results = []
    for image in decoded:  # (N, 5 + C)
        scores, labels = (image[:, 4:5] * image[:, 5:]).max(1)  # (N,), (N,)
        keep = scores > conf_threshold
        boxes, scores, labels = image[keep, :4], scores[keep], labels[keep]
        keep = library_batched_nms(boxes, scores, labels, iou_threshold)[:max_det]  # by decreasing score
        results.append({"boxes": boxes[keep], "scores": scores[keep], "labels": labels[keep]})
    return results
