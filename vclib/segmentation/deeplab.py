"""DeepLabv3 (Chen et al., 2017): atrous convolution, atrous spatial pyramid pooling (ASPP), and the
effective receptive field (Luo et al., 2016) that measures what they buy.

**Atrous (dilated) convolution.** A k x k convolution with rate ``r`` reads its k x k taps ``r`` pixels apart:

    y[i, j] = sum_{m, n} w[m, n] x[i + r m, j + r n]

It is an ordinary convolution whose kernel has ``r - 1`` zeros stuffed between neighbouring taps
(:func:`dilate_kernel`): a 3x3 kernel at rate ``r`` spans ``2r + 1`` pixels with the same 9 weights. A
classification backbone halves the resolution five times (output stride 32); DeepLab removes the last
strides and dilates the layers after them instead, so the features keep an output stride of 16 or 8 while
every layer still sees as far as it did with the strides: same weights, same field of view, denser output.

**ASPP** looks at the output-stride features at several scales at once: a 1x1 convolution, three 3x3 atrous
convolutions (rates 6, 12, 18 at output stride 16, doubled at 8) and an image-level branch (global average
pooling, 1x1 convolution, copied back to every position), each followed by batch norm and ReLU; the five
maps are concatenated and projected by a 1x1 convolution. The image-level branch is there because a 3x3
filter whose rate approaches the feature map's size sees mostly padding and degenerates to its centre tap.
The class scores (a 1x1 convolution) are upsampled bilinearly to the input size.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from vclib.checks import check_choice, check_positive_int, check_shape, check_tensor
from vclib.train import eval_mode

OUTPUT_STRIDES = (8, 16, 32)


def dilate_kernel(weight: torch.Tensor, rate: int) -> torch.Tensor:
    """The kernel that an atrous convolution with ``rate`` effectively applies: ``rate - 1`` zeros between taps.

    ``F.conv2d(x, dilate_kernel(w, r))`` equals ``F.conv2d(x, w, dilation=r)``.

    Args:
        weight: (C_out, C_in, kh, kw) convolution kernel.
        rate: the dilation rate, at least 1.

    Returns:
        (C_out, C_in, (kh - 1) * rate + 1, (kw - 1) * rate + 1), zero except at multiples of ``rate``.
    """
    check_tensor(weight, "weight", ndim=4)
    check_positive_int(rate, "rate")
    c_out, c_in, kh, kw = weight.shape
    dilated = weight.new_zeros(c_out, c_in, (kh - 1) * rate + 1, (kw - 1) * rate + 1)
    dilated[..., ::rate, ::rate] = weight  # the taps land every `rate` pixels
    return dilated


def conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 dilation: int = 1) -> nn.Sequential:
    """Convolution (no bias, "same" padding for stride 1), batch norm, ReLU."""
    padding = dilation * (kernel_size - 1) // 2
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, dilation, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU())


class ASPPPooling(nn.Sequential):
    """ASPP's image-level branch: global average pooling, 1x1 conv, BN, ReLU, then copied to every position.

    Its batch norm sees one value per image and channel, so training needs batches of two images or more.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(nn.AdaptiveAvgPool2d(1), *conv_bn_relu(in_channels, out_channels, kernel_size=1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """features: (B, in_channels, h, w) -> (B, out_channels, h, w), constant over h and w."""
        pooled = super().forward(features)  # (B, out_channels, 1, 1)
        return F.interpolate(pooled, size=features.shape[-2:], mode="bilinear", align_corners=False)


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling, a twin of ``torchvision.models.segmentation.deeplabv3.ASPP``.

    Branches: a 1x1 conv, one 3x3 conv per rate in ``atrous_rates`` and :class:`ASPPPooling`, each with BN
    and ReLU, all with ``out_channels``; their concatenation goes through 1x1 conv, BN, ReLU and dropout 0.5.
    The module names match torchvision's, so the two load each other's ``state_dict``.

    Args:
        in_channels: channels of the backbone features.
        atrous_rates: the rates of the 3x3 branches (the paper: 6, 12, 18 at output stride 16).
        out_channels: channels of every branch and of the output (the paper: 256).
    """

    def __init__(self, in_channels: int, atrous_rates: Sequence[int], out_channels: int = 256) -> None:
        super().__init__()
        check_positive_int(in_channels, "in_channels")
        check_positive_int(out_channels, "out_channels")
        for rate in atrous_rates:
            check_positive_int(rate, "atrous_rates")
        branches = [conv_bn_relu(in_channels, out_channels, kernel_size=1)]
        branches += [conv_bn_relu(in_channels, out_channels, dilation=rate) for rate in atrous_rates]
        branches.append(ASPPPooling(in_channels, out_channels))
        self.convs = nn.ModuleList(branches)
        self.project = nn.Sequential(*conv_bn_relu(len(branches) * out_channels, out_channels, kernel_size=1),
                                     nn.Dropout(0.5))

    def branch_outputs(self, features: torch.Tensor) -> list[torch.Tensor]:
        """features: (B, in_channels, h, w) -> one (B, out_channels, h, w) map per branch, 1x1 first, pooling last."""
        return [branch(features) for branch in self.convs]

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """features: (B, in_channels, h, w) -> (B, out_channels, h, w)."""
        return self.project(torch.cat(self.branch_outputs(features), dim=1))  # concat: (B, 5 out, h, w)


class ResidualUnit(nn.Module):
    """ResNet's basic block with a dilation: two 3x3 conv-BN layers, a shortcut (1x1 conv-BN when the shape
    changes), ReLU after the sum."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(*conv_bn_relu(in_channels, out_channels, stride=stride, dilation=dilation),
                                  nn.Conv2d(out_channels, out_channels, 3, padding=dilation, dilation=dilation,
                                            bias=False),
                                  nn.BatchNorm2d(out_channels))
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                                          nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, in_channels, H, W) -> (B, out_channels, ceil(H / stride), ceil(W / stride))."""
        return F.relu(self.body(x) + self.shortcut(x))


class DilatedBackbone(nn.Module):
    """A small ResNet: a stride-2 stem and four stages whose nominal strides make the output stride 32.

    Stage ``i`` (0..3) has ``base_channels * (1, 2, 4, 8)[i]`` channels. Once the running stride reaches
    ``output_stride``, a stage keeps the resolution and doubles its dilation instead of striding (the
    paper's "atrous" backbone). The last stage has one residual unit per entry of ``multi_grid``, unit
    ``j`` with dilation ``stage_rate * multi_grid[j]``; the others have one unit each.
    """

    def __init__(self, in_channels: int = 3, base_channels: int = 16, output_stride: int = 16,
                 multi_grid: Sequence[int] = (1, 2, 4)) -> None:
        super().__init__()
        check_choice(output_stride, "output_stride", OUTPUT_STRIDES)
        if len(multi_grid) == 0:
            raise ValueError("multi_grid must have at least one unit rate, got ()")
        for rate in multi_grid:
            check_positive_int(rate, "multi_grid")
        self.stem = conv_bn_relu(in_channels, base_channels, stride=2)
        widths = [base_channels * factor for factor in (1, 2, 4, 8)]
        stride, rate, channels = 2, 1, base_channels
        self.stages = nn.ModuleList()
        self.dilations: list[tuple[int, ...]] = []  # per stage, the dilation of each unit
        for index, width in enumerate(widths):
            if stride < output_stride:
                stage_stride, stride = 2, 2 * stride
            else:
                stage_stride, rate = 1, 2 * rate  # the stride this stage would have had becomes a dilation
            unit_rates = [rate * m for m in multi_grid] if index == len(widths) - 1 else [rate]
            units = [ResidualUnit(channels if j == 0 else width, width, stage_stride if j == 0 else 1, r)
                     for j, r in enumerate(unit_rates)]
            self.stages.append(nn.Sequential(*units))
            self.dilations.append(tuple(unit_rates))
            channels = width
        self.out_channels, self.output_stride = channels, output_stride

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images: (B, in_channels, H, W) -> (B, out_channels, ~H / output_stride, ~W / output_stride)."""
        x = self.stem(images)  # (B, base, H/2, W/2), sizes rounded up
        for stage in self.stages:
            x = stage(x)
        return x


class DeepLabV3(nn.Module):
    """DeepLabv3: an atrous backbone at ``output_stride``, ASPP, 1x1 class scores, bilinear upsampling.

    Any H and W work: strided layers round sizes up, and the scores are resized to exactly H x W.

    Args:
        in_channels: channels of the input image.
        num_classes: C, the number of classes (21 for Pascal VOC: 20 objects and background).
        base_channels: channels of the backbone's first stage; the last has 8x as many.
        output_stride: input size over feature size, 8, 16 or 32 (32: no atrous convolution).
        atrous_rates: ASPP's rates **at output stride 16**; they are scaled by ``16 / output_stride``
            (the paper: 6, 12, 18 at 16, so 12, 24, 36 at 8), and must stay whole numbers.
        multi_grid: unit rates of the backbone's last stage (the paper's Multi_Grid, best (1, 2, 4)).
        aspp_channels: channels of ASPP's branches; ``None`` is ``4 * base_channels``.
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 21, base_channels: int = 16, output_stride: int = 16,
                 atrous_rates: Sequence[int] = (6, 12, 18), multi_grid: Sequence[int] = (1, 2, 4),
                 aspp_channels: int | None = None) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("num_classes", num_classes),
                            ("base_channels", base_channels)):
            check_positive_int(value, name)
        check_choice(output_stride, "output_stride", OUTPUT_STRIDES)
        rates = []
        for rate in atrous_rates:
            check_positive_int(rate, "atrous_rates")
            if (rate * 16) % output_stride:
                raise ValueError(f"atrous_rates must scale to whole numbers at output_stride={output_stride}, "
                                 f"got {tuple(atrous_rates)}")
            rates.append(rate * 16 // output_stride)
        aspp_channels = 4 * base_channels if aspp_channels is None else check_positive_int(aspp_channels,
                                                                                          "aspp_channels")
        self.in_channels, self.atrous_rates = in_channels, tuple(rates)
        self.backbone = DilatedBackbone(in_channels, base_channels, output_stride, multi_grid)
        self.aspp = ASPP(self.backbone.out_channels, self.atrous_rates, aspp_channels)
        self.classifier = nn.Conv2d(aspp_channels, num_classes, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images: (B, in_channels, H, W) -> class scores (B, C, H, W)."""
        check_shape(images, "images", (None, self.in_channels, None, None))
        scores = self.classifier(self.aspp(self.backbone(images)))  # (B, C, ~H / os, ~W / os)
        return F.interpolate(scores, size=images.shape[-2:], mode="bilinear", align_corners=False)  # (B, C, H, W)


def effective_receptive_field(model: nn.Module, image_size: int | tuple[int, int], images: torch.Tensor | None = None,
                              num_samples: int = 8, class_index: int | None = None, in_channels: int = 3,
                              generator: torch.Generator | None = None) -> tuple[torch.Tensor, float]:
    """How much each input pixel moves the score of the centre output pixel (Luo et al., 2016).

    The gradient of the centre pixel's score with respect to the input is taken for each image (the model
    in eval mode, so images do not interact through batch norm); its absolute value is summed over channels,
    averaged over the images and normalised to sum to 1. The theoretical receptive field bounds where this
    map can be non-zero; the effective one is where it actually has mass, typically a Gaussian-like blob
    much smaller than the bound.

    Args:
        model: maps (B, in_channels, H, W) to scores (B, C, H', W'); the centre is ``(H' // 2, W' // 2)``.
        image_size: H and W (an int for square images).
        images: (B, in_channels, H, W) inputs; ``None`` draws ``num_samples`` standard normal images.
        num_samples: how many random images when ``images`` is ``None``.
        class_index: the class whose score is differentiated; ``None`` takes each image's top class at
            the centre.
        in_channels: channels of the random images.
        generator: drives the random images.

    Returns:
        the map (H, W), non-negative, summing to 1 (all zeros if the centre ignores the input), and its
        radius: the root mean square distance of the map's mass from the centre pixel, in pixels.
    """
    height, width = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    check_positive_int(height, "image_size")
    check_positive_int(width, "image_size")
    if images is None:
        check_positive_int(num_samples, "num_samples")
        images = torch.randn(num_samples, in_channels, height, width, generator=generator)
    check_shape(images, "images", (None, None, height, width))
    device = next(model.parameters()).device
    inputs = images.detach().to(device).float().requires_grad_(True)
    with eval_mode(model):
        scores = model(inputs)  # (B, C, H', W')
        centre = scores[:, :, scores.shape[-2] // 2, scores.shape[-1] // 2]  # (B, C)
        if class_index is None:
            picked = centre.gather(1, centre.argmax(1, keepdim=True))  # (B, 1): each image's top class
        else:
            check_choice(class_index, "class_index", range(centre.shape[1]))
            picked = centre[:, class_index]
        (gradient,) = torch.autograd.grad(picked.sum(), inputs)  # (B, in, H, W); images are independent
    erf = gradient.abs().sum(1).mean(0).cpu().double()  # (H, W)
    erf = erf / erf.sum() if erf.sum() > 0 else erf
    rows = torch.arange(height, dtype=torch.float64)[:, None] - height // 2  # (H, 1) offsets from the centre
    cols = torch.arange(width, dtype=torch.float64)[None, :] - width // 2  # (1, W)
    radius = float((erf * (rows**2 + cols**2)).sum().sqrt())
    return erf.float(), radius
