"""Boxes and NMS against torchvision.ops: formats, areas, IoU, GIoU (values and gradients), nms and
batched_nms (same indices in the same order), edge cases and bad input."""

from __future__ import annotations

import pytest
import torch
import torchvision.ops as tvops

from vclib.detection import (
    batched_nms,
    box_area,
    box_convert,
    box_iou,
    generalized_box_iou,
    nms,
)


def random_boxes(n: int, seed: int, dtype: torch.dtype = torch.float64, scale: float = 50.0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=generator, dtype=dtype) * scale
    wh = torch.rand(n, 2, generator=generator, dtype=dtype) * scale / 2 + 0.5
    return torch.cat([xy, xy + wh], dim=1)  # (n, 4) xyxy


@pytest.mark.parametrize("in_fmt", ["xyxy", "xywh", "cxcywh"])
@pytest.mark.parametrize("out_fmt", ["xyxy", "xywh", "cxcywh"])
def test_box_convert_matches_torchvision(in_fmt, out_fmt) -> None:
    boxes = tvops.box_convert(random_boxes(7, 0), "xyxy", in_fmt)
    assert torch.allclose(box_convert(boxes, in_fmt, out_fmt), tvops.box_convert(boxes, in_fmt, out_fmt))
    batched = boxes.view(1, 7, 4).expand(3, 7, 4)  # leading dimensions are kept
    assert box_convert(batched, in_fmt, out_fmt).shape == (3, 7, 4)


@pytest.mark.exercise("vclib.detection.boxes._inter_union")
@pytest.mark.parametrize(("n", "m", "seed"), [(5, 9, 0), (1, 1, 1), (13, 3, 2), (0, 4, 3), (4, 0, 4)])
def test_area_iou_giou_match_torchvision(n, m, seed) -> None:
    a, b = random_boxes(n, seed), random_boxes(m, seed + 100)
    assert torch.allclose(box_area(a), tvops.box_area(a))
    assert box_iou(a, b).shape == (n, m)
    assert torch.allclose(box_iou(a, b), tvops.box_iou(a, b))
    assert torch.allclose(generalized_box_iou(a, b), tvops.generalized_box_iou(a, b))


@pytest.mark.exercise("vclib.detection.boxes._inter_union")
def test_giou_gradients_match_torchvision() -> None:
    a = random_boxes(6, 5).requires_grad_()
    b = random_boxes(4, 6).requires_grad_()
    weights = torch.randn(6, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ours = torch.autograd.grad((generalized_box_iou(a, b) * weights).sum(), (a, b))
    theirs = torch.autograd.grad((tvops.generalized_box_iou(a, b) * weights).sum(), (a, b))
    for g, h in zip(ours, theirs, strict=True):
        assert torch.allclose(g, h)
    assert torch.autograd.gradcheck(lambda x, y: generalized_box_iou(x, y), (a, b))


def test_degenerate_boxes_are_finite_and_flipped_boxes_raise() -> None:
    flat = torch.tensor([[1.0, 1.0, 1.0, 5.0], [2.0, 2.0, 2.0, 2.0]], requires_grad=True)  # zero width, a point
    iou, giou = box_iou(flat, flat), generalized_box_iou(flat, flat)
    assert torch.isfinite(iou).all() and torch.isfinite(giou).all()
    giou.sum().backward()
    assert torch.isfinite(flat.grad).all()
    normal = torch.tensor([[0.0, 0.0, 4.0, 4.0]])
    assert torch.allclose(box_iou(flat.detach(), normal), tvops.box_iou(flat.detach(), normal))
    flipped = torch.tensor([[5.0, 0.0, 1.0, 4.0]])
    for fn in (box_iou, generalized_box_iou):
        with pytest.raises(ValueError, match="boxes1"):
            fn(flipped, normal)
    with pytest.raises(ValueError, match="boxes"):
        box_area(torch.ones(3, 5))
    with pytest.raises(ValueError, match="in_fmt"):
        box_convert(normal, "xyhw", "xyxy")


def clustered(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Boxes around a few centres (so that many overlap), distinct scores and 3 categories."""
    generator = torch.Generator().manual_seed(seed)
    centres = torch.rand(4, 2, generator=generator) * 60
    xy = centres[torch.randint(0, 4, (n,), generator=generator)] + torch.randn(n, 2, generator=generator) * 4
    wh = 10 + torch.rand(n, 2, generator=generator) * 10
    boxes = torch.cat([xy - wh / 2, xy + wh / 2], dim=1)
    return boxes, torch.randperm(n, generator=generator).float() / n, torch.randint(0, 3, (n,), generator=generator)


@pytest.mark.exercise("vclib.detection.boxes.nms")
@pytest.mark.parametrize("n", [0, 1, 2, 17, 200])
@pytest.mark.parametrize("iou_threshold", [0.0, 0.3, 0.5, 0.7, 1.0])
def test_nms_and_batched_nms_match_torchvision(n, iou_threshold) -> None:
    boxes, scores, idxs = clustered(n, seed=n)
    keep = nms(boxes, scores, iou_threshold)
    assert keep.dtype == torch.int64
    assert torch.equal(keep, tvops.nms(boxes, scores, iou_threshold))
    assert torch.equal(batched_nms(boxes, scores, idxs, iou_threshold),
                       tvops.batched_nms(boxes, scores, idxs, iou_threshold))


def test_nms_thresholds_at_the_ends() -> None:
    boxes, scores, _ = clustered(50, seed=3)
    assert len(nms(boxes, scores, 1.0)) == 50  # IoU never exceeds 1: nothing is removed
    kept = boxes[nms(boxes, scores, 0.0)]
    assert (box_iou(kept, kept).fill_diagonal_(0) == 0).all()  # at 0 no two kept boxes overlap
    with pytest.raises(ValueError, match="iou_threshold"):
        nms(boxes, scores, 1.5)
    with pytest.raises(ValueError, match="scores"):
        nms(boxes, scores[:-1], 0.5)
