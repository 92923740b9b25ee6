"""Mixture of experts, as in the YouTube-8M starter code: per class, a gated mix of sigmoid experts.

For class c and M experts, a softmax gate over M + 1 choices weighs the experts; the extra choice is a
"dummy" expert that always says 0::

    p_c(x) = sum_{m < M} g_{c,m}(x) * sigmoid(e_{c,m}(x)),   g_c(x) = softmax(gate logits, M + 1 entries)

Gates and experts are linear in x. With M = 1 it is a logistic model times a confidence; with M >= 2 the
gate can send different kinds of videos of a class to different experts, which no single hyperplane can do.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vclib.checks import check_positive_int, check_shape, check_tensor


class MoeModel(nn.Module):
    """Gated sigmoid experts per class. Returns logits ``log p / (1 - p)``, so it trains with
    ``F.binary_cross_entropy_with_logits`` like the other video models.

    Args:
        input_dim: feature size D.
        num_classes: C.
        num_mixtures: experts per class M (the starter code's default is 2).
    """

    def __init__(self, input_dim: int, num_classes: int, num_mixtures: int = 2) -> None:
        super().__init__()
        check_positive_int(input_dim, "input_dim")
        check_positive_int(num_classes, "num_classes")
        check_positive_int(num_mixtures, "num_mixtures")
        self.num_classes, self.num_mixtures = num_classes, num_mixtures
        self.gates = nn.Linear(input_dim, num_classes * (num_mixtures + 1))
        self.experts = nn.Linear(input_dim, num_classes * num_mixtures)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``features (B, D)`` -> logits ``(B, C)``."""
        check_tensor(features, "features", floating=True)
        check_shape(features, "features", (None, self.gates.in_features))
        batch, classes, mixtures = features.shape[0], self.num_classes, self.num_mixtures
        gate_logits = self.gates(features).view(batch, classes, mixtures + 1)  # (B, C(M+1)) -> (B, C, M+1)
        log_gates = F.log_softmax(gate_logits, dim=-1)  # (B, C, M+1)
        experts = self.experts(features).view(batch, classes, mixtures)  # (B, C*M) -> (B, C, M)
        # log p = log sum_m g_m sigmoid(e_m), and log (1 - p) = log (sum_m g_m sigmoid(-e_m) + g_dummy),
        # both as log-sum-exps of log terms, so the logit log p - log (1 - p) never overflows.
        expert_gates, dummy_gate = log_gates[..., :mixtures], log_gates[..., mixtures:]  # (B,C,M), (B,C,1)
        log_p = torch.logsumexp(expert_gates + F.logsigmoid(experts), dim=-1)  # (B, C)
        not_p_terms = torch.cat([expert_gates + F.logsigmoid(-experts), dummy_gate], dim=-1)  # (B, C, M+1)
        return log_p - torch.logsumexp(not_p_terms, dim=-1)
