"""Plain and residual CNNs of any depth, for the degradation experiment of He et al. (2016).

The networks follow the CIFAR-10 design of the ResNet paper (Section 4.2): a 3x3 stem convolution, three
stages of ``n`` blocks with ``width``, ``2 width`` and ``4 width`` channels (the feature map halves at each
new stage), global average pooling and one linear layer, so ``depth = 6n + 2`` weighted layers. A block is
two 3x3 convolutions with batch normalisation. The residual block adds its input back,

    y = relu(F(x) + shortcut(x)),        F(x) = BN(conv(relu(BN(conv(x))))),

and the plain block is the same without the addition. Both have the same layers and the same parameters,
except for the 1x1 projections that residual blocks use where the shape changes (option B of the paper).
"""

from __future__ import annotations

import torch
from torch import nn

from vclib.checks import check_positive_int, check_tensor


class DepthBlock(nn.Module):
    """Two 3x3 conv + BN layers, with or without an identity shortcut: ``(B, C_in, H, W) -> (B, C_out, H', W')``.

    ``H' = ceil(H / stride)``. With ``residual=True`` and a change of shape, the shortcut is a strided 1x1
    convolution with BN; otherwise it is the identity.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, residual: bool = True) -> None:
        super().__init__()
        self.residual = residual
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if residual and (stride != 1 or in_channels != out_channels):
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: ``(B, C_in, H, W)`` -> ``(B, C_out, H', W')``."""
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))  # F(x)
        if self.residual:
            out = out + self.shortcut(x)  # F(x) + x
        return torch.relu(out)


class DepthNet(nn.Module):
    """A plain or residual CNN with ``depth = 6n + 2`` weighted layers: ``(B, C, H, W) -> (B, num_classes)``.

    Args:
        depth: weighted layers (convolutions on the main path plus the classifier): 8, 14, 20, 26, 32, ...
        residual: add identity shortcuts around every block (a ResNet) or not (a plain network).
        width: channels of the first stage; the second and third stages have 2 and 4 times as many.
        in_channels: image channels C.
        num_classes: number of classes.
    """

    def __init__(
        self,
        depth: int = 20,
        residual: bool = True,
        width: int = 16,
        in_channels: int = 1,
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        check_positive_int(depth, "depth", minimum=8)
        if (depth - 2) % 6:
            raise ValueError(f"depth must be 6n + 2 (8, 14, 20, 26, 32, ...), got {depth}")
        check_positive_int(width, "width")
        check_positive_int(in_channels, "in_channels")
        check_positive_int(num_classes, "num_classes", minimum=2)
        blocks_per_stage = (depth - 2) // 6
        self.depth = depth
        self.residual = residual
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(width), nn.ReLU())
        blocks = []
        channels = width
        for stage, stage_channels in enumerate((width, 2 * width, 4 * width)):
            for index in range(blocks_per_stage):
                stride = 2 if stage > 0 and index == 0 else 1
                blocks.append(DepthBlock(channels, stage_channels, stride=stride, residual=residual))
                channels = stage_channels
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(channels, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images: ``(B, C, H, W)`` float -> logits ``(B, num_classes)``."""
        check_tensor(images, "images", ndim=4, floating=True)
        features = self.blocks(self.stem(images))  # (B, 4*width, H/4, W/4)
        return self.head(features.mean(dim=(2, 3)))  # (B, num_classes)

    def main_path_layers(self) -> list[nn.Module]:
        """The ``depth`` weighted layers in order: stem conv, two convs per block, the classifier."""
        layers: list[nn.Module] = [self.stem[0]]
        for block in self.blocks:
            layers += [block.conv1, block.conv2]
        return layers + [self.head]


def gradient_norms(model: DepthNet, images: torch.Tensor, targets: torch.Tensor) -> list[float]:
    """L2 norm of the cross-entropy gradient with respect to each main-path layer's weight, input to output.

    Args:
        model: the network (its BN layers use batch statistics in training mode).
        images: ``(B, C, H, W)`` float.
        targets: ``(B,)`` int64 class indices.

    Returns:
        ``depth`` norms, ``||dL/dW_l||_2`` for l = 1 ... depth.
    """
    check_tensor(images, "images", ndim=4, floating=True)
    check_tensor(targets, "targets", ndim=1, dtype=torch.int64)
    model.zero_grad(set_to_none=True)
    loss = nn.functional.cross_entropy(model(images), targets)
    loss.backward()
    norms = [layer.weight.grad.norm().item() for layer in model.main_path_layers()]
    model.zero_grad(set_to_none=True)
    return norms
