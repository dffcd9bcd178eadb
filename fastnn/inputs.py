"""What the model entry points (compile, fit, evaluate, predict,
train_on_batch) accept: checks of user data (numbers, finite, shapes, labels,
weights) done on the host, and the one documented move of it to a model's
backend; ``_ModelInputs``, ``Model``'s side of them (data matched to the
model's inputs and outputs, fit's validation split); compile's per-output
arguments. No graph running and no training logic here."""
import math

import numpy

from . import losses as losses_mod
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


def _check_verbose(verbose):
    """evaluate/predict verbosity: 0, 1, 2 or "auto" (= 1)."""
    if verbose == "auto":
        return 1
    if isinstance(verbose, bool) or verbose not in (0, 1, 2):
        raise ValueError(f"verbose must be 0, 1, 2 or 'auto', got {verbose!r}")
    return int(verbose)


def _spread(value, names, what, missing=None, spread_one=True):
    """A compile argument as one value per output: a list (one per output), a
    dict by output name (absent names get ``missing``), or one value for every
    output (``spread_one``)."""
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(names))
        if unknown:
            raise ValueError(f"compile: {what} names {unknown}, which are not outputs of the "
                             f"model; the outputs are {names}")
        return [value.get(name, missing) for name in names]
    if isinstance(value, (list, tuple)):
        if len(value) != len(names):
            raise ValueError(f"compile: {what} is a list of {len(value)} but the model has "
                             f"{len(names)} output(s) {names}")
        return list(value)
    if not spread_one and len(names) > 1:
        raise ValueError(f"compile: {what} must be a list or a dict by output name for a "
                         f"model with {len(names)} outputs, got {value!r}")
    return [value] * len(names)


def _metric_specs(metrics, names):
    """Metric specs: a flat list for one output; for several, one list per
    output (from a list of lists, a dict by output name, or a flat list that
    applies to every output)."""
    if len(names) == 1:
        if isinstance(metrics, dict):
            metrics = _spread(metrics, names, "metrics", missing=[])[0]
        specs = list(metrics or [])
        if specs and isinstance(specs[0], (list, tuple)) and len(specs) == 1:
            specs = list(specs[0])
        return specs
    if metrics is None:
        return [[] for _ in names]
    if isinstance(metrics, dict):
        per = _spread(metrics, names, "metrics", missing=[])
    elif isinstance(metrics, (list, tuple)) and metrics and \
            all(m is None or isinstance(m, (list, tuple)) for m in metrics):
        per = _spread(list(metrics), names, "metrics")
    else:
        per = [list(metrics)] * len(names)
    return [[] if m is None else list(m) if isinstance(m, (list, tuple)) else [m] for m in per]


class _ModelInputs:
    """``Model``'s side of the checks (a base class of ``Model``): ``x``, ``y``
    and sample weights read against the model's inputs and outputs, checked
    and moved to its backend once per call, and ``fit``'s validation split."""

    def _split_inputs(self, x):
        """x as a list of one array per model input. A list or tuple of arrays
        is one array per input; one of plain Python data (numbers, nested
        lists) is the samples of a one-input model, as NumPy would read it. A
        dict is keyed by the inputs' names."""
        if isinstance(x, dict) and self._graph_ready:
            names = [t.name for t in self.inputs]
            unknown = sorted(set(x) - set(names))
            if unknown or len(x) != len(names):
                raise ValueError(f"x as a dict must have one array per model input, keyed by "
                                 f"the input names {names}; got keys {sorted(x)}")
            return [x[name] for name in names]
        if not isinstance(x, (list, tuple)):
            return [x]
        one_input = not self._graph_ready or len(self.inputs) == 1
        if one_input and len(x) and not any(hasattr(e, "shape") for e in x):
            return [x]
        return list(x)

    def _prepare_x(self, x):
        xs = self._split_inputs(x)
        if not self._graph_ready:
            arr = xs[0] if self.ops.is_native(xs[0]) else _host_array(xs[0], "x", self.ops)
            self.build(arr.shape[1:])
        if len(xs) != len(self.inputs):
            raise ValueError(f"model {self.name!r} has {len(self.inputs)} inputs, got {len(xs)} arrays")
        out = []
        for t, a in zip(self.inputs, xs):
            out.append(_as_input_array(a, t, f"input {t.name!r}", self.ops))
        n = {a.shape[0] for a in out}
        if len(n) > 1:
            raise ValueError(f"model inputs have different numbers of samples: {sorted(n)}")
        return out

    def _prepare_y(self, y, n):
        """y as a list of one target array per output (None for an output
        without a loss). Several outputs take a list or a dict by name."""
        if len(self.outputs) == 1:
            ys = [y]
        elif isinstance(y, dict):
            unknown = sorted(set(y) - set(self.output_names))
            if unknown:
                raise ValueError(f"y has keys {unknown} that are not model outputs; the "
                                 f"outputs are {self.output_names}")
            ys = [y.get(name) for name in self.output_names]
        elif isinstance(y, (list, tuple)) and len(y) == len(self.outputs):
            ys = list(y)
        else:
            got = f"a list of {len(y)}" if isinstance(y, (list, tuple)) else type(y).__name__
            raise ValueError(f"model {self.name!r} has {len(self.outputs)} outputs "
                             f"{self.output_names}: pass y as a list of one array per output "
                             f"or a dict by output name, got {got}")
        out = []
        for k, (t, loss, yk) in enumerate(zip(self.outputs, self._losses, ys)):
            if loss is None:
                out.append(None)
                continue
            if yk is None:
                raise ValueError(f"no target for output {self.output_names[k]!r}, which has "
                                 f"a loss")
            out.append(self._prepare_one_y(yk, n, t, loss, k))
        return out

    def _prepare_one_y(self, y, n, t, loss, k):
        ops = self.ops
        out_shape = t.shape
        what = "y" if len(self.outputs) == 1 else f"y[{self.output_names[k]!r}]"
        if isinstance(loss, losses_mod.SparseCategoricalCrossentropy):
            # Labels are checked on the host, once: device labels are fetched
            # for it (one documented transfer per call).
            y = ops.to_numpy(y) if ops.is_native(y) else _host_array(y, what, ops)
            _check_numeric(y, what)
            y = ops.asarray(loss._labels(y, _label_probe(y, out_shape)))
        else:
            y = _as_float_array(y, t.dtype, what, None, ops)
            if y.shape[1:] != out_shape and y.size == y.shape[0] * math.prod(out_shape):
                y = y.reshape((y.shape[0],) + out_shape)
            if y.shape[1:] != out_shape:
                raise ValueError(f"{what} has per-sample shape {y.shape[1:]} but the model "
                                 f"output {t.node.layer.name!r} has shape {out_shape}")
        if y.shape[0] != n:
            raise ValueError(f"x has {n} samples but {what} has {y.shape[0]}; they must match")
        return y

    def _prepare_fit_arrays(self, x, y, sample_weight, class_weight, validation_split,
                            validation_data):
        """fit's arrays checked and on the backend, split for validation:
        ``(xs, ys, sample weights, validation (xs, ys, weights) or None)``."""
        xs = self._prepare_x(x)
        n = xs[0].shape[0]
        if n == 0:
            raise ValueError("fit got empty arrays (0 samples)")
        ys = self._prepare_y(y, n)
        sw = _sample_weights(sample_weight, None, next(a for a in ys if a is not None), n,
                             self.ops)
        val = None
        if validation_data is None and validation_split:
            if not 0 < validation_split < 1:
                raise ValueError(f"validation_split must be in (0, 1), got {validation_split}")
            split = n - int(round(n * validation_split))
            if split <= 0 or split >= n:
                raise ValueError(f"validation_split={validation_split} leaves no training or no "
                                 f"validation samples out of {n}")
            # Already checked and on the backend: no second preparation.
            val = ([a[split:] for a in xs], _take(ys, slice(split, None)),
                   None if sw is None else sw[split:])
            xs, ys = [a[:split] for a in xs], _take(ys, slice(None, split))
            sw = None if sw is None else sw[:split]
            n = split
        if class_weight is not None:
            # As Keras: class_weight weighs the training samples only, never the
            # ones validation_split holds out (their loss stays comparable).
            cwv = _sample_weights(None, class_weight, next(a for a in ys if a is not None), n,
                                  self.ops)
            sw = cwv if sw is None else sw * cwv
        return xs, ys, sw, val

    def _prepare_validation(self, validation_data):
        if validation_data is None:
            return None
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise ValueError("validation_data must be (x_val, y_val), (x_val, y_val, "
                             "sample_weight), a generator or a Sequence")
        vxs = self._prepare_x(validation_data[0])
        vys = self._prepare_y(validation_data[1], vxs[0].shape[0])
        vsw = validation_data[2] if len(validation_data) == 3 else None
        return vxs, vys, self._prepare_sample_weight(vsw, vys, vxs[0].shape[0],
                                                     "validation_data's sample_weight")

    def _prepare_sample_weight(self, sample_weight, ys, n, what="sample_weight"):
        """Per-sample weights checked and moved to the model's backend once,
        not per batch (weights already there stay there: one fetch checks them)."""
        if sample_weight is None:
            return None
        return _sample_weights(sample_weight, None, next(a for a in ys if a is not None), n,
                               self.ops, what)
