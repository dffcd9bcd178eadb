"""GEMM for row-major NumPy arrays through SciPy's BLAS (sgemm/dgemm), called
without the GIL. Only matrix products live here; fused epilogues are in dense.pyx.
"""
from cython cimport floating
cimport numpy as cnp
import numpy

from checks cimport (check_disjoint, check_float, check_ndim, check_c_contiguous, as_row_major,
                      BLAS_INT_MAX)
from gemm cimport gemm_rm

cnp.import_array()
include "common/threads.pxi"


cdef void _gemm_typed(const floating[:, ::1] a, const floating[:, ::1] b, floating[:, ::1] c,
                      bint ta, bint tb, int m, int n, int k,
                      double alpha, double beta):
    # Memoryviews are taken here, with the GIL; only the BLAS call drops it.
    cdef int lda = max(1, <int>a.shape[1])
    cdef int ldb = max(1, <int>b.shape[1])
    cdef int ldc = max(1, <int>c.shape[1])
    with nogil:
        gemm_rm(ta, tb, m, n, k, <floating>alpha, &a[0, 0], lda, &b[0, 0], ldb,
                <floating>beta, &c[0, 0], ldc)


def gemm(a, b, bint trans_a=False, bint trans_b=False, out=None, double alpha=1.0,
         double beta=0.0):
    """``out = alpha * op(a) @ op(b) + beta * out`` where ``op`` transposes when
    ``trans_a`` / ``trans_b``. ``a``, ``b`` are 2-D float32 or float64 of one dtype;
    C- and F-contiguous operands are used in place, others are copied. ``out``
    (optional, C-contiguous, same dtype) is written and returned; with
    ``beta == 0`` its old contents are ignored."""
    check_float("a", a)
    check_float("b", b, a, "a")
    check_ndim("a", a, 2)
    check_ndim("b", b, 2)
    cdef Py_ssize_t m = a.shape[1] if trans_a else a.shape[0]
    cdef Py_ssize_t ka = a.shape[0] if trans_a else a.shape[1]
    cdef Py_ssize_t kb = b.shape[1] if trans_b else b.shape[0]
    cdef Py_ssize_t n = b.shape[0] if trans_b else b.shape[1]
    if ka != kb:
        raise ValueError(
            f"gemm: inner dimensions differ: op(a) is {(m, ka)} (a has shape {a.shape}"
            f"{', transposed' if trans_a else ''}) but op(b) is {(kb, n)} (b has shape "
            f"{b.shape}{', transposed' if trans_b else ''})")
    if max(m, n, ka) > BLAS_INT_MAX:
        raise ValueError(f"gemm: dimensions {(m, n, ka)} exceed the 32-bit BLAS limit")
    if out is None:
        out = numpy.empty((m, n), dtype=a.dtype)
        beta = 0.0
    else:
        check_float("out", out, a, "a")
        check_ndim("out", out, 2)
        if out.shape != (m, n):
            raise ValueError(f"gemm: out has shape {out.shape} but op(a) @ op(b) has shape "
                             f"{(m, n)} (a {a.shape}, b {b.shape})")
        check_c_contiguous("out", out, writeable=True)
        check_disjoint("out", out, {"a": a, "b": b})
    if m == 0 or n == 0:
        return out
    if ka == 0:
        if beta == 0.0:
            out.fill(0)
        else:
            out *= beta
        return out
    cdef bint flip_a, flip_b
    a = as_row_major(a, &flip_a)
    b = as_row_major(b, &flip_b)
    cdef bint ta = trans_a != flip_a
    cdef bint tb = trans_b != flip_b
    if a.dtype == numpy.float32:
        _gemm_typed[float](a, b, out, ta, tb, <int>m, <int>n, <int>ka, alpha, beta)
    else:
        _gemm_typed[double](a, b, out, ta, tb, <int>m, <int>n, <int>ka, alpha, beta)
    return out
