"""Convolution arithmetic: how kernel size, stride, padding and dilation set a convolution's output size.

Along one axis, a kernel of size k with dilation d covers d(k - 1) + 1 input cells. Sliding it in steps
of s over an input of size i padded by p on both sides fits

    o = floor((i + 2p - d(k - 1) - 1) / s) + 1

positions. A transposed convolution runs the same relation backwards:

    o = (i - 1) s - 2p + d(k - 1) + output_padding + 1.
"""

from __future__ import annotations

from vclib.checks import check_positive_int

# The seven cases of Dumoulin and Visin's guide, as (input, kernel, stride, padding) along one axis.
CONV_CASES: dict[str, dict[str, int]] = {
    "no padding, no strides": {"size": 4, "kernel_size": 3, "stride": 1, "padding": 0},
    "arbitrary padding, no strides": {"size": 5, "kernel_size": 4, "stride": 1, "padding": 2},
    "half padding, no strides": {"size": 5, "kernel_size": 3, "stride": 1, "padding": 1},
    "full padding, no strides": {"size": 5, "kernel_size": 3, "stride": 1, "padding": 2},
    "no padding, strides": {"size": 5, "kernel_size": 3, "stride": 2, "padding": 0},
    "padding, strides": {"size": 5, "kernel_size": 3, "stride": 2, "padding": 1},
    "padding, strides (odd)": {"size": 6, "kernel_size": 3, "stride": 2, "padding": 1},
}


def _check_common(size: int, kernel_size: int, stride: int, padding: int, dilation: int) -> None:
    check_positive_int(size, "size")
    check_positive_int(kernel_size, "kernel_size")
    check_positive_int(stride, "stride")
    check_positive_int(padding, "padding", minimum=0)
    check_positive_int(dilation, "dilation")


def conv_output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Output length of ``nn.Conv2d`` (or Conv1d/3d) along one axis.

    Raises:
        ValueError: if an argument is out of range, or the dilated kernel does not fit in the padded input.
    """
    _check_common(size, kernel_size, stride, padding, dilation)
    span = dilation * (kernel_size - 1) + 1  # input cells one kernel position covers
    padded = size + 2 * padding
    if span > padded:
        raise ValueError(
            f"kernel_size={kernel_size} with dilation={dilation} spans {span} cells, more than the padded input "
            f"(size={size} + 2 * padding={padding} = {padded}): no valid output position"
        )
    ### BEGIN SOLUTION
    return (padded - span) // stride + 1
    ### END SOLUTION


def conv_transpose_output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0,
                               output_padding: int = 0, dilation: int = 1) -> int:
    """Output length of ``nn.ConvTranspose2d`` (or 1d/3d) along one axis.

    Raises:
        ValueError: if an argument is out of range, ``output_padding`` is not smaller than stride or
            dilation (as torch requires), or the output would be empty.
    """
    _check_common(size, kernel_size, stride, padding, dilation)
    check_positive_int(output_padding, "output_padding", minimum=0)
    if output_padding >= max(stride, dilation):
        raise ValueError(
            f"output_padding must be smaller than stride ({stride}) or dilation ({dilation}), got {output_padding}"
        )
    out = (size - 1) * stride - 2 * padding + dilation * (kernel_size - 1) + output_padding + 1
    if out < 1:
        raise ValueError(
            f"padding={padding} removes more than the transposed convolution produces: output size would be {out}"
        )
    return out


def kernel_positions(size: int, kernel_size: int, stride: int = 1, padding: int = 0,
                     dilation: int = 1) -> list[list[int]]:
    """For each output cell, the padded-input indices its kernel taps (one axis).

    Index 0 is the first padding cell; input cell j sits at index j + padding.
    """
    out = conv_output_size(size, kernel_size, stride, padding, dilation)
    return [[o * stride + t * dilation for t in range(kernel_size)] for o in range(out)]
