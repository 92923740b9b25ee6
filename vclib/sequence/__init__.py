"""Recurrent networks from scratch (P3): RNN and GRU cells and layers, a toy task, image classifiers."""

from vclib.sequence.classifier import GRUImageClassifier, image_rows
from vclib.sequence.gru import GRU, GRUCell, gru_step
from vclib.sequence.rnn import RNN, RNNCell, rnn_step

__all__ = ["GRU", "RNN", "GRUCell", "GRUImageClassifier", "RNNCell", "gru_step", "image_rows", "rnn_step"]
