"""Convolution output sizes against nn.Conv2d and nn.ConvTranspose2d."""

import random

import pytest
import torch
from torch import nn

from vclib.basics import CONV_CASES, conv_output_size, conv_transpose_output_size
from vclib.basics.conv_arithmetic import kernel_positions


def _random_configs(count: int, seed: int):
    rng = random.Random(seed)
    for _ in range(count):
        yield {
            "size": rng.randint(1, 20), "kernel_size": rng.randint(1, 7), "stride": rng.randint(1, 4),
            "padding": rng.randint(0, 4), "dilation": rng.randint(1, 3),
        }


@pytest.mark.exercise("vclib.basics.conv_arithmetic.conv_output_size")
def test_conv_output_size_matches_conv2d_on_random_configs():
    checked = rejected = 0
    for cfg in _random_configs(400, seed=0):
        conv = nn.Conv2d(1, 1, cfg["kernel_size"], stride=cfg["stride"], padding=cfg["padding"],
                         dilation=cfg["dilation"])
        x = torch.zeros(1, 1, cfg["size"], cfg["size"] + 1)
        try:
            height, width = conv(x).shape[-2:]
        except RuntimeError:
            with pytest.raises(ValueError, match="no valid output position"):
                conv_output_size(**cfg)
            rejected += 1
            continue
        assert conv_output_size(**cfg) == height
        assert conv_output_size(**{**cfg, "size": cfg["size"] + 1}) == width
        checked += 1
    assert checked > 250 and rejected > 10  # both branches exercised


def test_conv_transpose_output_size_matches_conv_transpose2d_on_random_configs():
    rng = random.Random(1)
    checked = rejected = 0
    for cfg in _random_configs(400, seed=1):
        output_padding = rng.randint(0, max(cfg["stride"], cfg["dilation"]) - 1)
        conv = nn.ConvTranspose2d(1, 1, cfg["kernel_size"], stride=cfg["stride"], padding=cfg["padding"],
                                  output_padding=output_padding, dilation=cfg["dilation"])
        try:
            size = conv(torch.zeros(1, 1, cfg["size"], cfg["size"])).shape[-1]
        except RuntimeError:
            size = 0
        if size == 0:  # torch raises or returns an empty tensor: no valid output
            with pytest.raises(ValueError):
                conv_transpose_output_size(**cfg, output_padding=output_padding)
            rejected += 1
            continue
        assert conv_transpose_output_size(**cfg, output_padding=output_padding) == size
        checked += 1
    assert checked > 250 and rejected > 5


def test_seven_cases_match_the_guide():
    expected = {"no padding, no strides": 2, "arbitrary padding, no strides": 6, "half padding, no strides": 5,
                "full padding, no strides": 7, "no padding, strides": 2, "padding, strides": 3,
                "padding, strides (odd)": 3}
    assert {name: conv_output_size(**case) for name, case in CONV_CASES.items()} == expected


def test_half_and_full_padding_identities():
    for size in range(3, 12):
        assert conv_output_size(size, 3, padding=1) == size  # half (same) padding keeps the size
        assert conv_output_size(size, 3, padding=2) == size + 2  # full padding grows by k - 1


def test_kernel_positions_cover_padded_input():
    taps = kernel_positions(5, 3, stride=2, padding=1)
    assert taps == [[0, 1, 2], [2, 3, 4], [4, 5, 6]]


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"size": 3, "kernel_size": 5}, "no valid output position"),
        ({"size": 0, "kernel_size": 1}, "size must be an int >= 1"),
        ({"size": 5, "kernel_size": 3, "stride": 0}, "stride must be an int >= 1"),
        ({"size": 5, "kernel_size": 3, "padding": -1}, "padding must be an int >= 0"),
        ({"size": 5, "kernel_size": 3, "dilation": 0}, "dilation must be an int >= 1"),
        ({"size": 5.0, "kernel_size": 3}, "size must be an int"),
    ],
)
def test_conv_output_size_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        conv_output_size(**kwargs)


def test_conv_transpose_bad_output_padding_and_empty_output():
    with pytest.raises(ValueError, match="output_padding must be smaller"):
        conv_transpose_output_size(4, 3, stride=2, output_padding=2)
    with pytest.raises(ValueError, match="output size would be"):
        conv_transpose_output_size(1, 1, padding=1)
