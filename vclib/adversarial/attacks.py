"""White-box L-infinity attacks: the fast gradient sign method (FGSM) and projected gradient descent (PGD).

Both attacks work in pixel space: ``images`` lie in ``[0, 1]`` and so do the adversarial images they
return. Any normalisation (mean/std) belongs inside the model, so that the eps-ball is measured in the
units a person sees.

FGSM takes one step of size eps along the sign of the input gradient of the cross-entropy:

    x_adv = clamp(x + eps * sign(grad_x CE(f(x), y)), 0, 1)

PGD repeats smaller steps of size alpha and, after each one, projects back into the eps-ball around
``x`` and into the image range ``[0, 1]``. A targeted attack descends the loss towards chosen labels
instead of ascending it away from the true ones.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vclib.checks import check_non_negative, check_positive_int, check_range, check_tensor
from vclib.train import eval_mode


def _check_attack_inputs(images: torch.Tensor, targets: torch.Tensor, eps: float) -> None:
    check_tensor(images, "images", ndim=4, floating=True)
    check_range(images, "images", 0.0, 1.0)
    check_tensor(targets, "targets", ndim=1, dtype=torch.long)
    if targets.shape[0] != images.shape[0]:
        raise ValueError(
            f"targets must hold one target per image, expected shape ({images.shape[0]},), "
            f"got {tuple(targets.shape)}"
        )
    check_non_negative(eps, "eps")


def input_gradient(model: nn.Module, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Gradient of the mean cross-entropy with respect to the input pixels.

    Args:
        model: maps ``(B, C, H, W)`` images to ``(B, K)`` logits.
        images: ``(B, C, H, W)`` float.
        targets: ``(B,)`` int64 class indices.

    Returns:
        ``(B, C, H, W)`` gradient. The model's parameters receive no ``.grad``.
    """
    images = images.detach().requires_grad_(True)
    loss = F.cross_entropy(model(images), targets)
    (gradient,) = torch.autograd.grad(loss, images)
    return gradient


def fgsm(model: nn.Module, images: torch.Tensor, targets: torch.Tensor, eps: float) -> torch.Tensor:
    """Fast gradient sign method: one step of size ``eps`` that increases the cross-entropy.

    Args:
        model: maps ``(B, C, H, W)`` images in ``[0, 1]`` to ``(B, K)`` logits; it runs in eval mode
            during the attack and gets its previous mode back afterwards.
        images: ``(B, C, H, W)`` float in ``[0, 1]``.
        targets: ``(B,)`` int64 true labels.
        eps: L-infinity radius, ``>= 0``.

    Returns:
        ``(B, C, H, W)`` adversarial images ``clamp(images + eps * sign(grad), 0, 1)``, detached.
    """
    _check_attack_inputs(images, targets, eps)
    ### BEGIN SOLUTION
    with eval_mode(model):
        gradient = input_gradient(model, images, targets)
    return (images.detach() + eps * gradient.sign()).clamp(0.0, 1.0)
    ### END SOLUTION


def pgd(
    model: nn.Module,
    images: torch.Tensor,
    targets: torch.Tensor,
    eps: float,
    alpha: float,
    steps: int,
    random_start: bool = True,
    targeted: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Projected gradient descent under the L-infinity norm (Madry et al., 2018).

    Args:
        model: maps ``(B, C, H, W)`` images in ``[0, 1]`` to ``(B, K)`` logits; it runs in eval mode
            during the attack and gets its previous mode back afterwards.
        images: ``(B, C, H, W)`` float in ``[0, 1]``, the clean images.
        targets: ``(B,)`` int64; the true labels, or the labels to reach when ``targeted``.
        eps: L-infinity radius of the ball around ``images``, ``>= 0``.
        alpha: step size of each signed-gradient step, ``>= 0``.
        steps: number of steps, ``>= 1``.
        random_start: start from a uniform draw in the eps-ball (clamped to ``[0, 1]``) instead of
            from the clean images.
        targeted: descend the cross-entropy towards ``targets`` instead of ascending it.
        generator: random generator for the start, on any device (a seeded CPU generator gives the
            same start on every device); ``None`` uses torch's global generator on the images' device.

    Returns:
        ``(B, C, H, W)`` adversarial images, detached, with ``|x_adv - images| <= eps`` and values in
        ``[0, 1]``.
    """
    _check_attack_inputs(images, targets, eps)
    check_non_negative(alpha, "alpha")
    check_positive_int(steps, "steps")
    clean = images.detach()
    adversarial = clean.clone()
    if random_start:
        device = generator.device if generator is not None else clean.device
        noise = torch.empty(clean.shape, dtype=clean.dtype, device=device).uniform_(-eps, eps, generator=generator)
        adversarial = (adversarial + noise.to(clean.device)).clamp(0.0, 1.0)
    with eval_mode(model):
        for _ in range(steps):
            adversarial = pgd_step(model, adversarial, clean, targets, eps, alpha, targeted)
    return adversarial


def pgd_step(
    model: nn.Module,
    adversarial: torch.Tensor,
    clean: torch.Tensor,
    targets: torch.Tensor,
    eps: float,
    alpha: float,
    targeted: bool = False,
) -> torch.Tensor:
    """One PGD step: a signed-gradient step of size ``alpha``, then projection onto the eps-ball and ``[0, 1]``.

    Args:
        model: maps images to ``(B, K)`` logits (PGD runs it in eval mode).
        adversarial: ``(B, C, H, W)``, the current iterate ``x^t``.
        clean: ``(B, C, H, W)``, the clean images ``x`` at the centre of the ball.
        targets: ``(B,)`` int64 labels; eps, alpha, targeted: as in :func:`pgd`.

    Returns:
        ``x^{t+1}`` ``(B, C, H, W)``.
    """
    ### BEGIN SOLUTION
    direction = -1.0 if targeted else 1.0  # descend towards a target label, ascend away from the true one
    gradient = input_gradient(model, adversarial, targets)
    adversarial = adversarial + direction * alpha * gradient.sign()
    perturbation = (adversarial - clean).clamp(-eps, eps)  # projection onto the L-infinity ball
    return (clean + perturbation).clamp(0.0, 1.0)
    ### END SOLUTION
