"""Keras's ``keras.utils`` helpers under the same names (re-exports only)."""
from .data import PyDataset, Sequence
from .preprocessing import to_categorical

__all__ = ["to_categorical", "Sequence", "PyDataset"]
