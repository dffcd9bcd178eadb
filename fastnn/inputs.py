"""What the model entry points (fit, evaluate, predict, train_on_batch) accept:
checks of user data (numbers, finite, shapes, labels, weights) done on the
host, and the one documented move of it to a model's backend. No graph and no
training logic here."""
import numpy

from .backend import backend_of


def _keeps_device(x, ops):
    """Whether outputs for input ``x`` stay on the device: only when the input
    was already an array of this (device) backend."""
    if ops.is_host:
        return False
    xs = x if isinstance(x, (list, tuple)) else [x]
    return any(ops.is_native(a) for a in xs)


def _host_array(a, what, ops):
    """``a`` (NumPy data, or something NumPy can read) as a host NumPy array;
    an array of another device backend is refused, naming both backends."""
    if isinstance(a, numpy.ndarray):
        return a
    owner = backend_of(a)
    if owner is not None:
        ops.check_native(a, what)
    try:
        arr = numpy.asarray(a)
    except TypeError:  # a device array that refuses implicit host conversion
        ops.check_native(a, what)
        raise
    if arr.dtype == object and not isinstance(a, (list, tuple)):
        ops.check_native(a, what)  # an array type of a library fastnn does not run on
    return arr


def _check_numeric(a, what):
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{what} must hold numbers, got dtype {a.dtype}")


_CHECK_CHUNK = 1 << 20  # elements per finiteness pass: bounds its bool temporary at 1 MB


def _row_chunks(a):
    """``a`` in blocks of whole samples of about ``_CHECK_CHUNK`` elements, as views:
    a check over an input (possibly a memory-mapped file larger than memory) then
    needs a bounded temporary, not one the size of the data."""
    rows = max(1, _CHECK_CHUNK // max(1, a.size // max(1, a.shape[0])))
    for start in range(0, a.shape[0], rows):
        yield a[start:start + rows]


def _as_float_array(a, dtype, what, shape, ops):
    """Validate and cast one input array: numeric, finite, the right shape.
    Integer and other float types are cast to the model's dtype (documented).
    Host data is checked on the host, then moved to ``ops`` once."""
    on_device = ops.is_native(a) and not ops.is_host
    if not ops.is_native(a):
        a = _host_array(a, what, ops)
    _check_numeric(a, what)
    if a.ndim == 0:
        raise ValueError(f"{what} must have a batch axis, got a scalar")
    if shape is not None and tuple(a.shape[1:]) != tuple(shape):
        raise ValueError(f"{what} expects samples of shape {tuple(shape)} (array shape "
                         f"(n, {', '.join(map(str, shape))})), got array of shape {tuple(a.shape)}")
    if on_device:
        a = ops.asarray(a, dtype=dtype)
        finite = bool(ops.to_numpy(ops.xp.isfinite(a).all())) if a.size else True  # one fetch
    else:
        a = numpy.asarray(a, dtype=dtype)  # no copy when a already has the dtype (a memmap too)
        finite = a.dtype.kind != "f" or all(numpy.isfinite(c).all() for c in _row_chunks(a))
    if not finite:
        bad = int(ops.to_numpy((~ops.xp.isfinite(a)).sum()) if on_device
                  else sum(int((~numpy.isfinite(c)).sum()) for c in _row_chunks(a)))
        raise ValueError(f"{what} contains {bad} NaN or infinite value(s); clean the data first")
    return a if on_device else ops.asarray(a, dtype=dtype)


def _as_input_array(a, tensor, what, ops):
    """One model input: float inputs as ``_as_float_array``; integer inputs
    (indices for an Embedding) stay integers, checked for shape only."""
    if tensor.dtype.kind == "f":
        return _as_float_array(a, tensor.dtype, what, tensor.shape, ops)
    if not ops.is_native(a):
        a = _host_array(a, what, ops)
    _check_numeric(a, what)
    if a.ndim == 0 or tuple(a.shape[1:]) != tuple(tensor.shape):
        raise ValueError(f"{what} expects samples of shape {tuple(tensor.shape)}, got array of "
                         f"shape {tuple(a.shape)}")
    if a.dtype.kind == "f":
        xp = numpy if isinstance(a, numpy.ndarray) else ops.xp  # checked where it lives
        whole = xp.all(a == xp.round(a))
        if a.size and not bool(whole if xp is numpy else ops.to_numpy(whole)):
            raise ValueError(f"{what} is an integer input but got non-integer values")
    return ops.asarray(a, dtype=tensor.dtype)


def _label_probe(y, out_shape):
    """A stand-in prediction of the right shape (no memory) for label validation."""
    return numpy.broadcast_to(numpy.float32(0), (y.shape[0],) + tuple(out_shape))


def _check_batch_size(batch_size):
    if (isinstance(batch_size, bool) or not isinstance(batch_size, (int, numpy.integer))
            or batch_size < 1):
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")


def _sample_weights(sample_weight, class_weight, y, n, ops, what="sample_weight"):
    """One float weight per sample (or None), on the backend: ``sample_weight``
    times the weight of each sample's class in ``class_weight``, both checked.
    ``sample_weight`` may be host data or an array of the model's backend,
    which is not moved to the host (its check costs one fetch of a flag)."""
    sw = None
    on_device = sample_weight is not None and ops.is_native(sample_weight) and not ops.is_host
    if on_device:
        # Weights already on the device stay there: shape from the metadata,
        # the values checked there with one fetch (as a device x is).
        if tuple(sample_weight.shape) != (n,):
            raise ValueError(f"{what} must have shape ({n},), one weight per sample, got "
                             f"{tuple(sample_weight.shape)}")
        _check_numeric(sample_weight, what)
        xp = ops.xp
        sw = ops.asarray(sample_weight, dtype=y.dtype if y.dtype.kind == "f" else "float32")
        if n and not bool(ops.to_numpy(xp.logical_and(xp.isfinite(sw), sw >= 0).all())):
            raise ValueError(f"{what} must be finite and non-negative; it holds NaN, infinite "
                             f"or negative weights")
    elif sample_weight is not None:
        if isinstance(sample_weight, (list, tuple)) or numpy.ndim(sample_weight) != 1:
            arr = numpy.asarray(sample_weight)
            if arr.ndim != 1:
                raise ValueError(f"{what} must be a 1-D array of {n} weights (one per "
                                 f"sample), got shape {arr.shape}")
        sw = numpy.asarray(sample_weight, dtype=numpy.float64)
        if sw.shape != (n,):
            raise ValueError(f"{what} must have shape ({n},), one weight per sample, got "
                             f"{sw.shape}")
        if not numpy.isfinite(sw).all() or (sw < 0).any():
            raise ValueError(f"{what} must be finite and non-negative; got "
                             f"{int((~numpy.isfinite(sw)).sum())} NaN/inf and "
                             f"{int((sw < 0).sum())} negative")
    if class_weight is not None:
        if not isinstance(class_weight, dict):
            raise TypeError(f"class_weight must be a dict {{class index: weight}}, got "
                            f"{type(class_weight).__name__}")
        yn = ops.to_numpy(y)
        if yn.ndim > 1 and yn.shape[-1] > 1:
            labels = yn.argmax(axis=-1)
        else:
            flat = yn.reshape(n)
            if flat.dtype.kind == "f" and not (numpy.isfinite(flat).all()
                                               and (flat == numpy.round(flat)).all()):
                raise ValueError("class_weight needs class labels as targets (integers or "
                                 "one-hot rows); these targets hold non-integer values, as a "
                                 "regression's do: pass sample_weight instead")
            labels = flat
        labels = labels.astype(numpy.int64)
        if n and labels.min() < 0:
            raise ValueError(f"class_weight: the targets hold a negative class {labels.min()}")
        cw = numpy.ones(int(labels.max()) + 1 if n else 0)
        for k, w in class_weight.items():
            if isinstance(k, bool) or not isinstance(k, (int, numpy.integer)) or k < 0:
                raise ValueError(f"class_weight keys must be class indices (integers >= 0), "
                                 f"got {k!r}")
            w = float(w)
            if not (numpy.isfinite(w) and w >= 0):
                raise ValueError(f"class_weight[{k}] must be finite and non-negative, got {w}")
            if k < len(cw):
                cw[k] = w
        cwv = cw[labels]
        if on_device:
            return sw * ops.asarray(cwv, dtype=sw.dtype)
        sw = cwv if sw is None else sw * cwv
    if on_device:
        return sw
    return None if sw is None else ops.asarray(sw, dtype=y.dtype if y.dtype.kind == "f" else "float32")


def _take(arrays, idx):
    """Rows ``idx`` of each array in a list (None stays None)."""
    return [None if a is None else a[idx] for a in arrays]
