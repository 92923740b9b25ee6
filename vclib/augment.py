"""Joint image / mask / box augmentation for Project 2 (torchvision.transforms.v2).

v2 transforms dispatch on the tensor type: a ``tv_tensors.Image`` is interpolated bilinearly, a
``tv_tensors.Mask`` with nearest neighbours (so no new label values appear) and ``BoundingBoxes`` are
transformed as boxes. Flips are left out: a flipped digit is a different symbol (or none).
"""

from __future__ import annotations

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from vclib.checks import check_positive_int


def _gaussian_noise(image: torch.Tensor, sigma: float = 0.03) -> torch.Tensor:
    return (image + sigma * torch.randn_like(image)).clamp(0, 1)


def scene_transforms(train: bool, size: int, mask_fill: int = 0) -> v2.Compose:
    """The pipeline for digit scenes of ``size`` pixels: for training, random scale, crop, small rotation
    and translation (one affine map), colour jitter and Gaussian noise; boxes are clipped and emptied boxes
    removed with their labels. For evaluation, only a dtype conversion.

    Args:
        train: random augmentation (True) or the identity pipeline (False).
        size: side of the square output, equal to the input scenes' size.
        mask_fill: the label of mask pixels that the affine map brings in from outside the image: 0
            (background) for digit scenes, whose border is background; 255 (ignored) for photographs.
    """
    check_positive_int(size, "size")
    if not train:
        return v2.Compose([v2.ToDtype({tv_tensors.Image: torch.float32, "others": None})])
    return v2.Compose([
        v2.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.8, 1.25),
                        fill={tv_tensors.Image: 0.5, tv_tensors.Mask: mask_fill}),
        v2.RandomResizedCrop(size, scale=(0.6, 1.0), ratio=(0.9, 1.1), antialias=True),
        v2.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.05),
        v2.Lambda(_gaussian_noise, tv_tensors.Image),
        v2.ClampBoundingBoxes(),
        v2.SanitizeBoundingBoxes(min_size=1),
    ])
