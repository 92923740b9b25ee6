"""Shared fixtures for the unit tests."""

import os

import matplotlib
import pytest
import torch

os.environ["VCLIB_OFFLINE"] = "1"  # unit tests never touch the network
matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def _seed_and_close_figures():
    torch.manual_seed(0)
    yield
    import matplotlib.pyplot as plt

    plt.close("all")
