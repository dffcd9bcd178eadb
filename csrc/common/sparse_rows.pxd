# Row helpers shared by the sparse kernels (sparse.pyx) and the AutoRec step
# (autorec_step.pyx): the C inner loops of simd_rows.h, the fused index type,
# the chunk sizes of their parallel loops, and inline loops over the rows of a
# CSR pattern. Callers validate and own parallelism; nothing here checks.
from libc.stdint cimport int32_t, int64_t

cdef extern from "simd_rows.h" nogil:
    int fastnn_threads_for(double work)
    void fastnn_axpy_f32(Py_ssize_t n, float a, const float* x, float* y)
    void fastnn_axpy_f64(Py_ssize_t n, double a, const double* x, double* y)
    void fastnn_axpy4_f32(Py_ssize_t n, float a0, const float* x0, float a1, const float* x1,
                          float a2, const float* x2, float a3, const float* x3, float* y,
                          const float* nx0, const float* nx1, const float* nx2,
                          const float* nx3)
    void fastnn_axpy4_f64(Py_ssize_t n, double a0, const double* x0, double a1,
                          const double* x1, double a2, const double* x2, double a3,
                          const double* x3, double* y, const double* nx0,
                          const double* nx1, const double* nx2, const double* nx3)
    void fastnn_dot4_f32(Py_ssize_t n, const float* x, const float* y0, const float* y1,
                         const float* y2, const float* y3, float* out, const float* ny0,
                         const float* ny1, const float* ny2, const float* ny3)
    void fastnn_dot4_f64(Py_ssize_t n, const double* x, const double* y0, const double* y1,
                         const double* y2, const double* y3, double* out, const double* ny0,
                         const double* ny1, const double* ny2, const double* ny3)
    float fastnn_dot_f32(Py_ssize_t n, const float* x, const float* y)
    double fastnn_dot_f64(Py_ssize_t n, const double* x, const double* y)
    void fastnn_bias_act_f32(Py_ssize_t n, float* y, const float* bias, int act)
    void fastnn_bias_act_f64(Py_ssize_t n, double* y, const double* bias, int act)
    void fastnn_adam_f32(Py_ssize_t n, float* p, float* g, float* m, float* v, float b1,
                         float b2, float lr, float eps, float wd, float keep, int zero_grad)
    void fastnn_adam_f64(Py_ssize_t n, double* p, double* g, double* m, double* v, double b1,
                         double b2, double lr, double eps, double wd, double keep,
                         int zero_grad)
    double fastnn_adam_sq_f32(Py_ssize_t n, float* p, const float* g, float* m, float* v,
                              float b1, float b2, float lr, float eps, float wd)
    double fastnn_adam_sq_f64(Py_ssize_t n, double* p, const double* g, double* m, double* v,
                              double b1, double b2, double lr, double eps, double wd)
    void fastnn_grad_scatter4_f32(Py_ssize_t n, float g0, const float* h0, float g1,
                                  const float* h1, float g2, const float* h2, float g3,
                                  const float* h3, float* grad, const float* x, float* d0,
                                  float* d1, float* d2, float* d3)
    void fastnn_grad_scatter4_f64(Py_ssize_t n, double g0, const double* h0, double g1,
                                  const double* h1, double g2, const double* h2, double g3,
                                  const double* h3, double* grad, const double* x, double* d0,
                                  double* d1, double* d2, double* d3)
    void fastnn_act_grad_f32(Py_ssize_t n, const float* y, const float* dy, float* dz, int act)
    void fastnn_act_grad_f64(Py_ssize_t n, const double* y, const double* dy, double* dz,
                             int act)
    void fastnn_acc_row_f32(Py_ssize_t n, const float* x, double* acc)
    void fastnn_acc_row_f64(Py_ssize_t n, const double* x, double* acc)

ctypedef fused index_t:
    int32_t
    int64_t

ctypedef fused floating:
    float
    double


# Rows per parallel chunk: big enough to amortise scheduling, small enough to
# balance long-tailed row lengths over the threads.
cdef enum:
    ROW_CHUNK = 16
    # Elements per block of a deterministic reduction.
    SUM_BLOCK = 4096
    # Columns per thread's block in _sum_rows.
    SUM_COLS = 128
    # Elements per parallel chunk of an element-wise update.
    ELEM_CHUNK = 16384



cdef inline void _axpy(Py_ssize_t n, floating a, const floating* x, floating* y) noexcept nogil:
    if floating is float:
        fastnn_axpy_f32(n, a, x, y)
    else:
        fastnn_axpy_f64(n, a, x, y)


cdef inline void _combine_rows(const index_t* cols, const index_t* perm,
                               const floating* vals, index_t lo, index_t hi,
                               const floating* B, Py_ssize_t k, floating* y) noexcept nogil:
    """y += sum over p in [lo, hi) of vals[perm[p] or p] * B[cols[p], :], in order,
    four rows at a time so y is loaded and stored once per four, prefetching the
    next four rows of B (they are scattered: the hardware cannot guess them)."""
    cdef index_t p = lo, nxt
    cdef floating a0, a1, a2, a3
    while p + 4 <= hi:
        if perm != NULL:
            a0 = vals[perm[p]]
            a1 = vals[perm[p + 1]]
            a2 = vals[perm[p + 2]]
            a3 = vals[perm[p + 3]]
        else:
            a0 = vals[p]
            a1 = vals[p + 1]
            a2 = vals[p + 2]
            a3 = vals[p + 3]
        nxt = p + 4 if p + 8 <= hi else p
        if floating is float:
            fastnn_axpy4_f32(k, a0, B + cols[p] * k, a1, B + cols[p + 1] * k,
                             a2, B + cols[p + 2] * k, a3, B + cols[p + 3] * k, y,
                             B + cols[nxt] * k, B + cols[nxt + 1] * k,
                             B + cols[nxt + 2] * k, B + cols[nxt + 3] * k)
        else:
            fastnn_axpy4_f64(k, a0, B + cols[p] * k, a1, B + cols[p + 1] * k,
                             a2, B + cols[p + 2] * k, a3, B + cols[p + 3] * k, y,
                             B + cols[nxt] * k, B + cols[nxt + 1] * k,
                             B + cols[nxt + 2] * k, B + cols[nxt + 3] * k)
        p = p + 4
    while p < hi:
        _axpy(k, vals[perm[p]] if perm != NULL else vals[p], B + cols[p] * k, y)
        p = p + 1


cdef inline floating _dot(const floating* x, const floating* y, Py_ssize_t n) noexcept nogil:
    if floating is float:
        return fastnn_dot_f32(n, x, y)
    else:
        return fastnn_dot_f64(n, x, y)


cdef inline void _acc_rows_block(const floating* A, Py_ssize_t n, Py_ssize_t k, Py_ssize_t c0,
                                 Py_ssize_t c1, double* acc) noexcept nogil:
    """acc[c0:c1] += A[i, c0:c1] for i = 0, 1, ..., n - 1 in that order, in float64
    (A: n x k, C order): one column block of _sum_rows' sums."""
    cdef Py_ssize_t i
    for i in range(n):
        if floating is float:
            fastnn_acc_row_f32(c1 - c0, A + i * k + c0, acc + c0)
        else:
            fastnn_acc_row_f64(c1 - c0, A + i * k + c0, acc + c0)



cdef inline void _adam_n(Py_ssize_t n, floating* p, floating* g, floating* m, floating* v,
                         double b1, double b2, double lr_t, double eps_t, double wd,
                         double keep, bint zero_grad) noexcept nogil:
    """Adam on n contiguous elements: adam_update's kernel (every fused update
    that must match it bit for bit goes through here)."""
    if floating is float:
        fastnn_adam_f32(n, p, g, m, v, <float>b1, <float>b2, <float>lr_t, <float>eps_t,
                        <float>wd, <float>keep, zero_grad)
    else:
        fastnn_adam_f64(n, p, g, m, v, b1, b2, lr_t, eps_t, wd, keep, zero_grad)
