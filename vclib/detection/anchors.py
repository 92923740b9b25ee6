"""Anchor boxes by k-means on the training boxes' widths and heights (YOLOv2, kept by YOLOv3).

The distance between a box and a cluster is ``1 - IoU`` with both centred at the same point, so a
cluster gathers boxes of similar shape and size whatever their position, and large boxes do not dominate
as they would with Euclidean distance.
"""

from __future__ import annotations

import torch

from vclib.checks import check_positive_int, check_shape


def wh_iou(wh: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """IoU of boxes and anchors that share a centre.

    Args:
        wh: (N, 2) float widths and heights, > 0.
        anchors: (K, 2) float widths and heights, > 0.

    Returns:
        (N, K) IoU: ``min(w) min(h) / (w h + w_a h_a - min(w) min(h))``.
    """
    check_shape(wh, "wh", (None, 2))
    check_shape(anchors, "anchors", (None, 2))
    ### BEGIN SOLUTION
    inter = torch.minimum(wh[:, None], anchors[None]).prod(-1)  # (N, K)
    return inter / (wh.prod(-1)[:, None] + anchors.prod(-1)[None] - inter)
    ### END SOLUTION


def kmeans_anchors(wh: torch.Tensor, k: int, iters: int = 100, seed: int = 0) -> torch.Tensor:
    """Cluster box sizes into ``k`` anchors with the distance ``1 - wh_iou``.

    Starts from ``k`` distinct boxes drawn at random, then alternates: assign each box to the anchor it
    overlaps most, and move each anchor to the **median** width and height of its boxes (medians, as in
    widely used reproductions of YOLOv2's clustering, resist outliers better than means). An anchor that
    loses all its boxes stays. Stops after ``iters`` rounds or when no assignment changes.

    Args:
        wh: (N, 2) float widths and heights, > 0.
        k: number of anchors, at most the number of distinct boxes.
        iters: most rounds of assign-and-update.
        seed: seeds the ``torch.Generator`` that picks the starting boxes.

    Returns:
        (k, 2) anchors, sorted by area (smallest first).
    """
    check_shape(wh, "wh", (None, 2))
    check_positive_int(k, "k")
    check_positive_int(iters, "iters")
    if not wh.is_floating_point() or bool((wh <= 0).any()):
        raise ValueError("wh must hold floating-point widths and heights > 0")
    distinct = torch.unique(wh, dim=0)
    if k > len(distinct):
        raise ValueError(f"k must be at most the number of distinct boxes ({len(distinct)}), got {k}")
    generator = torch.Generator().manual_seed(seed)
    anchors = distinct[torch.randperm(len(distinct), generator=generator)[:k]].clone()  # (k, 2)
    assignment = None
    ### BEGIN SOLUTION
    for _ in range(iters):
        new_assignment = wh_iou(wh, anchors).argmax(1)  # (N,): the closest anchor (largest IoU)
        if assignment is not None and torch.equal(new_assignment, assignment):
            break
        assignment = new_assignment
        for cluster in range(k):
            members = wh[assignment == cluster]  # (n, 2)
            if len(members) > 0:
                anchors[cluster] = members.median(dim=0).values
    ### END SOLUTION
    return anchors[anchors.prod(-1).argsort()]


def mean_best_iou(wh: torch.Tensor, anchors: torch.Tensor) -> float:
    """Average over boxes of the IoU with their best anchor: how well ``anchors`` cover ``wh`` (the elbow plot)."""
    return float(wh_iou(wh, anchors).max(1).values.mean())
