"""Looking inside encoder-decoder models: the shape at every level, and what each decoder level receives."""

from __future__ import annotations

import torch
from matplotlib.axes import Axes
from torch import nn

from vclib.train import eval_mode


def _forward_with_hooks(model: nn.Module, images: torch.Tensor, hooks: list) -> None:
    """Run ``model`` on ``images`` in eval mode, then remove ``hooks`` (also when the forward fails)."""
    try:
        with eval_mode(model):
            model(images)
    finally:
        for hook in hooks:
            hook.remove()


@torch.no_grad()
def level_shapes(model: nn.Module, images: torch.Tensor) -> list[tuple[str, tuple[int, ...]]]:
    """The output shape of every encoder block, upsampling and decoder block, in the order they run.

    Args:
        model: a :class:`~vclib.segmentation.UNet` or :class:`~vclib.segmentation.SegNet` (any module with
            ``encoder`` and ``decoder`` ``ModuleList``s, and optionally ``up``).
        images: (B, in_channels, H, W) input.

    Returns:
        ``(name, shape)`` pairs such as ``("encoder.0", (B, 16, H, W))``, ending with ``("head", ...)``.
    """
    shapes: list[tuple[str, tuple[int, ...]]] = []
    hooks = []
    for group in ("encoder", "up", "decoder"):
        for index, block in enumerate(getattr(model, group, [])):
            hooks.append(block.register_forward_hook(
                lambda _m, _i, out, name=f"{group}.{index}": shapes.append((name, tuple(out.shape)))))
    hooks.append(model.head.register_forward_hook(lambda _m, _i, out: shapes.append(("head", tuple(out.shape)))))
    _forward_with_hooks(model, images, hooks)
    return shapes


@torch.no_grad()
def decoder_inputs(model: nn.Module, images: torch.Tensor) -> dict[int, torch.Tensor]:
    """The tensor each decoder level receives, keyed by level (0 is the finest).

    For U-Net that is the concatenation ``[skip, upsampled]`` (B, 2c, H_l, W_l): the first half of the
    channels is the encoder's copy. For SegNet it is the max-unpooled map (B, c, H_l, W_l), zero except
    where the encoder's maxima were.
    """
    received: dict[int, torch.Tensor] = {}
    hooks = [block.register_forward_pre_hook(lambda _m, args, level=level: received.__setitem__(level, args[0]))
             for level, block in enumerate(model.decoder)]
    _forward_with_hooks(model, images, hooks)
    return received


_GROUP_COLOURS = {"encoder": "#4c72b0", "up": "#dd8452", "decoder": "#55a868", "head": "#c44e52"}


def draw_level_shapes(ax: Axes, shapes: list[tuple[str, tuple[int, ...]]], title: str = "") -> None:
    """Draw :func:`level_shapes` as a "U": one bar per block, as tall as its feature map's height and
    labelled with channels x height x width; encoder blue, upsampling orange, decoder green, head red."""
    for x, (name, shape) in enumerate(shapes):
        _, channels, height, width = shape
        ax.bar(x, height, width=0.7, color=_GROUP_COLOURS[name.split(".")[0]])
        ax.text(x, height + 0.5, f"{channels}x{height}x{width}", ha="center", va="bottom", fontsize=9, rotation=90)
    ax.set_xticks(range(len(shapes)), [name for name, _ in shapes], rotation=45, ha="right", fontsize=9)
    ax.set_ylim(0, max(shape[2] for _, shape in shapes) * 1.45)
    ax.set(ylabel="feature map height (pixels)", title=title)
