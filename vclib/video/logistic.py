"""One-vs-all logistic regression on video-level features: one sigmoid per class."""

from __future__ import annotations

import torch
from torch import nn

from vclib.checks import check_positive_int, check_shape, check_tensor


class LogisticModel(nn.Module):
    """A linear layer giving one logit per class; ``sigmoid(logit_c)`` is P(class c present).

    The classes are scored independently (one-vs-all), as a video can carry several labels.
    Train with ``F.binary_cross_entropy_with_logits``.

    Args:
        input_dim: feature size D (1152 for mean_rgb + mean_audio).
        num_classes: C.
    """

    def __init__(self, input_dim: int, num_classes: int) -> None:
        super().__init__()
        check_positive_int(input_dim, "input_dim")
        check_positive_int(num_classes, "num_classes")
        self.linear = nn.Linear(input_dim, num_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``features (B, D)`` -> logits ``(B, C)``."""
        check_tensor(features, "features", floating=True)
        check_shape(features, "features", (None, self.linear.in_features))
        return self.linear(features)
