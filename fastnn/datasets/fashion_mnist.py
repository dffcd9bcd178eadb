"""Keras's spelling of Fashion-MNIST: ``from fastnn.datasets import
fashion_mnist; fashion_mnist.load_data()``. The loader itself is
``load_fashion_mnist`` in ``mnist.py``; nothing else belongs here."""
from .mnist import load_fashion_mnist

__all__ = ["load_data"]


def load_data(path=None):
    """``load_fashion_mnist(path)``: ``(x_train, y_train), (x_test, y_test)``,
    uint8, downloaded into ``$FASTNN_DATA/fashion-mnist`` on first use
    (``path``: a folder with the four IDX files instead)."""
    return load_fashion_mnist(path)
