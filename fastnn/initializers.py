"""Weight initializers (Keras names and semantics). An initializer is called as
``init(shape, dtype)`` and returns a NumPy array drawn from fastnn's seeded
generator (``fastnn.set_seed``). Initial weights are drawn on the host, whatever
the backend: the layer moves them to its backend once, when it is built, so a
seed gives the same initial weights on every backend."""
import math

import numpy

from ._registry import Configurable, lookup
from ._types import Any, Callable, Sequence, Tuple
from .random import get_rng


def compute_fans(shape: Sequence[int]) -> Tuple[int, int]:
    """(fan_in, fan_out) as Keras computes them: a dense kernel is (in, out); a
    higher-rank kernel is ``(*receptive_field, in, out)``.

    Parameters
    ----------
    shape : tuple of int
        A weight's shape.

    Returns
    -------
    tuple of int
        ``(fan_in, fan_out)``.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[:-2]) if len(shape) > 2 else 1
    return shape[-2] * receptive, shape[-1] * receptive


class Initializer(Configurable):
    """Base class: ``init(shape, dtype)`` returns a host NumPy array drawn
    from fastnn's seeded generator.

    Examples
    --------
    >>> from fastnn.initializers import RandomNormal
    >>> w = RandomNormal(stddev=0.01)((784, 64), "float32")  # a NumPy array
    """
    def __call__(self, shape, dtype="float32"):
        raise NotImplementedError


class Zeros(Initializer):
    """All zeros."""

    def __call__(self, shape, dtype="float32"):
        return numpy.zeros(shape, dtype=dtype)


class Ones(Initializer):
    """All ones."""

    def __call__(self, shape, dtype="float32"):
        return numpy.ones(shape, dtype=dtype)


class Constant(Initializer):
    """Every entry ``value``.

    Parameters
    ----------
    value : float, default 0.0
        The value of every entry.
    """
    _config_keys = ("value",)

    def __init__(self, value=0.0):
        self.value = float(value)

    def __call__(self, shape, dtype="float32"):
        return numpy.full(shape, self.value, dtype=dtype)


class RandomNormal(Initializer):
    """Normal draws.

    Parameters
    ----------
    mean : float, default 0.0
        The mean.
    stddev : float, default 0.05
        The standard deviation.
    """
    _config_keys = ("mean", "stddev")

    def __init__(self, mean=0.0, stddev=0.05):
        self.mean, self.stddev = float(mean), float(stddev)

    def __call__(self, shape, dtype="float32"):
        return get_rng().normal(self.mean, self.stddev, size=shape).astype(dtype)


class RandomUniform(Initializer):
    """Uniform draws in ``[minval, maxval)``.

    Parameters
    ----------
    minval : float, default -0.05
        The lower bound.
    maxval : float, default 0.05
        The upper bound.
    """
    _config_keys = ("minval", "maxval")

    def __init__(self, minval=-0.05, maxval=0.05):
        self.minval, self.maxval = float(minval), float(maxval)

    def __call__(self, shape, dtype="float32"):
        return get_rng().uniform(self.minval, self.maxval, size=shape).astype(dtype)


def _truncated_normal(shape, stddev):
    """Normal(0, stddev) redrawn outside two standard deviations."""
    rng = get_rng()
    out = rng.standard_normal(size=shape)
    bad = numpy.abs(out) > 2
    while bad.any():
        out[bad] = rng.standard_normal(size=int(bad.sum()))
        bad = numpy.abs(out) > 2
    return out * stddev


class VarianceScaling(Initializer):
    """Variance ``scale / n`` with n the fan_in, fan_out or their average; drawn
    from a truncated normal or a uniform, as in Keras.

    Parameters
    ----------
    scale : float, default 1.0
        The variance's numerator.
    mode : {"fan_in", "fan_out", "fan_avg"}, default "fan_in"
        Which fan divides it.
    distribution : {"truncated_normal", "untruncated_normal", "uniform"}
        What the values are drawn from (default "truncated_normal").
    """
    _config_keys = ("scale", "mode", "distribution")

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal"):
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise ValueError(f"mode must be fan_in, fan_out or fan_avg, got {mode!r}")
        if distribution not in ("truncated_normal", "untruncated_normal", "uniform"):
            raise ValueError("distribution must be truncated_normal, untruncated_normal or "
                             f"uniform, got {distribution!r}")
        self.scale, self.mode, self.distribution = float(scale), mode, distribution

    def __call__(self, shape, dtype="float32"):
        fan_in, fan_out = compute_fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        var = self.scale / max(1.0, n)
        if self.distribution == "uniform":
            limit = math.sqrt(3.0 * var)
            return get_rng().uniform(-limit, limit, size=shape).astype(dtype)
        if self.distribution == "untruncated_normal":
            return (get_rng().standard_normal(size=shape) * math.sqrt(var)).astype(dtype)
        # 0.8796... is the stddev of a unit normal truncated at +-2.
        return _truncated_normal(shape, math.sqrt(var) / 0.87962566103423978).astype(dtype)


def _variance_scaling_class(name, scale, mode, distribution):
    def __init__(self):
        VarianceScaling.__init__(self, scale, mode, distribution)
    return type(name, (VarianceScaling,), {"__init__": __init__, "_config_keys": (),
                                            "__doc__": f"VarianceScaling({scale}, {mode!r}, {distribution!r})."})


GlorotUniform = _variance_scaling_class("GlorotUniform", 1.0, "fan_avg", "uniform")
GlorotNormal = _variance_scaling_class("GlorotNormal", 1.0, "fan_avg", "truncated_normal")
HeUniform = _variance_scaling_class("HeUniform", 2.0, "fan_in", "uniform")
HeNormal = _variance_scaling_class("HeNormal", 2.0, "fan_in", "truncated_normal")
LecunUniform = _variance_scaling_class("LecunUniform", 1.0, "fan_in", "uniform")
LecunNormal = _variance_scaling_class("LecunNormal", 1.0, "fan_in", "truncated_normal")


class Orthogonal(Initializer):
    """A (scaled) orthogonal matrix: rows or columns orthonormal; higher-rank
    shapes are flattened to (prod(shape[:-1]), shape[-1]).

    Parameters
    ----------
    gain : float, default 1.0
        A factor on the matrix.
    """
    _config_keys = ("gain",)

    def __init__(self, gain=1.0):
        self.gain = float(gain)

    def __call__(self, shape, dtype="float32"):
        if len(shape) < 2:
            raise ValueError(f"Orthogonal needs a shape of rank >= 2, got {tuple(shape)}")
        rows, cols = math.prod(shape[:-1]), shape[-1]
        a = get_rng().standard_normal(size=(max(rows, cols), min(rows, cols)))
        q, r = numpy.linalg.qr(a)
        q *= numpy.sign(numpy.diag(r))  # uniform over orthogonal matrices
        if rows < cols:
            q = q.T
        return (self.gain * q).reshape(shape).astype(dtype)


_TABLE = {
    "zeros": Zeros, "ones": Ones, "constant": Constant,
    "random_normal": RandomNormal, "random_uniform": RandomUniform,
    "normal": RandomNormal, "uniform": RandomUniform,  # Keras's short names
    "variance_scaling": VarianceScaling,
    "glorot_uniform": GlorotUniform, "xavier_uniform": GlorotUniform,
    "glorot_normal": GlorotNormal, "xavier_normal": GlorotNormal,
    "he_uniform": HeUniform, "he_normal": HeNormal,
    "lecun_uniform": LecunUniform, "lecun_normal": LecunNormal,
    "orthogonal": Orthogonal,
}


def get(identifier: Any) -> Callable[..., Any]:
    """An initializer from a name ("glorot_uniform"), an instance, or a callable.

    Parameters
    ----------
    identifier : str, Initializer, dict or callable
        A Keras name (``"zeros"``, ``"glorot_uniform"``, ``"he_normal"``,
        ``"orthogonal"``, ...), an instance or a callable
        ``f(shape, dtype)`` (returned as is), or ``{"class_name", "config"}``.

    Returns
    -------
    callable

    Raises
    ------
    ValueError
        If the name is unknown or ``identifier`` is None.
    """
    if identifier is None:
        raise ValueError("initializer must not be None")
    init = lookup(_TABLE, identifier, "initializer")
    if not callable(init):
        raise TypeError(f"initializer must be a name, an Initializer or a callable, got {init!r}")
    return init
