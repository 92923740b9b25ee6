"""Figures and ipywidgets for looking inside generative models: latent traversals and interpolations.

Each widget has a ``draw_*`` twin that makes the same figure for fixed settings, so a stored notebook
shows a static picture where the interactive widget cannot run (on GitHub, for instance).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure

from vclib.checks import check_tensor

Decoder = Callable[[torch.Tensor], torch.Tensor]


@torch.no_grad()
def _decode(decode: Decoder, z: torch.Tensor, device: torch.device | None) -> torch.Tensor:
    """``z (n, latent_dim)`` -> images ``(n, H, W)`` on the CPU (first channel)."""
    return decode(z.to(device) if device is not None else z).cpu()[:, 0]


def draw_latent_traversal(decode: Decoder, base: torch.Tensor, values: Sequence[float] = (-2, -1, 0, 1, 2),
                          dims: Sequence[int] | None = None, device: torch.device | None = None) -> Figure:
    """One row per latent dimension: ``base`` with that coordinate set to each of ``values``.

    Args:
        decode: ``z (n, latent_dim) -> images (n, C, H, W)``, e.g. ``vae.decode``.
        base: ``(latent_dim,)`` the code the traversal starts from (zeros: the prior's mean).
        values: the coordinate values, one column each.
        dims: which dimensions to traverse (default: all).
        device: where ``decode`` runs.
    """
    check_tensor(base, "base", ndim=1, floating=True)
    dims = list(range(base.shape[0])) if dims is None else list(dims)
    codes = base.repeat(len(dims), len(values), 1)  # (rows, cols, latent_dim)
    for row, dim in enumerate(dims):
        codes[row, :, dim] = torch.tensor(values, dtype=base.dtype)
    images = _decode(decode, codes.flatten(0, 1), device)  # (rows * cols, H, W)
    size = (0.9 * len(values), 0.9 * len(dims))
    fig, axes = plt.subplots(len(dims), len(values), figsize=size, squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.imshow(images[index].numpy(), cmap="gray", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
    for row, dim in enumerate(dims):
        axes[row, 0].set_ylabel(f"z[{dim}]", fontsize=8)
    for col, value in enumerate(values):
        axes[-1, col].set_xlabel(f"{value:g}", fontsize=8)
    fig.tight_layout(pad=0.2)
    return fig


def latent_traversal_widget(decode: Decoder, latent_dim: int, limit: float = 3.0,
                            device: torch.device | None = None) -> None:
    """One slider per latent dimension; the decoded image updates as they move.

    Args:
        decode: ``z (1, latent_dim) -> image (1, C, H, W)``, e.g. ``vae.decode``.
        latent_dim: number of sliders.
        limit: each slider spans ``[-limit, limit]`` (prior standard deviations).
        device: where ``decode`` runs.
    """
    import ipywidgets as widgets
    from IPython.display import display

    sliders = [widgets.FloatSlider(0.0, min=-limit, max=limit, step=0.1, description=f"z[{i}]",
                                   continuous_update=False) for i in range(latent_dim)]
    output = widgets.Output()

    def redraw(_: object = None) -> None:
        z = torch.tensor([[slider.value for slider in sliders]])  # (1, latent_dim)
        output.clear_output(wait=True)
        with output:
            fig, ax = plt.subplots(figsize=(2.5, 2.5))
            ax.imshow(_decode(decode, z, device)[0].numpy(), cmap="gray", vmin=0, vmax=1)
            ax.axis("off")
            plt.show()

    for slider in sliders:
        slider.observe(redraw, names="value")
    redraw()
    display(widgets.HBox([widgets.VBox(sliders), output]))


def interpolate(z_start: torch.Tensor, z_end: torch.Tensor, steps: int) -> torch.Tensor:
    """Codes on the line from ``z_start`` to ``z_end`` (both ``(latent_dim,)``): ``(steps, latent_dim)``."""
    check_tensor(z_start, "z_start", ndim=1, floating=True)
    check_tensor(z_end, "z_end", ndim=1, floating=True)
    if z_start.shape != z_end.shape:
        raise ValueError(f"z_end must have shape {tuple(z_start.shape)} like z_start, "
                         f"got {tuple(z_end.shape)}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
        raise ValueError(f"steps must be an int >= 2, got {steps!r}")
    t = torch.linspace(0, 1, steps, dtype=z_start.dtype).unsqueeze(1)  # (steps, 1)
    return (1 - t) * z_start + t * z_end  # (steps, latent_dim)


def draw_interpolation(decode: Decoder, z_start: torch.Tensor, z_end: torch.Tensor, steps: int = 10,
                       device: torch.device | None = None) -> Figure:
    """The images decoded along the line from ``z_start`` to ``z_end``, left to right."""
    images = _decode(decode, interpolate(z_start, z_end, steps), device)  # (steps, H, W)
    fig, axes = plt.subplots(1, steps, figsize=(0.9 * steps, 1.1), squeeze=False)
    for index, ax in enumerate(axes[0]):
        ax.imshow(images[index].numpy(), cmap="gray", vmin=0, vmax=1)
        ax.axis("off")
        ax.set_title(f"{index / (steps - 1):.2f}", fontsize=7)
    fig.tight_layout(pad=0.2)
    return fig


def interpolation_widget(decode: Decoder, codes: torch.Tensor, device: torch.device | None = None) -> None:
    """Pick two codes from ``codes (n, latent_dim)`` and slide ``t`` from one to the other.

    The image shows ``decode((1 - t) z_a + t z_b)``; the strip below shows the whole path.
    """
    import ipywidgets as widgets
    from IPython.display import display

    check_tensor(codes, "codes", ndim=2, floating=True)
    start = widgets.IntSlider(0, min=0, max=codes.shape[0] - 1, description="code a")
    end = widgets.IntSlider(min(1, codes.shape[0] - 1), min=0, max=codes.shape[0] - 1, description="code b")
    t = widgets.FloatSlider(0.5, min=0.0, max=1.0, step=0.05, description="t", continuous_update=False)
    output = widgets.Output()

    def redraw(_: object = None) -> None:
        z_a, z_b = codes[start.value], codes[end.value]
        z = ((1 - t.value) * z_a + t.value * z_b).unsqueeze(0)  # (1, latent_dim)
        output.clear_output(wait=True)
        with output:
            fig, ax = plt.subplots(figsize=(2.2, 2.2))
            ax.imshow(_decode(decode, z, device)[0].numpy(), cmap="gray", vmin=0, vmax=1)
            ax.axis("off")
            ax.set_title(f"t = {t.value:.2f}")
            plt.show()
            draw_interpolation(decode, z_a, z_b, steps=9, device=device)
            plt.show()

    for control in (start, end, t):
        control.observe(redraw, names="value")
    redraw()
    display(widgets.VBox([widgets.HBox([start, end, t]), output]))
