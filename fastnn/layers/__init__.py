"""Layers (Keras names). One concept per module; this file only re-exports."""
from .base import Layer, Node, SymbolicTensor
from .core import ELU, Activation, Dense, Flatten, LeakyReLU, Maxout, ReLU, Reshape, Softmax
from .embedding import Embedding
from .input import Input, InputLayer
from .masking import Masking
from .merge import Add, Concatenate, add, concatenate
from .pooling import GlobalAveragePooling1D
from .regularization import Dropout, GaussianNoise
from .wrappers import TimeDistributed, Wrapper

_LAYER_CLASSES = {cls.__name__: cls for cls in (
    InputLayer, Dense, Activation, ReLU, LeakyReLU, ELU, Softmax, Maxout, Flatten, Reshape,
    Add, Concatenate, Dropout, GaussianNoise, Embedding, Masking, GlobalAveragePooling1D,
    TimeDistributed)}


def register_layer(cls):
    """Make a Layer subclass known to ``load_model`` (use as a class decorator)."""
    _LAYER_CLASSES[cls.__name__] = cls
    return cls


def layer_class(name):
    if name not in _LAYER_CLASSES:
        raise ValueError(f"unknown layer class {name!r}; known classes: "
                         + ", ".join(sorted(_LAYER_CLASSES))
                         + " (register custom layers with fastnn.layers.register_layer)")
    return _LAYER_CLASSES[name]


__all__ = ["Layer", "Node", "SymbolicTensor", "Input", "InputLayer", "Dense", "Activation",
           "ReLU", "LeakyReLU", "ELU", "Softmax", "Maxout", "Flatten", "Reshape", "Add",
           "Concatenate", "Dropout", "GaussianNoise", "Embedding", "Masking",
           "GlobalAveragePooling1D", "TimeDistributed", "Wrapper", "register_layer",
           "layer_class", "add", "concatenate"]

# Bidirectional (the recurrent wrapper), added as its own block so parallel
# additions to the lists above merge cleanly.
from .wrappers import Bidirectional  # noqa: E402

_LAYER_CLASSES["Bidirectional"] = Bidirectional
__all__ += ["Bidirectional"]

# Recurrent layers (issue 17).
from .recurrent import GRU, LSTM, SimpleRNN  # noqa: E402

for _cls in (SimpleRNN, LSTM, GRU):
    register_layer(_cls)
__all__ += ["SimpleRNN", "LSTM", "GRU"]
