"""Normalization layers: BatchNormalization (Keras's arguments, defaults and
weights). The arithmetic is the backend's (``ops.batchnorm_forward`` /
``ops.batchnorm_backward`` over a (rows, features) view, or their ``_strided``
forms over an (outer, features, inner) view when the feature axes are one run
that is not last, as channels_first's); this module only picks the view
(moving the feature axes last where neither fits) and keeps the moving
statistics."""
import math

from .. import constraints
from .._types import (Any, ConstraintSpec, InitializerSpec, RegularizerSpec, Sequence,
                      Union)
from .base import Layer
from .core import _ser


class BatchNormalization(Layer):
    """Normalizes each feature (the ``axis`` entries of an input) to zero mean
    and unit variance, then scales by ``gamma`` and shifts by ``beta``.

    Training (``training=True`` and the layer trainable) normalizes with the
    batch's mean and biased variance and updates the moving statistics,
    ``moving = momentum * moving + (1 - momentum) * batch_statistic``;
    inference, and a frozen layer (``trainable=False``, as Keras 2.1+),
    normalize with the moving statistics. ``axis`` is an int or a list of
    ints (batch axis excluded: ``axis=1`` for channels_first images); with
    several axes the weights have the shape of those axes' sizes, in order.
    Weights: ``gamma`` (if ``scale``), ``beta`` (if ``center``),
    ``moving_mean``, ``moving_variance`` (the last two non-trainable).
    A mask on the input passes through; it does not change the statistics.

    Parameters
    ----------
    axis : int or list of int, default -1
        The feature axis (or axes) normalized per entry.
    momentum : float, default 0.99
        The moving statistics' momentum.
    epsilon : float, default 1e-3
        Added to the variance.
    center : bool, default True
        Learn ``beta``.
    scale : bool, default True
        Learn ``gamma``.
    beta_initializer, gamma_initializer : str or Initializer
        Defaults "zeros" and "ones".
    moving_mean_initializer, moving_variance_initializer : str or Initializer
        Defaults "zeros" and "ones".
    beta_regularizer, gamma_regularizer : str or Regularizer, optional
        Penalties on ``beta`` and ``gamma``.
    beta_constraint, gamma_constraint : str or Constraint, optional
        Projections applied after each optimizer update (``fastnn.constraints``:
        ``MaxNorm``, ``NonNeg``, ``UnitNorm``, ``MinMaxNorm``, or their names).
    **kwargs
        Base layer arguments (``name``, ``dtype``, ``trainable``,
        ``input_shape``, ...; see ``Layer``).
    """
    supports_masking = True
    skips_input_grad = True

    def __init__(self, axis: Union[int, Sequence[int]] = -1, momentum: float = 0.99,
                 epsilon: float = 1e-3, center: bool = True, scale: bool = True,
                 beta_initializer: InitializerSpec = "zeros",
                 gamma_initializer: InitializerSpec = "ones",
                 moving_mean_initializer: InitializerSpec = "zeros",
                 moving_variance_initializer: InitializerSpec = "ones",
                 beta_regularizer: RegularizerSpec = None,
                 gamma_regularizer: RegularizerSpec = None, beta_constraint: ConstraintSpec = None,
                 gamma_constraint: ConstraintSpec = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        axes = list(axis) if isinstance(axis, (list, tuple)) else [axis]
        if not axes or not all(isinstance(a, int) and not isinstance(a, bool) for a in axes):
            raise ValueError(f"BatchNormalization layer {self.name!r}: axis must be an int or "
                             f"a non-empty list of ints, got {axis!r}")
        if len(set(axes)) != len(axes):
            raise ValueError(f"BatchNormalization layer {self.name!r}: axis {axis!r} repeats "
                             "an axis")
        if not isinstance(momentum, (int, float)) or not 0.0 <= momentum <= 1.0:
            raise ValueError(f"BatchNormalization layer {self.name!r}: momentum must lie in "
                             f"[0, 1], got {momentum!r}")
        if not isinstance(epsilon, (int, float)) or not epsilon > 0:
            raise ValueError(f"BatchNormalization layer {self.name!r}: epsilon must be "
                             f"positive, got {epsilon!r}")
        self.axis = axis if isinstance(axis, int) else list(axis)
        self._axes_arg = axes
        self.momentum, self.epsilon = float(momentum), float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self.beta_initializer, self.gamma_initializer = beta_initializer, gamma_initializer
        self.moving_mean_initializer = moving_mean_initializer
        self.moving_variance_initializer = moving_variance_initializer
        self.beta_regularizer, self.gamma_regularizer = beta_regularizer, gamma_regularizer
        self.beta_constraint = constraints.get(beta_constraint)
        self.gamma_constraint = constraints.get(gamma_constraint)
        self._axes = None       # feature axes of the full input (batch axis 0), ascending
        self._ndim = None       # rank of the input, batch axis included

    # ------------------------------------------------------------------ shapes
    def _resolve_axes(self, input_shape):
        """The feature axes of a full (batch-first) input of per-sample shape
        ``input_shape``, positive and ascending; a ValueError naming the layer
        for an axis the input does not have or the batch axis."""
        ndim = len(input_shape) + 1
        axes = []
        for a in self._axes_arg:
            p = a + ndim if a < 0 else a
            if not 1 <= p < ndim:
                raise ValueError(
                    f"BatchNormalization layer {self.name!r}: axis {self.axis!r} is out of "
                    f"range for input of shape (None, {', '.join(map(str, input_shape))}); "
                    f"expected axes in 1..{ndim - 1} or -{ndim - 1}..-1 (the batch axis 0 "
                    "is not a feature axis)")
            axes.append(p)
        if len(set(axes)) != len(axes):
            raise ValueError(f"BatchNormalization layer {self.name!r}: axis {self.axis!r} names "
                             f"one axis twice for an input of rank {ndim}")
        return sorted(axes)

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        axes = self._resolve_axes(input_shape)
        shape = tuple(input_shape[a - 1] for a in axes)
        if any(d is None for d in shape):
            raise ValueError(f"BatchNormalization layer {self.name!r} needs known sizes on its "
                             f"axis {self.axis!r}, got input shape (None, "
                             f"{', '.join(map(str, input_shape))})")
        self._axes, self._ndim = axes, len(input_shape) + 1
        if self.scale:
            self.add_weight("gamma", shape, self.gamma_initializer, self.gamma_regularizer,
                            constraint=self.gamma_constraint)
        if self.center:
            self.add_weight("beta", shape, self.beta_initializer, self.beta_regularizer,
                            constraint=self.beta_constraint)
        self.add_weight("moving_mean", shape, self.moving_mean_initializer, trainable=False)
        self.add_weight("moving_variance", shape, self.moving_variance_initializer,
                        trainable=False)
        self.built = True

    def _expected(self):
        """The input shape this layer was built for, as text (None elsewhere)."""
        dims = ["None"] * self._ndim
        for a, d in zip(self._axes, self.params["moving_mean"].shape):
            dims[a] = str(d)
        return f"({', '.join(dims)})"

    def check_input_shape(self, input_shape):
        input_shape = tuple(input_shape)
        shape = self.params["moving_mean"].shape
        if (len(input_shape) + 1 != self._ndim
                or tuple(input_shape[a - 1] for a in self._axes) != shape):
            raise ValueError(f"BatchNormalization layer {self.name!r} was built for inputs of "
                             f"shape {self._expected()}, got (None, "
                             f"{', '.join(map(str, input_shape))})")

    # ---------------------------------------------------------------- calling
    def forward(self, x, training=False):
        self._check_input(x)
        if x.ndim != self._ndim or tuple(x.shape[a] for a in self._axes) != \
                self.params["moving_mean"].shape:
            raise ValueError(f"BatchNormalization layer {self.name!r} was built for inputs of "
                             f"shape {self._expected()}, got {tuple(x.shape)}")
        ops, xp = self.ops, self.ops.xp
        p = self.params
        shape = p["moving_mean"].shape
        n = math.prod(shape)
        # The feature axes last, in order: a reshape when they already are
        # (channels_last); a reshape to (outer, n, inner) for the strided kernels
        # when they are one run of axes elsewhere (channels_first's axis=1);
        # else one transpose each way.
        rest = [a for a in range(x.ndim) if a not in self._axes]
        perm = rest + self._axes
        moved = perm != list(range(x.ndim))
        first, last = self._axes[0], self._axes[-1]
        strided = moved and self._axes == list(range(first, last + 1))
        if strided:
            x3_shape = (math.prod(x.shape[:first]), n, math.prod(x.shape[last + 1:]))
            xt = xp.ascontiguousarray(x)
            x2 = xt.reshape(x3_shape)
            forward_op, backward_op = ops.batchnorm_forward_strided, ops.batchnorm_backward_strided
        else:
            xt = xp.ascontiguousarray(xp.transpose(x, perm)) if moved else x
            x2 = xt.reshape(-1, n)
            forward_op, backward_op = ops.batchnorm_forward, ops.batchnorm_backward
        gamma = p["gamma"].reshape(n) if self.scale else None
        beta = p["beta"].reshape(n) if self.center else None
        batch_stats = bool(training) and self.trainable
        if batch_stats:
            y2, mean, var = forward_op(x2, gamma, beta, self.epsilon)
            m = self.momentum
            for name, stat in (("moving_mean", mean), ("moving_variance", var)):
                moving = p[name]
                moving *= m
                moving += (1.0 - m) * stat.reshape(shape)
        else:
            mean = p["moving_mean"].reshape(n)
            var = p["moving_variance"].reshape(n)
            y2 = forward_op(x2, gamma, beta, self.epsilon, mean, var)[0]
        inverse = [perm.index(a) for a in range(x.ndim)]

        def back(t):  # the kernel's layout back to the input's
            t = t.reshape(xt.shape)
            return xp.ascontiguousarray(xp.transpose(t, inverse)) if moved and not strided \
                else t

        def backprop(dy, need_dx=True):
            if strided:
                dy2 = xp.ascontiguousarray(dy).reshape(x2.shape)
            else:
                dyt = xp.ascontiguousarray(xp.transpose(dy, perm)) if moved else dy
                dy2 = dyt.reshape(-1, n)
            grads = self.grads if self.trainable else {}
            dgamma = grads["gamma"].reshape(n) if "gamma" in grads else None
            dbeta = grads["beta"].reshape(n) if "beta" in grads else None
            dx2 = backward_op(x2, dy2, gamma, mean, var, self.epsilon, dgamma, dbeta,
                              batch_stats=batch_stats, need_dx=need_dx)
            return None if dx2 is None else back(dx2)

        return back(y2), backprop

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "momentum": self.momentum,
                "epsilon": self.epsilon, "center": self.center, "scale": self.scale,
                "beta_initializer": _ser(self.beta_initializer),
                "gamma_initializer": _ser(self.gamma_initializer),
                "moving_mean_initializer": _ser(self.moving_mean_initializer),
                "moving_variance_initializer": _ser(self.moving_variance_initializer),
                "beta_regularizer": _ser(self.beta_regularizer),
                "gamma_regularizer": _ser(self.gamma_regularizer),
                "beta_constraint": _ser(self.beta_constraint),
                "gamma_constraint": _ser(self.gamma_constraint)}
