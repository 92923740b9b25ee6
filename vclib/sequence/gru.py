"""The gated recurrent unit (GRU) from scratch, a drop-in twin of ``nn.GRUCell`` and ``nn.GRU``.

The course equations, with ``σ`` the logistic sigmoid and ``⊙`` the element-wise product:

    r_t = σ(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)            reset gate
    z_t = σ(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)            update gate
    n_t = tanh(W_in x_t + b_in + r_t ⊙ (W_hn h_{t-1} + b_hn))  new gate (candidate state)
    h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t-1}                     hidden state

``weight_ih`` stacks ``[W_ir; W_iz; W_in]`` along dim 0 and ``weight_hh`` stacks ``[W_hr; W_hz; W_hn]``,
the layout of ``nn.GRUCell``. When ``z_t`` is close to 1 the state is copied forward almost unchanged,
which is what lets gradients survive over many steps.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from vclib.sequence.recurrent import RecurrentCell, RecurrentLayer


def gru_step(
    input_gates: torch.Tensor, h: torch.Tensor, weight_hh: torch.Tensor, bias_hh: torch.Tensor | None
) -> torch.Tensor:
    """One GRU step, given the input part ``W_i· x_t + b_i·`` of the three gates already computed.

    Args:
        input_gates: ``(B, 3H)``, ``x_t W_ih^T + b_ih``, stacked r, z, n.
        h: ``(B, H)``, the previous hidden state ``h_{t-1}``.
        weight_hh: ``(3H, H)``; bias_hh: ``(3H,)`` or None.

    Returns:
        ``h_t``: ``(B, H)``.
    """
    ### BEGIN SOLUTION
    hidden_gates = F.linear(h, weight_hh, bias_hh)  # (B, 3H): W_h· h_{t-1} + b_h·
    x_r, x_z, x_n = input_gates.chunk(3, dim=-1)  # 3 x (B, H)
    h_r, h_z, h_n = hidden_gates.chunk(3, dim=-1)  # 3 x (B, H)
    r = torch.sigmoid(x_r + h_r)  # reset gate
    z = torch.sigmoid(x_z + h_z)  # update gate
    n = torch.tanh(x_n + r * h_n)  # new gate
    return (1 - z) * n + z * h
    ### END SOLUTION


class GRUCell(RecurrentCell):
    """One GRU step; loads ``nn.GRUCell``'s ``state_dict`` and computes the same values and gradients.

    ``forward(input, hx=None)``: input ``(B, input_size)`` or ``(input_size,)``; hx ``(B, H)`` or ``(H,)``
    (zeros if None). Returns ``h'`` with hx's shape.
    """

    num_gates = 3

    def step(self, input_gates: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return gru_step(input_gates, h, self.weight_hh, self.bias_hh)


class GRU(RecurrentLayer):
    """A single-layer GRU, the twin of ``nn.GRU`` (same arguments and defaults, same ``state_dict``).

    Shapes as in :class:`~vclib.sequence.recurrent.RecurrentLayer`: input ``(T, B, input_size)`` (torch's
    default), ``(B, T, input_size)`` with ``batch_first``, or unbatched ``(T, input_size)``; optional
    ``hx`` ``(1, B, H)``. Returns ``(output, h_n (1, B, H))``, output in the input's layout.
    """

    num_gates = 3

    def step(self, input_gates: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return gru_step(input_gates, h, self.weight_hh_l0, self.bias_hh_l0)
