# Row-major GEMM on top of SciPy's BLAS (inline, shared by blas.pyx and dense.pyx).
# BLAS is column-major; a row-major C = op(A) op(B) is the column-major
# C^T = op(B)^T op(A)^T, so the operands and flags are swapped (as in
# scikit-learn's _cython_blas). Callers validate; this only computes.
from cython cimport floating
from cython.parallel cimport prange
from scipy.linalg.cython_blas cimport sgemm, dgemm

cdef extern from "common/threads.h" nogil:
    int fastnn_threads(double work)
    int fastnn_blas_single_begin()
    void fastnn_blas_single_end(int saved)

cdef enum:
    SLICE_ALIGN = 16  # rows or columns per slice are a multiple of this (whole SIMD tiles)


cdef inline void _gemm_blas(bint trans_a, bint trans_b, int m, int n, int k,
                         floating alpha, const floating* a, int lda,
                         const floating* b, int ldb, floating beta,
                         floating* c, int ldc) noexcept nogil:
    """``c[m, n] = alpha * op(a) @ op(b) + beta * c`` for row-major ``a``, ``b``, ``c``
    with row strides ``lda``, ``ldb``, ``ldc`` (in elements)."""
    cdef char ta = b't' if trans_a else b'n'
    cdef char tb = b't' if trans_b else b'n'
    if floating is float:
        sgemm(&tb, &ta, &n, &m, &k, &alpha, <float*>b, &ldb, <float*>a, &lda,
              &beta, c, &ldc)
    else:
        dgemm(&tb, &ta, &n, &m, &k, &alpha, <double*>b, &ldb, <double*>a, &lda,
              &beta, c, &ldc)


cdef inline void gemm_rm(bint trans_a, bint trans_b, int m, int n, int k,
                         floating alpha, const floating* a, int lda,
                         const floating* b, int ldb, floating beta,
                         floating* c, int ldc) noexcept nogil:
    """``c[m, n] = alpha * op(a) @ op(b) + beta * c`` for row-major ``a``, ``b``, ``c``
    with row strides ``lda``, ``ldb``, ``ldc`` (in elements)."""
    cdef int saved = fastnn_blas_single_begin()
    cdef int nt = fastnn_threads(<double>m * n * k)
    cdef bint by_rows = m >= n
    cdef int dim = m if by_rows else n
    cdef int step, nslices, s, lo, hi
    if nt > 1 and dim >= 2 * SLICE_ALIGN:
        step = (dim + nt - 1) // nt
        step = (step + SLICE_ALIGN - 1) // SLICE_ALIGN * SLICE_ALIGN
        nslices = (dim + step - 1) // step
        for s in prange(nslices, schedule="static", num_threads=nt):
            lo = s * step
            hi = min(dim, lo + step)
            if by_rows:  # rows lo:hi of C take rows lo:hi of op(a)
                _gemm_blas(trans_a, trans_b, hi - lo, n, k, alpha,
                           a + (lo if trans_a else <Py_ssize_t>lo * lda), lda, b, ldb,
                           beta, c + <Py_ssize_t>lo * ldc, ldc)
            else:  # columns lo:hi of C take columns lo:hi of op(b)
                _gemm_blas(trans_a, trans_b, m, hi - lo, k, alpha, a, lda,
                           b + (<Py_ssize_t>lo * ldb if trans_b else lo), ldb,
                           beta, c + lo, ldc)
    else:
        _gemm_blas(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
    fastnn_blas_single_end(saved)
