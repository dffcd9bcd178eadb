# Row-major GEMM on top of SciPy's BLAS (inline, shared by blas.pyx and dense.pyx).
# BLAS is column-major; a row-major C = op(A) op(B) is the column-major
# C^T = op(B)^T op(A)^T, so the operands and flags are swapped (as in
# scikit-learn's _cython_blas). Callers validate; this only computes.
from cython cimport floating
from scipy.linalg.cython_blas cimport sgemm, dgemm


cdef inline void gemm_rm(bint trans_a, bint trans_b, int m, int n, int k,
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
