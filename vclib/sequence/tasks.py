"""A toy many-to-many task for recurrent networks: recall a symbol after a growing lag.

Step 0 shows a cue: a random symbol ``s`` with a marker bit set. Every later step shows a random
distractor symbol (marker bit off). At every step ``t`` the network must output ``s``, so step ``t``
tests a memory that is ``t`` steps old: accuracy per step is accuracy against lag. To succeed the network
has to store ``s`` once and then ignore ``t`` distractors, and the gradient of a late loss with respect to
early inputs shows whether learning signal reaches that far back (vanishing gradients).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from vclib.checks import check_choice, check_positive_int, check_tensor
from vclib.sequence.gru import GRU
from vclib.sequence.lstm import LSTM
from vclib.sequence.rnn import RNN

RECURRENT_LAYERS = {"rnn": RNN, "gru": GRU, "lstm": LSTM}


def recall_sequences(
    num_sequences: int, length: int, num_symbols: int = 8, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random cue-then-distractor sequences for the delayed-recall task.

    Returns:
        inputs: ``(N, T, num_symbols + 1)`` float: a one-hot symbol per step, and a last channel that is
            1 at step 0 (the cue) and 0 elsewhere.
        targets: ``(N, T)`` long: the cue symbol, repeated at every step.
    """
    check_positive_int(num_sequences, "num_sequences")
    check_positive_int(length, "length")
    check_positive_int(num_symbols, "num_symbols", minimum=2)
    symbols = torch.randint(num_symbols, (num_sequences, length), generator=generator)  # (N, T)
    marker = torch.zeros(num_sequences, length, 1)  # (N, T, 1)
    marker[:, 0] = 1.0
    inputs = torch.cat([F.one_hot(symbols, num_symbols).float(), marker], dim=-1)  # (N, T, V + 1)
    targets = symbols[:, :1].expand(num_sequences, length).clone()  # (N, T): the cue at every step
    return inputs, targets


class SequenceTagger(nn.Module):
    """Many-to-many model: a recurrent layer (``"rnn"``, ``"gru"`` or ``"lstm"``) and a linear read-out per step.

    ``forward(inputs (B, T, input_size)) -> logits (B, T, num_classes)``.
    """

    def __init__(self, input_size: int, hidden_size: int, num_classes: int, cell: str = "gru") -> None:
        super().__init__()
        check_choice(cell, "cell", tuple(RECURRENT_LAYERS))
        self.recurrent = RECURRENT_LAYERS[cell](input_size, hidden_size, batch_first=True)
        self.readout = nn.Linear(hidden_size, num_classes)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        states, _ = self.recurrent(inputs)  # (B, T, H)
        return self.readout(states)  # (B, T, C)


def _check_logits_targets(logits: torch.Tensor, targets: torch.Tensor) -> None:
    check_tensor(logits, "logits", ndim=3, floating=True)
    check_tensor(targets, "targets", ndim=2)
    if logits.shape[:2] != targets.shape:
        raise ValueError(f"targets must have shape {tuple(logits.shape[:2])}, got {tuple(targets.shape)}")


def sequence_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy averaged over every step of every sequence.

    Args:
        logits: ``(B, T, C)``; targets: ``(B, T)`` long.
    """
    _check_logits_targets(logits, targets)
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten())  # (B*T, C) against (B*T,)


def accuracy_per_step(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Fraction of sequences predicted correctly at each step.

    Args:
        logits: ``(B, T, C)``; targets: ``(B, T)`` long.

    Returns:
        ``(T,)`` float.
    """
    _check_logits_targets(logits, targets)
    return (logits.argmax(dim=-1) == targets).float().mean(dim=0)  # (T,)


def input_gradient_norms(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """How much the loss at the last step depends on each input: ``||∂L_T / ∂x_t||`` for every ``t``.

    Args:
        model: maps ``(B, T, I)`` to ``(B, T, C)`` logits.
        inputs: ``(B, T, I)``; targets: ``(B, T)``, only the last step is used.

    Returns:
        ``(T,)``: the gradient norm per step, averaged over the batch.
    """
    check_tensor(inputs, "inputs", ndim=3, floating=True)
    check_tensor(targets, "targets", ndim=2)
    inputs = inputs.detach().requires_grad_(True)
    logits = model(inputs)  # (B, T, C)
    _check_logits_targets(logits, targets)
    loss = F.cross_entropy(logits[:, -1], targets[:, -1])
    (grad,) = torch.autograd.grad(loss, inputs)  # (B, T, I)
    return grad.norm(dim=-1).mean(dim=0)  # (T,)
