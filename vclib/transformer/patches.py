"""Cutting images into the patch tokens a Vision Transformer reads, and gluing them back."""

from __future__ import annotations

import torch

from vclib.checks import check_positive_int, check_tensor


def _check_divisible(height: int, width: int, patch_size: int) -> None:
    if height % patch_size or width % patch_size:
        raise ValueError(f"patch_size={patch_size} must divide the image size, got height={height}, width={width}")


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Split images into non-overlapping P x P patches, flattened.

    Args:
        images: ``(B, C, H, W)``; H and W divisible by P.
        patch_size: P.

    Returns:
        ``(B, N, C*P*P)`` with N = (H/P)(W/P) patches in row-major order; each patch is flattened
        channel-major (all of channel 0, then channel 1, ...), exactly like
        ``F.unfold(images, P, stride=P).transpose(1, 2)``.
    """
    check_tensor(images, "images", ndim=4)
    check_positive_int(patch_size, "patch_size")
    batch, channels, height, width = images.shape
    _check_divisible(height, width, patch_size)
    rows, cols = height // patch_size, width // patch_size
    patches = images.reshape(batch, channels, rows, patch_size, cols, patch_size)  # (B, C, R, P, Q, P)
    patches = patches.permute(0, 2, 4, 1, 3, 5)  # (B, R, Q, C, P, P)
    return patches.reshape(batch, rows * cols, channels * patch_size * patch_size)  # (B, N, C*P*P)


def unpatchify(patches: torch.Tensor, patch_size: int, image_size: int | tuple[int, int]) -> torch.Tensor:
    """Inverse of :func:`patchify`: ``(B, N, C*P*P) -> (B, C, H, W)``.

    Args:
        patches: ``(B, N, C*P*P)`` as produced by :func:`patchify`.
        patch_size: P.
        image_size: H (square) or (H, W).
    """
    check_tensor(patches, "patches", ndim=3)
    check_positive_int(patch_size, "patch_size")
    height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
    _check_divisible(height, width, patch_size)
    rows, cols = height // patch_size, width // patch_size
    batch, count, features = patches.shape
    if count != rows * cols:
        raise ValueError(f"patches must hold {rows * cols} patches for a {height}x{width} image, got {count}")
    if features % (patch_size * patch_size):
        raise ValueError(f"patches' last dimension must be C*{patch_size}*{patch_size}, got {features}")
    channels = features // (patch_size * patch_size)
    grid = patches.reshape(batch, rows, cols, channels, patch_size, patch_size)  # (B, R, Q, C, P, P)
    grid = grid.permute(0, 3, 1, 4, 2, 5)  # (B, C, R, P, Q, P)
    return grid.reshape(batch, channels, height, width)  # (B, C, H, W)
