"""The vanilla (Elman) recurrent network from scratch, a drop-in twin of ``nn.RNNCell`` and ``nn.RNN``.

    h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)

The same weights are applied at every time step; the hidden state ``h_t`` carries what the network
remembers of ``x_1 .. x_t``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from vclib.checks import check_choice
from vclib.sequence.recurrent import (
    check_cell_input,
    check_sequence_input,
    register_recurrent_parameters,
    unroll,
)

NONLINEARITIES = {"tanh": torch.tanh, "relu": torch.relu}


def rnn_step(
    input_gates: torch.Tensor,
    h: torch.Tensor,
    weight_hh: torch.Tensor,
    bias_hh: torch.Tensor | None,
    nonlinearity: str = "tanh",
) -> torch.Tensor:
    """One RNN step, given the input part ``W_ih x_t + b_ih`` already computed.

    Args:
        input_gates: ``(B, H)``, ``W_ih x_t + b_ih``.
        h: ``(B, H)``, the previous hidden state ``h_{t-1}``.
        weight_hh: ``(H, H)``; bias_hh: ``(H,)`` or None.

    Returns:
        ``h_t``: ``(B, H)``.
    """
    return NONLINEARITIES[nonlinearity](input_gates + F.linear(h, weight_hh, bias_hh))


class RNNCell(nn.Module):
    """One step of an Elman RNN; loads ``nn.RNNCell``'s ``state_dict`` and computes the same values.

    ``forward(input, hx=None)``: input ``(B, input_size)`` or ``(input_size,)``; hx ``(B, H)`` or ``(H,)``
    (zeros if None). Returns ``h'`` with hx's shape.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh") -> None:
        super().__init__()
        check_choice(nonlinearity, "nonlinearity", tuple(NONLINEARITIES))
        self.input_size, self.hidden_size, self.nonlinearity = input_size, hidden_size, nonlinearity
        register_recurrent_parameters(self, input_size, hidden_size, num_gates=1, bias=bias)

    def forward(self, input: torch.Tensor, hx: torch.Tensor | None = None) -> torch.Tensor:
        x, h, unbatched = check_cell_input(input, hx, self.input_size, self.hidden_size, self.weight_ih.dtype)
        input_gates = F.linear(x, self.weight_ih, self.bias_ih)  # (B, H)
        h_next = rnn_step(input_gates, h, self.weight_hh, self.bias_hh, self.nonlinearity)  # (B, H)
        return h_next[0] if unbatched else h_next

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, nonlinearity={self.nonlinearity!r}"


class RNN(nn.Module):
    """A single-layer Elman RNN; its ``state_dict`` equals ``nn.RNN(num_layers=1)``'s.

    ``forward(input, hx=None)`` takes input ``(B, T, input_size)`` (``batch_first=True``, the default here),
    ``(T, B, input_size)`` otherwise, or unbatched ``(T, input_size)``, and an optional initial state
    ``hx`` ``(1, B, H)``. Like ``nn.RNN`` it returns ``(output, h_n)``: output holds every ``h_t``
    (``(B, T, H)`` when batch_first) and ``h_n`` ``(1, B, H)`` is the last one.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        batch_first: bool = True,
        bias: bool = True,
        nonlinearity: str = "tanh",
    ) -> None:
        super().__init__()
        check_choice(nonlinearity, "nonlinearity", tuple(NONLINEARITIES))
        self.input_size, self.hidden_size, self.nonlinearity = input_size, hidden_size, nonlinearity
        self.batch_first = batch_first
        register_recurrent_parameters(self, input_size, hidden_size, num_gates=1, bias=bias, suffix="_l0")

    def forward(self, input: torch.Tensor, hx: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        x, h0, unbatched = check_sequence_input(
            input, hx, self.input_size, self.hidden_size, self.batch_first, self.weight_ih_l0.dtype
        )
        input_gates = F.linear(x, self.weight_ih_l0, self.bias_ih_l0)  # (B, T, H), all steps at once

        def step(gates_t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
            return rnn_step(gates_t, h, self.weight_hh_l0, self.bias_hh_l0, self.nonlinearity)

        output, h_n = unroll(step, input_gates, h0)  # (B, T, H), (B, H)
        if unbatched:
            return output[0], h_n  # (T, H), (1, H)
        if not self.batch_first:
            output = output.transpose(0, 1)  # (T, B, H)
        return output, h_n.unsqueeze(0)  # h_n: (1, B, H)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, batch_first={self.batch_first}"
