"""Spatial reshaping layers of the CNN chapter (Keras names): UpSampling1D/2D
(nearest; bilinear for 2D), ZeroPadding1D/2D and Cropping1D/2D. Slicing,
repeats and small interpolation matrices on the backend's ``xp`` (no kernel
needed); every gradient is exact. Layers compute in channels_last; a
channels_first input is transposed at the boundary (pooling.SpatialLayer)."""
import numpy

from .._types import Any, Dict, IntOrTuple, Optional, PadSpec
from . import conv_utils
from .pooling import SpatialLayer


def _pairs(value, rank, name, layer):
    """Keras's padding/cropping argument -> ((before, after),) * rank: an int
    (all sides), ``rank`` ints (symmetric per axis) or ``rank`` pairs."""
    bad = ValueError(f"{layer}: {name} must be an integer, a tuple of {rank} integers or a "
                     f"tuple of {rank} (before, after) pairs, all >= 0; got {value!r}")
    if rank == 1 and not conv_utils._is_int(value):
        try:
            pair = tuple(value)
        except TypeError:
            raise bad from None
        value = (pair,)
    if conv_utils._is_int(value):
        out = ((int(value), int(value)),) * rank
    else:
        try:
            items = tuple(value)
        except TypeError:
            raise bad from None
        if len(items) != rank:
            raise bad
        out = []
        for item in items:
            if conv_utils._is_int(item):
                out.append((int(item), int(item)))
                continue
            try:
                pair = tuple(item)
            except TypeError:
                raise bad from None
            if len(pair) != 2 or not all(conv_utils._is_int(v) for v in pair):
                raise bad
            out.append((int(pair[0]), int(pair[1])))
        out = tuple(out)
    if any(v < 0 for pair in out for v in pair):
        raise bad
    return out


class _Reshaping(SpatialLayer):
    def compute_output_shape(self, input_shape):
        sample = tuple(input_shape)
        channels = sample[0] if self._channels_first else sample[-1]
        return self._with_spatial(self._out_spatial(self._spatial(sample)), channels)

    def _nhwc_spatial_axes(self):
        return (1,) if self.rank == 1 else (1, 2)

    def _from(self, y):
        """Back from channels_last (N, spatial..., C) to the layer's format."""
        if not self._channels_first:
            return y
        return y.transpose((0, self.rank + 1) + tuple(range(1, self.rank + 1)))

    def _to(self, x):
        if not self._channels_first:
            return x
        return x.transpose((0,) + tuple(range(2, self.rank + 2)) + (1,))

    def forward(self, x, training=False):
        sample = self._check_batch(x)
        self._out_spatial(self._spatial(sample))
        xl = self._to(x)
        y = self._forward_nhwc(xl)

        def backprop(dy):
            return self._from(self._backward_nhwc(self._to(dy.reshape(out.shape)), xl.shape))

        out = self._from(y)
        return out, backprop


class UpSampling2D(_Reshaping):
    """Repeat rows ``size[0]`` and columns ``size[1]`` times (``"nearest"``),
    or resize by bilinear interpolation with half-pixel centers
    (``"bilinear"``: Keras's, TensorFlow's and PyTorch's align_corners=False).

    Parameters
    ----------
    size : int or tuple of 2 int, default (2, 2)
        The factors for rows and columns.
    data_format : {"channels_last", "channels_first"}, optional
        Where the channels are (default ``"channels_last"``).
    interpolation : {"nearest", "bilinear"}, default "nearest"
        How new pixels are made.
    **kwargs
        Base layer arguments (``name``, ``dtype``, ``trainable``,
        ``input_shape``, ...; see ``Layer``).
    """

    def __init__(self, size: IntOrTuple = (2, 2), data_format: Optional[str] = None,
                 interpolation: str = "nearest", **kwargs: Any) -> None:
        super().__init__(data_format, **kwargs)
        self.size = conv_utils.normalize_tuple(size, 2, "size", "UpSampling2D")
        if interpolation not in ("nearest", "bilinear"):
            raise ValueError(f"UpSampling2D: interpolation must be 'nearest' or 'bilinear', "
                             f"got {interpolation!r}")
        self.interpolation = interpolation
        self._matrices: Dict[Any, Any] = {}

    def _out_spatial(self, spatial):
        return tuple(None if n is None else n * s for n, s in zip(spatial, self.size))

    def _matrix(self, n, scale):
        """(n * scale, n) bilinear weights, built once per size on the host
        and moved to the backend (a documented transfer)."""
        key = (n, scale, self.ops.name)
        if key not in self._matrices:
            out = n * scale
            src = numpy.maximum((numpy.arange(out) + 0.5) / scale - 0.5, 0)
            lo = numpy.floor(src).astype(int)
            hi = numpy.minimum(lo + 1, n - 1)
            frac = src - lo
            a = numpy.zeros((out, n))
            numpy.add.at(a, (numpy.arange(out), lo), 1 - frac)
            numpy.add.at(a, (numpy.arange(out), hi), frac)
            self._matrices[key] = self.ops.asarray(a, dtype=self.dtype)
        return self._matrices[key]

    def _forward_nhwc(self, x):
        xp = self.ops.xp
        if self.interpolation == "nearest":
            return x.repeat(self.size[0], axis=1).repeat(self.size[1], axis=2)
        ah, aw = self._matrix(x.shape[1], self.size[0]), self._matrix(x.shape[2], self.size[1])
        return xp.einsum("ph,nhwc,qw->npqc", ah, x, aw)

    def _backward_nhwc(self, dy, x_shape):
        xp = self.ops.xp
        n, h, w, c = x_shape
        if self.interpolation == "nearest":
            return dy.reshape(n, h, self.size[0], w, self.size[1], c).sum(axis=(2, 4))
        ah, aw = self._matrix(h, self.size[0]), self._matrix(w, self.size[1])
        return xp.einsum("ph,npqc,qw->nhwc", ah, dy, aw)

    def get_config(self):
        return {**super().get_config(), "size": list(self.size),
                "interpolation": self.interpolation}


class UpSampling1D(_Reshaping):
    """Repeat each step ``size`` times: (batch, steps, channels) ->
    (batch, steps * size, channels).

    Parameters
    ----------
    size : int, default 2
        The factor.
    **kwargs
        Base layer arguments (``name``, ``dtype``, ``trainable``,
        ``input_shape``, ...; see ``Layer``).
    """
    rank = 1

    def __init__(self, size: IntOrTuple = 2, **kwargs: Any) -> None:
        super().__init__(None, **kwargs)
        self.size = conv_utils.normalize_tuple(size, 1, "size", "UpSampling1D")[0]

    def _out_spatial(self, spatial):
        return (None if spatial[0] is None else spatial[0] * self.size,)

    def _forward_nhwc(self, x):
        return x.repeat(self.size, axis=1)

    def _backward_nhwc(self, dy, x_shape):
        n, steps, c = x_shape
        return dy.reshape(n, steps, self.size, c).sum(axis=2)

    def get_config(self):
        config = {**super().get_config(), "size": self.size}
        config.pop("data_format")
        return config


class _ZeroPadding(_Reshaping):
    def _out_spatial(self, spatial):
        return tuple(None if n is None else n + a + b for n, (a, b) in zip(spatial, self.padding))

    def _forward_nhwc(self, x):
        width = ((0, 0),) + self.padding + ((0, 0),)
        return self.ops.xp.pad(x, width, mode="constant")

    def _backward_nhwc(self, dy, x_shape):
        index = (slice(None),) + tuple(slice(a, a + n) for (a, _), n in
                                       zip(self.padding, x_shape[1:-1]))
        return dy[index]

    def get_config(self):
        pads = [list(p) for p in self.padding]
        return {**super().get_config(), "padding": pads[0] if self.rank == 1 else pads}


class ZeroPadding2D(_ZeroPadding):
    """Zero rows above/below and columns left/right: ``padding`` is an int, (rows,
    cols) symmetric, or ((top, bottom), (left, right)).

    Parameters
    ----------
    padding : int or tuple, default (1, 1)
        As above.
    data_format : {"channels_last", "channels_first"}, optional
        Where the channels are (default ``"channels_last"``).
    **kwargs
        Base layer arguments (``name``, ``dtype``, ``trainable``,
        ``input_shape``, ...; see ``Layer``).
    """

    def __init__(self, padding: PadSpec = (1, 1), data_format: Optional[str] = None,
                 **kwargs: Any) -> None:
        super().__init__(data_format, **kwargs)
        self.padding = _pairs(padding, 2, "padding", "ZeroPadding2D")


class ZeroPadding1D(_ZeroPadding):
    """Zero steps before and after: ``padding`` an int or (before, after).

    Parameters
    ----------
    padding : int or tuple of 2 int, default 1
        As above.
    data_format : {"channels_last", "channels_first"}, optional
        Where the channels are (default ``"channels_last"``).
    **kwargs
        Base layer arguments (``name``, ``dtype``, ``trainable``,
        ``input_shape``, ...; see ``Layer``).
    """
    rank = 1

    def __init__(self, padding: PadSpec = 1, data_format: Optional[str] = None,
                 **kwargs: Any) -> None:
        super().__init__(data_format, **kwargs)
        self.padding = _pairs(padding, 1, "padding", "ZeroPadding1D")


class _Cropping(_Reshaping):
    def _out_spatial(self, spatial):
        out = []
        for axis, (n, (a, b)) in enumerate(zip(spatial, self.cropping)):
            if n is not None and n - a - b < 1:
                raise ValueError(f"{type(self).__name__} layer {self.name!r}: cropping "
                                 f"{(a, b)} leaves nothing of spatial axis {axis} of size {n}; "
                                 f"the input must be larger than {a + b} there")
            out.append(None if n is None else n - a - b)
        return tuple(out)

    def _forward_nhwc(self, x):
        index = (slice(None),) + tuple(slice(a, n - b) for (a, b), n in
                                       zip(self.cropping, x.shape[1:-1]))
        return x[index]

    def _backward_nhwc(self, dy, x_shape):
        dx = self.ops.xp.zeros(x_shape, dtype=dy.dtype)
        index = (slice(None),) + tuple(slice(a, n - b) for (a, b), n in
                                       zip(self.cropping, x_shape[1:-1]))
        dx[index] = dy
        return dx

    def get_config(self):
        crops = [list(p) for p in self.cropping]
        return {**super().get_config(), "cropping": crops[0] if self.rank == 1 else crops}


class Cropping2D(_Cropping):
    """Drop rows and columns at the edges: ``cropping`` an int, (rows, cols)
    symmetric, or ((top, bottom), (left, right)).

    Parameters
    ----------
    cropping : int or tuple, default ((0, 0), (0, 0))
        As above.
    data_format : {"channels_last", "channels_first"}, optional
        Where the channels are (default ``"channels_last"``).
    **kwargs
        Base layer arguments (``name``, ``dtype``, ``trainable``,
        ``input_shape``, ...; see ``Layer``).
    """

    def __init__(self, cropping: PadSpec = ((0, 0), (0, 0)), data_format: Optional[str] = None,
                 **kwargs: Any) -> None:
        super().__init__(data_format, **kwargs)
        self.cropping = _pairs(cropping, 2, "cropping", "Cropping2D")


class Cropping1D(_Cropping):
    """Drop steps at both ends: ``cropping`` an int or (before, after).

    Parameters
    ----------
    cropping : int or tuple of 2 int, default (1, 1)
        As above.
    **kwargs
        Base layer arguments (``name``, ``dtype``, ``trainable``,
        ``input_shape``, ...; see ``Layer``).
    """
    rank = 1

    def __init__(self, cropping: PadSpec = (1, 1), **kwargs: Any) -> None:
        super().__init__(None, **kwargs)
        self.cropping = _pairs(cropping, 1, "cropping", "Cropping1D")

    def get_config(self):
        config = super().get_config()
        config.pop("data_format")
        return config
