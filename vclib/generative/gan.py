"""GAN losses (Goodfellow et al., 2014) written on discriminator logits.

The discriminator D outputs a logit l with D(x) = sigmoid(l). The min-max problem

    min_G max_D  E_x[log D(x)] + E_z[log(1 - D(G(z)))]

gives the discriminator loss  L_D = -E_x[log D(x)] - E_z[log(1 - D(G(z)))]  and the course's generator
loss  L_G = E_z[log(1 - D(G(z)))]. Early in training D rejects fakes confidently, D(G(z)) ~ 0, where
this "saturating" loss is flat; the non-saturating loss  -E_z[log D(G(z))]  has the same fixed point
but strong gradients there.

Everything is computed from logits with softplus, which is exact and stable for large |l|:

    -log sigmoid(l) = softplus(-l)        -log(1 - sigmoid(l)) = softplus(l)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vclib.checks import check_tensor


def _check_logits(logits: torch.Tensor, name: str) -> None:
    check_tensor(logits, name, floating=True)
    if logits.numel() == 0:
        raise ValueError(f"{name} must hold at least one logit, got shape {tuple(logits.shape)}")


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """``L_D = -E[log D(x)] - E[log(1 - D(G(z)))]`` from logits.

    Args:
        real_logits: ``(B,)`` or ``(B, 1)`` discriminator logits on real images.
        fake_logits: ``(B',)`` or ``(B', 1)`` discriminator logits on generated images.

    Returns:
        Scalar loss.
    """
    _check_logits(real_logits, "real_logits")
    _check_logits(fake_logits, "fake_logits")
    ### BEGIN SOLUTION
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
    ### END SOLUTION


def generator_loss(fake_logits: torch.Tensor, saturating: bool = True) -> torch.Tensor:
    """The generator's loss from the discriminator's logits on generated images.

    Args:
        fake_logits: ``(B,)`` or ``(B, 1)`` logits ``D`` gave to ``G(z)``.
        saturating: ``True`` gives the course formula ``E[log(1 - D(G(z)))]`` (minimised by G);
            ``False`` gives the non-saturating ``-E[log D(G(z))]``.

    Returns:
        Scalar loss.
    """
    _check_logits(fake_logits, "fake_logits")
    ### BEGIN SOLUTION
    if saturating:
        return -F.softplus(fake_logits).mean()
    return F.softplus(-fake_logits).mean()
    ### END SOLUTION
