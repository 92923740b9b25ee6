"""Transformers for images: patches (P1), attention blocks (P2) and the Vision Transformer (P3)."""

from vclib.transformer.attention import (
    MultiHeadAttention,
    TransformerEncoderBlock,
    causal_mask,
    scaled_dot_product_attention,
)
from vclib.transformer.patches import patchify, unpatchify
from vclib.transformer.vit import (
    PatchEmbedding,
    VisionTransformer,
    attention_rollout,
    class_token_map,
    position_similarity,
    sincos_position_embedding,
)

__all__ = [
    "patchify",
    "unpatchify",
    "MultiHeadAttention",
    "TransformerEncoderBlock",
    "causal_mask",
    "scaled_dot_product_attention",
    "PatchEmbedding",
    "VisionTransformer",
    "attention_rollout",
    "class_token_map",
    "position_similarity",
    "sincos_position_embedding",
]
