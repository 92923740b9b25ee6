"""vclib.transformer.attention against F.scaled_dot_product_attention, nn.MultiheadAttention and
nn.TransformerEncoderLayer: values and gradients in float64, masks, odd shapes, bad input."""

import inspect

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vclib.transformer import (
    MultiHeadAttention,
    TransformerEncoderBlock,
    causal_mask,
    scaled_dot_product_attention,
)

TOL = {"atol": 1e-10, "rtol": 1e-10}
f64 = {"dtype": torch.float64}


def qkv(batch=(2, 3), length=5, source=7, dim=4, value_dim=None):
    q = torch.randn(*batch, length, dim, **f64, requires_grad=True)
    k = torch.randn(*batch, source, dim, **f64, requires_grad=True)
    v = torch.randn(*batch, source, value_dim or dim, **f64, requires_grad=True)
    return q, k, v


def assert_same_values_and_grads(ours, reference, inputs, reference_inputs=None):
    """Equal outputs, and equal gradients of a random projection w.r.t. ``inputs`` (and the twin's own
    ``reference_inputs``, e.g. its parameters, when they differ)."""
    torch.testing.assert_close(ours, reference, **TOL)
    upstream = torch.randn_like(reference)
    for a, b in zip(
        torch.autograd.grad(ours, inputs, upstream),
        torch.autograd.grad(reference, reference_inputs or inputs, upstream),
        strict=True,
    ):
        torch.testing.assert_close(a, b, **TOL)


# --- scaled_dot_product_attention -------------------------------------------------------------------------


@pytest.mark.exercise("vclib.transformer.attention.scaled_dot_product_attention")
@pytest.mark.parametrize(
    "batch,length,source,dim,value_dim",
    [((2, 3), 5, 7, 4, None), ((1,), 1, 1, 1, None), ((), 6, 6, 8, 3), ((2,), 9, 2, 1, 5)],
)
def test_sdpa_equals_torch_without_mask(batch, length, source, dim, value_dim):
    q, k, v = qkv(batch, length, source, dim, value_dim)
    assert_same_values_and_grads(
        scaled_dot_product_attention(q, k, v), F.scaled_dot_product_attention(q, k, v), (q, k, v)
    )


@pytest.mark.exercise("vclib.transformer.attention.scaled_dot_product_attention")
def test_sdpa_boolean_mask_equals_torch():
    q, k, v = qkv()
    mask = torch.rand(2, 1, 5, 7) > 0.4  # broadcast over heads
    mask[..., 0] = True  # every query sees at least one key
    assert_same_values_and_grads(
        scaled_dot_product_attention(q, k, v, mask),
        F.scaled_dot_product_attention(q, k, v, attn_mask=mask),
        (q, k, v),
    )


@pytest.mark.exercise("vclib.transformer.attention.scaled_dot_product_attention")
def test_sdpa_additive_mask_equals_torch():
    q, k, v = qkv()
    mask = torch.randn(5, 7, **f64)
    mask[1, 3:] = float("-inf")
    assert_same_values_and_grads(
        scaled_dot_product_attention(q, k, v, mask),
        F.scaled_dot_product_attention(q, k, v, attn_mask=mask),
        (q, k, v),
    )


@pytest.mark.exercise("vclib.transformer.attention.scaled_dot_product_attention")
@pytest.mark.parametrize("length,source", [(6, 6), (4, 7), (7, 4)])
def test_sdpa_causal_mask_equals_is_causal(length, source):
    q, k, v = qkv(length=length, source=source)
    ours = scaled_dot_product_attention(q, k, v, causal_mask(length, source))
    assert_same_values_and_grads(ours, F.scaled_dot_product_attention(q, k, v, is_causal=True), (q, k, v))


def test_causal_mask_layout():
    assert torch.equal(causal_mask(3), torch.tensor([[1, 0, 0], [1, 1, 0], [1, 1, 1]], dtype=torch.bool))
    assert causal_mask(2, 4).shape == (2, 4)


@pytest.mark.exercise("vclib.transformer.attention.scaled_dot_product_attention")
def test_sdpa_fully_masked_query_gives_zeros_like_torch():
    q, k, v = qkv()
    mask = torch.ones(5, 7, dtype=torch.bool)
    mask[2] = False  # query 2 may attend to nothing
    ours, weights = scaled_dot_product_attention(q, k, v, mask, need_weights=True)
    assert torch.equal(ours[..., 2, :], torch.zeros_like(ours[..., 2, :]))
    assert torch.equal(weights[..., 2, :], torch.zeros_like(weights[..., 2, :]))
    assert_same_values_and_grads(ours, F.scaled_dot_product_attention(q, k, v, attn_mask=mask), (q, k, v))


@pytest.mark.exercise("vclib.transformer.attention.scaled_dot_product_attention")
def test_sdpa_weights_are_a_distribution_and_explain_the_output():
    q, k, v = qkv()
    output, weights = scaled_dot_product_attention(q, k, v, need_weights=True)
    assert weights.shape == (2, 3, 5, 7)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3, 5, **f64))
    torch.testing.assert_close(output, weights @ v)
    expected = torch.softmax(q @ k.transpose(-2, -1) / 2.0, dim=-1)  # sqrt(E) = 2
    torch.testing.assert_close(weights, expected)


def test_sdpa_dropout_zeroes_weights_in_training():
    q, k, v = qkv(batch=(64,))
    torch.manual_seed(0)
    dropped = scaled_dot_product_attention(q, k, torch.eye(7, **f64).expand(64, 7, 7), dropout_p=0.5)  # the weights
    kept = dropped != 0
    assert 0.35 < 1 - kept.double().mean() < 0.65  # about half the weights dropped
    weights = torch.softmax(q @ k.transpose(-2, -1) / 2.0, dim=-1)  # (64, 5, 7), sqrt(E) = 2
    torch.testing.assert_close(dropped[kept], weights[kept] / (1 - 0.5))  # survivors rescaled by 1 / (1 - p)
    assert torch.equal(scaled_dot_product_attention(q, k, v, dropout_p=0.0), scaled_dot_product_attention(q, k, v))


@pytest.mark.parametrize(
    "args,match",
    [
        ((torch.randn(5), torch.randn(5), torch.randn(5)), r"q must have shape \(\.\.\., L, E\)"),
        ((torch.randn(2, 5, 4), torch.randn(2, 7, 3), torch.randn(2, 7, 4)), "k must have shape"),
        ((torch.randn(2, 5, 4), torch.randn(3, 7, 4), torch.randn(3, 7, 4)), "k must have shape"),
        ((torch.randn(2, 5, 4), torch.randn(2, 7, 4), torch.randn(2, 6, 4)), "v must have shape"),
        ((torch.randn(2, 5, 4), torch.randn(2, 7, 4, **f64), torch.randn(2, 7, 4)), "k must have dtype"),
        ((torch.randn(2, 5, 4), torch.randn(7, 4), torch.randn(7, 4)), "k must have 3 dimensions"),
        ((torch.randint(0, 3, (2, 5, 4)),) * 3, "q must have a floating-point dtype"),
    ],
)
def test_sdpa_bad_shapes_raise(args, match):
    with pytest.raises(ValueError, match=match):
        scaled_dot_product_attention(*args)


@pytest.mark.parametrize(
    "mask,match",
    [
        (torch.ones(5, 6, dtype=torch.bool), "mask must broadcast to the scores' shape"),
        (torch.ones(3, 5, 7, dtype=torch.bool), "mask must broadcast"),
        (torch.ones(5, 7, dtype=torch.long), "mask must be boolean"),
        (torch.ones(5, 7, **f64), "mask must be boolean"),
    ],
)
def test_sdpa_bad_mask_raises(mask, match):
    q, k, v = (torch.randn(2, n, 4) for n in (5, 7, 7))
    with pytest.raises(ValueError, match=match):
        scaled_dot_product_attention(q, k, v, mask)


# --- MultiHeadAttention -----------------------------------------------------------------------------------


def mha_twins(embed_dim=8, num_heads=2, bias=True, fused=False):
    reference = nn.MultiheadAttention(embed_dim, num_heads, bias=bias, batch_first=True).double()
    ours = MultiHeadAttention(embed_dim, num_heads, bias=bias, batch_first=True, fused=fused).double()
    ours.load_state_dict(reference.state_dict())
    return ours, reference


@pytest.mark.parametrize("bias", [True, False])
def test_mha_state_dict_layout_equals_torch(bias):
    ours, reference = (
        MultiHeadAttention(12, 3, bias=bias),
        nn.MultiheadAttention(12, 3, bias=bias, batch_first=True),
    )
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in reference.state_dict().items()}
    reference.load_state_dict(ours.state_dict())


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize(
    "embed_dim,num_heads,length,source,bias",
    [(8, 2, 5, 5, True), (4, 4, 3, 6, True), (6, 1, 4, 2, False), (12, 3, 1, 1, True), (5, 5, 7, 3, True)],
)
def test_mha_equals_torch(fused, embed_dim, num_heads, length, source, bias):
    ours, reference = mha_twins(embed_dim, num_heads, bias, fused)
    query = torch.randn(3, length, embed_dim, **f64, requires_grad=True)
    key = torch.randn(3, source, embed_dim, **f64, requires_grad=True)
    value = torch.randn(3, source, embed_dim, **f64, requires_grad=True)
    out_ours, _ = ours(query, key, value, need_weights=False)
    out_ref, _ = reference(query, key, value, need_weights=False)
    inputs_ours, inputs_ref = (
        (query, key, value, *ours.parameters()),
        (query, key, value, *reference.parameters()),
    )
    assert_same_values_and_grads(out_ours, out_ref, inputs_ours, inputs_ref)


@pytest.mark.parametrize("fused", [False, True])
def test_mha_self_attention_with_padding_mask_equals_torch(fused):
    ours, reference = mha_twins(8, 2, fused=fused)
    x = torch.randn(3, 6, 8, **f64, requires_grad=True)
    real = torch.tensor([[1] * 6, [1] * 4 + [0] * 2, [1] + [0] * 5], dtype=torch.bool)  # True = real token
    out_ours, _ = ours(x, x, x, key_padding_mask=real, need_weights=False)
    out_ref, _ = reference(x, x, x, key_padding_mask=~real, need_weights=False)  # torch: True = padding
    assert_same_values_and_grads(out_ours, out_ref, (x,))


@pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask")  # torch's, for float_padding
@pytest.mark.parametrize("mask_kind", ["bool_2d", "float_2d", "bool_3d", "float_padding"])
def test_mha_attention_masks_equal_torch(mask_kind):
    ours, reference = mha_twins(8, 2)
    query, key = (
        torch.randn(2, 4, 8, **f64, requires_grad=True),
        torch.randn(2, 5, 8, **f64, requires_grad=True),
    )
    padding_ours = padding_ref = None
    if mask_kind == "bool_2d":
        allowed = causal_mask(4, 5)
        mask_ours, mask_ref = allowed, ~allowed
    elif mask_kind == "float_2d":
        mask_ours = mask_ref = torch.randn(4, 5, **f64)
    elif mask_kind == "bool_3d":
        allowed = torch.rand(2 * 2, 4, 5) > 0.3
        allowed[..., 0] = True
        mask_ours, mask_ref = allowed, ~allowed
    else:  # a float padding mask together with a boolean attention mask
        padding_ours = padding_ref = torch.tensor([[0.0, 0, -1, 0, float("-inf")], [0, 0, 0, 0, 0]], **f64)
        allowed = causal_mask(4, 5)
        mask_ours, mask_ref = allowed, ~allowed
    out_ours, _ = ours(query, key, key, key_padding_mask=padding_ours, attn_mask=mask_ours, need_weights=False)
    out_ref, _ = reference(query, key, key, key_padding_mask=padding_ref, attn_mask=mask_ref, need_weights=False)
    assert_same_values_and_grads(out_ours, out_ref, (query, key))


def test_mha_weights_per_head_equal_torch():
    ours, reference = mha_twins(12, 3)
    query, key = torch.randn(2, 4, 12, **f64), torch.randn(2, 6, 12, **f64)
    real = torch.ones(2, 6, dtype=torch.bool)
    real[1, 4:] = False
    output, weights = ours(query, key, key, key_padding_mask=real, average_attn_weights=False)
    ref_output, ref_weights = reference(
        query, key, key, key_padding_mask=~real, need_weights=True, average_attn_weights=False
    )
    assert weights.shape == (2, 3, 4, 6)
    torch.testing.assert_close(weights, ref_weights, **TOL)
    torch.testing.assert_close(output, ref_output, **TOL)
    assert torch.equal(weights[1, ..., 4:], torch.zeros(3, 4, 2, **f64))  # no weight on padding
    assert ours(query, key, key, need_weights=False)[1] is None
    averaged, averaged_ref = ours(query, key, key)[1], reference(query, key, key)[1]  # torch's default: the mean
    assert averaged.shape == (2, 4, 6)
    torch.testing.assert_close(averaged, averaged_ref, **TOL)


def test_mha_constructor_and_forward_defaults_equal_torch():
    for ours, theirs in (
        (MultiHeadAttention.__init__, nn.MultiheadAttention.__init__),
        (MultiHeadAttention.forward, nn.MultiheadAttention.forward),
    ):
        mine = inspect.signature(ours).parameters
        for name, parameter in inspect.signature(theirs).parameters.items():
            if name in mine:
                assert mine[name].default == parameter.default, name
    assert MultiHeadAttention(8, 2).batch_first is False


@pytest.mark.parametrize("fused", [False, True])
def test_mha_sequence_first_and_unbatched_layouts_equal_torch(fused):
    reference = nn.MultiheadAttention(8, 2).double()  # torch's default layout: (L, B, E)
    ours = MultiHeadAttention(8, 2, fused=fused).double()
    ours.load_state_dict(reference.state_dict())
    query = torch.randn(4, 3, 8, **f64, requires_grad=True)  # (L, B, E)
    key = torch.randn(6, 3, 8, **f64, requires_grad=True)  # (S, B, E)
    assert_same_values_and_grads(
        ours(query, key, key, need_weights=False)[0], reference(query, key, key)[0], (query, key)
    )
    torch.testing.assert_close(ours(query, key, key)[1], reference(query, key, key)[1], **TOL)
    single = query[:, 0]  # unbatched (L, E)
    out, weights = ours(single, key[:, 0], key[:, 0], average_attn_weights=False)
    out_ref, weights_ref = reference(single, key[:, 0], key[:, 0], average_attn_weights=False)
    assert out.shape == (4, 8) and weights.shape == (2, 4, 6)
    torch.testing.assert_close(out, out_ref, **TOL)
    torch.testing.assert_close(weights, weights_ref, **TOL)


def test_mha_is_causal_equals_a_causal_mask():
    ours, reference = mha_twins(8, 2)
    x = torch.randn(2, 5, 8, **f64)
    blocked = torch.ones(5, 5, dtype=torch.bool).triu(1)  # torch: True = blocked
    expected = reference(x, x, x, attn_mask=blocked, is_causal=True, need_weights=False)[0]
    torch.testing.assert_close(ours(x, x, x, is_causal=True, need_weights=False)[0], expected, **TOL)


def test_mha_fused_path_equals_math_path():
    math_path = MultiHeadAttention(16, 4, batch_first=True).double()
    fused_path = MultiHeadAttention(16, 4, batch_first=True, fused=True).double()
    fused_path.load_state_dict(math_path.state_dict())
    x = torch.randn(2, 9, 16, **f64)
    real = torch.rand(2, 9) > 0.3
    real[:, 0] = True
    fused_output = fused_path(x, x, x, real, need_weights=False)[0]
    torch.testing.assert_close(fused_output, math_path(x, x, x, real, need_weights=False)[0], **TOL)


@pytest.mark.parametrize("embed_dim,num_heads", [(10, 3), (8, 0), (0, 2)])
def test_mha_bad_heads_raise(embed_dim, num_heads):
    with pytest.raises(ValueError, match="embed_dim|num_heads"):
        MultiHeadAttention(embed_dim, num_heads)


def test_mha_indivisible_message_names_both():
    with pytest.raises(ValueError, match="embed_dim must be divisible by num_heads=3, got embed_dim=10"):
        MultiHeadAttention(10, 3)


@pytest.mark.parametrize(
    "shapes,kwargs,match",
    [
        (((2, 4, 6), (2, 5, 8), (2, 5, 8)), {}, r"query must have shape \(B, length, E\) with E=8"),
        (((2, 4, 8), (3, 5, 8), (3, 5, 8)), {}, r"key must have shape \(B, length, E\)"),
        (((2, 4, 8), (2, 5, 8), (2, 6, 8)), {}, "key and value must have the same shape"),
        (((2, 4, 2, 8), (2, 5, 2, 8), (2, 5, 2, 8)), {}, "query must have 2 or 3 dimensions"),
        (
            ((2, 4, 8), (2, 5, 8), (2, 5, 8)),
            {"key_padding_mask": torch.ones(2, 4, dtype=torch.bool)},
            "key_padding_mask must have shape",
        ),
        (
            ((2, 4, 8), (2, 5, 8), (2, 5, 8)),
            {"attn_mask": torch.ones(5, 4, dtype=torch.bool)},
            "attn_mask must have shape",
        ),
        (
            ((2, 4, 8), (2, 5, 8), (2, 5, 8)),
            {"attn_mask": torch.ones(4, 5, dtype=torch.int64)},
            "attn_mask must be boolean",
        ),
    ],
)
def test_mha_bad_input_raises(shapes, kwargs, match):
    module = MultiHeadAttention(8, 2, batch_first=True)
    with pytest.raises(ValueError, match=match):
        module(*(torch.randn(*shape) for shape in shapes), **kwargs)


# --- TransformerEncoderBlock -------------------------------------------------------------------------------


def block_twins(embed_dim=8, num_heads=2, mlp_ratio=4, dropout=0.0, norm_first=True, activation="gelu"):
    options = {"dropout": dropout, "activation": activation, "batch_first": True, "norm_first": norm_first}
    reference = nn.TransformerEncoderLayer(embed_dim, num_heads, mlp_ratio * embed_dim, **options).double()
    ours = TransformerEncoderBlock(embed_dim, num_heads, mlp_ratio * embed_dim, **options).double()
    ours.load_state_dict(reference.state_dict())
    return ours, reference


def test_block_state_dict_layout_equals_torch():
    ours, reference = block_twins(12, 3, 2)
    assert [(k, v.shape) for k, v in ours.state_dict().items()] == [
        (k, v.shape) for k, v in reference.state_dict().items()
    ]  # same names, shapes and order


def test_block_constructor_and_forward_defaults_equal_torch():
    for ours, theirs in (
        (TransformerEncoderBlock.__init__, nn.TransformerEncoderLayer.__init__),
        (TransformerEncoderBlock.forward, nn.TransformerEncoderLayer.forward),
    ):
        mine = inspect.signature(ours).parameters
        for name, parameter in inspect.signature(theirs).parameters.items():
            if name in mine and name != "activation":  # torch's default is the function F.relu, ours "relu"
                assert mine[name].default == parameter.default, name
    ours, reference = TransformerEncoderBlock(8, 2), nn.TransformerEncoderLayer(8, 2)
    assert ours.linear1.out_features == reference.linear1.out_features == 2048
    assert ours.dropout.p == reference.dropout.p == 0.1
    assert ours.activation is F.relu and not ours.norm_first and not ours.self_attn.batch_first


@pytest.mark.parametrize("norm_first,activation", [(True, "gelu"), (False, "relu"), (False, F.gelu)])
@pytest.mark.parametrize("embed_dim,num_heads,mlp_ratio,length", [(8, 2, 4, 5), (6, 6, 2, 1), (12, 3, 3, 17)])
def test_block_equals_torch(embed_dim, num_heads, mlp_ratio, length, norm_first, activation):
    ours, reference = block_twins(embed_dim, num_heads, mlp_ratio, norm_first=norm_first, activation=activation)
    x = torch.randn(3, length, embed_dim, **f64, requires_grad=True)
    out_ours = ours(x)
    assert isinstance(out_ours, torch.Tensor)
    out_ref = reference(x)
    inputs_ours, inputs_ref = (x, *ours.parameters()), (x, *reference.parameters())
    assert_same_values_and_grads(out_ours, out_ref, inputs_ours, inputs_ref)


def test_block_default_layout_is_sequence_first_like_torch():
    reference = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16).double().eval()
    ours = TransformerEncoderBlock(8, 2, dim_feedforward=16).double().eval()
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(5, 3, 8, **f64)  # (N, B, E)
    torch.testing.assert_close(ours(x), reference(x), **TOL)
    torch.testing.assert_close(ours(x[:, 0]), reference(x[:, 0]), **TOL)  # unbatched (N, E)


def test_block_padding_and_causal_masks_equal_torch():
    ours, reference = block_twins()
    x = torch.randn(2, 6, 8, **f64, requires_grad=True)
    real = torch.tensor([[1] * 6, [1] * 3 + [0] * 3], dtype=torch.bool)
    assert_same_values_and_grads(ours(x, src_key_padding_mask=real), reference(x, src_key_padding_mask=~real), (x,))
    allowed = causal_mask(6)
    expected = reference(x, src_mask=~allowed, is_causal=True)
    torch.testing.assert_close(ours(x, src_mask=allowed), expected, **TOL)
    torch.testing.assert_close(ours(x, is_causal=True), expected, **TOL)


def test_block_with_dropout_equals_torch_in_eval_mode():
    ours, reference = block_twins(dropout=0.3)
    ours.eval(), reference.eval()
    x = torch.randn(2, 5, 8, **f64)
    torch.testing.assert_close(ours(x), reference(x), **TOL)
    ours.train()
    assert not torch.allclose(ours(x), reference(x))  # dropout is active in training


def test_block_returns_weights_on_request():
    ours, reference = block_twins(12, 3, 2)
    x = torch.randn(2, 5, 12, **f64)
    out, weights = ours.forward_with_weights(x)
    torch.testing.assert_close(out, reference(x), **TOL)
    attention = reference.self_attn
    _, expected = attention(*(reference.norm1(x),) * 3, average_attn_weights=False)
    torch.testing.assert_close(weights, expected, **TOL)


def test_block_bad_arguments_raise():
    with pytest.raises(ValueError, match="embed_dim must be divisible by num_heads=4"):
        TransformerEncoderBlock(6, 4)
    with pytest.raises(ValueError, match="dim_feedforward must be an int >= 1"):
        TransformerEncoderBlock(8, 2, dim_feedforward=0)
    with pytest.raises(ValueError, match="activation must be one of"):
        TransformerEncoderBlock(8, 2, activation="tanh")
    with pytest.raises(ValueError, match=r"src must have 8 features in its last dimension, got \(2, 5, 4\)"):
        TransformerEncoderBlock(8, 2)(torch.randn(2, 5, 4))
