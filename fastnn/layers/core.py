"""Core layers: Dense, Activation (and its named forms), Maxout, Flatten, Reshape."""
import math

from .. import activations, constraints
from .._registry import serialize
from .._types import Any, Optional
from .base import Layer


class Dense(Layer):
    """``y = activation(x @ kernel + bias)`` on the last axis of ``x``.

    Forward is one BLAS product plus one fused pass (bias + activation);
    backward fuses the activation derivative into the incoming gradient.

    Parameters
    ----------
    units : int
        The number of output features.
    activation : str, callable or Layer, optional
        Applied to the output: a name (``"relu"``, ``"softmax"``, ...), a
        function of ``fastnn.activations`` or a registered one, or an
        activation layer (``LeakyReLU(0.2)``); None: linear.
    use_bias : bool, default True
        Whether to add ``bias``.
    kernel_initializer : str or Initializer, default "glorot_uniform"
        How ``kernel`` (features, units) starts.
    bias_initializer : str or Initializer, default "zeros"
        How ``bias`` (units,) starts.
    kernel_regularizer, bias_regularizer : str or Regularizer, optional
        Penalties on the weights, added to the loss.
    kernel_constraint, bias_constraint : str or Constraint, optional
        Projections applied after each optimizer update (``fastnn.constraints``:
        ``MaxNorm``, ``NonNeg``, ``UnitNorm``, ``MinMaxNorm``, or their names).
    input_dim : int, optional
        Keras 2's ``Dense(32, input_dim=784)``: ``input_shape=(784,)``.
    **kwargs
        Base layer arguments (``name``, ``dtype``, ``trainable``,
        ``input_shape``, ...; see ``Layer``).

    Notes
    -----
    Input ``(batch, ..., features)``, output ``(batch, ..., units)``.

    Examples
    --------
    >>> from fastnn.layers import Dense
    >>> layer = Dense(64, activation="relu", input_shape=(784,))
    """
    skips_input_grad = True
    supports_fused_output = True
    supports_masking = True  # per step on sequences: the input's mask passes on

    def __init__(self, units: int, activation: Any = None, use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 kernel_regularizer: Any = None, bias_regularizer: Any = None,
                 input_dim: Optional[int] = None, kernel_constraint: Any = None,
                 bias_constraint: Any = None, **kwargs: Any) -> None:
        if input_dim is not None:
            # Keras 2: Dense(32, input_dim=784) is Dense(32, input_shape=(784,)).
            if "input_shape" in kwargs and kwargs["input_shape"] is not None:
                raise ValueError(f"Dense got both input_dim={input_dim!r} and input_shape="
                                 f"{kwargs['input_shape']!r}; give one")
            if not isinstance(input_dim, int) or input_dim < 1:
                raise ValueError(f"Dense input_dim must be a positive integer, got {input_dim!r}")
            kwargs["input_shape"] = (input_dim,)
        super().__init__(**kwargs)
        if not isinstance(units, int) or units < 1:
            raise ValueError(f"Dense units must be a positive integer, got {units!r}")
        self.units = units
        self.activation, self.alpha = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer, self.bias_initializer = kernel_initializer, bias_initializer
        self.kernel_regularizer, self.bias_regularizer = kernel_regularizer, bias_regularizer
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)

    def build(self, input_shape):
        if len(input_shape) < 1 or input_shape[-1] is None:
            raise ValueError(f"Dense layer {self.name!r} needs a known last input dimension, "
                             f"got input shape {tuple(input_shape)}")
        self.add_weight("kernel", (input_shape[-1], self.units), self.kernel_initializer,
                        self.kernel_regularizer, constraint=self.kernel_constraint)
        if self.use_bias:
            self.add_weight("bias", (self.units,), self.bias_initializer, self.bias_regularizer,
                            constraint=self.bias_constraint)
        self.built = True

    def check_input_shape(self, input_shape):
        """Raise if a built Dense cannot take ``input_shape``.

        Parameters
        ----------
        input_shape : tuple
            The per-sample input shape; its last axis must be the kernel's rows.
        """
        fan_in = self.params["kernel"].shape[0]
        if len(input_shape) < 1 or input_shape[-1] != fan_in:
            raise ValueError(f"Dense layer {self.name!r} was built for inputs of shape "
                             f"(None, ..., {fan_in}), got (None, {', '.join(map(str, input_shape))})")

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def forward(self, x, training=False, fused_output=False):
        """Compute ``activation(x @ kernel + bias)`` and its backprop.

        Parameters
        ----------
        x : array
            ``(batch, ..., features)`` on the layer's backend.
        training : bool, default False
            Unused (the same in training and inference).
        fused_output : bool, default False
            Skip the activation (the loss applies it, differentiating both in one step).
        """
        ops = self.ops
        W = self.params["kernel"]
        self._check_input(x, W.shape[0])
        lead = x.shape[:-1]
        x2 = x.reshape(-1, W.shape[0])
        b = self.params.get("bias")
        act = "linear" if fused_output else self.activation
        z = None  # the pre-activation, kept only when the derivative needs it
        if activations.needs_input(act):
            z = ops.dense_forward(x2, W, b, "linear")
            y = activations.forward(act, z, self.alpha, ops)
        else:
            y = ops.dense_forward(x2, W, b, act, self.alpha)

        def backprop(dy, need_dx=True):
            dy = dy.reshape(y.shape)
            a, out = act, y
            if z is not None:  # apply the activation's derivative here, then a linear Dense
                dy, a, out = activations.backward(act, z, y, dy, self.alpha, ops), "linear", z
            if self.trainable:
                dx = ops.dense_backward(x2, W, out, dy, self.grads["kernel"],
                                        self.grads.get("bias"), a, self.alpha, need_dx=need_dx)
            elif need_dx:
                dx = ops.gemm(ops.activation_backward(a, out, dy, self.alpha), W, trans_b=True)
            else:
                dx = None
            return None if dx is None else dx.reshape(x.shape)

        return y.reshape(lead + (self.units,)), backprop

    def get_config(self):
        return {**super().get_config(), "units": self.units,
                "activation": [self.activation, self.alpha], "use_bias": self.use_bias,
                "kernel_initializer": _ser(self.kernel_initializer),
                "bias_initializer": _ser(self.bias_initializer),
                "kernel_regularizer": _ser(self.kernel_regularizer),
                "bias_regularizer": _ser(self.bias_regularizer),
                "kernel_constraint": _ser(self.kernel_constraint),
                "bias_constraint": _ser(self.bias_constraint)}


def _ser(obj):
    return obj if obj is None or isinstance(obj, str) else serialize(obj)


class Activation(Layer):
    """Applies an activation: ``Activation("relu")``, or any ``activation=``
    value a Dense takes (a fastnn.activations function, a registered one).

    Parameters
    ----------
    activation : str, callable or Layer
        As ``Dense``'s ``activation``.
    alpha : float, optional
        The activation's parameter where it has one (leaky_relu's slope, elu's alpha).
    **kwargs
        Base layer arguments (``name``, ``dtype``, ``trainable``,
        ``input_shape``, ...; see ``Layer``).
    """
    supports_fused_output = True
    supports_masking = True

    def __init__(self, activation, alpha=None, **kwargs):
        super().__init__(**kwargs)
        self.activation, self.alpha = activations.get(activation, alpha)

    def forward(self, x, training=False, fused_output=False):
        """Apply the activation; see ``Layer.forward``.

        Parameters
        ----------
        x : array
            Any shape.
        training : bool, default False
            Unused.
        fused_output : bool, default False
            Return ``x`` unchanged (the loss applies the activation).
        """
        self._check_input(x)
        if fused_output:
            return x, lambda dy: dy
        ops = self.ops
        if activations.needs_input(self.activation):
            y = activations.forward(self.activation, x, self.alpha, ops)
            return y, lambda dy: activations.backward(self.activation, x, y, dy, self.alpha, ops)
        y = ops.activation_forward(self.activation, x, self.alpha)
        return y, lambda dy: ops.activation_backward(self.activation, y, dy, self.alpha)

    def get_config(self):
        return {**super().get_config(), "activation": self.activation, "alpha": self.alpha}


class ReLU(Activation):
    """``max(x, 0)`` (Keras's ReLU layer).

    Parameters
    ----------
    **kwargs
        Base layer arguments (``name``, ``dtype``, ``trainable``,
        ``input_shape``, ...; see ``Layer``).
    """
    def __init__(self, **kwargs):
        kwargs.pop("activation", None), kwargs.pop("alpha", None)
        super().__init__("relu", **kwargs)


class LeakyReLU(Activation):
    """``x`` for ``x >= 0``, ``negative_slope * x`` below (Keras's LeakyReLU).

    Parameters
    ----------
    negative_slope : float, default 0.3
        The slope for ``x < 0`` (Keras 2's ``alpha=`` is accepted too).
    **kwargs
        Base layer arguments (``name``, ``dtype``, ``trainable``,
        ``input_shape``, ...; see ``Layer``).
    """
    def __init__(self, negative_slope=0.3, **kwargs):
        kwargs.pop("activation", None)
        negative_slope = kwargs.pop("alpha", negative_slope)
        super().__init__("leaky_relu", negative_slope, **kwargs)


class ELU(Activation):
    """``x`` for ``x > 0``, ``alpha * (exp(x) - 1)`` below (Keras's ELU).

    Parameters
    ----------
    alpha : float, default 1.0
        The scale of the negative part.
    **kwargs
        Base layer arguments (``name``, ``dtype``, ``trainable``,
        ``input_shape``, ...; see ``Layer``).
    """
    def __init__(self, alpha=1.0, **kwargs):
        kwargs.pop("activation", None)
        super().__init__("elu", alpha, **kwargs)


class Softmax(Activation):
    """Softmax over the last axis (Keras's Softmax layer).

    Parameters
    ----------
    **kwargs
        Base layer arguments (``name``, ``dtype``, ``trainable``,
        ``input_shape``, ...; see ``Layer``).
    """
    def __init__(self, **kwargs):
        kwargs.pop("activation", None), kwargs.pop("alpha", None)
        super().__init__("softmax", **kwargs)


class Maxout(Layer):
    """Maxout (Goodfellow et al. 2013): splits the last axis into ``num_units``
    groups of consecutive features and keeps each group's maximum. Put it after
    a ``Dense(num_units * pieces)`` to get a maxout unit.

    Parameters
    ----------
    num_units : int
        The number of output features; the input's last axis must be a multiple.
    **kwargs
        Base layer arguments (``name``, ``dtype``, ``trainable``,
        ``input_shape``, ...; see ``Layer``).
    """

    def __init__(self, num_units, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(num_units, int) or num_units < 1:
            raise ValueError(f"Maxout num_units must be a positive integer, got {num_units!r}")
        self.num_units = num_units

    def build(self, input_shape):
        if input_shape[-1] % self.num_units:
            raise ValueError(f"Maxout layer {self.name!r}: input features {input_shape[-1]} are "
                             f"not a multiple of num_units={self.num_units}")
        self.built = True

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.num_units,)

    def forward(self, x, training=False):
        self._check_input(x)
        if x.shape[-1] % self.num_units:
            raise ValueError(f"Maxout layer {self.name!r}: input features {x.shape[-1]} are not "
                             f"a multiple of num_units={self.num_units}")
        ops = self.ops
        pieces = x.shape[-1] // self.num_units
        x2 = ops.xp.ascontiguousarray(x.reshape(-1, x.shape[-1]))
        y, idx = ops.maxout_forward(x2, pieces)
        out_shape = x.shape[:-1] + (self.num_units,)
        return y.reshape(out_shape), lambda dy: ops.maxout_backward(
            ops.xp.ascontiguousarray(dy.reshape(y.shape)), idx, pieces).reshape(x.shape)

    def get_config(self):
        return {**super().get_config(), "num_units": self.num_units}


class Flatten(Layer):
    """(batch, d1, d2, ...) -> (batch, d1 * d2 * ...)."""

    def compute_output_shape(self, input_shape):
        return (math.prod(input_shape),)

    def forward(self, x, training=False):
        return x.reshape(x.shape[0], -1), lambda dy: dy.reshape(x.shape)


class Reshape(Layer):
    """Reshape each sample to ``target_shape`` (one entry may be -1).

    Parameters
    ----------
    target_shape : tuple of int
        The per-sample output shape.
    **kwargs
        Base layer arguments (``name``, ``dtype``, ``trainable``,
        ``input_shape``, ...; see ``Layer``).
    """

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        self.target_shape = tuple(int(d) for d in target_shape)
        if sum(d == -1 for d in self.target_shape) > 1 or any(d == 0 or d < -1 for d in self.target_shape):
            raise ValueError(f"Reshape target_shape may hold one -1 and otherwise positive "
                             f"sizes, got {self.target_shape}")

    def compute_output_shape(self, input_shape):
        n = math.prod(input_shape)
        known = math.prod(d for d in self.target_shape if d != -1)
        shape = tuple(n // known if d == -1 else d for d in self.target_shape)
        if math.prod(shape) != n:
            raise ValueError(f"Reshape layer {self.name!r} cannot reshape input of shape "
                             f"{tuple(input_shape)} ({n} values) to {self.target_shape}")
        return shape

    def forward(self, x, training=False):
        shape = self.compute_output_shape(x.shape[1:])
        return x.reshape((x.shape[0],) + shape), lambda dy: dy.reshape(x.shape)

    def get_config(self):
        return {**super().get_config(), "target_shape": list(self.target_shape)}
