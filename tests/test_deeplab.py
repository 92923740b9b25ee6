"""DeepLabv3: atrous convolution against a hand-dilated kernel, ASPP against torchvision's twin, the atrous
backbone's output stride, output shapes on odd sizes, and the effective receptive field."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.segmentation.deeplabv3 import ASPP as TorchvisionASPP

from vclib.segmentation import ASPP, DeepLabV3, UNet, dilate_kernel, effective_receptive_field


def _stuffed_by_hand(weight: torch.Tensor, rate: int) -> torch.Tensor:
    """A 3x3 kernel written tap by tap into a (2 rate + 1)-sized kernel of zeros."""
    out = torch.zeros(*weight.shape[:2], 2 * rate + 1, 2 * rate + 1, dtype=weight.dtype)
    for m in range(3):
        for n in range(3):
            out[..., rate * m, rate * n] = weight[..., m, n]
    return out


@pytest.mark.parametrize(("rate", "shape"), [(1, (2, 3, 9, 11)), (2, (1, 2, 13, 7)), (3, (2, 4, 17, 16)),
                                             (5, (1, 1, 12, 23))])
def test_atrous_conv_is_conv_with_zero_stuffed_kernel(rate, shape) -> None:
    generator = torch.Generator().manual_seed(rate)
    x = torch.randn(shape, generator=generator, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(5, shape[1], 3, 3, generator=generator, dtype=torch.float64, requires_grad=True)
    stuffed = _stuffed_by_hand(weight.detach(), rate)
    assert torch.equal(dilate_kernel(weight.detach(), rate), stuffed)
    atrous = F.conv2d(x, weight, padding=rate, dilation=rate)
    plain = F.conv2d(x, dilate_kernel(weight, rate), padding=rate)
    assert atrous.shape == (shape[0], 5, *shape[2:])  # padding = rate keeps the size of a 3x3 atrous conv
    torch.testing.assert_close(plain, atrous)
    grad_atrous = torch.autograd.grad(atrous.square().sum(), (x, weight))
    grad_plain = torch.autograd.grad(plain.square().sum(), (x, weight))  # gradients reach only the real taps
    for a, b in zip(grad_atrous, grad_plain, strict=True):
        torch.testing.assert_close(a, b)


def test_dilate_kernel_checks_arguments_and_keeps_non_square_kernels() -> None:
    weight = torch.randn(2, 3, 3, 5)
    assert dilate_kernel(weight, 2).shape == (2, 3, 5, 9)
    assert torch.equal(dilate_kernel(weight, 1), weight)
    with pytest.raises(ValueError, match="rate"):
        dilate_kernel(weight, 0)
    with pytest.raises(ValueError, match="weight"):
        dilate_kernel(weight[0], 2)


@pytest.mark.parametrize(("rates", "size"), [((6, 12, 18), (13, 13)), ((1, 2, 3), (7, 9)), ((2,), (5, 4))])
def test_aspp_matches_torchvision(rates, size) -> None:
    ours, theirs = ASPP(8, rates, out_channels=6), TorchvisionASPP(8, rates, out_channels=6)
    theirs.load_state_dict(ours.state_dict())  # same module names, so the weights transfer
    for module in (*ours.modules(), *theirs.modules()):  # non-trivial batch-norm statistics for eval mode
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5, generator=torch.Generator().manual_seed(1))
            module.running_var.uniform_(0.5, 2.0, generator=torch.Generator().manual_seed(2))
    features = torch.randn(3, 8, *size, requires_grad=True)
    ours.eval(), theirs.eval()
    out_ours, out_theirs = ours(features), theirs(features)
    torch.testing.assert_close(out_ours, out_theirs)
    grad_ours, = torch.autograd.grad(out_ours.sum(), features)
    grad_theirs, = torch.autograd.grad(out_theirs.sum(), features)
    torch.testing.assert_close(grad_ours, grad_theirs)
    ours.train(), theirs.train()  # training mode: batch statistics; dropout off to compare
    ours.project[-1].p = theirs.project[-1].p = 0.0
    torch.testing.assert_close(ours(features), theirs(features))


def test_aspp_branch_shapes() -> None:
    aspp = ASPP(16, (2, 4, 6), out_channels=10).eval()
    features = torch.randn(2, 16, 11, 7)
    branches = aspp.branch_outputs(features)
    assert len(branches) == 5  # 1x1, three atrous 3x3, image pooling
    assert all(b.shape == (2, 10, 11, 7) for b in branches)
    pooled = branches[-1]
    torch.testing.assert_close(pooled, pooled[..., :1, :1].expand_as(pooled))  # one value per image, channel
    assert [branch[0].dilation for branch in aspp.convs[1:4]] == [(2, 2), (4, 4), (6, 6)]
    assert aspp(features).shape == (2, 10, 11, 7)


@pytest.mark.parametrize(("output_stride", "dilations", "feature_size"), [
    (32, [(1,), (1,), (1,), (1, 2)], 3),
    (16, [(1,), (1,), (1,), (2, 4)], 6),
    (8, [(1,), (1,), (2,), (4, 8)], 12),
])
def test_backbone_trades_strides_for_dilation(output_stride, dilations, feature_size) -> None:
    model = DeepLabV3(num_classes=4, base_channels=4, output_stride=output_stride, atrous_rates=(2, 4, 6),
                      multi_grid=(1, 2))
    assert model.backbone.dilations == dilations
    assert model.backbone(torch.randn(2, 3, 96, 96)).shape == (2, 32, feature_size, feature_size)
    assert model.atrous_rates == tuple(r * 16 // output_stride for r in (2, 4, 6))
    # same weights at every output stride: only strides and dilations differ
    assert sum(p.numel() for p in model.parameters()) == sum(
        p.numel() for p in DeepLabV3(num_classes=4, base_channels=4, atrous_rates=(2, 4, 6), multi_grid=(1, 2)
                                     ).parameters())


@pytest.mark.parametrize(("output_stride", "size"), [(8, (33, 47)), (16, (45, 31)), (32, (37, 37)), (8, (1, 5))])
def test_deeplab_output_shape_on_odd_sizes(output_stride, size) -> None:
    model = DeepLabV3(num_classes=11, base_channels=4, output_stride=output_stride, atrous_rates=(2, 4, 6))
    images = torch.randn(2, 3, *size)
    scores = model(images)
    assert scores.shape == (2, 11, *size)
    scores.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_deeplab_checks_arguments() -> None:
    with pytest.raises(ValueError, match="output_stride"):
        DeepLabV3(output_stride=4)
    with pytest.raises(ValueError, match="atrous_rates"):
        DeepLabV3(output_stride=32, atrous_rates=(1, 2, 3))  # 1 * 16 / 32 is not a whole rate
    with pytest.raises(ValueError, match="multi_grid"):
        DeepLabV3(multi_grid=())
    with pytest.raises(ValueError, match="images"):
        DeepLabV3(in_channels=1)(torch.randn(1, 3, 32, 32))


def _single_conv(dilation: int, seed: int = 0) -> nn.Conv2d:
    conv = nn.Conv2d(2, 3, 3, padding=dilation, dilation=dilation)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=torch.Generator().manual_seed(seed)))
    return conv


def test_erf_of_one_3x3_conv_is_its_3x3_support() -> None:
    erf, radius = effective_receptive_field(_single_conv(1), (15, 12), num_samples=3, in_channels=2)
    assert erf.shape == (15, 12)
    support = erf > 0
    expected = torch.zeros(15, 12, dtype=torch.bool)
    expected[6:9, 5:8] = True  # the centre is (15 // 2, 12 // 2) = (7, 6)
    assert torch.equal(support, expected)
    torch.testing.assert_close(erf.sum(), torch.tensor(1.0))
    assert 0 < radius <= 2**0.5


def test_erf_grows_with_dilation() -> None:
    maps = {r: effective_receptive_field(_single_conv(r), 21, num_samples=2, class_index=0, in_channels=2)
            for r in (1, 2, 3)}
    for rate, (erf, radius) in maps.items():
        rows, cols = torch.nonzero(erf, as_tuple=True)
        assert sorted(set(rows.tolist())) == [10 - rate, 10, 10 + rate]  # taps `rate` pixels apart
        # one conv, same weights: the map is the same 9 values moved rate times further out
        assert radius == pytest.approx(rate * maps[1][1], rel=1e-6)
        torch.testing.assert_close(erf[10 - rate :: rate, 10 - rate :: rate][:3, :3], maps[1][0][9:12, 9:12])
    stacked = {r: nn.Sequential(_single_conv(1), nn.Conv2d(3, 3, 3, padding=r, dilation=r)) for r in (1, 2)}
    radii = {r: effective_receptive_field(model, 21, class_index=0, in_channels=2)[1] for r, model in stacked.items()}
    assert radii[2] > radii[1]


def test_erf_of_deeplab_spans_the_image_through_image_pooling() -> None:
    model = DeepLabV3(num_classes=3, base_channels=4, output_stride=8, atrous_rates=(1, 2, 3), multi_grid=(1,))
    images = torch.randn(4, 3, 64, 48, generator=torch.Generator().manual_seed(0))
    erf, radius = effective_receptive_field(model, (64, 48), images=images, class_index=2)
    assert erf.shape == (64, 48)
    assert (erf > 0).all()  # the image-level branch sees every pixel, far beyond the atrous taps
    assert radius > 10
    with pytest.raises(ValueError, match="class_index"):
        effective_receptive_field(model, (64, 48), images=images, class_index=3)
    with pytest.raises(ValueError, match="images"):
        effective_receptive_field(model, 32, images=images)


def test_erf_of_unet_covers_more_than_a_conv_and_leaves_model_state() -> None:
    model = UNet(3, 4, base_channels=4, depth=3).train()
    erf, radius = effective_receptive_field(model, 32, num_samples=2)
    assert model.training and all(p.grad is None for p in model.parameters())
    assert (erf > 0).sum() > 9 and radius > 2**0.5
