"""A figure and an ipywidgets explorer of adversarial examples: image, perturbation, prediction.

The perturbation ``delta = x_adv - x`` lies in ``[-eps, eps]``, far too faint to see; it is shown
magnified to the full grey range, ``0.5 + delta / (2 eps)`` (mid-grey is zero).
"""

from __future__ import annotations

from collections.abc import Callable

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from torch import nn

from vclib.adversarial.attacks import fgsm, pgd
from vclib.train import eval_mode

ATTACKS: dict[str, Callable[..., torch.Tensor]] = {
    "FGSM": lambda model, x, y, eps: fgsm(model, x, y, eps),
    "PGD-10": lambda model, x, y, eps: pgd(model, x, y, eps=eps, alpha=eps / 4, steps=10,
                                          generator=torch.Generator().manual_seed(0)),
}


def draw_attack_grid(model: nn.Module, images: torch.Tensor, targets: torch.Tensor, eps: float,
                     attack: str = "PGD-10") -> Figure:
    """Three rows per call: clean images, magnified perturbations, adversarial images.

    Args:
        model: maps ``(B, 1, H, W)`` images in ``[0, 1]`` to ``(B, K)`` logits.
        images: ``(B, 1, H, W)`` float in ``[0, 1]``; a handful (about 8) reads best.
        targets: ``(B,)`` int64 true targets.
        eps: L-infinity budget.
        attack: a key of :data:`ATTACKS`.
    """
    if attack not in ATTACKS:
        raise ValueError(f"attack must be one of {tuple(ATTACKS)}, got {attack!r}")
    device = next(model.parameters()).device
    images, targets = images.to(device), targets.to(device)
    adversarial = ATTACKS[attack](model, images, targets, eps) if eps > 0 else images
    with eval_mode(model), torch.no_grad():
        clean_predictions = model(images).argmax(1).cpu()  # (B,)
        adversarial_predictions = model(adversarial).argmax(1).cpu()  # (B,)
    delta = (adversarial - images).cpu()[:, 0]  # (B, H, W)
    magnified = 0.5 + delta / (2 * eps) if eps > 0 else torch.full_like(delta, 0.5)
    rows = [(images.cpu()[:, 0], clean_predictions, "clean"), (magnified, None, "perturbation"),
            (adversarial.cpu()[:, 0], adversarial_predictions, "adversarial")]
    count = images.shape[0]
    # Enough height per row that each panel's title sits in its own strip above the image.
    fig, axes = plt.subplots(3, count, figsize=(1.25 * count + 0.6, 5.0), squeeze=False, layout="constrained")
    for row, (pictures, predictions, name) in enumerate(rows):
        for col in range(count):
            ax = axes[row, col]
            ax.imshow(pictures[col].numpy(), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            if predictions is None:
                ax.set_title(f"label {int(targets[col])}", fontsize=9)
            else:
                wrong = int(predictions[col]) != int(targets[col])
                ax.set_title(f"pred {int(predictions[col])}", fontsize=9, color="red" if wrong else "black")
        axes[row, 0].set_ylabel(name, fontsize=9)
    magnification = f"perturbation magnified x{1 / (2 * eps):.0f}" if eps > 0 else "no perturbation"
    fig.suptitle(f"{attack}, eps = {eps:.2f} ({magnification}; red: wrong prediction)", fontsize=10)
    return fig


def attack_explorer(model: nn.Module, images: torch.Tensor, targets: torch.Tensor,
                    max_eps: float = 0.3) -> None:
    """An eps slider and an attack menu over :func:`draw_attack_grid`."""
    import ipywidgets as widgets
    from IPython.display import display

    eps = widgets.FloatSlider(0.1, min=0.0, max=max_eps, step=0.01, description="eps",
                              continuous_update=False)
    attack = widgets.Dropdown(options=list(ATTACKS), value="PGD-10", description="attack")
    output = widgets.Output()

    def redraw(_: object = None) -> None:
        output.clear_output(wait=True)
        with output:
            draw_attack_grid(model, images, targets, eps.value, attack.value)
            plt.show()

    eps.observe(redraw, names="value")
    attack.observe(redraw, names="value")
    redraw()
    display(widgets.VBox([widgets.HBox([eps, attack]), output]))
