"""A real colour photograph available offline: the portrait of Grace Hopper shipped with matplotlib."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vclib.checks import check_positive_int


def load_sample_photo(size: int = 224) -> torch.Tensor:
    """The centre square of matplotlib's ``grace_hopper.jpg``, resized: ``(1, 3, size, size)`` float in [0, 1]."""
    import matplotlib.cbook
    import matplotlib.pyplot as plt

    check_positive_int(size, "size")
    pixels = plt.imread(matplotlib.cbook.get_sample_data("grace_hopper.jpg"))  # (512, 600, 3) uint8
    photo = torch.from_numpy(pixels.copy()).permute(2, 0, 1).float() / 255  # (3, 512, 600)
    square = photo[None, :, :480, 60:540]  # (1, 3, 480, 480)
    return F.interpolate(square, size=(size, size), mode="bilinear", antialias=True).clamp(0, 1)  # (1, 3, S, S)
