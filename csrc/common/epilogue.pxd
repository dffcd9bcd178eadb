# The epilogues of the GEMM kernels (dense.pyx, conv.pyx): forward, bias +
# activation on each output row while it is still in cache; backward,
# dz = dy * act'(y) over a block of rows with the float64 partial column sums
# of the bias gradient. Rows are row-major and n wide. Callers validate and
# own parallelism (a block of rows per thread); this only computes.
from cython cimport floating

from elementwise cimport act_forward_run, act_backward_run


cdef inline void epilogue_row(int code, floating* row, const floating* bias, Py_ssize_t n,
                              floating alpha) noexcept nogil:
    # The row is in L1 after the bias add, so bias + activation is one memory pass.
    cdef Py_ssize_t j
    if bias != NULL:
        for j in range(n):
            row[j] += bias[j]
    act_forward_run(code, row, row, n, alpha)


cdef inline void dz_block(int code, const floating* y, const floating* dy, floating* dz,
                          double* acc, Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t n,
                          floating alpha) noexcept nogil:
    # Rows r0..r1: dz = dy * act'(y) into dz (NULL for a linear activation: dz is
    # dy, only read), and, unless acc is NULL, acc[j] = the float64 sum of column
    # j over these rows (one block's partial sum: the caller adds the blocks in
    # order, so the bias gradient does not depend on the thread count).
    cdef Py_ssize_t i, j
    cdef const floating* row
    if acc != NULL:
        for j in range(n):
            acc[j] = 0
    for i in range(r0, r1):
        if dz != NULL:
            act_backward_run(code, y + i * n, dy + i * n, dz + i * n, n, alpha)
            row = dz + i * n
        else:
            row = dy + i * n
        if acc != NULL:
            for j in range(n):
                acc[j] += row[j]
