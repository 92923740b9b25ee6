"""YOLOv3's loss: box, objectness and class terms, summed over the three heads.

- **Box**: the paper's regression, a sum of squared errors on the encoded box: ``sigmoid(tx), sigmoid(ty)``
  against the centre's offsets in its cell and ``tw, th`` against ``log(w / anchor_w), log(h / anchor_h)``,
  for the responsible anchors. GIoU (``1 - GIoU`` of the decoded boxes, as in YOLOv4) measures the overlap
  itself, but through ``exp(tw)`` a box that grows too large gets a vanishing gradient (GIoU is flat
  when one box contains the other) and can stay stuck; on this course's short schedules the squared error
  trains several times faster and never stalls (``tests/test_detection_yolo.py`` overfits two scenes).
- **Objectness**: binary cross-entropy, 1 for responsible anchors and 0 elsewhere, except that a
  prediction overlapping some ground truth with IoU > 0.5 that is not responsible for it is **ignored**
  (neither pushed up nor down), as in the paper. The hundreds of empty cells per object are weighted by
  ``noobj_weight`` (YOLOv1's lambda_noobj); 0.1 lets objectness rise at the few positives within a
  short schedule.
- **Classes**: independent binary cross-entropies (multi-label, no softmax), for responsible anchors.

Each term is summed over anchors and cells and divided by the batch size (Darknet sums too).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from vclib.detection.boxes import box_iou
from vclib.detection.targets import _anchor_groups, decode_boxes

IGNORE_IOU = 0.5


def _ignored(pred_boxes: torch.Tensor, gt_boxes: torch.Tensor, gt_valid: torch.Tensor) -> torch.Tensor:
    """``pred_boxes (B, A, H, W, 4)`` -> bool ``(B, A, H, W)``: best IoU with a ground truth of the image > 0.5."""
    if gt_boxes.shape[1] == 0:  # no ground truth in the whole batch
        return torch.zeros(pred_boxes.shape[:-1], dtype=torch.bool, device=pred_boxes.device)
    ious = box_iou(pred_boxes.flatten(1, 3), gt_boxes)  # (B, A * H * W, N_max)
    ious = ious.masked_fill(~gt_valid[:, None, :], 0)  # padding boxes overlap nothing
    return (ious.amax(-1) > IGNORE_IOU).view(pred_boxes.shape[:-1])


def yolo_loss(outputs: Sequence[torch.Tensor], targets: dict, box_weight: float = 1.0, obj_weight: float = 1.0,
              cls_weight: float = 1.0, noobj_weight: float = 0.1) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """YOLOv3 loss of raw head outputs against :func:`vclib.detection.build_targets`' result.

    Args:
        outputs: one (B, A, H / s, W / s, 5 + C) tensor of logits per stride.
        targets: the dict returned by ``build_targets`` for the same images.
        box_weight: weight of the box term in the total.
        obj_weight: weight of the objectness term.
        cls_weight: weight of the class term.
        noobj_weight: weight of the objectness loss of anchors that are not responsible (and not ignored).

    Returns:
        ``total`` (scalar, differentiable) and ``parts`` with the detached ``"box"``, ``"obj"`` and ``"cls"`` terms.
    """
    groups = _anchor_groups(targets["anchors"], targets["strides"])  # (L, A, 2)
    if len(outputs) != len(targets["levels"]):
        raise ValueError(f"outputs must have one tensor per stride, got {len(outputs)} for {len(targets['levels'])}")
    batch = outputs[0].shape[0]
    box = obj = cls = outputs[0].new_zeros(())
    ### BEGIN SOLUTION
    for raw, target, level_anchors, stride in zip(outputs, targets["levels"], groups, targets["strides"],
                                                  strict=True):
        mask = target["mask"]  # (B, A, H, W)
        if mask.any():
            positives = raw[mask]  # (n, 5 + C)
            box = box + F.mse_loss(positives[:, :2].sigmoid(), target["offsets"][mask], reduction="sum")
            box = box + F.mse_loss(positives[:, 2:4], target["log_wh"][mask], reduction="sum")
            onehot = F.one_hot(target["labels"][mask], raw.shape[-1] - 5).to(raw.dtype)  # (n, C)
            cls = cls + F.binary_cross_entropy_with_logits(positives[:, 5:], onehot, reduction="sum")
        with torch.no_grad():
            pred_boxes = decode_boxes(raw, level_anchors, stride)  # (B, A, H, W, 4)
            ignored = _ignored(pred_boxes, targets["gt_boxes"], targets["gt_valid"]) & ~mask
        objectness = F.binary_cross_entropy_with_logits(raw[..., 4], mask.to(raw.dtype), reduction="none")
        obj = obj + objectness[mask].sum() + noobj_weight * objectness[~ignored & ~mask].sum()
    box, obj, cls = box / batch, obj / batch, cls / batch
    ### END SOLUTION
    total = box_weight * box + obj_weight * obj + cls_weight * cls
    return total, {"box": box.detach(), "obj": obj.detach(), "cls": cls.detach()}
