"""``Sequential``, the linear stack of layers: a ``Model`` (model.py, which
re-exports it) whose graph grows one layer at a time.
"""
from .model import Model
from .layers.base import Layer, SymbolicTensor
from .layers.input import Input, InputLayer
from ._types import Any, BackendLike, List, Optional, Sequence, Shape


class Sequential(Model):
    """A linear stack of layers: ``Sequential([Dense(256, "relu"), Dense(10)])``.

    The input shape comes from a leading ``fastnn.Input``/``InputLayer``, from
    the first layer's ``input_shape=``, or from the first data it sees.

    Parameters
    ----------
    layers : list of Layer, optional
        The layers in order (a ``fastnn.Input`` may come first).
    name : str, optional
        The model's name.
    backend : str or Ops, optional
        Where it computes, as for ``Model``.

    Examples
    --------
    >>> from fastnn import Sequential
    >>> from fastnn.layers import Dense
    >>> model = Sequential([Dense(64, activation="relu", input_shape=(784,)),
    ...                     Dense(10, activation="softmax")])
    >>> model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
    ...               metrics=["accuracy"])
    """

    def __init__(self, layers: Optional[Sequence[Any]] = None, name: Optional[str] = None,
                 backend: Optional[BackendLike] = None) -> None:
        super().__init__(name=name, backend=backend)
        self._stack: List[Layer] = []
        self._input: Optional[SymbolicTensor] = None
        for layer in layers or []:
            self.add(layer)

    def add(self, layer: Any) -> None:
        """Append ``layer`` to the stack (builds the model once its input shape is known).

        Parameters
        ----------
        layer : Layer or SymbolicTensor
            A layer taking one input, or a ``fastnn.Input`` as the first element.

        Raises
        ------
        TypeError
            If ``layer`` is not a fastnn layer.
        ValueError
            If it merges several inputs (use the functional ``Model``) or the
            shapes do not fit.
        """
        if isinstance(layer, SymbolicTensor) and getattr(layer, "input_layer", None) is not None:
            if self._stack or self._input is not None:
                raise ValueError("an Input can only be the first element of a Sequential")
            self._input = layer
            return
        if isinstance(layer, InputLayer):
            return self.add(layer.output)
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential takes fastnn layers, got {type(layer).__name__}")
        if layer.multi_input:
            raise ValueError(f"{type(layer).__name__} merges several inputs; use the functional "
                             "Model API for it")
        if not self._stack and self._input is None and layer.input_shape is not None:
            self._input = Input(layer.input_shape, dtype=layer.dtype)
        self._stack.append(layer)
        self._graph_ready = False
        if self._input is not None:
            self.build()

    @property
    def layers(self) -> List[Layer]:
        """The layers in stack order."""
        return list(self._stack)

    def build(self, input_shape: Optional[Shape] = None) -> None:
        """Build the stack for a per-sample ``input_shape`` (batch axis excluded).

        Parameters
        ----------
        input_shape : tuple of int, optional
            Needed only when no input shape is known yet.
        """
        if self._input is None:
            if input_shape is None:
                raise ValueError("Sequential.build needs the per-sample input shape")
            dtype = self._stack[0].dtype if self._stack else None
            self._input = Input(tuple(input_shape), dtype=dtype)
        if not self._stack:
            raise ValueError("this Sequential model has no layers")
        t = self._input
        for layer in self._stack:
            try:
                t = layer(t)
            except ValueError as e:
                raise ValueError(f"cannot add layer {layer.name!r} to the Sequential model: {e}") from None
        self._init_graph([self._input], [t])
