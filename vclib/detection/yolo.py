"""YOLOv3 (Redmon and Farhadi, 2018): a Darknet backbone, a feature pyramid and three detection heads.

The layout follows the paper, scaled down by ``width`` and ``depths``: Darknet-53 is a stem and five
stages, each a stride-2 3x3 convolution followed by residual blocks (1x1 halving the channels, 3x3 restoring
them, plus the input), with ``depths=(1, 2, 8, 8, 4)``. The head at stride 32 sees the deepest features; its
features are reduced with a 1x1 convolution, upsampled 2x and **concatenated** with the stride-16 backbone
features for the next head, and again for stride 8. Each head predicts, for each of its ``A = 3`` anchors
and each grid cell, ``(tx, ty, tw, th, objectness, class_1 .. class_C)`` as raw logits. The heads read the
backbone's last three stages, so a backbone with one stage fewer (``len(depths) == 4``) gives strides
``(4, 8, 16)``, which suits the course's 96-pixel digit scenes.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from vclib.checks import check_positive_int, check_shape

STRIDES = (8, 16, 32)


class ConvBlock(nn.Sequential):
    """Darknet's unit: convolution (no bias), batch norm, leaky ReLU with slope 0.1."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding=kernel_size // 2, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.LeakyReLU(0.1, inplace=True),
        )


class ResidualBlock(nn.Module):
    """``x + conv3x3(conv1x1(x))``, the 1x1 halving the channels (Darknet-53's building block)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.reduce = ConvBlock(channels, channels // 2, kernel_size=1)
        self.expand = ConvBlock(channels // 2, channels, kernel_size=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.expand(self.reduce(x))


class Darknet(nn.Module):
    """Stem plus one downsampling stage per entry of ``depths``; returns the last three stages' features.

    Stage ``i`` has ``width * 2**(i + 1)`` channels and stride ``2**(i + 1)``. Darknet-53 is ``width=32``,
    ``depths=(1, 2, 8, 8, 4)``: features at strides 8, 16 and 32.
    """

    def __init__(self, in_channels: int = 3, width: int = 32, depths: tuple[int, ...] = (1, 2, 8, 8, 4)) -> None:
        super().__init__()
        if len(depths) < 3:
            raise ValueError(f"depths must give at least 3 stages, got {depths}")
        self.stem = ConvBlock(in_channels, width)
        self.stages = nn.ModuleList()
        channels = width
        for depth in depths:
            stage = [ConvBlock(channels, 2 * channels, stride=2)]
            stage += [ResidualBlock(2 * channels) for _ in range(depth)]
            self.stages.append(nn.Sequential(*stage))
            channels *= 2
        self.out_channels = (channels // 4, channels // 2, channels)
        self.strides = tuple(2 ** (len(depths) - i) for i in (2, 1, 0))

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(images)
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features[-3:]  # the three coarsest: strides 2**(n - 2), 2**(n - 1), 2**n for n stages


class Head(nn.Module):
    """One YOLOv3 scale: a block of alternating 1x1 / 3x3 convolutions (``route``, shared with the next
    scale through the upsampling path), then a 3x3 convolution and a 1x1 prediction layer."""

    def __init__(self, in_channels: int, channels: int, num_anchors: int, num_classes: int) -> None:
        super().__init__()
        self.num_anchors, self.num_outputs = num_anchors, 5 + num_classes
        self.route = nn.Sequential(ConvBlock(in_channels, channels, 1), ConvBlock(channels, 2 * channels, 3),
                                   ConvBlock(2 * channels, channels, 1))
        self.predict = nn.Sequential(ConvBlock(channels, 2 * channels, 3),
                                     nn.Conv2d(2 * channels, num_anchors * self.num_outputs, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x (B, C_in, H, W)`` -> route features ``(B, channels, H, W)`` and predictions ``(B, A, H, W, 5 + C)``."""
        route = self.route(x)
        out = self.predict(route)  # (B, A * (5 + C), H, W)
        batch, _, height, width = out.shape
        out = out.view(batch, self.num_anchors, self.num_outputs, height, width)  # (B, A, 5 + C, H, W)
        return route, out.permute(0, 1, 3, 4, 2).contiguous()  # (B, A, H, W, 5 + C)


class YOLOv3(nn.Module):
    """YOLOv3 for ``num_classes`` classes with ``anchors (L * A, 2)`` in pixels, smallest first.

    The first ``A`` anchors belong to the finest stride (small objects), the last ``A`` to the coarsest.
    The paper reads Darknet-53's last three stages, strides ``(8, 16, 32)``. For small images of small
    objects, a backbone with one stage fewer reads the pyramid at ``(4, 8, 16)``: the strides follow from
    ``len(depths)``.

    Args:
        num_classes: C, the number of object classes (no background class).
        anchors: (L * A, 2) float anchor widths and heights in pixels, sorted by area.
        strides: the heads' strides, ``2**(n - 2), 2**(n - 1), 2**n`` for ``n = len(depths)`` stages.
        in_channels: image channels.
        width: channels of the stem; Darknet-53 uses 32.
        depths: residual blocks per backbone stage; Darknet-53 uses ``(1, 2, 8, 8, 4)``.
    """

    def __init__(self, num_classes: int, anchors: torch.Tensor, strides: tuple[int, ...] = STRIDES,
                 in_channels: int = 3, width: int = 32, depths: tuple[int, ...] = (1, 2, 8, 8, 4)) -> None:
        super().__init__()
        check_positive_int(num_classes, "num_classes")
        check_shape(anchors, "anchors", (None, 2))
        self.backbone = Darknet(in_channels, width, depths)
        if tuple(strides) != self.backbone.strides:
            raise ValueError(f"strides must be {self.backbone.strides} for {len(depths)} stages, got {strides}")
        if len(anchors) % len(strides) != 0:
            raise ValueError(f"anchors must hold the same number per stride, got {len(anchors)} for {len(strides)}")
        self.num_classes, self.strides = num_classes, tuple(strides)
        self.register_buffer("anchors", anchors.detach().float().clone())
        num_anchors = len(anchors) // len(strides)
        c8, c16, c32 = self.backbone.out_channels
        self.head32 = Head(c32, c32 // 2, num_anchors, num_classes)
        self.lateral32 = ConvBlock(c32 // 2, c32 // 4, 1)
        self.head16 = Head(c16 + c32 // 4, c16 // 2, num_anchors, num_classes)
        self.lateral16 = ConvBlock(c16 // 2, c16 // 4, 1)
        self.head8 = Head(c8 + c16 // 4, c8 // 2, num_anchors, num_classes)
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        self._init_prediction_biases()

    def _init_prediction_biases(self, object_prior: float = 0.01) -> None:
        """Start with objectness ``object_prior`` and class probabilities ``1 / C`` everywhere, so the first
        steps are not spent unlearning confident random detections (as in RetinaNet and later YOLOs)."""
        for head in (self.head8, self.head16, self.head32):
            bias = head.predict[-1].bias.view(head.num_anchors, head.num_outputs)  # (A, 5 + C)
            with torch.no_grad():
                bias[:, 4] = math.log(object_prior / (1 - object_prior))
                bias[:, 5:] = math.log(1 / self.num_classes / (1 - 1 / self.num_classes)) if self.num_classes > 1 else 0

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """``images (B, in_channels, H, W)``, H and W multiples of the coarsest stride -> one
        ``(B, A, H / s, W / s, 5 + C)`` tensor of raw logits per stride s, finest first."""
        check_shape(images, "images", (None, None, None, None))
        if images.shape[-1] % self.strides[-1] or images.shape[-2] % self.strides[-1]:
            raise ValueError(f"images must have a height and width divisible by {self.strides[-1]}, "
                             f"got {tuple(images.shape)}")
        f8, f16, f32 = self.backbone(images)  # finest to coarsest (strides 8, 16, 32 in the paper)
        route32, out32 = self.head32(f32)
        x = torch.cat([self.upsample(self.lateral32(route32)), f16], dim=1)  # (B, c32/4 + c16, 2 H/s, 2 W/s)
        route16, out16 = self.head16(x)
        x = torch.cat([self.upsample(self.lateral16(route16)), f8], dim=1)  # (B, c16/4 + c8, 4 H/s, 4 W/s)
        _, out8 = self.head8(x)
        return [out8, out16, out32]
