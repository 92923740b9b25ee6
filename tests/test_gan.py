"""GAN losses against binary_cross_entropy_with_logits (values, gradients, large logits), and the DCGAN."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from vclib.generative import (
    Discriminator,
    Generator,
    discriminator_loss,
    gan_step,
    generate,
    generator_loss,
    train_gan,
)


def logits_pair(shape: tuple[int, ...] = (7,), scale: float = 3.0, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    real = scale * torch.randn(*shape, generator=generator, dtype=torch.float64)
    fake = scale * torch.randn(*shape, generator=generator, dtype=torch.float64)
    return real.requires_grad_(True), fake.requires_grad_(True)


def gradients(loss: torch.Tensor, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    return torch.autograd.grad(loss, tensors, allow_unused=True)


@pytest.mark.exercise("vclib.generative.gan.discriminator_loss")
@pytest.mark.parametrize("shape", [(1,), (7,), (5, 1)])
@pytest.mark.parametrize("scale", [1.0, 30.0, 300.0])
def test_discriminator_loss_matches_bce(shape: tuple[int, ...], scale: float) -> None:
    real, fake = logits_pair(shape, scale)
    ours = discriminator_loss(real, fake)
    reference = (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                 + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
    torch.testing.assert_close(ours, reference)
    for got, expected in zip(gradients(ours, real, fake), gradients(reference, real, fake), strict=True):
        torch.testing.assert_close(got, expected)


@pytest.mark.exercise("vclib.generative.gan.generator_loss")
@pytest.mark.parametrize("scale", [1.0, 30.0, 300.0])
def test_generator_losses_match_bce(scale: float) -> None:
    _, fake = logits_pair((9,), scale)
    saturating = generator_loss(fake, saturating=True)  # E[log(1 - D(G(z)))]
    saturating_reference = -F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
    torch.testing.assert_close(saturating, saturating_reference)
    torch.testing.assert_close(gradients(saturating, fake)[0], gradients(saturating_reference, fake)[0])
    non_saturating = generator_loss(fake, saturating=False)  # -E[log D(G(z))]
    non_saturating_reference = F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
    torch.testing.assert_close(non_saturating, non_saturating_reference)
    expected_gradient = gradients(non_saturating_reference, fake)[0]
    torch.testing.assert_close(gradients(non_saturating, fake)[0], expected_gradient)


@pytest.mark.exercise("vclib.generative.gan.generator_loss")
def test_default_generator_loss_is_the_course_formula() -> None:
    _, fake = logits_pair()
    probability = torch.sigmoid(fake)
    torch.testing.assert_close(generator_loss(fake), torch.log(1 - probability).mean())


@pytest.mark.exercise("vclib.generative.gan.discriminator_loss")
def test_discriminator_loss_matches_the_probability_formula() -> None:
    real, fake = logits_pair(scale=1.0)
    expected = -torch.log(torch.sigmoid(real)).mean() - torch.log(1 - torch.sigmoid(fake)).mean()
    torch.testing.assert_close(discriminator_loss(real, fake), expected)


def test_losses_are_finite_for_extreme_logits_where_naive_formulas_fail() -> None:
    fake = torch.tensor([-1000.0, 1000.0], requires_grad=True)
    real = torch.tensor([-1000.0, 1000.0], requires_grad=True)
    naive = torch.log(1 - torch.sigmoid(fake)).mean()
    assert not torch.isfinite(naive)  # log(0) for the confident fake
    for loss in (discriminator_loss(real, fake), generator_loss(fake, True), generator_loss(fake, False)):
        assert torch.isfinite(loss)
        assert all(torch.isfinite(g).all() for g in gradients(loss, real, fake) if g is not None)
    torch.testing.assert_close(generator_loss(fake, saturating=False), torch.tensor(500.0))  # 1000 / 2


def test_saturating_gradient_vanishes_when_the_discriminator_wins() -> None:
    """D(G(z)) ~ 0: the course loss barely moves G, the non-saturating loss pushes it at full strength."""
    fake = torch.full((4,), -8.0, requires_grad=True)
    (saturating,) = gradients(generator_loss(fake, saturating=True), fake)
    (non_saturating,) = gradients(generator_loss(fake, saturating=False), fake)
    assert saturating.abs().max() < 1e-3 / 4
    assert non_saturating.abs().min() > 0.99 / 4


@pytest.mark.parametrize("bad", [torch.zeros(3, dtype=torch.long), torch.zeros(0), [0.1, 0.2]])
def test_bad_logits_raise(bad) -> None:
    good = torch.zeros(3)
    with pytest.raises(ValueError, match="real_logits"):
        discriminator_loss(bad, good)
    with pytest.raises(ValueError, match="fake_logits"):
        discriminator_loss(good, bad)
    with pytest.raises(ValueError, match="fake_logits"):
        generator_loss(bad)


def test_dcgan_shapes_noise_and_bad_input() -> None:
    torch.manual_seed(0)
    generator, discriminator = Generator(latent_dim=16, width=8), Discriminator(width=8)
    z = generator.noise(5, torch.Generator().manual_seed(0))
    torch.testing.assert_close(z, torch.randn(5, 16, generator=torch.Generator().manual_seed(0)))
    images = generator(z)
    assert images.shape == (5, 1, 28, 28)
    assert discriminator(images).shape == (5,)
    with pytest.raises(ValueError, match=r"z must have shape \(B, 16\), got \(5, 8\)"):
        generator(torch.zeros(5, 8))
    with pytest.raises(ValueError, match=r"images must have shape \(B, 1, 28, 28\), got \(2, 1, 32, 32\)"):
        discriminator(torch.zeros(2, 1, 32, 32))


def test_generate_uses_eval_mode_and_restores_it() -> None:
    torch.manual_seed(0)
    generator = Generator(latent_dim=8, width=4).train()
    z = torch.randn(6, 8)
    together = generate(generator, z)
    one_by_one = generate(generator, z, batch_size=1)  # batch statistics would differ between the two
    torch.testing.assert_close(together, one_by_one)
    assert generator.training


def test_train_gan_records_history_and_learns_the_mean_brightness() -> None:
    """On images that are all the same pattern, a few hundred steps bring G's output towards it."""
    torch.manual_seed(0)
    target = torch.zeros(1, 1, 28, 28)
    target[..., 8:20, 8:20] = 1.0
    loader = DataLoader(TensorDataset(target.repeat(64, 1, 1, 1), torch.zeros(64)), batch_size=32)
    generator, discriminator = Generator(latent_dim=8, width=8), Discriminator(width=8)
    fixed = torch.randn(4, 8)
    before = (generate(generator, fixed) - target).abs().mean()
    history = train_gan(generator, discriminator, loader, epochs=60, lr=2e-3, fixed_noise=fixed,
                        snapshot_every=20, progress_bar=False)
    assert len(history.steps) == 120
    assert set(history.steps[0]) == {"epoch", "step", "d_loss", "g_loss", "d_real", "d_fake", "d_grad_norm",
                                     "g_grad_norm"}
    assert [epoch for epoch, _ in history.snapshots] == [20, 40, 60]
    assert history.snapshots[-1][1].shape == (4, 1, 28, 28)
    after = (history.snapshots[-1][1] - target).abs().mean()
    assert after < 0.5 * before


def test_gan_step_equals_the_written_out_step() -> None:
    """One step by hand with torch's BCE and Adam: the same losses and the same updated weights."""
    torch.manual_seed(0)
    generator, discriminator = Generator(latent_dim=8, width=4), Discriminator(width=4)
    hand_g, hand_d = copy.deepcopy(generator), copy.deepcopy(discriminator)
    real, z = torch.rand(6, 1, 28, 28), torch.randn(6, 8)
    optimizers = [torch.optim.Adam(m.parameters(), lr=1e-2) for m in (generator, discriminator)]
    record = gan_step(generator, discriminator, real, z, *optimizers, saturating=False)

    hand_opt_g, hand_opt_d = (torch.optim.Adam(m.parameters(), lr=1e-2) for m in (hand_g, hand_d))
    bce = F.binary_cross_entropy_with_logits
    fake = hand_g(z)
    real_logits, fake_logits = hand_d(real), hand_d(fake.detach())
    d_loss = bce(real_logits, torch.ones(6)) + bce(fake_logits, torch.zeros(6))
    d_loss.backward()
    d_grad_norm = torch.cat([p.grad.flatten() for p in hand_d.parameters()]).norm()
    hand_opt_d.step()
    hand_g.zero_grad()
    g_loss = bce(hand_d(fake), torch.ones(6))  # non-saturating, judged by the updated discriminator
    g_loss.backward()
    g_grad_norm = torch.cat([p.grad.flatten() for p in hand_g.parameters()]).norm()
    hand_opt_g.step()

    assert record["d_grad_norm"] == pytest.approx(d_grad_norm.item(), rel=1e-5)
    assert record["g_grad_norm"] == pytest.approx(g_grad_norm.item(), rel=1e-5)
    assert record["d_loss"] == pytest.approx(d_loss.item(), rel=1e-5)
    assert record["g_loss"] == pytest.approx(g_loss.item(), rel=1e-5)
    assert record["d_fake"] == pytest.approx(torch.sigmoid(fake_logits).mean().item(), rel=1e-5)
    for ours, theirs in zip([*generator.parameters(), *discriminator.parameters()],
                            [*hand_g.parameters(), *hand_d.parameters()], strict=True):
        torch.testing.assert_close(ours, theirs)


def test_train_gan_max_steps_and_loss_choice() -> None:
    torch.manual_seed(0)
    loader = DataLoader(TensorDataset(torch.rand(40, 1, 28, 28), torch.zeros(40)), batch_size=8)
    generator, discriminator = Generator(latent_dim=4, width=4), Discriminator(width=4)
    start_g, start_d = copy.deepcopy(generator), copy.deepcopy(discriminator)
    history = train_gan(generator, discriminator, loader, epochs=3, max_steps=7, saturating=True,
                        fixed_noise=torch.randn(2, 4), snapshot_every=5, seed=3, progress_bar=False)
    assert len(history.steps) == 7
    assert [epoch for epoch, _ in history.snapshots] == [2]  # 5 steps per epoch: stopped in epoch 2
    # The first record is one gan_step with noise from torch.Generator().manual_seed(seed) and the saturating loss.
    z = torch.randn(8, 4, generator=torch.Generator().manual_seed(3))
    optimizers = [torch.optim.Adam(m.parameters(), lr=2e-4, betas=(0.5, 0.999)) for m in (start_g, start_d)]
    first = gan_step(start_g.train(), start_d.train(), next(iter(loader))[0], z, *optimizers, saturating=True)
    assert {key: history.steps[0][key] for key in first} == pytest.approx(first, rel=1e-5)
    with pytest.raises(ValueError, match="epochs must be an int >= 1"):
        train_gan(generator, discriminator, loader, epochs=0)


def test_history_series_averages_chunks_of_steps() -> None:
    from vclib.generative import GANHistory

    history = GANHistory(steps=[{"step": i + 1, "d_loss": float(i)} for i in range(7)])
    assert history.series("d_loss") == [0, 1, 2, 3, 4, 5, 6]
    assert history.series("d_loss", window=3) == [1.0, 4.0]  # the partial chunk (step 7) is dropped
    with pytest.raises(ValueError, match="key must be one of"):
        history.series("g_grad")
    with pytest.raises(ValueError, match="window must be an int >= 1"):
        history.series("d_loss", window=0)


def test_interpolation_path_figure_and_widget() -> None:
    from vclib.generative import explorers

    start, end = torch.zeros(4), torch.ones(4)
    path = explorers.interpolate(start, end, steps=5)
    torch.testing.assert_close(path[:, 0], torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0]))
    torch.testing.assert_close(path[0], start)
    torch.testing.assert_close(path[-1], end)
    with pytest.raises(ValueError, match=r"z_end must have shape \(4,\) like z_start, got \(3,\)"):
        explorers.interpolate(start, torch.ones(3), steps=5)
    with pytest.raises(ValueError, match="steps must be an int >= 2, got 1"):
        explorers.interpolate(start, end, steps=1)
    generator = Generator(latent_dim=4, width=4).eval()
    assert len(explorers.draw_interpolation(generator, start, end, steps=6).axes) == 6
    explorers.interpolation_widget(generator, torch.randn(3, 4))
