"""Softmax and cross-entropy written from scratch, numerically stable, with a hand-derived gradient.

Subtracting the row maximum before exponentiating changes nothing mathematically,
softmax(z) = softmax(z - max z), but keeps every exponent <= 0, so logits of size 1e4 do not overflow.
"""

from __future__ import annotations

import torch

from vclib.basics.logistic import reduce
from vclib.checks import check_tensor


def softmax(logits: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """exp(z_i) / Σ_j exp(z_j) along ``dim``; ``logits`` any shape, float."""
    check_tensor(logits, "logits", floating=True)
    ### BEGIN SOLUTION
    shifted = logits - logits.amax(dim=dim, keepdim=True)  # every entry <= 0
    exps = shifted.exp()
    return exps / exps.sum(dim=dim, keepdim=True)
    ### END SOLUTION


def log_softmax(logits: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """z_i - log Σ_j exp(z_j) along ``dim``, via the max-shift (log-sum-exp trick)."""
    check_tensor(logits, "logits", floating=True)
    shifted = logits - logits.amax(dim=dim, keepdim=True)
    return shifted - shifted.exp().sum(dim=dim, keepdim=True).log()


class _CrossEntropy(torch.autograd.Function):
    """Per-sample cross-entropy of ``(N, C)`` logits with the analytic gradient softmax(z) - onehot(y).

    Forward computes  loss_n = log Σ_j exp(z_nj - m_n) + m_n - z_{n,y_n}  with m_n = max_j z_nj, keeping the
    shifted exponentials for the backward pass instead of a full log-softmax matrix (fewer passes over
    the (N, C) logits, which is what costs time at large C).
    """

    @staticmethod
    def forward(ctx, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        row_max = logits.amax(dim=1, keepdim=True)  # (N, 1)
        exps = (logits - row_max).exp_()  # (N, C), every entry in (0, 1]
        sums = exps.sum(dim=1, keepdim=True)  # (N, 1), >= 1
        ctx.save_for_backward(exps, sums, target)
        target_logit = logits.gather(1, target.unsqueeze(1))  # (N, 1)
        return (sums.log() + row_max - target_logit).squeeze(1)  # (N,)

    @staticmethod
    def backward(ctx, grad_losses: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        exps, sums, target = ctx.saved_tensors
        grad = exps / sums  # softmax, (N, C)
        grad.scatter_add_(1, target.unsqueeze(1), torch.full_like(sums, -1.0))  # minus one-hot
        return grad.mul_(grad_losses.unsqueeze(1)), None  # (N, C)


def cross_entropy(logits: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """-log softmax(logits)[target], like ``F.cross_entropy`` with class-index targets.

    Args:
        logits: ``(N, C)`` or ``(N, C, d1, ..., dk)`` float.
        target: ``(N,)`` or ``(N, d1, ..., dk)`` int64 class indices in [0, C).
        reduction: ``"mean"`` (over all N*d1*...*dk positions), ``"sum"`` or ``"none"`` (shape of ``target``).
    """
    check_tensor(logits, "logits", floating=True)
    check_tensor(target, "target", dtype=torch.int64)
    if logits.dim() < 2:
        raise ValueError(f"logits must have shape (N, C, *), got {tuple(logits.shape)}")
    expected = (logits.shape[0], *logits.shape[2:])
    if tuple(target.shape) != expected:
        raise ValueError(
            f"target must have shape {expected} for logits {tuple(logits.shape)}, got {tuple(target.shape)}"
        )
    num_classes = logits.shape[1]
    if target.numel() and (target.min() < 0 or target.max() >= num_classes):
        raise ValueError(f"target must lie in [0, {num_classes - 1}], got [{target.min()}, {target.max()}]")
    flat_logits = logits.movedim(1, -1).reshape(-1, num_classes)  # (N*d1*...*dk, C)
    losses = _CrossEntropy.apply(flat_logits, target.reshape(-1))  # (N*d1*...*dk,)
    return reduce(losses.reshape(target.shape), reduction)
