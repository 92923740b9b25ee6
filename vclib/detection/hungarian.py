"""Bipartite matching for set prediction (DETR, Carion et al., 2020).

A set predictor outputs Q guesses ``(class probabilities, box)`` and the image holds G <= Q objects. The loss
must not depend on the order of either list, so each object is paired with exactly one guess: the pairing
``sigma`` that minimises the total cost ``sum_j cost[sigma(j), j]`` (the linear assignment problem, solved
exactly by the Hungarian algorithm in ``O(Q^3)``; ``scipy.optimize.linear_sum_assignment``). DETR's cost of
pairing prediction ``i`` with object ``j`` of class ``c_j`` and box ``b_j`` is

    cost[i, j] = -w_class p_i(c_j) + w_L1 ||b_i - b_j||_1 - w_giou GIoU(b_i, b_j),

with ``w_class, w_L1, w_giou = 1, 5, 2`` and boxes normalised by the image size (``cxcywh`` in [0, 1] for
the L1 term). The Q - G unmatched predictions are trained to say "no object".
"""

from __future__ import annotations

import torch
from scipy.optimize import linear_sum_assignment

from vclib.checks import check_non_negative, check_shape, check_tensor
from vclib.detection.boxes import box_convert, generalized_box_iou


def hungarian_match(cost: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The minimum-cost one-to-one matching of predictions (rows) to targets (columns).

    Args:
        cost: (Q, G) float, the cost of pairing prediction ``q`` with target ``g``; every entry finite.
            With ``Q >= G`` every target is matched; with ``Q < G`` every prediction is.

    Returns:
        ``query_idx`` and ``target_idx``, both (min(Q, G),) int64 on ``cost``'s device, sorted by
        ``target_idx`` (target ``target_idx[k]`` goes to prediction ``query_idx[k]``).
    """
    check_shape(cost, "cost", (None, None))
    check_tensor(cost, "cost", floating=True)
    if not bool(torch.isfinite(cost).all()):
        raise ValueError("cost must hold only finite values (got NaN or infinity)")
    device = cost.device
    if cost.numel() == 0:
        empty = torch.zeros(0, dtype=torch.int64, device=device)
        return empty, empty.clone()
    rows, cols = linear_sum_assignment(cost.detach().cpu().double().numpy())  # rows sorted, one per pair
    query_idx = torch.as_tensor(rows, dtype=torch.int64)
    target_idx = torch.as_tensor(cols, dtype=torch.int64)
    order = target_idx.argsort()  # list the pairs target by target
    return query_idx[order].to(device), target_idx[order].to(device)


def detr_match_cost(pred_logits: torch.Tensor, pred_boxes: torch.Tensor, target_labels: torch.Tensor,
                    target_boxes: torch.Tensor, class_weight: float = 1.0, l1_weight: float = 5.0,
                    giou_weight: float = 2.0) -> torch.Tensor:
    """DETR's matching cost between the Q predictions and the G objects of one image.

    Args:
        pred_logits: (Q, C + 1) class logits; the last column is "no object".
        pred_boxes: (Q, 4) ``cxcywh`` boxes normalised to [0, 1] by the image size.
        target_labels: (G,) int64 class indices in ``[0, C)``.
        target_boxes: (G, 4) ``cxcywh`` boxes normalised to [0, 1].
        class_weight: weight of the class term ``-p_i(c_j)`` (the paper: 1).
        l1_weight: weight of the L1 distance of the boxes (the paper: 5).
        giou_weight: weight of ``-GIoU`` (the paper: 2).

    Returns:
        (Q, G) float cost, without gradient (the matching is a discrete choice, not trained through).
    """
    check_tensor(pred_logits, "pred_logits", ndim=2, floating=True)
    check_shape(pred_boxes, "pred_boxes", (pred_logits.shape[0], 4))
    check_shape(target_labels, "target_labels", (None,))
    check_shape(target_boxes, "target_boxes", (target_labels.shape[0], 4))
    for value, name in ((class_weight, "class_weight"), (l1_weight, "l1_weight"), (giou_weight, "giou_weight")):
        check_non_negative(value, name)
    num_classes = pred_logits.shape[1] - 1
    if target_labels.numel() and not (0 <= int(target_labels.min()) and int(target_labels.max()) < num_classes):
        raise ValueError(f"target_labels must lie in [0, {num_classes}), got "
                         f"{target_labels.min().item()} to {target_labels.max().item()}")
    with torch.no_grad():
        probabilities = pred_logits.softmax(-1)  # (Q, C + 1)
        class_cost = -probabilities[:, target_labels]  # (Q, G): the probability of the object's class
        l1_cost = torch.cdist(pred_boxes, target_boxes.to(pred_boxes), p=1)  # (Q, G)
        giou = generalized_box_iou(box_convert(pred_boxes, "cxcywh", "xyxy"),
                                   box_convert(target_boxes.to(pred_boxes), "cxcywh", "xyxy"))  # (Q, G)
        return class_weight * class_cost + l1_weight * l1_cost - giou_weight * giou
