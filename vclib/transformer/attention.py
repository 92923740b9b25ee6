"""Attention from scratch: scaled dot-product attention, multi-head attention and an encoder block.

Each piece is a drop-in twin of its torch counterpart, with torch's call signature, constructor defaults,
parameter names and return types:

- :func:`scaled_dot_product_attention` equals ``F.scaled_dot_product_attention``;
- :class:`MultiHeadAttention` is ``nn.MultiheadAttention`` (loads its ``state_dict`` both ways);
- :class:`TransformerEncoderBlock` is ``nn.TransformerEncoderLayer`` (post-norm by default, pre-norm with
  ``norm_first=True`` as in ViTs).

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
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from vclib.checks import check_choice, check_fraction, check_positive_int, check_tensor


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


def _check_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    """Queries ``(..., L, E)``, keys ``(..., S, E)`` and values ``(..., S, Ev)`` of one dtype, else ValueError."""
    check_tensor(q, "q", floating=True)
    check_tensor(k, "k", ndim=q.dim(), dtype=q.dtype)
    check_tensor(v, "v", ndim=q.dim(), dtype=q.dtype)
    if q.dim() < 2:
        raise ValueError(f"q must have shape (..., L, E), got {tuple(q.shape)}")
    if k.shape[-1] != q.shape[-1] or k.shape[:-2] != q.shape[:-2]:
        raise ValueError(f"k must have shape {(*q.shape[:-2], 'S', q.shape[-1])}, got {tuple(k.shape)}")
    if v.shape[:-1] != k.shape[:-1]:
        raise ValueError(f"v must have shape {(*k.shape[:-1], 'Ev')} to match k, got {tuple(v.shape)}")


def scaled_dot_product_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    need_weights: bool = False,
    dropout_p: float = 0.0,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """``softmax(q k^T / sqrt(E) + mask) v``, the attention of every query to every key.

    Args:
        q: ``(..., L, E)`` queries.
        k: ``(..., S, E)`` keys.
        v: ``(..., S, Ev)`` values (usually ``Ev = E``).
        mask: broadcastable to ``(..., L, S)``; boolean (True = attend) or float (added to the scores).
        need_weights: also return the attention weights (before dropout).
        dropout_p: dropout probability on the weights (use 0 outside training).

    Returns:
        ``(..., L, Ev)``, or ``(output, weights (..., L, S))`` when ``need_weights``.
    """
    _check_qkv(q, k, v)
    ### BEGIN SOLUTION
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
    return (output, weights) if need_weights else output
    ### END SOLUTION


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
    """Multi-head attention, the twin of ``nn.MultiheadAttention`` (same arguments, defaults and parameters).

    ``in_proj_weight`` ``(3E, E)`` stacks the query, key and value projections, ``in_proj_bias`` ``(3E,)``
    their biases, and ``out_proj`` is an ``nn.Linear(E, E)``, so ``load_state_dict`` works both ways.
    Each of the ``H`` heads attends in its own ``E / H``-dimensional subspace.

    Differences from torch, all documented here:

    - **boolean masks mean True = attend** (as in ``F.scaled_dot_product_attention``); torch's
      ``key_padding_mask`` and boolean ``attn_mask`` mean True = *ignore*, so pass ``~mask`` to torch;
    - ``is_causal=True`` without ``attn_mask`` applies the causal mask (torch requires the mask as well);
    - the returned weights are taken before dropout; ``add_bias_kv``, ``add_zero_attn``, ``kdim`` and
      ``vdim`` are not supported.

    Args:
        embed_dim: E, the model width.
        num_heads: H, must divide E.
        dropout: dropout on the attention weights during training.
        bias: learn biases for the projections.
        batch_first: inputs are ``(B, L, E)`` instead of torch's default ``(L, B, E)``.
        device, dtype: of the parameters.
        fused: when weights are not requested, compute attention with ``F.scaled_dot_product_attention``
            (same result, faster) instead of :func:`scaled_dot_product_attention` (which shows the math).
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        batch_first: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        fused: bool = False,
    ) -> None:
        super().__init__()
        check_positive_int(embed_dim, "embed_dim")
        check_positive_int(num_heads, "num_heads")
        if embed_dim % num_heads != 0:
            raise ValueError(f"embed_dim must be divisible by num_heads={num_heads}, got embed_dim={embed_dim}")
        check_fraction(dropout, "dropout", inclusive_high=False)
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
        self.dropout, self.batch_first, self.fused = dropout, batch_first, fused
        factory = {"device": device, "dtype": dtype}
        self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim, **factory))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * embed_dim, **factory)) if bias else None
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias, **factory)
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

    def attend(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        mask: torch.Tensor | None = None,
        need_weights: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The multi-head computation on batch-first inputs.

        Args:
            query: ``(B, L, E)``; key, value: ``(B, S, E)``.
            mask: broadcastable to ``(B, H, L, S)``, True = attend, or float (see :func:`merge_masks`).
            need_weights: also return the weights of every head.

        Returns:
            ``(output (B, L, E), weights (B, H, L, S) or None)``.
        """
        q, k, v = (self._split_heads(x) for x in self._project(query, key, value))  # (B, H, L|S, D)
        dropout_p = self.dropout if self.training else 0.0
        if self.fused and not need_weights:
            heads = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)  # (B, H, L, D)
            weights = None
        else:
            heads, weights = scaled_dot_product_attention(q, k, v, mask, need_weights=True, dropout_p=dropout_p)
        batch, _, query_length, _ = heads.shape
        merged = heads.transpose(1, 2).reshape(batch, query_length, self.embed_dim)  # (B, L, H * D)
        return self.out_proj(merged), weights

    def _batch_first(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> list[torch.Tensor]:
        """Check the inputs and bring them to ``(B, L|S, E)``; unbatched ``(L, E)`` inputs get ``B = 1``."""
        check_tensor(query, "query", ndim=(2, 3), dtype=self.in_proj_weight.dtype)
        for name, x in (("key", key), ("value", value)):
            check_tensor(x, name, ndim=query.dim(), dtype=query.dtype)
        layout = "(length, E)" if query.dim() == 2 else "(B, length, E)" if self.batch_first else "(length, B, E)"
        batch_axis = None if query.dim() == 2 else 0 if self.batch_first else 1
        batch = None if batch_axis is None else query.shape[batch_axis]
        for name, x in (("query", query), ("key", key), ("value", value)):
            if x.shape[-1] != self.embed_dim or (batch is not None and x.shape[batch_axis] != batch):
                raise ValueError(f"{name} must have shape {layout} with E={self.embed_dim}, got {tuple(x.shape)}")
        if key.shape != value.shape:
            raise ValueError(f"key and value must have the same shape, got {tuple(key.shape)} and {tuple(value.shape)}")
        same = [query is key, key is value]
        if batch_axis is None:
            inputs = [x.unsqueeze(0) for x in (query, key, value)]  # (1, length, E)
        else:
            inputs = [x if self.batch_first else x.transpose(0, 1) for x in (query, key, value)]  # (B, length, E)
        # Keep self-attention recognisable for _project's single matrix product.
        key = inputs[0] if same[0] else inputs[1]
        return [inputs[0], key, key if same[1] else inputs[2]]

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        key_padding_mask: torch.Tensor | None = None,
        need_weights: bool = True,
        attn_mask: torch.Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Attend from ``query`` to ``key``/``value``.

        Args:
            query: ``(L, B, E)``, ``(B, L, E)`` with ``batch_first``, or unbatched ``(L, E)``.
            key, value: ``(S, B, E)``, ``(B, S, E)`` or ``(S, E)``, in the same layout as ``query``.
            key_padding_mask: ``(B, S)``, True where a key is real (torch: True where it is padding).
            need_weights: also return the attention weights.
            attn_mask: ``(L, S)``, ``(B * H, L, S)`` or ``(B, H, L, S)``, True = attend (torch: True = block).
            average_attn_weights: average the weights over the heads, as torch does by default.
            is_causal: query ``i`` attends to keys ``0 .. i`` (used when ``attn_mask`` is None).

        Returns:
            ``(output, weights)``: output in ``query``'s layout; weights ``(B, L, S)`` averaged, ``(B, H, L, S)``
            per head, without ``B`` for unbatched inputs, or None when ``need_weights`` is False.
        """
        unbatched = query.dim() == 2
        query, key, value = self._batch_first(query, key, value)  # (B, L, E), (B, S, E), (B, S, E)
        batch, query_length, key_length = query.shape[0], query.shape[1], key.shape[1]
        if is_causal and attn_mask is None:
            attn_mask = causal_mask(query_length, key_length, device=query.device)  # (L, S)
        if unbatched and key_padding_mask is not None:
            key_padding_mask = key_padding_mask.unsqueeze(0)  # (1, S)
        mask = merge_masks(key_padding_mask, attn_mask, batch, self.num_heads, query_length, key_length, query.dtype)
        output, weights = self.attend(query, key, value, mask, need_weights)  # (B, L, E), (B, H, L, S) or None
        output = output[0] if unbatched else output if self.batch_first else output.transpose(0, 1)
        if not need_weights:
            return output, None
        weights = weights.mean(dim=1) if average_attn_weights else weights  # (B, L, S) or (B, H, L, S)
        return output, (weights[0] if unbatched else weights)

    def extra_repr(self) -> str:
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, batch_first={self.batch_first}"


ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"relu": F.relu, "gelu": F.gelu}


class TransformerEncoderBlock(nn.Module):
    """A Transformer encoder block, the twin of ``nn.TransformerEncoderLayer`` (same call, defaults, names).

    Post-norm (torch's default, the original Transformer) and pre-norm (``norm_first=True``, ViTs)::

        post-norm: x = LN1(x + Dropout(SelfAttention(x)));     x = LN2(x + Dropout(MLP(x)))
        pre-norm:  x = x + Dropout(SelfAttention(LN1(x)));     x = x + Dropout(MLP(LN2(x)))

    with ``MLP(x) = Linear2(Dropout(activation(Linear1(x))))``. The parameter names (``self_attn``,
    ``linear1``, ``linear2``, ``norm1``, ``norm2``) are torch's, so both load each other's ``state_dict``;
    with dropout off the outputs agree. ``forward`` returns a tensor as torch does; the attention weights
    come from :meth:`forward_with_weights`.

    Mask convention: **boolean masks mean True = attend** (torch's mean True = ignore: pass ``~mask`` to
    torch); float masks are added to the scores in both. ``is_causal=True`` without ``src_mask`` applies the
    causal mask (torch requires the mask too).

    Args:
        d_model: E, the token width.
        nhead: H, number of heads (divides E).
        dim_feedforward: width of the MLP's hidden layer.
        dropout: dropout rate for the attention weights, the residual branches and the MLP.
        activation: ``"relu"``, ``"gelu"`` or a callable.
        layer_norm_eps: epsilon of both LayerNorms.
        batch_first: tokens are ``(B, N, E)`` instead of torch's default ``(N, B, E)``.
        norm_first: pre-norm instead of post-norm.
        bias: learn biases in the linear layers and LayerNorms.
        device, dtype: of the parameters.
        fused: passed to :class:`MultiHeadAttention`.
    """

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: str | Callable[[torch.Tensor], torch.Tensor] = "relu",
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        fused: bool = False,
    ) -> None:
        super().__init__()
        check_positive_int(dim_feedforward, "dim_feedforward")
        if isinstance(activation, str):
            check_choice(activation, "activation", tuple(ACTIVATIONS))
            activation = ACTIVATIONS[activation]
        factory = {"device": device, "dtype": dtype}
        self.d_model, self.norm_first, self.activation = d_model, norm_first, activation
        # Registered in torch's order, so parameters() lines up too (optimizer state_dicts carry over).
        self.self_attn = MultiHeadAttention(
            d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first, fused=fused, **factory
        )
        self.linear1 = nn.Linear(d_model, dim_feedforward, bias=bias, **factory)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model, bias=bias, **factory)
        self.norm1 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **factory)
        self.norm2 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **factory)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    def _self_attention(
        self, x: torch.Tensor, mask: torch.Tensor | None, padding: torch.Tensor | None, is_causal: bool, weights: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        attended, attention = self.self_attn(
            x, x, x, padding, need_weights=weights, attn_mask=mask, average_attn_weights=False, is_causal=is_causal
        )
        return self.dropout1(attended), attention

    def _feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))

    def encode(
        self,
        src: torch.Tensor,
        src_mask: torch.Tensor | None,
        src_key_padding_mask: torch.Tensor | None,
        is_causal: bool,
        need_weights: bool,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The block's computation; arguments as in :meth:`forward`.

        Returns:
            ``(tokens in src's shape, attention weights per head (B, H, N, N) or None)``.
        """
        check_tensor(src, "src", ndim=(2, 3))
        if src.shape[-1] != self.d_model:
            raise ValueError(f"src must have {self.d_model} features in its last dimension, got {tuple(src.shape)}")
        masks = (src_mask, src_key_padding_mask, is_causal, need_weights)
        x = src
        if self.norm_first:
            attended, weights = self._self_attention(self.norm1(x), *masks)
            x = x + attended
            return x + self._feed_forward(self.norm2(x)), weights
        attended, weights = self._self_attention(x, *masks)
        x = self.norm1(x + attended)
        return self.norm2(x + self._feed_forward(x)), weights

    def forward(
        self,
        src: torch.Tensor,
        src_mask: torch.Tensor | None = None,
        src_key_padding_mask: torch.Tensor | None = None,
        is_causal: bool = False,
    ) -> torch.Tensor:
        """Encode ``src``, as ``nn.TransformerEncoderLayer`` does.

        Args:
            src: ``(N, B, E)``, ``(B, N, E)`` with ``batch_first``, or unbatched ``(N, E)``.
            src_mask: ``(N, N)`` or ``(B * H, N, N)``, True = attend, or float (added to the scores).
            src_key_padding_mask: ``(B, N)``, True where a token is real.
            is_causal: token ``i`` attends to tokens ``0 .. i`` (when ``src_mask`` is None).

        Returns:
            the encoded tokens, in ``src``'s shape.
        """
        return self.encode(src, src_mask, src_key_padding_mask, is_causal, need_weights=False)[0]

    def forward_with_weights(
        self,
        src: torch.Tensor,
        src_mask: torch.Tensor | None = None,
        src_key_padding_mask: torch.Tensor | None = None,
        is_causal: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Like :meth:`forward`, and also return the attention weights per head, ``(B, H, N, N)``."""
        return self.encode(src, src_mask, src_key_padding_mask, is_causal, need_weights=True)
