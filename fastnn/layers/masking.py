"""Masking: marks the time steps whose features all equal ``mask_value`` as
padding, for the layers and losses after it (as Keras's Masking)."""
from .._types import Any
from .base import Layer, SymbolicTensor


class Masking(Layer):
    """For (batch, steps, features) input, a step is masked when every one of
    its features equals ``mask_value``; the output is the input with masked
    steps set to zero, and it carries the mask.

    Parameters
    ----------
    mask_value : float, default 0.0
        The value that marks padding.
    **kwargs
        Base layer arguments (``name``, ``dtype``, ``trainable``,
        ``input_shape``, ...; see ``Layer``).

    Examples
    --------
    >>> model = Sequential([Masking(0.0, input_shape=(None, 8)), LSTM(16)])
    """
    supports_masking = True

    def __init__(self, mask_value: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mask_value = float(mask_value)

    def build(self, input_shape):
        if len(input_shape) < 2:
            raise ValueError(f"Masking layer {self.name!r} needs inputs of shape (batch, steps, "
                             f"features), got (None, {', '.join(map(str, input_shape))})")
        self.built = True

    def compute_mask(self, inputs, mask=None):
        if isinstance(inputs, SymbolicTensor):
            return SymbolicTensor(inputs.shape[:-1], "bool")
        return (inputs != inputs.dtype.type(self.mask_value)).any(axis=-1)

    def forward(self, x, training=False, mask=None):
        """Zero the masked steps; see ``Layer.forward``.

        Parameters
        ----------
        x : array
            ``(batch, steps, features)``.
        training : bool, default False
            Unused.
        mask : array, optional
            Ignored: this layer makes its mask from ``x``.
        """
        self._check_input(x)
        keep = self.compute_mask(x)[..., None].astype(x.dtype)
        return x * keep, lambda dy: dy * keep

    def get_config(self):
        return {**super().get_config(), "mask_value": self.mask_value}
