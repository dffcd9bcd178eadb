"""Fused softmax + cross-entropy: per-sample loss and its gradient w.r.t. the
logits in one pass per row, stable for huge logits. Matches
``Ops.softmax_cross_entropy`` (integer labels or target distributions)."""
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport log

from _elementwise cimport _exp_nonpos, sum_f64
cimport numpy as cnp
import numpy

from _checks cimport check_float, check_ndim, check_c_contiguous, check_same_shape

cnp.import_array()
include "common/threads.pxi"

cdef enum:
    PARALLEL_MIN = 16384


cdef inline double _row_softmax(const floating* x, floating* p, Py_ssize_t c,
                                floating* mx) noexcept nogil:
    """p = softmax(x); returns log(sum(exp(x - max))) and stores the max in mx[0].
    The exp loop is kept apart from the float64 sum so it vectorizes."""
    cdef Py_ssize_t j
    cdef floating top = x[0], scale
    cdef double total = 0
    for j in range(1, c):
        if x[j] > top:
            top = x[j]
    for j in range(c):
        p[j] = _exp_nonpos(x[j] - top)
    total = sum_f64(p, c)
    scale = <floating>(1.0 / total)
    for j in range(c):
        p[j] *= scale
    mx[0] = top
    return log(total)


cdef inline void _labels_row(const floating* x, Py_ssize_t label, floating* loss,
                             floating* grad, Py_ssize_t c) noexcept nogil:
    cdef floating mx
    cdef double lse = _row_softmax(x, grad, c, &mx)
    grad[label] -= 1
    loss[0] = <floating>(lse - (x[label] - mx))


cdef inline void _targets_row(const floating* x, const floating* t, floating* loss,
                              floating* grad, Py_ssize_t c) noexcept nogil:
    cdef Py_ssize_t j
    cdef floating mx
    cdef double lse = _row_softmax(x, grad, c, &mx)
    cdef double tsum = 0, total = 0
    cdef floating ts
    for j in range(c):
        tsum += t[j]
        total += t[j] * ((x[j] - mx) - lse)
    ts = <floating>tsum
    for j in range(c):
        grad[j] = grad[j] * ts - t[j]
    loss[0] = <floating>(-total)


cdef void _xent_labels(floating[:, ::1] x, Py_ssize_t[::1] labels, floating[::1] loss,
                       floating[:, ::1] grad):
    cdef Py_ssize_t n = x.shape[0], c = x.shape[1], i
    with nogil:
        if n * c >= PARALLEL_MIN:
            for i in prange(n, schedule="static", num_threads=fastnn_threads(<double>n * c)):
                _labels_row(&x[i, 0], labels[i], &loss[i], &grad[i, 0], c)
        else:
            for i in range(n):
                _labels_row(&x[i, 0], labels[i], &loss[i], &grad[i, 0], c)


cdef void _xent_targets(floating[:, ::1] x, floating[:, ::1] t, floating[::1] loss,
                        floating[:, ::1] grad):
    cdef Py_ssize_t n = x.shape[0], c = x.shape[1], i
    with nogil:
        if n * c >= PARALLEL_MIN:
            for i in prange(n, schedule="static", num_threads=fastnn_threads(<double>n * c)):
                _targets_row(&x[i, 0], &t[i, 0], &loss[i], &grad[i, 0], c)
        else:
            for i in range(n):
                _targets_row(&x[i, 0], &t[i, 0], &loss[i], &grad[i, 0], c)


def softmax_cross_entropy(logits, labels):
    """Per-sample cross-entropy of softmax(logits) (n, c) against integer ``labels``
    (n,) in [0, c) or target distributions (n, c) of the logits' dtype; returns
    ``(loss (n,), grad (n, c))`` with ``grad`` the unscaled gradient of each
    sample's loss. Non-contiguous inputs are copied."""
    check_float("logits", logits)
    check_ndim("logits", logits, 2)
    if not isinstance(labels, numpy.ndarray):
        raise TypeError(f"labels must be a numpy.ndarray, got {type(labels).__name__}")
    cdef Py_ssize_t n = logits.shape[0], c = logits.shape[1]
    if c == 0 and n:
        raise ValueError(f"softmax_cross_entropy: logits has shape {logits.shape}; "
                         f"there must be at least one class")
    logits = numpy.ascontiguousarray(logits)
    loss = numpy.empty(n, dtype=logits.dtype)
    grad = numpy.empty((n, c), dtype=logits.dtype)
    if labels.ndim == 1:
        if labels.dtype.kind not in "iu":
            raise TypeError(f"softmax_cross_entropy: 1-D labels must be integer class ids, "
                            f"got dtype {labels.dtype}")
        if labels.shape[0] != n:
            raise ValueError(f"softmax_cross_entropy: labels has shape {labels.shape} but "
                             f"logits has shape {logits.shape}")
        if n and (labels.min() < 0 or labels.max() >= c):
            raise ValueError(f"softmax_cross_entropy: labels must lie in [0, {c}) for logits "
                             f"of shape {logits.shape}; got min {labels.min()}, "
                             f"max {labels.max()}")
        if n == 0:
            return loss, grad
        ids = numpy.ascontiguousarray(labels, dtype=numpy.intp)
        if logits.dtype == numpy.float32:
            _xent_labels[float](logits, ids, loss, grad)
        else:
            _xent_labels[double](logits, ids, loss, grad)
        return loss, grad
    check_float("labels", labels, logits)
    check_same_shape("labels", labels, "logits", logits)
    if n == 0:
        return loss, grad
    labels = numpy.ascontiguousarray(labels)
    if logits.dtype == numpy.float32:
        _xent_targets[float](logits, labels, loss, grad)
    else:
        _xent_targets[double](logits, labels, loss, grad)
    return loss, grad
