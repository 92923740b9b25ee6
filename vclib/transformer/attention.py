"""Attention from scratch: scaled dot-product attention, multi-head attention and a pre-norm encoder block.

Each piece is a drop-in twin of its torch counterpart:

- :func:`scaled_dot_product_attention` equals ``F.scaled_dot_product_attention``;
- :class:`MultiHeadAttention` loads the ``state_dict`` of ``nn.MultiheadAttention(batch_first=True)``;
- :class:`TransformerEncoderBlock` loads the ``state_dict`` of ``nn.TransformerEncoderLayer(norm_first=True,
  batch_first=True, activation="gelu")``.

Mask convention, the same everywhere in this module: a **boolean mask is True where a query may attend**
(as in ``F.scaled_dot_product_attention``) and a float mask is added to the scores. ``nn.MultiheadAttention``
and ``nn.TransformerEncoderLayer`` use the opposite boolean convention for both ``key_padding_mask`` and
``attn_mask`` (True = ignore), so pass ``~mask`` to torch's modules to get the same result. Float masks mean
the same in both.

A query that may attend to no key at all gets zero output and zero weights, as in
``F.scaled_dot_product_attention``; ``nn.MultiheadAttention`` returns NaN there.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from vclib.checks import check_positive_int, check_tensor


def causal_mask(query_length: int, key_length: int | None = None, device: torch.device | None = None) -> torch.Tensor:
    """Boolean ``(L, S)`` mask, True on and below the diagonal: query ``i`` attends to keys ``0 .. i``.

    It equals ``is_causal=True`` in ``F.scaled_dot_product_attention`` (aligned to the top-left corner).
    """
    check_positive_int(query_length, "query_length")
    key_length = query_length if key_length is None else check_positive_int(key_length, "key_length")
    return torch.ones(query_length, key_length, dtype=torch.bool, device=device).tril()


def _check_mask_dtype(mask: torch.Tensor, name: str, dtype: torch.dtype) -> None:
    if mask.dtype != torch.bool and mask.dtype != dtype:
        raise ValueError(f"{name} must be boolean (True = attend) or have the inputs' dtype {dtype}, got {mask.dtype}")


def _check_mask(mask: torch.Tensor, name: str, scores_shape: torch.Size, dtype: torch.dtype) -> None:
    _check_mask_dtype(check_tensor(mask, name), name, dtype)
    try:
        broadcast = torch.broadcast_shapes(mask.shape, scores_shape)
    except RuntimeError:
        broadcast = None
    if broadcast != scores_shape:
        raise ValueError(f"{name} must broadcast to the scores' shape {tuple(scores_shape)}, got {tuple(mask.shape)}")


def scaled_dot_product_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    return_weights: bool = False,
    dropout_p: float = 0.0,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """``softmax(q k^T / sqrt(E) + mask) v``, the attention of every query to every key.

    Args:
        q: ``(..., L, E)`` queries.
        k: ``(..., S, E)`` keys.
        v: ``(..., S, Ev)`` values (usually ``Ev = E``).
        mask: broadcastable to ``(..., L, S)``; boolean (True = attend) or float (added to the scores).
        return_weights: also return the attention weights (before dropout).
        dropout_p: dropout probability on the weights (use 0 outside training).

    Returns:
        ``(..., L, Ev)``, or ``(output, weights (..., L, S))`` when ``return_weights``.
    """
    check_tensor(q, "q", floating=True)
    check_tensor(k, "k", ndim=q.dim(), dtype=q.dtype)
    check_tensor(v, "v", ndim=q.dim(), dtype=q.dtype)
    if q.dim() < 2:
        raise ValueError(f"q must have shape (..., L, E), got {tuple(q.shape)}")
    if k.shape[-1] != q.shape[-1] or k.shape[:-2] != q.shape[:-2]:
        raise ValueError(f"k must have shape {(*q.shape[:-2], 'S', q.shape[-1])}, got {tuple(k.shape)}")
    if v.shape[:-1] != k.shape[:-1]:
        raise ValueError(f"v must have shape {(*k.shape[:-1], 'Ev')} to match k, got {tuple(v.shape)}")
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., L, S)
    if mask is not None:
        _check_mask(mask, "mask", scores.shape, q.dtype)
        scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask
        # A query with no key to attend to would give softmax(-inf, ..., -inf) = NaN; it gets zeros instead.
        blocked = torch.isneginf(scores).all(dim=-1, keepdim=True)  # (..., L, 1)
        weights = scores.masked_fill(blocked, 0.0).softmax(dim=-1).masked_fill(blocked, 0.0)  # (..., L, S)
    else:
        weights = scores.softmax(dim=-1)  # (..., L, S)
    output = F.dropout(weights, dropout_p) @ v if dropout_p > 0 else weights @ v  # (..., L, Ev)
    return (output, weights) if return_weights else output


def merge_masks(
    key_padding_mask: torch.Tensor | None,
    attn_mask: torch.Tensor | None,
    batch_size: int,
    num_heads: int,
    query_length: int,
    key_length: int,
    dtype: torch.dtype,
) -> torch.Tensor | None:
    """Combine a padding mask and an attention mask into one mask broadcastable to ``(B, H, L, S)``.

    Args:
        key_padding_mask: ``(B, S)``: which keys exist (True = attend) or a float mask added per key.
        attn_mask: ``(L, S)``, ``(B * H, L, S)`` (torch's layout) or ``(B, H, L, S)``; bool or float.

    Returns:
        None, a boolean mask (both boolean: True where both allow), or a float mask (their sum, with
        ``-inf`` for boolean False).
    """
    masks = []
    if key_padding_mask is not None:
        _check_mask_dtype(check_tensor(key_padding_mask, "key_padding_mask", ndim=2), "key_padding_mask", dtype)
        if key_padding_mask.shape != (batch_size, key_length):
            expected = (batch_size, key_length)
            raise ValueError(f"key_padding_mask must have shape {expected}, got {tuple(key_padding_mask.shape)}")
        masks.append(key_padding_mask[:, None, None, :])  # (B, 1, 1, S)
    if attn_mask is not None:
        _check_mask_dtype(check_tensor(attn_mask, "attn_mask", ndim=(2, 3, 4)), "attn_mask", dtype)
        allowed = {
            2: (query_length, key_length),
            3: (batch_size * num_heads, query_length, key_length),
            4: (batch_size, num_heads, query_length, key_length),
        }
        if attn_mask.shape != allowed[attn_mask.dim()]:
            options = " or ".join(str(shape) for shape in allowed.values())
            raise ValueError(f"attn_mask must have shape {options}, got {tuple(attn_mask.shape)}")
        if attn_mask.dim() == 3:
            attn_mask = attn_mask.view(batch_size, num_heads, query_length, key_length)  # (B, H, L, S)
        masks.append(attn_mask)
    if not masks:
        return None
    if all(mask.dtype == torch.bool for mask in masks):
        return masks[0] if len(masks) == 1 else masks[0] & masks[1]
    additive = [
        torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(~mask, float("-inf"))
        if mask.dtype == torch.bool
        else mask
        for mask in masks
    ]
    return additive[0] if len(additive) == 1 else additive[0] + additive[1]


class MultiHeadAttention(nn.Module):
    """Multi-head attention with the parameter layout of ``nn.MultiheadAttention(..., batch_first=True)``.

    ``in_proj_weight`` ``(3E, E)`` stacks the query, key and value projections, ``in_proj_bias`` ``(3E,)``
    their biases, and ``out_proj`` is an ``nn.Linear(E, E)``, so ``load_state_dict`` works both ways.
    Each of the ``H`` heads attends in its own ``E / H``-dimensional subspace.

    Args:
        embed_dim: E, the model width; num_heads: H, must divide E.
        bias: learn biases for the projections.
        dropout: dropout on the attention weights during training.
        fused: when weights are not requested, compute attention with ``F.scaled_dot_product_attention``
            (same result, faster) instead of :func:`scaled_dot_product_attention` (which shows the math).
    """

    def __init__(
        self, embed_dim: int, num_heads: int, bias: bool = True, dropout: float = 0.0, fused: bool = False
    ) -> None:
        super().__init__()
        check_positive_int(embed_dim, "embed_dim")
        check_positive_int(num_heads, "num_heads")
        if embed_dim % num_heads != 0:
            raise ValueError(f"embed_dim must be divisible by num_heads={num_heads}, got embed_dim={embed_dim}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout!r}")
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
        self.dropout, self.fused = dropout, fused
        self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * embed_dim)) if bias else None
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        nn.init.xavier_uniform_(self.in_proj_weight)  # torch's initialisation
        if bias:
            nn.init.zeros_(self.out_proj.bias)

    def _project(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> list[torch.Tensor]:
        """Queries, keys and values: ``(B, L, E)``, ``(B, S, E)``, ``(B, S, E)``."""
        if query is key and key is value:  # self-attention: one matrix product for all three
            return list(F.linear(query, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1))
        weights = self.in_proj_weight.chunk(3)  # 3 x (E, E)
        biases = self.in_proj_bias.chunk(3) if self.in_proj_bias is not None else (None, None, None)
        return [F.linear(x, w, b) for x, w, b in zip((query, key, value), weights, biases, strict=True)]

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        return x.view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)  # (B, H, length, D)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        key_padding_mask: torch.Tensor | None = None,
        attn_mask: torch.Tensor | None = None,
        need_weights: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Attend from ``query`` to ``key``/``value``.

        Args:
            query: ``(B, L, E)``; key, value: ``(B, S, E)``.
            key_padding_mask: ``(B, S)``, True where a key is real (torch: True where it is padding).
            attn_mask: ``(L, S)``, ``(B * H, L, S)`` or ``(B, H, L, S)``, True = attend (torch: True = block).
            need_weights: also return the attention weights of every head.

        Returns:
            ``(output (B, L, E), weights (B, H, L, S) or None)``. Unlike torch, weights are per head, not
            averaged over heads.
        """
        check_tensor(query, "query", ndim=3, dtype=self.in_proj_weight.dtype)
        check_tensor(key, "key", ndim=3, dtype=query.dtype)
        check_tensor(value, "value", ndim=3, dtype=query.dtype)
        batch, query_length, _ = query.shape
        for name, x in (("query", query), ("key", key), ("value", value)):
            if x.shape[0] != batch or x.shape[-1] != self.embed_dim:
                raise ValueError(f"{name} must have shape ({batch}, length, {self.embed_dim}), got {tuple(x.shape)}")
        if key.shape != value.shape:
            raise ValueError(f"key and value must have the same shape, got {tuple(key.shape)} and {tuple(value.shape)}")
        key_length = key.shape[1]
        mask = merge_masks(
            key_padding_mask, attn_mask, batch, self.num_heads, query_length, key_length, query.dtype
        )  # broadcastable to (B, H, L, S)
        q, k, v = (self._split_heads(x) for x in self._project(query, key, value))  # (B, H, L|S, D)
        dropout_p = self.dropout if self.training else 0.0
        if self.fused and not need_weights:
            heads = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)  # (B, H, L, D)
            weights = None
        else:
            heads, weights = scaled_dot_product_attention(q, k, v, mask, return_weights=True, dropout_p=dropout_p)
        merged = heads.transpose(1, 2).reshape(batch, query_length, self.embed_dim)  # (B, L, H * D)
        return self.out_proj(merged), (weights if need_weights else None)

    def extra_repr(self) -> str:
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, fused={self.fused}"


class TransformerEncoderBlock(nn.Module):
    """A pre-norm Transformer encoder block, the twin of ``nn.TransformerEncoderLayer(norm_first=True)``.

        x = x + Dropout(MultiHeadAttention(LayerNorm(x)))
        x = x + Dropout(Linear(Dropout(GELU(Linear(LayerNorm(x))))))

    Its parameter names (``self_attn``, ``linear1``, ``linear2``, ``norm1``, ``norm2``) are torch's, so it
    loads the ``state_dict`` of ``nn.TransformerEncoderLayer(embed_dim, num_heads, dim_feedforward=mlp_ratio
    * embed_dim, norm_first=True, batch_first=True, activation="gelu")``; with dropout 0 the outputs agree.

    Args:
        embed_dim: E; num_heads: H (divides E); mlp_ratio: width of the MLP's hidden layer over E.
        dropout: dropout rate for the attention weights, the residual branches and the MLP.
        layer_norm_eps: epsilon of both LayerNorms (torch's default).
        fused: passed to :class:`MultiHeadAttention`.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        layer_norm_eps: float = 1e-5,
        fused: bool = False,
    ) -> None:
        super().__init__()
        hidden = int(round(mlp_ratio * embed_dim))
        if mlp_ratio <= 0 or hidden < 1:
            raise ValueError(f"mlp_ratio must be positive and give at least one hidden unit, got {mlp_ratio!r}")
        self.embed_dim = embed_dim
        # Registered in torch's order, so parameters() lines up too (optimizer state_dicts carry over).
        self.self_attn = MultiHeadAttention(embed_dim, num_heads, dropout=dropout, fused=fused)
        self.linear1 = nn.Linear(embed_dim, hidden)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(hidden, embed_dim)
        self.norm1 = nn.LayerNorm(embed_dim, eps=layer_norm_eps)
        self.norm2 = nn.LayerNorm(embed_dim, eps=layer_norm_eps)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    def forward(
        self,
        x: torch.Tensor,
        key_padding_mask: torch.Tensor | None = None,
        attn_mask: torch.Tensor | None = None,
        need_weights: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Args: x ``(B, N, E)``; masks as in :class:`MultiHeadAttention` (True = attend).

        Returns:
            ``(x (B, N, E), attention weights (B, H, N, N) or None)``.
        """
        check_tensor(x, "x", ndim=3)
        if x.shape[-1] != self.embed_dim:
            raise ValueError(f"x must have shape (B, N, {self.embed_dim}), got {tuple(x.shape)}")
        normed = self.norm1(x)  # (B, N, E)
        attended, weights = self.self_attn(normed, normed, normed, key_padding_mask, attn_mask, need_weights)
        x = x + self.dropout1(attended)  # (B, N, E)
        hidden = self.dropout(F.gelu(self.linear1(self.norm2(x))))  # (B, N, mlp_ratio * E)
        x = x + self.dropout2(self.linear2(hidden))  # (B, N, E)
        return x, weights
