"""Input validation shared by vclib's public functions.

Each check raises ``ValueError`` that names the argument, states what was expected and shows what was
received, so that a student's mistake is explained where it happens.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def check_tensor(
    x: object,
    name: str,
    *,
    ndim: int | Sequence[int] | None = None,
    floating: bool = False,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Check that ``x`` is a tensor with the given number of dimensions and kind of dtype.

    Args:
        x: the value to check.
        name: the argument name used in the error message.
        ndim: allowed number of dimensions (an int or several).
        floating: require a floating-point dtype.
        dtype: require exactly this dtype.

    Returns:
        ``x`` itself, so checks can be chained into assignments.
    """
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.dim() not in allowed:
            expected = " or ".join(str(n) for n in allowed)
            raise ValueError(f"{name} must have {expected} dimensions, got shape {tuple(x.shape)}")
    if floating and not x.is_floating_point():
        raise ValueError(f"{name} must have a floating-point dtype, got {x.dtype}")
    if dtype is not None and x.dtype != dtype:
        raise ValueError(f"{name} must have dtype {dtype}, got {x.dtype}")
    return x


def check_same_shape(a: torch.Tensor, b: torch.Tensor, name_a: str, name_b: str) -> None:
    """Check that two tensors have the same shape."""
    if a.shape != b.shape:
        raise ValueError(f"{name_a} and {name_b} must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")


def check_range(x: torch.Tensor, name: str, low: float, high: float) -> None:
    """Check that every element of ``x`` lies in ``[low, high]``."""
    if x.numel() == 0:
        return
    x_min, x_max = x.min().item(), x.max().item()
    if x_min < low or x_max > high:
        raise ValueError(f"{name} must lie in [{low}, {high}], got values in [{x_min:.4g}, {x_max:.4g}]")


def check_positive_int(value: object, name: str, minimum: int = 1) -> int:
    """Check that ``value`` is an int (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def check_choice(value: object, name: str, choices: Sequence[object]) -> None:
    """Check that ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")


def check_shape(x: object, name: str, shape: Sequence[int | None]) -> torch.Tensor:
    """Check that ``x`` is a tensor of exactly ``shape``; ``None`` in ``shape`` accepts any size there.

    Example: ``check_shape(images, "images", (None, 3, None, None))`` accepts any ``(B, 3, H, W)``.
    """
    x = check_tensor(x, name, ndim=len(shape))
    if any(want is not None and have != want for have, want in zip(x.shape, shape, strict=True)):
        expected = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{name} must have shape {expected}, got {tuple(x.shape)}")
    return x


def check_non_negative(value: object, name: str) -> float:
    """Check that ``value`` is a real number (not a bool) of at least 0; return it as a float."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ValueError(f"{name} must be a number >= 0, got {value!r}")
    return float(value)


def check_int_range(value: object, name: str, low: int, high: int) -> int:
    """Check that ``value`` is an int (not a bool) in ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an int in [{low}, {high}], got {value!r}")
    return value


def check_fraction(value: object, name: str, *, inclusive_high: bool = True) -> float:
    """Check that ``value`` is a number in ``[0, 1]`` (or ``[0, 1)``); return it as a float."""
    ok = not isinstance(value, bool) and isinstance(value, int | float)
    ok = ok and (0 <= value <= 1 if inclusive_high else 0 <= value < 1)
    if not ok:
        raise ValueError(f"{name} must be a number in [0, {'1]' if inclusive_high else '1)'}, got {value!r}")
    return float(value)
