"""YOLOv3: output shapes, target assignment on hand-made boxes, decode inverting the encoding, the loss
(parts, ignore rule), postprocess against the from-scratch NMS, and an overfit run on two digit scenes."""

from __future__ import annotations

import math

import pytest
import torch

from vclib.detection import (
    YOLOv3,
    batched_nms,
    box_iou,
    build_targets,
    collate_digit_detection,
    decode,
    postprocess,
    yolo_loss,
)

ANCHORS = torch.tensor([[4.0, 4], [8, 8], [12, 12], [16, 16], [24, 24], [32, 32], [40, 40], [48, 48], [60, 60]])
STRIDES = (8, 16, 32)


def test_yolov3_outputs_one_tensor_per_stride() -> None:
    torch.manual_seed(0)
    model = YOLOv3(7, ANCHORS, width=4, depths=(1, 1, 1, 1, 1))
    outputs = model(torch.rand(2, 3, 64, 96))
    assert [tuple(o.shape) for o in outputs] == [(2, 3, 8, 12, 12), (2, 3, 4, 6, 12), (2, 3, 2, 3, 12)]
    objectness = torch.cat([o[..., 4].flatten() for o in outputs]).sigmoid()
    assert objectness.mean() < 0.05  # the prior bias: few confident boxes before training
    with pytest.raises(ValueError, match="divisible by 32"):
        model(torch.rand(1, 3, 50, 64))
    assert YOLOv3(7, ANCHORS, strides=(4, 8, 16), width=4, depths=(1, 1, 1, 1)).strides == (4, 8, 16)
    with pytest.raises(ValueError, match="strides"):
        YOLOv3(7, ANCHORS, strides=(4, 8, 16))
    with pytest.raises(ValueError, match="anchors"):
        YOLOv3(7, ANCHORS[:8])


@pytest.mark.exercise("vclib.detection.targets.encode_boxes")
def test_build_targets_on_hand_made_boxes() -> None:
    boxes = [torch.tensor([[15.0, 7.0, 25.0, 17.0], [30.0, 30.0, 62.0, 62.0]]), torch.zeros(0, 4)]
    labels = [torch.tensor([3, 1]), torch.zeros(0, dtype=torch.int64)]
    targets = build_targets(boxes, labels, ANCHORS, STRIDES, 64)
    small, medium, large = targets["levels"]
    assert small["mask"].shape == (2, 3, 8, 8) and large["mask"].shape == (2, 3, 2, 2)
    # 10 x 10 box centred at (20, 12): best anchor 12 x 12 (IoU 100/144), the third of stride 8; cell (row 1, col 2)
    assert small["mask"].nonzero().tolist() == [[0, 2, 1, 2]]
    assert torch.allclose(small["offsets"][0, 2, 1, 2], torch.tensor([0.5, 0.5]))
    assert torch.allclose(small["log_wh"][0, 2, 1, 2], torch.full((2,), math.log(10 / 12)))
    assert small["labels"][0, 2, 1, 2] == 3
    # 32 x 32 box centred at (46, 46): anchor 32 x 32, the third of stride 16; cell (2, 2), offsets 14/16
    assert medium["mask"].nonzero().tolist() == [[0, 2, 2, 2]]
    assert torch.allclose(medium["offsets"][0, 2, 2, 2], torch.tensor([0.875, 0.875]))
    assert torch.allclose(medium["log_wh"][0, 2, 2, 2], torch.zeros(2))
    assert torch.equal(medium["boxes"][0, 2, 2, 2], boxes[0][1])
    assert not large["mask"].any()
    assert targets["gt_valid"].tolist() == [[True, True], [False, False]]
    with pytest.raises(ValueError, match="multiple of every stride"):
        build_targets(boxes, labels, ANCHORS, STRIDES, 60)
    with pytest.raises(ValueError, match=r"labels\[0\]"):
        build_targets(boxes, [labels[0][:1], labels[1]], ANCHORS, STRIDES, 64)


def encode_as_outputs(targets: dict, num_classes: int) -> list[torch.Tensor]:
    """Raw outputs that decode exactly to the targets: logit of the offsets, log of the size ratios."""
    outputs = []
    for level in targets["levels"]:
        raw = torch.full((*level["mask"].shape, 5 + num_classes), -12.0, dtype=torch.float64)
        mask = level["mask"]
        raw[mask, :2] = torch.logit(level["offsets"][mask].double())
        raw[mask, 2:4] = level["log_wh"][mask].double()
        raw[mask, 4] = 12.0
        raw[mask, 5 + level["labels"][mask]] = 12.0
        outputs.append(raw)
    return outputs


@pytest.mark.exercise("vclib.detection.targets.decode_boxes", "vclib.detection.targets.encode_boxes")
def test_decode_inverts_build_targets() -> None:
    generator = torch.Generator().manual_seed(0)
    centres = torch.rand(6, 2, generator=generator) * 90 + 3
    sizes = torch.rand(6, 2, generator=generator) * 50 + 4
    all_boxes = torch.cat([centres - sizes / 2, centres + sizes / 2], 1)
    boxes, labels = [all_boxes[:4], all_boxes[4:]], [torch.tensor([0, 1, 2, 3]), torch.tensor([4, 0])]
    targets = build_targets(boxes, labels, ANCHORS, STRIDES, 96)
    assert sum(int(level["mask"].sum()) for level in targets["levels"]) == 6  # every box has its own anchor
    decoded = decode(encode_as_outputs(targets, 5), ANCHORS, STRIDES)  # (2, N, 10)
    assert decoded.shape == (2, 3 * (12 * 12 + 6 * 6 + 3 * 3), 10)
    responsible = torch.cat([level["mask"].flatten(1, 3) for level in targets["levels"]], dim=1)  # (2, N)
    expected = torch.cat([level["boxes"].flatten(1, 3) for level in targets["levels"]], dim=1)[responsible]
    assert torch.allclose(decoded[responsible][:, :4], expected.double(), atol=1e-4)
    detections = postprocess(decoded.float(), conf_threshold=0.5)
    for image, found in enumerate(detections):
        assert torch.allclose(found["boxes"].sort(0).values, boxes[image].sort(0).values, atol=1e-3)
        assert sorted(found["labels"].tolist()) == sorted(labels[image].tolist())


@pytest.mark.exercise("vclib.detection.loss.yolo_loss")
def test_yolo_loss_parts_and_ignore_rule() -> None:
    boxes, labels = [torch.tensor([[10.0, 10.0, 30.0, 30.0]])], [torch.tensor([2])]
    targets = build_targets(boxes, labels, ANCHORS, STRIDES, 64)
    perfect = encode_as_outputs(targets, 4)
    total, parts = yolo_loss(perfect, targets)
    assert set(parts) == {"box", "obj", "cls"} and parts["box"] < 1e-8 and total < 0.02
    level, (_, anchor, row, col) = 1, targets["levels"][1]["mask"].nonzero()[0].tolist()
    assert (anchor, row, col) == (1, 1, 1)  # the 20 x 20 box matches anchor 24 x 24: stride 16, second anchor
    # A second box on the object from stride 8 (anchor 12 x 12, cell (2, 2) holds the centre (20, 20)).
    overlapping = [o.clone() for o in perfect]
    overlapping[0][0, 2, 2, 2, :4] = torch.tensor([0.0, 0.0, math.log(20 / 12), math.log(20 / 12)])  # same box
    overlapping[0][0, 2, 2, 2, 4] = 3.0  # confident, not responsible: ignored (IoU 1 > 0.5)
    assert abs(yolo_loss(overlapping, targets)[1]["obj"] - parts["obj"]) < 1e-4  # (it was at 1e-5 before)
    overlapping[0][0, 2, 2, 2, 2:4] = math.log(2 / 12)  # now a 2 x 2 box: IoU < 0.5, pushed down
    pushed = yolo_loss(overlapping, targets, noobj_weight=0.5)[1]["obj"]
    background = yolo_loss(perfect, targets, noobj_weight=0.5)[1]["obj"]
    assert torch.allclose(pushed - background, 0.5 * torch.nn.functional.softplus(torch.tensor(3.0)).double(),
                          atol=1e-4)  # 0.5 x BCE(logit 3, target 0)
    wrong_class = [o.clone() for o in perfect]
    wrong_class[level][0, anchor, row, col, 5:] = torch.tensor([8.0, -8, -8, -8])
    assert yolo_loss(wrong_class, targets)[1]["cls"] > 10
    assert torch.allclose(yolo_loss(wrong_class, targets)[1]["box"], parts["box"])


def test_postprocess_uses_nms_like_the_from_scratch_one() -> None:
    generator = torch.Generator().manual_seed(1)
    xy = torch.rand(1, 300, 2, generator=generator) * 60
    decoded = torch.cat([xy, xy + 10 + torch.rand(1, 300, 2, generator=generator) * 20,
                         torch.rand(1, 300, 4, generator=generator)], dim=-1)  # (1, 300, 5 + 3)
    [result] = postprocess(decoded, conf_threshold=0.2, iou_threshold=0.5, max_det=300)
    scores, labels = (decoded[0, :, 4:5] * decoded[0, :, 5:]).max(1)
    kept = scores > 0.2
    ours = batched_nms(decoded[0, kept, :4], scores[kept], labels[kept], 0.5)
    assert torch.equal(result["boxes"], decoded[0, kept, :4][ours])
    assert (result["scores"] > 0.2).all() and (result["scores"].diff() <= 0).all()
    assert len(postprocess(decoded, conf_threshold=0.2, max_det=5)[0]["boxes"]) == 5
    with pytest.raises(ValueError, match="conf_threshold"):
        postprocess(decoded, conf_threshold=2.0)


def test_overfit_two_scenes() -> None:
    from vclib.data.scenes import DigitScenes

    torch.manual_seed(0)
    scenes = DigitScenes("train", 2, size=96, source="embedded")
    images, targets = collate_digit_detection([scenes[0], scenes[1]])
    anchors = torch.tensor([[8.0, 17], [13, 17], [15, 25], [20, 20], [19, 29], [24, 28], [22, 36], [28, 34], [34, 36]])
    model = YOLOv3(10, anchors, width=8, depths=(1, 1, 2, 2, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    encoded = build_targets([t["boxes"] for t in targets], [t["labels"] for t in targets], anchors, STRIDES, 96)
    losses = []
    for _ in range(100):
        loss, _ = yolo_loss(model(images), encoded)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 10
    model.train(False)
    with torch.no_grad():
        detections = postprocess(decode(model(images), model.anchors, model.strides))
    for found, target in zip(detections, targets, strict=True):
        assert len(found["boxes"]) > 0
        ious = box_iou(target["boxes"], found["boxes"])  # (N, K)
        best = ious.argmax(1)
        assert (ious.max(1).values > 0.5).all()
        assert torch.equal(found["labels"][best], target["labels"])
