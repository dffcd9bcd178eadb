"""Activation kernels (forward from the input, backward from the output), row-wise
softmax and maxout, over C-contiguous float32/float64 arrays. Parallel with prange
over fixed-size blocks or rows. No BLAS and no layer logic here."""
from cython cimport floating
from cython.parallel cimport prange
cimport numpy as cnp
import numpy

from checks cimport (BLAS_INT_MAX, check_count, check_disjoint, check_float, check_ndim, check_c_contiguous, check_same_shape,
                      check_out, activation_code, activation_codes)
from elementwise cimport act_forward_run, act_backward_run, softmax_row, softmax_backward_row
from activation_codes cimport ACT_SOFTMAX, c_activation_enum

cnp.import_array()
include "common/threads.pxi"

#: Activation name -> code, the table every kernel module shares (checks.pxd).
ACTIVATION_CODES = activation_codes()
#: fastnn_activations.h's enum by its C names, to test the table against.
C_ACTIVATION_ENUM = c_activation_enum()

cdef enum:
    BLOCK = 4096          # elements per parallel work item for element-wise kernels
    PARALLEL_MIN = 32768  # below this many elements, threads cost more than they save


cdef void _forward_flat(int code, const floating[::1] x, floating[::1] y, double alpha):
    cdef Py_ssize_t n = x.shape[0], nblocks = (n + BLOCK - 1) // BLOCK, i, start
    cdef floating a = <floating>alpha
    if n == 0:
        return
    with nogil:
        if n < PARALLEL_MIN:
            act_forward_run(code, &x[0], &y[0], n, a)
        else:
            for i in prange(nblocks, schedule="static", num_threads=fastnn_threads(n * FASTNN_ELEMENT_COST)):
                start = i * BLOCK
                act_forward_run(code, &x[start], &y[start], min(<Py_ssize_t>BLOCK, n - start), a)


cdef void _backward_flat(int code, const floating[::1] y, const floating[::1] dy, floating[::1] dx,
                         double alpha):
    cdef Py_ssize_t n = y.shape[0], nblocks = (n + BLOCK - 1) // BLOCK, i, start
    cdef floating a = <floating>alpha
    if n == 0:
        return
    with nogil:
        if n < PARALLEL_MIN:
            act_backward_run(code, &y[0], &dy[0], &dx[0], n, a)
        else:
            for i in prange(nblocks, schedule="static", num_threads=fastnn_threads(n * FASTNN_ELEMENT_COST)):
                start = i * BLOCK
                act_backward_run(code, &y[start], &dy[start], &dx[start],
                                 min(<Py_ssize_t>BLOCK, n - start), a)


cdef void _softmax_rows(const floating[:, ::1] x, floating[:, ::1] y):
    cdef Py_ssize_t m = x.shape[0], n = x.shape[1], i
    if m == 0 or n == 0:
        return
    with nogil:
        if m * n < PARALLEL_MIN:
            for i in range(m):
                softmax_row(&x[i, 0], &y[i, 0], n)
        else:
            for i in prange(m, schedule="static", num_threads=fastnn_threads(m * n * FASTNN_ELEMENT_COST)):
                softmax_row(&x[i, 0], &y[i, 0], n)


cdef void _softmax_backward_rows(const floating[:, ::1] y, const floating[:, ::1] dy,
                                 floating[:, ::1] dx):
    cdef Py_ssize_t m = y.shape[0], n = y.shape[1], i
    if m == 0 or n == 0:
        return
    with nogil:
        if m * n < PARALLEL_MIN:
            for i in range(m):
                softmax_backward_row(&y[i, 0], &dy[i, 0], &dx[i, 0], n)
        else:
            for i in prange(m, schedule="static", num_threads=fastnn_threads(m * n * FASTNN_ELEMENT_COST)):
                softmax_backward_row(&y[i, 0], &dy[i, 0], &dx[i, 0], n)


cdef object _rows(object a):
    """(rows, last axis) view of a C-contiguous array of at least one dimension."""
    if a.ndim == 0:
        raise ValueError("softmax needs at least a 1-D array, got a 0-D one")
    # Indexed from the front: wraparound is off, so shape[-1] would be undefined.
    cdef Py_ssize_t n = a.shape[a.ndim - 1]
    return a.reshape(a.size // n if n else 0, n)


def softmax(x, out=None):
    """Row-wise (last axis) softmax of a C-contiguous float array, stable for large
    logits. ``out`` may be ``x``."""
    check_float("x", x)
    check_c_contiguous("x", x)
    check_disjoint("out", out, {"x": x}, ("x",))
    out = check_out("out", out, x.shape, x, "x")
    if x.ndim == 0:
        raise ValueError("softmax needs at least a 1-D array, got a 0-D one")
    if x.size:
        if x.dtype == numpy.float32:
            _softmax_rows[float](_rows(x), _rows(out))
        else:
            _softmax_rows[double](_rows(x), _rows(out))
    return out


def softmax_backward(y, dy, out=None):
    """``y * (dy - sum(dy * y, axis=-1))`` for softmax output ``y``."""
    check_float("y", y)
    check_float("dy", dy, y, "y")
    check_same_shape("dy", dy, "y", y)
    check_c_contiguous("y", y)
    check_c_contiguous("dy", dy)
    check_disjoint("out", out, {"y": y, "dy": dy}, ("dy",))
    out = check_out("out", out, y.shape, y, "y")
    if y.ndim == 0:
        raise ValueError("softmax needs at least a 1-D array, got a 0-D one")
    if y.size:
        if y.dtype == numpy.float32:
            _softmax_backward_rows[float](_rows(y), _rows(dy), _rows(out))
        else:
            _softmax_backward_rows[double](_rows(y), _rows(dy), _rows(out))
    return out


def activation_forward(name, x, double alpha=0.0, out=None):
    """``act(x)`` for a C-contiguous float array; ``out`` may be ``x`` (in place).
    ``alpha`` is the negative slope of leaky_relu and the scale of elu."""
    cdef int code = activation_code(name)
    if code == ACT_SOFTMAX:
        return softmax(x, out)
    check_float("x", x)
    check_c_contiguous("x", x)
    check_disjoint("out", out, {"x": x}, ("x",))
    out = check_out("out", out, x.shape, x, "x")
    if x.dtype == numpy.float32:
        _forward_flat[float](code, x.reshape(-1), out.reshape(-1), alpha)
    else:
        _forward_flat[double](code, x.reshape(-1), out.reshape(-1), alpha)
    return out


def activation_backward(name, y, dy, double alpha=0.0, out=None):
    """``dy * act'(x)`` computed from the output ``y = act(x)``; ``out`` may be ``dy``."""
    cdef int code = activation_code(name)
    if code == ACT_SOFTMAX:
        return softmax_backward(y, dy, out)
    check_float("y", y)
    check_float("dy", dy, y, "y")
    check_same_shape("dy", dy, "y", y)
    check_c_contiguous("y", y)
    check_c_contiguous("dy", dy)
    check_disjoint("out", out, {"y": y, "dy": dy}, ("y", "dy"))
    out = check_out("out", out, y.shape, y, "y")
    if y.dtype == numpy.float32:
        _backward_flat[float](code, y.reshape(-1), dy.reshape(-1), out.reshape(-1), alpha)
    else:
        _backward_flat[double](code, y.reshape(-1), dy.reshape(-1), out.reshape(-1), alpha)
    return out


cdef void _maxout_forward(const floating[:, ::1] x, floating[:, ::1] y, int[:, ::1] idx,
                          int pieces):
    cdef Py_ssize_t m = y.shape[0], units = y.shape[1], i, u
    cdef int p, best_p
    cdef floating best, v
    cdef const floating* g
    with nogil:
        for i in prange(m, schedule="static", num_threads=fastnn_threads(<double>m * units * pieces)):
            for u in range(units):
                g = &x[i, u * pieces]
                best = g[0]
                best_p = 0
                # First maximum wins; a NaN wins and stops the search (numpy.argmax).
                if best == best:
                    for p in range(1, pieces):
                        v = g[p]
                        if v > best or v != v:
                            best = v
                            best_p = p
                            if v != v:
                                break
                y[i, u] = best
                idx[i, u] = best_p


cdef void _maxout_backward(const floating[:, ::1] dy, const int[:, ::1] idx, floating[:, ::1] dx,
                           int pieces):
    cdef Py_ssize_t m = dy.shape[0], units = dy.shape[1], i, u
    with nogil:
        for i in prange(m, schedule="static", num_threads=fastnn_threads(<double>m * units)):
            for u in range(units):
                dx[i, u * pieces + idx[i, u]] = dy[i, u]


def maxout_forward(x, pieces):
    """``x`` (n, units*pieces) -> (max over each group of ``pieces`` consecutive
    columns, int32 argmax within the group)."""
    check_float("x", x)
    check_ndim("x", x, 2)
    check_c_contiguous("x", x)
    # Taken as a Python integer and checked here: as a C int argument, 2**31 was
    # an OverflowError naming nothing.
    if check_count("maxout: pieces", pieces, BLAS_INT_MAX) < 1:
        raise ValueError(f"maxout: pieces must be >= 1, got {pieces}")
    if x.shape[1] % pieces:
        raise ValueError(f"maxout: x has shape {x.shape}; its {x.shape[1]} columns do not "
                         f"split into groups of {pieces} pieces")
    cdef Py_ssize_t units = x.shape[1] // pieces
    y = numpy.empty((x.shape[0], units), dtype=x.dtype)
    idx = numpy.empty((x.shape[0], units), dtype=numpy.int32)
    if y.size:
        if x.dtype == numpy.float32:
            _maxout_forward[float](x, y, idx, pieces)
        else:
            _maxout_forward[double](x, y, idx, pieces)
    return y, idx


def maxout_backward(dy, idx, pieces):
    """Scatter ``dy`` (n, units) to the argmax positions ``idx`` (int32, from
    maxout_forward); returns dx (n, units*pieces)."""
    check_float("dy", dy)
    check_ndim("dy", dy, 2)
    check_c_contiguous("dy", dy)
    if not isinstance(idx, numpy.ndarray) or idx.dtype != numpy.int32:
        raise TypeError(f"maxout: idx must be an int32 ndarray, got "
                        f"{getattr(idx, 'dtype', type(idx).__name__)}")
    check_same_shape("idx", idx, "dy", dy)
    check_c_contiguous("idx", idx)
    # Taken as a Python integer and checked here: as a C int argument, 2**31 was
    # an OverflowError naming nothing.
    if check_count("maxout: pieces", pieces, BLAS_INT_MAX) < 1:
        raise ValueError(f"maxout: pieces must be >= 1, got {pieces}")
    if idx.size and (idx.min() < 0 or idx.max() >= pieces):
        raise ValueError(f"maxout: idx holds values outside [0, {pieces}) "
                         f"(min {idx.min()}, max {idx.max()})")
    dx = numpy.zeros((dy.shape[0], dy.shape[1] * pieces), dtype=dy.dtype)
    if dy.size:
        if dy.dtype == numpy.float32:
            _maxout_backward[float](dy, idx, dx, pieces)
        else:
            _maxout_backward[double](dy, idx, dx, pieces)
    return dx
