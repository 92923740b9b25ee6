"""How big and how costly a network is: parameters and multiply-accumulate operations (MACs).

A convolution producing an output ``(B, C_out, H_out, W_out)`` with kernel ``k_h x k_w`` and ``groups``
computes, for every output element, a dot product of length ``C_in / groups * k_h * k_w``: that many
multiplications, each followed by an addition into the running sum (one MAC). A linear layer does
``in_features`` MACs per output element. Papers often call one MAC a "FLOP" (He et al. write "FLOPs
(multiply-adds)"); counting the multiplication and the addition separately doubles the figure.
Bias additions, normalisation, activations and pooling are cheap next to these and are not counted here.
"""

from __future__ import annotations

import torch
from torch import nn

from vclib.checks import check_positive_int


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of scalar parameters (all, or only those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def layer_macs(layer: nn.Module, output: torch.Tensor) -> int:
    """MACs of one ``Conv2d`` or ``Linear`` call that produced ``output`` (any batch size), else 0."""
    if isinstance(layer, nn.Conv2d):
        kernel_h, kernel_w = layer.kernel_size
        return output.numel() * (layer.in_channels // layer.groups) * kernel_h * kernel_w
    if isinstance(layer, nn.Linear):
        return output.numel() * layer.in_features
    return 0


@torch.no_grad()
def count_macs(model: nn.Module, input_size: tuple[int, ...]) -> dict[str, int]:
    """MACs of one forward pass of a single input, per ``Conv2d`` / ``Linear`` layer, measured with hooks.

    Args:
        model: any module; it runs once in eval mode on zeros of shape ``(1, *input_size)``.
        input_size: the input shape without the batch dimension, e.g. ``(3, 224, 224)``.

    Returns:
        ``{layer name: MACs}`` in call order; a layer called twice is counted twice. ``sum(...values())``
        is the total.
    """
    for index, size in enumerate(input_size):
        check_positive_int(size, f"input_size[{index}]")
    macs: dict[str, int] = {}
    hooks = []
    for name, layer in model.named_modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            def record(module: nn.Module, inputs: tuple, output: torch.Tensor, name: str = name) -> None:
                macs[name] = macs.get(name, 0) + layer_macs(module, output)

            hooks.append(layer.register_forward_hook(record))
    was_training = model.training
    model.eval()
    try:
        parameter = next(model.parameters(), None)
        device = parameter.device if parameter is not None else torch.device("cpu")
        model(torch.zeros(1, *input_size, device=device))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return macs
