"""Weight constraints (Keras's MaxNorm, NonNeg, UnitNorm, MinMaxNorm): a
function of a weight that returns the projected weight. A layer takes them as
``kernel_constraint=`` / ``bias_constraint=`` (and its other weights' names);
the model applies each to its weight after every optimizer update, as Keras
does, so they shape the weights without entering the gradient.

They compute on the backend of their weight (``ops_for``), so a device
backend needs no change here. No layer logic, no optimizer logic.
"""
from ._registry import Configurable, lookup
from ._types import Any, Array, ConstraintSpec, Dict, Optional, Sequence, Union
from .backend import ops_for

# Keras's backend epsilon: keeps a zero column from dividing by zero.
EPSILON = 1e-7


def _axis(axis):
    """An int or a tuple of ints (Keras accepts a list; a config stores a list)."""
    if isinstance(axis, (list, tuple)):
        if not axis or not all(isinstance(a, int) for a in axis):
            raise ValueError(f"constraint axis must be an int or a list of ints, got {axis!r}")
        return tuple(axis)
    if not isinstance(axis, int):
        raise ValueError(f"constraint axis must be an int or a list of ints, got {axis!r}")
    return axis


def _check_axis(name, w, axis):
    for a in (axis if isinstance(axis, tuple) else (axis,)):
        if not -w.ndim <= a < w.ndim:
            raise ValueError(f"{name}: axis {a} is out of range for a weight of shape "
                             f"{tuple(w.shape)}")


class Constraint(Configurable):
    def __call__(self, w: Array) -> Array:
        """The constrained weight, a new array shaped like ``w``."""
        raise NotImplementedError


class _NormConstraint(Constraint):
    """Rescales the slices of ``w`` along ``axis`` (sums of squares over
    ``axis``, one norm per remaining index) to norms from ``_target``."""

    def __init__(self, axis: Union[int, Sequence[int]] = 0) -> None:
        self.axis = _axis(axis)

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config["axis"] = list(self.axis) if isinstance(self.axis, tuple) else self.axis
        return config

    def _norms(self, w):
        _check_axis(type(self).__name__, w, self.axis)
        xp = ops_for(w).xp
        return xp.sqrt(xp.sum(xp.square(w), axis=self.axis, keepdims=True))

    def _target(self, xp, norms):  # the norms each subclass rescales to
        raise NotImplementedError

    def __call__(self, w: Array) -> Array:
        norms = self._norms(w)
        scale = self._target(ops_for(w).xp, norms) / (w.dtype.type(EPSILON) + norms)
        return w * scale.astype(w.dtype, copy=False)


class MaxNorm(_NormConstraint):
    """Each slice's L2 norm over ``axis`` at most ``max_value``: ``w * clip(n,
    0, max_value) / (eps + n)``. For a Dense kernel (in, out) ``axis=0`` bounds
    each unit's incoming weights; for a Conv2D kernel (kh, kw, in, out) use
    ``axis=[0, 1, 2]``."""
    _config_keys = ("max_value", "axis")

    def __init__(self, max_value: float = 2, axis: Union[int, Sequence[int]] = 0) -> None:
        if not max_value > 0:
            raise ValueError(f"MaxNorm max_value must be positive, got {max_value!r}")
        super().__init__(axis)
        self.max_value = max_value

    def _target(self, xp, norms):
        return xp.clip(norms, 0, self.max_value)


class UnitNorm(_NormConstraint):
    """Each slice's L2 norm over ``axis`` one: ``w / (eps + n)``."""
    _config_keys = ("axis",)

    def _target(self, xp, norms):
        return xp.ones_like(norms)

    def __call__(self, w: Array) -> Array:
        norms = self._norms(w)
        return w / (w.dtype.type(EPSILON) + norms)


class MinMaxNorm(_NormConstraint):
    """Each slice's L2 norm over ``axis`` moved towards [min_value, max_value]:
    ``w * (rate * clip(n, min_value, max_value) + (1 - rate) * n) / (eps + n)``;
    ``rate=1`` enforces the range at once, a smaller rate moves part way each
    step."""
    _config_keys = ("min_value", "max_value", "rate", "axis")

    def __init__(self, min_value: float = 0.0, max_value: float = 1.0, rate: float = 1.0,
                 axis: Union[int, Sequence[int]] = 0) -> None:
        if not 0 <= min_value <= max_value:
            raise ValueError(f"MinMaxNorm needs 0 <= min_value <= max_value, got "
                             f"min_value={min_value!r}, max_value={max_value!r}")
        if not 0 <= rate <= 1:
            raise ValueError(f"MinMaxNorm rate must be in [0, 1], got {rate!r}")
        super().__init__(axis)
        self.min_value, self.max_value, self.rate = min_value, max_value, rate

    def _target(self, xp, norms):
        return self.rate * xp.clip(norms, self.min_value, self.max_value) + \
            (1 - self.rate) * norms


class NonNeg(Constraint):
    """Negative weights set to zero: ``w * (w >= 0)``."""

    def __call__(self, w: Array) -> Array:
        return w * (w >= 0).astype(w.dtype)


_TABLE = {"max_norm": MaxNorm, "maxnorm": MaxNorm, "non_neg": NonNeg, "nonneg": NonNeg,
          "unit_norm": UnitNorm, "unitnorm": UnitNorm, "min_max_norm": MinMaxNorm,
          "minmaxnorm": MinMaxNorm}


def get(identifier: ConstraintSpec) -> Optional[Constraint]:
    """A constraint from None, a name ("max_norm"), an instance or a config dict."""
    if identifier is None:
        return None
    constraint = lookup(_TABLE, identifier, "constraint")
    if not isinstance(constraint, Constraint):
        raise TypeError(f"constraint must be a name or a fastnn.constraints.Constraint, got "
                        f"{constraint!r}")
    return constraint
