"""fastnn: a fast, readable deep-learning library for NumPy users.

This module holds the public API only (re-exports); nothing is defined here.
"""
from . import (activations, callbacks, datasets, initializers, layers, losses, metrics,
               optimizers, preprocessing, regularizers)
from .backend import get_backend, set_backend, use_backend
from .gradcheck import gradcheck
from .layers import Input
from .model import Model, Sequential
from .random import set_seed
from .saving import load_model
from . import models, utils  # Keras's import paths: fastnn.models, fastnn.utils
from .threads import get_num_threads, set_num_threads
from . import _malloc
_malloc.configure()  # glibc keeps fastnn's large arrays mapped between calls (see _malloc)

__version__ = "0.1.0"

__all__ = ["Model", "Sequential", "Input", "load_model", "gradcheck", "set_seed",
           "get_backend", "set_backend", "use_backend", "layers", "losses", "optimizers",
           "activations", "initializers", "regularizers", "metrics", "callbacks", "datasets",
           "preprocessing", "models", "utils", "set_num_threads", "get_num_threads",
           "__version__"]

from . import constraints  # noqa: E402  (Keras's path: fastnn.constraints.MaxNorm)

__all__ += ["constraints"]
