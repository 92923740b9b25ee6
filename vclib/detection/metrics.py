"""Mean average precision (mAP) with COCO's definition, written from scratch and vectorised.

The definition (COCO's ``COCOeval`` for boxes, which ``torchmetrics.detection.MeanAveragePrecision`` calls):

1. **Matching**, per image and class, for each IoU threshold ``t`` in 0.50:0.05:0.95: detections are visited
   from the highest score down (at most ``max_detections`` per image and class); each takes the still
   unmatched ground truth it overlaps most, if that IoU is at least ``t``. A matched detection is a true
   positive (TP), the others are false positives (FP).
2. **Precision-recall curve**, per class and threshold: all the class's detections over the whole set, by
   decreasing score; after the first ``n`` of them, ``precision = TP / n`` and ``recall = TP / #ground truths``.
   Precision is made non-increasing (each value becomes the largest precision at any higher recall).
3. **Average precision**: the mean of that precision at the 101 recall levels 0, 0.01, ..., 1 (0 beyond the
   last recall reached).
4. **mAP**: AP averaged over the classes that have ground truth and over the thresholds; ``map_50`` and
   ``map_75`` use one threshold. All object sizes count ("area: all"); there are no crowd boxes.

Like torchmetrics, the thresholds are ``torch.linspace`` in float32 (0.55 is 0.550000011920929...), boxes
are compared in float64 after a float32 conversion to ``(x, y, w, h)``, and ties in score keep the input
order. A float64 grid would differ from the reference by up to 2e-3 whenever a recall falls exactly on a
threshold, so the reference's float32 grid is used.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vclib.checks import check_positive_int, check_shape, check_tensor
from vclib.detection.boxes import check_boxes

_EPS = float(torch.finfo(torch.float64).eps)  # numpy's np.spacing(1), COCO's guard against 0 / 0


def coco_thresholds() -> tuple[torch.Tensor, torch.Tensor]:
    """COCO's IoU thresholds ``(10,)`` and recall levels ``(101,)``, float32 values held in float64."""
    iou_thresholds = torch.linspace(0.5, 0.95, 10).double()
    recall_thresholds = torch.linspace(0.0, 1.0, 101).double()
    return iou_thresholds, recall_thresholds


def _check_lists(preds: object, targets: object) -> None:
    if not isinstance(preds, list | tuple) or not isinstance(targets, list | tuple):
        raise ValueError("preds and targets must be lists of dicts (one per image)")
    if len(preds) != len(targets):
        raise ValueError(f"preds and targets must have one dict per image, got {len(preds)} and {len(targets)}")
    expected = (("preds", preds, ("boxes", "scores", "labels")), ("targets", targets, ("boxes", "labels")))
    for kind, items, keys in expected:
        for i, item in enumerate(items):
            if not isinstance(item, dict) or any(key not in item for key in keys):
                raise ValueError(f"{kind}[{i}] must be a dict with keys {keys}")
            check_shape(check_boxes(item["boxes"], f"{kind}[{i}]['boxes']"), f"{kind}[{i}]['boxes']", (None, 4))
            for key in keys[1:]:
                check_shape(item[key], f"{kind}[{i}][{key!r}]", (len(item["boxes"]),))


def coco_box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """IoU of broadcastable xyxy boxes as COCO computes it: float32 ``(x, y, w, h)``, then float64 arithmetic."""
    def corners(boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        boxes = boxes.float()
        xy, wh = boxes[..., :2].double(), (boxes[..., 2:] - boxes[..., :2]).double()  # wh rounded in float32
        return xy, wh

    xy1, wh1 = corners(boxes1)
    xy2, wh2 = corners(boxes2)
    size = (torch.minimum(xy1 + wh1, xy2 + wh2) - torch.maximum(xy1, xy2)).clamp(min=0)  # (..., 2)
    inter = size.prod(-1)
    union = wh1.prod(-1) + wh2.prod(-1) - inter
    return torch.where(inter > 0, inter / torch.where(inter > 0, union, 1), 0)


def _rank_in_group(group: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For a sorted ``group (N,)`` of ids: each element's position inside its group, and the group sizes."""
    _, counts = torch.unique_consecutive(group, return_counts=True)
    starts = torch.repeat_interleave(counts.cumsum(0) - counts, counts)  # (N,)
    return torch.arange(len(group)) - starts, counts


def match_detections(det_boxes: torch.Tensor, det_valid: torch.Tensor, gt_boxes: torch.Tensor,
                     gt_valid: torch.Tensor, iou_thresholds: torch.Tensor) -> torch.Tensor:
    """Greedy COCO matching in P groups (one image and class each) at once.

    Args:
        det_boxes: (P, D, 4) xyxy detections of each group, by decreasing score (padding anywhere valid).
        det_valid: (P, D) bool, False on padding.
        gt_boxes: (P, G, 4) xyxy ground truths of each group.
        gt_valid: (P, G) bool, False on padding.
        iou_thresholds: (T,) float64.

    Returns:
        (T, P, D) bool: whether each detection is matched (a true positive) at each threshold.
    """
    ious = coco_box_iou(det_boxes[:, :, None], gt_boxes[:, None, :])  # (P, D, G)
    ious = torch.where(det_valid[:, :, None] & gt_valid[:, None, :], ious, -1.0)  # padding never matches
    needed = iou_thresholds.clamp(max=1 - 1e-10)[:, None, None]  # (T, 1, 1)
    num_groups, num_dets, num_gts = ious.shape
    matched = torch.zeros(len(iou_thresholds), num_groups, num_dets, dtype=torch.bool)
    taken = torch.zeros(len(iou_thresholds), num_groups, num_gts, dtype=torch.bool)  # (T, P, G)
    if num_gts == 0:
        return matched
    ### BEGIN SOLUTION
    for d in range(num_dets):  # detections in score order: a higher score chooses first
        candidates = ious[:, d][None].expand_as(taken)  # (T, P, G)
        allowed = (candidates >= needed) & ~taken
        best = torch.where(allowed, candidates, -2.0).flip(-1).argmax(-1)  # (T, P): ties go to the last gt
        best = num_gts - 1 - best
        found = allowed.any(-1)  # (T, P)
        matched[:, :, d] = found
        taken |= F.one_hot(best, num_gts).bool() & found[..., None]  # (T, P, G)
    ### END SOLUTION
    return matched


def average_precision(matched: torch.Tensor, num_targets: int, recall_thresholds: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """Interpolated precision and final recall of one class.

    Args:
        matched: (T, N) bool, the class's detections over the whole set by decreasing score.
        num_targets: number of ground-truth boxes of the class, at least 1.
        recall_thresholds: (R,) float64 recall levels.

    Returns:
        precision (T, R) float64 at each recall level (AP is its mean over R) and recall (T,).
    """
    num_thresholds, num_dets = matched.shape
    if num_dets == 0:
        zeros = torch.zeros(num_thresholds, dtype=torch.float64)
        return zeros[:, None].expand(-1, len(recall_thresholds)).clone(), zeros
    ### BEGIN SOLUTION
    tp = matched.double().cumsum(1)  # (T, N)
    fp = (~matched).double().cumsum(1)
    recall = tp / num_targets
    precision = tp / (tp + fp + _EPS)
    precision = precision.flip(1).cummax(1).values.flip(1)  # the best precision at this recall or beyond
    index = torch.searchsorted(recall, recall_thresholds[None].expand(num_thresholds, -1).contiguous())  # (T, R)
    interpolated = precision.gather(1, index.clamp(max=num_dets - 1))
    interpolated = torch.where(index < num_dets, interpolated, 0.0)  # recall levels never reached
    ### END SOLUTION
    return interpolated, recall[:, -1]


def _flatten(items: list[dict[str, torch.Tensor]], scores: bool) -> tuple[torch.Tensor, ...]:
    """Concatenate per-image dicts: boxes (N, 4), labels (N,), image index (N,) and, if asked, scores (N,)."""
    boxes = torch.cat([item["boxes"].detach().cpu().reshape(-1, 4).float() for item in items])
    labels = torch.cat([item["labels"].detach().cpu().long().reshape(-1) for item in items])
    image = torch.repeat_interleave(torch.arange(len(items)), torch.tensor([len(item["labels"]) for item in items]))
    if not scores:
        return boxes, labels, image
    return boxes, labels, image, torch.cat([item["scores"].detach().cpu().double().reshape(-1) for item in items])


def _pad(values: torch.Tensor, group: torch.Tensor, rank: torch.Tensor, num_groups: int, width: int
         ) -> tuple[torch.Tensor, torch.Tensor]:
    """Scatter ``values (N, 4)`` into ``(num_groups, width, 4)`` at ``(group, rank)``, with a validity mask."""
    padded = torch.zeros(num_groups, width, 4)
    valid = torch.zeros(num_groups, width, dtype=torch.bool)
    padded[group, rank] = values
    valid[group, rank] = True
    return padded, valid


def _mean_valid(x: torch.Tensor) -> torch.Tensor:
    """COCO's summary: the mean of the entries > -1, or -1 when there are none."""
    valid = x[x > -1]
    return valid.mean() if valid.numel() else torch.tensor(-1.0, dtype=torch.float64)


def mean_average_precision(preds: list[dict[str, torch.Tensor]], targets: list[dict[str, torch.Tensor]],
                           iou_thresholds: list[float] | None = None, max_detections: int = 100
                           ) -> dict[str, torch.Tensor]:
    """COCO mAP of detections, equal to ``torchmetrics.detection.MeanAveragePrecision(box_format="xyxy",
    iou_type="bbox")`` (see the module docstring for the definition).

    Args:
        preds: one dict per image: ``boxes`` (K, 4) float xyxy, ``scores`` (K,) float, ``labels`` (K,) int.
        targets: one dict per image: ``boxes`` (N, 4) float xyxy, ``labels`` (N,) int.
        iou_thresholds: the IoU thresholds; ``None`` is COCO's 0.50:0.05:0.95.
        max_detections: the most detections per image and class that count (COCO: 100).

    Returns:
        ``map``, ``map_50``, ``map_75`` and ``mar_{max_detections}`` (float64 scalars, -1 when undefined),
        ``classes`` (C,) int64, the classes seen on either side; ``map_per_class`` (C,) (-1 for a class
        without ground truth); ``precision`` (T, R, C) float64 interpolated precision at ``recall_thresholds``
        (R,) for each of ``iou_thresholds`` (T,) (-1 for a class without ground truth); ``recall`` (T, C).
    """
    _check_lists(preds, targets)
    check_positive_int(max_detections, "max_detections")
    default_ious, recall_thresholds = coco_thresholds()
    thresholds = default_ious if iou_thresholds is None else torch.tensor(iou_thresholds, dtype=torch.float64)
    check_tensor(thresholds, "iou_thresholds", ndim=1)
    det_boxes, det_labels, det_image, det_scores = _flatten(preds, scores=True)
    gt_boxes, gt_labels, gt_image = _flatten(targets, scores=False)
    classes = torch.unique(torch.cat([det_labels, gt_labels]))  # (C,), sorted
    num_classes = len(classes)
    det_class, gt_class = torch.searchsorted(classes, det_labels), torch.searchsorted(classes, gt_labels)

    # Detections by (image, class), then by decreasing score (ties: input order); keep the best per group.
    order = det_scores.argsort(descending=True, stable=True)
    det_group = det_image * num_classes + det_class
    order = order[det_group[order].argsort(stable=True)]
    det_rank, _ = _rank_in_group(det_group[order])
    order, det_rank = order[det_rank < max_detections], det_rank[det_rank < max_detections]
    gt_group = gt_image * num_classes + gt_class
    gt_order = gt_group.argsort(stable=True)
    gt_rank, _ = _rank_in_group(gt_group[gt_order])

    groups = torch.unique(torch.cat([det_group[order], gt_group]))  # (P,) groups with anything in them
    det_slot = torch.searchsorted(groups, det_group[order])
    gt_slot = torch.searchsorted(groups, gt_group[gt_order])
    width_d = int(det_rank.max()) + 1 if len(order) else 0
    width_g = int(gt_rank.max()) + 1 if len(gt_order) else 0
    padded_dets, dets_valid = _pad(det_boxes[order], det_slot, det_rank, len(groups), width_d)
    padded_gts, gts_valid = _pad(gt_boxes[gt_order], gt_slot, gt_rank, len(groups), width_g)
    matched = match_detections(padded_dets, dets_valid, padded_gts, gts_valid, thresholds)  # (T, P, D)
    det_matched = torch.zeros(len(thresholds), len(det_scores), dtype=torch.bool)  # (T, all detections)
    det_matched[:, order] = matched[:, det_slot, det_rank]

    # One precision-recall curve per class, over the kept detections by decreasing score.
    kept = order.sort().values  # input order (image by image) ...
    kept = kept[det_scores[kept].argsort(descending=True, stable=True)]  # ... then by score: ties keep it
    num_targets = torch.bincount(gt_class, minlength=num_classes)
    precision = torch.full((len(thresholds), len(recall_thresholds), num_classes), -1.0, dtype=torch.float64)
    recall = torch.full((len(thresholds), num_classes), -1.0, dtype=torch.float64)
    for c in range(num_classes):
        if num_targets[c] == 0:
            continue
        of_class = kept[det_class[kept] == c]
        precision[:, :, c], recall[:, c] = average_precision(det_matched[:, of_class], int(num_targets[c]),
                                                             recall_thresholds)
    exact = {t: (thresholds == torch.tensor(t, dtype=torch.float64)).nonzero().flatten() for t in (0.5, 0.75)}
    return {
        "map": _mean_valid(precision),
        "map_50": _mean_valid(precision[exact[0.5]]),
        "map_75": _mean_valid(precision[exact[0.75]]),
        f"mar_{max_detections}": _mean_valid(recall),
        "map_per_class": torch.stack([_mean_valid(precision[:, :, c]) for c in range(num_classes)])
        if num_classes else torch.zeros(0, dtype=torch.float64),
        "classes": classes,
        "precision": precision,
        "recall": recall,
        "iou_thresholds": thresholds,
        "recall_thresholds": recall_thresholds,
    }


def detection_errors(pred: dict[str, torch.Tensor], target: dict[str, torch.Tensor], iou_threshold: float = 0.5
                     ) -> dict[str, torch.Tensor]:
    """Sort one image's detections and targets into the usual kinds of error, at one IoU threshold.

    Detections are visited by decreasing score, each matched to the best unmatched target of its class
    (as mAP does). Then: ``missed`` targets have no detection of any class above the threshold;
    ``wrong_class`` detections overlap a target of another class (and match none); ``duplicates`` overlap
    an already matched target of their class; ``background`` detections overlap no target.

    Returns:
        index tensors: ``missed`` into the targets, ``wrong_class``, ``duplicates`` and ``background`` into
        the detections, and ``matched`` (the true positives).
    """
    order = pred["scores"].argsort(descending=True, stable=True)
    ious = coco_box_iou(pred["boxes"][:, None], target["boxes"][None])  # (K, N)
    same_class = pred["labels"][:, None] == target["labels"][None]  # (K, N)
    taken = torch.zeros(len(target["boxes"]), dtype=torch.bool)
    kinds: dict[str, list[int]] = {"matched": [], "wrong_class": [], "duplicates": [], "background": []}
    for k in order.tolist():
        candidates = torch.where(same_class[k] & ~taken & (ious[k] >= iou_threshold), ious[k], -1.0)
        if len(candidates) and candidates.max() >= 0:
            taken[candidates.argmax()] = True
            kinds["matched"].append(k)
        elif (same_class[k] & (ious[k] >= iou_threshold)).any():
            kinds["duplicates"].append(k)
        elif (ious[k] >= iou_threshold).any():
            kinds["wrong_class"].append(k)
        else:
            kinds["background"].append(k)
    found = (ious >= iou_threshold).any(0)  # (N,): some detection, of any class, overlaps the target
    result = {kind: torch.tensor(indices, dtype=torch.int64) for kind, indices in kinds.items()}
    return {**result, "missed": (~found).nonzero().flatten()}
