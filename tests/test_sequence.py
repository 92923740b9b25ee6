"""vclib.sequence: RNN and GRU cells and layers against their torch twins, the recall task, the classifier."""

import inspect

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vclib.sequence import GRU, RNN, GRUCell, GRUImageClassifier, RNNCell, gru_step, image_rows
from vclib.sequence.tasks import (
    SequenceTagger,
    accuracy_per_step,
    input_gradient_norms,
    recall_sequences,
    sequence_cross_entropy,
)
from vclib.transformer import patchify

CELLS = [
    (GRUCell, nn.GRUCell, {}),
    (RNNCell, nn.RNNCell, {}),
    (RNNCell, nn.RNNCell, {"nonlinearity": "relu"}),
]
LAYERS = [(GRU, nn.GRU, {}), (RNN, nn.RNN, {}), (RNN, nn.RNN, {"nonlinearity": "relu"})]
# Split by cell type, so that each exercise (rnn_step, gru_step) is graded only by the cases that use it.
RNN_CELLS, GRU_CELLS = [c for c in CELLS if c[0] is RNNCell], [c for c in CELLS if c[0] is GRUCell]
RNN_LAYERS, GRU_LAYERS = [c for c in LAYERS if c[0] is RNN], [c for c in LAYERS if c[0] is GRU]
CELL_CASES = [(4, True, True), (1, True, False), (3, False, True)]
LAYER_CASES = [(4, 7, True, True), (3, 1, True, False), (1, 5, True, True), (1, 1, False, True), (2, 6, False, False)]
ATOL = {"atol": 1e-10, "rtol": 1e-10}  # float64


def twins(ours_cls, torch_cls, *args, **kwargs):
    """A torch module in float64 and ours loaded from its state_dict."""
    reference = torch_cls(*args, **kwargs).double()
    ours = ours_cls(*args, **kwargs).double()
    ours.load_state_dict(reference.state_dict())
    return ours, reference


def grads(outputs, inputs, upstream):
    return torch.autograd.grad(outputs, inputs, upstream)


@pytest.mark.parametrize("ours_cls,torch_cls,extra", CELLS + LAYERS)
@pytest.mark.parametrize("bias", [True, False])
def test_state_dict_layout_equals_torch(ours_cls, torch_cls, extra, bias):
    ours, reference = ours_cls(3, 5, bias=bias, **extra), torch_cls(3, 5, bias=bias, **extra)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in reference.state_dict().items()}
    reference.load_state_dict(ours.state_dict())  # and the other way round


@pytest.mark.exercise("vclib.sequence.rnn.rnn_step")
@pytest.mark.parametrize("ours_cls,torch_cls,extra", RNN_CELLS)
@pytest.mark.parametrize("batch,bias,with_hx", CELL_CASES)
def test_rnn_cell_values_and_gradients_equal_torch(ours_cls, torch_cls, extra, batch, bias, with_hx):
    check_cell(ours_cls, torch_cls, extra, batch, bias, with_hx)


@pytest.mark.exercise("vclib.sequence.gru.gru_step")
@pytest.mark.parametrize("ours_cls,torch_cls,extra", GRU_CELLS)
@pytest.mark.parametrize("batch,bias,with_hx", CELL_CASES)
def test_gru_cell_values_and_gradients_equal_torch(ours_cls, torch_cls, extra, batch, bias, with_hx):
    check_cell(ours_cls, torch_cls, extra, batch, bias, with_hx)


def check_cell(ours_cls, torch_cls, extra, batch, bias, with_hx):
    ours, reference = twins(ours_cls, torch_cls, 6, 5, bias=bias, **extra)
    x = torch.randn(batch, 6, dtype=torch.float64, requires_grad=True)
    hx = torch.randn(batch, 5, dtype=torch.float64, requires_grad=True) if with_hx else None
    out_ours, out_ref = ours(x, hx), reference(x, hx)
    torch.testing.assert_close(out_ours, out_ref, **ATOL)
    upstream = torch.randn_like(out_ref)
    wrt_ours = [x, *([hx] if with_hx else []), *ours.parameters()]
    wrt_ref = [x, *([hx] if with_hx else []), *reference.parameters()]
    for g_ours, g_ref in zip(grads(out_ours, wrt_ours, upstream), grads(out_ref, wrt_ref, upstream), strict=True):
        torch.testing.assert_close(g_ours, g_ref, **ATOL)


@pytest.mark.exercise("vclib.sequence.rnn.rnn_step")
@pytest.mark.parametrize("ours_cls,torch_cls,extra", RNN_LAYERS)
@pytest.mark.parametrize("batch,length,batch_first,with_hx", LAYER_CASES)
def test_rnn_layer_values_and_gradients_equal_torch(ours_cls, torch_cls, extra, batch, length, batch_first, with_hx):
    check_layer(ours_cls, torch_cls, extra, batch, length, batch_first, with_hx)


@pytest.mark.exercise("vclib.sequence.gru.gru_step")
@pytest.mark.parametrize("ours_cls,torch_cls,extra", GRU_LAYERS)
@pytest.mark.parametrize("batch,length,batch_first,with_hx", LAYER_CASES)
def test_gru_layer_values_and_gradients_equal_torch(ours_cls, torch_cls, extra, batch, length, batch_first, with_hx):
    check_layer(ours_cls, torch_cls, extra, batch, length, batch_first, with_hx)


def check_layer(ours_cls, torch_cls, extra, batch, length, batch_first, with_hx):
    ours, reference = twins(ours_cls, torch_cls, 6, 5, batch_first=batch_first, **extra)
    shape = (batch, length, 6) if batch_first else (length, batch, 6)
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    hx = torch.randn(1, batch, 5, dtype=torch.float64, requires_grad=True) if with_hx else None
    (out_ours, hn_ours), (out_ref, hn_ref) = ours(x, hx), reference(x, hx)
    assert out_ours.shape == out_ref.shape and hn_ours.shape == hn_ref.shape == (1, batch, 5)
    torch.testing.assert_close(out_ours, out_ref, **ATOL)
    torch.testing.assert_close(hn_ours, hn_ref, **ATOL)
    up_out, up_hn = torch.randn_like(out_ref), torch.randn_like(hn_ref)
    wrt_ours = [x, *([hx] if with_hx else []), *ours.parameters()]
    wrt_ref = [x, *([hx] if with_hx else []), *reference.parameters()]
    g_ours = torch.autograd.grad((out_ours, hn_ours), wrt_ours, (up_out, up_hn))
    g_ref = torch.autograd.grad((out_ref, hn_ref), wrt_ref, (up_out, up_hn))
    for a, b in zip(g_ours, g_ref, strict=True):
        torch.testing.assert_close(a, b, **ATOL)


@pytest.mark.parametrize("ours_cls,torch_cls,extra", LAYERS)
def test_unbatched_layer_equals_torch(ours_cls, torch_cls, extra):
    ours, reference = twins(ours_cls, torch_cls, 4, 3, batch_first=True, **extra)
    x, hx = torch.randn(5, 4, dtype=torch.float64), torch.randn(1, 3, dtype=torch.float64)
    for a, b in zip(ours(x, hx), reference(x, hx), strict=True):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, **ATOL)


@pytest.mark.parametrize("ours_cls,torch_cls,extra", CELLS)
def test_unbatched_cell_equals_torch(ours_cls, torch_cls, extra):
    ours, reference = twins(ours_cls, torch_cls, 4, 3, **extra)
    x, hx = torch.randn(4, dtype=torch.float64), torch.randn(3, dtype=torch.float64)
    assert ours(x, hx).shape == (3,)
    torch.testing.assert_close(ours(x, hx), reference(x, hx), **ATOL)


@pytest.mark.exercise("vclib.sequence.gru.gru_step")
def test_gru_step_is_the_course_equations():
    """Write the four GRU equations with separate, named matrices and compare with gru_step."""
    hidden, inputs = 4, 3
    W_ir, W_iz, W_in = (torch.randn(hidden, inputs, dtype=torch.float64) for _ in range(3))
    W_hr, W_hz, W_hn = (torch.randn(hidden, hidden, dtype=torch.float64) for _ in range(3))
    b_ir, b_iz, b_in, b_hr, b_hz, b_hn = (torch.randn(hidden, dtype=torch.float64) for _ in range(6))
    x, h = torch.randn(2, inputs, dtype=torch.float64), torch.randn(2, hidden, dtype=torch.float64)
    r = torch.sigmoid(x @ W_ir.T + b_ir + h @ W_hr.T + b_hr)
    z = torch.sigmoid(x @ W_iz.T + b_iz + h @ W_hz.T + b_hz)
    n = torch.tanh(x @ W_in.T + b_in + r * (h @ W_hn.T + b_hn))
    expected = (1 - z) * n + z * h
    weight_ih, weight_hh = torch.cat([W_ir, W_iz, W_in]), torch.cat([W_hr, W_hz, W_hn])
    bias_ih, bias_hh = torch.cat([b_ir, b_iz, b_in]), torch.cat([b_hr, b_hz, b_hn])
    torch.testing.assert_close(gru_step(x @ weight_ih.T + bias_ih, h, weight_hh, bias_hh), expected)
    cell = nn.GRUCell(inputs, hidden).double()  # and torch agrees with this layout
    with torch.no_grad():
        for name, value in (
            ("weight_ih", weight_ih),
            ("weight_hh", weight_hh),
            ("bias_ih", bias_ih),
            ("bias_hh", bias_hh),
        ):
            getattr(cell, name).copy_(value)
    torch.testing.assert_close(cell(x, h), expected)


@pytest.mark.parametrize(
    "ours_cls,torch_cls", [(GRU, nn.GRU), (RNN, nn.RNN), (GRUCell, nn.GRUCell), (RNNCell, nn.RNNCell)]
)
def test_constructor_defaults_and_order_equal_torch(ours_cls, torch_cls):
    ours = list(inspect.signature(ours_cls.__init__).parameters.items())
    theirs = list(inspect.signature(torch_cls.__init__).parameters.items())
    theirs = [(name, p) for name, p in theirs if p.kind is not p.VAR_POSITIONAL and p.kind is not p.VAR_KEYWORD]
    if torch_cls in (nn.GRU, nn.RNN):  # torch's layers take *args, **kwargs; their documented signature:
        names = ["self", "input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout", "bidirectional"]
        if torch_cls is nn.RNN:
            names.insert(4, "nonlinearity")
        assert [name for name, _ in ours][: len(names)] == names
        reference = torch_cls(3, 4)
        assert ours_cls(3, 4).batch_first is reference.batch_first is False
    else:
        assert [(name, p.default) for name, p in ours] == [(name, p.default) for name, p in theirs]


def test_gru_layer_equals_unrolled_cell():
    layer, cell = GRU(3, 4, batch_first=True), GRUCell(3, 4)
    cell.load_state_dict({k.removesuffix("_l0"): v for k, v in layer.state_dict().items()})
    x = torch.randn(2, 5, 3)
    h = torch.zeros(2, 4)
    steps = []
    for t in range(5):
        h = cell(x[:, t], h)
        steps.append(h)
    output, h_n = layer(x)
    torch.testing.assert_close(output, torch.stack(steps, dim=1))
    torch.testing.assert_close(h_n[0], h)


@pytest.mark.parametrize("module", [GRU(3, 4, batch_first=True), RNN(3, 4, batch_first=True)])
@pytest.mark.parametrize(
    "x,hx,match",
    [
        (torch.randn(2, 5, 7), None, "input must have 3 features"),
        (torch.randn(2, 5, 3, 1), None, "input must have 2 or 3 dimensions"),
        (torch.randn(2, 0, 3), None, "at least one time step"),
        (torch.randint(0, 3, (2, 5, 3)), None, "input must have dtype torch.float32"),
        (torch.randn(2, 5, 3, dtype=torch.float64), None, "input must have dtype torch.float32"),
        (torch.randn(2, 5, 3), torch.randn(2, 4), "hx must have 3 dimensions"),
        (torch.randn(2, 5, 3), torch.randn(1, 3, 4), r"hx must have shape \(1, 2, 4\)"),
        (torch.randn(2, 5, 3), torch.randn(2, 2, 4), r"hx must have shape \(1, 2, 4\)"),
        (torch.randn(5, 3), torch.randn(1, 1, 4), "hx must have 2 dimensions"),
        ([[1.0, 2.0, 3.0]], None, "input must be a torch.Tensor"),
    ],
)
def test_layer_bad_input_raises(module, x, hx, match):
    with pytest.raises(ValueError, match=match):
        module(x, hx)


@pytest.mark.parametrize("module", [GRUCell(3, 4), RNNCell(3, 4)])
@pytest.mark.parametrize(
    "x,hx,match",
    [
        (torch.randn(2, 7), None, "input must have 3 features"),
        (torch.randn(2, 5, 3), None, "input must have 1 or 2 dimensions"),
        (torch.randn(2, 3), torch.randn(3, 4), r"hx must have shape \(2, 4\)"),
        (torch.randn(2, 3), torch.randn(2, 4, dtype=torch.float64), "hx must have dtype torch.float32"),
        (torch.randn(3), torch.randn(1, 4), "hx must have 1 dimensions"),
    ],
)
def test_cell_bad_input_raises(module, x, hx, match):
    with pytest.raises(ValueError, match=match):
        module(x, hx)


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: GRU(0, 4), "input_size must be an int >= 1"),
        (lambda: RNNCell(3, 0), "hidden_size must be an int >= 1"),
        (lambda: RNN(3, 4, nonlinearity="sigmoid"), "nonlinearity must be one of"),
        (lambda: GRU(3, 4, num_layers=2), "num_layers must be 1"),
        (lambda: RNN(3, 4, bidirectional=True), "only one unidirectional layer"),
        (lambda: GRUCell(3.5, 4), "input_size must be an int"),
    ],
)
def test_bad_constructor_arguments_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_recall_sequences_layout():
    generator = torch.Generator().manual_seed(1)
    inputs, targets = recall_sequences(6, 9, num_symbols=5, generator=generator)
    assert inputs.shape == (6, 9, 6) and targets.shape == (6, 9)
    assert torch.equal(inputs[..., :5].sum(-1), torch.ones(6, 9))  # one symbol per step
    assert torch.equal(inputs[:, :, 5], F.one_hot(torch.zeros(6, dtype=torch.long), 9).float())  # cue at t=0
    assert torch.equal(targets, inputs[:, :1, :5].argmax(-1).expand(6, 9))  # the cue symbol, everywhere
    with pytest.raises(ValueError, match="num_symbols must be an int >= 2"):
        recall_sequences(2, 3, num_symbols=1)


def test_sequence_loss_and_accuracy():
    logits, targets = torch.randn(4, 3, 5), torch.randint(0, 5, (4, 3))
    manual = torch.stack([F.cross_entropy(logits[b, t], targets[b, t]) for b in range(4) for t in range(3)]).mean()
    torch.testing.assert_close(sequence_cross_entropy(logits, targets), manual)
    logits = F.one_hot(targets, 5).float()
    logits[0, 2] = F.one_hot((targets[0, 2] + 1) % 5, 5).float()  # one mistake at step 2
    torch.testing.assert_close(accuracy_per_step(logits, targets), torch.tensor([1.0, 1.0, 0.75]))
    with pytest.raises(ValueError, match=r"targets must have shape \(4, 3\)"):
        sequence_cross_entropy(logits, targets[:, :2])


@pytest.mark.parametrize("cell", ["rnn", "gru"])
def test_input_gradient_norms_equal_torch_twin(cell):
    ours = SequenceTagger(5, 8, 4, cell=cell).double()
    reference = SequenceTagger(5, 8, 4, cell=cell).double()
    torch_layer = (nn.GRU if cell == "gru" else nn.RNN)(5, 8, batch_first=True).double()
    torch_layer.load_state_dict(ours.recurrent.state_dict())
    reference.recurrent = torch_layer
    reference.readout.load_state_dict(ours.readout.state_dict())
    inputs, targets = torch.randn(3, 6, 5, dtype=torch.float64), torch.randint(0, 4, (3, 6))
    norms = input_gradient_norms(ours, inputs, targets)
    assert norms.shape == (6,) and (norms > 0).all()
    torch.testing.assert_close(norms, input_gradient_norms(reference, inputs, targets))


def test_input_gradient_norms_see_only_causes():
    """A per-step model (no recurrence): the last loss depends on the last input only."""
    per_step = nn.Linear(5, 4)
    norms = input_gradient_norms(per_step, torch.randn(2, 6, 5), torch.randint(0, 4, (2, 6)))
    assert torch.equal(norms[:-1], torch.zeros(5)) and norms[-1] > 0


def test_image_tokenizations():
    images = torch.rand(2, 3, 8, 8)
    rows = image_rows(images)
    assert rows.shape == (2, 8, 24)
    assert torch.equal(rows[1, 5], torch.cat([images[1, c, 5] for c in range(3)]))
    by_rows, by_patches = GRUImageClassifier(8, 3, 10, 16), GRUImageClassifier(8, 3, 10, 16, "patches", 4)
    assert torch.equal(by_rows.tokenize(images), rows)
    assert torch.equal(by_patches.tokenize(images), patchify(images, 4))
    assert by_rows(images).shape == by_patches(images).shape == (2, 10)
    with pytest.raises(ValueError, match=r"images must have shape \(B, 3, 8, 8\)"):
        by_rows(torch.rand(2, 1, 8, 8))
    with pytest.raises(ValueError, match="patch_size must divide image_size=8"):
        GRUImageClassifier(8, 3, 10, 16, "patches", 3)


def test_gru_classifier_fits_a_small_batch():
    images, labels = torch.rand(16, 1, 8, 8), torch.arange(16) % 2
    images[labels == 1, :, :4] += 1.0  # class 1: bright top half
    model = GRUImageClassifier(8, 1, 2, hidden_size=16)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(60):
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert (model(images).argmax(1) == labels).all()
