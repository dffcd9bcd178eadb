"""The residual block as one composite layer (He et al. 2016, the "basic"
block): conv -> BN -> activation -> conv -> BN, plus the shortcut (the input
itself, or a strided 1x1 convolution (+ BN) where the shape changes), added,
then the activation. The same graph written with the functional API and
``Add`` computes the same thing (tests/layers/test_residual.py); this layer
holds its parts as sublayers, so their weights, gradients and moving
statistics are tracked, saved and frozen with it. No arithmetic of its own
beyond the sum of the two branches' gradients."""
from .._types import (ActivationSpec, Any, Dict, InitializerSpec, IntOrTuple, Optional,
                      RegularizerSpec)
from .base import Layer
from .conv_utils import normalize_data_format
from .convolutional import Conv2D
from .depthwise import SeparableConv2D
from .core import Activation, _ser
from .normalization import BatchNormalization


class ResidualBlock(Layer):
    """``ResidualBlock(filters, kernel_size=3, strides=1)``: two "same"-padded
    convolutions of ``filters`` (the first with ``strides``), each followed by
    BatchNormalization when ``batchnorm`` (then the convolutions have no
    bias), ``activation`` after the first and after the sum. ``separable``
    uses SeparableConv2D for the two convolutions. The shortcut is the input
    when ``strides`` is 1 and the channels equal ``filters``, else a 1x1
    convolution with ``strides`` (and BN).

    Weights, in order: conv1 (kernel[, bias]), bn1 (gamma, beta, moving_mean,
    moving_variance), conv2, bn2, then the shortcut's conv and bn when it has
    them.

    Parameters
    ----------
    filters : int
        The output channels.
    kernel_size : int or tuple of 2 int, default 3
        The convolutions' window.
    strides : int or tuple of 2 int, default 1
        The first convolution's (and the shortcut's) stride.
    separable : bool, default False
        Use SeparableConv2D.
    batchnorm : bool, default True
        BatchNormalization after each convolution.
    activation : str, default "relu"
        After the first convolution and after the sum.
    data_format : {"channels_last", "channels_first"}, optional
        Where the channels are.
    momentum : float, default 0.99
        The BatchNormalization layers' momentum.
    epsilon : float, default 1e-3
        The BatchNormalization layers' epsilon.
    kernel_initializer : str or Initializer, default "glorot_uniform"
        The convolutions' kernels' initializer.
    kernel_regularizer : str or Regularizer, optional
        A penalty on the convolutions' kernels.
    **kwargs
        Base layer arguments (``name``, ``dtype``, ``trainable``,
        ``input_shape``, ...; see ``Layer``).
    """
    skips_input_grad = True

    def __init__(self, filters: int, kernel_size: IntOrTuple = 3, strides: IntOrTuple = 1,
                 separable: bool = False, batchnorm: bool = True,
                 activation: ActivationSpec = "relu", data_format: Optional[str] = None,
                 momentum: float = 0.99, epsilon: float = 1e-3,
                 kernel_initializer: InitializerSpec = "glorot_uniform",
                 kernel_regularizer: RegularizerSpec = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        layer = f"ResidualBlock layer {self.name!r}"
        if isinstance(filters, bool) or not isinstance(filters, int) or filters < 1:
            raise ValueError(f"{layer}: filters must be a positive integer, got {filters!r}")
        self.filters, self.kernel_size, self.strides = filters, kernel_size, strides
        self.separable, self.batchnorm = bool(separable), bool(batchnorm)
        self.activation = activation
        self.data_format = normalize_data_format(data_format, layer)
        self.momentum, self.epsilon = momentum, epsilon
        self.kernel_initializer, self.kernel_regularizer = kernel_initializer, kernel_regularizer
        conv_class = SeparableConv2D if self.separable else Conv2D
        kernel: Dict[str, Any]  # keyword arguments of one conv class or the other
        kernel = ({"depthwise_initializer": kernel_initializer,
                   "pointwise_initializer": kernel_initializer,
                   "depthwise_regularizer": kernel_regularizer,
                   "pointwise_regularizer": kernel_regularizer} if self.separable else
                  {"kernel_initializer": kernel_initializer,
                   "kernel_regularizer": kernel_regularizer})
        dt = self.dtype.name
        self.conv1 = conv_class(filters, kernel_size, strides=strides, padding="same",
                                data_format=self.data_format, use_bias=not self.batchnorm,
                                name=f"{self.name}_conv1", dtype=dt, **kernel)
        self.bn1 = self._bn("bn1")
        self.act1 = Activation(activation, name=f"{self.name}_act1", dtype=dt)
        self.conv2 = conv_class(filters, kernel_size, strides=1, padding="same",
                                data_format=self.data_format, use_bias=not self.batchnorm,
                                name=f"{self.name}_conv2", dtype=dt, **kernel)
        self.bn2 = self._bn("bn2")
        self.act_out = Activation(activation, name=f"{self.name}_act_out", dtype=dt)
        self.shortcut_conv: Optional[Conv2D] = None  # made at build when the shape changes
        self.shortcut_bn = None
        if not self.trainable:
            self.trainable = False  # freeze the parts too, as Keras

    def _bn(self, part):
        if not self.batchnorm:
            return None
        return BatchNormalization(axis=1 if self.data_format == "channels_first" else -1,
                                  momentum=self.momentum, epsilon=self.epsilon,
                                  name=f"{self.name}_{part}", dtype=self.dtype.name)

    def _channels(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"ResidualBlock layer {self.name!r} expects inputs of shape "
                             f"(batch, rows, cols, channels), got (None, "
                             f"{', '.join(map(str, input_shape))})")
        return input_shape[0] if self.data_format == "channels_first" else input_shape[-1]

    def _main_parts(self):
        return [p for p in (self.conv1, self.bn1, self.act1, self.conv2, self.bn2)
                if p is not None]

    def _shortcut_parts(self):
        return [p for p in (self.shortcut_conv, self.shortcut_bn) if p is not None]

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        channels = self._channels(input_shape)
        shape = input_shape
        for part in self._main_parts():
            shape = self.build_sublayer(part, shape)
        strides = self.conv1.strides
        if channels != self.filters or any(s != 1 for s in strides):
            self.shortcut_conv = Conv2D(
                self.filters, 1, strides=strides, padding="same", data_format=self.data_format,
                use_bias=not self.batchnorm, kernel_initializer=self.kernel_initializer,
                kernel_regularizer=self.kernel_regularizer, name=f"{self.name}_shortcut_conv",
                dtype=self.dtype.name)
            self.shortcut_bn = self._bn("shortcut_bn")
            short = input_shape
            for part in self._shortcut_parts():
                short = self.build_sublayer(part, short)
            assert short == shape, (short, shape)
        self.build_sublayer(self.act_out, shape)
        self.built = True

    def check_input_shape(self, input_shape):
        self._channels(tuple(input_shape))
        self.conv1.check_input_shape(input_shape)

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        for part in (self.conv1, self.conv2):
            shape = part.compute_output_shape(shape)
        return shape

    def forward(self, x, training=False):
        self._check_input(x)
        if x.ndim != 4:
            raise ValueError(f"ResidualBlock layer {self.name!r} expects inputs of shape "
                             f"(batch, rows, cols, channels), got {tuple(x.shape)}")
        backs = []
        h = x
        for part in self._main_parts():
            h, back = part.forward(h, training)
            backs.append((part, back))
        s, short_backs = x, []
        for part in self._shortcut_parts():
            s, back = part.forward(s, training)
            short_backs.append((part, back))
        y, back_out = self.act_out.forward(h + s, training)

        def run_back(chain, d, need_dx):
            for k in range(len(chain) - 1, -1, -1):
                part, back = chain[k]
                if k == 0 and part.skips_input_grad:
                    d = back(d, need_dx=need_dx)
                else:
                    d = back(d)
            return d

        def backprop(dy, need_dx=True):
            d = back_out(dy)
            dx = run_back(backs, d, need_dx)
            if short_backs:
                ds = run_back(short_backs, d, need_dx)
            else:
                ds = d
            return dx + ds if need_dx else None

        return y, backprop

    def get_config(self):
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": self.kernel_size, "strides": self.strides,
                "separable": self.separable, "batchnorm": self.batchnorm,
                "activation": self.activation, "data_format": self.data_format,
                "momentum": self.momentum, "epsilon": self.epsilon,
                "kernel_initializer": _ser(self.kernel_initializer),
                "kernel_regularizer": _ser(self.kernel_regularizer)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("kernel_size", "strides"):
            if isinstance(config.get(key), list):
                config[key] = tuple(config[key])
        return cls(**config)
