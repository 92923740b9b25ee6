"""Classifying images with a GRU: read the image as a sequence, classify from the last hidden state.

Two ways to turn an image ``(B, C, H, W)`` into a sequence:

- ``"rows"``: one step per pixel row, ``(B, H, C * W)``: 28 steps of 28 pixels for MNIST;
- ``"patches"``: one step per P x P patch in row-major order, ``(B, N, C * P * P)``, the same tokens a
  Vision Transformer reads (:func:`vclib.transformer.patchify`).
"""

from __future__ import annotations

import torch
from torch import nn

from vclib.checks import check_choice, check_positive_int, check_tensor
from vclib.sequence.gru import GRU
from vclib.transformer import patchify

TOKENIZATIONS = ("rows", "patches")


def image_rows(images: torch.Tensor) -> torch.Tensor:
    """One token per pixel row: ``(B, C, H, W) -> (B, H, C * W)``."""
    check_tensor(images, "images", ndim=4)
    batch, channels, height, width = images.shape
    return images.permute(0, 2, 1, 3).reshape(batch, height, channels * width)  # (B, H, C*W)


class GRUImageClassifier(nn.Module):
    """A GRU reads an image token by token; a linear layer classifies its final hidden state.

    Args:
        image_size: H = W; in_channels: C; num_classes: K.
        hidden_size: width of the GRU's state.
        tokens: ``"rows"`` or ``"patches"``; patch_size: P, used with ``"patches"``.

    ``forward(images (B, C, H, W)) -> logits (B, K)``.
    """

    def __init__(
        self,
        image_size: int = 28,
        in_channels: int = 1,
        num_classes: int = 10,
        hidden_size: int = 128,
        tokens: str = "rows",
        patch_size: int = 4,
    ) -> None:
        super().__init__()
        check_choice(tokens, "tokens", TOKENIZATIONS)
        for name, value in (
            ("image_size", image_size),
            ("in_channels", in_channels),
            ("patch_size", patch_size),
        ):
            check_positive_int(value, name)
        if tokens == "patches" and image_size % patch_size:
            raise ValueError(f"patch_size must divide image_size={image_size}, got {patch_size}")
        self.image_size, self.in_channels, self.tokens, self.patch_size = (
            image_size,
            in_channels,
            tokens,
            patch_size,
        )
        token_size = in_channels * (image_size if tokens == "rows" else patch_size**2)
        self.gru = GRU(token_size, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, num_classes)

    def tokenize(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W) -> (B, T, token_size)``."""
        check_tensor(images, "images", ndim=4, floating=True)
        expected = (self.in_channels, self.image_size, self.image_size)
        if tuple(images.shape[1:]) != expected:
            raise ValueError(f"images must have shape (B, {', '.join(map(str, expected))}), got {tuple(images.shape)}")
        return image_rows(images) if self.tokens == "rows" else patchify(images, self.patch_size)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        _, h_n = self.gru(self.tokenize(images))  # h_n: (1, B, hidden)
        return self.head(h_n[0])  # (B, K)
