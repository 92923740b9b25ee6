"""A convolutional variational auto-encoder (Kingma and Welling, 2014) and the course's beta-VAE loss.

The generative model factorises as p(x, z) = p(x | z) p(z): a standard-normal prior p(z) = N(0, I) and
a decoder p(x | z). The encoder q(z | x) = N(mu(x), diag(sigma(x)^2)) approximates the posterior. With
the reparameterisation z = mu + sigma * epsilon, epsilon ~ N(0, I), the sampling step is differentiable
in mu and sigma, so encoder and decoder train together by backpropagation.

The course loss for one image is

    L(x) = ||x_hat - x||^2 + beta * sum_i (mu_i^2 + sigma_i^2 - log sigma_i^2 - 1)

The textbook KL divergence KL(N(mu, sigma^2) || N(0, 1)) carries a factor 1/2 in front of the sum;
here beta absorbs it (and the decoder's variance), so beta = 1/2 is the plain VAE with a Gaussian
decoder of variance 1/2.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from vclib.checks import check_non_negative, check_positive_int, check_same_shape, check_tensor


class VAEOutput(NamedTuple):
    """What :meth:`ConvVAE.forward` returns.

    Attributes:
        x_hat: ``(B, C, H, W)`` reconstruction in ``[0, 1]`` (the decoder's Bernoulli means).
        mu: ``(B, latent_dim)`` posterior means.
        logvar: ``(B, latent_dim)`` posterior log-variances ``log sigma^2``.
        logits: ``(B, C, H, W)`` decoder logits, ``x_hat = sigmoid(logits)``.
    """

    x_hat: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor
    logits: torch.Tensor


class ConvVAE(nn.Module):
    """Convolutional encoder and decoder for small images such as 28x28 digits.

    The encoder halves the resolution twice with stride-2 convolutions (28 -> 14 -> 7) and maps the
    feature map to ``2 * latent_dim`` numbers: ``mu`` and ``logvar``. The decoder mirrors it with
    transposed convolutions and returns logits; ``decode`` applies the sigmoid.

    Args:
        latent_dim: size of z.
        image_size: height and width of the square images, divisible by 4.
        in_channels: C, the image channels.
        width: channels of the first convolution (the second has twice as many).
    """

    def __init__(self, latent_dim: int = 8, image_size: int = 28, in_channels: int = 1, width: int = 32) -> None:
        super().__init__()
        check_positive_int(latent_dim, "latent_dim")
        check_positive_int(in_channels, "in_channels")
        check_positive_int(width, "width")
        if check_positive_int(image_size, "image_size") % 4:
            raise ValueError(f"image_size must be divisible by 4, got {image_size}")
        self.latent_dim = latent_dim
        self.image_shape = (in_channels, image_size, image_size)
        small = image_size // 4
        self.encoder = nn.Sequential(
            nn.Conv2d(in_channels, width, 4, stride=2, padding=1),  # (B, width, H/2, W/2)
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1),  # (B, 2 width, H/4, W/4)
            nn.ReLU(),
            nn.Flatten(),  # (B, 2 width * H/4 * W/4)
            nn.Linear(2 * width * small * small, 2 * latent_dim),
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, 2 * width * small * small),
            nn.ReLU(),
            nn.Unflatten(1, (2 * width, small, small)),  # (B, 2 width, H/4, W/4)
            nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1),  # (B, width, H/2, W/2)
            nn.ReLU(),
            nn.ConvTranspose2d(width, in_channels, 4, stride=2, padding=1),  # (B, C, H, W) logits
        )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior parameters: ``x (B, C, H, W)`` -> ``mu (B, latent_dim)``, ``logvar (B, latent_dim)``."""
        check_tensor(x, "x", ndim=4, floating=True)
        if tuple(x.shape[1:]) != self.image_shape:
            expected = ", ".join(map(str, self.image_shape))
            raise ValueError(f"x must have shape (B, {expected}), got {tuple(x.shape)}")
        mu, logvar = self.encoder(x).chunk(2, dim=1)  # two (B, latent_dim)
        return mu, logvar

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor,
                       generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``z = mu + sigma * epsilon`` with ``epsilon ~ N(0, I)``; differentiable in mu and logvar.

        With a ``generator``, ``epsilon`` is drawn on the generator's device and moved to ``mu``'s, so a
        seeded CPU generator gives the same draws whether the model runs on the CPU or a GPU.
        """
        device = generator.device if generator is not None else mu.device
        epsilon = torch.randn(mu.shape, generator=generator, device=device, dtype=mu.dtype).to(mu.device)
        return mu + torch.exp(0.5 * logvar) * epsilon

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Decoder logits: ``z (B, latent_dim)`` -> ``(B, C, H, W)``."""
        check_tensor(z, "z", ndim=2, floating=True)
        if z.shape[1] != self.latent_dim:
            raise ValueError(f"z must have shape (B, {self.latent_dim}), got {tuple(z.shape)}")
        return self.decoder(z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images: ``z (B, latent_dim)`` -> ``(B, C, H, W)`` in ``[0, 1]``."""
        return torch.sigmoid(self.decode_logits(z))

    def forward(self, x: torch.Tensor) -> VAEOutput:
        """Encode, draw one z per image, decode: ``x (B, C, H, W)`` -> :class:`VAEOutput`."""
        mu, logvar = self.encode(x)
        logits = self.decode_logits(self.reparameterize(mu, logvar))
        return VAEOutput(torch.sigmoid(logits), mu, logvar, logits)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` images decoded from the prior ``z ~ N(0, I)``: ``(n, C, H, W)`` in ``[0, 1]``."""
        check_positive_int(n, "n")
        device = next(self.parameters()).device
        z = torch.randn(n, self.latent_dim, generator=generator).to(device)  # (n, latent_dim)
        return self.decode(z)


class BetaVAELoss(NamedTuple):
    """Batch means of the course loss and its two terms (scalars)."""

    total: torch.Tensor
    reconstruction: torch.Tensor
    kl: torch.Tensor


def kl_term(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Per-sample ``sum_i (mu_i^2 + sigma_i^2 - log sigma_i^2 - 1)``, twice KL(N(mu, sigma^2) || N(0, I)).

    Args:
        mu, logvar: ``(B, ...)`` posterior means and log-variances.

    Returns:
        ``(B,)``, summed over all non-batch dimensions.
    """
    ### BEGIN SOLUTION
    return (mu.pow(2) + logvar.exp() - logvar - 1).flatten(1).sum(dim=1)  # (B,)
    ### END SOLUTION


def beta_vae_loss(x_hat: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
                  beta: float) -> BetaVAELoss:
    """The course's beta-VAE loss ``||x_hat - x||^2 + beta * sum_i (mu_i^2 + sigma_i^2 - log sigma_i^2 - 1)``.

    Both sums run over all non-batch dimensions of each sample; the result is averaged over the batch.

    Args:
        x_hat: ``(B, ...)`` reconstructions.
        x: ``(B, ...)`` targets, the same shape as ``x_hat``.
        mu: ``(B, ...)`` posterior means.
        logvar: ``(B, ...)`` posterior log-variances ``log sigma^2``, the same shape as ``mu``.
        beta: weight of the KL term, ``>= 0``.

    Returns:
        :class:`BetaVAELoss` ``(total, reconstruction, kl)``, each a scalar batch mean, with
        ``total = reconstruction + beta * kl``.
    """
    for value, name in ((x_hat, "x_hat"), (x, "x"), (mu, "mu"), (logvar, "logvar")):
        check_tensor(value, name, floating=True)
        if value.dim() < 2:
            raise ValueError(f"{name} must have shape (B, ...) with ndim >= 2, got {tuple(value.shape)}")
    check_same_shape(x_hat, x, "x_hat", "x")
    check_same_shape(mu, logvar, "mu", "logvar")
    if mu.shape[0] != x.shape[0]:
        raise ValueError(f"mu must have batch size {x.shape[0]} like x, got shape {tuple(mu.shape)}")
    check_non_negative(beta, "beta")
    ### BEGIN SOLUTION
    reconstruction = (x_hat - x).pow(2).flatten(1).sum(dim=1)  # (B,)
    kl = kl_term(mu, logvar)  # (B,)
    total = reconstruction + beta * kl
    return BetaVAELoss(total.mean(), reconstruction.mean(), kl.mean())
    ### END SOLUTION


def beta_vae_objective(beta: float):
    """``loss_fn(outputs, x)`` for :func:`vclib.train.fit`: the total :func:`beta_vae_loss` of a
    :class:`ConvVAE`'s outputs, for a dataset that yields ``(x, x)`` pairs."""
    check_non_negative(beta, "beta")

    def loss_fn(outputs: VAEOutput, x: torch.Tensor) -> torch.Tensor:
        return beta_vae_loss(outputs.x_hat, x, outputs.mu, outputs.logvar, beta).total

    return loss_fn
