"""Weight initializers (Keras names and semantics). An initializer is called as
``init(shape, dtype)`` and returns a NumPy array drawn from fastnn's seeded
generator (``fastnn.set_seed``). Initial weights are drawn on the host, whatever
the backend: the layer moves them to its backend once, when it is built, so a
seed gives the same initial weights on every backend."""
import math

import numpy

from ._registry import Configurable, lookup
from .random import get_rng


def compute_fans(shape):
    """(fan_in, fan_out) as Keras computes them: a dense kernel is (in, out); a
    higher-rank kernel is ``(*receptive_field, in, out)``."""
    shape = tuple(int(s) for s in shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[:-2]) if len(shape) > 2 else 1
    return shape[-2] * receptive, shape[-1] * receptive


class Initializer(Configurable):
    def __call__(self, shape, dtype="float32"):
        raise NotImplementedError


class Zeros(Initializer):
    def __call__(self, shape, dtype="float32"):
        return numpy.zeros(shape, dtype=dtype)


class Ones(Initializer):
    def __call__(self, shape, dtype="float32"):
        return numpy.ones(shape, dtype=dtype)


class Constant(Initializer):
    _config_keys = ("value",)

    def __init__(self, value=0.0):
        self.value = float(value)

    def __call__(self, shape, dtype="float32"):
        return numpy.full(shape, self.value, dtype=dtype)


class RandomNormal(Initializer):
    _config_keys = ("mean", "stddev")

    def __init__(self, mean=0.0, stddev=0.05):
        self.mean, self.stddev = float(mean), float(stddev)

    def __call__(self, shape, dtype="float32"):
        return get_rng().normal(self.mean, self.stddev, size=shape).astype(dtype)


class RandomUniform(Initializer):
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
    from a truncated normal or a uniform, as in Keras."""
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
    shapes are flattened to (prod(shape[:-1]), shape[-1])."""
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


def get(identifier):
    """An initializer from a name ("glorot_uniform"), an instance, or a callable."""
    if identifier is None:
        raise ValueError("initializer must not be None")
    init = lookup(_TABLE, identifier, "initializer")
    if not callable(init):
        raise TypeError(f"initializer must be a name, an Initializer or a callable, got {init!r}")
    return init
