"""The input checks and helpers shared by fastnn.metrics and its
classification module (_classification_metrics.py): host or device arrays,
sample pairing, float64 sample weights, per-sample means, sparse labels.
"""
import math

import numpy

from .backend import backend_of


# --------------------------------------------------------------------- inputs
def _device_ops(*arrays):
    """The device backend (``Ops``) of the first array living on one, else None."""
    for a in arrays:
        if a is not None and not isinstance(a, (numpy.ndarray, list, tuple, int, float)):
            owner = backend_of(a)
            if owner is not None and not owner.is_host:
                return owner
    return None


def _xp(*arrays):
    ops = _device_ops(*arrays)
    return numpy if ops is None else ops.xp


def _to_numpy(x, what):
    """``x`` as a numeric array: host data as a NumPy array, a device array as is."""
    if _device_ops(x) is None:
        x = numpy.asarray(x)
    if x.dtype == object or not (numpy.issubdtype(x.dtype, numpy.number)
                                 or x.dtype == numpy.bool_):
        raise ValueError(f"{what} must be a numeric array, got dtype {x.dtype}")
    return x


def _pair(y_true, y_pred):
    y_true, y_pred = _to_numpy(y_true, "y_true"), _to_numpy(y_pred, "y_pred")
    if y_true.ndim == 0 or y_pred.ndim == 0:
        raise ValueError("y_true and y_pred must have a sample axis, got scalars")
    if y_true.shape[0] != y_pred.shape[0]:
        raise ValueError(f"y_true has {y_true.shape[0]} samples but y_pred has "
                         f"{y_pred.shape[0]}")
    return y_true, y_pred


def _weights(sample_weight, n, ops=None):
    """float64 weights, one per sample, on ``ops`` (a device backend) or the host."""
    if sample_weight is None:
        return numpy.ones(n, dtype=numpy.float64) if ops is None else \
            ops.xp.ones(n, dtype=numpy.float64)
    if ops is not None and _device_ops(sample_weight) is None:
        sample_weight = ops.asarray(numpy.asarray(sample_weight))
    w = _to_numpy(sample_weight, "sample_weight").astype(numpy.float64).reshape(-1)
    if w.shape != (n,):
        raise ValueError(f"sample_weight has {w.size} values for {n} samples")
    return w


def _per_sample(values):
    """Mean over every axis but the first: one value per sample."""
    values = values.astype(numpy.float64)
    return values.reshape(values.shape[0], -1).mean(axis=1) if values.ndim > 1 else values


def _weighted_mean(per_sample, sample_weight):
    ops = _device_ops(per_sample)
    w = _weights(sample_weight, per_sample.shape[0], ops)
    if ops is not None:  # one documented transfer for the plain functions' float
        per_sample, w = ops.to_numpy(per_sample), ops.to_numpy(w)
    total = w.sum()
    return float(per_sample @ w / total) if total else 0.0


def _sparse_labels(y_true, y_pred):
    """Integer labels shaped like ``y_pred.shape[:-1]`` (accepts a trailing 1)."""
    target = y_pred.shape[:-1]
    if y_true.shape != target:
        if y_true.size != math.prod(target):
            raise ValueError(f"sparse labels of shape {y_true.shape} do not match "
                             f"predictions of shape {y_pred.shape} (expected {target})")
        y_true = y_true.reshape(target)
    return y_true
