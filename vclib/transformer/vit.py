"""The Vision Transformer (ViT, Dosovitskiy et al. 2021) built from this package's attention blocks.

An image is cut into P x P patches; each patch becomes a token by a linear map (a convolution with kernel
and stride P). A learned class token is put in front, position embeddings are added (learned, or the fixed
2-D sine-cosine ones), a stack of pre-norm encoder blocks mixes the tokens, and a linear head classifies
the final class token:

    images (B, C, H, W) -> tokens (B, N, E) -> [cls; tokens] + pos (B, 1 + N, E) -> blocks -> head (B, K)
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from vclib.checks import check_choice, check_positive_int, check_tensor
from vclib.transformer.attention import TransformerEncoderBlock

POSITION_EMBEDDINGS = ("learned", "sincos")


class PatchEmbedding(nn.Module):
    """Patches to tokens: ``Conv2d(C, E, kernel_size=P, stride=P)``, then flatten the grid.

    The convolution is the same linear map applied to every flattened patch of
    :func:`vclib.transformer.patchify`, with weight ``conv.weight.reshape(E, C * P * P)``.

    ``forward(images (B, C, H, W)) -> tokens (B, N, E)``, ``N = (H / P) * (W / P)`` in row-major order.
    """

    def __init__(self, image_size: int, patch_size: int, in_channels: int, embed_dim: int) -> None:
        super().__init__()
        for name, value in (
            ("image_size", image_size),
            ("patch_size", patch_size),
            ("in_channels", in_channels),
            ("embed_dim", embed_dim),
        ):
            check_positive_int(value, name)
        if image_size % patch_size:
            raise ValueError(f"patch_size must divide image_size={image_size}, got {patch_size}")
        self.image_size, self.patch_size, self.in_channels = image_size, patch_size, in_channels
        self.grid_size = image_size // patch_size
        self.num_patches = self.grid_size**2
        self.proj = nn.Conv2d(in_channels, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        check_tensor(images, "images", ndim=4, dtype=self.proj.weight.dtype)
        expected = (self.in_channels, self.image_size, self.image_size)
        if tuple(images.shape[1:]) != expected:
            raise ValueError(f"images must have shape (B, {', '.join(map(str, expected))}), got {tuple(images.shape)}")
        grid = self.proj(images)  # (B, E, H/P, W/P)
        return grid.flatten(2).transpose(1, 2)  # (B, N, E)


def sincos_position_embedding(grid_size: int, embed_dim: int) -> torch.Tensor:
    """Fixed 2-D sine-cosine position embeddings for a ``grid_size x grid_size`` patch grid.

    Half of the channels encode the row, half the column; each half is ``[sin(p w_i), cos(p w_i)]`` with
    frequencies ``w_i = 10000^(-i / (E / 4))``, as in the Transformer paper, applied per axis.

    Returns:
        ``(grid_size**2, embed_dim)``, rows in the patches' row-major order.
    """
    check_positive_int(grid_size, "grid_size")
    check_positive_int(embed_dim, "embed_dim")
    if embed_dim % 4:
        raise ValueError(f"embed_dim must be divisible by 4 for 2-D sine-cosine embeddings, got {embed_dim}")
    quarter = embed_dim // 4
    frequencies = 10000.0 ** (-torch.arange(quarter, dtype=torch.float64) / quarter)  # (E/4,)
    positions = torch.arange(grid_size, dtype=torch.float64)
    rows, cols = torch.meshgrid(positions, positions, indexing="ij")  # (G, G) each

    def encode(coordinate: torch.Tensor) -> torch.Tensor:
        angles = coordinate.reshape(-1, 1) * frequencies  # (G*G, E/4)
        return torch.cat([angles.sin(), angles.cos()], dim=1)  # (G*G, E/2)

    return torch.cat([encode(rows), encode(cols)], dim=1).float()  # (G*G, E)


class VisionTransformer(nn.Module):
    """A ViT classifier: patch embedding, class token, position embeddings, encoder blocks, head.

    Args:
        image_size: H = W of the input; patch_size: P (divides image_size); in_channels: C.
        num_classes: size of the head's output.
        embed_dim: E; depth: number of encoder blocks; num_heads: H (divides E); mlp_ratio: MLP width / E.
        dropout: dropout on the embeddings and inside the blocks.
        position_embedding: ``"learned"`` (a parameter) or ``"sincos"`` (fixed,
            :func:`sincos_position_embedding`).
        layer_norm_eps: epsilon of every LayerNorm (1e-6 as in the ViT paper's code and timm).
        fused: use ``F.scaled_dot_product_attention`` inside the blocks when no weights are requested.
    """

    def __init__(
        self,
        image_size: int = 28,
        patch_size: int = 7,
        in_channels: int = 1,
        num_classes: int = 10,
        embed_dim: int = 64,
        depth: int = 4,
        num_heads: int = 4,
        mlp_ratio: float = 2.0,
        dropout: float = 0.0,
        position_embedding: str = "learned",
        layer_norm_eps: float = 1e-6,
        fused: bool = False,
    ) -> None:
        super().__init__()
        check_positive_int(num_classes, "num_classes")
        check_positive_int(depth, "depth")
        check_choice(position_embedding, "position_embedding", POSITION_EMBEDDINGS)
        self.patch_embed = PatchEmbedding(image_size, patch_size, in_channels, embed_dim)
        num_tokens = 1 + self.patch_embed.num_patches
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        if position_embedding == "learned":
            self.pos_embed = nn.Parameter(torch.zeros(1, num_tokens, embed_dim))
            nn.init.trunc_normal_(self.pos_embed, std=0.02)
        else:
            fixed = sincos_position_embedding(self.patch_embed.grid_size, embed_dim)  # (N, E)
            fixed = torch.cat([torch.zeros(1, embed_dim), fixed]).unsqueeze(0)  # (1, 1 + N, E), class token: 0
            self.register_buffer("pos_embed", fixed, persistent=False)
        self.dropout = nn.Dropout(dropout)
        hidden = int(round(mlp_ratio * embed_dim))
        if mlp_ratio <= 0 or hidden < 1:
            raise ValueError(f"mlp_ratio must be positive and give at least one hidden unit, got {mlp_ratio!r}")
        block = partial(
            TransformerEncoderBlock,
            dim_feedforward=hidden,
            dropout=dropout,
            activation="gelu",
            layer_norm_eps=layer_norm_eps,
            batch_first=True,
            norm_first=True,
            fused=fused,
        )
        self.blocks = nn.ModuleList(block(embed_dim, num_heads) for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim, eps=layer_norm_eps)
        self.head = nn.Linear(embed_dim, num_classes)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Images ``(B, C, H, W)`` to the blocks' input ``(B, 1 + N, E)``: class token first, positions added."""
        tokens = self.patch_embed(images)  # (B, N, E)
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)  # (B, 1, E)
        return self.dropout(torch.cat([cls, tokens], dim=1) + self.pos_embed)  # (B, 1 + N, E)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Args: images ``(B, C, H, W)``. Returns: logits ``(B, num_classes)``."""
        x = self.embed(images)  # (B, 1 + N, E)
        for block in self.blocks:
            x = block(x)  # (B, 1 + N, E)
        return self.head(self.norm(x[:, 0]))  # (B, num_classes), read from the class token

    def forward_with_weights(self, images: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Like :meth:`forward`, and also return every block's attention weights.

        Returns:
            logits ``(B, num_classes)`` and a list of ``depth`` tensors ``(B, H, 1 + N, 1 + N)`` (H heads;
            token 0 is the class token).
        """
        x = self.embed(images)  # (B, 1 + N, E)
        attentions = []
        for block in self.blocks:
            x, weights = block.forward_with_weights(x)  # (B, 1 + N, E), (B, H, 1 + N, 1 + N)
            attentions.append(weights)
        return self.head(self.norm(x[:, 0])), attentions


def attention_rollout(attentions: list[torch.Tensor]) -> torch.Tensor:
    """How much each output token draws on each input token, through all blocks (Abnar & Zuidema, 2020).

    Per block, average the heads, add the identity for the residual connection and renormalise the rows;
    then multiply the blocks' matrices, first block on the right.

    Args:
        attentions: ``depth`` tensors ``(B, heads, N, N)``, as returned by
            ``VisionTransformer.forward_with_weights(images)``.

    Returns:
        ``(B, N, N)``, rows sum to 1; row 0 is the class token's attention to every token.
    """
    if not attentions:
        raise ValueError("attentions must hold at least one block's weights, got an empty list")
    first = check_tensor(attentions[0], "attentions[0]", ndim=4, floating=True)
    batch, _, tokens, _ = first.shape
    identity = torch.eye(tokens, dtype=first.dtype, device=first.device)  # (N, N)
    rollout = identity.expand(batch, tokens, tokens)  # (B, N, N)
    for index, weights in enumerate(attentions):
        check_tensor(weights, f"attentions[{index}]", ndim=4, dtype=first.dtype)
        if weights.shape[0] != batch or weights.shape[2:] != (tokens, tokens):
            raise ValueError(
                f"attentions[{index}] must have shape ({batch}, heads, {tokens}, {tokens}), got {tuple(weights.shape)}"
            )
        ### BEGIN SOLUTION
        mixed = weights.mean(dim=1) + identity  # (B, N, N): heads averaged, plus the residual path
        mixed = mixed / mixed.sum(dim=-1, keepdim=True)
        rollout = mixed @ rollout  # (B, N, N)
        ### END SOLUTION
    return rollout


def class_token_map(rollout: torch.Tensor, grid_size: int) -> torch.Tensor:
    """The class token's rolled-out attention to each patch, as an image: ``(B, 1+N, 1+N) -> (B, G, G)``."""
    check_tensor(rollout, "rollout", ndim=3)
    if rollout.shape[1] != 1 + grid_size**2:
        raise ValueError(
            f"rollout must have {1 + grid_size**2} tokens for a {grid_size}x{grid_size} patch grid, "
            f"got {rollout.shape[1]}"
        )
    return rollout[:, 0, 1:].reshape(-1, grid_size, grid_size)  # (B, G, G)


def position_similarity(pos_embed: torch.Tensor, grid_size: int) -> torch.Tensor:
    """Cosine similarity of every patch's position embedding with every other's.

    Args:
        pos_embed: ``(N, E)`` or ``(1, 1 + N, E)`` (a ViT's ``pos_embed``; the class token is dropped).

    Returns:
        ``(G, G, G, G)``: entry ``[i, j]`` is a ``G x G`` map of patch ``(i, j)``'s similarity to each patch.
    """
    check_tensor(pos_embed, "pos_embed", ndim=(2, 3), floating=True)
    if pos_embed.dim() == 3:
        pos_embed = pos_embed[0, 1:]  # (N, E)
    if pos_embed.shape[0] != grid_size**2:
        raise ValueError(f"pos_embed must hold {grid_size**2} patch positions, got {pos_embed.shape[0]}")
    unit = nn.functional.normalize(pos_embed, dim=-1)  # (N, E)
    similarity = unit @ unit.T  # (N, N)
    return similarity.reshape(grid_size, grid_size, grid_size, grid_size)  # (G, G, G, G)
