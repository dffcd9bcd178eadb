"""Layers (Keras names). One concept per module; this file only re-exports."""
from .base import Layer, Node, SymbolicTensor
from .core import ELU, Activation, Dense, Flatten, LeakyReLU, Maxout, ReLU, Reshape, Softmax
from .embedding import Embedding
from .input import Input, InputLayer
from .masking import Masking
from .merge import Add, Concatenate, add, concatenate
from .normalization import BatchNormalization
from .pooling import GlobalAveragePooling1D
from .pooling import (AveragePooling1D, AveragePooling2D, AvgPool1D, AvgPool2D,
                      GlobalAveragePooling2D, GlobalAvgPool1D, GlobalAvgPool2D,
                      GlobalMaxPool1D, GlobalMaxPool2D, GlobalMaxPooling1D, GlobalMaxPooling2D,
                      MaxPool1D, MaxPool2D, MaxPooling1D, MaxPooling2D)
from .pooling import ALIASES as _POOLING_ALIASES
from .reshaping import (Cropping1D, Cropping2D, UpSampling1D, UpSampling2D, ZeroPadding1D,
                        ZeroPadding2D)
from .depthwise import DepthwiseConv2D, SeparableConv2D, SeparableConvolution2D
from .regularization import Dropout, GaussianNoise
from .wrappers import TimeDistributed, Wrapper

_LAYER_CLASSES: dict = {cls.__name__: cls for cls in (
    InputLayer, Dense, Activation, ReLU, LeakyReLU, ELU, Softmax, Maxout, Flatten, Reshape,
    Add, Concatenate, Dropout, GaussianNoise, Embedding, Masking, GlobalAveragePooling1D,
    TimeDistributed, BatchNormalization)}

# The convolution layers (issue 16).
from .convolutional import (Conv1D, Conv2D, Conv2DTranspose, Convolution1D,  # noqa: E402
                            Convolution2D, Convolution2DTranspose)
_LAYER_CLASSES.update({cls.__name__: cls for cls in (Conv1D, Conv2D, Conv2DTranspose)})
# The CNN chapter's pooling, reshaping and depthwise layers (Keras's aliases load too).
_LAYER_CLASSES.update({cls.__name__: cls for cls in (
    MaxPooling2D, AveragePooling2D, MaxPooling1D, AveragePooling1D, GlobalAveragePooling2D,
    GlobalMaxPooling2D, GlobalMaxPooling1D, UpSampling2D, UpSampling1D, ZeroPadding2D,
    ZeroPadding1D, Cropping2D, Cropping1D, DepthwiseConv2D, SeparableConv2D)})
_LAYER_CLASSES.update(_POOLING_ALIASES)
_LAYER_CLASSES["SeparableConvolution2D"] = SeparableConv2D


def register_layer(cls):
    """Make a Layer subclass known to ``load_model`` (use as a class decorator).

    Parameters
    ----------
    cls : type
        The Layer subclass; saved models name it by ``cls.__name__``.

    Returns
    -------
    type
        ``cls``, unchanged.

    Examples
    --------
    >>> @register_layer
    ... class Scale(Layer):
    ...     ...
    """
    _LAYER_CLASSES[cls.__name__] = cls
    return cls


def layer_class(name):
    """The layer class registered as ``name`` (what ``load_model`` rebuilds from).

    Parameters
    ----------
    name : str
        A class name (``"Dense"``, or one given to ``register_layer``).

    Returns
    -------
    type

    Raises
    ------
    ValueError
        If no class has that name (the message lists the known ones).
    """
    if name not in _LAYER_CLASSES:
        raise ValueError(f"unknown layer class {name!r}; known classes: "
                         + ", ".join(sorted(_LAYER_CLASSES))
                         + " (register custom layers with fastnn.layers.register_layer)")
    return _LAYER_CLASSES[name]


__all__ = ["Layer", "Node", "SymbolicTensor", "Input", "InputLayer", "Dense", "Activation",
           "ReLU", "LeakyReLU", "ELU", "Softmax", "Maxout", "Flatten", "Reshape", "Add",
           "Concatenate", "Dropout", "GaussianNoise", "Embedding", "Masking",
           "GlobalAveragePooling1D", "TimeDistributed", "Wrapper", "register_layer",
           "layer_class", "add", "concatenate", "BatchNormalization"]
__all__ += ["Conv1D", "Conv2D", "Conv2DTranspose", "Convolution1D", "Convolution2D",
            "Convolution2DTranspose"]
__all__ += ["MaxPooling2D", "AveragePooling2D", "MaxPooling1D", "AveragePooling1D",
            "GlobalAveragePooling2D", "GlobalMaxPooling2D", "GlobalMaxPooling1D", "MaxPool2D",
            "AvgPool2D", "MaxPool1D", "AvgPool1D", "GlobalAvgPool2D", "GlobalMaxPool2D",
            "GlobalAvgPool1D", "GlobalMaxPool1D", "UpSampling2D", "UpSampling1D",
            "ZeroPadding2D", "ZeroPadding1D", "Cropping2D", "Cropping1D", "DepthwiseConv2D",
            "SeparableConv2D", "SeparableConvolution2D"]

# The residual block (issue 16): a composite of the convolution and normalization layers.
from .residual import ResidualBlock  # noqa: E402
_LAYER_CLASSES["ResidualBlock"] = ResidualBlock
__all__ += ["ResidualBlock"]

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

# Image augmentation (Keras's preprocessing layers).
from .augmentation import RandomFlip  # noqa: E402
register_layer(RandomFlip)
__all__ += ["RandomFlip"]
from .augmentation import RandomTranslation  # noqa: E402
register_layer(RandomTranslation)
__all__ += ["RandomTranslation"]
