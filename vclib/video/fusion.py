"""Fusing the two modalities with a small MLP: early fusion (concatenate, then one MLP) or late fusion
(one MLP per modality, then add their per-class evidence)."""

from __future__ import annotations

import torch
from torch import nn

from vclib.checks import check_choice, check_positive_int, check_tensor

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
        fusion: ``"early"`` or ``"late"``.
        hidden: hidden width (the audio MLP of late fusion uses a quarter of it, as audio has 8x fewer
            features).
        rgb_dim, audio_dim: feature sizes (1024 and 128 in YouTube-8M).
        dropout: dropout after the hidden layer.
    """

    def __init__(self, num_classes: int, fusion: str = "early", hidden: int = 256, rgb_dim: int = 1024,
                 audio_dim: int = 128, dropout: float = 0.2) -> None:
        super().__init__()
        for value, name in ((num_classes, "num_classes"), (hidden, "hidden"), (rgb_dim, "rgb_dim"),
                            (audio_dim, "audio_dim")):
            check_positive_int(value, name)
        check_choice(fusion, "fusion", FUSIONS)
        self.fusion, self.rgb_dim, self.audio_dim = fusion, rgb_dim, audio_dim
        if fusion == "early":
            self.joint = mlp(rgb_dim + audio_dim, hidden, num_classes, dropout)
        else:
            self.rgb_branch = mlp(rgb_dim, hidden, num_classes, dropout)
            self.audio_branch = mlp(audio_dim, max(1, hidden // 4), num_classes, dropout)

    def forward(self, rgb: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """``rgb (B, 1024)``, ``audio (B, 128)`` -> logits ``(B, C)``."""
        for tensor, name, width in ((rgb, "rgb", self.rgb_dim), (audio, "audio", self.audio_dim)):
            check_tensor(tensor, name, ndim=2, floating=True)
            if tensor.shape[1] != width:
                raise ValueError(f"{name} must have {width} columns, got shape {tuple(tensor.shape)}")
        if rgb.shape[0] != audio.shape[0]:
            raise ValueError(f"rgb and audio must have the same batch size, got {rgb.shape[0]} and "
                             f"{audio.shape[0]}")
        if self.fusion == "early":
            return self.joint(torch.cat([rgb, audio], dim=1))  # (B, rgb_dim + audio_dim) -> (B, C)
        return self.rgb_branch(rgb) + self.audio_branch(audio)
