"""Fusing the two modalities with a small MLP: early fusion (concatenate, then one MLP) or late fusion
(one MLP per modality, then add their per-class evidence)."""

from __future__ import annotations

import torch
from torch import nn

from vclib.checks import check_choice, check_positive_int, check_shape, check_tensor

FUSIONS = ("early", "late")


def mlp(input_dim: int, hidden: int, output_dim: int, dropout: float) -> nn.Sequential:
    """Linear -> ReLU -> Dropout -> Linear."""
    return nn.Sequential(nn.Linear(input_dim, hidden), nn.ReLU(), nn.Dropout(dropout),
                         nn.Linear(hidden, output_dim))


class FusionMLP(nn.Module):
    """Multi-label classifier over ``(rgb, audio)`` with early or late fusion; returns logits ``(B, C)``.

    - ``"early"``: ``MLP([rgb, audio])``: the hidden layer can combine cues across modalities.
    - ``"late"``: ``MLP_rgb(rgb) + MLP_audio(audio)``: each modality scores every class alone, and the
      log-odds add (as if the modalities were independent evidence).

    Args:
        num_classes: C.
        hidden_size: hidden width (the audio MLP of late fusion uses a quarter of it, as audio has 8x fewer
            features).
        rgb_dim: rgb feature size (1024 in YouTube-8M).
        audio_dim: audio feature size (128 in YouTube-8M).
        fusion: ``"early"`` or ``"late"``.
        dropout: dropout after the hidden layer.
    """

    def __init__(self, num_classes: int, hidden_size: int = 256, rgb_dim: int = 1024, audio_dim: int = 128,
                 fusion: str = "early", dropout: float = 0.2) -> None:
        super().__init__()
        for value, name in ((num_classes, "num_classes"), (hidden_size, "hidden_size"), (rgb_dim, "rgb_dim"),
                            (audio_dim, "audio_dim")):
            check_positive_int(value, name)
        check_choice(fusion, "fusion", FUSIONS)
        self.fusion, self.rgb_dim, self.audio_dim = fusion, rgb_dim, audio_dim
        if fusion == "early":
            self.joint = mlp(rgb_dim + audio_dim, hidden_size, num_classes, dropout)
        else:
            self.rgb_branch = mlp(rgb_dim, hidden_size, num_classes, dropout)
            self.audio_branch = mlp(audio_dim, max(1, hidden_size // 4), num_classes, dropout)

    def forward(self, rgb: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """``rgb (B, 1024)``, ``audio (B, 128)`` -> logits ``(B, C)``."""
        check_shape(check_tensor(rgb, "rgb", floating=True), "rgb", (None, self.rgb_dim))
        check_shape(check_tensor(audio, "audio", floating=True), "audio", (rgb.shape[0], self.audio_dim))
        if self.fusion == "early":
            return self.joint(torch.cat([rgb, audio], dim=1))  # (B, rgb_dim + audio_dim) -> (B, C)
        return self.rgb_branch(rgb) + self.audio_branch(audio)
