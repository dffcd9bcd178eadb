"""Pooling layers. GlobalAveragePooling1D: the mean over the steps of a
(batch, steps, features) input, over the unmasked steps when a mask comes
with it."""
from .base import Layer


class GlobalAveragePooling1D(Layer):
    """(batch, steps, features) -> (batch, features), the mean over steps.
    With a mask (from ``Embedding(mask_zero=True)`` or ``Masking``), the mean
    over the unmasked steps only (a sample whose steps are all masked gives
    zeros); the mask stops here. ``keepdims=True`` keeps the steps axis."""
    supports_masking = True

    def __init__(self, data_format="channels_last", keepdims=False, **kwargs):
        super().__init__(**kwargs)
        if data_format != "channels_last":
            raise ValueError(f"GlobalAveragePooling1D supports data_format='channels_last' "
                             f"only, got {data_format!r}")
        self.data_format = data_format
        self.keepdims = bool(keepdims)

    def build(self, input_shape):
        if len(input_shape) != 2:
            raise ValueError(f"GlobalAveragePooling1D layer {self.name!r} needs inputs of shape "
                             f"(batch, steps, features), got "
                             f"(None, {', '.join(map(str, input_shape))})")
        self.built = True

    def compute_output_shape(self, input_shape):
        return (1, input_shape[-1]) if self.keepdims else (input_shape[-1],)

    def compute_mask(self, inputs, mask=None):
        return None

    def forward(self, x, training=False, mask=None):
        self._check_input(x)
        if x.ndim != 3:
            raise ValueError(f"GlobalAveragePooling1D layer {self.name!r} needs inputs of shape "
                             f"(batch, steps, features), got {tuple(x.shape)}")
        if mask is None:
            weight = x.dtype.type(1.0 / x.shape[1])
            y = x.mean(axis=1, keepdims=True)

            def backprop(dy):
                return (dy.reshape(y.shape) * weight).repeat(x.shape[1], axis=1)
        else:
            if tuple(mask.shape) != tuple(x.shape[:2]):
                raise ValueError(f"GlobalAveragePooling1D layer {self.name!r}: mask of shape "
                                 f"{tuple(mask.shape)} for input of shape {tuple(x.shape)}; "
                                 f"expected {tuple(x.shape[:2])}")
            m = mask.astype(x.dtype)[..., None]
            count = m.sum(axis=1, keepdims=True)
            count[count == 0] = 1  # all steps masked: zeros, not 0/0
            share = m / count
            y = (x * share).sum(axis=1, keepdims=True)

            def backprop(dy):
                return dy.reshape(y.shape) * share

        return (y if self.keepdims else y[:, 0]), backprop

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format,
                "keepdims": self.keepdims}
