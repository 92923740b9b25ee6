"""How good is a trained VAE? The negative ELBO in nats, and the two terms of the course loss.

Under a Bernoulli decoder p(x | z) = prod_pixels Bernoulli(x_p; sigmoid(logits_p)) the evidence lower
bound of one image is

    ELBO(x) = E_q(z|x)[log p(x | z)] - KL(q(z | x) || p(z)) <= log p(x)

so the negative ELBO, in nats per image and summed over pixels, bounds -log p(x) from above: lower is
better. Greyscale pixels in [0, 1] are used as the Bernoulli targets, the usual convention for MNIST
VAEs; binarised-MNIST results in papers are a different (easier to score) benchmark.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch
import torch.nn.functional as F

from vclib.checks import check_range, check_same_shape, check_tensor
from vclib.generative.vae import ConvVAE, beta_vae_loss, kl_term
from vclib.train import eval_mode


def bernoulli_negative_elbo(logits: torch.Tensor, x: torch.Tensor, mu: torch.Tensor,
                            logvar: torch.Tensor) -> torch.Tensor:
    """Per-image negative ELBO in nats: ``-log p(x | z) + KL(N(mu, sigma^2) || N(0, I))``.

    Args:
        logits: ``(B, ...)`` decoder logits for one draw of z per image.
        x: ``(B, ...)`` targets in ``[0, 1]``, the same shape as ``logits``.
        mu, logvar: ``(B, ...)`` posterior parameters.

    Returns:
        ``(B,)`` nats per image: the binary cross-entropy summed over pixels plus the textbook KL,
        which is half of :func:`vclib.generative.vae.kl_term`.
    """
    check_tensor(logits, "logits", floating=True)
    check_same_shape(logits, x, "logits", "x")
    check_range(x, "x", 0.0, 1.0)
    check_same_shape(mu, logvar, "mu", "logvar")
    reconstruction = F.binary_cross_entropy_with_logits(logits, x, reduction="none")  # (B, ...)
    reconstruction = reconstruction.flatten(1).sum(dim=1)  # (B,)
    return reconstruction + 0.5 * kl_term(mu, logvar)


def _posterior_draws(model: ConvVAE, loader: Iterable, generator: torch.Generator | None
                     ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """For each batch: ``images``, ``mu``, ``logvar`` and the logits of one draw of z, in eval mode."""
    device = next(model.parameters()).device
    with eval_mode(model):
        for images, *_ in loader:
            images = images.to(device)  # (B, C, H, W)
            mu, logvar = model.encode(images)  # (B, latent_dim) each
            yield images, mu, logvar, model.decode_logits(model.reparameterize(mu, logvar, generator))


@torch.no_grad()
def negative_elbo(model: ConvVAE, loader: Iterable, generator: torch.Generator | None = None) -> float:
    """Mean negative ELBO (nats per image) of ``model`` over the images of ``loader``.

    One draw of z per image gives an unbiased Monte Carlo estimate; over a test set of a thousand
    images its noise is far below the differences between models.

    Args:
        model: a trained :class:`ConvVAE`.
        loader: yields ``(images (B, C, H, W) in [0, 1], *rest)``.
        generator: random generator for the draws of z, for a reproducible number.
    """
    total, count = 0.0, 0
    for images, mu, logvar, logits in _posterior_draws(model, loader, generator):
        total += bernoulli_negative_elbo(logits, images, mu, logvar).sum().item()
        count += images.shape[0]
    if count == 0:
        raise ValueError("loader must yield at least one image, got an empty loader")
    return total / count


@torch.no_grad()
def beta_vae_terms(model: ConvVAE, loader: Iterable,
                   generator: torch.Generator | None = None) -> dict[str, float]:
    """Means over ``loader`` of the course loss's reconstruction term ``||x_hat - x||^2`` and KL term."""
    sums, count = {"reconstruction": 0.0, "kl": 0.0}, 0
    for images, mu, logvar, logits in _posterior_draws(model, loader, generator):
        terms = beta_vae_loss(torch.sigmoid(logits), images, mu, logvar, beta=0.0)
        sums["reconstruction"] += terms.reconstruction.item() * images.shape[0]
        sums["kl"] += terms.kl.item() * images.shape[0]
        count += images.shape[0]
    if count == 0:
        raise ValueError("loader must yield at least one image, got an empty loader")
    return {name: value / count for name, value in sums.items()}
