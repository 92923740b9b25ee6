"""Pieces shared by the from-scratch recurrent layers: parameters, input checks and the unrolled loop.

A recurrent layer with ``G`` gates keeps four tensors, laid out exactly like ``torch.nn``'s:

- ``weight_ih``: ``(G * hidden_size, input_size)``, the gate weights for the input, stacked along dim 0;
- ``weight_hh``: ``(G * hidden_size, hidden_size)``, the gate weights for the previous hidden state;
- ``bias_ih``, ``bias_hh``: ``(G * hidden_size,)`` (absent when ``bias=False``).

A vanilla RNN has one gate, a GRU three (reset, update, new), an LSTM four (input, forget, cell,
output). Cells name them ``weight_ih``; single-layer sequence modules name them ``weight_ih_l0`` like
``nn.RNN`` / ``nn.GRU`` / ``nn.LSTM``, so ``state_dict``s are interchangeable with torch's.

:class:`RecurrentCell` and :class:`RecurrentLayer` hold the parameters, check inputs and run the loop;
a concrete network (``rnn.py``, ``gru.py``) only says how many gates it has and what one step computes.
An LSTM (``lstm.py``) carries a pair of states ``(h, c)``; it reuses the parameters, the checks and
:func:`unroll`, and has its own ``forward`` for the pair.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeVar

import torch
from torch import nn
from torch.nn import functional as F

from vclib.checks import check_positive_int, check_tensor

# A recurrent state: h (B, H) for an RNN or a GRU, the pair (h, c) for an LSTM.
State = TypeVar("State", torch.Tensor, tuple[torch.Tensor, torch.Tensor])
# step(input_gates (B, G*H), state) -> next state
StepFn = Callable[[torch.Tensor, State], State]


def register_recurrent_parameters(
    module: nn.Module, input_size: int, hidden_size: int, num_gates: int, bias: bool, suffix: str = ""
) -> None:
    """Create ``weight_ih``, ``weight_hh`` (and biases) on ``module``, initialised like torch's.

    Every entry is drawn from ``U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))``, the rule ``nn.RNN``,
    ``nn.GRU`` and their cells use.
    """
    check_positive_int(input_size, "input_size")
    check_positive_int(hidden_size, "hidden_size")
    bound = 1.0 / math.sqrt(hidden_size)
    shapes = {
        "weight_ih": (num_gates * hidden_size, input_size),
        "weight_hh": (num_gates * hidden_size, hidden_size),
        "bias_ih": (num_gates * hidden_size,),
        "bias_hh": (num_gates * hidden_size,),
    }
    for name, shape in shapes.items():
        if name.startswith("bias") and not bias:
            module.register_parameter(name + suffix, None)
            continue
        module.register_parameter(name + suffix, nn.Parameter(torch.empty(shape).uniform_(-bound, bound)))


def check_cell_input(
    input: torch.Tensor,
    hx: torch.Tensor | None,
    input_size: int,
    hidden_size: int,
    dtype: torch.dtype,
    name: str = "hx",
) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Validate a cell's ``input`` ``(B, input_size)`` or ``(input_size,)`` and ``hx`` ``(B, H)`` or ``(H,)``.

    Both must have the parameters' ``dtype``; ``name`` is the state's name in error messages (an LSTM checks
    ``hx[0]`` and ``hx[1]``).

    Returns:
        ``(input (B, I), hx (B, H), unbatched)``; a missing ``hx`` becomes zeros.
    """
    check_tensor(input, "input", ndim=(1, 2), dtype=dtype)
    unbatched = input.dim() == 1
    batch = input.unsqueeze(0) if unbatched else input  # (B, I)
    if batch.shape[-1] != input_size:
        raise ValueError(f"input must have {input_size} features in its last dimension, got shape {tuple(input.shape)}")
    if hx is None:
        return batch, batch.new_zeros(batch.shape[0], hidden_size), unbatched
    check_tensor(hx, name, ndim=input.dim(), dtype=dtype)
    h = hx.unsqueeze(0) if unbatched else hx  # (B, H)
    if h.shape != (batch.shape[0], hidden_size):
        expected = (hidden_size,) if unbatched else (batch.shape[0], hidden_size)
        raise ValueError(f"{name} must have shape {expected}, got {tuple(hx.shape)}")
    return batch, h, unbatched


def check_sequence_input(
    input: torch.Tensor,
    hx: torch.Tensor | None,
    input_size: int,
    hidden_size: int,
    batch_first: bool,
    dtype: torch.dtype,
    name: str = "hx",
) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Validate a sequence ``input`` and an optional initial state ``hx``, the way ``nn.GRU`` reads them.

    Both must have the parameters' ``dtype``; ``name`` is the state's name in error messages (an LSTM checks
    ``hx[0]`` and ``hx[1]``).

    Args:
        input: ``(B, T, I)`` if ``batch_first`` else ``(T, B, I)``; or unbatched ``(T, I)``.
        hx: ``(1, B, H)``, or ``(1, H)`` for unbatched input, or None for zeros.

    Returns:
        ``(x (B, T, I), h0 (B, H), unbatched)``.
    """
    check_tensor(input, "input", ndim=(2, 3), dtype=dtype)
    unbatched = input.dim() == 2
    if unbatched:
        x = input.unsqueeze(0)  # (1, T, I)
    else:
        x = input if batch_first else input.transpose(0, 1)  # (B, T, I)
    if x.shape[-1] != input_size:
        raise ValueError(f"input must have {input_size} features in its last dimension, got shape {tuple(input.shape)}")
    if x.shape[1] == 0:
        raise ValueError(f"input must have at least one time step, got shape {tuple(input.shape)}")
    if hx is None:
        return x, x.new_zeros(x.shape[0], hidden_size), unbatched
    expected = (1, hidden_size) if unbatched else (1, x.shape[0], hidden_size)
    check_tensor(hx, name, ndim=len(expected), dtype=dtype)
    if tuple(hx.shape) != expected:
        raise ValueError(f"{name} must have shape {expected} (num_layers=1), got {tuple(hx.shape)}")
    h0 = hx if unbatched else hx[0]  # (B, H)
    return x, h0, unbatched


def unroll(step: StepFn, input_gates: torch.Tensor, h0: State) -> tuple[torch.Tensor, State]:
    """Run ``step`` over time.

    The input projections of all time steps are computed before the loop in one matrix product (they do
    not depend on the hidden state); only the hidden-state part has to be sequential.

    Args:
        step: ``step(input_gates_t (B, G*H), state) -> next state``.
        input_gates: ``(B, T, G*H)``, the input projections ``x_t W_ih^T + b_ih`` of every step.
        h0: initial state: the hidden state ``(B, H)``, or an LSTM's pair ``(h_0, c_0)`` of ``(B, H)``.

    Returns:
        ``(outputs (B, T, H), final state)``: outputs hold the hidden state ``h_t`` of every step (the first
        entry of an LSTM's pair); the final state has ``h0``'s form.
    """
    state = h0
    outputs = []
    # unbind, not input_gates[:, t]: the backward of T slices would write T full-size zero tensors (O(T^2)),
    # unbind's backward stacks the T gradients once.
    for input_gates_t in input_gates.unbind(dim=1):  # T x (B, G*H)
        state = step(input_gates_t, state)  # (B, H), or (h, c) with each (B, H)
        outputs.append(state[0] if isinstance(state, tuple) else state)  # h_t: (B, H)
    return torch.stack(outputs, dim=1), state  # (B, T, H), like h0


class RecurrentCell(nn.Module):
    """Base of one-step cells: subclasses set ``num_gates`` and implement ``step``.

    ``forward(input, hx=None)``: input ``(B, input_size)`` or ``(input_size,)``; hx ``(B, H)`` or ``(H,)``
    (zeros if None). Returns the next hidden state with hx's shape.
    """

    num_gates: int

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        register_recurrent_parameters(self, input_size, hidden_size, self.num_gates, bias)
        self.to(device=device, dtype=dtype)

    def step(self, input_gates: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """``(B, G*H)`` input projections and ``(B, H)`` state -> next state ``(B, H)``."""
        raise NotImplementedError

    def forward(self, input: torch.Tensor, hx: torch.Tensor | None = None) -> torch.Tensor:
        x, h, unbatched = check_cell_input(input, hx, self.input_size, self.hidden_size, self.weight_ih.dtype)
        input_gates = F.linear(x, self.weight_ih, self.bias_ih)  # (B, G*H)
        h_next = self.step(input_gates, h)  # (B, H)
        return h_next[0] if unbatched else h_next

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, bias={self.bias_ih is not None}"


class RecurrentLayer(nn.Module):
    """Base of single-layer sequence modules: subclasses set ``num_gates`` and implement ``step``.

    The constructor takes ``nn.GRU``'s arguments with its defaults, so the twins swap in one line;
    ``num_layers`` must be 1, ``dropout`` 0 and ``bidirectional`` False (anything else raises ValueError).

    ``forward(input, hx=None)`` takes input ``(T, B, input_size)`` (torch's default layout),
    ``(B, T, input_size)`` with ``batch_first``, or unbatched ``(T, input_size)``, and an optional initial
    state ``hx`` ``(1, B, H)``. Like ``nn.GRU`` it returns ``(output, h_n)``: output holds every ``h_t`` in
    the input's layout and ``h_n`` ``(1, B, H)`` is the last one.
    """

    num_gates: int

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if num_layers != 1 or dropout != 0 or bidirectional:
            raise ValueError(
                "only one unidirectional layer is implemented: num_layers must be 1, dropout 0 and bidirectional "
                f"False, got num_layers={num_layers!r}, dropout={dropout!r}, bidirectional={bidirectional!r}"
            )
        self.input_size, self.hidden_size, self.batch_first = input_size, hidden_size, batch_first
        register_recurrent_parameters(self, input_size, hidden_size, self.num_gates, bias, suffix="_l0")
        self.to(device=device, dtype=dtype)

    def step(self, input_gates: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """``(B, G*H)`` input projections and ``(B, H)`` state -> next state ``(B, H)``."""
        raise NotImplementedError

    def forward(self, input: torch.Tensor, hx: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        x, h0, unbatched = check_sequence_input(
            input, hx, self.input_size, self.hidden_size, self.batch_first, self.weight_ih_l0.dtype
        )
        input_gates = F.linear(x, self.weight_ih_l0, self.bias_ih_l0)  # (B, T, G*H), all steps at once
        output, h_n = unroll(self.step, input_gates, h0)  # (B, T, H), (B, H)
        if unbatched:
            return output[0], h_n  # (T, H), (1, H)
        if not self.batch_first:
            output = output.transpose(0, 1)  # (T, B, H)
        return output, h_n.unsqueeze(0)  # h_n: (1, B, H)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, batch_first={self.batch_first}"
