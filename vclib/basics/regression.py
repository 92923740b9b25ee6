"""Polynomial regression: features 1, x, ..., x^d and the linear model on them as an ``nn.Module``."""

from __future__ import annotations

import torch
from torch import nn

from vclib.checks import check_positive_int, check_tensor


def polynomial_features(x: torch.Tensor, degree: int) -> torch.Tensor:
    """Powers of ``x`` up to ``degree``: ``(N,) -> (N, degree + 1)`` with columns ``1, x, x^2, ...``."""
    check_tensor(x, "x", ndim=1, floating=True)
    check_positive_int(degree, "degree", minimum=0)
    return x.unsqueeze(1) ** torch.arange(degree + 1, dtype=x.dtype)  # (N, degree + 1)


class PolynomialRegression(nn.Module):
    """y = w · [1, x, ..., x^d]: a linear layer (no separate bias) on :func:`polynomial_features`."""

    def __init__(self, degree: int) -> None:
        super().__init__()
        check_positive_int(degree, "degree", minimum=0)
        self.degree = degree
        self.linear = nn.Linear(degree + 1, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: ``(N,)`` float -> predictions ``(N,)``."""
        return self.linear(polynomial_features(x, self.degree)).squeeze(1)  # (N,)
