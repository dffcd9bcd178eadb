"""Embedding: integer indices to rows of a trainable table, with Keras's
``mask_zero`` (index 0 is padding: it masks the steps after it)."""
import numpy

from .. import constraints
from .._types import Any, Optional

from .base import Layer, SymbolicTensor
from .core import _ser


class Embedding(Layer):
    """``Embedding(input_dim, output_dim)``: maps each index in
    ``[0, input_dim)`` of a (batch, ...) input to its row of the
    (input_dim, output_dim) ``embeddings`` table. With ``mask_zero=True``
    index 0 is padding and the output carries a mask that is False there,
    for the recurrent layers, pooling and losses after it. Indices may come
    as integers or as floats holding integers. ``input_length`` is accepted
    for Keras compatibility and ignored (the input shape says it).

    Parameters
    ----------
    input_dim : int
        The number of indices (vocabulary size).
    output_dim : int
        The size of each vector.
    embeddings_initializer : str or Initializer, default "uniform"
        How ``embeddings`` starts.
    embeddings_regularizer : str or Regularizer, optional
        A penalty on ``embeddings``.
    embeddings_constraint : str or Constraint, optional
        Projections applied after each optimizer update (``fastnn.constraints``:
        ``MaxNorm``, ``NonNeg``, ``UnitNorm``, ``MinMaxNorm``, or their names).
    mask_zero : bool, default False
        Treat index 0 as padding (the output carries a mask).
    input_length : int, optional
        Accepted and ignored (Keras compatibility).
    **kwargs
        Base layer arguments (``name``, ``dtype``, ``trainable``,
        ``input_shape``, ...; see ``Layer``).

    Notes
    -----
    Input ``(batch, ...)`` of indices; output ``(batch, ..., output_dim)``.
    """
    skips_input_grad = True

    def __init__(self, input_dim: int, output_dim: int, embeddings_initializer: Any = "uniform",
                 embeddings_regularizer: Any = None, mask_zero: bool = False,
                 input_length: Optional[int] = None, embeddings_constraint: Any = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for what, value in (("input_dim", input_dim), ("output_dim", output_dim)):
            if isinstance(value, bool) or not isinstance(value, (int, numpy.integer)) or value < 1:
                raise ValueError(f"Embedding {what} must be a positive integer, got {value!r}")
        self.input_dim, self.output_dim = int(input_dim), int(output_dim)
        self.embeddings_initializer = embeddings_initializer
        self.embeddings_regularizer = embeddings_regularizer
        self.embeddings_constraint = constraints.get(embeddings_constraint)
        self.mask_zero = bool(mask_zero)

    def build(self, input_shape):
        self.add_weight("embeddings", (self.input_dim, self.output_dim),
                        self.embeddings_initializer, self.embeddings_regularizer,
                        constraint=self.embeddings_constraint)
        self.built = True

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.output_dim,)

    def compute_mask(self, inputs, mask=None):
        if not self.mask_zero:
            return None
        if isinstance(inputs, SymbolicTensor):
            return SymbolicTensor(inputs.shape, "bool")
        return inputs != 0

    def _eager_input(self, x):
        ops = self.ops
        return x if ops.is_native(x) else ops.asarray(numpy.asarray(x))

    def _indices(self, x):
        """The input as integer indices, checked to lie in [0, input_dim)."""
        ops = self.ops
        xp = ops.xp
        if x.dtype.kind == "f":
            if x.size and not ops.fetch([xp.all(x == xp.floor(x))])[0]:
                raise ValueError(f"Embedding layer {self.name!r} takes integer indices; got "
                                 f"non-integer values")
        elif x.dtype.kind not in "iu":
            raise TypeError(f"Embedding layer {self.name!r} takes integer indices, got dtype "
                            f"{x.dtype}")
        if x.size:
            lo, hi = ops.fetch([x.min(), x.max()])  # one transfer on a device
            if lo < 0 or hi >= self.input_dim:
                bad = lo if lo < 0 else hi
                raise ValueError(f"Embedding layer {self.name!r}: index {int(bad)} is out of "
                                 f"range; indices must lie in [0, {self.input_dim}) for "
                                 f"input_dim={self.input_dim}")
        return x.astype(xp.intp)

    def forward(self, x, training=False):
        ops = self.ops
        idx = self._indices(x)
        table = self.params["embeddings"]
        y = ops.xp.take(table, idx, axis=0)

        def backprop(dy, need_dx=True):
            if self.trainable:
                ops.embedding_backward(idx, dy, self.grads["embeddings"])
            return None  # indices have no gradient

        return y, backprop

    def get_config(self):
        return {**super().get_config(), "input_dim": self.input_dim,
                "output_dim": self.output_dim,
                "embeddings_initializer": _ser(self.embeddings_initializer),
                "embeddings_regularizer": _ser(self.embeddings_regularizer),
                "embeddings_constraint": _ser(self.embeddings_constraint),
                "mask_zero": self.mask_zero}
