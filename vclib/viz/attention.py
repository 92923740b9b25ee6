"""Attention maps drawn over the image patches they attend to, and a widget to browse them."""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from matplotlib.axes import Axes

from vclib.checks import check_tensor


def draw_attention_overlay(ax: Axes, image: torch.Tensor, attention_row: torch.Tensor, query: int,
                           patch_size: int) -> None:
    """Draw ``image``, one query's attention over its patch grid, and a box around the query patch.

    Args:
        ax: matplotlib axes to draw on.
        image: ``(3, H, W)`` float in [0, 1].
        attention_row: ``(N,)`` weights over the N = (H/P)(W/P) patches, row-major.
        query: index of the query patch.
        patch_size: P.
    """
    check_tensor(image, "image", ndim=3)
    check_tensor(attention_row, "attention_row", ndim=1)
    rows, cols = image.shape[1] // patch_size, image.shape[2] // patch_size
    if attention_row.numel() != rows * cols:
        raise ValueError(f"attention_row must have {rows * cols} weights for this image, got {attention_row.numel()}")
    heat = attention_row.detach().float().reshape(1, 1, rows, cols)  # (1, 1, R, C)
    heat = F.interpolate(heat, size=image.shape[1:], mode="nearest")[0, 0]  # (H, W)
    ax.imshow(image.permute(1, 2, 0))
    ax.imshow(heat, cmap="inferno", alpha=0.65)
    row, col = divmod(query, cols)
    ax.add_patch(plt.Rectangle((col * patch_size, row * patch_size), patch_size, patch_size, fill=False,
                               edgecolor="cyan", linewidth=2))
    ax.axis("off")


def attention_explorer(image: torch.Tensor, attention_maps: torch.Tensor, patch_size: int) -> None:
    """Sliders for layer, head and query patch over ``attention_maps (layers, heads, N, N)``."""
    from ipywidgets import IntSlider, interact

    check_tensor(attention_maps, "attention_maps", ndim=4)
    layers, heads = attention_maps.shape[:2]
    cols = image.shape[2] // patch_size
    rows = image.shape[1] // patch_size

    def show(layer: int = 0, head: int = 0, row: int = rows // 2, col: int = cols // 2) -> None:
        fig, ax = plt.subplots(figsize=(4.5, 4.5))
        query = row * cols + col
        draw_attention_overlay(ax, image, attention_maps[layer, head, query], query, patch_size)
        ax.set_title(f"layer {layer}, head {head}, query ({row}, {col})")
        plt.show()

    interact(show, layer=IntSlider(0, 0, layers - 1), head=IntSlider(0, 0, heads - 1),
             row=IntSlider(rows // 2, 0, rows - 1), col=IntSlider(cols // 2, 0, cols - 1))
