"""Evaluating point-cloud classifiers on clean and corrupted clouds: dropped points, noise, rotation."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from vclib.checks import check_fraction, check_non_negative, check_positive_int, check_shape


def logits_of(outputs: torch.Tensor | tuple) -> torch.Tensor:
    """The logits of a classifier's outputs: the tensor itself, or the first field of a tuple
    (:class:`~vclib.pointcloud.pointnet.PointNetOutput`)."""
    return outputs if isinstance(outputs, torch.Tensor) else outputs[0]


@torch.no_grad()
def predict_logits(model: nn.Module, points: torch.Tensor, batch_size: int = 100,
                   device: torch.device | str | None = None) -> torch.Tensor:
    """Logits ``(M, C)`` on the CPU for clouds ``(M, N, 3)``, in eval mode, ``batch_size`` at a time.

    ``device=None`` uses the device of the model's first parameter.
    """
    from vclib.train import eval_mode

    check_shape(points, "points", (None, None, 3))
    check_positive_int(batch_size, "batch_size")
    if device is None:
        device = next(model.parameters()).device
    with eval_mode(model):
        chunks = [logits_of(model(points[i:i + batch_size].to(device))).float().cpu()
                  for i in range(0, len(points), batch_size)]
    return torch.cat(chunks)


def accuracy_on(model: nn.Module, points: torch.Tensor, targets: torch.Tensor, batch_size: int = 100) -> float:
    """Fraction of clouds ``(M, N, 3)`` whose arg-max class equals ``targets (M,)``."""
    return (predict_logits(model, points, batch_size).argmax(1) == targets).float().mean().item()


def drop_points(points: torch.Tensor, fraction: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Keep a random ``1 - fraction`` of every cloud's points (at least one): ``(B, N, 3) -> (B, N', 3)``."""
    check_shape(points, "points", (None, None, 3))
    check_fraction(fraction, "fraction", inclusive_high=False)
    B, N, _ = points.shape
    keep = max(1, round(N * (1 - fraction)))
    order = torch.rand(B, N, generator=generator).argsort(dim=1)[:, :keep]  # (B, keep)
    return points[torch.arange(B)[:, None], order]


def jitter(points: torch.Tensor, sigma: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Add Gaussian noise of standard deviation ``sigma`` to every coordinate."""
    check_shape(points, "points", (None, None, 3))
    check_non_negative(sigma, "sigma")
    return points + sigma * torch.randn(points.shape, generator=generator).to(points)


def rotate_z(points: torch.Tensor, degrees: float) -> torch.Tensor:
    """Rotate clouds ``(B, N, 3)`` about the vertical (z) axis, counter-clockwise seen from above."""
    check_shape(points, "points", (None, None, 3))
    angle = math.radians(degrees)
    c, s = math.cos(angle), math.sin(angle)
    rotation = torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], dtype=points.dtype)
    return points @ rotation.T.to(points.device)


def robustness_curves(model: nn.Module, points: torch.Tensor, targets: torch.Tensor,
                      drop_fractions: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 0.9),
                      noise_sigmas: Sequence[float] = (0.0, 0.01, 0.02, 0.04, 0.08),
                      angles: Sequence[float] = (0, 15, 30, 60, 90, 180), seed: int = 0) -> dict[str, list[float]]:
    """Accuracy against the fraction of dropped points, the noise level and the rotation about z.

    Returns:
        ``{"drop": [...], "noise": [...], "rotation": [...]}``, one accuracy per setting.
    """
    generator = torch.Generator().manual_seed(seed)
    return {
        "drop": [accuracy_on(model, drop_points(points, f, generator), targets) for f in drop_fractions],
        "noise": [accuracy_on(model, jitter(points, s, generator), targets) for s in noise_sigmas],
        "rotation": [accuracy_on(model, rotate_z(points, a), targets) for a in angles],
    }
