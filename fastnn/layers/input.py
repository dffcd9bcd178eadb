"""Model inputs: ``Input(shape)`` returns the symbolic tensor a functional
model starts from; ``InputLayer`` is its layer form for Sequential."""
import numpy

from .._types import Any, DTypeLike, Optional, Union, Shape
from .base import Layer, SymbolicTensor, _unique_name


class InputLayer(Layer):
    """Declares the per-sample input shape (batch axis excluded).

    Parameters
    ----------
    shape : int or tuple of int
        The per-sample input shape.
    input_shape : tuple of int, optional
        Keras's other spelling of ``shape``.
    **kwargs
        ``name``, and ``dtype`` (a float or, for Embedding indices, an
        integer type; default ``"float32"``).

    Raises
    ------
    ValueError
        If no shape is given or a size is not a positive integer.
    """

    def __init__(self, shape: Union[int, Shape, None] = None, input_shape: Optional[Shape] = None,
                 **kwargs: Any) -> None:
        shape = shape if shape is not None else input_shape
        if shape is None:
            raise ValueError("InputLayer needs a shape, e.g. InputLayer(shape=(784,))")
        if isinstance(shape, int):
            shape = (shape,)
        shape = tuple(shape)
        if any(not isinstance(d, (int, numpy.integer)) or d < 1 for d in shape):
            raise ValueError(f"input shape must hold positive integers, got {shape}")
        kwargs.setdefault("name", _unique_name("input"))
        # An input may hold integers (indices for an Embedding); layers compute in floats.
        dtype = numpy.dtype(kwargs.pop("dtype", None) or "float32")
        if dtype.kind not in "fiu":
            raise TypeError(f"Input dtype must be a float or integer type, got {dtype}")
        super().__init__(input_shape=shape, **kwargs)
        self.dtype = dtype
        self.output = SymbolicTensor(shape, self.dtype, None, self.name)
        self.output.input_layer = self
        self.built = True

    def forward(self, x, training=False):
        """Pass ``x`` through; see ``Layer.forward``.

        Parameters
        ----------
        x : array
            A batch of inputs.
        training : bool, default False
            Unused.
        """
        return x, lambda dy: dy

    def get_config(self):
        config = super().get_config()
        config["shape"] = list(config.pop("input_shape"))
        return config


def Input(shape: Union[int, Shape], dtype: Optional[DTypeLike] = None,
          name: Optional[str] = None) -> SymbolicTensor:
    """A symbolic model input of per-sample ``shape``: ``x = Input((784,))``.

    Parameters
    ----------
    shape : int or tuple of int
        The per-sample shape (batch axis excluded).
    dtype : str or dtype, optional
        ``"float32"`` by default; an integer type for indices (Embedding).
    name : str, optional
        The input's name (default ``input``, ``input_1``, ...).

    Returns
    -------
    SymbolicTensor
        The tensor to call layers on and to pass as ``Model(inputs=...)``.

    Examples
    --------
    >>> import fastnn
    >>> x = fastnn.Input((784,))
    >>> y = fastnn.layers.Dense(10, activation="softmax")(x)
    >>> model = fastnn.Model(x, y)
    """
    return InputLayer(shape=shape, dtype=dtype, name=name).output
