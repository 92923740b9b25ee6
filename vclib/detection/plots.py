"""Figures for the detection section: boxes on images, the grid and anchors of each stride, and a
detection browser (ipywidgets + matplotlib) over test scenes with live thresholds."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.axes import Axes
from matplotlib.patches import Rectangle

from vclib.checks import check_tensor
from vclib.detection.targets import postprocess


def show_image(ax: Axes, image: torch.Tensor, title: str) -> None:
    """``image (3, H, W)`` float in [0, 1] on ``ax`` in pixel coordinates, with a title and axis labels."""
    check_tensor(image, "image", ndim=3)
    ax.imshow(image.permute(1, 2, 0).clamp(0, 1).cpu().numpy())  # (H, W, 3)
    ax.set(title=title, xlabel="x (pixels)", ylabel="y (pixels)")


def draw_boxes(ax: Axes, boxes: torch.Tensor, labels: torch.Tensor | None = None,
               scores: torch.Tensor | None = None, class_names: Sequence[str] | None = None, color: str = "yellow",
               linestyle: str = "-", linewidth: float = 1.5) -> None:
    """Draw ``boxes (K, 4)`` xyxy with optional ``labels (K,)`` and ``scores (K,)`` as captions."""
    for k, (x1, y1, x2, y2) in enumerate(boxes.detach().cpu().tolist()):
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=color, linestyle=linestyle,
                               linewidth=linewidth))
        caption = []
        if labels is not None:
            label = int(labels[k])
            caption.append(class_names[label] if class_names is not None else str(label))
        if scores is not None:
            caption.append(f"{float(scores[k]):.2f}")
        if caption:
            ax.text(x1, y1 - 1, " ".join(caption), color="black", fontsize=7, va="bottom",
                    bbox={"facecolor": color, "alpha": 0.8, "pad": 1, "edgecolor": "none"})


def plot_assignment(image: torch.Tensor, targets: dict, index: int = 0, class_names: Sequence[str] | None = None
                    ) -> plt.Figure:
    """One panel per stride: the grid, the responsible cells (shaded) and their anchors (dashed, centred on
    the object), over image ``index`` of a :func:`vclib.detection.build_targets` result."""
    strides = targets["strides"]
    anchors = targets["anchors"].view(len(strides), -1, 2).cpu()  # (L, A, 2)
    fig, axes = plt.subplots(1, len(strides), figsize=(4 * len(strides), 4.2), dpi=100, layout="constrained")
    for ax, level, stride, level_anchors in zip(axes, targets["levels"], strides, anchors, strict=True):
        height, width = image.shape[-2:]
        show_image(ax, image, f"stride {stride}: {height // stride} x {width // stride} cells")
        for x in range(0, width + 1, stride):
            ax.axvline(x - 0.5, color="white", linewidth=0.5, alpha=0.6)
        for y in range(0, height + 1, stride):
            ax.axhline(y - 0.5, color="white", linewidth=0.5, alpha=0.6)
        for anchor, row, col in level["mask"][index].nonzero().tolist():
            ax.add_patch(Rectangle((col * stride - 0.5, row * stride - 0.5), stride, stride, color="cyan", alpha=0.35))
            box = level["boxes"][index, anchor, row, col].cpu()
            centre, (w, h) = (box[:2] + box[2:]) / 2, level_anchors[anchor].tolist()
            draw_boxes(ax, box[None], level["labels"][index, anchor, row, col][None], class_names=class_names)
            ax.add_patch(Rectangle((float(centre[0]) - w / 2, float(centre[1]) - h / 2), w, h, fill=False,
                                   edgecolor="magenta", linestyle="--", linewidth=1.5))
            ax.text(col * stride, (row + 1) * stride - 1, f"a{anchor}", color="black", fontsize=7,
                    bbox={"facecolor": "cyan", "alpha": 0.8, "pad": 0.5, "edgecolor": "none"})
        ax.set_xlim(-0.5, width - 0.5)
        ax.set_ylim(height - 0.5, -0.5)
    return fig


def detection_browser(images: torch.Tensor, decoded: torch.Tensor, targets: Sequence[dict],
                      class_names: Sequence[str] | None = None) -> None:
    """Step through scenes and move the confidence and NMS IoU thresholds.

    Args:
        images: (N, 3, H, W) float in [0, 1].
        decoded: (N, M, 5 + C) from :func:`vclib.detection.decode` for the same images (kept, so moving a
            threshold only reruns :func:`vclib.detection.postprocess`).
        targets: N dicts with ``boxes`` and ``labels`` (drawn dashed, white).
        class_names: a name per class index.
    """
    from ipywidgets import FloatSlider, IntSlider, interact

    check_tensor(images, "images", ndim=4)
    check_tensor(decoded, "decoded", ndim=3)

    def show(scene: int = 0, conf_threshold: float = 0.25, iou_threshold: float = 0.45) -> None:
        [found] = postprocess(decoded[scene : scene + 1], conf_threshold, iou_threshold)
        fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
        show_image(ax, images[scene], f"scene {scene}: {len(found['boxes'])} detections "
                                      f"(conf > {conf_threshold:.2f}, NMS IoU {iou_threshold:.2f})")
        draw_boxes(ax, targets[scene]["boxes"], color="white", linestyle="--", linewidth=1)
        draw_boxes(ax, found["boxes"], found["labels"], found["scores"], class_names)
        plt.show()

    interact(show, scene=IntSlider(0, 0, len(images) - 1),
             conf_threshold=FloatSlider(value=0.25, min=0.01, max=0.95, step=0.01),
             iou_threshold=FloatSlider(value=0.45, min=0.05, max=0.95, step=0.05))
