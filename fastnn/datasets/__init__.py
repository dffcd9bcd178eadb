"""Data sets: the MNIST/Fashion-MNIST IDX reader and the embedded digits set.

Only loaders live here; splitting and scaling are in ``fastnn.preprocessing``.
Downloaded data is never shipped: ``load_mnist`` reads files the user fetched.
"""
from .digits import load_digits
from .mnist import default_data_dir, load_mnist, read_idx

__all__ = ["default_data_dir", "load_digits", "load_mnist", "read_idx"]
