"""Segmentation: metrics against torchmetrics, max-unpooling against F.max_unpool2d, bilinear upsampling
against F.interpolate, FCN convolutionalisation, and model output shapes on odd sizes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex

from vclib.segmentation import (
    DigitVGG,
    FCN8s,
    FCN16s,
    FCN32s,
    SegNet,
    UNet,
    bilinear_upsampling,
    confusion_matrix,
    convolutionalize,
    max_unpool2d,
    segmentation_scores,
)


def _maps(seed: int, num_classes: int, shape: tuple[int, ...], ignored: float, absent: tuple[int, ...] = ()):
    generator = torch.Generator().manual_seed(seed)
    targets = torch.randint(0, num_classes, shape, generator=generator)
    preds = torch.where(torch.rand(shape, generator=generator) < 0.6, targets,
                        torch.randint(0, num_classes, shape, generator=generator))
    for c in absent:
        targets[targets == c] = (c + 1) % num_classes
        preds[preds == c] = (c + 2) % num_classes
    targets[torch.rand(shape, generator=generator) < ignored] = 255
    return preds, targets


@pytest.mark.exercise("vclib.segmentation.metrics.confusion_matrix", "vclib.segmentation.metrics.segmentation_scores")
@pytest.mark.parametrize(("seed", "num_classes", "shape", "ignored", "absent"), [
    (0, 5, (3, 17, 23), 0.1, ()),
    (1, 21, (2, 31, 9), 0.0, ()),
    (2, 6, (4, 8, 8), 0.3, (2, 4)),
    (3, 3, (1, 5, 7), 0.0, (0,)),
])
def test_scores_match_torchmetrics(seed, num_classes, shape, ignored, absent) -> None:
    preds, targets = _maps(seed, num_classes, shape, ignored, absent)
    confmat = confusion_matrix(preds, targets, num_classes)
    scores = segmentation_scores(confmat)
    miou = MulticlassJaccardIndex(num_classes, average="macro", ignore_index=255)(preds, targets)
    per_class = MulticlassJaccardIndex(num_classes, average="none", ignore_index=255)(preds, targets)
    accuracy = MulticlassAccuracy(num_classes, average="micro", ignore_index=255)(preds, targets)
    present = ~scores["iou"].isnan()
    assert torch.allclose(scores["miou"], miou, atol=1e-6)
    assert torch.allclose(scores["iou"][present], per_class[present], atol=1e-6)
    assert torch.allclose(scores["pixel_accuracy"], accuracy, atol=1e-6)
    assert present.sum() == num_classes - len(absent)


@pytest.mark.exercise("vclib.segmentation.metrics.confusion_matrix", "vclib.segmentation.metrics.segmentation_scores")
def test_confusion_matrix_counts_pairs() -> None:
    preds = torch.tensor([[0, 1, 1], [2, 2, 0]])
    targets = torch.tensor([[0, 1, 2], [2, 255, 1]])
    expected = torch.tensor([[1, 0, 0], [1, 1, 0], [0, 1, 1]])
    confmat = confusion_matrix(preds, targets, 3)
    assert confmat.dtype == torch.int64 and torch.equal(confmat, expected)
    scores = segmentation_scores(confmat)
    assert torch.isclose(scores["pixel_accuracy"], torch.tensor(3 / 5))
    assert torch.allclose(scores["dice"], torch.tensor([2 / 3, 2 / 4, 2 / 3]))


def test_all_ignored_pixels() -> None:
    preds, targets = torch.randint(0, 3, (2, 4, 5)), torch.full((2, 4, 5), 255)
    scores = segmentation_scores(confusion_matrix(preds, targets, 3))
    miou = MulticlassJaccardIndex(3, average="macro", ignore_index=255)(preds, targets)
    accuracy = MulticlassAccuracy(3, average="micro", ignore_index=255)(preds, targets)
    assert scores["miou"].isnan() and miou.isnan()
    assert scores["pixel_accuracy"] == accuracy == 0


def test_metric_bad_inputs() -> None:
    with pytest.raises(ValueError, match="preds"):
        confusion_matrix(torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.long), 3)
    with pytest.raises(ValueError, match="same shape"):
        confusion_matrix(torch.zeros(2, 3, dtype=torch.long), torch.zeros(3, 2, dtype=torch.long), 3)
    with pytest.raises(ValueError, match="targets"):
        confusion_matrix(torch.zeros(2, dtype=torch.long), torch.tensor([0, 7]), 3)
    with pytest.raises(ValueError, match="confmat"):
        segmentation_scores(torch.zeros(2, 3))


@pytest.mark.exercise("vclib.segmentation.segnet.max_unpool2d")
@pytest.mark.parametrize("shape", [(2, 3, 8, 8), (1, 2, 7, 9), (3, 1, 5, 4)])
def test_max_unpool2d_matches_torch(shape) -> None:
    x = torch.randn(shape, dtype=torch.float64)
    pooled, indices = F.max_pool2d(x, 2, return_indices=True)
    a = pooled.clone().requires_grad_(True)
    b = pooled.clone().requires_grad_(True)
    ours = max_unpool2d(a, indices, shape[-2:])
    theirs = F.max_unpool2d(b, indices, kernel_size=2, output_size=shape[-2:])
    assert torch.equal(ours, theirs)
    weights = torch.randn_like(ours)
    (ours * weights).sum().backward()
    (theirs * weights).sum().backward()
    assert torch.allclose(a.grad, b.grad)


def test_max_unpool2d_bad_inputs() -> None:
    pooled, indices = F.max_pool2d(torch.randn(1, 1, 4, 4), 2, return_indices=True)
    with pytest.raises(ValueError, match="indices"):
        max_unpool2d(pooled, indices.int(), (4, 4))
    with pytest.raises(ValueError, match="indices"):
        max_unpool2d(pooled, indices, (2, 2))
    with pytest.raises(ValueError, match="output_size"):
        max_unpool2d(pooled, indices, (4,))


@pytest.mark.exercise("vclib.segmentation.fcn.bilinear_kernel")
@pytest.mark.parametrize("factor", [2, 4, 8])
def test_bilinear_upsampling_matches_interpolate(factor: int) -> None:
    layer = bilinear_upsampling(3, factor)
    assert layer.kernel_size == (2 * factor,) * 2 and layer.stride == (factor,) * 2 and layer.bias is None
    assert layer.padding == (factor // 2,) * 2 and layer.groups == 3
    x = torch.randn(2, 3, 6, 7)
    ours = layer(x)
    reference = F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)
    assert ours.shape == reference.shape
    inner = (..., slice(factor, -factor), slice(factor, -factor))
    assert torch.allclose(ours[inner], reference[inner], atol=1e-5)
    assert not torch.allclose(ours, reference, atol=1e-5)  # the border differs (zero padding)


@pytest.mark.exercise("vclib.segmentation.fcn.convolutionalize")
def test_convolutionalize_slides_the_linear_layer() -> None:
    linear = nn.Linear(4 * 3 * 3, 5)
    conv = convolutionalize(linear, 4, 3)
    x = torch.randn(2, 4, 3, 3)
    assert torch.allclose(conv(x)[:, :, 1, 1], linear(x.flatten(1)), atol=1e-5)
    with pytest.raises(ValueError, match="inputs"):
        convolutionalize(linear, 4, 2)


def test_fcn_backbone_reproduces_the_classifier() -> None:
    torch.manual_seed(0)
    classifier = DigitVGG().eval()
    backbone = classifier.to_backbone().eval()
    images = torch.rand(3, 3, 32, 32)
    head = backbone(images)[2]  # (3, hidden, 1, 1): fc7 activations
    features = images
    for stage in classifier.stages:
        features = stage(features)
    fc7 = F.relu(classifier.fc7(F.relu(classifier.fc6(features.flatten(1)))))
    assert torch.allclose(head.flatten(1), fc7, atol=1e-5)


@pytest.mark.parametrize("model", [UNet(3, 5, 4, 4), SegNet(3, 5, 4, 3)])
def test_unet_segnet_odd_sizes(model: nn.Module) -> None:
    out = model(torch.rand(2, 3, 67, 93))
    assert out.shape == (2, 5, 67, 93)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    with pytest.raises(ValueError, match="images"):
        model(torch.rand(2, 1, 32, 32))


@pytest.mark.parametrize("cls", [FCN8s, FCN16s, FCN32s])
def test_fcn_sizes(cls) -> None:
    model = cls(11, DigitVGG(base_channels=4, hidden_size=16).to_backbone())
    assert model(torch.rand(1, 3, 67, 93)).shape == (1, 11, 67, 93)
    assert model(torch.rand(1, 3, 32, 32)).shape == (1, 11, 32, 32)
    with pytest.raises(ValueError, match="at least 32"):
        model(torch.rand(1, 3, 31, 40))


def test_fcn_skips_start_at_zero_and_freeze() -> None:
    backbone = DigitVGG(base_channels=4, hidden_size=16).to_backbone()
    torch.manual_seed(0)
    coarse = FCN32s(11, backbone).eval()
    torch.manual_seed(0)
    fine = FCN8s(11, backbone).eval()
    x = torch.rand(1, 3, 64, 64)
    # FCN-8s starts as FCN-32s with its bilinear x32 replaced by x2, x2, x8: both are interpolations.
    assert fine(x).shape == coarse(x).shape
    fine.freeze_features().train()
    assert not any(p.requires_grad for p in fine.backbone.stages.parameters())
    assert not fine.backbone.stages[0][0][1].training and fine.score_head.training
