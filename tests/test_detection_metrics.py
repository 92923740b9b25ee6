"""COCO mAP against torchmetrics' MeanAveragePrecision (pycocotools backend), computed at test time:
random detections, images without targets or predictions, classes on one side only, tied scores, and a
hand-worked example."""

from __future__ import annotations

import pytest
import torch
from torchmetrics.detection import MeanAveragePrecision

from vclib.detection import mean_average_precision


def random_set(seed: int, images: int = 25, classes: int = 4, ties: bool = False):
    generator = torch.Generator().manual_seed(seed)
    preds, targets = [], []
    for _ in range(images):
        num_targets = int(torch.randint(0, 6, (1,), generator=generator))
        num_preds = int(torch.randint(0, 15, (1,), generator=generator))
        xy = torch.rand(num_targets, 2, generator=generator) * 80
        target_boxes = torch.cat([xy, xy + 5 + torch.rand(num_targets, 2, generator=generator) * 30], 1)
        target_labels = torch.randint(0, classes, (num_targets,), generator=generator)
        xy = torch.rand(num_preds, 2, generator=generator) * 80
        pred_boxes = torch.cat([xy, xy + 5 + torch.rand(num_preds, 2, generator=generator) * 30], 1)
        pred_labels = torch.randint(0, classes + 1, (num_preds,), generator=generator)  # class 4: predictions only
        hits = min(num_targets, num_preds)  # the first predictions are noisy copies of the targets
        pred_boxes[:hits] = target_boxes[:hits] + torch.randn(hits, 4, generator=generator) * 3
        pred_boxes[:, 2:] = torch.maximum(pred_boxes[:, 2:], pred_boxes[:, :2] + 1)
        keep_label = torch.rand(hits, generator=generator) < 0.8
        pred_labels[:hits] = torch.where(keep_label, target_labels[:hits], pred_labels[:hits])
        scores = torch.rand(num_preds, generator=generator) * 0.7
        scores[:hits] += 0.3  # copies tend to score higher than the random boxes
        if ties:
            scores = (scores * 4).round() / 4
        preds.append({"boxes": pred_boxes, "scores": scores, "labels": pred_labels})
        targets.append({"boxes": target_boxes, "labels": target_labels})
    targets[0] = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}  # no targets
    preds[1] = {"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": torch.zeros(0, dtype=torch.int64)}
    targets[2]["labels"][:] = classes + 2  # class 6: targets only, never predicted
    return preds, targets


def reference(preds, targets) -> dict:
    metric = MeanAveragePrecision(box_format="xyxy", iou_type="bbox", class_metrics=True, extended_summary=True)
    metric.update(preds, targets)
    return metric.compute()


@pytest.mark.exercise("vclib.detection.metrics.match_detections", "vclib.detection.metrics.average_precision")
@pytest.mark.parametrize(("seed", "ties"), [(0, False), (1, False), (2, True), (3, True)])
def test_map_matches_torchmetrics(seed, ties) -> None:
    preds, targets = random_set(seed, ties=ties)
    ours, theirs = mean_average_precision(preds, targets), reference(preds, targets)
    for key in ("map", "map_50", "map_75", "mar_100"):
        assert abs(float(ours[key]) - float(theirs[key])) < 1e-6, key
    assert 0.05 < float(ours["map_50"]) < 0.95  # a case where matching matters, not all 0 or 1
    assert torch.equal(ours["classes"], theirs["classes"].long())
    assert torch.allclose(ours["map_per_class"].float(), theirs["map_per_class"].flatten(), atol=1e-6)
    assert (ours["map_per_class"][ours["classes"] == 4] == -1).all()  # predicted only: no AP
    assert (ours["map_per_class"][ours["classes"] == 6] == 0).all()  # never predicted: AP 0
    precision = theirs["precision"][:, :, :, 0, -1].double()  # (T, R, K), area "all", 100 detections
    assert torch.allclose(ours["precision"], precision, atol=1e-9)


def test_map_with_iou_thresholds_and_degenerate_inputs() -> None:
    preds, targets = random_set(4)
    metric = MeanAveragePrecision(box_format="xyxy", iou_type="bbox", iou_thresholds=[0.3, 0.5, 0.75])
    metric.update(preds, targets)
    theirs = metric.compute()
    ours = mean_average_precision(preds, targets, iou_thresholds=[0.3, 0.5, 0.75])
    for key in ("map", "map_50", "map_75"):
        assert abs(float(ours[key]) - float(theirs[key])) < 1e-6, key
    empty = {"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": torch.zeros(0, dtype=torch.int64)}
    no_target = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}
    nothing = mean_average_precision([empty], [no_target])
    assert float(nothing["map"]) == -1 and nothing["classes"].numel() == 0


def test_map_of_a_hand_worked_example() -> None:
    # Two targets; detections by score: hit, miss, hit. Precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1.
    box = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    far = torch.tensor([[50.0, 50.0, 60.0, 60.0]])
    targets = [{"boxes": torch.cat([box, box + 20]), "labels": torch.tensor([1, 1])}]
    preds = [{"boxes": torch.cat([box, far, box + 20]), "scores": torch.tensor([0.9, 0.8, 0.7]),
              "labels": torch.tensor([1, 1, 1])}]
    result = mean_average_precision(preds, targets)
    expected = (51 * 1.0 + 50 * 2 / 3) / 101  # recall levels 0..0.5 see precision 1, 0.51..1 see 2/3
    assert abs(float(result["map"]) - expected) < 1e-9 and abs(float(result["map_50"]) - expected) < 1e-9


def test_map_rejects_bad_input() -> None:
    preds, targets = random_set(5, images=3)
    with pytest.raises(ValueError, match="one dict per image"):
        mean_average_precision(preds[:2], targets)
    with pytest.raises(ValueError, match=r"preds\[0\]"):
        mean_average_precision([{"boxes": torch.zeros(1, 4)}] + preds[1:], targets)
    bad = [{**t, "boxes": t["boxes"][:, [2, 1, 0, 3]]} if len(t["boxes"]) else t for t in targets]
    with pytest.raises(ValueError, match="x1 <= x2"):
        mean_average_precision(preds, bad)
