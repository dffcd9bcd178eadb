"""Pooling layers (Keras names): MaxPooling2D, AveragePooling2D and their 1D
forms over windows (``ops.pool2d_forward/backward``), and the global poolings
(GlobalAveragePooling1D/2D, GlobalMaxPooling1D/2D) over whole spatial axes.
GlobalAveragePooling1D averages over the unmasked steps when a mask comes with
its input. Also the input checks the spatial layers share (``SpatialLayer``):
rank, channel count and data format, each a ValueError naming the layer, the
shape received and the shape expected, before any kernel runs. Layers compute
in channels_last (NHWC); a channels_first input is transposed at the
boundary. No kernel code here."""
from .._types import Any, IntOrTuple, Optional
from . import conv_utils
from .base import Layer

_AXES = {1: ("steps",), 2: ("rows", "cols")}


class SpatialLayer(Layer):
    """Shared by the layers of the CNN chapter over ``rank`` spatial axes:
    the data format, and the checks of an input's rank and channel count
    (fixed at build)."""
    rank = 2

    def __init__(self, data_format: Optional[str] = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.data_format = conv_utils.normalize_data_format(data_format, type(self).__name__)
        self._channels = None

    @property
    def _channels_first(self):
        return self.data_format == "channels_first"

    def _layout(self, channels=None):
        ch = "channels" if channels is None else str(channels)
        axes = _AXES[self.rank]
        return ", ".join(("batch",) + ((ch,) + axes if self._channels_first else axes + (ch,)))

    def _check_shape(self, shape, batched):
        """``shape`` (per sample unless ``batched``) must have the layer's rank
        and, once built, its channel count."""
        sample = tuple(shape[1:]) if batched else tuple(shape)
        shown = tuple(shape) if batched else (None,) + sample
        who = f"{type(self).__name__} layer {self.name!r}"
        if len(sample) != self.rank + 1:
            raise ValueError(f"{who} expects inputs of shape ({self._layout(self._channels)}), "
                             f"got shape {shown}")
        channels = sample[0] if self._channels_first else sample[-1]
        if self._channels is not None and channels != self._channels:
            raise ValueError(f"{who} was built for {self._channels} channels, inputs of shape "
                             f"({self._layout(self._channels)}); got shape {shown}")
        return sample

    def _spatial(self, sample):
        """The spatial sizes of a per-sample shape."""
        return tuple(sample[1:]) if self._channels_first else tuple(sample[:-1])

    def _with_spatial(self, spatial, channels):
        return (channels,) + tuple(spatial) if self._channels_first else tuple(spatial) + (channels,)

    def build(self, input_shape):
        sample = self._check_shape(input_shape, False)
        self._channels = sample[0] if self._channels_first else sample[-1]
        self.built = True

    def check_input_shape(self, input_shape):
        self._check_shape(input_shape, False)

    def _check_batch(self, x):
        self._check_input(x)
        return self._check_shape(x.shape, True)

    def _to_nhwc(self, x):
        """``x`` as (batch, rows, cols, channels) (steps as one row for 1D)."""
        if self.rank == 1:
            x = x.transpose(0, 2, 1) if self._channels_first else x
            return x.reshape(x.shape[0], 1, x.shape[1], x.shape[2])
        return x.transpose(0, 2, 3, 1) if self._channels_first else x

    def _from_nhwc(self, y):
        if self.rank == 1:
            y = y.reshape(y.shape[0], y.shape[2], y.shape[3])
            return y.transpose(0, 2, 1) if self._channels_first else y
        return y.transpose(0, 3, 1, 2) if self._channels_first else y

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}


class _Pooling(SpatialLayer):
    mode = "max"

    def __init__(self, pool_size: IntOrTuple, strides: Optional[IntOrTuple] = None,
                 padding: str = "valid", data_format: Optional[str] = None, **kwargs: Any) -> None:
        super().__init__(data_format, **kwargs)
        name = type(self).__name__
        self.pool_size = conv_utils.normalize_tuple(pool_size, self.rank, "pool_size", name)
        self.strides = self.pool_size if strides is None else conv_utils.normalize_tuple(
            strides, self.rank, "strides", name)
        self.padding = conv_utils.normalize_padding(padding, name)

    def _out_spatial(self, sample):
        return conv_utils.check_spatial(f"{type(self).__name__} layer {self.name!r}",
                                        self._spatial(sample), self.pool_size, self.padding,
                                        self.strides)

    def build(self, input_shape):
        super().build(input_shape)
        self._out_spatial(tuple(input_shape))

    def compute_output_shape(self, input_shape):
        sample = tuple(input_shape)
        return self._with_spatial(self._out_spatial(sample), self._channels_of(sample))

    def _channels_of(self, sample):
        return sample[0] if self._channels_first else sample[-1]

    def forward(self, x, training=False):
        sample = self._check_batch(x)
        self._out_spatial(sample)
        ops = self.ops
        pool = (1,) + self.pool_size if self.rank == 1 else self.pool_size
        strides = (1,) + self.strides if self.rank == 1 else self.strides
        xh = self._to_nhwc(x)
        y, argmax = ops.pool2d_forward(xh, pool, strides, self.padding, self.mode)

        def backprop(dy):
            dyh = self._to_nhwc(dy.reshape(out.shape))
            dx = ops.pool2d_backward(dyh, argmax, tuple(xh.shape), pool, strides, self.padding,
                                     self.mode)
            return self._from_nhwc(dx).reshape(x.shape)

        out = self._from_nhwc(y)
        return out, backprop

    def get_config(self):
        return {**super().get_config(), "pool_size": list(self.pool_size),
                "strides": list(self.strides), "padding": self.padding}


class MaxPooling2D(_Pooling):
    """The maximum of each ``pool_size`` window, moved by ``strides`` (default
    ``pool_size``). The gradient goes to the first maximum of a window in
    row-major order (TensorFlow's rule); "same" padding never wins.

    Parameters
    ----------
    pool_size : int or tuple of 2 int, default (2, 2)
        The window size.
    strides : int or tuple of 2 int, optional
        The step between windows (default: ``pool_size``).
    padding : {"valid", "same"}, default "valid"
        "valid": only whole windows; "same": output size ``ceil(size / strides)``.
    data_format : {"channels_last", "channels_first"}, optional
        ``(batch, rows, cols, channels)`` or ``(batch, channels, rows, cols)``;
        default ``"channels_last"``.
    **kwargs
        Base layer arguments (``name``, ``dtype``, ``trainable``,
        ``input_shape``, ...; see ``Layer``).

    Notes
    -----
    Shapes (channels last): ``(batch, rows, cols, channels)`` ->
    ``(batch, out_rows, out_cols, channels)``.
    """

    def __init__(self, pool_size: IntOrTuple = (2, 2), strides: Optional[IntOrTuple] = None,
                 padding: str = "valid", data_format: Optional[str] = None, **kwargs: Any) -> None:
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


class AveragePooling2D(_Pooling):
    """The mean of each ``pool_size`` window; with "same" padding, the mean of
    the window's real inputs (Keras: padding does not count).

    Parameters
    ----------
    pool_size : int or tuple of 2 int, default (2, 2)
        The window size.
    strides : int or tuple of 2 int, optional
        The step between windows (default: ``pool_size``).
    padding : {"valid", "same"}, default "valid"
        "valid": only whole windows; "same": output size ``ceil(size / strides)``.
    data_format : {"channels_last", "channels_first"}, optional
        ``(batch, rows, cols, channels)`` or ``(batch, channels, rows, cols)``;
        default ``"channels_last"``.
    **kwargs
        Base layer arguments (``name``, ``dtype``, ``trainable``,
        ``input_shape``, ...; see ``Layer``).

    Notes
    -----
    Shapes (channels last): ``(batch, rows, cols, channels)`` ->
    ``(batch, out_rows, out_cols, channels)``.
    """
    mode = "avg"

    def __init__(self, pool_size: IntOrTuple = (2, 2), strides: Optional[IntOrTuple] = None,
                 padding: str = "valid", data_format: Optional[str] = None, **kwargs: Any) -> None:
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


class MaxPooling1D(_Pooling):
    """MaxPooling2D over the steps of a (batch, steps, channels) input.

    Parameters
    ----------
    pool_size : int, default 2
        The window size.
    strides : int, optional
        The step between windows (default: ``pool_size``).
    padding : {"valid", "same"}, default "valid"
        "valid": only whole windows; "same": output size ``ceil(size / strides)``.
    data_format : {"channels_last", "channels_first"}, default "channels_last"
        ``(batch, steps, channels)`` or ``(batch, channels, steps)``.
    **kwargs
        Base layer arguments (``name``, ``dtype``, ``trainable``,
        ``input_shape``, ...; see ``Layer``).

    Notes
    -----
    Shapes (channels last): ``(batch, steps, channels)`` -> ``(batch, out_steps, channels)``.
    """
    rank = 1

    def __init__(self, pool_size: IntOrTuple = 2, strides: Optional[IntOrTuple] = None,
                 padding: str = "valid", data_format: Optional[str] = "channels_last",
                 **kwargs: Any) -> None:
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


class AveragePooling1D(_Pooling):
    """AveragePooling2D over the steps of a (batch, steps, channels) input.

    Parameters
    ----------
    pool_size : int, default 2
        The window size.
    strides : int, optional
        The step between windows (default: ``pool_size``).
    padding : {"valid", "same"}, default "valid"
        "valid": only whole windows; "same": output size ``ceil(size / strides)``.
    data_format : {"channels_last", "channels_first"}, default "channels_last"
        ``(batch, steps, channels)`` or ``(batch, channels, steps)``.
    **kwargs
        Base layer arguments (``name``, ``dtype``, ``trainable``,
        ``input_shape``, ...; see ``Layer``).

    Notes
    -----
    Shapes (channels last): ``(batch, steps, channels)`` -> ``(batch, out_steps, channels)``.
    """
    rank = 1
    mode = "avg"

    def __init__(self, pool_size: IntOrTuple = 2, strides: Optional[IntOrTuple] = None,
                 padding: str = "valid", data_format: Optional[str] = "channels_last",
                 **kwargs: Any) -> None:
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


class _GlobalPooling(SpatialLayer):
    def __init__(self, data_format: Optional[str] = None, keepdims: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(data_format, **kwargs)
        self.keepdims = bool(keepdims)

    def compute_output_shape(self, input_shape):
        sample = tuple(input_shape)
        channels = sample[0] if self._channels_first else sample[-1]
        if self.keepdims:
            return self._with_spatial((1,) * self.rank, channels)
        return (channels,)

    def _finish(self, y3, x):
        """(batch, 1, channels) -> the layer's output shape."""
        if not self.keepdims:
            return y3[:, 0]
        ones = (1,) * self.rank
        return y3.reshape(self._with_spatial((x.shape[0],) + ones, y3.shape[-1])) \
            if not self._channels_first else y3.reshape((x.shape[0], y3.shape[-1]) + ones)

    def _flat(self, x):
        """(batch, positions, channels)."""
        xh = self._to_nhwc(x)
        return xh.reshape(xh.shape[0], -1, xh.shape[-1]), xh.shape

    def _unflat(self, d, shape, x):
        return self._from_nhwc(d.reshape(shape)).reshape(x.shape)

    def get_config(self):
        return {**super().get_config(), "keepdims": self.keepdims}


class GlobalAveragePooling1D(_GlobalPooling):
    """(batch, steps, features) -> (batch, features), the mean over steps.
    With a mask (from ``Embedding(mask_zero=True)`` or ``Masking``), the mean
    over the unmasked steps only (a sample whose steps are all masked gives
    zeros); the mask stops here. ``keepdims=True`` keeps the steps axis.

    Parameters
    ----------
    data_format : {"channels_last", "channels_first"}, default "channels_last"
        Where the channels are.
    keepdims : bool, default False
        Keep the steps axis as size 1.
    **kwargs
        Base layer arguments (``name``, ``dtype``, ``trainable``,
        ``input_shape``, ...; see ``Layer``).
    """
    rank = 1
    supports_masking = True

    def __init__(self, data_format: Optional[str] = "channels_last", keepdims: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(data_format, keepdims, **kwargs)

    def compute_mask(self, inputs, mask=None):
        return None

    def forward(self, x, training=False, mask=None):
        """Average over the (unmasked) steps; see ``Layer.forward``.

        Parameters
        ----------
        x : array
            ``(batch, steps, features)`` (channels last).
        training : bool, default False
            Unused.
        mask : array, optional
            ``(batch, steps)`` booleans: the steps to average.
        """
        self._check_batch(x)
        flat, shape = self._flat(x)
        if mask is None:
            weight = x.dtype.type(1.0 / flat.shape[1])
            y = flat.mean(axis=1, keepdims=True)

            def backprop(dy):
                d = (dy.reshape(y.shape) * weight).repeat(flat.shape[1], axis=1)
                return self._unflat(d, shape, x)
        else:
            if tuple(mask.shape) != tuple(flat.shape[:2]):
                raise ValueError(f"GlobalAveragePooling1D layer {self.name!r}: mask of shape "
                                 f"{tuple(mask.shape)} for input of shape {tuple(x.shape)}; "
                                 f"expected {tuple(flat.shape[:2])}")
            m = mask.astype(x.dtype)[..., None]
            count = m.sum(axis=1, keepdims=True)
            count[count == 0] = 1  # all steps masked: zeros, not 0/0
            share = m / count
            y = (flat * share).sum(axis=1, keepdims=True)

            def backprop(dy):
                return self._unflat(dy.reshape(y.shape) * share, shape, x)

        return self._finish(y, x), backprop


class GlobalAveragePooling2D(_GlobalPooling):
    """(batch, rows, cols, channels) -> (batch, channels), the mean over the
    image (``keepdims=True``: (batch, 1, 1, channels)).

    Parameters
    ----------
    data_format : {"channels_last", "channels_first"}, optional
        Where the channels are (default ``"channels_last"``).
    keepdims : bool, default False
        Keep the pooled spatial axes as size 1.
    **kwargs
        Base layer arguments (``name``, ``dtype``, ``trainable``,
        ``input_shape``, ...; see ``Layer``).
    """

    def forward(self, x, training=False):
        self._check_batch(x)
        flat, shape = self._flat(x)
        weight = x.dtype.type(1.0 / flat.shape[1])
        y = flat.mean(axis=1, keepdims=True)

        def backprop(dy):
            d = (dy.reshape(y.shape) * weight).repeat(flat.shape[1], axis=1)
            return self._unflat(d, shape, x)

        return self._finish(y, x), backprop


class _GlobalMax(_GlobalPooling):
    def forward(self, x, training=False):
        self._check_batch(x)
        xp = self.ops.xp
        flat, shape = self._flat(x)
        # argmax takes the first maximum: it gets the gradient (TensorFlow's rule).
        idx = xp.argmax(flat, axis=1)[:, None, :]
        y = xp.take_along_axis(flat, idx, axis=1)

        def backprop(dy):
            d = xp.zeros(flat.shape, dtype=dy.dtype)
            xp.put_along_axis(d, idx, dy.reshape(y.shape), axis=1)
            return self._unflat(d, shape, x)

        return self._finish(y, x), backprop


class GlobalMaxPooling2D(_GlobalMax):
    """(batch, rows, cols, channels) -> (batch, channels), the maximum over
    the image; the gradient goes to the first maximum.

    Parameters
    ----------
    data_format : {"channels_last", "channels_first"}, optional
        Where the channels are (default ``"channels_last"``).
    keepdims : bool, default False
        Keep the pooled spatial axes as size 1.
    **kwargs
        Base layer arguments (``name``, ``dtype``, ``trainable``,
        ``input_shape``, ...; see ``Layer``).
    """


class GlobalMaxPooling1D(_GlobalMax):
    """(batch, steps, channels) -> (batch, channels), the maximum over steps.

    Parameters
    ----------
    data_format : {"channels_last", "channels_first"}, default "channels_last"
        Where the channels are.
    keepdims : bool, default False
        Keep the steps axis as size 1.
    **kwargs
        Base layer arguments (``name``, ``dtype``, ``trainable``,
        ``input_shape``, ...; see ``Layer``).
    """
    rank = 1

    def __init__(self, data_format: Optional[str] = "channels_last", keepdims: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(data_format, keepdims, **kwargs)


# Keras's other names for the same classes.
MaxPool2D = MaxPooling2D
AvgPool2D = AveragePooling2D
MaxPool1D = MaxPooling1D
AvgPool1D = AveragePooling1D
GlobalAvgPool2D = GlobalAveragePooling2D
GlobalMaxPool2D = GlobalMaxPooling2D
GlobalAvgPool1D = GlobalAveragePooling1D
GlobalMaxPool1D = GlobalMaxPooling1D
ALIASES = {"MaxPool2D": MaxPool2D, "AvgPool2D": AvgPool2D, "MaxPool1D": MaxPool1D,
           "AvgPool1D": AvgPool1D, "GlobalAvgPool2D": GlobalAvgPool2D,
           "GlobalMaxPool2D": GlobalMaxPool2D, "GlobalAvgPool1D": GlobalAvgPool1D,
           "GlobalMaxPool1D": GlobalMaxPool1D}
