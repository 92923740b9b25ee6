"""The convolution block that U-Net, SegNet and the VGG-style backbone share."""

from __future__ import annotations

from torch import nn


def conv_block(in_channels: int, out_channels: int, num_convs: int = 2) -> nn.Sequential:
    """``num_convs`` times: 3x3 convolution (padding 1, so H and W are kept), batch norm, ReLU."""
    layers: list[nn.Module] = []
    for i in range(num_convs):
        layers += [nn.Conv2d(in_channels if i == 0 else out_channels, out_channels, 3, padding=1, bias=False),
                   nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)
