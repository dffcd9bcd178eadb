"""Dense layer kernels: ``y = act(x @ W + b)`` as one GEMM plus ONE fused pass
(bias + activation) over the output, and the backward as one fused pass
(``dz = dy * act'(y)`` with deterministic float64 column sums for ``db``) plus
GEMMs accumulating into ``dW`` and producing ``dx``. Shapes and semantics match
``Ops.dense_forward`` / ``Ops.dense_backward``."""
from cython cimport floating
from cython.parallel cimport prange
cimport numpy as cnp
import numpy

from checks cimport (check_all_disjoint, check_disjoint, check_float, check_ndim, check_c_contiguous, check_same_shape,
                      check_out, as_row_major, activation_code, activation_codes,
                      BLAS_INT_MAX)
from epilogue cimport epilogue_row, dz_block
from activation_codes cimport ACT_LINEAR
from gemm cimport gemm_rm

cnp.import_array()
include "common/threads.pxi"

#: Activation name -> code, the table every kernel module shares (checks.pxd).
ACTIVATION_CODES = activation_codes()

cdef enum:
    # Below this many output elements the epilogue stays serial: it is short, and
    # waking OpenMP threads right after a BLAS call makes them fight the BLAS threads.
    PARALLEL_MIN = 262144
    SUM_ROWS = 16         # rows per partial column sum: fixes the summation order


cdef void _forward(int code, const floating[:, ::1] x, bint tx, const floating[:, ::1] W, bint tw,
                   const floating[::1] b, bint has_b, floating[:, ::1] y, double alpha):
    cdef int m = <int>y.shape[0], n = <int>y.shape[1]
    cdef int k = <int>(x.shape[0] if tx else x.shape[1])
    cdef Py_ssize_t i
    cdef floating a = <floating>alpha
    cdef const floating* bias = &b[0] if has_b else NULL
    with nogil:
        gemm_rm(tx, tw, m, n, k, 1, &x[0, 0], max(1, <int>x.shape[1]), &W[0, 0],
                max(1, <int>W.shape[1]), 0, &y[0, 0], n)
        if code == ACT_LINEAR and not has_b:
            return
        if <Py_ssize_t>m * n >= PARALLEL_MIN:
            for i in prange(m, schedule="static", num_threads=fastnn_threads(<double>m * n)):
                epilogue_row(code, &y[i, 0], bias, n, a)
        else:
            for i in range(m):
                epilogue_row(code, &y[i, 0], bias, n, a)


def dense_forward(x, W, b=None, activation="linear", double alpha=0.0, out=None):
    """``act(x @ W + b)`` for x (m, k), W (k, n), b (n,) or None. x and W may be C- or
    F-contiguous (used in place) or strided (copied). ``out`` (m, n), if given, must be
    C-contiguous and is returned."""
    cdef int code = activation_code(activation)
    check_float("x", x)
    check_float("W", W, x, "x")
    check_ndim("x", x, 2)
    check_ndim("W", W, 2)
    if x.shape[1] != W.shape[0]:
        raise ValueError(f"dense_forward: x has shape {x.shape} but W has shape {W.shape}; "
                         f"x.shape[1] must equal W.shape[0]")
    cdef Py_ssize_t m = x.shape[0], k = x.shape[1], n = W.shape[1]
    if max(m, n, k) > BLAS_INT_MAX:
        raise ValueError(f"dense_forward: dimensions {(m, k, n)} exceed the 32-bit BLAS limit")
    cdef bint has_b = b is not None
    if has_b:
        check_float("b", b, x, "x")
        if b.shape != (n,):
            raise ValueError(f"dense_forward: b has shape {b.shape} but W has shape {W.shape}; "
                             f"b must have shape {(n,)}")
        b = numpy.ascontiguousarray(b)
    else:
        b = numpy.zeros(1, dtype=x.dtype)
    check_disjoint("out", out, {"x": x, "W": W, "b": b if has_b else None})
    out = check_out("out", out, (m, n), x, "x")
    if m == 0 or n == 0:
        return out
    if k == 0:
        # An empty product: act(b), without handing BLAS zero-size operands.
        out[...] = b if has_b else 0
        from fastnn._C.activations import activation_forward
        return activation_forward(activation, out, alpha, out=out)
    cdef bint tx, tw
    x = as_row_major(x, &tx)
    W = as_row_major(W, &tw)
    if x.dtype == numpy.float32:
        _forward[float](code, x, tx, W, tw, b, has_b, out, alpha)
    else:
        _forward[double](code, x, tx, W, tw, b, has_b, out, alpha)
    return out


cdef void _backward(int code, const floating[:, ::1] x, bint tx, const floating[:, ::1] W, bint tw,
                    const floating[:, ::1] y, const floating[:, ::1] dy, floating[:, ::1] dz_buf,
                    floating[:, ::1] dW, bint dW_t, floating[::1] db, bint has_db,
                    double[:, ::1] partial, floating[:, ::1] dx, bint need_dx, double alpha):
    cdef int m = <int>dy.shape[0], n = <int>dy.shape[1]
    cdef int k = <int>(x.shape[0] if tx else x.shape[1])
    cdef Py_ssize_t nblocks = partial.shape[0], blk, j
    cdef floating a = <floating>alpha
    cdef bint fuse = code != ACT_LINEAR
    cdef double s
    # dz is dy itself for a linear activation (dy may be read-only: it is only read),
    # else dz_buf, which dz_block fills.
    cdef const floating* dz
    cdef floating* dz_out = NULL
    if fuse:
        dz_out = &dz_buf[0, 0]
        dz = dz_out
    else:
        dz = &dy[0, 0]
    with nogil:
        if fuse or has_db:
            if <Py_ssize_t>m * n >= PARALLEL_MIN:
                for blk in prange(nblocks, schedule="static", num_threads=fastnn_threads(<double>m * n)):
                    dz_block(code, &y[0, 0], &dy[0, 0], dz_out,
                             &partial[blk, 0] if has_db else NULL,
                             blk * SUM_ROWS, min(<Py_ssize_t>m, (blk + 1) * SUM_ROWS), n, a)
            else:
                for blk in range(nblocks):
                    dz_block(code, &y[0, 0], &dy[0, 0], dz_out,
                             &partial[blk, 0] if has_db else NULL,
                             blk * SUM_ROWS, min(<Py_ssize_t>m, (blk + 1) * SUM_ROWS), n, a)
        if has_db:
            # Blocks are summed in a fixed order: the result does not depend on threads.
            for j in range(n):
                s = 0
                for blk in range(nblocks):
                    s = s + partial[blk, j]
                db[j] += <floating>s
        # dW += x.T @ dz (or, for an F-contiguous dW, dW.T += dz.T @ x).
        if dW_t:
            gemm_rm(True, tx, n, k, m, 1, dz, n, &x[0, 0],
                    max(1, <int>x.shape[1]), 1, &dW[0, 0], k)
        else:
            gemm_rm(not tx, False, k, n, m, 1, &x[0, 0], max(1, <int>x.shape[1]),
                    dz, n, 1, &dW[0, 0], n)
        if need_dx:
            gemm_rm(False, not tw, m, k, n, 1, dz, n, &W[0, 0],
                    max(1, <int>W.shape[1]), 0, &dx[0, 0], k)


def dense_backward(x, W, y, dy, dW, db, activation="linear", double alpha=0.0,
                   bint need_dx=True):
    """With ``dz = dy * act'(y)``: accumulate ``dW += x.T @ dz`` and ``db += dz.sum(0)``
    (``db`` may be None) in place, and return ``dx = dz @ W.T`` (None unless
    ``need_dx``). ``dW`` must be C- or F-contiguous, ``db`` contiguous; ``y`` and
    ``dy`` are copied if not C-contiguous; ``x`` and ``W`` as in dense_forward."""
    cdef int code = activation_code(activation)
    check_float("x", x)
    for what, a in (("W", W), ("y", y), ("dy", dy), ("dW", dW)):
        check_float(what, a, x, "x")
    check_ndim("x", x, 2)
    check_ndim("W", W, 2)
    check_ndim("dy", dy, 2)
    cdef Py_ssize_t m = x.shape[0], k = x.shape[1], n = W.shape[1]
    if W.shape[0] != k:
        raise ValueError(f"dense_backward: x has shape {x.shape} but W has shape {W.shape}; "
                         f"x.shape[1] must equal W.shape[0]")
    if dy.shape != (m, n):
        raise ValueError(f"dense_backward: dy has shape {dy.shape} but x @ W has shape "
                         f"{(m, n)} (x {x.shape}, W {W.shape})")
    check_same_shape("y", y, "dy", dy)
    check_same_shape("dW", dW, "W", W)
    if not (dW.flags.c_contiguous or dW.flags.f_contiguous) or not dW.flags.writeable:
        raise ValueError("dense_backward: dW must be a writeable C- or F-contiguous array "
                         "(gradients are accumulated into it in place)")
    cdef bint has_db = db is not None
    if has_db:
        check_float("db", db, x, "x")
        if db.shape != (n,):
            raise ValueError(f"dense_backward: db has shape {db.shape} but W has shape "
                             f"{W.shape}; db must have shape {(n,)}")
        check_c_contiguous("db", db, writeable=True)
    # dW and db are accumulated into while x, W, y, dy are read: no shared memory.
    check_all_disjoint({"dW": dW, "db": db}, {"x": x, "W": W, "y": y, "dy": dy})
    if not has_db:
        db = numpy.zeros(1, dtype=x.dtype)
    if max(m, n, k) > BLAS_INT_MAX:
        raise ValueError(f"dense_backward: dimensions {(m, k, n)} exceed the 32-bit BLAS limit")
    if m == 0 or n == 0 or k == 0:
        dx = numpy.zeros((m, k), dtype=x.dtype) if need_dx else None
        if m and n and has_db:
            from fastnn._C.activations import activation_backward
            dz = activation_backward(activation, numpy.ascontiguousarray(y),
                                     numpy.ascontiguousarray(dy), alpha)
            db += dz.sum(axis=0, dtype=numpy.float64).astype(db.dtype)
        return dx
    dy = numpy.ascontiguousarray(dy)
    y = numpy.ascontiguousarray(y)
    # Linear: dz is dy, read in place (_backward never writes it); the 1x1 is a placeholder.
    dz = numpy.empty((1, 1), x.dtype) if code == ACT_LINEAR else numpy.empty_like(dy)
    cdef Py_ssize_t nblocks = (m + SUM_ROWS - 1) // SUM_ROWS
    partial = numpy.empty((nblocks, n if has_db else 1), dtype=numpy.float64)
    dx = numpy.empty((m, k), dtype=x.dtype) if need_dx else numpy.empty((1, 1), x.dtype)
    cdef bint tx, tw, dW_t = not dW.flags.c_contiguous
    x = as_row_major(x, &tx)
    W = as_row_major(W, &tw)
    dW_rm = dW.T if dW_t else dW
    if x.dtype == numpy.float32:
        _backward[float](code, x, tx, W, tw, y, dy, dz, dW_rm, dW_t, db, has_db, partial,
                         dx, need_dx, alpha)
    else:
        _backward[double](code, x, tx, W, tw, y, dy, dz, dW_rm, dW_t, db, has_db, partial,
                          dx, need_dx, alpha)
    return dx if need_dx else None
