"""Recurrent networks from scratch (P3): RNN, GRU and LSTM cells and layers, a toy task, image classifiers."""

from vclib.sequence.classifier import GRUImageClassifier, image_rows
from vclib.sequence.gru import GRU, GRUCell, gru_step
from vclib.sequence.lstm import LSTM, LSTMCell, lstm_step
from vclib.sequence.rnn import RNN, RNNCell, rnn_step

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "GRUCell",
    "GRUImageClassifier",
    "LSTMCell",
    "RNNCell",
    "gru_step",
    "image_rows",
    "lstm_step",
    "rnn_step",
]
