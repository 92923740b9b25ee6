"""Matplotlib figures shared by the notebooks: image grids, learning curves, confusion matrices."""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure

from vclib.checks import check_shape, check_tensor


def show_images(images: torch.Tensor, labels: Sequence[object] | None = None, ncols: int = 8,
                title: str | None = None, size: float = 1.2) -> Figure:
    """Draw a grid of images.

    Args:
        images: ``(N, C, H, W)`` or ``(N, H, W)`` float in [0, 1]; C is 1 (gray) or 3 (RGB).
        labels: one caption per image.
        ncols: images per row.
        title: figure title.
        size: inches per image.
    """
    check_tensor(images, "images", ndim=(3, 4))
    images = images.detach().cpu().float()
    if images.dim() == 4:
        if images.shape[1] not in (1, 3):
            raise ValueError(f"images must have 1 or 3 channels, got shape {tuple(images.shape)}")
        images = images.permute(0, 2, 3, 1)  # (N, H, W, C)
        if images.shape[-1] == 1:
            images = images[..., 0]  # (N, H, W)
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"labels must have one entry per image ({len(images)}), got {len(labels)}")
    count = len(images)
    ncols = max(1, min(ncols, count))
    nrows = math.ceil(count / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * size, nrows * size * (1.25 if labels else 1)),
                             squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index < count:
            ax.imshow(images[index].clamp(0, 1).numpy(), cmap="gray", vmin=0, vmax=1)
            if labels is not None:
                ax.set_title(str(labels[index]), fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_history(history: Sequence[dict[str, float]], keys: Sequence[str] | None = None,
                 title: str | None = None) -> Figure:
    """Learning curves from :func:`vclib.train.fit`'s history: losses on the left, other metrics right."""
    if not history:
        raise ValueError("history must hold at least one epoch")
    available = [k for k in history[0] if k not in ("epoch", "lr", "seconds")]
    keys = list(keys) if keys is not None else available
    missing = [k for k in keys if k not in history[0]]
    if missing:
        raise ValueError(f"keys {missing} are not in the history; it has {available}")
    epochs = [h["epoch"] for h in history]
    loss_keys = [k for k in keys if k.endswith("loss")]
    metric_keys = [k for k in keys if not k.endswith("loss")]
    panels = [group for group in (loss_keys, metric_keys) if group]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.4), squeeze=False)
    for ax, group in zip(axes[0], panels, strict=True):
        for key in group:
            ax.plot(epochs, [h[key] for h in history], marker="o", label=key)
        is_loss = group is loss_keys
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss" if is_loss else ", ".join(k.removeprefix("val_") for k in group))
        ax.set_title("loss per epoch" if is_loss else "validation metrics per epoch" if all(
            k.startswith("val_") for k in group) else "metrics per epoch")
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_confusion_matrix(matrix: torch.Tensor, class_names: Sequence[str] | None = None,
                          title: str = "Confusion matrix") -> Figure:
    """Heat map of a confusion matrix ``(C, C)`` (rows: true class, columns: predicted), with counts."""
    check_tensor(matrix, "matrix", ndim=2)
    count = matrix.shape[0]
    check_shape(matrix, "matrix", (count, count))
    names = list(class_names) if class_names is not None else [str(i) for i in range(count)]
    if len(names) != count:
        raise ValueError(f"class_names must have {count} entries, got {len(names)}")
    values = matrix.detach().cpu()
    fig, ax = plt.subplots(figsize=(0.45 * count + 2, 0.45 * count + 1.5))
    ax.imshow(values.numpy(), cmap="Blues")
    ax.grid(False)
    threshold = values.max().item() / 2
    for i in range(count):
        for j in range(count):
            ax.text(j, i, int(values[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if values[i, j] > threshold else "black")
    ax.set_xticks(range(count), names, rotation=45 if max(map(len, names)) > 2 else 0)
    ax.set_yticks(range(count), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    return fig
