"""A DCGAN-style generator and discriminator for 28x28 digits (Radford et al., 2016).

Following DCGAN: strided (transposed) convolutions instead of pooling, batch normalisation in the
generator and in the discriminator's hidden layer, ReLU in G and LeakyReLU(0.2) in D. The generator
ends with a sigmoid because the digits lie in [0, 1]; the discriminator returns one logit per image.
"""

from __future__ import annotations

import torch
from torch import nn

from vclib.checks import check_positive_int, check_tensor


class Generator(nn.Module):
    """``z (B, latent_dim)`` -> images ``(B, 1, 28, 28)`` in ``[0, 1]``.

    Args:
        latent_dim: size of the noise vector z.
        width: channels of the last hidden layer (the first has twice as many).
    """

    def __init__(self, latent_dim: int = 64, width: int = 32) -> None:
        super().__init__()
        self.latent_dim = check_positive_int(latent_dim, "latent_dim")
        check_positive_int(width, "width")
        self.net = nn.Sequential(
            nn.Linear(latent_dim, 2 * width * 7 * 7, bias=False),
            nn.Unflatten(1, (2 * width, 7, 7)),  # (B, 2 width, 7, 7)
            nn.BatchNorm2d(2 * width),
            nn.ReLU(),
            nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1, bias=False),  # (B, width, 14, 14)
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.ConvTranspose2d(width, 1, 4, stride=2, padding=1),  # (B, 1, 28, 28)
            nn.Sigmoid(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        check_tensor(z, "z", ndim=2, floating=True)
        if z.shape[1] != self.latent_dim:
            raise ValueError(f"z must have shape (B, {self.latent_dim}), got {tuple(z.shape)}")
        return self.net(z)

    def noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` draws of ``z ~ N(0, I)``: ``(n, latent_dim)`` on the CPU, to be moved to the device."""
        check_positive_int(n, "n")
        return torch.randn(n, self.latent_dim, generator=generator)


class Discriminator(nn.Module):
    """Images ``(B, 1, 28, 28)`` in ``[0, 1]`` -> logits ``(B,)``; ``D(x) = sigmoid(logit)``.

    Args:
        width: channels of the first convolution (the second has twice as many).
    """

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        check_positive_int(width, "width")
        self.net = nn.Sequential(
            nn.Conv2d(1, width, 4, stride=2, padding=1),  # (B, width, 14, 14)
            nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1, bias=False),  # (B, 2 width, 7, 7)
            nn.BatchNorm2d(2 * width),
            nn.LeakyReLU(0.2),
            nn.Flatten(),  # (B, 2 width * 49)
            nn.Linear(2 * width * 7 * 7, 1),  # (B, 1)
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        check_tensor(images, "images", ndim=4, floating=True)
        if tuple(images.shape[1:]) != (1, 28, 28):
            raise ValueError(f"images must have shape (B, 1, 28, 28), got {tuple(images.shape)}")
        return self.net(images).squeeze(1)  # (B,)
