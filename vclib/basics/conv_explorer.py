"""Drawing convolution arithmetic: a kernel sliding over a padded input, and the output it fills.

``draw_convolution`` draws one step on matplotlib axes; ``conv_explorer`` wraps it in ipywidgets
sliders (input size, kernel size, stride, padding, dilation, step) with presets for the seven cases.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from vclib.basics.conv_arithmetic import CONV_CASES, conv_output_size, kernel_positions


def _grid(ax: Axes, origin_x: float, cells: int, colour_of, label: str) -> None:
    for row in range(cells):
        for col in range(cells):
            ax.add_patch(Rectangle((origin_x + col, cells - 1 - row), 1, 1, facecolor=colour_of(row, col),
                                   edgecolor="0.35", linewidth=0.8))
    ax.text(origin_x + cells / 2, -0.8, label, ha="center", va="top", fontsize=12)


def draw_convolution(ax: Axes, size: int, kernel_size: int, stride: int = 1, padding: int = 0,
                     dilation: int = 1, step: int = 0) -> int:
    """Draw a square input of side ``size`` with ``padding``, the kernel at output cell ``step``
    (row-major), and the output grid with that cell highlighted. Returns the output side length."""
    out = conv_output_size(size, kernel_size, stride, padding, dilation)
    taps = kernel_positions(size, kernel_size, stride, padding, dilation)
    step = step % (out * out)
    out_row, out_col = divmod(step, out)
    rows, cols = set(taps[out_row]), set(taps[out_col])
    padded = size + 2 * padding

    def input_colour(row: int, col: int) -> str:
        hit = row in rows and col in cols
        is_padding = not (padding <= row < padding + size and padding <= col < padding + size)
        if hit:
            return "#1f77b4" if not is_padding else "#9ecae1"
        return "white" if is_padding else "#d9d9d9"

    def output_colour(row: int, col: int) -> str:
        return "#2ca02c" if (row, col) == (out_row, out_col) else "#c7e9c0"

    _grid(ax, 0, padded, input_colour, f"input {size}x{size}, padding {padding}")
    _grid(ax, padded + 2, out, output_colour, f"output {out}x{out}")
    ax.set_xlim(-0.5, padded + out + 2.5)
    ax.set_ylim(-2.2, max(padded, out) + 0.5)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(f"k={kernel_size}, s={stride}, p={padding}, d={dilation}: o = {out}", fontsize=13)
    return out


def draw_conv_cases(step: int = 0) -> Figure:
    """One panel per case of :data:`CONV_CASES` (a static overview for the stored notebook)."""
    fig, axes = plt.subplots(2, 4, figsize=(16, 8))
    for ax, (name, case) in zip(axes.flat, CONV_CASES.items(), strict=False):
        draw_convolution(ax, step=step, **case)
        ax.set_title(f"{name}\n{ax.get_title()}", fontsize=12)
    axes.flat[-1].axis("off")
    fig.tight_layout()
    return fig


def conv_explorer():
    """An ipywidgets explorer: pick a preset or set size, kernel, stride, padding, dilation and step.

    Moving a slider away from the chosen preset switches the dropdown to "custom". Returns the widget
    (a notebook cell that ends with ``conv_explorer()`` displays it).
    """
    import ipywidgets as widgets

    presets = widgets.Dropdown(options=["custom", *CONV_CASES], value="no padding, no strides", description="preset",
                               layout=widgets.Layout(width="320px"))
    size = widgets.IntSlider(5, 1, 9, description="input")
    kernel = widgets.IntSlider(3, 1, 5, description="kernel")
    stride = widgets.IntSlider(1, 1, 3, description="stride")
    padding = widgets.IntSlider(0, 0, 4, description="padding")
    dilation = widgets.IntSlider(1, 1, 3, description="dilation")
    step = widgets.IntSlider(0, 0, 63, description="step")
    sliders = {"size": size, "kernel_size": kernel, "stride": stride, "padding": padding}
    output = widgets.Output()
    applying = [False]  # True while a preset writes the sliders

    def apply_preset(change: dict) -> None:
        if change["new"] in CONV_CASES:
            applying[0] = True
            for key, slider in sliders.items():
                slider.value = CONV_CASES[change["new"]][key]
            dilation.value = 1
            applying[0] = False
            redraw()

    def on_slider(_: object = None) -> None:
        if applying[0]:
            return
        case = CONV_CASES.get(presets.value)
        if case is not None and (dilation.value != 1 or any(s.value != case[k] for k, s in sliders.items())):
            presets.value = "custom"
        redraw()

    def redraw(_: object = None) -> None:
        output.clear_output(wait=True)
        with output:
            fig, ax = plt.subplots(figsize=(9, 5.5))
            try:
                draw_convolution(ax, size.value, kernel.value, stride.value, padding.value, dilation.value,
                                 step.value)
            except ValueError as error:
                ax.axis("off")
                ax.set_title("no output", fontsize=13)
                ax.text(0.5, 0.5, str(error), ha="center", va="center", wrap=True, fontsize=12)
            plt.show()

    presets.observe(apply_preset, names="value")
    for control in (size, kernel, stride, padding, dilation, step):
        control.observe(on_slider, names="value")
    apply_preset({"new": presets.value})
    controls = widgets.VBox([presets, size, kernel, stride, padding, dilation, step])
    return widgets.HBox([controls, output])
