"""A tiny CLIP-style model for offline zero-shot experiments: the quick-mode stand-in for real CLIP.

It is trained here, in minutes, on pairs of (shaded 2-D render of a procedural mesh, caption such as
"a photo of a chair"). It never sees a point cloud or a depth map, so classifying depth maps with it
tests transfer from renders to depth maps. It does NOT have CLIP's internet-scale language: its
vocabulary is the caption templates and the ten class names, and unknown words map to ``<unk>``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
import trimesh
from torch import nn
from torch.utils.data import Dataset

from vclib.checks import check_fraction, check_positive_int, check_shape, check_tensor

TEMPLATES = ("a photo of a {}.", "a rendering of a {}.", "a picture of the {}.", "a 3d model of a {}.",
             "a grey {}.", "an image of a {}.", "a {} seen from above.", "a small {}.", "the {}.")


def camera_frame(azimuth: torch.Tensor, elevation: torch.Tensor) -> torch.Tensor:
    """Camera frames ``(B, 3, 3)`` (rows: image right, image up, direction to the camera) from angles in
    radians ``(B,)``; azimuth 0 looks from +x, elevation pi/2 from above."""
    ca, sa, ce, se = azimuth.cos(), azimuth.sin(), elevation.cos(), elevation.sin()
    towards = torch.stack([ce * ca, ce * sa, se], dim=1)  # (B, 3)
    right = torch.stack([-sa, ca, torch.zeros_like(sa)], dim=1)  # (B, 3)
    up = torch.linalg.cross(towards, right, dim=1)
    return torch.stack([right, up, towards], dim=1)


def render_shaded(points: torch.Tensor, normals: torch.Tensor, frames: torch.Tensor, image_size: int = 32,
                  ambient: float = 0.3) -> torch.Tensor:
    """Orthographic, Lambert-shaded renders of oriented surface samples (dense samples fill the pixels).

    The nearest sample wins each pixel (a z-buffer); its brightness is ``ambient + (1 - ambient) |n.l|``
    with the light at the camera. The background is 0.

    Args:
        points: ``(B, N, 3)`` surface samples in the unit sphere.
        normals: ``(B, N, 3)`` their unit normals.
        frames: ``(B, 3, 3)`` camera frames (:func:`camera_frame`).
        image_size: ``H = W``.
        ambient: brightness of a surface seen edge-on.

    Returns:
        ``(B, H, W)`` float in [0, 1].
    """
    check_shape(points, "points", (None, None, 3))
    check_shape(normals, "normals", tuple(points.shape))
    check_shape(frames, "frames", (points.shape[0], 3, 3))
    B, N, _ = points.shape
    H = W = check_positive_int(image_size, "image_size")
    coords = torch.bmm(points, frames.transpose(1, 2))  # (B, N, 3): right, up, towards the camera
    cosine = torch.bmm(normals, frames[:, 2:].transpose(1, 2)).squeeze(2)  # (B, N)
    shade = ambient + (1 - ambient) * cosine.abs()
    col = ((coords[..., 0] + 1) / 2 * W).floor().long().clamp(0, W - 1)
    row = ((1 - coords[..., 1]) / 2 * H).floor().long().clamp(0, H - 1)
    flat = row * W + col  # (B, N)
    depth = 1 - coords[..., 2]
    zbuffer = torch.full((B, H * W), math.inf).scatter_reduce(1, flat, depth, reduce="amin")
    nearest = depth <= zbuffer.gather(1, flat)  # (B, N): the sample wins its pixel
    images = torch.zeros(B, H * W).scatter_reduce(1, flat, torch.where(nearest, shade, 0.0), reduce="amax")
    return images.reshape(B, H, W)


def oriented_samples(mesh: trimesh.Trimesh, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` surface points ``(n, 3)`` of ``mesh`` and the unit normals ``(n, 3)`` of their faces."""
    points, faces = trimesh.sample.sample_surface(mesh, n, seed=seed)
    normals = np.asarray(mesh.face_normals)[faces]
    return torch.as_tensor(points, dtype=torch.float32), torch.as_tensor(normals, dtype=torch.float32)


def render_dataset(meshes: Sequence[trimesh.Trimesh], views_per_mesh: int = 8, image_size: int = 32,
                   num_samples: int = 3000, seed: int = 0) -> torch.Tensor:
    """Shaded renders of every mesh from random viewpoints (azimuth uniform, elevation in [-90, 90] degrees).

    Returns:
        ``(len(meshes) * views_per_mesh, 1, H, W)`` float in [0, 1], the views of each mesh together.
    """
    check_positive_int(views_per_mesh, "views_per_mesh")
    generator = torch.Generator().manual_seed(seed)
    images = []
    for i, mesh in enumerate(meshes):
        points, normals = oriented_samples(mesh, num_samples, seed=seed * 100_003 + i)
        azimuth = torch.rand(views_per_mesh, generator=generator) * 2 * math.pi
        elevation = (torch.rand(views_per_mesh, generator=generator) - 0.5) * math.pi
        frames = camera_frame(azimuth, elevation)  # (V, 3, 3)
        batch = points.expand(views_per_mesh, -1, -1), normals.expand(views_per_mesh, -1, -1)
        images.append(render_shaded(*batch, frames, image_size))
    return torch.cat(images).unsqueeze(1)  # (M, 1, H, W)


class WordTokenizer:
    """Lower-cased words to ids: 0 is padding, 1 is ``<unk>``; the vocabulary comes from example texts."""

    def __init__(self, texts: Sequence[str], max_length: int = 12) -> None:
        words = sorted({word for text in texts for word in self.words(text)})
        self.vocabulary = {word: i + 2 for i, word in enumerate(words)}
        self.max_length = check_positive_int(max_length, "max_length")

    @staticmethod
    def words(text: str) -> list[str]:
        """``"A photo of a night_stand."`` -> ``["a", "photo", "of", "a", "night", "stand"]``."""
        return re.findall(r"[a-z0-9]+", text.lower().replace("_", " "))

    def __len__(self) -> int:
        return len(self.vocabulary) + 2

    def __call__(self, texts: Sequence[str]) -> torch.Tensor:
        """Token ids ``(len(texts), max_length)`` int64, padded with 0 and truncated."""
        ids = torch.zeros(len(texts), self.max_length, dtype=torch.int64)
        for i, text in enumerate(texts):
            tokens = [self.vocabulary.get(word, 1) for word in self.words(text)][: self.max_length]
            ids[i, : len(tokens)] = torch.tensor(tokens, dtype=torch.int64)
        return ids


class TextEncoder(nn.Module):
    """Mean of word embeddings (padding ignored), then an MLP: ids ``(B, L)`` -> ``(B, E)``."""

    def __init__(self, vocab_size: int, embed_dim: int = 64, hidden_size: int = 128) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, hidden_size, padding_idx=0)
        self.mlp = nn.Sequential(nn.Linear(hidden_size, hidden_size), nn.ReLU(), nn.Linear(hidden_size, embed_dim))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        mask = (ids != 0).unsqueeze(-1).float()  # (B, L, 1)
        mean = (self.embedding(ids) * mask).sum(1) / mask.sum(1).clamp(min=1)  # (B, hidden_size)
        return self.mlp(mean)


class ImageEncoder(nn.Module):
    """Three conv blocks and a global average: images ``(B, 1, H, W)`` -> ``(B, E)``."""

    def __init__(self, embed_dim: int = 64, width: int = 32) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        for a, b in ((1, width), (width, 2 * width), (2 * width, 4 * width)):
            blocks += [nn.Conv2d(a, b, 3, padding=1, bias=False), nn.BatchNorm2d(b), nn.ReLU(), nn.MaxPool2d(2)]
        self.features = nn.Sequential(*blocks)
        self.project = nn.Linear(4 * width, embed_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        check_shape(images, "images", (None, 1, None, None))
        return self.project(self.features(images).mean(dim=(2, 3)))


class TinyCLIP(nn.Module):
    """An image encoder, a text encoder and a learned temperature, trained contrastively.

    Args:
        class_names: the words the captions may use (with :data:`TEMPLATES`).
        embed_dim: size ``E`` of the shared embedding.
    """

    def __init__(self, class_names: Sequence[str], embed_dim: int = 64, width: int = 32) -> None:
        super().__init__()
        self.tokenizer = WordTokenizer([t.format(c) for t in TEMPLATES for c in class_names])
        self.image_encoder = ImageEncoder(embed_dim, width)
        self.text_encoder = TextEncoder(len(self.tokenizer), embed_dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def encode_text(self, texts: Sequence[str]) -> torch.Tensor:
        """Captions -> ``(len(texts), E)`` (not normalised)."""
        return self.text_encoder(self.tokenizer(texts).to(self.logit_scale.device))

    def forward(self, images: torch.Tensor, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """images ``(B, 1, H, W)``, token ids ``(B, L)`` -> image and text features ``(B, E)``, logit scale."""
        return self.image_encoder(images), self.text_encoder(ids), self.logit_scale.clamp(max=math.log(100)).exp()


def clip_loss(image_features: torch.Tensor, text_features: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """CLIP's symmetric InfoNCE loss: the ``i``-th image should pick the ``i``-th caption among the batch's
    captions, and the caption the image, with cosine similarities times ``logit_scale``.

    Args:
        image_features: ``(B, E)``.
        text_features: ``(B, E)``.
        logit_scale: scalar, ``1 / temperature``.
    """
    check_tensor(image_features, "image_features", ndim=2, floating=True)
    check_shape(text_features, "text_features", tuple(image_features.shape))
    ### BEGIN SOLUTION
    image_features = F.normalize(image_features, dim=1)
    text_features = F.normalize(text_features, dim=1)
    logits = logit_scale * image_features @ text_features.T  # (B images, B captions)
    log_p_text = logits.log_softmax(dim=1).diagonal()  # image -> its caption
    log_p_image = logits.log_softmax(dim=0).diagonal()  # caption -> its image
    return -(log_p_text.mean() + log_p_image.mean()) / 2
    ### END SOLUTION


class CaptionedRenders(Dataset):
    """``((image, caption ids), label)`` pairs: each render with a caption from a random template.

    Two augmentations make the image encoder read shapes rather than one renderer's exact pixels (as
    CLIP's crops and colour jitter do): a random gamma on the object's brightness, and a random fraction
    of its pixels set to the background, as in a render made from too few surface samples.

    Args:
        images: ``(M, 1, H, W)`` renders; labels: ``(M,)`` class indices.
        word_dropout: probability of replacing a caption word by ``<unk>``, so that unseen prompt words
            (which map to ``<unk>``) are familiar at test time.
        max_gamma: the gamma is ``exp(u)`` with ``u`` uniform in ``[-log max_gamma, log max_gamma]``
            (1 turns it off).
        max_pixel_dropout: each image drops a fraction of pixels drawn uniformly from ``[0, max_pixel_dropout]``.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, class_names: Sequence[str],
                 tokenizer: WordTokenizer, word_dropout: float = 0.15, max_gamma: float = 2.5,
                 max_pixel_dropout: float = 0.6, seed: int = 0) -> None:
        self.images, self.labels, self.class_names, self.tokenizer = images, labels, list(class_names), tokenizer
        self.word_dropout = check_fraction(word_dropout, "word_dropout")
        if not isinstance(max_gamma, (int, float)) or max_gamma < 1:
            raise ValueError(f"max_gamma must be a number >= 1, got {max_gamma!r}")
        self.max_gamma = float(max_gamma)
        self.max_pixel_dropout = check_fraction(max_pixel_dropout, "max_pixel_dropout")
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.labels)

    def augment(self, image: torch.Tensor) -> torch.Tensor:
        """A random gamma on the object's pixels, then random pixels set to the background: ``(1, H, W)``."""
        log_gamma = (2 * torch.rand(1, generator=self.generator) - 1) * math.log(self.max_gamma)
        image = torch.where(image > 0, image.clamp(min=1e-3) ** log_gamma.exp(), image)
        fraction = torch.rand(1, generator=self.generator) * self.max_pixel_dropout
        return image.masked_fill(torch.rand(image.shape, generator=self.generator) < fraction, 0.0)

    def __getitem__(self, index: int) -> tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor]:
        template = TEMPLATES[int(torch.randint(len(TEMPLATES), (1,), generator=self.generator))]
        ids = self.tokenizer([template.format(self.class_names[int(self.labels[index])])])[0]  # (L,)
        drop = (torch.rand(ids.shape, generator=self.generator) < self.word_dropout) & (ids > 0)
        return (self.augment(self.images[index]), ids.masked_fill(drop, 1)), self.labels[index]


def clip_objective(outputs: tuple[torch.Tensor, torch.Tensor, torch.Tensor], targets: torch.Tensor) -> torch.Tensor:
    """:func:`clip_loss` in ``vclib.train.fit``'s ``loss_fn(outputs, targets)`` form (targets unused)."""
    return clip_loss(*outputs)
