"""Project 1's convolutional network for 28 x 28 digits."""

from __future__ import annotations

import torch
from torch import nn

from vclib.checks import check_shape, check_tensor


class DigitCNN(nn.Module):
    """Two conv blocks and a small classifier: ``(B, 1, 28, 28) -> (B, num_classes)`` logits.

    conv(3x3, pad 1) -> BN -> ReLU -> maxpool: 28 -> 14 -> 7, then dropout and two linear layers.
    """

    def __init__(self, num_classes: int = 10, width: int = 16, dropout: float = 0.25) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),  # (B, 2*width*7*7)
            nn.Dropout(dropout),
            nn.Linear(2 * width * 7 * 7, 128), nn.ReLU(),
            nn.Linear(128, num_classes),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images: ``(B, 1, 28, 28)`` float -> logits ``(B, num_classes)``."""
        check_tensor(images, "images", floating=True)
        check_shape(images, "images", (None, 1, 28, 28))
        return self.classifier(self.features(images))
