"""Alternating GAN training: one discriminator step, then one generator step, per batch.

The history records what the course plots: the losses, the discriminator's mean outputs D(x) on real
and D(G(z)) on generated images, the norm of the generator's gradient (large early on for the
non-saturating loss, vanishing for the saturating one) and of the discriminator's, and samples from a
fixed noise batch.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import torch

from vclib.checks import check_positive_int
from vclib.generative.dcgan import Discriminator, Generator
from vclib.generative.gan import discriminator_loss, generator_loss
from vclib.train import eval_mode, progress


@dataclass
class GANHistory:
    """What :func:`train_gan` records.

    Attributes:
        steps: one dict per step: ``epoch``, ``step``, ``d_loss``, ``g_loss``, ``d_real`` (mean D(x)),
            ``d_fake`` (mean D(G(z)) before the discriminator's update), ``d_grad_norm`` and
            ``g_grad_norm`` (L2 norms of the two players' gradients).
        snapshots: ``(epoch, images (n, 1, 28, 28))`` generated from the fixed noise.
    """

    steps: list[dict[str, float]] = field(default_factory=list)
    snapshots: list[tuple[int, torch.Tensor]] = field(default_factory=list)

    def series(self, key: str, window: int = 1) -> list[float]:
        """One recorded quantity over all steps, averaged over consecutive chunks of ``window`` steps
        (a trailing partial chunk is dropped)."""
        check_positive_int(window, "window")
        if self.steps and key not in self.steps[0]:
            raise ValueError(f"key must be one of {list(self.steps[0])}, got {key!r}")
        values = torch.tensor([record[key] for record in self.steps], dtype=torch.float64)  # (steps,)
        chunks = values[: len(values) // window * window].view(-1, window)  # (steps // window, window)
        return chunks.mean(dim=1).tolist()


@torch.no_grad()
def generate(generator_model: Generator, z: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Images ``(n, 1, 28, 28)`` on the CPU from noise ``z (n, latent_dim)``.

    The generator runs in eval mode, so batch norm uses its running statistics and each image depends
    on its own z only.
    """
    check_positive_int(batch_size, "batch_size")
    device = next(generator_model.parameters()).device
    with eval_mode(generator_model):
        return torch.cat([generator_model(chunk.to(device)).cpu() for chunk in z.split(batch_size)])


def _gradient_norm(module: torch.nn.Module) -> float:
    squares = [p.grad.pow(2).sum() for p in module.parameters() if p.grad is not None]
    return torch.stack(squares).sum().sqrt().item() if squares else 0.0


def gan_step(
    generator_model: Generator,
    discriminator_model: Discriminator,
    real: torch.Tensor,
    z: torch.Tensor,
    optimizer_g: torch.optim.Optimizer,
    optimizer_d: torch.optim.Optimizer,
    saturating: bool = False,
) -> dict[str, float]:
    """One step of each player on one batch: first the discriminator, then the generator.

    Args:
        generator_model, discriminator_model: the two players (in train mode), on ``real``'s device.
        real: ``(B, 1, 28, 28)`` real images in [0, 1].
        z: ``(B, latent_dim)`` noise for the generated batch.
        optimizer_g, optimizer_d: the players' optimizers.
        saturating: generator loss; see :func:`vclib.generative.generator_loss`.

    Returns:
        ``d_loss``, ``g_loss``, ``d_real`` (mean D(x)), ``d_fake`` (mean D(G(z)) before D's update),
        ``d_grad_norm`` (L2 norm of the gradient of ``L_D`` with respect to D's parameters) and
        ``g_grad_norm`` (L2 norm of the gradient of ``L_G`` with respect to G's parameters).
    """
    fake = generator_model(z)  # (B, 1, 28, 28)
    real_logits, fake_logits = discriminator_model(real), discriminator_model(fake.detach())  # (B,) each
    d_loss = discriminator_loss(real_logits, fake_logits)
    optimizer_d.zero_grad(set_to_none=True)
    d_loss.backward()
    d_grad_norm = _gradient_norm(discriminator_model)
    optimizer_d.step()

    g_loss = generator_loss(discriminator_model(fake), saturating=saturating)  # D after its update
    optimizer_g.zero_grad(set_to_none=True)
    g_loss.backward()
    g_grad_norm = _gradient_norm(generator_model)
    optimizer_g.step()
    return {
        "d_loss": d_loss.item(), "g_loss": g_loss.item(), "d_real": torch.sigmoid(real_logits).mean().item(),
        "d_fake": torch.sigmoid(fake_logits).mean().item(), "d_grad_norm": d_grad_norm, "g_grad_norm": g_grad_norm,
    }


def train_gan(
    generator_model: Generator,
    discriminator_model: Discriminator,
    loader: Iterable,
    *,
    epochs: int,
    saturating: bool = False,
    lr: float = 2e-4,
    betas: tuple[float, float] = (0.5, 0.999),
    fixed_noise: torch.Tensor | None = None,
    snapshot_every: int = 1,
    max_steps: int | None = None,
    seed: int = 0,
    progress_bar: bool | None = None,
) -> GANHistory:
    """Train both players in place with Adam (DCGAN's ``lr`` and ``betas``), one :func:`gan_step` per batch.

    Args:
        generator_model, discriminator_model: the two players, on the same device.
        loader: yields ``(images (B, 1, 28, 28) in [0, 1], *rest)``; labels are ignored.
        epochs: passes over ``loader``.
        saturating: generator loss, as in :func:`gan_step`.
        lr, betas: Adam settings for both players.
        fixed_noise: ``(n, latent_dim)``; when given, samples from it are stored every
            ``snapshot_every`` epochs and after the last one.
        snapshot_every: epochs between snapshots.
        max_steps: stop after this many steps (to study the start of training).
        seed: seed of the ``torch.Generator`` that draws the training noise.
        progress_bar: show a progress bar; None: on in interactive sessions, off when ``VCLIB_PROGRESS=0``.
    """
    check_positive_int(epochs, "epochs")
    check_positive_int(snapshot_every, "snapshot_every")
    if max_steps is not None:
        check_positive_int(max_steps, "max_steps")
    device = next(generator_model.parameters()).device
    optimizer_g = torch.optim.Adam(generator_model.parameters(), lr=lr, betas=betas)
    optimizer_d = torch.optim.Adam(discriminator_model.parameters(), lr=lr, betas=betas)
    noise_source = torch.Generator().manual_seed(seed)
    history = GANHistory()
    generator_model.train()
    discriminator_model.train()
    for epoch in range(1, epochs + 1):
        for real, *_ in progress(loader, progress_bar=progress_bar, desc=f"gan {epoch}/{epochs}"):
            z = generator_model.noise(real.shape[0], noise_source).to(device)  # (B, latent_dim)
            record = gan_step(generator_model, discriminator_model, real.to(device), z, optimizer_g, optimizer_d,
                              saturating)
            history.steps.append({"epoch": epoch, "step": len(history.steps) + 1, **record})
            if max_steps is not None and len(history.steps) >= max_steps:
                break
        finished = epoch == epochs or (max_steps is not None and len(history.steps) >= max_steps)
        if fixed_noise is not None and (epoch % snapshot_every == 0 or finished):
            history.snapshots.append((epoch, generate(generator_model, fixed_noise)))
        if finished:
            break
    return history
