"""SegNet (Badrinarayanan et al., 2017): the decoder upsamples with the encoder's max-pooling indices,
putting each value back where its maximum came from, so that boundaries come back without skip features."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from vclib.checks import check_positive_int, check_shape, check_tensor
from vclib.segmentation.blocks import conv_block


def max_unpool2d(input: torch.Tensor, indices: torch.Tensor, output_size: Sequence[int]) -> torch.Tensor:
    """Inverse of 2x2 max-pooling: scatter each value to the position its maximum came from, zeros elsewhere.

    Equals ``F.max_unpool2d(input, indices, kernel_size=2, output_size=output_size)``.

    Args:
        input: (B, C, h, w) pooled values.
        indices: (B, C, h, w) int64, as returned by ``F.max_pool2d(..., return_indices=True)``: the flat
            position ``row * W + col`` of each maximum in its (H, W) input plane.
        output_size: (H, W) (or the full (B, C, H, W)) of the tensor that was pooled.

    Returns:
        (B, C, H, W).
    """
    check_tensor(input, "input", ndim=4, floating=True)
    check_tensor(indices, "indices", dtype=torch.int64)
    check_shape(indices, "indices", tuple(input.shape))
    if len(output_size) not in (2, 4):
        raise ValueError(f"output_size must be (H, W) or (B, C, H, W), got {tuple(output_size)}")
    height, width = (int(s) for s in output_size[-2:])
    if indices.numel() and not 0 <= int(indices.min()) <= int(indices.max()) < height * width:
        raise ValueError(f"indices must lie in [0, {height * width}) for output_size {(height, width)}")
    batch, channels = input.shape[:2]
    ### BEGIN SOLUTION
    output = input.new_zeros(batch, channels, height * width)  # (B, C, H*W)
    output = output.scatter(2, indices.flatten(2), input.flatten(2))  # (B, C, H*W)
    return output.reshape(batch, channels, height, width)  # (B, C, H, W)
    ### END SOLUTION


class SegNet(nn.Module):
    """SegNet with ``depth`` pooling levels and ``base_channels * 2**level`` channels per level.

    Encoder level: two 3x3 conv-BN-ReLU layers, then 2x2 max-pooling that keeps its indices. Decoder
    level: :func:`max_unpool2d` with those indices (to the pre-pooling size, so odd sizes work), then
    3x3 conv-BN-ReLU layers that densify the sparse map. No encoder features are copied to the decoder,
    only the indices (one int per pooled value).

    Args:
        in_channels: channels of the input image.
        num_classes: C, the number of classes.
        base_channels: channels of the first level.
        depth: number of pooling levels, at least 1.
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 2, base_channels: int = 16, depth: int = 4) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("num_classes", num_classes),
                            ("base_channels", base_channels), ("depth", depth)):
            check_positive_int(value, name)
        widths = [base_channels * 2**level for level in range(depth)]
        self.in_channels = in_channels
        inputs = [in_channels, *widths[:-1]]
        self.encoder = nn.ModuleList(conv_block(c_in, c_out) for c_in, c_out in zip(inputs, widths, strict=True))
        self.decoder = nn.ModuleList(conv_block(widths[i], widths[max(i - 1, 0)]) for i in range(depth))
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images: (B, in_channels, H, W) with H, W >= 2**depth -> class scores (B, C, H, W)."""
        check_shape(images, "images", (None, self.in_channels, None, None))
        x, pooled = images, []
        for block in self.encoder:
            x = block(x)
            size = x.shape[-2:]
            x, indices = F.max_pool2d(x, 2, return_indices=True)  # (B, c, H_l // 2, W_l // 2) each
            pooled.append((indices, size))
        for level in reversed(range(len(self.decoder))):
            indices, size = pooled[level]
            x = max_unpool2d(x, indices, size)  # (B, c, H_l, W_l): sparse, values at the maxima
            x = self.decoder[level](x)
        return self.head(x)  # (B, C, H, W)
