"""vclib.sequence.LSTM and LSTMCell against nn.LSTM and nn.LSTMCell: layout, values, gradients, errors."""

import inspect

import pytest
import torch
from torch import nn

from vclib.sequence import LSTM, LSTMCell, lstm_step
from vclib.sequence.tasks import SequenceTagger, input_gradient_norms

ATOL = {"atol": 1e-10, "rtol": 1e-10}  # float64
# (batch, input_size, hidden_size, bias, with_hx)
CELL_CASES = [(4, 6, 5, True, True), (1, 6, 5, True, False), (3, 6, 5, False, True), (2, 1, 1, True, True)]
# (batch, length, input_size, hidden_size, batch_first, with_hx)
LAYER_CASES = [
    (4, 7, 6, 5, True, True),
    (3, 1, 6, 5, True, False),
    (1, 5, 6, 5, True, True),
    (1, 1, 6, 5, False, True),
    (2, 6, 6, 5, False, False),
    (3, 4, 2, 1, False, True),  # hidden_size 1
]


def twins(ours_cls, torch_cls, *args, **kwargs):
    """A torch module in float64 and ours loaded from its state_dict."""
    reference = torch_cls(*args, **kwargs).double()
    ours = ours_cls(*args, **kwargs).double()
    ours.load_state_dict(reference.state_dict())
    return ours, reference


@pytest.mark.parametrize("ours_cls,torch_cls", [(LSTMCell, nn.LSTMCell), (LSTM, nn.LSTM)])
@pytest.mark.parametrize("bias", [True, False])
def test_state_dict_layout_equals_torch(ours_cls, torch_cls, bias):
    ours, reference = ours_cls(3, 5, bias=bias), torch_cls(3, 5, bias=bias)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in reference.state_dict().items()}
    assert ours.state_dict()["weight_ih" if ours_cls is LSTMCell else "weight_ih_l0"].shape == (20, 3)
    reference.load_state_dict(ours.state_dict())  # and the other way round


@pytest.mark.parametrize("batch,input_size,hidden,bias,with_hx", CELL_CASES)
def test_cell_values_and_gradients_equal_torch(batch, input_size, hidden, bias, with_hx):
    ours, reference = twins(LSTMCell, nn.LSTMCell, input_size, hidden, bias=bias)
    x = torch.randn(batch, input_size, dtype=torch.float64, requires_grad=True)
    states = [torch.randn(batch, hidden, dtype=torch.float64, requires_grad=True) for _ in range(2)]
    hx = tuple(states) if with_hx else None
    (h_ours, c_ours), (h_ref, c_ref) = ours(x, hx), reference(x, hx)
    torch.testing.assert_close(h_ours, h_ref, **ATOL)
    torch.testing.assert_close(c_ours, c_ref, **ATOL)
    upstream = (torch.randn_like(h_ref), torch.randn_like(c_ref))
    wrt_ours = [x, *(states if with_hx else []), *ours.parameters()]
    wrt_ref = [x, *(states if with_hx else []), *reference.parameters()]
    g_ours = torch.autograd.grad((h_ours, c_ours), wrt_ours, upstream)
    g_ref = torch.autograd.grad((h_ref, c_ref), wrt_ref, upstream)
    for a, b in zip(g_ours, g_ref, strict=True):
        torch.testing.assert_close(a, b, **ATOL)


@pytest.mark.parametrize("batch,length,input_size,hidden,batch_first,with_hx", LAYER_CASES)
@pytest.mark.parametrize("bias", [True, False])
def test_layer_values_and_gradients_equal_torch(batch, length, input_size, hidden, batch_first, with_hx, bias):
    ours, reference = twins(LSTM, nn.LSTM, input_size, hidden, bias=bias, batch_first=batch_first)
    shape = (batch, length, input_size) if batch_first else (length, batch, input_size)
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    states = [torch.randn(1, batch, hidden, dtype=torch.float64, requires_grad=True) for _ in range(2)]
    hx = tuple(states) if with_hx else None
    (out_ours, (h_ours, c_ours)), (out_ref, (h_ref, c_ref)) = ours(x, hx), reference(x, hx)
    assert out_ours.shape == out_ref.shape
    assert h_ours.shape == c_ours.shape == h_ref.shape == (1, batch, hidden)
    for a, b in ((out_ours, out_ref), (h_ours, h_ref), (c_ours, c_ref)):
        torch.testing.assert_close(a, b, **ATOL)
    upstream = (torch.randn_like(out_ref), torch.randn_like(h_ref), torch.randn_like(c_ref))
    wrt_ours = [x, *(states if with_hx else []), *ours.parameters()]
    wrt_ref = [x, *(states if with_hx else []), *reference.parameters()]
    g_ours = torch.autograd.grad((out_ours, h_ours, c_ours), wrt_ours, upstream)
    g_ref = torch.autograd.grad((out_ref, h_ref, c_ref), wrt_ref, upstream)
    for a, b in zip(g_ours, g_ref, strict=True):
        torch.testing.assert_close(a, b, **ATOL)


def test_unbatched_layer_and_cell_equal_torch():
    ours, reference = twins(LSTM, nn.LSTM, 4, 3, batch_first=True)
    x, hx = torch.randn(5, 4, dtype=torch.float64), (torch.randn(1, 3, dtype=torch.float64),) * 2
    (out_ours, state_ours), (out_ref, state_ref) = ours(x, hx), reference(x, hx)
    for a, b in zip((out_ours, *state_ours), (out_ref, *state_ref), strict=True):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, **ATOL)
    cell, cell_ref = twins(LSTMCell, nn.LSTMCell, 4, 3)
    x, hx = torch.randn(4, dtype=torch.float64), (torch.randn(3, dtype=torch.float64), torch.randn(3).double())
    for a, b in zip(cell(x, hx), cell_ref(x, hx), strict=True):
        assert a.shape == b.shape == (3,)
        torch.testing.assert_close(a, b, **ATOL)


def test_lstm_step_is_the_lstm_equations():
    """Write the six LSTM equations with separate, named matrices (gate order i, f, g, o) and compare."""
    hidden, inputs = 4, 3
    W_ii, W_if, W_ig, W_io = (torch.randn(hidden, inputs, dtype=torch.float64) for _ in range(4))
    W_hi, W_hf, W_hg, W_ho = (torch.randn(hidden, hidden, dtype=torch.float64) for _ in range(4))
    b_i, b_f, b_g, b_o = (torch.randn(hidden, dtype=torch.float64) for _ in range(4))
    x, h, c = (torch.randn(2, size, dtype=torch.float64) for size in (inputs, hidden, hidden))
    i = torch.sigmoid(x @ W_ii.T + h @ W_hi.T + b_i)
    f = torch.sigmoid(x @ W_if.T + h @ W_hf.T + b_f)
    g = torch.tanh(x @ W_ig.T + h @ W_hg.T + b_g)
    o = torch.sigmoid(x @ W_io.T + h @ W_ho.T + b_o)
    c_expected = f * c + i * g
    h_expected = o * torch.tanh(c_expected)
    weight_ih, weight_hh = torch.cat([W_ii, W_if, W_ig, W_io]), torch.cat([W_hi, W_hf, W_hg, W_ho])
    bias = torch.cat([b_i, b_f, b_g, b_o])
    h_next, c_next = lstm_step(x @ weight_ih.T + bias, (h, c), weight_hh, None)
    torch.testing.assert_close(h_next, h_expected)
    torch.testing.assert_close(c_next, c_expected)


@pytest.mark.parametrize("ours_cls,torch_cls", [(LSTM, nn.LSTM), (LSTMCell, nn.LSTMCell)])
def test_constructor_defaults_and_order_equal_torch(ours_cls, torch_cls):
    ours = list(inspect.signature(ours_cls.__init__).parameters.items())
    if torch_cls is nn.LSTM:  # torch's LSTM takes *args, **kwargs; its documented signature:
        expected = [
            ("self", inspect.Parameter.empty),
            ("input_size", inspect.Parameter.empty),
            ("hidden_size", inspect.Parameter.empty),
            ("num_layers", 1),
            ("bias", True),
            ("batch_first", False),
            ("dropout", 0.0),
            ("bidirectional", False),
            ("proj_size", 0),
            ("device", None),
            ("dtype", None),
        ]
        reference = nn.LSTM(3, 4)
        assert (reference.num_layers, reference.bias, reference.batch_first, reference.proj_size) == (1, True, False, 0)
    else:
        theirs = inspect.signature(torch_cls.__init__).parameters.items()
        expected = [(name, p.default) for name, p in theirs if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    assert [(name, p.default) for name, p in ours] == expected


def test_layer_equals_unrolled_cell():
    layer, cell = LSTM(3, 4, batch_first=True), LSTMCell(3, 4)
    cell.load_state_dict({k.removesuffix("_l0"): v for k, v in layer.state_dict().items()})
    x = torch.randn(2, 5, 3)
    h, c = torch.randn(2, 4), torch.randn(2, 4)
    output, (h_n, c_n) = layer(x, (h[None], c[None]))
    steps = []
    for t in range(5):
        h, c = cell(x[:, t], (h, c))
        steps.append(h)
    torch.testing.assert_close(output, torch.stack(steps, dim=1))
    torch.testing.assert_close(h_n[0], h)
    torch.testing.assert_close(c_n[0], c)


def test_forget_gate_closed_keeps_the_cell_state():
    """With the forget gate saturated open and the input gate shut, c_t = c_0 at every step."""
    layer = LSTM(2, 3, batch_first=True).double()
    with torch.no_grad():
        layer.weight_ih_l0.zero_()
        layer.weight_hh_l0.zero_()
        layer.bias_hh_l0.zero_()
        layer.bias_ih_l0.copy_(torch.tensor([-50.0] * 3 + [50.0] * 3 + [0.0] * 6))  # i shut, f open
    c0 = torch.randn(1, 4, 3, dtype=torch.float64)
    _, (_, c_n) = layer(torch.randn(4, 20, 2, dtype=torch.float64), (torch.zeros_like(c0), c0))
    torch.testing.assert_close(c_n, c0)


@pytest.mark.parametrize(
    "x,hx,match",
    [
        (torch.randn(2, 5, 7), None, "input must have 3 features"),
        (torch.randn(2, 5, 3, 1), None, "input must have 2 or 3 dimensions"),
        (torch.randn(2, 0, 3), None, "at least one time step"),
        (torch.randn(2, 5, 3, dtype=torch.float64), None, "input must have dtype torch.float32"),
        (torch.randn(2, 5, 3), torch.randn(1, 2, 4), "hx must be None or a pair"),
        (torch.randn(2, 5, 3), (torch.randn(1, 2, 4),) * 3, "hx must be None or a pair .* length 3"),
        (torch.randn(2, 5, 3), (torch.randn(1, 3, 4), torch.randn(1, 2, 4)), r"hx\[0\] must have shape \(1, 2, 4\)"),
        (torch.randn(2, 5, 3), (torch.randn(1, 2, 4), torch.randn(2, 4)), r"hx\[1\] must have 3 dimensions"),
        (torch.randn(2, 5, 3), (torch.randn(1, 2, 4), torch.randn(1, 2, 4).double()), r"hx\[1\] must have dtype"),
        (torch.randn(5, 3), (torch.randn(1, 1, 4),) * 2, r"hx\[0\] must have 2 dimensions"),
        ([[1.0, 2.0, 3.0]], None, "input must be a torch.Tensor"),
    ],
)
def test_layer_bad_input_raises(x, hx, match):
    with pytest.raises(ValueError, match=match):
        LSTM(3, 4, batch_first=True)(x, hx)


@pytest.mark.parametrize(
    "x,hx,match",
    [
        (torch.randn(2, 7), None, "input must have 3 features"),
        (torch.randn(2, 5, 3), None, "input must have 1 or 2 dimensions"),
        (torch.randn(2, 3), torch.randn(2, 4), "hx must be None or a pair"),
        (torch.randn(2, 3), (torch.randn(3, 4), torch.randn(2, 4)), r"hx\[0\] must have shape \(2, 4\)"),
        (torch.randn(2, 3), (torch.randn(2, 4), torch.randn(2, 4).double()), r"hx\[1\] must have dtype torch.float32"),
        (torch.randn(3), (torch.randn(4), torch.randn(1, 4)), r"hx\[1\] must have 1 dimensions"),
    ],
)
def test_cell_bad_input_raises(x, hx, match):
    with pytest.raises(ValueError, match=match):
        LSTMCell(3, 4)(x, hx)


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: LSTM(0, 4), "input_size must be an int >= 1"),
        (lambda: LSTMCell(3, 0), "hidden_size must be an int >= 1"),
        (lambda: LSTM(3, 4, num_layers=2), "num_layers must be 1"),
        (lambda: LSTM(3, 4, dropout=0.5), "dropout 0"),
        (lambda: LSTM(3, 4, bidirectional=True), "only one unidirectional layer"),
        (lambda: LSTM(3, 4, proj_size=2), "proj_size must be 0"),
    ],
)
def test_bad_constructor_arguments_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_sequence_tagger_with_lstm_equals_torch_twin():
    ours = SequenceTagger(5, 8, 4, cell="lstm").double()
    assert isinstance(ours.recurrent, LSTM)
    reference = SequenceTagger(5, 8, 4, cell="lstm").double()
    reference.recurrent = nn.LSTM(5, 8, batch_first=True).double()
    reference.load_state_dict(ours.state_dict())
    inputs, targets = torch.randn(3, 6, 5, dtype=torch.float64), torch.randint(0, 4, (3, 6))
    torch.testing.assert_close(ours(inputs), reference(inputs), **ATOL)
    norms = input_gradient_norms(ours, inputs, targets)
    assert norms.shape == (6,) and (norms > 0).all()
    torch.testing.assert_close(norms, input_gradient_norms(reference, inputs, targets), **ATOL)
    with pytest.raises(ValueError, match="cell must be one of"):
        SequenceTagger(5, 8, 4, cell="transformer")
