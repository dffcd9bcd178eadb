"""fastnn: a fast, readable deep-learning library for NumPy users.

This module holds the public API only (re-exports); nothing is defined here.
"""
from . import activations, initializers, layers, losses, optimizers, regularizers
from .backend import get_backend, set_backend, use_backend
from .layers import Input
from .model import Model, Sequential
from .random import set_seed
from .saving import load_model

__version__ = "0.1.0"

__all__ = ["Model", "Sequential", "Input", "layers", "losses", "optimizers", "activations",
           "initializers", "regularizers", "get_backend", "set_backend", "use_backend",
           "set_seed", "load_model", "__version__"]
