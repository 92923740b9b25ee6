"""DETR: position encoding, output shapes, the set loss (order invariance, perfect against shuffled
predictions, empty images), postprocessing without NMS, and an overfit run on two digit scenes."""

from __future__ import annotations

import math

import pytest
import torch

from vclib.detection import (
    DETR,
    box_convert,
    collate_digit_detection,
    detr_loss,
    detr_match_cost,
    hungarian_match,
    mean_average_precision,
    postprocess_detr,
    sine_position_encoding,
)
from vclib.detection.detr import normalise_targets, set_loss


def test_sine_position_encoding() -> None:
    pos = sine_position_encoding(3, 5, 16)
    assert pos.shape == (15, 16) and pos.dtype == torch.float32
    assert len(torch.unique(pos, dim=0)) == 15  # every cell gets its own code
    grid = pos.view(3, 5, 16)
    assert torch.equal(grid[:, 0, :8], grid[:, 4, :8])  # the first half depends on the row only
    assert torch.equal(grid[0, :, 8:], grid[2, :, 8:])  # the second half on the column only
    # channel 0 is sin of the normalised row 2 pi (r + 1) / H, channel 1 its cosine
    rows = 2 * math.pi * torch.arange(1, 4, dtype=torch.float64) / 3
    assert torch.allclose(grid[:, 0, 0].double(), rows.sin(), atol=1e-6)
    assert torch.allclose(grid[:, 0, 1].double(), rows.cos(), atol=1e-6)
    with pytest.raises(ValueError, match="embed_dim"):
        sine_position_encoding(3, 5, 6)


def test_detr_shapes_and_arguments() -> None:
    torch.manual_seed(0)
    model = DETR(7, num_queries=5, embed_dim=32, num_decoder_layers=3, backbone_width=8)
    outputs = model(torch.rand(2, 3, 64, 96))
    assert outputs["logits"].shape == (2, 5, 8) and outputs["boxes"].shape == (2, 5, 4)
    assert outputs["aux_logits"].shape == (3, 2, 5, 8) and outputs["aux_boxes"].shape == (3, 2, 5, 4)
    assert torch.equal(outputs["aux_boxes"][-1], outputs["boxes"])
    assert ((outputs["boxes"] > 0) & (outputs["boxes"] < 1)).all()
    with pytest.raises(ValueError, match="divisible by 8"):
        model(torch.rand(1, 3, 60, 64))
    with pytest.raises(ValueError, match="num_queries"):
        DETR(7, num_queries=0)
    with pytest.raises(ValueError, match="embed_dim"):
        DETR(7, embed_dim=30, num_heads=4)


def test_reference_points_place_each_query() -> None:
    torch.manual_seed(0)
    model = DETR(3, num_queries=4, embed_dim=32, backbone_width=8, reference_points=True)
    with torch.no_grad():
        model.box_head[-1].weight.zero_()
        model.box_head[-1].bias.zero_()
        outputs = model(torch.rand(2, 3, 32, 32))
        reference = model.reference(model.query_embed.weight).sigmoid()  # (N, 2)
    assert torch.allclose(outputs["boxes"][..., :2], reference.expand(2, 4, 2), atol=1e-6)
    assert torch.allclose(outputs["boxes"][..., 2:], torch.full((2, 4, 2), 0.5))
    assert DETR(3, embed_dim=32).reference is None  # plain DETR has none


def _random_targets(generator: torch.Generator, counts: list[int], num_classes: int) -> list[dict[str, torch.Tensor]]:
    targets = []
    for count in counts:
        centres = 0.2 + 0.6 * torch.rand(count, 2, generator=generator)
        sizes = 0.05 + 0.3 * torch.rand(count, 2, generator=generator)
        targets.append({"boxes": torch.cat([centres, sizes], 1),
                        "labels": torch.randint(0, num_classes, (count,), generator=generator)})
    return targets


def test_set_loss_does_not_depend_on_the_order_of_targets() -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 6, 5, generator=generator)
    boxes = torch.rand(3, 6, 4, generator=generator) * 0.5 + 0.1
    targets = _random_targets(generator, [4, 0, 2], num_classes=4)
    shuffled = []
    for t in targets:
        perm = torch.randperm(len(t["labels"]), generator=generator)
        shuffled.append({"boxes": t["boxes"][perm], "labels": t["labels"][perm]})
    loss, parts = set_loss(logits, boxes, targets)
    loss_shuffled, parts_shuffled = set_loss(logits, boxes, shuffled)
    assert loss.item() == pytest.approx(loss_shuffled.item(), rel=1e-6)
    for name in parts:
        assert parts[name].item() == pytest.approx(parts_shuffled[name].item(), rel=1e-6, abs=1e-7)
    # and the order of the queries does not matter either (the queries are a set too)
    perm = torch.randperm(6, generator=generator)
    assert set_loss(logits[:, perm], boxes[:, perm], targets)[0].item() == pytest.approx(loss.item(), rel=1e-6)


def _perfect_predictions(targets: list[dict[str, torch.Tensor]], num_queries: int, num_classes: int,
                         generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and boxes that put each target, confidently, at a random query, and "no object" elsewhere."""
    logits = torch.full((len(targets), num_queries, num_classes + 1), -10.0)
    logits[..., -1] = 10.0
    boxes = torch.rand(len(targets), num_queries, 4, generator=generator) * 0.5 + 0.1
    for b, t in enumerate(targets):
        slots = torch.randperm(num_queries, generator=generator)[: len(t["labels"])]
        boxes[b, slots] = t["boxes"]
        logits[b, slots, -1] = -10.0
        logits[b, slots, t["labels"]] = 10.0
    return logits, boxes


def test_perfect_predictions_cost_less_than_shuffled_ones() -> None:
    generator = torch.Generator().manual_seed(1)
    targets = _random_targets(generator, [3, 4, 1], num_classes=5)
    logits, boxes = _perfect_predictions(targets, 8, 5, generator)
    loss, parts = set_loss(logits, boxes, targets)
    assert loss.item() < 1e-3 and parts["l1"].item() < 1e-6 and parts["giou"].item() < 1e-5
    # the same predictions with their classes shuffled between queries, or their boxes moved
    wrong_classes = logits[:, torch.randperm(8, generator=generator)]
    assert set_loss(wrong_classes, boxes, targets)[0].item() > 1.0
    moved = (boxes + 0.1).clamp(max=0.95)
    assert set_loss(logits, moved, targets)[0].item() > loss.item() + 0.5
    # the auxiliary losses add one set loss per earlier decoder layer
    outputs = {"logits": logits, "boxes": moved, "aux_logits": torch.stack([logits, logits]),
               "aux_boxes": torch.stack([boxes, moved])}
    total, _ = detr_loss(outputs, targets)
    assert total.item() == pytest.approx(set_loss(logits, moved, targets)[0].item() + loss.item(), rel=1e-5)
    assert detr_loss(outputs, targets, aux_loss=False)[0].item() == pytest.approx(
        set_loss(logits, moved, targets)[0].item(), rel=1e-6)


def test_empty_images_are_trained_to_say_no_object() -> None:
    logits = torch.zeros(2, 4, 3, requires_grad=True)
    boxes = torch.full((2, 4, 4), 0.5, requires_grad=True)
    empty = [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}] * 2
    loss, parts = set_loss(logits, boxes, empty)
    assert parts["l1"].item() == 0 and parts["giou"].item() == 0
    loss.backward()
    assert (logits.grad[..., -1] < 0).all()  # gradient descent raises "no object" everywhere
    assert torch.equal(boxes.grad, torch.zeros_like(boxes))


def test_no_object_weight_reweights_the_empty_queries() -> None:
    generator = torch.Generator().manual_seed(2)
    targets = _random_targets(generator, [1], num_classes=3)
    logits = torch.randn(1, 5, 4, generator=generator)
    boxes = torch.rand(1, 5, 4, generator=generator) * 0.5 + 0.1
    cost = detr_match_cost(logits[0], boxes[0], targets[0]["labels"], targets[0]["boxes"])
    query = int(hungarian_match(cost)[0][0])
    log_probs = logits[0].log_softmax(-1)  # (5, 4)
    losses = -log_probs[:, -1]  # every query but the matched one should say "no object" ...
    losses[query] = -log_probs[query, targets[0]["labels"][0]]  # ... the matched one, the object's class
    weights = torch.full((5,), 0.1)
    weights[query] = 1.0
    expected = (weights * losses).sum() / weights.sum()  # cross-entropy's weighted mean
    _, parts = set_loss(logits, boxes, targets, no_object_weight=0.1)
    assert parts["class"].item() == pytest.approx(expected.item(), rel=1e-5)
    _, unweighted = set_loss(logits, boxes, targets, no_object_weight=1.0)
    assert unweighted["class"].item() == pytest.approx(losses.mean().item(), rel=1e-5)


def test_postprocess_without_nms() -> None:
    logits = torch.tensor([[[0.0, 5.0, 0.0], [4.0, 0.0, 0.0], [0.0, 0.0, 9.0]]])  # 2 classes, "no object" last
    boxes = torch.tensor([[[0.5, 0.5, 0.2, 0.4], [0.1, 0.1, 0.4, 0.4], [0.5, 0.5, 0.1, 0.1]]])
    (result,) = postprocess_detr({"logits": logits, "boxes": boxes}, (50, 100))
    assert result["labels"].tolist() == [1, 0, 0] and len(result["scores"]) == 3  # one per query, sorted
    assert torch.equal(result["scores"], result["scores"].sort(descending=True).values)
    assert torch.allclose(result["boxes"][0], torch.tensor([40.0, 15.0, 60.0, 35.0]))
    assert torch.allclose(result["boxes"][1], torch.tensor([0.0, 0.0, 30.0, 15.0]))  # clipped at the image
    assert result["scores"][-1] < 0.01  # the "no object" query keeps a low score for every class


def test_overfit_two_scenes() -> None:
    from vclib.data.scenes import DigitScenes

    torch.manual_seed(0)
    scenes = DigitScenes("train", 2, size=96, source="embedded")
    images, targets = collate_digit_detection([scenes[0], scenes[1]])
    model = DETR(10, num_queries=6, embed_dim=64, backbone_width=16)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    normalised = normalise_targets(targets, (96, 96))
    losses = []
    for _ in range(150):
        loss, _ = detr_loss(model(images), normalised)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 5
    model.eval()
    with torch.no_grad():
        preds = postprocess_detr(model(images), (96, 96))
    assert mean_average_precision(preds, targets, iou_thresholds=[0.5])["map"] > 0.9
    assert box_convert(normalised[0]["boxes"], "cxcywh", "xyxy").shape == targets[0]["boxes"].shape
