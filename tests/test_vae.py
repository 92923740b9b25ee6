"""The beta-VAE loss against torch.distributions, the ConvVAE's shapes, and the Bernoulli negative ELBO."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Normal, kl_divergence
from torch.utils.data import DataLoader, TensorDataset

from vclib.generative import (
    ConvVAE,
    bernoulli_negative_elbo,
    beta_vae_loss,
    beta_vae_objective,
    beta_vae_terms,
    kl_term,
    negative_elbo,
)


def random_terms(batch: int = 4, image: tuple[int, ...] = (1, 5, 3), latent: tuple[int, ...] = (6,),
                 seed: int = 0) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, *image, generator=generator, dtype=torch.float64)
    x_hat = torch.rand(batch, *image, generator=generator, dtype=torch.float64)
    mu = torch.randn(batch, *latent, generator=generator, dtype=torch.float64)
    logvar = torch.randn(batch, *latent, generator=generator, dtype=torch.float64)
    return x_hat, x, mu, logvar


def oracle_loss(x_hat, x, mu, logvar, beta):
    """The course loss from library pieces: summed squared error and twice the textbook KL."""
    batch = x.shape[0]
    reconstruction = F.mse_loss(x_hat, x, reduction="sum") / batch
    posterior = Normal(mu, torch.exp(0.5 * logvar))
    prior = Normal(torch.zeros_like(mu), torch.ones_like(mu))
    kl = 2 * kl_divergence(posterior, prior).sum() / batch
    return reconstruction + beta * kl, reconstruction, kl


@pytest.mark.exercise("vclib.generative.vae.beta_vae_loss")
@pytest.mark.parametrize("latent", [(6,), (3, 5), (2, 2, 3)])
@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0, 4.0])
def test_loss_matches_torch_distributions(latent: tuple[int, ...], beta: float) -> None:
    x_hat, x, mu, logvar = random_terms(latent=latent)
    loss = beta_vae_loss(x_hat, x, mu, logvar, beta)
    expected_total, expected_reconstruction, expected_kl = oracle_loss(x_hat, x, mu, logvar, beta)
    torch.testing.assert_close(loss.total, expected_total)
    torch.testing.assert_close(loss.reconstruction, expected_reconstruction)
    torch.testing.assert_close(loss.kl, expected_kl)


@pytest.mark.exercise("vclib.generative.vae.kl_term")
def test_kl_term_is_twice_the_textbook_kl_per_sample() -> None:
    _, _, mu, logvar = random_terms(batch=7, latent=(3, 4))
    textbook = kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0)).flatten(1).sum(1)  # (7,)
    torch.testing.assert_close(kl_term(mu, logvar), 2 * textbook)
    assert kl_term(torch.zeros(2, 5), torch.zeros(2, 5)).abs().max() == 0  # posterior equal to the prior


@pytest.mark.exercise("vclib.generative.vae.beta_vae_loss")
@pytest.mark.parametrize("beta", [0.0, 0.3, 2.0])
def test_gradients_match_the_oracle(beta: float) -> None:
    tensors = [t.requires_grad_(True) for t in random_terms(batch=3, image=(2, 3, 3), latent=(4,))]
    beta_vae_loss(*tensors, beta).total.backward()
    ours = [t.grad.clone() for t in tensors]
    for t in tensors:
        t.grad = None
    oracle_loss(*tensors, beta)[0].backward()
    for got, expected in zip(ours, [t.grad for t in tensors], strict=True):
        torch.testing.assert_close(got, expected)


def test_beta_zero_is_pure_reconstruction() -> None:
    x_hat, x, mu, logvar = (t.requires_grad_(True) for t in random_terms())
    loss = beta_vae_loss(x_hat, x, mu, logvar, beta=0)
    torch.testing.assert_close(loss.total, loss.reconstruction)
    assert loss.kl > 0
    loss.total.backward()
    assert mu.grad is None or mu.grad.abs().max() == 0
    assert logvar.grad is None or logvar.grad.abs().max() == 0


def test_loss_is_a_batch_mean() -> None:
    """Duplicating the batch does not change the loss; the sum over pixels does grow with image size."""
    x_hat, x, mu, logvar = random_terms()
    loss = beta_vae_loss(x_hat, x, mu, logvar, 1.0)
    doubled = beta_vae_loss(*(torch.cat([t, t]) for t in (x_hat, x, mu, logvar)), 1.0)
    torch.testing.assert_close(loss.total, doubled.total)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"x": torch.rand(4, 1, 5, 4)}, r"x_hat and x must have the same shape"),
        ({"logvar": torch.rand(4, 5)}, r"mu and logvar must have the same shape"),
        ({"mu": torch.rand(3, 6), "logvar": torch.rand(3, 6)}, r"mu must have batch size 4"),
        ({"beta": -1.0}, r"beta must be a number >= 0, got -1.0"),
        ({"beta": None}, r"beta must be a number >= 0, got None"),
        ({"x": torch.zeros(4, 1, 5, 3, dtype=torch.long)}, r"x must have a floating-point dtype"),
        ({"mu": torch.rand(4), "logvar": torch.rand(4)}, r"mu must have shape \(B, ...\) with ndim >= 2"),
    ],
)
def test_bad_inputs_raise(change: dict, match: str) -> None:
    x_hat, x, mu, logvar = (t.float() for t in random_terms())
    arguments = {"x_hat": x_hat, "x": x, "mu": mu, "logvar": logvar, "beta": 1.0, **change}
    with pytest.raises(ValueError, match=match):
        beta_vae_loss(**arguments)


def test_model_shapes_and_methods() -> None:
    torch.manual_seed(0)
    model = ConvVAE(latent_dim=5, width=8)
    x = torch.rand(3, 1, 28, 28)
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (3, 5)
    out = model(x)
    assert out.x_hat.shape == out.logits.shape == x.shape
    torch.testing.assert_close(out.x_hat, torch.sigmoid(out.logits))
    assert model.decode(mu).shape == (3, 1, 28, 28)
    samples = model.sample(6, generator=torch.Generator().manual_seed(1))
    assert samples.shape == (6, 1, 28, 28) and samples.min() >= 0 and samples.max() <= 1
    torch.testing.assert_close(samples, model.sample(6, generator=torch.Generator().manual_seed(1)))


def test_model_other_image_sizes() -> None:
    model = ConvVAE(latent_dim=2, image_size=16, in_channels=3, width=4)
    assert model(torch.rand(2, 3, 16, 16)).x_hat.shape == (2, 3, 16, 16)
    with pytest.raises(ValueError, match=r"x must have shape \(B, 3, 16, 16\), got \(2, 1, 16, 16\)"):
        model.encode(torch.rand(2, 1, 16, 16))
    with pytest.raises(ValueError, match="image_size must be divisible by 4, got 30"):
        ConvVAE(image_size=30)
    with pytest.raises(ValueError, match=r"z must have shape \(B, 2\), got \(4, 3\)"):
        model.decode(torch.rand(4, 3))


def test_reparameterization_draws_from_the_posterior_and_passes_gradients() -> None:
    mu = torch.tensor([[1.0, -2.0]]).repeat(20000, 1).requires_grad_(True)  # (20000, 2)
    logvar = torch.log(torch.tensor([[0.25, 4.0]])).repeat(20000, 1).requires_grad_(True)
    z = ConvVAE.reparameterize(mu, logvar, torch.Generator().manual_seed(0))
    torch.testing.assert_close(z.mean(0), torch.tensor([1.0, -2.0]), atol=0.05, rtol=0)
    torch.testing.assert_close(z.std(0), torch.tensor([0.5, 2.0]), atol=0.05, rtol=0)
    z.sum().backward()
    torch.testing.assert_close(mu.grad, torch.ones_like(mu))  # dz/dmu = 1
    assert logvar.grad.abs().sum() > 0


def test_bernoulli_negative_elbo_matches_distributions() -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 1, 6, 6, generator=generator, dtype=torch.float64)
    x = torch.rand(5, 1, 6, 6, generator=generator, dtype=torch.float64)
    mu = torch.randn(5, 3, generator=generator, dtype=torch.float64)
    logvar = torch.randn(5, 3, generator=generator, dtype=torch.float64)
    binary_x = (x > 0.5).double()
    log_likelihood = torch.distributions.Bernoulli(logits=logits).log_prob(binary_x).flatten(1).sum(1)  # (5,)
    kl = kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0)).sum(1)  # (5,)
    torch.testing.assert_close(bernoulli_negative_elbo(logits, binary_x, mu, logvar), kl - log_likelihood)
    # Greyscale targets: the cross-entropy that binary_cross_entropy_with_logits computes.
    expected = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1) + kl
    torch.testing.assert_close(bernoulli_negative_elbo(logits, x, mu, logvar), expected)
    # Stable for confident logits.
    confident = bernoulli_negative_elbo(torch.full((1, 4), 200.0), torch.zeros(1, 4), mu[:1], logvar[:1])
    torch.testing.assert_close(confident, 4 * 200.0 + kl[:1])
    with pytest.raises(ValueError, match=r"x must lie in \[0.0, 1.0\]"):
        bernoulli_negative_elbo(logits, x * 255, mu, logvar)
    with pytest.raises(ValueError, match="logits and x must have the same shape"):
        bernoulli_negative_elbo(logits, x[:, :, :5], mu, logvar)


def test_negative_elbo_over_a_loader_matches_a_manual_computation() -> None:
    torch.manual_seed(0)
    model = ConvVAE(latent_dim=3, width=4)
    images = torch.rand(10, 1, 28, 28)
    loader = DataLoader(TensorDataset(images, torch.zeros(10)), batch_size=4)
    model.train()
    value = negative_elbo(model, loader, generator=torch.Generator().manual_seed(3))
    assert model.training
    # The reference uses the model's encoder and decoder only; the ELBO, the draw of z and the course terms
    # are written out with torch.distributions and F's losses.
    generator = torch.Generator().manual_seed(3)
    manual, reconstruction, kl_course = [], [], []
    with torch.no_grad():
        for chunk in images.split(4):
            mu, logvar = model.encode(chunk)  # (B, 3) each
            posterior = Normal(mu, torch.exp(0.5 * logvar))
            z = mu + posterior.scale * torch.randn(mu.shape, generator=generator)  # one draw per image
            logits = model.decode_logits(z)  # (B, 1, 28, 28)
            log_likelihood = -F.binary_cross_entropy_with_logits(logits, chunk, reduction="none").flatten(1).sum(1)
            kl = kl_divergence(posterior, Normal(0.0, 1.0)).sum(1)  # (B,) nats
            manual.append(kl - log_likelihood)
            reconstruction.append(F.mse_loss(torch.sigmoid(logits), chunk, reduction="none").flatten(1).sum(1))
            kl_course.append(2 * kl)
    assert value == pytest.approx(torch.cat(manual).mean().item(), rel=1e-5)
    # An untrained decoder's output is near 0.5 everywhere, so the ELBO is close to 784 log 2 nats.
    assert 0.8 * 784 * math.log(2) < value < 1.2 * 784 * math.log(2)
    terms = beta_vae_terms(model, loader, generator=torch.Generator().manual_seed(3))
    assert terms["reconstruction"] == pytest.approx(torch.cat(reconstruction).mean().item(), rel=1e-5)
    assert terms["kl"] == pytest.approx(torch.cat(kl_course).mean().item(), rel=1e-5)
    with pytest.raises(ValueError, match="empty loader"):
        negative_elbo(model, [])


def test_training_with_the_objective_lowers_the_loss() -> None:
    torch.manual_seed(0)
    model = ConvVAE(latent_dim=2, width=4)
    images = torch.zeros(32, 1, 28, 28)
    for index in range(32):  # a bright square in one of four corners
        row, column = 14 * (index % 2), 14 * (index // 2 % 2)
        images[index, 0, row:row + 14, column:column + 14] = 1.0
    objective = beta_vae_objective(0.5)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(70):
        loss = objective(model(images), images)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    with pytest.raises(ValueError, match="beta must be a number >= 0"):
        beta_vae_objective(-0.5)


def test_latent_traversal_figure_and_widget() -> None:
    from vclib.generative import explorers

    model = ConvVAE(latent_dim=3, width=4).eval()
    figure = explorers.draw_latent_traversal(model.decode, torch.zeros(3), values=(-1, 0, 1))
    axes = figure.axes
    assert len(axes) == 9  # 3 dimensions x 3 values
    middle_image = axes[1].images[0].get_array()  # z[0] = 0, i.e. the base code
    with torch.no_grad():
        expected = model.decode(torch.zeros(1, 3))[0, 0]
    assert torch.allclose(torch.as_tensor(middle_image), expected)
    assert len(explorers.draw_latent_traversal(model.decode, torch.zeros(3), dims=[2]).axes) == 5
    with pytest.raises(ValueError, match="base must have 1 dimensions"):
        explorers.draw_latent_traversal(model.decode, torch.zeros(1, 3))
    explorers.latent_traversal_widget(model.decode, 3)  # builds the sliders and draws once
