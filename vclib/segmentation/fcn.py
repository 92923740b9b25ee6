"""FCN (Long, Shelhamer and Darrell, 2015): a classification network made fully convolutional.

The classifier's fully connected layers become convolutions (:func:`convolutionalize`), so the network
scores every window of a larger image at once. The coarse scores (stride 32) are upsampled with
transposed convolutions initialised as bilinear interpolation (:func:`bilinear_upsampling`) and fused
with finer scores from pool4 (FCN-16s) and pool3 (FCN-8s).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from vclib.checks import check_choice, check_positive_int, check_shape
from vclib.segmentation.blocks import conv_block


def bilinear_kernel(factor: int) -> torch.Tensor:
    """The (2 * factor, 2 * factor) kernel of bilinear interpolation by ``factor``: a tent, the outer
    product of ``1 - |x - centre| / factor`` with itself."""
    check_positive_int(factor, "factor")
    ### BEGIN SOLUTION
    size = 2 * factor
    centre = factor - 0.5  # between the two middle taps of an even-sized kernel
    taps = 1 - (torch.arange(size, dtype=torch.float32) - centre).abs() / factor  # (2f,)
    return taps[:, None] * taps[None, :]  # (2f, 2f)
    ### END SOLUTION


def bilinear_upsampling(channels: int, factor: int) -> nn.ConvTranspose2d:
    """A transposed convolution that upsamples by ``factor``, initialised as bilinear interpolation.

    Kernel ``2 * factor``, stride ``factor``, padding ``factor // 2``, no bias, one filter per channel
    (``groups=channels``, so channels never mix). For even factors an (h, w) input becomes
    (factor * h, factor * w), and away from a border of ``factor`` pixels the output equals
    ``F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)``. The weights stay
    trainable: FCN starts from interpolation and learns a better upsampling.
    """
    check_positive_int(channels, "channels")
    check_positive_int(factor, "factor")
    layer = nn.ConvTranspose2d(channels, channels, 2 * factor, stride=factor, padding=factor // 2, bias=False,
                               groups=channels)
    with torch.no_grad():
        layer.weight.copy_(bilinear_kernel(factor).expand(channels, 1, -1, -1))  # (channels, 1, 2f, 2f)
    return layer


def convolutionalize(linear: nn.Linear, in_channels: int, kernel_size: int) -> nn.Conv2d:
    """The convolution that computes ``linear`` at every window of a feature map.

    A ``Linear(in_channels * k * k, out)`` applied to a flattened ``(in_channels, k, k)`` map is a
    ``Conv2d(in_channels, out, k)`` with the same weights reshaped to ``(out, in_channels, k, k)``; on a
    larger map it slides, giving one output per window. Padding ``k // 2`` keeps the map's size.
    """
    if not isinstance(linear, nn.Linear):
        raise ValueError(f"linear must be an nn.Linear, got {type(linear).__name__}")
    if linear.in_features != in_channels * kernel_size**2:
        raise ValueError(f"linear has {linear.in_features} inputs, not in_channels * kernel_size**2 = "
                         f"{in_channels * kernel_size**2}")
    conv = nn.Conv2d(in_channels, linear.out_features, kernel_size, padding=kernel_size // 2,
                     bias=linear.bias is not None)
    ### BEGIN SOLUTION
    with torch.no_grad():
        conv.weight.copy_(linear.weight.reshape(linear.out_features, in_channels, kernel_size, kernel_size))
        if linear.bias is not None:
            conv.bias.copy_(linear.bias)
    ### END SOLUTION
    return conv


class VGGBackbone(nn.Module):
    """Five convolution stages, each ending in 2x2 max-pooling (strides 2, 4, 8, 16, 32), and a
    convolutional head (the classifier's fc6 and fc7 as convolutions).

    Args:
        stages: five modules, the i-th mapping stride ``2**i`` features to stride ``2**(i+1)``.
        head: maps pool5 features to ``head_channels`` channels at the same stride.
        stage_channels: output channels of each stage.
        head_channels: output channels of ``head``.
    """

    def __init__(self, stages: list[nn.Module], head: nn.Module, stage_channels: list[int], head_channels: int) -> None:
        super().__init__()
        if len(stages) != 5 or len(stage_channels) != 5:
            raise ValueError(
                f"stages and stage_channels must have 5 entries, got {len(stages)} and {len(stage_channels)}")
        self.stages, self.head = nn.ModuleList(stages), head
        self.stage_channels, self.head_channels = list(stage_channels), head_channels

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """images (B, 3, H, W), H and W multiples of 32 -> pool3 (stride 8), pool4 (stride 16), head (stride 32)."""
        features = []
        x = images
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features[2], features[3], self.head(x)


class DigitVGG(nn.Module):
    """A small VGG-style classifier for 32 x 32 colour digit crops (the network FCN starts from).

    Five stages of 3x3 conv-BN-ReLU and 2x2 max-pooling (1, 1, 2, 2, 2 convolutions, ``base_channels``
    times 1, 2, 4, 8, 8 channels) reduce 32 x 32 to 1 x 1; ``fc6``, ``fc7`` and ``fc8`` classify.

    Args:
        in_channels: image channels.
        num_classes: number of digit classes.
        base_channels: channels of the first stage.
        hidden_size: width of fc6 and fc7.
    """

    input_size = 32

    def __init__(self, in_channels: int = 3, num_classes: int = 10, base_channels: int = 8,
                 hidden_size: int = 128) -> None:
        super().__init__()
        widths = [base_channels * m for m in (1, 2, 4, 8, 8)]
        self.stage_channels = widths
        self.stages = nn.ModuleList(
            nn.Sequential(conv_block(c_in, c_out, n), nn.MaxPool2d(2))
            for c_in, c_out, n in zip([in_channels, *widths[:-1]], widths, (1, 1, 2, 2, 2), strict=True)
        )
        self.fc6, self.fc7 = nn.Linear(widths[-1], hidden_size), nn.Linear(hidden_size, hidden_size)
        self.fc8 = nn.Linear(hidden_size, num_classes)
        self.dropout = nn.Dropout(0.3)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, in_channels, 32, 32) -> logits (B, num_classes)."""
        check_shape(images, "images", (None, None, 32, 32))
        x = images
        for stage in self.stages:
            x = stage(x)
        x = x.flatten(1)  # (B, C5 * 1 * 1)
        x = self.dropout(F.relu(self.fc6(x)))
        return self.fc8(self.dropout(F.relu(self.fc7(x))))

    def to_backbone(self) -> VGGBackbone:
        """A copy of the stages with fc6 and fc7 convolutionalised (1x1 kernels: pool5 is 1 x 1 at 32 px)."""
        head = nn.Sequential(convolutionalize(self.fc6, self.stage_channels[-1], 1), nn.ReLU(inplace=True),
                             nn.Dropout(0.3), convolutionalize(self.fc7, self.fc7.in_features, 1),
                             nn.ReLU(inplace=True), nn.Dropout(0.3))
        return VGGBackbone([copy.deepcopy(stage) for stage in self.stages], head, self.stage_channels,
                           self.fc7.out_features)


def vgg16_backbone(weights: str | None = "DEFAULT") -> VGGBackbone:
    """torchvision's VGG16 (ImageNet weights by default) as an FCN backbone: the features split at each
    max-pooling, fc6 (25088 -> 4096) as a 7x7 convolution and fc7 as a 1x1 convolution."""
    from torchvision.models import vgg16

    model = vgg16(weights=weights)
    stages, current = [], []
    for layer in model.features:
        current.append(layer)
        if isinstance(layer, nn.MaxPool2d):
            stages.append(nn.Sequential(*current))
            current = []
    fc6, fc7 = model.classifier[0], model.classifier[3]
    head = nn.Sequential(convolutionalize(fc6, 512, 7), nn.ReLU(inplace=True), nn.Dropout(0.5),
                         convolutionalize(fc7, 4096, 1), nn.ReLU(inplace=True), nn.Dropout(0.5))
    return VGGBackbone(stages, head, [64, 128, 256, 512, 512], 4096)


class FCN(nn.Module):
    """FCN-32s, FCN-16s or FCN-8s on a :class:`VGGBackbone`.

    Scores at stride 32 (from the head) are upsampled by 2 and added to scores predicted from pool4
    (16s), upsampled by 2 again and added to scores from pool3 (8s), then upsampled to the input size.
    The skip score layers start at zero, so training starts from the coarser network's output; every
    upsampling starts as bilinear interpolation and is learned.

    The input is zero-padded at the bottom and right to a multiple of 32 and the scores are cropped back,
    so any H, W >= 32 works.

    Args:
        num_classes: C, the number of classes.
        backbone: the feature extractor, e.g. ``DigitVGG(...).to_backbone()`` or :func:`vgg16_backbone`.
        stride: 32, 16 or 8, the finest skip used.
    """

    def __init__(self, num_classes: int, backbone: VGGBackbone, stride: int = 8) -> None:
        super().__init__()
        check_positive_int(num_classes, "num_classes")
        check_choice(stride, "stride", (32, 16, 8))
        if not isinstance(backbone, VGGBackbone):
            raise ValueError(f"backbone must be a VGGBackbone, got {type(backbone).__name__}")
        self.backbone, self.stride = backbone, stride
        self.score_head = nn.Conv2d(backbone.head_channels, num_classes, 1)
        self.score_pool4 = nn.Conv2d(backbone.stage_channels[3], num_classes, 1)
        self.score_pool3 = nn.Conv2d(backbone.stage_channels[2], num_classes, 1)
        for layer in (self.score_pool4, self.score_pool3):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        self.up2_head = bilinear_upsampling(num_classes, 2)
        self.up2_pool4 = bilinear_upsampling(num_classes, 2)
        self.up_final = bilinear_upsampling(num_classes, stride)
        self.features_frozen = False

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, 3, H, W), H, W >= 32 -> class scores (B, C, H, W)."""
        check_shape(images, "images", (None, None, None, None))
        height, width = images.shape[-2:]
        if height < 32 or width < 32:
            raise ValueError(f"images must be at least 32 x 32, got {height} x {width}")
        x = F.pad(images, (0, -width % 32, 0, -height % 32))  # (B, 3, H', W'), multiples of 32
        pool3, pool4, head = self.backbone(x)
        scores = self.score_head(head)  # (B, C, H'/32, W'/32)
        if self.stride <= 16:
            scores = self.up2_head(scores) + self.score_pool4(pool4)  # (B, C, H'/16, W'/16)
        if self.stride == 8:
            scores = self.up2_pool4(scores) + self.score_pool3(pool3)  # (B, C, H'/8, W'/8)
        return self.up_final(scores)[..., :height, :width]  # (B, C, H, W)

    def freeze_features(self) -> FCN:
        """Freeze the five convolution stages (weights and batch-norm statistics); the head, the score
        layers and the upsamplings keep training."""
        self.features_frozen = True
        self.backbone.stages.requires_grad_(False)
        return self.train(self.training)

    def train(self, mode: bool = True) -> FCN:
        super().train(mode)
        if self.features_frozen:
            self.backbone.stages.eval()
        return self


class FCN32s(FCN):
    """FCN with no skips: scores at stride 32 upsampled by 32."""

    def __init__(self, num_classes: int, backbone: VGGBackbone) -> None:
        super().__init__(num_classes, backbone, stride=32)


class FCN16s(FCN):
    """FCN with the pool4 skip: stride 16 upsampled by 16."""

    def __init__(self, num_classes: int, backbone: VGGBackbone) -> None:
        super().__init__(num_classes, backbone, stride=16)


class FCN8s(FCN):
    """FCN with the pool4 and pool3 skips: stride 8 upsampled by 8."""

    def __init__(self, num_classes: int, backbone: VGGBackbone) -> None:
        super().__init__(num_classes, backbone, stride=8)
