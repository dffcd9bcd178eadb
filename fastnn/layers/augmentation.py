"""Image augmentation layers (Keras's preprocessing layers): RandomFlip,
RandomTranslation. Active
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


_FILL_MODES = ("reflect", "wrap", "constant", "nearest")
_INTERPOLATIONS = ("bilinear", "nearest")


def _factor_range(factor, what, layer):
    """Keras's translation factor: ``f`` -> (-f, f), or a (lower, upper) pair;
    fractions of the image's size within [-1, 1]."""
    if isinstance(factor, (tuple, list)):
        if len(factor) != 2:
            raise ValueError(f"RandomTranslation {layer!r}: {what} must be a float or a "
                             f"(lower, upper) pair, got {factor!r}")
        lower, upper = float(factor[0]), float(factor[1])
    else:
        lower, upper = -abs(float(factor)), abs(float(factor))
    if lower > upper or not (-1.0 <= lower <= 1.0 and -1.0 <= upper <= 1.0):
        raise ValueError(f"RandomTranslation {layer!r}: {what} must lie in [-1, 1] with lower "
                         f"<= upper, got {factor!r}")
    return lower, upper


class RandomTranslation(Layer):
    """Shifts each image of a (batch, height, width, channels) input by a random
    fraction of its height and width while training (Keras's
    ``RandomTranslation``); the identity at inference. Image ``b`` moves down by
    ``dy = U(lower, upper) * height`` pixels and right by ``dx = U(...) *
    width`` (negative: up, left); output pixel ``(i, j)`` reads the input at
    ``(i - dy, j - dx)``, interpolated, and positions outside the image are
    filled by ``fill_mode``. Each shift is a (size, size) matrix of sampling
    weights per image, so the layer is two batched matrix products through
    the backend (and its gradient the transposed products): no per-pixel
    Python, any backend. The random draws come from the backend's generator,
    so ``fastnn.set_seed`` makes them repeatable.

    Parameters
    ----------
    height_factor : float or (float, float)
        Vertical shift as a fraction of the height: ``f`` draws from
        ``[-f, f]``, a pair ``(lower, upper)`` from that range; within [-1, 1].
    width_factor : float or (float, float)
        The same for the horizontal shift, as a fraction of the width.
    fill_mode : {"reflect", "wrap", "constant", "nearest"}, default "reflect"
        What lies outside the image: the image mirrored about its edge
        (``d c b a | a b c d | d c b a``), the image repeated
        (``a b c d | a b c d``), ``fill_value`` (``k k k k | a b c d``), or
        the edge pixel repeated (``a a a a | a b c d``).
    interpolation : {"bilinear", "nearest"}, default "bilinear"
        Fractional shifts mix the two neighbouring pixels linearly, or take
        the nearest one (integer shifts: the image only moves).
    seed : int, optional
        Accepted for Keras code and unused: ``fastnn.set_seed`` seeds the draws.
    fill_value : float, default 0.0
        The value outside the image for ``fill_mode="constant"``.
    data_format : {"channels_last", "channels_first"}, optional
        Where the channels are.
    **kwargs
        Base layer arguments (``name``, ``dtype``, ``trainable``,
        ``input_shape``, ...; see ``Layer``).
    """
    supports_masking = True

    def __init__(self, height_factor: Any, width_factor: Any, fill_mode: str = "reflect",
                 interpolation: str = "bilinear", seed: Optional[int] = None,
                 fill_value: float = 0.0, data_format: Optional[str] = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._height_range = _factor_range(height_factor, "height_factor", self.name)
        self._width_range = _factor_range(width_factor, "width_factor", self.name)
        if fill_mode not in _FILL_MODES:
            raise ValueError(f"RandomTranslation {self.name!r}: fill_mode must be one of "
                             f"{', '.join(map(repr, _FILL_MODES))}, got {fill_mode!r}")
        if interpolation not in _INTERPOLATIONS:
            raise ValueError(f"RandomTranslation {self.name!r}: interpolation must be one of "
                             f"{', '.join(map(repr, _INTERPOLATIONS))}, got {interpolation!r}")
        self.height_factor, self.width_factor = height_factor, width_factor
        self.fill_mode, self.interpolation = fill_mode, interpolation
        self.fill_value = float(fill_value)
        self.data_format = normalize_data_format(data_format, f"RandomTranslation {self.name!r}")

    def build(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"RandomTranslation layer {self.name!r} expects images of shape "
                             f"(batch, height, width, channels), got "
                             f"(None, {', '.join(map(str, input_shape))})")
        self.built = True

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def _source_index(self, k, size):
        """Map source rows/columns ``k`` (any integers) into the image by the
        fill mode; returns the index and whether it reads the image at all
        (False only outside the image with ``"constant"``)."""
        xp = self.ops.xp
        if self.fill_mode == "constant":
            return xp.clip(k, 0, size - 1), (k >= 0) & (k < size)
        if self.fill_mode == "nearest":
            return xp.clip(k, 0, size - 1), None
        if self.fill_mode == "wrap":
            return k % size, None
        m = k % (2 * size)      # reflect about the edge, edge pixel repeated
        return xp.where(m < size, m, 2 * size - 1 - m), None

    def _shift_matrices(self, shift, size, dtype):
        """(batch, size, size) sampling weights: row ``i`` of image ``b`` holds
        the weights of the source pixels that output ``i`` reads."""
        xp = self.ops.xp
        position = xp.arange(size, dtype=xp.float64)[None, :] - shift[:, None]
        if self.interpolation == "nearest":
            # Round half up, as Keras's nearest sampling does.
            taps = [(xp.floor(position + 0.5).astype(xp.int64), xp.ones_like(position))]
        else:
            below = xp.floor(position)
            frac = position - below
            below = below.astype(xp.int64)
            taps = [(below, 1.0 - frac), (below + 1, frac)]
        columns = xp.arange(size, dtype=xp.int64)[None, None, :]
        matrix = xp.zeros((shift.shape[0], size, size), dtype=xp.float64)
        for k, weight in taps:
            index, inside = self._source_index(k, size)
            if inside is not None:
                weight = weight * inside
            matrix = matrix + (index[:, :, None] == columns) * weight[..., None]
        return matrix.astype(dtype)

    def forward(self, x, training=False):
        self._check_input(x)
        if x.ndim != 4:
            raise ValueError(f"RandomTranslation layer {self.name!r} expects images of shape "
                             f"(batch, height, width, channels), got {tuple(x.shape)}")
        if not training:
            return x, lambda dy: dy
        ops, xp = self.ops, self.ops.xp
        first = self.data_format == "channels_first"
        n, (h, w) = x.shape[0], (x.shape[2:4] if first else x.shape[1:3])
        draws = ops.random_uniform((2, n), "float64")
        (h_lo, h_hi), (w_lo, w_hi) = self._height_range, self._width_range
        rows = self._shift_matrices((h_lo + (h_hi - h_lo) * draws[0]) * h, h, x.dtype)
        cols = self._shift_matrices((w_lo + (w_hi - w_lo) * draws[1]) * w, w, x.dtype)
        # out[b, i, j] = sum_kl rows[b, i, k] cols[b, j, l] x[b, k, l]: a
        # product along the height, then one along the width.
        if first:
            def apply(a, r, c):
                return xp.matmul(xp.matmul(r[:, None], a), xp.swapaxes(c, 1, 2)[:, None])
        else:
            def apply(a, r, c):
                shape = a.shape
                a = xp.matmul(r, a.reshape(shape[0], shape[1], -1)).reshape(shape)
                return xp.matmul(c[:, None], a)
        y = apply(x, rows, cols)
        if self.fill_mode == "constant" and self.fill_value != 0.0:
            # What the weights do not take from the image comes from fill_value.
            outside = 1.0 - rows.sum(axis=2)[:, :, None] * cols.sum(axis=2)[:, None, :]
            outside = outside[:, None] if first else outside[..., None]
            y = y + (self.fill_value * outside).astype(x.dtype)
        rows_t, cols_t = xp.swapaxes(rows, 1, 2), xp.swapaxes(cols, 1, 2)

        def backprop(dy):
            # The transpose of a linear map; the fill term is constant.
            return apply(dy, rows_t, cols_t)

        return y, backprop

    def get_config(self):
        return {**super().get_config(), "height_factor": self.height_factor,
                "width_factor": self.width_factor, "fill_mode": self.fill_mode,
                "interpolation": self.interpolation, "fill_value": self.fill_value,
                "data_format": self.data_format}
