"""PointCLIP (Zhang et al., CVPR 2022): zero-shot point-cloud classification with an image-text model.

Project the cloud into depth images, encode each view with the image encoder, compare it with the text
embeddings of one prompt per class, and add up the per-view scores. No 3-D training at all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from vclib.checks import check_int_range, check_positive_int, check_shape
from vclib.pointcloud.representations import depth_maps

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class ZeroShotPointClassifier(nn.Module):
    """Scores ``(B, C classes)`` for clouds ``(B, N, 3)`` from an image encoder and a text encoder.

    Args:
        image_encoder: images ``(M, 1, H, W)`` in [0, 1] -> features ``(M, E)``.
        text_encoder: a list of strings -> features ``(len, E)``.
        class_names: the ``C`` classes; ``"_"`` becomes a space in the prompt.
        prompt: template with one ``{}`` for the class name.
        num_views: depth maps per cloud (:func:`~vclib.pointcloud.representations.depth_maps`).
        image_size: side of the depth maps.
        point_size: splat size of each point in the depth maps.
        view_weights: ``(V,)`` weight of each view's logits (PointCLIP tunes these); equal by default.
    """

    def __init__(self, image_encoder: Callable[[torch.Tensor], torch.Tensor],
                 text_encoder: Callable[[list[str]], torch.Tensor], class_names: Sequence[str],
                 prompt: str = "point cloud depth map of a {}.", num_views: int = 6, image_size: int = 32,
                 point_size: int = 1, view_weights: torch.Tensor | None = None) -> None:
        super().__init__()
        if "{}" not in prompt:
            raise ValueError(f"prompt must contain '{{}}' for the class name, got {prompt!r}")
        self.image_encoder, self.text_encoder = image_encoder, text_encoder
        self.class_names, self.prompt = list(class_names), prompt
        self.num_views = check_int_range(num_views, "num_views", 1, 6)
        self.image_size, self.point_size = check_positive_int(image_size, "image_size"), point_size
        weights = torch.ones(num_views) if view_weights is None else view_weights.float()
        check_shape(weights, "view_weights", (num_views,))
        self.register_buffer("view_weights", weights)

    def prompts(self) -> list[str]:
        """One prompt per class."""
        return [self.prompt.format(name.replace("_", " ")) for name in self.class_names]

    def text_features(self) -> torch.Tensor:
        """Unit-norm class embeddings ``(C, E)``."""
        return F.normalize(self.text_encoder(self.prompts()).float(), dim=-1)

    def view_features(self, points: torch.Tensor) -> torch.Tensor:
        """Unit-norm image embeddings of each depth map: ``(B, V, E)``."""
        maps = depth_maps(points, self.num_views, self.image_size, self.point_size)  # (B, V, H, W)
        B, V, H, W = maps.shape
        features = self.image_encoder(maps.reshape(B * V, 1, H, W))  # (B*V, E)
        return F.normalize(features.float(), dim=-1).reshape(B, V, -1)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        """points ``(B, N, 3)`` -> scores ``(B, C)``: the weighted sum over views of cosine similarities."""
        ### BEGIN SOLUTION
        per_view = self.view_features(points) @ self.text_features().T  # (B, V, C)
        return torch.einsum("bvc,v->bc", per_view, self.view_weights)
        ### END SOLUTION


def fit_linear_probe(features: torch.Tensor, targets: torch.Tensor, num_classes: int, epochs: int = 300,
                     lr: float = 0.05, weight_decay: float = 1e-3) -> nn.Linear:
    """A logistic-regression probe on frozen features ``(M, D)`` (PointCLIP's few-shot baseline)."""
    check_shape(features, "features", (None, None))
    check_shape(targets, "targets", (features.shape[0],))
    probe = nn.Linear(features.shape[1], check_positive_int(num_classes, "num_classes"))
    optimizer = torch.optim.Adam(probe.parameters(), lr=lr, weight_decay=weight_decay)
    for _ in range(check_positive_int(epochs, "epochs")):
        optimizer.zero_grad()
        F.cross_entropy(probe(features), targets).backward()
        optimizer.step()
    return probe


def open_clip_encoders(model: nn.Module, tokenizer: Callable[[list[str]], torch.Tensor], input_size: int = 224
                       ) -> tuple[Callable[[torch.Tensor], torch.Tensor], Callable[[list[str]], torch.Tensor]]:
    """Wrap an ``open_clip`` model for :class:`ZeroShotPointClassifier`.

    Depth maps ``(M, 1, H, W)`` are repeated to three channels, resized to ``input_size`` and normalised
    with CLIP's mean and standard deviation before ``model.encode_image``.
    """
    mean = torch.tensor(CLIP_MEAN).reshape(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).reshape(1, 3, 1, 1)

    def encode_image(images: torch.Tensor) -> torch.Tensor:
        device = next(model.parameters()).device
        rgb = images.expand(-1, 3, -1, -1)  # (M, 3, H, W)
        rgb = F.interpolate(rgb, size=(input_size, input_size), mode="bilinear", align_corners=False)
        return model.encode_image(((rgb - mean) / std).to(device))

    def encode_text(texts: list[str]) -> torch.Tensor:
        return model.encode_text(tokenizer(texts).to(next(model.parameters()).device))

    return encode_image, encode_text
