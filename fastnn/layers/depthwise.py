"""Depthwise and depthwise-separable convolutions (Keras names, arguments,
weights): DepthwiseConv2D, one small filter bank per input channel, computed
by the direct depthwise kernel (``ops.depthwise_conv2d_forward/backward``)
with bias and activation fused; SeparableConv2D, that depthwise step followed
by a pointwise 1x1 convolution, a Dense-style GEMM over the (N*H*W, C) rows
(``ops.dense_forward/backward``). No kernel code here."""
from .. import activations, constraints
from .._types import (ActivationSpec, Any, ConstraintSpec, InitializerSpec, IntOrTuple, Optional,
                      RegularizerSpec)
from . import conv_utils
from .core import _ser
from .pooling import SpatialLayer


class _DepthwiseBase(SpatialLayer):
    def __init__(self, kernel_size: IntOrTuple, strides: IntOrTuple = (1, 1),
                 padding: str = "valid", depth_multiplier: int = 1,
                 data_format: Optional[str] = None, dilation_rate: IntOrTuple = (1, 1),
                 activation: ActivationSpec = None, use_bias: bool = True, **kwargs: Any) -> None:
        super().__init__(data_format, **kwargs)
        name = type(self).__name__
        self.kernel_size = conv_utils.normalize_tuple(kernel_size, 2, "kernel_size", name)
        self.strides = conv_utils.normalize_tuple(strides, 2, "strides", name)
        self.padding = conv_utils.normalize_padding(padding, name)
        self.dilation_rate = conv_utils.normalize_tuple(dilation_rate, 2, "dilation_rate", name)
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(f"{name}: strides > 1 together with dilation_rate > 1 is not "
                             f"supported (as Keras), got strides={self.strides}, "
                             f"dilation_rate={self.dilation_rate}")
        if (not conv_utils._is_int(depth_multiplier)) or depth_multiplier < 1:
            raise ValueError(f"{name}: depth_multiplier must be a positive integer, got "
                             f"{depth_multiplier!r}")
        self.depth_multiplier = int(depth_multiplier)
        self.activation, self.alpha = activations.get(activation)
        self.use_bias = bool(use_bias)

    def _out_spatial(self, sample):
        return conv_utils.check_spatial(f"{type(self).__name__} layer {self.name!r}",
                                        self._spatial(sample), self.kernel_size, self.padding,
                                        self.strides, self.dilation_rate)

    def _depthwise(self, x, kernel, bias, act):
        """The depthwise step on NHWC ``x`` with activation ``act`` (fused
        when the kernel has it): ``(y, backprop(dy, need_dx))`` accumulating
        into ``grads[kernel_name]`` / ``grads["bias"]``."""
        ops = self.ops
        args = (self.strides, self.padding, self.dilation_rate)
        z = None  # the pre-activation, kept only when the derivative needs it
        if activations.needs_input(act) or act == "softmax":
            z = ops.depthwise_conv2d_forward(x, kernel, bias, *args, "linear")
            y = activations.forward(act, z, self.alpha, ops)
        else:
            y = ops.depthwise_conv2d_forward(x, kernel, bias, *args, act, self.alpha)

        def backprop(dy, dkernel, dbias, need_dx=True):
            a, out = act, y
            if z is not None:
                dy, a, out = activations.backward(act, z, y, dy, self.alpha, ops), "linear", z
            if dkernel is not None:
                return ops.depthwise_conv2d_backward(x, kernel, out, dy, dkernel, dbias, *args,
                                                     a, self.alpha, need_dx=need_dx)
            if not need_dx:
                return None
            # Frozen: dx only, into throwaway gradients.
            return ops.depthwise_conv2d_backward(
                x, kernel, out, dy, ops.zeros(kernel.shape, kernel.dtype), None, *args, a,
                self.alpha, need_dx=True)

        return y, backprop

    def get_config(self):
        return {**super().get_config(), "kernel_size": list(self.kernel_size),
                "strides": list(self.strides), "padding": self.padding,
                "depth_multiplier": self.depth_multiplier,
                "dilation_rate": list(self.dilation_rate),
                "activation": [self.activation, self.alpha], "use_bias": self.use_bias}


class DepthwiseConv2D(_DepthwiseBase):
    """Each input channel convolved with its own ``depth_multiplier`` filters:
    (batch, rows, cols, C) -> (batch, rows', cols', C * depth_multiplier),
    output channel ``c * depth_multiplier + m``. Weights ``kernel``
    (kh, kw, C, depth_multiplier) and ``bias`` (C * depth_multiplier,).

    Parameters
    ----------
    kernel_size : int or tuple of 2 int
        The window's (rows, cols).
    strides : int or tuple of 2 int, default (1, 1)
        The step between windows.
    padding : {"valid", "same"}, default "valid"
        As Conv2D's.
    depth_multiplier : int, default 1
        Filters per input channel.
    data_format : {"channels_last", "channels_first"}, optional
        Where the channels are (default ``"channels_last"``).
    dilation_rate : int or tuple of 2 int, default (1, 1)
        Spacing between the kernel's taps.
    activation : str, callable or Layer, optional
        Applied to the output.
    use_bias : bool, default True
        Whether to add ``bias``.
    depthwise_initializer : str or Initializer, default "glorot_uniform"
        How ``kernel`` starts.
    bias_initializer : str or Initializer, default "zeros"
        How ``bias`` starts.
    depthwise_regularizer, bias_regularizer : str or Regularizer, optional
        Penalties on the weights.
    depthwise_constraint, bias_constraint : str or Constraint, optional
        Projections applied after each optimizer update (``fastnn.constraints``:
        ``MaxNorm``, ``NonNeg``, ``UnitNorm``, ``MinMaxNorm``, or their names).
    **kwargs
        Base layer arguments (``name``, ``dtype``, ``trainable``,
        ``input_shape``, ...; see ``Layer``).
    """
    skips_input_grad = True

    def __init__(self, kernel_size: IntOrTuple, strides: IntOrTuple = (1, 1),
                 padding: str = "valid", depth_multiplier: int = 1,
                 data_format: Optional[str] = None, dilation_rate: IntOrTuple = (1, 1),
                 activation: ActivationSpec = None, use_bias: bool = True,
                 depthwise_initializer: InitializerSpec = "glorot_uniform",
                 bias_initializer: InitializerSpec = "zeros",
                 depthwise_regularizer: RegularizerSpec = None,
                 bias_regularizer: RegularizerSpec = None,
                 depthwise_constraint: ConstraintSpec = None,
                 bias_constraint: ConstraintSpec = None, **kwargs: Any) -> None:
        super().__init__(kernel_size, strides, padding, depth_multiplier, data_format,
                         dilation_rate, activation, use_bias, **kwargs)
        self.depthwise_initializer = depthwise_initializer
        self.bias_initializer = bias_initializer
        self.depthwise_regularizer = depthwise_regularizer
        self.bias_regularizer = bias_regularizer
        self.depthwise_constraint = constraints.get(depthwise_constraint)
        self.bias_constraint = constraints.get(bias_constraint)

    def build(self, input_shape):
        super().build(input_shape)
        self._out_spatial(tuple(input_shape))
        self.add_weight("kernel", self.kernel_size + (self._channels, self.depth_multiplier),
                        self.depthwise_initializer, self.depthwise_regularizer,
                        constraint=self.depthwise_constraint)
        if self.use_bias:
            self.add_weight("bias", (self._channels * self.depth_multiplier,),
                            self.bias_initializer, self.bias_regularizer,
                            constraint=self.bias_constraint)
        self.built = True

    def compute_output_shape(self, input_shape):
        sample = tuple(input_shape)
        channels = sample[0] if self._channels_first else sample[-1]
        return self._with_spatial(self._out_spatial(sample), channels * self.depth_multiplier)

    def forward(self, x, training=False):
        sample = self._check_batch(x)
        self._out_spatial(sample)
        xh = self._to_nhwc(x)
        y, back = self._depthwise(xh, self.params["kernel"], self.params.get("bias"),
                                  self.activation)

        def backprop(dy, need_dx=True):
            dyh = self._to_nhwc(dy.reshape(out.shape))
            trainable = self.trainable
            dx = back(dyh, self.grads["kernel"] if trainable else None,
                      self.grads.get("bias") if trainable else None, need_dx)
            return None if dx is None else self._from_nhwc(dx)

        out = self._from_nhwc(y)
        return out, backprop

    def get_config(self):
        return {**super().get_config(),
                "depthwise_initializer": _ser(self.depthwise_initializer),
                "bias_initializer": _ser(self.bias_initializer),
                "depthwise_regularizer": _ser(self.depthwise_regularizer),
                "bias_regularizer": _ser(self.bias_regularizer),
                "depthwise_constraint": _ser(self.depthwise_constraint),
                "bias_constraint": _ser(self.bias_constraint)}


class SeparableConv2D(_DepthwiseBase):
    """DepthwiseConv2D (no bias, no activation) then a pointwise 1x1
    convolution to ``filters`` channels with bias and activation. Weights
    ``depthwise_kernel`` (kh, kw, C, depth_multiplier), ``pointwise_kernel``
    (1, 1, C * depth_multiplier, filters) and ``bias`` (filters,), as Keras.

    Parameters
    ----------
    filters : int
        The number of output channels.
    kernel_size : int or tuple of 2 int
        The depthwise window's (rows, cols).
    strides : int or tuple of 2 int, default (1, 1)
        The step between windows.
    padding : {"valid", "same"}, default "valid"
        As Conv2D's.
    data_format : {"channels_last", "channels_first"}, optional
        Where the channels are (default ``"channels_last"``).
    dilation_rate : int or tuple of 2 int, default (1, 1)
        Spacing between the kernel's taps.
    depth_multiplier : int, default 1
        Depthwise filters per input channel.
    activation : str, callable or Layer, optional
        Applied to the output.
    use_bias : bool, default True
        Whether to add ``bias``.
    depthwise_initializer, pointwise_initializer : str or Initializer
        How the kernels start (default "glorot_uniform").
    bias_initializer : str or Initializer, default "zeros"
        How ``bias`` starts.
    depthwise_regularizer, pointwise_regularizer, bias_regularizer : optional
        Penalties on the weights.
    depthwise_constraint, pointwise_constraint, bias_constraint : optional
        Projections applied after each optimizer update (``fastnn.constraints``:
        ``MaxNorm``, ``NonNeg``, ``UnitNorm``, ``MinMaxNorm``, or their names).
    **kwargs
        Base layer arguments (``name``, ``dtype``, ``trainable``,
        ``input_shape``, ...; see ``Layer``).
    """
    skips_input_grad = True

    def __init__(self, filters: int, kernel_size: IntOrTuple, strides: IntOrTuple = (1, 1),
                 padding: str = "valid", data_format: Optional[str] = None,
                 dilation_rate: IntOrTuple = (1, 1), depth_multiplier: int = 1,
                 activation: ActivationSpec = None, use_bias: bool = True,
                 depthwise_initializer: InitializerSpec = "glorot_uniform",
                 pointwise_initializer: InitializerSpec = "glorot_uniform",
                 bias_initializer: InitializerSpec = "zeros",
                 depthwise_regularizer: RegularizerSpec = None,
                 pointwise_regularizer: RegularizerSpec = None,
                 bias_regularizer: RegularizerSpec = None,
                 depthwise_constraint: ConstraintSpec = None,
                 pointwise_constraint: ConstraintSpec = None,
                 bias_constraint: ConstraintSpec = None, **kwargs: Any) -> None:
        super().__init__(kernel_size, strides, padding, depth_multiplier, data_format,
                         dilation_rate, activation, use_bias, **kwargs)
        if not conv_utils._is_int(filters) or filters < 1:
            raise ValueError(f"SeparableConv2D: filters must be a positive integer, got "
                             f"{filters!r}")
        self.filters = int(filters)
        self.depthwise_initializer = depthwise_initializer
        self.pointwise_initializer = pointwise_initializer
        self.bias_initializer = bias_initializer
        self.depthwise_regularizer = depthwise_regularizer
        self.pointwise_regularizer = pointwise_regularizer
        self.bias_regularizer = bias_regularizer
        self.depthwise_constraint = constraints.get(depthwise_constraint)
        self.pointwise_constraint = constraints.get(pointwise_constraint)
        self.bias_constraint = constraints.get(bias_constraint)

    def build(self, input_shape):
        super().build(input_shape)
        self._out_spatial(tuple(input_shape))
        inner = self._channels * self.depth_multiplier
        self.add_weight("depthwise_kernel",
                        self.kernel_size + (self._channels, self.depth_multiplier),
                        self.depthwise_initializer, self.depthwise_regularizer,
                        constraint=self.depthwise_constraint)
        self.add_weight("pointwise_kernel", (1, 1, inner, self.filters),
                        self.pointwise_initializer, self.pointwise_regularizer,
                        constraint=self.pointwise_constraint)
        if self.use_bias:
            self.add_weight("bias", (self.filters,), self.bias_initializer,
                            self.bias_regularizer, constraint=self.bias_constraint)
        self.built = True

    def compute_output_shape(self, input_shape):
        return self._with_spatial(self._out_spatial(tuple(input_shape)), self.filters)

    def forward(self, x, training=False):
        sample = self._check_batch(x)
        self._out_spatial(sample)
        ops = self.ops
        xh = self._to_nhwc(x)
        z, back = self._depthwise(xh, self.params["depthwise_kernel"], None, "linear")
        inner = z.shape[-1]
        rows = z.reshape(-1, inner)
        pw = self.params["pointwise_kernel"].reshape(inner, self.filters)
        b = self.params.get("bias")
        act = self.activation
        u = None  # the pointwise pre-activation, kept only when the derivative needs it
        if activations.needs_input(act):
            u = ops.dense_forward(rows, pw, b, "linear")
            y = activations.forward(act, u, self.alpha, ops)
        else:
            y = ops.dense_forward(rows, pw, b, act, self.alpha)
        yh = y.reshape(z.shape[:3] + (self.filters,))

        def backprop(dy, need_dx=True):
            d = self._to_nhwc(dy.reshape(out.shape)).reshape(y.shape)
            a, o = act, y
            if u is not None:
                d, a, o = activations.backward(act, u, y, d, self.alpha, ops), "linear", u
            if self.trainable:
                dpw = self.grads["pointwise_kernel"].reshape(inner, self.filters)
                dz = ops.dense_backward(rows, pw, o, d, dpw, self.grads.get("bias"), a,
                                        self.alpha, need_dx=True)
                dk = self.grads["depthwise_kernel"]
            else:
                dz = ops.gemm(ops.activation_backward(a, o, d, self.alpha), pw, trans_b=True)
                dk = None
            dx = back(dz.reshape(z.shape), dk, None, need_dx)
            return None if dx is None else self._from_nhwc(dx)

        out = self._from_nhwc(yh)
        return out, backprop

    def get_config(self):
        return {**super().get_config(), "filters": self.filters,
                "depthwise_initializer": _ser(self.depthwise_initializer),
                "pointwise_initializer": _ser(self.pointwise_initializer),
                "bias_initializer": _ser(self.bias_initializer),
                "depthwise_regularizer": _ser(self.depthwise_regularizer),
                "pointwise_regularizer": _ser(self.pointwise_regularizer),
                "bias_regularizer": _ser(self.bias_regularizer),
                "depthwise_constraint": _ser(self.depthwise_constraint),
                "pointwise_constraint": _ser(self.pointwise_constraint),
                "bias_constraint": _ser(self.bias_constraint)}


SeparableConvolution2D = SeparableConv2D
