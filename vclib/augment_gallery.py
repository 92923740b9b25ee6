"""An augmentation gallery: one transform at a chosen strength, drawn on a scene, its mask and its boxes.

``augmentation_panel`` draws a static figure; ``augmentation_gallery`` wraps it in ipywidgets (a transform
dropdown, a strength slider and a seed), the way the other explorers in vclib do.
"""

from __future__ import annotations

from collections.abc import Callable

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from vclib.augment import _gaussian_noise
from vclib.checks import check_choice, check_fraction

_FILL = {tv_tensors.Image: 0.5, tv_tensors.Mask: 0}

# name -> (strength in [0, 1], image size) -> one v2 transform (the gallery adds box clipping and sanitising after it).
SINGLE_TRANSFORMS: dict[str, Callable[[float, int], v2.Transform]] = {
    "rotation": lambda s, _size: v2.RandomRotation(90 * s, fill=_FILL),
    "scale": lambda s, _size: v2.RandomAffine(0, scale=(1 - 0.5 * s, 1 + s), fill=_FILL),
    "translation": lambda s, _size: v2.RandomAffine(0, translate=(0.4 * s, 0.4 * s), fill=_FILL),
    "resized crop": lambda s, size: v2.RandomResizedCrop(size, scale=(1 - 0.9 * s, 1.0), antialias=True),
    "colour jitter": lambda s, _size: v2.ColorJitter(brightness=s, contrast=s, saturation=s, hue=0.5 * s),
    "Gaussian noise": lambda s, _size: v2.Lambda(lambda image: _gaussian_noise(image, 0.3 * s), tv_tensors.Image),
    "horizontal flip (wrong for digits)": lambda s, _size: v2.RandomHorizontalFlip(s),
}


def augmentation_panel(scenes: Dataset, transform: str = "rotation", strength: float = 0.5, index: int = 0,
                       draws: int = 4, seed: int = 0) -> Figure:
    """The scene ``index`` of ``scenes`` (a :class:`~vclib.data.scenes.DigitScenes` without transforms)
    and ``draws`` random draws of one transform: images with boxes on top, masks below.

    Args:
        scenes: yields ``(image, {"mask", "boxes", "labels"})``.
        transform: a key of :data:`SINGLE_TRANSFORMS`.
        strength: 0 (identity) to 1 (strongest).
        index: which scene.
        draws: how many random draws to show.
        seed: seeds the draws, so the same settings draw the same figure.
    """
    check_choice(transform, "transform", tuple(SINGLE_TRANSFORMS))
    check_fraction(strength, "strength")
    image, target = scenes[index]
    size = image.shape[-1]
    chosen = SINGLE_TRANSFORMS[transform](strength, size)
    pipeline = v2.Compose([chosen, v2.ClampBoundingBoxes(), v2.SanitizeBoundingBoxes(min_size=1)])
    generator_state = torch.get_rng_state()
    torch.manual_seed(seed)
    samples = [(image, target)] + [pipeline(image, target) for _ in range(draws)]
    torch.set_rng_state(generator_state)
    fig, axes = plt.subplots(2, draws + 1, figsize=(2.6 * (draws + 1), 5.4), layout="constrained", squeeze=False)
    for column, (picture, labels) in enumerate(samples):
        axes[0, column].imshow(picture.permute(1, 2, 0).clamp(0, 1))
        for (x0, y0, x1, y1), label in zip(labels["boxes"].tolist(), labels["labels"].tolist(), strict=True):
            axes[0, column].add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, color="yellow"))
            axes[0, column].text(x0, y0 - 1, str(label - 1), color="yellow", fontsize=10, va="bottom")
        mask = labels["mask"].float().masked_fill(labels["mask"] == 255, float("nan"))
        axes[1, column].imshow(mask, cmap="tab20", vmin=0, vmax=19, interpolation="nearest")
        axes[0, column].set_title("original" if column == 0 else f"draw {column}", fontsize=11)
        for ax in axes[:, column]:
            ax.set(xticks=[], yticks=[])
    fig.suptitle(f"{transform}, strength {strength:.2f}: images and boxes (top), masks (bottom)", fontsize=12)
    return fig


def augmentation_gallery(scenes: Dataset):
    """ipywidgets: pick a transform, its strength, the scene and the seed; the panel redraws."""
    import ipywidgets as widgets

    transform = widgets.Dropdown(options=list(SINGLE_TRANSFORMS), value="rotation", description="transform",
                                 layout=widgets.Layout(width="360px"))
    strength = widgets.FloatSlider(0.5, min=0.0, max=1.0, step=0.05, description="strength")
    index = widgets.IntSlider(0, 0, len(scenes) - 1, description="scene")
    seed = widgets.IntSlider(0, 0, 20, description="seed")
    output = widgets.Output()

    def redraw(_: object = None) -> None:
        output.clear_output(wait=True)
        with output:
            augmentation_panel(scenes, transform.value, strength.value, index.value, seed=seed.value)
            plt.show()

    for control in (transform, strength, index, seed):
        control.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([transform, strength]), widgets.HBox([index, seed]), output])
