"""Transformers for images: patches (P1), attention blocks (P2) and the Vision Transformer (P3)."""

from vclib.transformer.patches import patchify, unpatchify

__all__ = ["patchify", "unpatchify"]
