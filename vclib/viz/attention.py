"""Attention maps drawn over the image patches they attend to, and a widget to browse them."""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from matplotlib.axes import Axes
from matplotlib.image import AxesImage

from vclib.checks import check_tensor


def draw_attention_overlay(
    ax: Axes,
    image: torch.Tensor,
    attention_row: torch.Tensor,
    query: int | None,
    patch_size: int,
    vmax: float | None = None,
) -> AxesImage:
    """Draw ``image``, one query's attention over its patch grid, and a box around the query patch.

    Args:
        ax: matplotlib axes to draw on.
        image: ``(C, H, W)`` float in [0, 1], C = 1 (grey) or 3 (RGB).
        attention_row: ``(N,)`` weights over the N = (H/P)(W/P) patches, row-major.
        query: index of the query patch, or None (e.g. the class token) for no box.
        patch_size: P.
        vmax: top of the colour scale (bottom: 0); pass the same value to every panel that is compared,
            and draw one colorbar from the returned image. None: this row's maximum.

    Returns:
        The heat-map image, for ``fig.colorbar``.
    """
    check_tensor(image, "image", ndim=3)
    check_tensor(attention_row, "attention_row", ndim=1)
    rows, cols = image.shape[1] // patch_size, image.shape[2] // patch_size
    if attention_row.numel() != rows * cols:
        raise ValueError(f"attention_row must have {rows * cols} weights for this image, got {attention_row.numel()}")
    heat = attention_row.detach().float().cpu().reshape(1, 1, rows, cols)  # (1, 1, R, C)
    heat = F.interpolate(heat, size=image.shape[1:], mode="nearest")[0, 0]  # (H, W)
    picture = image.detach().cpu().permute(1, 2, 0)  # (H, W, C)
    ax.imshow(picture.squeeze(-1) if picture.shape[-1] == 1 else picture, cmap="gray")
    shown = ax.imshow(heat, cmap="inferno", alpha=0.65, vmin=0.0, vmax=vmax if vmax is not None else heat.max())
    if query is not None:
        row, col = divmod(query, cols)
        ax.add_patch(plt.Rectangle((col * patch_size - 0.5, row * patch_size - 0.5), patch_size, patch_size,
                                   fill=False, edgecolor="cyan", linewidth=2))
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    return shown


def attention_explorer(image: torch.Tensor, attention_maps: torch.Tensor, patch_size: int) -> None:
    """Sliders for layer, head and query patch over ``attention_maps (layers, heads, N, N)``.

    All states share one colour scale (0 to the largest weight in ``attention_maps``) and one colorbar,
    so that a flat map looks flat.
    """
    from ipywidgets import IntSlider, interact

    check_tensor(attention_maps, "attention_maps", ndim=4)
    layers, heads = attention_maps.shape[:2]
    cols = image.shape[2] // patch_size
    rows = image.shape[1] // patch_size
    vmax = attention_maps.max().item()

    def show(layer: int = 0, head: int = 0, row: int = rows // 2, col: int = cols // 2) -> None:
        fig, ax = plt.subplots(figsize=(5.5, 4.5), dpi=100)
        query = row * cols + col
        shown = draw_attention_overlay(ax, image, attention_maps[layer, head, query], query, patch_size, vmax)
        fig.colorbar(shown, ax=ax, label="attention weight")
        ax.set(title=f"layer {layer}, head {head}, query patch ({row}, {col})", xlabel="key patches",
               ylabel="image rows")
        plt.show()

    interact(show, layer=IntSlider(0, 0, layers - 1), head=IntSlider(0, 0, heads - 1),
             row=IntSlider(rows // 2, 0, rows - 1), col=IntSlider(cols // 2, 0, cols - 1))
