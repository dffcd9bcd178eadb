"""Merge layers: Add (residual connections) and Concatenate. Both merge the
masks of their inputs (a step is kept where every masked input keeps it)."""
from .._types import Any, Sequence
from .base import Layer, SymbolicTensor


def _merge_masks(masks):
    """The AND of the inputs' masks (None where an input has none); while a
    graph is built, the first symbolic mask stands for the result."""
    if masks is None:
        return None
    present = [m for m in masks if m is not None]
    if not present:
        return None
    if isinstance(present[0], SymbolicTensor):
        return present[0]
    merged = present[0]
    for m in present[1:]:
        merged = merged & m
    return merged


class Add(Layer):
    """Element-wise sum of inputs of one shape.

    Parameters
    ----------
    **kwargs
        Base layer arguments (``name``, ``dtype``, ``trainable``,
        ``input_shape``, ...; see ``Layer``).

    Examples
    --------
    >>> from fastnn.layers import Add, Dense
    >>> y = Add()([Dense(8)(x), x])  # a residual connection on an 8-feature x
    """
    multi_input = True
    supports_masking = True

    def compute_mask(self, inputs, mask=None):
        return _merge_masks(mask)

    def build(self, input_shape):
        if len(input_shape) < 2 or any(tuple(s) != tuple(input_shape[0]) for s in input_shape):
            raise ValueError(f"Add layer {self.name!r} needs two or more inputs of one shape, "
                             f"got shapes {[tuple(s) for s in input_shape]}")
        self.built = True

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def forward(self, xs, training=False):
        """Sum the inputs; see ``Layer.forward``.

        Parameters
        ----------
        xs : list of array
            The input batches.
        training : bool, default False
            Unused.
        """
        if any(x.shape != xs[0].shape for x in xs):
            raise ValueError(f"Add layer {self.name!r}: inputs have shapes "
                             f"{[tuple(x.shape) for x in xs]}; they must match")
        y = xs[0] + xs[1]
        for x in xs[2:]:
            y += x
        return y, lambda dy: [dy] * len(xs)


class Concatenate(Layer):
    """Joins inputs along ``axis`` (default: the last; axis 0 is the batch).
    Masks (of the steps, the axes before the features) merge when joining
    along the feature axis; joining masked inputs along another axis is
    refused.

    Parameters
    ----------
    axis : int, default -1
        The axis to join along (counting the batch axis; not 0).
    **kwargs
        Base layer arguments (``name``, ``dtype``, ``trainable``,
        ``input_shape``, ...; see ``Layer``).
    """
    multi_input = True
    supports_masking = True

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if axis == 0:
            raise ValueError("Concatenate cannot join along the batch axis (axis=0)")
        self.axis = int(axis)

    def _sample_axis(self, rank):
        axis = self.axis if self.axis < 0 else self.axis - 1
        if not -rank <= axis < rank:
            raise ValueError(f"Concatenate axis {self.axis} is out of range for inputs of "
                             f"rank {rank + 1}")
        return axis % rank

    def compute_output_shape(self, input_shape):
        shapes = [tuple(s) for s in input_shape]
        axis = self._sample_axis(len(shapes[0]))
        for s in shapes:
            if len(s) != len(shapes[0]) or s[:axis] + s[axis + 1:] != shapes[0][:axis] + shapes[0][axis + 1:]:
                raise ValueError(f"Concatenate layer {self.name!r}: shapes {shapes} differ "
                                 f"outside axis {self.axis}")
        out = list(shapes[0])
        out[axis] = sum(s[axis] for s in shapes)
        return tuple(out)

    def build(self, input_shape):
        self.compute_output_shape(input_shape)
        self.built = True

    def compute_mask(self, inputs, mask=None):
        if mask is not None and any(m is not None for m in mask):
            shapes = [t.shape if isinstance(t, SymbolicTensor) else t.shape[1:] for t in inputs]
            if self._sample_axis(len(shapes[0])) != len(shapes[0]) - 1:
                raise ValueError(f"Concatenate layer {self.name!r} joins masked inputs along axis "
                                 f"{self.axis}; only joining along the feature (last) axis keeps "
                                 "their masks meaningful")
        return _merge_masks(mask)

    def forward(self, xs, training=False):
        """Join the inputs along ``axis``; see ``Layer.forward``.

        Parameters
        ----------
        xs : list of array
            The input batches.
        training : bool, default False
            Unused.
        """
        xp = self.ops.xp
        self.compute_output_shape([x.shape[1:] for x in xs])
        axis = self._sample_axis(xs[0].ndim - 1) + 1
        y = xp.concatenate(xs, axis=axis)
        bounds = [0]
        for x in xs:
            bounds.append(bounds[-1] + x.shape[axis])

        def backprop(dy):
            index = [slice(None)] * dy.ndim
            out = []
            for lo, hi in zip(bounds[:-1], bounds[1:]):
                index[axis] = slice(lo, hi)
                out.append(dy[tuple(index)])
            return out

        return y, backprop

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


# Keras's functional forms: ``concatenate([a, b])`` is ``Concatenate()([a, b])``.
def add(inputs: Sequence[Any], **kwargs: Any) -> Any:
    """``Add(**kwargs)(inputs)``, as ``keras.layers.add``.

    Parameters
    ----------
    inputs : list of SymbolicTensor or array
        Two or more inputs of one shape.
    **kwargs
        Arguments of the ``Add`` layer (``name``, ...).

    Returns
    -------
    SymbolicTensor or array
        Their element-wise sum.
    """
    return Add(**kwargs)(inputs)


def concatenate(inputs: Sequence[Any], axis: int = -1, **kwargs: Any) -> Any:
    """``Concatenate(axis, **kwargs)(inputs)``, as ``keras.layers.concatenate``.

    Parameters
    ----------
    inputs : list of SymbolicTensor or array
        The inputs; their shapes may differ only along ``axis``.
    axis : int, default -1
        The axis to join along.
    **kwargs
        Arguments of the ``Concatenate`` layer (``name``, ...).

    Returns
    -------
    SymbolicTensor or array
    """
    return Concatenate(axis=axis, **kwargs)(inputs)
