"""The long short-term memory (LSTM) from scratch, a drop-in twin of ``nn.LSTMCell`` and ``nn.LSTM``.

An LSTM carries two states: the hidden state ``h_t`` (its output) and the cell state ``c_t`` (its memory).
With ``σ`` the logistic sigmoid and ``⊙`` the element-wise product:

    i_t = σ(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)       input gate
    f_t = σ(W_if x_t + b_if + W_hf h_{t-1} + b_hf)       forget gate
    g_t = tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)    cell candidate
    o_t = σ(W_io x_t + b_io + W_ho h_{t-1} + b_ho)       output gate
    c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t                      cell state
    h_t = o_t ⊙ tanh(c_t)                                hidden state

``weight_ih`` stacks ``[W_ii; W_if; W_ig; W_io]`` along dim 0 and ``weight_hh`` stacks
``[W_hi; W_hf; W_hg; W_ho]``, the gate order and layout of ``nn.LSTMCell``. The cell state is updated by
addition, not by a matrix product: along ``c`` the gradient from ``c_t`` to ``c_{t-1}`` is just ``f_t``,
so with the forget gate open (``f_t ≈ 1``) it passes many steps without vanishing.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from vclib.sequence.recurrent import (
    RecurrentCell,
    RecurrentLayer,
    check_cell_input,
    check_sequence_input,
    unroll,
)

LSTMState = tuple[torch.Tensor, torch.Tensor]


def lstm_step(
    input_gates: torch.Tensor, state: LSTMState, weight_hh: torch.Tensor, bias_hh: torch.Tensor | None
) -> LSTMState:
    """One LSTM step, given the input part ``W_i· x_t + b_i·`` of the four gates already computed.

    Args:
        input_gates: ``(B, 4H)``, ``x_t W_ih^T + b_ih``, stacked i, f, g, o.
        state: ``(h, c)``, the previous hidden and cell states, each ``(B, H)``.
        weight_hh: ``(4H, H)``; bias_hh: ``(4H,)`` or None.

    Returns:
        ``(h_t, c_t)``, each ``(B, H)``.
    """
    h, c = state
    gates = input_gates + F.linear(h, weight_hh, bias_hh)  # (B, 4H)
    i, f, g, o = gates.chunk(4, dim=-1)  # 4 x (B, H)
    c_next = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)  # forget some memory, write some new
    h_next = torch.sigmoid(o) * torch.tanh(c_next)  # expose part of the memory
    return h_next, c_next


def split_state(hx: object) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """``hx`` as torch's LSTMs take it: None (zeros) or a pair ``(h_0, c_0)``; anything else raises ValueError."""
    if hx is None:
        return None, None
    if not isinstance(hx, tuple | list) or len(hx) != 2:
        got = f"a {type(hx).__name__} of length {len(hx)}" if isinstance(hx, tuple | list) else type(hx).__name__
        raise ValueError(f"hx must be None or a pair (h_0, c_0) of tensors, got {got}")
    return hx[0], hx[1]


class LSTMCell(RecurrentCell):
    """One LSTM step; loads ``nn.LSTMCell``'s ``state_dict`` and computes the same values and gradients.

    ``forward(input, hx=None)``: input ``(B, input_size)`` or ``(input_size,)``; hx a pair ``(h, c)``, each
    ``(B, H)`` or ``(H,)``, or None for zeros. Returns the pair ``(h', c')`` in the states' shape.
    """

    num_gates = 4

    def step(self, input_gates: torch.Tensor, state: LSTMState) -> LSTMState:  # type: ignore[override]
        return lstm_step(input_gates, state, self.weight_hh, self.bias_hh)

    def forward(self, input: torch.Tensor, hx: LSTMState | None = None) -> LSTMState:  # type: ignore[override]
        h, c = split_state(hx)
        dtype = self.weight_ih.dtype
        x, h, unbatched = check_cell_input(input, h, self.input_size, self.hidden_size, dtype, name="hx[0]")
        _, c, _ = check_cell_input(input, c, self.input_size, self.hidden_size, dtype, name="hx[1]")
        input_gates = F.linear(x, self.weight_ih, self.bias_ih)  # (B, 4H)
        h_next, c_next = self.step(input_gates, (h, c))  # (B, H) each
        return (h_next[0], c_next[0]) if unbatched else (h_next, c_next)


class LSTM(RecurrentLayer):
    """A single-layer LSTM, the twin of ``nn.LSTM`` (same arguments and defaults, same ``state_dict``).

    Not implemented, as for :class:`~vclib.sequence.GRU`: ``num_layers`` other than 1, ``dropout`` other
    than 0, ``bidirectional=True``; nor ``proj_size`` other than 0 (LSTMs with projections). Each raises
    ValueError.

    ``forward(input, hx=None)``: input ``(T, B, input_size)`` (torch's default), ``(B, T, input_size)`` with
    ``batch_first``, or unbatched ``(T, input_size)``; ``hx`` None (zeros) or a pair ``(h_0, c_0)``, each
    ``(1, B, H)`` (``(1, H)`` unbatched). Returns ``(output, (h_n, c_n))`` like ``nn.LSTM``: output holds every
    ``h_t`` in the input's layout, ``h_n`` and ``c_n`` are the last states, each ``(1, B, H)``.
    """

    num_gates = 4

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        if proj_size != 0:
            raise ValueError(f"proj_size must be 0 (LSTMs with projections are not implemented), got {proj_size!r}")
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, device, dtype)

    def step(self, input_gates: torch.Tensor, state: LSTMState) -> LSTMState:  # type: ignore[override]
        return lstm_step(input_gates, state, self.weight_hh_l0, self.bias_hh_l0)

    def forward(  # type: ignore[override]
        self, input: torch.Tensor, hx: LSTMState | None = None
    ) -> tuple[torch.Tensor, LSTMState]:
        h_0, c_0 = split_state(hx)
        sizes = (self.input_size, self.hidden_size, self.batch_first, self.weight_ih_l0.dtype)
        x, h0, unbatched = check_sequence_input(input, h_0, *sizes, name="hx[0]")  # (B, T, I), (B, H)
        _, c0, _ = check_sequence_input(input, c_0, *sizes, name="hx[1]")  # (B, H)
        input_gates = F.linear(x, self.weight_ih_l0, self.bias_ih_l0)  # (B, T, 4H), all steps at once
        output, (h_n, c_n) = unroll(self.step, input_gates, (h0, c0))  # (B, T, H), (B, H) each
        if unbatched:
            return output[0], (h_n, c_n)  # (T, H), (1, H) each
        if not self.batch_first:
            output = output.transpose(0, 1)  # (T, B, H)
        return output, (h_n.unsqueeze(0), c_n.unsqueeze(0))  # (1, B, H) each
