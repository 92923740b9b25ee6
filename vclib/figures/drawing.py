"""Shared pieces of the course figures: shapes read from a real module, boxes and arrows, a stable PNG writer.

Every architecture diagram takes its sizes from :func:`trace_shapes`, which runs the vclib module once with
forward hooks, so a diagram cannot disagree with the code it draws.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402
from torch import nn  # noqa: E402

DPI = 150
# One look for every figure, independent of a notebook's plotting defaults. 10 pt text at the saved size.
STYLE: dict[str, Any] = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "figure.titlesize": 12,
    "axes.grid": False,
    "image.interpolation": "nearest",
    "savefig.dpi": DPI,
    "svg.hashsalt": "vclib",
}
COLOURS = {
    "data": "#e8eef7",
    "layer": "#cfe2f3",
    "conv": "#d9ead3",
    "norm": "#fff2cc",
    "attention": "#f4cccc",
    "latent": "#ead1dc",
    "loss": "#fce5cd",
    "head": "#d0e0e3",
}


def _first_tensor(output: Any) -> torch.Tensor:
    """The tensor a module returned, or the first tensor of a tuple (route / prediction pairs, ...)."""
    while isinstance(output, (tuple, list)):
        output = output[0]
    return output


def trace_shapes(model: nn.Module, inputs: Sequence[Any], names: Sequence[str]) -> dict[str, list[tuple[int, ...]]]:
    """Run ``model(*inputs)`` once with forward hooks on the named submodules and record their output shapes.

    Args:
        model: any module; it is run in eval mode under ``torch.no_grad()`` and left as it was.
        inputs: the positional arguments of one forward call.
        names: dotted submodule names (``"encoder.0"``, ``"blocks.3"``); for a module that returns a tuple,
            the first tensor's shape is recorded.

    Returns:
        name -> the list of output shapes, one per call of that submodule (most are called once).
    """
    shapes: dict[str, list[tuple[int, ...]]] = {name: [] for name in names}
    handles = []
    for name in names:
        def hook(_module: nn.Module, _args: Any, output: Any, name: str = name) -> None:
            shapes[name].append(tuple(_first_tensor(output).shape))

        handles.append(model.get_submodule(name).register_forward_hook(hook))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(*inputs)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    missing = [name for name, seen in shapes.items() if not seen]
    if missing:
        raise ValueError(f"names must be submodules that run in forward, these never ran: {missing}")
    return shapes


def shape_text(shape: Sequence[int], batch: str = "B") -> str:
    """``(2, 64, 7, 7)`` -> ``"(B, 64, 7, 7)"``: the first dimension is the batch."""
    return "(" + ", ".join([batch, *map(str, shape[1:])]) + ")"


def diagram(width: float, height: float) -> tuple[Figure, Axes]:
    """A figure of ``width x height`` inches whose axes use inches as data units (so boxes keep their shape)."""
    fig = plt.figure(figsize=(width, height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.axis("off")
    return fig, ax


def box(ax: Axes, x: float, y: float, w: float, h: float, text: str, colour: str = COLOURS["layer"],
        fontsize: float = 10, **text_kwargs: Any) -> tuple[float, float, float, float]:
    """A rounded box centred at ``(x, y)`` with centred text; returns ``(x, y, w, h)`` for :func:`arrow`."""
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02,rounding_size=0.08",
                                facecolor=colour, edgecolor="0.3", linewidth=1.0))
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize, **text_kwargs)
    return x, y, w, h


def side(rect: tuple[float, float, float, float], where: str) -> tuple[float, float]:
    """The middle of one side of a box from :func:`box`: ``"left"``, ``"right"``, ``"top"`` or ``"bottom"``."""
    x, y, w, h = rect
    return {"left": (x - w / 2, y), "right": (x + w / 2, y), "top": (x, y + h / 2), "bottom": (x, y - h / 2)}[where]


def arrow(ax: Axes, start: tuple[float, float], end: tuple[float, float], text: str = "", colour: str = "0.25",
          rad: float = 0.0, linestyle: str = "-", fontsize: float = 9, text_offset: tuple[float, float] = (0, 0.12),
          ) -> None:
    """An arrow from ``start`` to ``end`` (optionally curved by ``rad``) with a label above its middle."""
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=12, color=colour, linewidth=1.2,
                                 linestyle=linestyle, connectionstyle=f"arc3,rad={rad}", shrinkA=1, shrinkB=1))
    if text:
        middle = ((start[0] + end[0]) / 2 + text_offset[0], (start[1] + end[1]) / 2 + text_offset[1])
        ax.text(*middle, text, ha="center", va="bottom", fontsize=fontsize, color=colour)


def image_at(ax: Axes, image: torch.Tensor, x: float, y: float, size: float, title: str = "",
             cmap: str = "gray", fontsize: float = 9) -> Axes:
    """Draw ``image (H, W)`` or ``(C, H, W)`` in [0, 1] as a ``size``-inch square centred at ``(x, y)``."""
    inset = ax.inset_axes((x - size / 2, y - size / 2, size, size), transform=ax.transData)
    picture = image.detach().cpu()
    if picture.dim() == 3:
        picture = picture[0] if picture.shape[0] == 1 else picture.permute(1, 2, 0)
    inset.imshow(picture.numpy(), cmap=cmap, vmin=0, vmax=1)
    inset.set_xticks([])
    inset.set_yticks([])
    if title:
        inset.set_title(title, fontsize=fontsize, pad=2)
    return inset


def save_figure(fig: Figure, path: Path) -> Path:
    """Write ``fig`` as a PNG at :data:`DPI` with no software or date metadata (same bytes every run), close it."""
    fig.savefig(path, dpi=DPI, format="png", metadata={"Software": None})
    plt.close(fig)
    return path
