"""Project 1, video classification: models over YouTube-8M video-level features."""

from vclib.video.fusion import FusionMLP
from vclib.video.logistic import LogisticModel
from vclib.video.moe import MoeModel

__all__ = ["FusionMLP", "LogisticModel", "MoeModel"]
