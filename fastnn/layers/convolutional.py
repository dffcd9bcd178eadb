"""Convolution layers (Keras's names, arguments, defaults and weight layouts):
Conv1D, Conv2D and Conv2DTranspose. One base, ``_Conv``, serves Conv1D and
Conv2D (a sequence is an image one row high); the transposed convolution runs
the same two backend methods the other way round (its forward is a
convolution's input gradient, its input gradient a convolution).

The layers compute channels-last (NHWC); ``data_format="channels_first"`` is
transposed at the layer's boundary. Padding rules and argument checks come from
``conv_utils``; the arithmetic lives in the backend (``ops.conv2d_forward``,
``ops.conv2d_backward``, ``ops.conv2d_input_grad``). Every bad input raises a
ValueError naming the layer, the shape received and the shape expected before
any kernel runs."""
from .. import activations, constraints
from .._types import (ActivationSpec, Any, ConstraintSpec, InitializerSpec, IntOrTuple, Optional,
                      RegularizerSpec)
from .base import Layer
from .conv_utils import (check_spatial, deconv_output_length, effective_size,
                         normalize_data_format, normalize_padding,
                         normalize_tuple, same_pads)
from .core import _ser


class _Conv(Layer):
    """Keras's ``BaseConv`` for ranks 1 and 2: ``y = activation(conv(x, kernel) + bias)``
    with kernel ``(*kernel_size, in_channels // groups, filters)``."""
    rank = 2
    paddings: "tuple[str, ...]" = ("valid", "same")
    skips_input_grad = True
    supports_fused_output = True

    def __init__(self, filters: int, kernel_size: IntOrTuple, strides: IntOrTuple = 1,
                 padding: str = "valid", data_format: Optional[str] = None,
                 dilation_rate: IntOrTuple = 1, groups: int = 1, activation: ActivationSpec = None,
                 use_bias: bool = True, kernel_initializer: InitializerSpec = "glorot_uniform",
                 bias_initializer: InitializerSpec = "zeros",
                 kernel_regularizer: RegularizerSpec = None,
                 bias_regularizer: RegularizerSpec = None,
                 kernel_constraint: ConstraintSpec = None, bias_constraint: ConstraintSpec = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        layer = f"{type(self).__name__} layer {self.name!r}"
        if isinstance(filters, bool) or not isinstance(filters, int) or filters < 1:
            raise ValueError(f"{layer}: filters must be a positive integer, got {filters!r}")
        if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
            raise ValueError(f"{layer}: groups must be a positive integer, got {groups!r}")
        if filters % groups:
            raise ValueError(f"{layer}: filters ({filters}) must be a multiple of groups "
                             f"({groups})")
        self.filters, self.groups = filters, groups
        self.kernel_size = normalize_tuple(kernel_size, self.rank, "kernel_size", layer)
        self.strides = normalize_tuple(strides, self.rank, "strides", layer)
        self.dilation_rate = normalize_tuple(dilation_rate, self.rank, "dilation_rate", layer)
        self.padding = normalize_padding(padding, layer, self.paddings)
        self.data_format = normalize_data_format(data_format, layer)
        self.activation, self.alpha = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer, self.bias_initializer = kernel_initializer, bias_initializer
        self.kernel_regularizer, self.bias_regularizer = kernel_regularizer, bias_regularizer
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)

    # ---------------------------------------------------------------- shapes
    @property
    def _layer(self):
        return f"{type(self).__name__} layer {self.name!r}"

    def _axes(self):
        """Names of a sample's axes, for messages: ('rows', 'cols', 'channels')."""
        spatial = ("steps",) if self.rank == 1 else ("rows", "cols")
        return ("channels",) + spatial if self.data_format == "channels_first" \
            else spatial + ("channels",)

    def _split(self, shape):
        """(spatial sizes, channels) of a sample's shape in this layer's data format."""
        shape = tuple(shape)
        if self.data_format == "channels_first":
            return shape[1:], shape[0]
        return shape[:-1], shape[-1]

    def _expected(self, channels="channels"):
        names = [str(channels) if a == "channels" else a for a in self._axes()]
        return f"(batch, {', '.join(names)})"

    def _check_sample_shape(self, shape, channels=None):
        """The sample shape's spatial sizes, or a ValueError naming the layer,
        the shape received and the one expected."""
        shape = tuple(shape)
        if len(shape) != self.rank + 1:
            raise ValueError(f"{self._layer} expects {self.rank + 2}D inputs of shape "
                             f"{self._expected(channels or 'channels')}, got input of shape "
                             f"(None, {', '.join(map(str, shape))})")
        spatial, c = self._split(shape)
        if channels is not None and c != channels:
            raise ValueError(f"{self._layer} was built for {channels} input channels, inputs of "
                             f"shape {self._expected(channels)}; got input of shape "
                             f"(None, {', '.join(map(str, shape))})")
        return spatial, c

    def _kernel_shape(self, in_channels):
        return self.kernel_size + (in_channels // self.groups, self.filters)

    def build(self, input_shape):
        spatial, c = self._check_sample_shape(input_shape)
        if c is None:
            raise ValueError(f"{self._layer} needs a known number of input channels, got input "
                             f"shape (None, {', '.join(map(str, input_shape))})")
        if c % self.groups:
            raise ValueError(f"{self._layer}: input channels ({c}) must be a multiple of "
                             f"groups ({self.groups}); got input shape "
                             f"(None, {', '.join(map(str, input_shape))})")
        self._output_spatial(spatial)
        self.add_weight("kernel", self._kernel_shape(c), self.kernel_initializer,
                        self.kernel_regularizer, constraint=self.kernel_constraint)
        if self.use_bias:
            self.add_weight("bias", (self.filters,), self.bias_initializer, self.bias_regularizer,
                            constraint=self.bias_constraint)
        self.built = True

    @property
    def _in_channels(self):
        return self.params["kernel"].shape[-2] * self.groups

    def check_input_shape(self, input_shape):
        spatial, _ = self._check_sample_shape(input_shape, self._in_channels)
        self._output_spatial(spatial)

    def _output_spatial(self, spatial):
        padding = "valid" if self.padding == "causal" else self.padding
        if self.padding == "causal":
            spatial = tuple(None if n is None else n + effective_size(k, d) - 1
                            for n, k, d in zip(spatial, self.kernel_size, self.dilation_rate))
        return check_spatial(self._layer, spatial, self.kernel_size, padding, self.strides,
                             self.dilation_rate)

    def _join(self, spatial, channels):
        if self.data_format == "channels_first":
            return (channels,) + tuple(spatial)
        return tuple(spatial) + (channels,)

    def compute_output_shape(self, input_shape):
        spatial, _ = self._split(input_shape)
        return self._join(self._output_spatial(spatial), self.filters)

    # --------------------------------------------------------------- compute
    def _pads(self, spatial):
        """(top, bottom, left, right) zeros for spatial sizes (rows, cols)."""
        pads = []
        for n, k, s, d in zip(spatial, self.kernel_size, self.strides, self.dilation_rate):
            if self.padding == "same":
                pads += same_pads(n, k, s, d)
            elif self.padding == "causal":
                pads += (effective_size(k, d) - 1, 0)
            else:
                pads += (0, 0)
        return tuple(pads)

    def _to_nhwc(self, x):
        """The input as a C-contiguous (N, H, W, C) array (a sequence is one row)."""
        xp = self.ops.xp
        if self.data_format == "channels_first":
            x = x.transpose((0,) + tuple(range(2, x.ndim)) + (1,))
        if self.rank == 1:
            x = x.reshape(x.shape[0], 1, x.shape[1], x.shape[2])
        return xp.ascontiguousarray(x)

    def _from_nhwc(self, y):
        if self.rank == 1:
            y = y.reshape(y.shape[0], y.shape[2], y.shape[3])
        if self.data_format == "channels_first":
            y = y.transpose((0, y.ndim - 1) + tuple(range(1, y.ndim - 1)))
        return y

    def _geometry(self):
        """(strides, dilation) as the 2D kernels take them."""
        if self.rank == 1:
            return (1,) + self.strides, (1,) + self.dilation_rate
        return self.strides, self.dilation_rate

    def _check_batch(self, x):
        self._check_input(x)
        if x.ndim != self.rank + 2:
            raise ValueError(f"{self._layer} expects {self.rank + 2}D inputs of shape "
                             f"{self._expected(self._in_channels)}, got input of shape "
                             f"{tuple(x.shape)}")
        spatial, _ = self._check_sample_shape(x.shape[1:], self._in_channels)
        self._output_spatial(spatial)
        return spatial

    def forward(self, x, training=False, fused_output=False):
        """Compute the convolution and its backprop; see ``Layer.forward``.

        Parameters
        ----------
        x : array
            ``(batch, *spatial, channels)`` (or channels first).
        training : bool, default False
            Unused.
        fused_output : bool, default False
            Skip the activation (the loss applies it).
        """
        ops = self.ops
        spatial = self._check_batch(x)
        pads = self._pads(spatial)
        if self.rank == 1:
            pads = (0, 0) + pads
        strides, dilation = self._geometry()
        W = self.params["kernel"]
        W4 = W.reshape((1,) + W.shape) if self.rank == 1 else W
        b = self.params.get("bias")
        x4 = self._to_nhwc(x)
        act = "linear" if fused_output else self.activation
        # Activations whose derivative needs the input, and softmax over a
        # channels-first output's last axis (not the channels), go after the kernel.
        post = activations.needs_input(act) or (act == "softmax"
                                                and self.data_format == "channels_first")
        args = (strides, pads, dilation, self.groups)
        z4 = ops.conv2d_forward(x4, W4, b, *args, "linear" if post else act, self.alpha)
        z = self._from_nhwc(z4)
        y = activations.forward(act, z, self.alpha, ops) if post else z

        def backprop(dy, need_dx=True):
            if post:
                dy = activations.backward(act, z, y, dy, self.alpha, ops)
                a, out4 = "linear", None
            else:
                a, out4 = act, z4
            dy4 = self._to_nhwc(dy)
            if self.trainable:
                gW = self.grads["kernel"]
                gW4 = gW.reshape((1,) + gW.shape) if self.rank == 1 else gW
                dx4 = ops.conv2d_backward(x4, W4, out4, dy4, gW4, self.grads.get("bias"), *args,
                                          a, self.alpha, need_dx=need_dx)
            elif need_dx:
                dx4 = ops.conv2d_backward(x4, W4, out4, dy4, None, None, *args, a, self.alpha)
            else:
                dx4 = None
            return None if dx4 is None else self._from_nhwc(dx4).reshape(x.shape)

        return y, backprop

    def get_config(self):
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": list(self.kernel_size), "strides": list(self.strides),
                "padding": self.padding, "data_format": self.data_format,
                "dilation_rate": list(self.dilation_rate), "groups": self.groups,
                "activation": [self.activation, self.alpha], "use_bias": self.use_bias,
                "kernel_initializer": _ser(self.kernel_initializer),
                "bias_initializer": _ser(self.bias_initializer),
                "kernel_regularizer": _ser(self.kernel_regularizer),
                "bias_regularizer": _ser(self.bias_regularizer),
                "kernel_constraint": _ser(self.kernel_constraint),
                "bias_constraint": _ser(self.bias_constraint)}


class Conv2D(_Conv):
    """2D convolution over (batch, rows, cols, channels) images (or
    (batch, channels, rows, cols) with ``data_format="channels_first"``).

    ``Conv2D(32, 3, activation="relu")``: kernel (3, 3, in_channels // groups, 32),
    bias (32,); ``padding="same"`` keeps ceil(size / stride) positions (the odd
    pad after, as Keras); ``groups`` splits the channels into independent
    convolutions. Forward is im2col + one GEMM with bias and activation fused.
    Unlike Keras, strides > 1 together with dilation_rate > 1 are accepted (the
    kernels compute that case as PyTorch does).

    Parameters
    ----------
    filters : int
        The number of output channels.
    kernel_size : int or tuple of 2 int
        The window's (rows, cols).
    strides : int or tuple of 2 int, default (1, 1)
        The step between windows.
    padding : {"valid", "same"}, default "valid"
        "valid": only whole windows; "same": ``ceil(size / stride)`` outputs.
    data_format : {"channels_last", "channels_first"}, optional
        Where the channels are (default ``"channels_last"``).
    dilation_rate : int or tuple of 2 int, default (1, 1)
        Spacing between the kernel's taps.
    groups : int, default 1
        Independent convolutions over that many channel groups (both channel
        counts must be multiples).
    activation : str, callable or Layer, optional
        Applied to the output, as ``Dense``'s.
    use_bias : bool, default True
        Whether to add ``bias`` (filters,).
    **kwargs
        ``kernel_initializer`` (default "glorot_uniform"), ``bias_initializer``
        (default "zeros"), ``kernel_regularizer``, ``bias_regularizer``, and the
        base layer arguments (``name``, ``dtype``, ``input_shape``, ...; see ``Layer``).

    Notes
    -----
    Shapes (channels last): ``(batch, rows, cols, channels)`` ->
    ``(batch, out_rows, out_cols, filters)``.

    Examples
    --------
    >>> from fastnn import Sequential
    >>> from fastnn.layers import Conv2D, MaxPooling2D, Flatten, Dense
    >>> model = Sequential([Conv2D(32, 3, activation="relu", input_shape=(28, 28, 1)),
    ...                     MaxPooling2D(), Flatten(), Dense(10, activation="softmax")])
    """
    rank = 2

    def __init__(self, filters: int, kernel_size: IntOrTuple, strides: IntOrTuple = (1, 1),
                 padding: str = "valid", data_format: Optional[str] = None,
                 dilation_rate: IntOrTuple = (1, 1), groups: int = 1,
                 activation: ActivationSpec = None, use_bias: bool = True, **kwargs: Any) -> None:
        super().__init__(filters, kernel_size, strides, padding, data_format, dilation_rate,
                         groups, activation, use_bias, **kwargs)


class Conv1D(_Conv):
    """1D convolution over (batch, steps, channels) sequences. ``padding`` is
    "valid", "same" or "causal" (zeros before the sequence only, so step t sees
    steps <= t: WaveNet's dilated causal convolution).

    Parameters
    ----------
    filters : int
        The number of output channels.
    kernel_size : int
        The window's length in steps.
    strides : int, default 1
        The step between windows.
    padding : {"valid", "same", "causal"}, default "valid"
        As above; "same" keeps ``ceil(steps / stride)`` outputs.
    data_format : {"channels_last", "channels_first"}, optional
        ``(batch, steps, channels)`` (default) or ``(batch, channels, steps)``.
    dilation_rate : int, default 1
        Spacing between the kernel's taps.
    groups : int, default 1
        Independent convolutions over that many channel groups.
    activation : str, callable or Layer, optional
        Applied to the output, as ``Dense``'s.
    use_bias : bool, default True
        Whether to add ``bias`` (filters,).
    **kwargs
        ``kernel_initializer`` (default "glorot_uniform"), ``bias_initializer``
        (default "zeros"), ``kernel_regularizer``, ``bias_regularizer``, and the
        base layer arguments (``name``, ``dtype``, ``input_shape``, ...; see ``Layer``).
    """
    rank = 1
    paddings = ("valid", "same", "causal")

    def __init__(self, filters: int, kernel_size: IntOrTuple, strides: IntOrTuple = 1,
                 padding: str = "valid", data_format: Optional[str] = None,
                 dilation_rate: IntOrTuple = 1, groups: int = 1, activation: ActivationSpec = None,
                 use_bias: bool = True, **kwargs: Any) -> None:
        super().__init__(filters, kernel_size, strides, padding, data_format, dilation_rate,
                         groups, activation, use_bias, **kwargs)


class Conv2DTranspose(_Conv):
    """Transposed 2D convolution (the gradient of a Conv2D with respect to its
    input): upsamples by ``strides``. Kernel (kh, kw, filters, in_channels) as
    Keras; output size per axis ``deconv_output_length`` (Keras's rule, with
    ``output_padding`` < stride choosing among the sizes a stride allows).

    Parameters
    ----------
    filters : int
        The number of output channels.
    kernel_size : int or tuple of 2 int
        The window's (rows, cols).
    strides : int or tuple of 2 int, default (1, 1)
        The upsampling factor.
    padding : {"valid", "same"}, default "valid"
        As Keras: "same" gives ``size * stride`` outputs.
    output_padding : int or tuple of 2 int, optional
        Extra rows/cols after, each smaller than the stride.
    data_format : {"channels_last", "channels_first"}, optional
        Where the channels are (default ``"channels_last"``).
    dilation_rate : int or tuple of 2 int, default (1, 1)
        Spacing between the kernel's taps.
    activation : str, callable or Layer, optional
        Applied to the output.
    use_bias : bool, default True
        Whether to add ``bias`` (filters,).
    **kwargs
        ``kernel_initializer`` (default "glorot_uniform"), ``bias_initializer``
        (default "zeros"), ``kernel_regularizer``, ``bias_regularizer``, and the
        base layer arguments (``name``, ``dtype``, ``input_shape``, ...; see ``Layer``).
    """
    rank = 2

    def __init__(self, filters: int, kernel_size: IntOrTuple, strides: IntOrTuple = (1, 1),
                 padding: str = "valid", output_padding: Optional[IntOrTuple] = None,
                 data_format: Optional[str] = None, dilation_rate: IntOrTuple = (1, 1),
                 activation: ActivationSpec = None, use_bias: bool = True, **kwargs: Any) -> None:
        super().__init__(filters, kernel_size, strides, padding, data_format, dilation_rate,
                         1, activation, use_bias, **kwargs)
        if output_padding is not None:
            output_padding = normalize_tuple(output_padding, 2, "output_padding", self._layer,
                                             allow_zero=True)
            for op, s in zip(output_padding, self.strides):
                if op >= s:
                    raise ValueError(f"{self._layer}: output_padding {output_padding} must be "
                                     f"smaller than strides {self.strides} on every axis")
        self.output_padding = output_padding

    def _kernel_shape(self, in_channels):
        return self.kernel_size + (self.filters, in_channels)

    @property
    def _in_channels(self):
        return self.params["kernel"].shape[-1]

    def _output_spatial(self, spatial):
        ops = self.output_padding or (None,) * 2
        return tuple(deconv_output_length(n, k, self.padding, s, d, op)
                     for n, k, s, d, op in zip(spatial, self.kernel_size, self.strides,
                                               self.dilation_rate, ops))

    def _pads(self, spatial):
        """Pads of the convolution that maps this layer's output back to its
        input (TensorFlow's conv2d_transpose): none for "valid"; for "same" the
        "same" rule of that convolution, whose output is this layer's input."""
        pads = []
        for n, m, k, s, d in zip(spatial, self._output_spatial(spatial), self.kernel_size,
                                 self.strides, self.dilation_rate):
            if self.padding == "valid":
                pads += (0, 0)
            else:
                total = max((n - 1) * s + effective_size(k, d) - m, 0)
                pads += (total // 2, total - total // 2)
        return tuple(pads)

    def forward(self, x, training=False, fused_output=False):
        """Compute the transposed convolution and its backprop; see ``Layer.forward``.

        Parameters
        ----------
        x : array
            ``(batch, rows, cols, channels)`` (or channels first).
        training : bool, default False
            Unused.
        fused_output : bool, default False
            Skip the activation (the loss applies it).
        """
        ops = self.ops
        spatial = self._check_batch(x)
        out_spatial = self._output_spatial(spatial)
        args = (self.strides, self._pads(spatial), self.dilation_rate, 1)
        K = self.params["kernel"]
        b = self.params.get("bias")
        x4 = self._to_nhwc(x)
        z4 = ops.conv2d_input_grad(x4, K, (x4.shape[0],) + out_spatial + (self.filters,), *args)
        if b is not None:
            z4 += b
        act = "linear" if fused_output else self.activation
        z = self._from_nhwc(z4)
        y = z if act == "linear" else activations.forward(act, z, self.alpha, ops)

        def backprop(dy, need_dx=True):
            if act != "linear":
                dy = activations.backward(act, z, y, dy, self.alpha, ops)
            dz4 = self._to_nhwc(dy)
            if self.trainable:
                # The kernel gradient of the convolution this layer transposes:
                # its input is dz, its output gradient x.
                ops.conv2d_backward(dz4, K, None, x4, self.grads["kernel"], None, *args,
                                    need_dx=False)
                if b is not None:
                    self.grads["bias"] += dz4.sum(axis=(0, 1, 2))
            if not need_dx:
                return None
            return self._from_nhwc(ops.conv2d_forward(dz4, K, None, *args))

        return y, backprop

    def get_config(self):
        config = super().get_config()
        del config["groups"]
        config["output_padding"] = (None if self.output_padding is None
                                    else list(self.output_padding))
        return config


# Keras's aliases.
Convolution1D, Convolution2D, Convolution2DTranspose = Conv1D, Conv2D, Conv2DTranspose
