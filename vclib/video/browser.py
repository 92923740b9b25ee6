"""Looking at predictions video by video: a model's top-k classes against the true labels.

``draw_predictions`` draws one video on matplotlib axes; ``draw_prediction_grid`` a static overview of
several; ``prediction_browser`` wraps them in ipywidgets (video slider, k, and a filter for the videos
whose top prediction is wrong).
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from vclib.checks import check_tensor

HIT, MISS, MISSED_LABEL = "#2ca02c", "#bdbdbd", "#d62728"


def _class_name(index: int, class_names: Sequence[str] | None) -> str:
    return class_names[index] if class_names is not None else f"class {index}"


def draw_predictions(ax: Axes, scores: torch.Tensor, labels: torch.Tensor, title: str = "", top_k: int = 10,
                     class_names: Sequence[str] | None = None) -> None:
    """Bars of the ``top_k`` most probable classes of one video (green: a true label, grey: not); the
    true labels that did not make the top k are listed in red below.

    Args:
        ax: where to draw.
        scores: ``(C,)`` logits of one video (shown as sigmoid probabilities).
        labels: ``(C,)`` multi-hot true labels.
        title: axes title, e.g. the video id.
        top_k: how many classes to show.
        class_names: C names; default ``"class i"``.
    """
    check_tensor(scores, "scores", ndim=1, floating=True)
    check_tensor(labels, "labels", ndim=1)
    probabilities = torch.sigmoid(scores.detach().cpu().float())
    top = probabilities.topk(min(top_k, len(probabilities)))
    truth = labels.detach().cpu().bool()
    names = [_class_name(int(c), class_names) for c in top.indices]
    colours = [HIT if truth[c] else MISS for c in top.indices]
    rows = range(len(names))
    ax.barh(rows, top.values.numpy(), color=colours)
    ax.set_yticks(rows, names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("predicted probability", fontsize=8)
    missed = [_class_name(int(c), class_names) for c in truth.nonzero().flatten() if c not in top.indices]
    hits = sum(truth[c].item() for c in top.indices)
    ax.set_title(f"{title}  ({hits}/{int(truth.sum())} labels in top {len(names)})", fontsize=9)
    if missed:
        ax.text(0.0, -0.22, "not in the top k: " + ", ".join(missed), transform=ax.transAxes, va="top",
                fontsize=8, color=MISSED_LABEL, wrap=True)


def draw_prediction_grid(scores: torch.Tensor, labels: torch.Tensor, ids: Sequence[str],
                         indices: Sequence[int], top_k: int = 8,
                         class_names: Sequence[str] | None = None) -> Figure:
    """:func:`draw_predictions` for several videos side by side (``scores``, ``labels``: ``(N, C)``)."""
    fig, axes = plt.subplots(1, len(indices), figsize=(3.6 * len(indices), 0.35 * top_k + 1.6), squeeze=False)
    for ax, index in zip(axes[0], indices, strict=True):
        draw_predictions(ax, scores[index], labels[index], f"video {ids[index]}", top_k, class_names)
    fig.tight_layout()
    return fig


def prediction_browser(scores: torch.Tensor, labels: torch.Tensor, ids: Sequence[str],
                       class_names: Sequence[str] | None = None) -> None:
    """An ipywidgets browser over videos: a slider picks the video, another k, and a toggle shows only
    the videos whose highest-scored class is not one of their labels (Hit@1 misses).

    Args:
        scores: ``(N, C)`` logits; labels: ``(N, C)`` multi-hot; ids: N video ids.
    """
    import ipywidgets as widgets
    from IPython.display import display

    check_tensor(scores, "scores", ndim=2, floating=True)
    if labels.shape != scores.shape or len(ids) != scores.shape[0]:
        raise ValueError(f"scores, labels and ids must describe the same videos, got {tuple(scores.shape)}, "
                         f"{tuple(labels.shape)} and {len(ids)} ids")
    misses = (labels.gather(1, scores.argmax(dim=1, keepdim=True)).flatten() == 0).nonzero().flatten().tolist()
    only_misses = widgets.Checkbox(False, description=f"only Hit@1 misses ({len(misses)})")
    video = widgets.IntSlider(0, 0, scores.shape[0] - 1, description="video")
    top_k = widgets.IntSlider(10, 3, 20, description="top k")
    output = widgets.Output()

    def chosen() -> list[int]:
        return misses if only_misses.value and misses else list(range(scores.shape[0]))

    def refilter(_: object = None) -> None:
        video.max, video.value = len(chosen()) - 1, 0
        redraw()

    def redraw(_: object = None) -> None:
        index = chosen()[min(video.value, len(chosen()) - 1)]
        output.clear_output(wait=True)
        with output:
            fig, ax = plt.subplots(figsize=(6, 0.3 * top_k.value + 1.6))
            draw_predictions(ax, scores[index], labels[index], f"video {ids[index]}", top_k.value, class_names)
            plt.show()

    only_misses.observe(refilter, names="value")
    video.observe(redraw, names="value")
    top_k.observe(redraw, names="value")
    redraw()
    display(widgets.HBox([widgets.VBox([only_misses, video, top_k]), output]))
