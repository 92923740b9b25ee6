"""The vanilla (Elman) recurrent network from scratch, a drop-in twin of ``nn.RNNCell`` and ``nn.RNN``.

    h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)

The same weights are applied at every time step; the hidden state ``h_t`` carries what the network
remembers of ``x_1 .. x_t``. Gradients reaching ``x_1`` from a loss at step ``T`` pass through ``T - 1``
products with ``W_hh`` and ``tanh'``, so they tend to vanish (or explode) as ``T`` grows.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from vclib.checks import check_choice
from vclib.sequence.recurrent import RecurrentCell, RecurrentLayer

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
        input_gates: ``(B, H)``, ``x_t W_ih^T + b_ih``.
        h: ``(B, H)``, the previous hidden state ``h_{t-1}``.
        weight_hh: ``(H, H)``; bias_hh: ``(H,)`` or None.
        nonlinearity: ``"tanh"`` (the default, as in torch) or ``"relu"``.

    Returns:
        ``h_t``: ``(B, H)``.
    """
    ### BEGIN SOLUTION
    return NONLINEARITIES[nonlinearity](input_gates + F.linear(h, weight_hh, bias_hh))
    ### END SOLUTION


class RNNCell(RecurrentCell):
    """One step of an Elman RNN; loads ``nn.RNNCell``'s ``state_dict`` and computes the same values.

    ``forward(input, hx=None)``: input ``(B, input_size)`` or ``(input_size,)``; hx ``(B, H)`` or ``(H,)``
    (zeros if None). Returns ``h'`` with hx's shape.
    """

    num_gates = 1

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        check_choice(nonlinearity, "nonlinearity", tuple(NONLINEARITIES))
        super().__init__(input_size, hidden_size, bias, device, dtype)
        self.nonlinearity = nonlinearity

    def step(self, input_gates: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return rnn_step(input_gates, h, self.weight_hh, self.bias_hh, self.nonlinearity)


class RNN(RecurrentLayer):
    """A single-layer Elman RNN, the twin of ``nn.RNN`` (same arguments and defaults, same ``state_dict``).

    Shapes as in :class:`~vclib.sequence.recurrent.RecurrentLayer`: input ``(T, B, input_size)``, or
    ``(B, T, input_size)`` with ``batch_first``; returns ``(output, h_n (1, B, H))``.
    """

    num_gates = 1

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        check_choice(nonlinearity, "nonlinearity", tuple(NONLINEARITIES))
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, device, dtype)
        self.nonlinearity = nonlinearity

    def step(self, input_gates: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return rnn_step(input_gates, h, self.weight_hh_l0, self.bias_hh_l0, self.nonlinearity)
