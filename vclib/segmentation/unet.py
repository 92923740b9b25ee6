"""U-Net (Ronneberger et al., 2015): an encoder-decoder whose decoder receives the encoder's features
at every resolution through skip connections (concatenation)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vclib.checks import check_positive_int, check_shape
from vclib.segmentation.blocks import conv_block


class UNet(nn.Module):
    """U-Net with ``depth`` resolution levels and ``base_channels * 2**level`` channels per level.

    Each encoder level is two 3x3 conv-BN-ReLU layers followed by 2x2 max-pooling; each decoder level
    upsamples by 2 with a transposed convolution, concatenates the encoder's features of the same
    resolution (the skip connection) and applies two 3x3 conv-BN-ReLU layers. A 1x1 convolution gives
    the class scores.

    Any H and W work: the input is zero-padded at the bottom and right up to a multiple of
    ``2**(depth - 1)`` (so that every pooling halves an even size), and the scores are cropped back
    to H x W.

    Args:
        in_channels: channels of the input image.
        num_classes: C, the number of classes (2 by default, the paper's cell/background case).
        base_channels: channels of the first level.
        depth: number of resolution levels (``depth - 1`` poolings), at least 2.
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 2, base_channels: int = 16, depth: int = 4) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("num_classes", num_classes),
                            ("base_channels", base_channels)):
            check_positive_int(value, name)
        check_positive_int(depth, "depth", minimum=2)
        widths = [base_channels * 2**level for level in range(depth)]
        self.in_channels, self.depth = in_channels, depth
        inputs = [in_channels, *widths[:-1]]
        self.encoder = nn.ModuleList(conv_block(c_in, c_out) for c_in, c_out in zip(inputs, widths, strict=True))
        self.up = nn.ModuleList(nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in range(depth - 1))
        self.decoder = nn.ModuleList(conv_block(2 * widths[i], widths[i]) for i in range(depth - 1))
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images: (B, in_channels, H, W) -> class scores (B, C, H, W)."""
        check_shape(images, "images", (None, self.in_channels, None, None))
        height, width = images.shape[-2:]
        multiple = 2 ** (self.depth - 1)
        x = F.pad(images, (0, -width % multiple, 0, -height % multiple))  # (B, in, H', W'), H' W' multiples
        skips = []
        for level, block in enumerate(self.encoder):
            x = block(x)  # (B, base * 2**level, H' / 2**level, W' / 2**level)
            if level < self.depth - 1:
                skips.append(x)
                x = F.max_pool2d(x, 2)
        for level in reversed(range(self.depth - 1)):
            x = self.up[level](x)  # (B, base * 2**level, H' / 2**level, W' / 2**level)
            x = self.decoder[level](torch.cat([skips[level], x], dim=1))  # skip || upsampled -> conv
        return self.head(x)[..., :height, :width]  # (B, C, H, W)
