"""vclib.transformer.vit: patch embedding, position embeddings, the ViT against timm's, attention rollout."""

import math

import pytest
import torch
from torch import nn

from vclib.transformer import (
    PatchEmbedding,
    VisionTransformer,
    attention_rollout,
    class_token_map,
    patchify,
    position_similarity,
    sincos_position_embedding,
)

CONFIG = {"image_size": 28, "patch_size": 7, "in_channels": 1, "num_classes": 10, "embed_dim": 32, "depth": 3}
TIMM_NAMES = {
    "attn.qkv": "self_attn.in_proj",
    "attn.proj": "self_attn.out_proj",
    "mlp.fc1": "linear1",
    "mlp.fc2": "linear2",
}


def ours_name(timm_name: str) -> str:
    """timm's parameter names mapped to ours (torch's nn.TransformerEncoderLayer names)."""
    for theirs, mine in TIMM_NAMES.items():
        separator = "_" if theirs == "attn.qkv" else "."  # in_proj_weight is a bare parameter
        for kind in ("weight", "bias"):
            timm_name = timm_name.replace(f"{theirs}.{kind}", f"{mine}{separator}{kind}")
    return timm_name


def timm_twin(num_heads=4, mlp_ratio=2.0, **overrides):
    """timm's VisionTransformer and ours, loaded with the same weights (skips where timm is missing)."""
    timm = pytest.importorskip("timm")  # a dev dependency; only these parity tests need it
    config = {**CONFIG, **overrides}
    reference = timm.models.vision_transformer.VisionTransformer(
        img_size=config["image_size"],
        patch_size=config["patch_size"],
        in_chans=config["in_channels"],
        num_classes=config["num_classes"],
        embed_dim=config["embed_dim"],
        depth=config["depth"],
        num_heads=num_heads,
        mlp_ratio=mlp_ratio,
    ).double()
    ours = VisionTransformer(**config, num_heads=num_heads, mlp_ratio=mlp_ratio).double()
    ours.load_state_dict({ours_name(name): value for name, value in reference.state_dict().items()})
    return ours, reference


def test_patch_embedding_is_a_linear_map_of_patchify():
    embed = PatchEmbedding(image_size=12, patch_size=4, in_channels=3, embed_dim=5).double()
    images = torch.randn(2, 3, 12, 12, dtype=torch.float64)
    tokens = embed(images)
    assert tokens.shape == (2, 9, 5)
    weight = embed.proj.weight.reshape(5, 3 * 4 * 4)  # (E, C*P*P)
    torch.testing.assert_close(tokens, patchify(images, 4) @ weight.T + embed.proj.bias)


def test_patch_embedding_bad_input():
    embed = PatchEmbedding(12, 4, 3, 5)
    with pytest.raises(ValueError, match=r"images must have shape \(B, 3, 12, 12\)"):
        embed(torch.randn(2, 3, 16, 16))
    with pytest.raises(ValueError, match="patch_size must divide image_size=12"):
        PatchEmbedding(12, 5, 3, 5)


def test_sincos_position_embedding_formula():
    grid, dim = 3, 8
    table = sincos_position_embedding(grid, dim)
    assert table.shape == (9, 8)
    for index in range(9):
        row, col = divmod(index, grid)  # row-major patch order
        expected = []
        for coordinate in (row, col):
            angles = [coordinate * 10000 ** (-i / 2) for i in range(2)]
            expected += [math.sin(a) for a in angles] + [math.cos(a) for a in angles]
        torch.testing.assert_close(table[index], torch.tensor(expected, dtype=torch.float32))
    with pytest.raises(ValueError, match="embed_dim must be divisible by 4"):
        sincos_position_embedding(3, 6)


@pytest.mark.parametrize("num_heads,mlp_ratio", [(4, 2.0), (1, 4.0), (32, 1.0)])
def test_vit_equals_timm_with_the_same_weights(num_heads, mlp_ratio):
    ours, reference = timm_twin(num_heads, mlp_ratio)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in reference.parameters())
    images = torch.rand(3, 1, 28, 28, dtype=torch.float64, requires_grad=True)
    logits, logits_ref = ours(images), reference(images)
    torch.testing.assert_close(logits, logits_ref, atol=1e-10, rtol=1e-10)
    names = [name for name, _ in reference.named_parameters()]
    ours_parameters = dict(ours.named_parameters())
    upstream = torch.randn_like(logits)
    grads = torch.autograd.grad(logits, [images, *(ours_parameters[ours_name(n)] for n in names)], upstream)
    grads_ref = torch.autograd.grad(logits_ref, [images, *reference.parameters()], upstream)
    for grad, grad_ref in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(grad, grad_ref, atol=1e-10, rtol=1e-10)


def test_vit_fused_attention_gives_the_same_logits():
    plain = VisionTransformer(**CONFIG, num_heads=4).double()
    fused = VisionTransformer(**CONFIG, num_heads=4, fused=True).double()
    fused.load_state_dict(plain.state_dict())
    images = torch.rand(2, 1, 28, 28, dtype=torch.float64)
    torch.testing.assert_close(fused(images), plain(images), atol=1e-10, rtol=1e-10)


def test_vit_attention_and_sincos_option():
    model = VisionTransformer(**CONFIG, num_heads=4, position_embedding="sincos")
    assert "pos_embed" not in model.state_dict() and not isinstance(model.pos_embed, nn.Parameter)
    torch.testing.assert_close(model.pos_embed[0, 1:], sincos_position_embedding(4, 32))
    assert torch.equal(model.pos_embed[0, 0], torch.zeros(32))
    images = torch.rand(2, 1, 28, 28)
    logits, attentions = model.forward_with_weights(images)
    assert logits.shape == (2, 10) and len(attentions) == 3
    assert all(a.shape == (2, 4, 17, 17) for a in attentions)
    torch.testing.assert_close(attentions[1].sum(-1), torch.ones(2, 4, 17))
    torch.testing.assert_close(model(images), logits)  # the same logits with and without the weights
    learned = VisionTransformer(**CONFIG, num_heads=4)
    difference = sum(p.numel() for p in learned.parameters()) - sum(p.numel() for p in model.parameters())
    assert difference == 17 * 32  # the learned table is the only extra parameter


def test_vit_bad_arguments():
    with pytest.raises(ValueError, match="position_embedding must be one of"):
        VisionTransformer(position_embedding="rope")
    with pytest.raises(ValueError, match="embed_dim must be divisible by num_heads=3"):
        VisionTransformer(embed_dim=32, num_heads=3)
    with pytest.raises(ValueError, match=r"images must have shape \(B, 1, 28, 28\)"):
        VisionTransformer()(torch.rand(2, 3, 28, 28))


@pytest.mark.exercise("vclib.transformer.vit.attention_rollout")
def test_attention_rollout_by_hand():
    uniform = torch.full((1, 2, 3, 3), 1 / 3)  # every token attends equally to all
    first = (torch.full((3, 3), 1 / 3) + torch.eye(3)) / 2  # heads averaged, + identity, rows renormalised
    torch.testing.assert_close(attention_rollout([uniform])[0], first)
    swap = torch.tensor([[0.0, 1, 0], [1, 0, 0], [0, 0, 1]]).expand(1, 2, 3, 3)  # tokens 0 and 1 swap
    second = (swap[0, 0] + torch.eye(3)) / torch.tensor([[2.0], [2], [2]])
    torch.testing.assert_close(attention_rollout([uniform, swap])[0], second @ first)  # later block on the left
    identity = torch.eye(3).expand(2, 4, 3, 3)
    torch.testing.assert_close(attention_rollout([identity, identity]), torch.eye(3).expand(2, 3, 3))


def test_rollout_maps_and_similarity():
    model = VisionTransformer(**CONFIG, num_heads=4)
    _, attentions = model.forward_with_weights(torch.rand(2, 1, 28, 28))
    rollout = attention_rollout(attentions)
    torch.testing.assert_close(rollout.sum(-1), torch.ones(2, 17))
    assert class_token_map(rollout, 4).shape == (2, 4, 4)
    similarity = position_similarity(model.pos_embed.detach(), 4)
    assert similarity.shape == (4, 4, 4, 4)
    torch.testing.assert_close(
        torch.stack([similarity[i, j, i, j] for i in range(4) for j in range(4)]), torch.ones(16)
    )
    with pytest.raises(ValueError, match="attentions must hold at least one"):
        attention_rollout([])
    with pytest.raises(ValueError, match=r"attentions\[1\] must have shape \(2, heads, 17, 17\)"):
        attention_rollout([attentions[0], attentions[1][:, :, :5, :5]])
    with pytest.raises(ValueError, match="rollout must have 10 tokens for a 3x3"):
        class_token_map(rollout, 3)
    with pytest.raises(ValueError, match="pos_embed must hold 9 patch positions"):
        position_similarity(model.pos_embed.detach(), 3)


def test_attention_overlay_shares_the_colour_scale_and_accepts_grey_images():
    import matplotlib.pyplot as plt  # the Agg backend, set in conftest

    from vclib.viz.attention import draw_attention_overlay

    fig, (ax_a, ax_b) = plt.subplots(1, 2)
    flat, peaked = torch.full((16,), 1 / 16), torch.softmax(4 * torch.randn(16), 0)
    shown_a = draw_attention_overlay(ax_a, torch.rand(1, 28, 28), flat, 5, 7, vmax=peaked.max().item())
    shown_b = draw_attention_overlay(ax_b, torch.rand(3, 28, 28), peaked, None, 7, vmax=peaked.max().item())
    assert shown_a.get_clim() == shown_b.get_clim() == (0.0, pytest.approx(peaked.max().item()))
    assert len(ax_a.patches) == 1 and len(ax_b.patches) == 0  # a box around the query patch only when given
    plt.close(fig)
