# %% [markdown]
# # Project 2: Object Detection, Segmentation and Data Augmentation
#
# Dense prediction and the building blocks of modern vision models. The sections follow the course map:
# semantic segmentation (U-Net, SegNet, FCN-8s), object detection with YOLOv3, data augmentation, and the
# attention blocks that a Vision Transformer is made of.
#
# Every function used here lives in `vclib` and is tested against its PyTorch twin; `vclib.show_source`
# prints it so you can read exactly what runs.

# %%
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

import vclib
from vclib import transformer
from vclib.data.photo import load_sample_photo
from vclib.transformer import attention
from vclib.viz.attention import attention_explorer, draw_attention_overlay

cfg = vclib.setup()

# %% [markdown]
# ## Design Attention Blocks for Vision Transformer
#
# Attention is a soft lookup. Each **query** is compared with every **key**; the scores become weights with
# a softmax, and the output is the weighted average of the **values**:
#
# $$\operatorname{Attention}(Q, K, V) = \operatorname{softmax}\!\left(\frac{Q K^\top}{\sqrt{E}} + M\right) V,
# \qquad Q \in \mathbb{R}^{L \times E},\; K \in \mathbb{R}^{S \times E},\; V \in \mathbb{R}^{S \times E_v}.$$
#
# Dividing by $\sqrt{E}$ keeps the scores' spread independent of the width, so the softmax does not saturate.
# The mask $M$ removes pairs: in `vclib` a boolean mask is **True where a query may attend** (as in
# `F.scaled_dot_product_attention`), and a float mask is added to the scores.

# %%
vclib.show_source(transformer.scaled_dot_product_attention)

# %% [markdown]
# ### One head
#
# A Vision Transformer's tokens are image patches (Project 1's `patchify`). Take a real photograph, cut it
# into 16×16 patches, and let each patch attend to all the others with the raw, centred and normalised patch
# pixels as queries, keys and values (no learned projections yet). A patch attends most to patches that
# *look* like it, skin to skin and dark cloth to dark cloth, wherever they are in the image.

# %%
photo = load_sample_photo(224)  # (1, 3, 224, 224): matplotlib's portrait of Grace Hopper
patch_size, grid = 16, 224 // 16
patches = transformer.patchify(photo, patch_size)  # (1, 196, 768)
centred = patches - patches.mean(dim=1, keepdim=True)  # (1, 196, 768): remove the average patch
tokens = F.normalize(centred, dim=-1) * 2 * 768**0.25  # unit length, scaled so that QK^T / sqrt(E) = 4 cos
output, weights = transformer.scaled_dot_product_attention(tokens, tokens, tokens, return_weights=True)
print("tokens", tuple(tokens.shape), "-> weights", tuple(weights.shape), "-> output", tuple(output.shape))


queries = {"face": 6 * grid + 6, "cap": 3 * grid + 7, "coat": 12 * grid + 3, "background": 1 * grid + 12}
fig, axes = plt.subplots(1, 4, figsize=(13, 3.6))
for ax, (name, query) in zip(axes, queries.items(), strict=True):
    draw_attention_overlay(ax, photo[0], weights[0, query], query, patch_size)
    ax.set_title(f"query: {name}")
plt.show()

# %%
# NBVAL_CHECK_OUTPUT
print(
    "equals F.scaled_dot_product_attention:",
    torch.allclose(output, F.scaled_dot_product_attention(tokens, tokens, tokens), atol=1e-5),
)
print("each query's weights sum to 1:", torch.allclose(weights.sum(-1), torch.ones(1, 196)))
face_map = weights[0, queries["face"]].reshape(grid, grid)  # (G, G): where the face patch looks
print(
    "the face patch attends more to the face than to the blue background:",
    bool(face_map[5:9, 5:9].mean() > 5 * face_map[0:4, 10:14].mean()),
)

# %% [markdown]
# **Masks.** A causal mask lets query $i$ see keys $0..i$ only (language models); a padding mask hides
# tokens that are not there (sequences of different lengths in one batch). Both are boolean masks that
# broadcast against the $(L, S)$ scores.

# %%
q, k, v = torch.randn(3, 2, 6, 8).unbind(0)  # (B=2, L=S=6, E=8) each
real = torch.tensor([[True] * 6, [True] * 4 + [False] * 2])  # (B, S): the second sequence has 4 tokens
causal = attention.causal_mask(6)  # (L, S)
_, causal_weights = transformer.scaled_dot_product_attention(q, k, v, causal, return_weights=True)
_, padded_weights = transformer.scaled_dot_product_attention(q, k, v, real[:, None, :], return_weights=True)
fig, axes = plt.subplots(1, 2, figsize=(8, 3.4))
for ax, (title, shown) in zip(
    axes, (("causal mask", causal_weights[0]), ("padding mask", padded_weights[1])), strict=True
):
    ax.imshow(shown, cmap="Blues", vmin=0)
    ax.set(title=title, xlabel="key", ylabel="query")
    ax.grid(False)
plt.show()

# %%
# NBVAL_CHECK_OUTPUT
print(
    "causal mask equals is_causal=True:",
    torch.allclose(
        transformer.scaled_dot_product_attention(q, k, v, causal),
        F.scaled_dot_product_attention(q, k, v, is_causal=True),
        atol=1e-6,
    ),
)
print(
    "padding mask equals torch's boolean attn_mask:",
    torch.allclose(
        transformer.scaled_dot_product_attention(q, k, v, real[:, None, :]),
        F.scaled_dot_product_attention(q, k, v, attn_mask=real[:, None, :]),
        atol=1e-6,
    ),
)
print(
    "no weight on masked keys:", bool((causal_weights[0].triu(1) == 0).all() and (padded_weights[1, :, 4:] == 0).all())
)

# %% [markdown]
# ### Multi-head attention
#
# A single head compares tokens in one way. Multi-head attention first projects the tokens into $H$ smaller
# subspaces of size $D = E / H$, attends in each independently, and mixes the heads' outputs with one more
# linear map:
#
# $$\operatorname{head}_i = \operatorname{Attention}(X W_i^Q, X W_i^K, X W_i^V), \qquad
# \operatorname{MultiHead}(X) = [\operatorname{head}_1, \dots, \operatorname{head}_H]\, W^O.$$
#
# `vclib`'s `MultiHeadAttention` stores the three input projections stacked in one `in_proj_weight`
# $(3E, E)$ and $W^O$ as `out_proj`, the layout of `nn.MultiheadAttention`, so the two load each other's
# `state_dict`. Two differences from torch, both deliberate: boolean masks mean **True = attend** (torch's
# `key_padding_mask` and boolean `attn_mask` mean True = *ignore*, so pass `~mask` to torch), and the
# returned weights are per head, $(B, H, L, S)$, rather than averaged.

# %%
vclib.show_source(transformer.MultiHeadAttention)

# %% [markdown]
# **Shapes, step by step**, for a batch of 2 images of 196 patch tokens, width $E = 64$ and $H = 4$ heads,
# recomputed by hand from the module's own parameters:

# %%
torch.manual_seed(0)
mha = transformer.MultiHeadAttention(embed_dim=64, num_heads=4)
x = torch.randn(2, 196, 64)  # (B, N, E)
qkv = x @ mha.in_proj_weight.T + mha.in_proj_bias  # (B, N, 3E)
q, k, v = qkv.chunk(3, dim=-1)  # 3 x (B, N, E)
q, k, v = (t.view(2, 196, 4, 16).transpose(1, 2) for t in (q, k, v))  # 3 x (B, H, N, D)
scores = q @ k.transpose(-2, -1) / 16**0.5  # (B, H, N, N)
head_weights = scores.softmax(dim=-1)  # (B, H, N, N)
heads = head_weights @ v  # (B, H, N, D)
merged = heads.transpose(1, 2).reshape(2, 196, 64)  # (B, N, H*D)
by_hand = mha.out_proj(merged)  # (B, N, E)
for name, value in (
    ("x", x),
    ("qkv", qkv),
    ("q per head", q),
    ("scores", scores),
    ("heads", heads),
    ("merged", merged),
    ("output", by_hand),
):
    print(f"{name:<11} {tuple(value.shape)}")

# %%
# NBVAL_CHECK_OUTPUT
module_output, module_weights = mha(x, x, x, need_weights=True)
print(
    "by hand == MultiHeadAttention:",
    torch.allclose(by_hand, module_output, atol=1e-5),
    torch.allclose(head_weights, module_weights, atol=1e-6),
)
reference = nn.MultiheadAttention(64, 4, batch_first=True)
reference.load_state_dict(mha.state_dict())
real = torch.ones(2, 196, dtype=torch.bool)
real[1, 150:] = False  # the second sequence is padded after 150 tokens
ours, ours_weights = mha(x, x, x, key_padding_mask=real, need_weights=True)
theirs, theirs_weights = reference(x, x, x, key_padding_mask=~real, average_attn_weights=False)  # torch: True = pad
print(
    "equals nn.MultiheadAttention with a padding mask (output, per-head weights):",
    torch.allclose(ours, theirs, atol=1e-5),
    torch.allclose(ours_weights, theirs_weights, atol=1e-6),
)
grad_ours = torch.autograd.grad(ours.sum(), mha.in_proj_weight)[0]
grad_theirs = torch.autograd.grad(theirs.sum(), reference.in_proj_weight)[0]
print("equal gradients:", torch.allclose(grad_ours, grad_theirs, atol=1e-4))
try:
    transformer.MultiHeadAttention(embed_dim=64, num_heads=5)
except ValueError as error:
    print("64 dims, 5 heads:", error)

# %% [markdown]
# ### The full block
#
# A Transformer encoder block wraps attention and a two-layer MLP in residual connections. In the pre-norm
# form that ViTs use, each branch sees a LayerNorm of its input:
#
# $$x \leftarrow x + \operatorname{MultiHead}(\operatorname{LN}(x)), \qquad
# x \leftarrow x + W_2\, \operatorname{GELU}(W_1 \operatorname{LN}(x)).$$
#
# Attention mixes information **across** tokens; the MLP transforms each token on its own. The residual
# path lets each block add a refinement instead of replacing its input, which keeps deep stacks trainable.

# %%
vclib.show_source(transformer.TransformerEncoderBlock)

# %%
# NBVAL_CHECK_OUTPUT
torch.manual_seed(0)
block = transformer.TransformerEncoderBlock(embed_dim=64, num_heads=4, mlp_ratio=4, dropout=0.0)
torch_block = nn.TransformerEncoderLayer(
    64, 4, dim_feedforward=256, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
)
torch_block.load_state_dict(block.state_dict())
block_output, block_weights = block(x, key_padding_mask=real, need_weights=True)
print("output", tuple(block_output.shape), "weights", tuple(block_weights.shape))
print(
    "equals nn.TransformerEncoderLayer(norm_first=True):",
    torch.allclose(block_output, torch_block(x, src_key_padding_mask=~real), atol=1e-5),
)
print(
    "parameters:",
    sum(p.numel() for p in block.parameters()),
    "= attention",
    sum(p.numel() for p in block.self_attn.parameters()),
    "+ MLP",
    sum(p.numel() for p in (*block.linear1.parameters(), *block.linear2.parameters())),
    "+ norms",
    sum(p.numel() for p in (*block.norm1.parameters(), *block.norm2.parameters())),
)

# %% [markdown]
# ### Attention maps on a real image
#
# Now the real thing: patch embedding (a 16×16 convolution with stride 16), sine-cosine position embeddings,
# and a stack of four blocks with four heads each, run on the photograph. These weights are **untrained**, so
# each head compares patches through its own random projection of their content and position: the heads
# already differ from one another, but none has learned what to look for. Project 3 trains a ViT and shows
# what trained attention picks out.

# %%
torch.manual_seed(0)
embed_dim, num_heads, depth = 96, 4, 4
embed = transformer.PatchEmbedding(image_size=224, patch_size=patch_size, in_channels=3, embed_dim=embed_dim)
blocks = nn.ModuleList(transformer.TransformerEncoderBlock(embed_dim, num_heads, mlp_ratio=2) for _ in range(depth))
with torch.no_grad():
    hidden = embed(photo) + transformer.sincos_position_embedding(grid, embed_dim)  # (1, 196, E)
    layer_weights = []
    for block in blocks:
        hidden, block_weights = block(hidden, need_weights=True)
        layer_weights.append(block_weights[0])  # (H, 196, 196)
attention_maps = torch.stack(layer_weights)  # (layers, heads, 196, 196)
print("attention maps:", tuple(attention_maps.shape), "(layer, head, query, key)")

fig, axes = plt.subplots(depth, num_heads, figsize=(11, 11))
for layer in range(depth):
    for head in range(num_heads):
        face = queries["face"]
        draw_attention_overlay(axes[layer, head], photo[0], attention_maps[layer, head, face], face, patch_size)
        axes[layer, head].set_title(f"layer {layer}, head {head}", fontsize=9)
fig.suptitle("query: the face patch (cyan box)")
plt.show()

# %% [markdown]
# Pick a layer, a head and a query patch (row and column in the 14×14 grid):


# %%
attention_explorer(photo[0], attention_maps, patch_size)

# %%
# NBVAL_CHECK_OUTPUT
print(
    "every map is a distribution over the 196 patches:",
    torch.allclose(attention_maps.sum(-1), torch.ones(depth, num_heads, 196), atol=1e-5),
)
print("heads differ from one another:", bool((attention_maps[0, 0] - attention_maps[0, 1]).abs().max() > 1e-3))
