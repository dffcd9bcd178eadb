"""Image augmentation layers (Keras's preprocessing layers): RandomFlip. Active
only while training; the identity at inference, like Dropout."""
from .._types import Any, Optional
from .base import Layer
from .conv_utils import normalize_data_format

_MODES = ("horizontal", "vertical", "horizontal_and_vertical")


class RandomFlip(Layer):
    """Flips each image of a (batch, height, width, channels) input left-right
    (``mode="horizontal"``), upside down (``"vertical"``) or each way
    independently (``"horizontal_and_vertical"``, the Keras default), each with
    probability 1/2, while training. The random draws come from the backend's
    generator, so ``fastnn.set_seed`` makes them repeatable. ``channels_first``
    inputs (batch, channels, height, width) with ``data_format``.

    Parameters
    ----------
    mode : {"horizontal", "vertical", "horizontal_and_vertical"}, default "horizontal_and_vertical"
        Which flips.
    seed : int, optional
        Accepted for Keras code and unused: ``fastnn.set_seed`` seeds the draws.
    data_format : {"channels_last", "channels_first"}, optional
        Where the channels are.
    **kwargs
        Base layer arguments (``name``, ``dtype``, ``trainable``,
        ``input_shape``, ...; see ``Layer``).
    """
    supports_masking = True

    def __init__(self, mode: str = "horizontal_and_vertical", seed: Optional[int] = None,
                 data_format: Optional[str] = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if mode not in _MODES:
            raise ValueError(f"RandomFlip mode must be one of {', '.join(map(repr, _MODES))}, "
                             f"got {mode!r}")
        self.mode = mode
        self.data_format = normalize_data_format(data_format, f"RandomFlip {self.name!r}")

    def build(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"RandomFlip layer {self.name!r} expects images of shape "
                             f"(batch, height, width, channels), got "
                             f"(None, {', '.join(map(str, input_shape))})")
        self.built = True

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, x, training=False):
        self._check_input(x)
        if x.ndim != 4:
            raise ValueError(f"RandomFlip layer {self.name!r} expects images of shape "
                             f"(batch, height, width, channels), got {tuple(x.shape)}")
        if not training:
            return x, lambda dy: dy
        ops, xp = self.ops, self.ops.xp
        h_axis, w_axis = (2, 3) if self.data_format == "channels_first" else (1, 2)
        axes = {"horizontal": (w_axis,), "vertical": (h_axis,),
                "horizontal_and_vertical": (w_axis, h_axis)}[self.mode]
        # One coin per image and axis; a flip is its own inverse, so the
        # gradient takes the same flips back.
        coins = [ops.random_uniform((x.shape[0],), x.dtype) < 0.5 for _ in axes]
        shape = (x.shape[0], 1, 1, 1)

        def flip(a):
            for axis, coin in zip(axes, coins):
                a = xp.where(coin.reshape(shape), xp.flip(a, axis=axis), a)
            return a

        return flip(x), flip

    def get_config(self):
        return {**super().get_config(), "mode": self.mode, "data_format": self.data_format}
