# cython: language_level=3
# distutils: extra_compile_args = -fno-math-errno
"""Sparse kernels for recommendation: CSR x dense (SpMM, with a fused bias +
activation epilogue), its transpose, sampled dense x dense (SDDMM), the masked
squared-error loss over observed entries, a fused Adam step, the transpose
SpMM fused with Adam (the weight gradient applied without being stored), and
``autorec_adam_step``, a whole exact AutoRec training step (Adam + L2).
Compiled to ``fastnn._C.sparse``; the per-row inner loops are C in
sparse_simd.h (AVX2/AVX-512 versions chosen at load time).

Holds kernels only: no model logic, no scipy. Every public function validates
its arguments with NumPy (dtypes, shapes, contiguity, CSR structure, index
ranges) and raises ValueError naming what was wrong before any ``nogil`` code
runs. Results are deterministic: each output element is written by one thread
in a fixed order, and reductions sum fixed-size blocks, then the blocks in order
(``autorec_adam_step``'s "outputs" sweep sums dH in one partial per block of
output units, in block order: its bits depend on ``n_blocks``, not on the
schedule; its "samples" sweep has no partials).

CSR arguments come as ``(indptr, indices, data)`` of an ``n x m`` matrix;
``indptr`` and ``indices`` share one integer dtype (int32 or int64), every
floating array of one call shares one dtype (float32 or float64).
"""
import numpy as np

cimport cython
from cython.parallel cimport prange, threadid
from libc.math cimport sqrt
from libc.string cimport memcpy, memset
from libc.stdint cimport int32_t, int64_t
include "common/threads.pxi"

cdef extern from "sparse_simd.h" nogil:
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

_ACTIVATIONS = {"linear": 0, "sigmoid": 1, "relu": 2, "tanh": 3}
_INDEX_DTYPES = (np.dtype(np.int32), np.dtype(np.int64))
_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
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


# --------------------------------------------------------------- validation
def _array(x, name, ndim):
    if not isinstance(x, np.ndarray):
        raise ValueError(f"{name} must be a numpy.ndarray, got {type(x).__name__}")
    if x.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {x.shape}")
    if not x.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (use numpy.ascontiguousarray)")
    return x


def _float_dtype(arrays):
    """The one float dtype shared by ``arrays`` (a dict name -> array or None)."""
    dtype = None
    for name, a in arrays.items():
        if a is None:
            continue
        if a.dtype not in _FLOAT_DTYPES:
            raise ValueError(f"{name} has dtype {a.dtype}; expected float32 or float64")
        if dtype is None:
            dtype = a.dtype
        elif a.dtype != dtype:
            names = [k for k, v in arrays.items() if v is not None]
            raise ValueError(f"{name} has dtype {a.dtype} but {names[0]} has {dtype}; "
                             f"{', '.join(names)} must share one float dtype")
    return dtype


def _writable(x, name):
    if not x.flags.writeable:
        raise ValueError(f"{name} is read-only; the kernel writes into it")


def check_csr(indptr, indices, n_rows, n_cols, nnz=None, name="A"):
    """Validate a CSR structure of shape ``(n_rows, n_cols)``; raise ValueError.

    Checks: 1-D C-contiguous int32/int64 arrays of one dtype, ``len(indptr) ==
    n_rows + 1``, ``indptr[0] == 0``, ``indptr`` non-decreasing,
    ``indptr[-1] == len(indices)`` (``== nnz`` when given) and every column
    index in ``[0, n_cols)``, and every row's column indices in non-decreasing
    order (sorted; a repeated index is a second stored entry, allowed).
    """
    _array(indptr, f"{name}.indptr", 1)
    _array(indices, f"{name}.indices", 1)
    if indptr.dtype not in _INDEX_DTYPES:
        raise ValueError(f"{name}.indptr has dtype {indptr.dtype}; expected int32 or int64")
    if indices.dtype != indptr.dtype:
        raise ValueError(f"{name}.indices has dtype {indices.dtype} but {name}.indptr has "
                         f"{indptr.dtype}; they must match")
    if indptr.shape[0] != n_rows + 1:
        raise ValueError(f"{name}.indptr has length {indptr.shape[0]}; expected "
                         f"n_rows + 1 = {n_rows + 1}")
    if indptr[0] != 0:
        raise ValueError(f"{name}.indptr[0] is {indptr[0]}; expected 0")
    # Compiled passes over the arrays; NumPy only to name what is wrong.
    if _indptr_decreases(indptr):
        row = int(np.argmax(np.diff(indptr) < 0))
        raise ValueError(f"{name}.indptr decreases at row {row} "
                         f"({indptr[row]} -> {indptr[row + 1]}); it must be non-decreasing")
    if indptr[n_rows] != indices.shape[0]:
        raise ValueError(f"{name}.indptr[-1] is {indptr[n_rows]} but {name}.indices has "
                         f"{indices.shape[0]} entries; they must be equal (nnz)")
    if nnz is not None and indices.shape[0] != nnz:
        raise ValueError(f"{name} has {indices.shape[0]} stored entries; expected {nnz}")
    bad = _indices_scan(indptr, indices, n_cols)
    if bad & 1:
        lo, hi = indices.min(), indices.max()
        bad = lo if lo < 0 else hi
        raise ValueError(f"{name}.indices holds column {bad}; expected every column "
                         f"index in [0, {n_cols})")
    if bad & 2:
        starts = np.zeros(indices.shape[0], bool)
        starts[indptr[:-1][indptr[:-1] < indices.shape[0]]] = True
        p = int(np.flatnonzero((np.diff(indices) < 0) & ~starts[1:])[0]) + 1
        row = int(np.searchsorted(indptr, p, side="right")) - 1
        raise ValueError(f"{name}.indices are not sorted in row {row} (column "
                         f"{indices[p - 1]} before {indices[p]}); expected each row's column "
                         f"indices in non-decreasing order (SciPy: A.sort_indices())")


@cython.boundscheck(False)
@cython.wraparound(False)
def _indptr_decreases(const index_t[::1] indptr):
    cdef Py_ssize_t n = indptr.shape[0] - 1, i
    cdef int dec = 0
    with nogil:
        for i in range(n):
            dec = dec | (indptr[i + 1] < indptr[i])
    return dec


@cython.boundscheck(False)
@cython.wraparound(False)
def _indices_scan(const index_t[::1] indptr, const index_t[::1] indices, Py_ssize_t n_cols):
    """On a valid indptr: bit 0, an index outside [0, n_cols); bit 1, a row whose
    indices decrease somewhere (repeats are allowed: each is a stored entry)."""
    cdef Py_ssize_t n = indptr.shape[0] - 1, nnz = indices.shape[0], i, p
    cdef int out = 0, dec = 0
    with nogil:
        for p in range(nnz):
            out = out | (indices[p] < 0) | (indices[p] >= n_cols)
        for i in range(n):
            for p in range(indptr[i] + 1, indptr[i + 1]):
                dec = dec | (indices[p] < indices[p - 1])
    return out | (dec << 1)


@cython.boundscheck(False)
@cython.wraparound(False)
def _csr_take_rows(const index_t[::1] indptr, const index_t[::1] indices,
                   const floating[::1] data, const int64_t[::1] rows, index_t[::1] out_indptr,
                   index_t[::1] out_indices, floating[::1] out_data):
    cdef Py_ssize_t r, nr = rows.shape[0], i
    cdef index_t lo, hi, q
    with nogil:
        out_indptr[0] = 0
        for r in range(nr):
            i = rows[r]
            out_indptr[r + 1] = out_indptr[r] + (indptr[i + 1] - indptr[i])
        for r in range(nr):
            i = rows[r]
            lo = indptr[i]
            hi = indptr[i + 1]
            q = out_indptr[r]
            if hi > lo:
                memcpy(&out_indices[q], &indices[lo], (hi - lo) * sizeof(index_t))
                memcpy(&out_data[q], &data[lo], (hi - lo) * sizeof(floating))


def csr_take_rows(indptr, indices, data, rows):
    """Rows ``rows`` (any order, repeats allowed) of a CSR matrix whose
    structure is already valid (``check_csr``), as ``(indptr, indices, data)``
    of the same dtypes: what ``A[rows]`` gives in SciPy, without its overhead.
    ``rows`` must be integers in ``[0, n_rows)``."""
    rows = np.asarray(rows)
    if rows.ndim != 1 or (rows.size and rows.dtype.kind not in "iu"):
        raise ValueError(f"rows must be a 1-D array of integers, got dtype {rows.dtype} "
                         f"and shape {rows.shape}")
    n = indptr.shape[0] - 1
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    if rows.size and (rows.min() < 0 or rows.max() >= n):
        bad = rows.min() if rows.min() < 0 else rows.max()
        raise ValueError(f"rows holds {bad}; expected row numbers in [0, {n})")
    nnz = int((indptr[rows + 1] - indptr[rows]).sum()) if rows.size else 0
    out_indptr = np.empty(rows.shape[0] + 1, indptr.dtype)
    out_indices = np.empty(nnz, indptr.dtype)
    out_data = np.empty(nnz, data.dtype)
    _csr_take_rows(indptr, indices, data, rows, out_indptr, out_indices, out_data)
    return out_indptr, out_indices, out_data


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


@cython.boundscheck(False)
@cython.wraparound(False)
def _sum_rows(const floating[:, ::1] A, floating[::1] out):
    """out = A.sum(axis=0), summed in float64 row by row, in row order (each
    element's order: threads take blocks of columns, so the bits do not depend
    on their number)."""
    cdef Py_ssize_t n = A.shape[0], k = A.shape[1], t, blk, c0, c1
    cdef Py_ssize_t nblk = (k + SUM_COLS - 1) // SUM_COLS
    # Memory-bound (the rows are often in another core's cache or evicted): threads
    # pay from far less work than an arithmetic loop.
    cdef int nt = fastnn_threads_for(8.0 * n * k)
    acc_arr = np.zeros(k, np.float64)
    cdef double[::1] acc = acc_arr
    if k == 0:
        return
    if nt > nblk:
        nt = <int>nblk
    for blk in prange(nblk, nogil=True, schedule="static", num_threads=nt):
        c0 = blk * SUM_COLS
        c1 = min(c0 + SUM_COLS, k)
        _acc_rows_block(&A[0, 0], n, k, c0, c1, &acc[0])
    for t in range(k):
        out[t] = <floating>acc[t]


def _shape(x, name, shape):
    if x.shape != shape:
        raise ValueError(f"{name} has shape {x.shape}; expected {shape}")


# ---------------------------------------------------------------------- SpMM
@cython.boundscheck(False)
@cython.wraparound(False)
def _csr_matmul(const index_t[::1] indptr, const index_t[::1] indices,
                const floating[::1] data, const floating[:, ::1] B,
                floating[:, ::1] out, bint accumulate, const floating[::1] bias,
                int act):
    cdef Py_ssize_t n = indptr.shape[0] - 1, k = B.shape[1]
    cdef Py_ssize_t i, t
    cdef index_t p
    cdef floating* orow
    cdef const floating* b = &bias[0] if bias.shape[0] else NULL
    cdef int nt = fastnn_threads_for(<double>(indptr[n] + n) * k)
    for i in prange(n, nogil=True, schedule="dynamic", chunksize=ROW_CHUNK, num_threads=nt):
        orow = &out[i, 0]
        if not accumulate:
            for t in range(k):
                orow[t] = 0
        _combine_rows(&indices[0], <const index_t*>NULL, &data[0], indptr[i], indptr[i + 1],
                      &B[0, 0], k, orow)
        if b != NULL or act != 0:
            if floating is float:
                fastnn_bias_act_f32(k, orow, b, act)
            else:
                fastnn_bias_act_f64(k, orow, b, act)


def csr_matmul(indptr, indices, data, B, out, accumulate=False, bias=None,
               activation="linear"):
    """``out = act(A @ B + bias)`` for CSR ``A`` (n x m) and dense C-contiguous
    ``B`` (m x k) into ``out`` (n x k); ``accumulate`` adds ``out``'s old value
    before the bias and activation (``out = act(out + A @ B + bias)``).

    ``bias`` (length k, or None) and ``activation`` (linear, sigmoid, relu,
    tanh) are a fused epilogue applied to each row while it is in cache.
    Parallel over rows; each output row is one thread's sum in CSR order.
    Returns ``out``.
    """
    _array(data, "data", 1)
    _array(B, "B", 2)
    _array(out, "out", 2)
    if bias is not None:
        _array(bias, "bias", 1)
    _float_dtype({"data": data, "B": B, "out": out, "bias": bias})
    _writable(out, "out")
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation={activation!r}; expected one of {sorted(_ACTIVATIONS)}")
    n = out.shape[0]
    check_csr(indptr, indices, n, B.shape[0], data.shape[0])
    _shape(out, "out", (n, B.shape[1]))
    if bias is not None:
        _shape(bias, "bias", (B.shape[1],))
    if n and B.shape[1]:
        _csr_matmul(indptr, indices, data, B, out, accumulate,
                    np.empty(0, out.dtype) if bias is None else bias, _ACTIVATIONS[activation])
    elif not accumulate:
        out[...] = 0
    return out


# ----------------------------------------------------------------- transpose
@cython.boundscheck(False)
@cython.wraparound(False)
def _csr_transpose(const index_t[::1] indptr, const index_t[::1] indices,
                   index_t[::1] t_indptr, index_t[::1] t_indices, index_t[::1] perm):
    cdef Py_ssize_t n = indptr.shape[0] - 1, m = t_indptr.shape[0] - 1
    cdef Py_ssize_t i, j
    cdef index_t p, q
    with nogil:
        for j in range(m + 1):
            t_indptr[j] = 0
        for p in range(indptr[n]):
            t_indptr[indices[p] + 1] += 1
        for j in range(m):
            t_indptr[j + 1] += t_indptr[j]
        # Stable counting sort: within a transposed row, entries keep row order,
        # so sums over them run in the same order every call.
        for i in range(n):
            for p in range(indptr[i], indptr[i + 1]):
                j = indices[p]
                q = t_indptr[j]
                t_indices[q] = <index_t>i
                perm[q] = p
                t_indptr[j] = q + 1
        for j in range(m, 0, -1):
            t_indptr[j] = t_indptr[j - 1]
        t_indptr[0] = 0


def csr_transpose(indptr, indices, n_cols):
    """Structure of ``A.T`` for CSR ``A`` with ``n_cols`` columns.

    Returns ``(t_indptr, t_indices, perm)`` in ``A``'s index dtype, where
    ``A.T``'s data is ``data[perm]``. Rows of ``A.T`` list their column indices
    in increasing order. Compute once per sparsity pattern and pass it to
    ``csr_t_matmul(..., transpose=...)`` to reuse it.
    """
    _array(indptr, "indptr", 1)
    check_csr(indptr, indices, indptr.shape[0] - 1, n_cols)
    nnz = indices.shape[0]
    t_indptr = np.empty(n_cols + 1, dtype=indptr.dtype)
    t_indices = np.empty(nnz, dtype=indptr.dtype)
    perm = np.empty(nnz, dtype=indptr.dtype)
    _csr_transpose(indptr, indices, t_indptr, t_indices, perm)
    return t_indptr, t_indices, perm


@cython.boundscheck(False)
@cython.wraparound(False)
def _csr_perm_matmul(const index_t[::1] t_indptr, const index_t[::1] t_indices,
                     const index_t[::1] perm, const floating[::1] data,
                     const floating[:, ::1] G, floating[:, ::1] out, bint accumulate):
    cdef Py_ssize_t m = t_indptr.shape[0] - 1, k = G.shape[1]
    cdef Py_ssize_t j, t
    cdef index_t q
    cdef floating* orow
    cdef int nt = fastnn_threads_for(<double>(t_indptr[m] + m) * k)
    for j in prange(m, nogil=True, schedule="dynamic", chunksize=ROW_CHUNK, num_threads=nt):
        orow = &out[j, 0]
        if not accumulate:
            for t in range(k):
                orow[t] = 0
        _combine_rows(&t_indices[0], &perm[0], &data[0], t_indptr[j], t_indptr[j + 1],
                      &G[0, 0], k, orow)


def _transpose_of(indptr, indices, data, n, m, transpose):
    """Validated ``(t_indptr, t_indices, perm)`` of CSR ``A`` (n x m)."""
    check_csr(indptr, indices, n, m, data.shape[0])
    if transpose is None:
        t_indptr = np.empty(m + 1, dtype=indptr.dtype)
        t_indices = np.empty(indices.shape[0], dtype=indptr.dtype)
        perm = np.empty(indices.shape[0], dtype=indptr.dtype)
        _csr_transpose(indptr, indices, t_indptr, t_indices, perm)
        return t_indptr, t_indices, perm
    t_indptr, t_indices, perm = transpose
    check_csr(t_indptr, t_indices, m, n, data.shape[0], name="transpose")
    _array(perm, "transpose perm", 1)
    if perm.dtype != t_indptr.dtype or perm.shape[0] != data.shape[0]:
        raise ValueError(f"transpose perm must be {t_indptr.dtype} with {data.shape[0]} "
                         f"entries, got {perm.dtype} with {perm.shape[0]}")
    return t_indptr, t_indices, perm


def csr_t_matmul(indptr, indices, data, G, out, accumulate=False, transpose=None):
    """``out = A.T @ G`` (or ``+=`` when ``accumulate``) for CSR ``A`` (n x m),
    dense ``G`` (n x k), ``out`` (m x k): the weight gradient of ``A @ W``.

    Deterministic without atomics: it builds the transposed structure (or uses
    ``transpose = csr_transpose(indptr, indices, m)``) and runs a row-parallel
    SpMM on it, so each output row is one thread's sum in row order of ``A``.
    Returns ``out``.
    """
    _array(data, "data", 1)
    _array(G, "G", 2)
    _array(out, "out", 2)
    _float_dtype({"data": data, "G": G, "out": out})
    _writable(out, "out")
    n, m = G.shape[0], out.shape[0]
    _shape(out, "out", (m, G.shape[1]))
    t_indptr, t_indices, perm = _transpose_of(indptr, indices, data, n, m, transpose)
    if m and G.shape[1]:
        _csr_perm_matmul(t_indptr, t_indices, perm, data, G, out, accumulate)
    return out


@cython.boundscheck(False)
@cython.wraparound(False)
def _csr_perm_matmul_adam(const index_t[::1] t_indptr, const index_t[::1] t_indices,
                          const index_t[::1] perm, const floating[::1] data,
                          const floating[:, ::1] G, floating[:, ::1] param,
                          floating[:, ::1] m, floating[:, ::1] v, double lr_t, double beta1,
                          double beta2, double eps_t, double wd, double decay,
                          floating[::1] rows_buf, Py_ssize_t stride, int nt):
    cdef Py_ssize_t rows = t_indptr.shape[0] - 1, k = G.shape[1]
    cdef Py_ssize_t j, t
    cdef floating* grad
    for j in prange(rows, nogil=True, schedule="dynamic", chunksize=ROW_CHUNK,
                    num_threads=nt):
        # This thread's gradient row: it lives in L1, never in memory.
        grad = &rows_buf[threadid() * stride]
        for t in range(k):
            grad[t] = 0
        _combine_rows(&t_indices[0], &perm[0], &data[0], t_indptr[j], t_indptr[j + 1],
                      &G[0, 0], k, grad)
        if floating is float:
            fastnn_adam_f32(k, &param[j, 0], grad, &m[j, 0], &v[j, 0], <float>beta1,
                            <float>beta2, <float>lr_t, <float>eps_t, <float>wd,
                            <float>(1.0 - decay), 0)
        else:
            fastnn_adam_f64(k, &param[j, 0], grad, &m[j, 0], &v[j, 0], beta1, beta2,
                            lr_t, eps_t, wd, 1.0 - decay, 0)


def csr_t_matmul_adam(indptr, indices, data, G, param, m, v, lr, beta1, beta2, eps, step,
                      weight_decay=0.0, decoupled=False, transpose=None):
    """One Adam step on ``param`` (m x k) whose gradient is ``A.T @ G`` (CSR ``A``
    n x m, dense ``G`` n x k), without materialising the gradient.

    Each thread computes one gradient row into an L1 buffer and applies Adam
    to that row of ``param``, ``m``, ``v`` at once: every row is updated every
    step (rows with no entries get gradient 0, plus L2), so the result equals
    ``csr_t_matmul`` followed by ``adam_update`` exactly, at the memory traffic
    of the Adam pass alone. Same arguments and math as ``adam_update``.
    """
    _array(data, "data", 1)
    _array(G, "G", 2)
    arrays = {"data": data, "G": G, "param": param, "m": m, "v": v}
    for name in ("param", "m", "v"):
        _array(arrays[name], name, 2)
        _writable(arrays[name], name)
    _float_dtype(arrays)
    n, rows = G.shape[0], param.shape[0]
    _shape(param, "param", (rows, G.shape[1]))
    _shape(m, "m", param.shape)
    _shape(v, "v", param.shape)
    t_indptr, t_indices, perm = _transpose_of(indptr, indices, data, n, rows, transpose)
    lr_t, eps_t, wd, decay = _adam_coefficients(lr, beta1, beta2, eps, step, weight_decay,
                                                decoupled)
    if param.size:
        k = G.shape[1]
        nt = fastnn_threads_for((t_indptr[rows] + 4.0 * rows) * k)
        # One gradient row per thread, each on its own 64-byte lines (allocated
        # here, with the GIL, so the parallel loop never needs it).
        per_line = 64 // param.itemsize
        stride = -(-k // per_line) * per_line
        buf = np.empty(nt * stride + per_line, dtype=param.dtype)
        start = (-buf.ctypes.data % 64) // param.itemsize
        _csr_perm_matmul_adam(t_indptr, t_indices, perm, data, G, param, m, v, lr_t, beta1,
                              beta2, eps_t, wd, decay, buf[start:start + nt * stride],
                              stride, nt)


# --------------------------------------------------------------------- SDDMM
cdef inline void _sddmm_row(const floating* hrow, const floating* V, const index_t* cols,
                            index_t lo, index_t hi, Py_ssize_t k,
                            floating* out) noexcept nogil:
    """out[p] = hrow . V[cols[p], :] for p in [lo, hi); four at a time sharing
    the loads of hrow (the same sums as _dot), prefetching the next four rows."""
    cdef index_t p = lo, nxt
    while p + 4 <= hi:
        nxt = p + 4 if p + 8 <= hi else p
        if floating is float:
            fastnn_dot4_f32(k, hrow, V + cols[p] * k, V + cols[p + 1] * k,
                            V + cols[p + 2] * k, V + cols[p + 3] * k, out + p,
                            V + cols[nxt] * k, V + cols[nxt + 1] * k,
                            V + cols[nxt + 2] * k, V + cols[nxt + 3] * k)
        else:
            fastnn_dot4_f64(k, hrow, V + cols[p] * k, V + cols[p + 1] * k,
                            V + cols[p + 2] * k, V + cols[p + 3] * k, out + p,
                            V + cols[nxt] * k, V + cols[nxt + 1] * k,
                            V + cols[nxt + 2] * k, V + cols[nxt + 3] * k)
        p = p + 4
    while p < hi:
        out[p] = _dot(hrow, V + cols[p] * k, k)
        p = p + 1


@cython.boundscheck(False)
@cython.wraparound(False)
def _sddmm(const index_t[::1] indptr, const index_t[::1] indices,
           const floating[:, ::1] H, const floating[:, ::1] Vt,
           const floating[::1] c, bint has_c, floating[::1] out_vals):
    cdef Py_ssize_t n = indptr.shape[0] - 1, k = H.shape[1]
    cdef Py_ssize_t i
    cdef index_t p
    cdef const index_t* cols = &indices[0]
    cdef floating* out = &out_vals[0]
    cdef int nt = fastnn_threads_for(<double>indptr[n] * k)
    for i in prange(n, nogil=True, schedule="dynamic", chunksize=ROW_CHUNK, num_threads=nt):
        _sddmm_row(&H[i, 0], &Vt[0, 0], cols, indptr[i], indptr[i + 1], k, out)
        if has_c:
            for p in range(indptr[i], indptr[i + 1]):
                out[p] = out[p] + c[cols[p]]


def sddmm(indptr, indices, H, Vt, c, out_vals):
    """Sampled dense x dense: for each stored ``(i, j)`` of the CSR pattern
    (n x m), ``out_vals[p] = H[i, :] . Vt[j, :] + c[j]``.

    ``H`` is (n x k), ``Vt`` is (m x k): the decoder weight stored transposed
    (output unit by hidden unit) so every dot product reads two contiguous rows.
    ``c`` (length m) may be None. ``out_vals`` has length nnz, in CSR order.
    Returns ``out_vals``.
    """
    _array(H, "H", 2)
    _array(Vt, "Vt", 2)
    _array(out_vals, "out_vals", 1)
    if c is not None:
        _array(c, "c", 1)
    _float_dtype({"H": H, "Vt": Vt, "c": c, "out_vals": out_vals})
    _writable(out_vals, "out_vals")
    n, m = H.shape[0], Vt.shape[0]
    check_csr(indptr, indices, n, m, out_vals.shape[0])
    if Vt.shape[1] != H.shape[1]:
        raise ValueError(f"Vt has shape {Vt.shape}; expected ({m}, {H.shape[1]}) "
                         f"(its second axis must match H's, {H.shape[1]})")
    if c is not None:
        _shape(c, "c", (m,))
    if out_vals.shape[0] == 0:
        return out_vals
    if H.shape[1] == 0:
        out_vals[...] = c[indices] if c is not None else 0
        return out_vals
    _sddmm(indptr, indices, H, Vt, np.empty(0, H.dtype) if c is None else c, c is not None,
           out_vals)
    return out_vals


@cython.boundscheck(False)
@cython.wraparound(False)
def _sddmm_sq_error(const index_t[::1] indptr, const index_t[::1] indices,
                    const floating[:, ::1] H, const floating[:, ::1] Vt,
                    const floating[::1] c, bint has_c, const floating[::1] target,
                    const floating[::1] weights, bint has_w, floating[::1] out_vals,
                    floating[::1] grad_vals, floating[:, ::1] dH, bint accumulate,
                    double[::1] row_loss):
    cdef Py_ssize_t n = indptr.shape[0] - 1, k = H.shape[1]
    cdef Py_ssize_t i, t
    cdef index_t p, lo, hi
    cdef double s, d, w
    cdef const floating* V = &Vt[0, 0]
    cdef const index_t* cols = &indices[0]
    cdef floating* out = &out_vals[0]
    cdef floating* grad = &grad_vals[0]
    cdef floating* dhrow
    cdef int nt = fastnn_threads_for(<double>indptr[n] * k * 2)
    for i in prange(n, nogil=True, schedule="dynamic", chunksize=ROW_CHUNK, num_threads=nt):
        lo = indptr[i]
        hi = indptr[i + 1]
        _sddmm_row(&H[i, 0], V, cols, lo, hi, k, out)
        s = 0
        for p in range(lo, hi):
            if has_c:
                out[p] = out[p] + c[cols[p]]
            d = <double>out[p] - <double>target[p]
            w = <double>weights[p] if has_w else 1.0
            s = s + w * d * d
            grad[p] = <floating>(2.0 * w * d)
        row_loss[i] = s
        dhrow = &dH[i, 0]
        if not accumulate:
            for t in range(k):
                dhrow[t] = 0
        # The row's Vt rows were just read for the dots: still in cache.
        _combine_rows(cols, <const index_t*>NULL, grad, lo, hi, V, k, dhrow)


def sddmm_sq_error(indptr, indices, H, Vt, c, target_vals, out_vals, grad_vals, dH,
                   weights=None, accumulate=False):
    """Decoder forward, masked squared error and the decoder's input gradient
    in one pass over the pattern (each ``Vt`` row is read once per entry, not
    twice): ``out_vals = sddmm(...)``, ``grad_vals = 2 w (out - target)``,
    ``dH = G @ Vt`` (``+=`` when ``accumulate``) with ``G`` the sparse matrix
    of ``grad_vals``. Returns the loss ``sum w (out - target)**2`` (float64,
    summed per row, then over rows in order). ``out_vals``, ``grad_vals`` and
    ``dH`` equal what ``sddmm``, ``masked_sq_error`` and ``csr_matmul`` give."""
    for name, a, nd in (("H", H, 2), ("Vt", Vt, 2), ("target_vals", target_vals, 1),
                        ("out_vals", out_vals, 1), ("grad_vals", grad_vals, 1), ("dH", dH, 2)):
        _array(a, name, nd)
    if c is not None:
        _array(c, "c", 1)
    if weights is not None:
        _array(weights, "weights", 1)
    _float_dtype({"H": H, "Vt": Vt, "c": c, "target_vals": target_vals, "weights": weights,
                  "out_vals": out_vals, "grad_vals": grad_vals, "dH": dH})
    for name, a in (("out_vals", out_vals), ("grad_vals", grad_vals), ("dH", dH)):
        _writable(a, name)
    n, m = H.shape[0], Vt.shape[0]
    nnz = out_vals.shape[0]
    check_csr(indptr, indices, n, m, nnz)
    if Vt.shape[1] != H.shape[1]:
        raise ValueError(f"Vt has shape {Vt.shape}; expected ({m}, {H.shape[1]}) "
                         f"(its second axis must match H's, {H.shape[1]})")
    if c is not None:
        _shape(c, "c", (m,))
    for name, a in (("target_vals", target_vals), ("grad_vals", grad_vals), ("weights", weights)):
        if a is not None:
            _shape(a, name, (nnz,))
    _shape(dH, "dH", H.shape)
    if nnz == 0 or H.shape[1] == 0:
        pred = sddmm(indptr, indices, H, Vt, c, out_vals)
        loss, _ = masked_sq_error(pred, target_vals, weights, grad_vals)
        if not accumulate:
            dH[...] = 0
        return loss
    row_loss = np.empty(n, dtype=np.float64)
    _sddmm_sq_error(indptr, indices, H, Vt, np.empty(0, H.dtype) if c is None else c,
                    c is not None, target_vals, target_vals if weights is None else weights,
                    weights is not None, out_vals, grad_vals, dH, accumulate, row_loss)
    return float(row_loss.sum())


# --------------------------------------------------------- column reductions
@cython.boundscheck(False)
@cython.wraparound(False)
def _column_sums(const index_t[::1] indices, const floating[::1] vals,
                 double[::1] acc):
    cdef Py_ssize_t p
    with nogil:
        for p in range(indices.shape[0]):
            acc[indices[p]] += vals[p]


def column_sums(indices, vals, out, accumulate=True):
    """``out[j] += sum of vals[p] over entries p in column j`` (float64 sums,
    serial, CSR order). ``out`` (length m) gets ``=`` instead of ``+=`` when
    ``accumulate`` is false. Returns ``out``."""
    _array(indices, "indices", 1)
    _array(vals, "vals", 1)
    _array(out, "out", 1)
    _float_dtype({"vals": vals, "out": out})
    _writable(out, "out")
    if indices.dtype not in _INDEX_DTYPES:
        raise ValueError(f"indices has dtype {indices.dtype}; expected int32 or int64")
    _shape(vals, "vals", indices.shape)
    m = out.shape[0]
    if indices.shape[0] and (indices.min() < 0 or indices.max() >= m):
        raise ValueError(f"indices must lie in [0, {m}) (len(out)); got "
                         f"[{indices.min()}, {indices.max()}]")
    acc = np.zeros(m, dtype=np.float64)
    _column_sums(indices, vals, acc)
    if accumulate:
        out += acc.astype(out.dtype, copy=False)
    else:
        out[...] = acc
    return out


# ------------------------------------------------------------------- loss
@cython.boundscheck(False)
@cython.wraparound(False)
def _masked_sq_error(const floating[::1] pred, const floating[::1] target,
                     const floating[::1] weights, bint has_w,
                     floating[::1] grad, double[::1] partial):
    cdef Py_ssize_t nnz = pred.shape[0], nblocks = partial.shape[0]
    cdef Py_ssize_t b, p, end
    cdef double s, d, w
    cdef int nt = fastnn_threads_for(<double>nnz)
    for b in prange(nblocks, nogil=True, schedule="static", num_threads=nt):
        s = 0
        end = (b + 1) * SUM_BLOCK
        if end > nnz:
            end = nnz
        for p in range(b * SUM_BLOCK, end):
            d = <double>pred[p] - <double>target[p]
            w = <double>weights[p] if has_w else 1.0
            s = s + w * d * d
            grad[p] = <floating>(2.0 * w * d)
        partial[b] = s


def masked_sq_error(pred_vals, target_vals, weights=None, grad_out=None):
    """Squared error over observed entries only.

    ``loss = sum_p w[p] * (pred[p] - target[p])**2`` (``w`` = 1 without
    ``weights``), accumulated in float64 in fixed blocks (deterministic), and
    ``grad[p] = 2 * w[p] * (pred[p] - target[p])``, the gradient w.r.t.
    ``pred_vals``, written to ``grad_out`` when given. Returns
    ``(loss: float, grad_vals)``.
    """
    _array(pred_vals, "pred_vals", 1)
    _array(target_vals, "target_vals", 1)
    if weights is not None:
        _array(weights, "weights", 1)
    if grad_out is None:
        grad_out = np.empty_like(pred_vals)
    _array(grad_out, "grad_out", 1)
    _float_dtype({"pred_vals": pred_vals, "target_vals": target_vals,
                  "weights": weights, "grad_out": grad_out})
    _writable(grad_out, "grad_out")
    nnz = pred_vals.shape[0]
    _shape(target_vals, "target_vals", (nnz,))
    if weights is not None:
        _shape(weights, "weights", (nnz,))
    _shape(grad_out, "grad_out", (nnz,))
    if nnz == 0:
        return 0.0, grad_out
    partial = np.empty((nnz + SUM_BLOCK - 1) // SUM_BLOCK, dtype=np.float64)
    _masked_sq_error(pred_vals, target_vals, pred_vals if weights is None else weights,
                     weights is not None, grad_out, partial)
    return float(partial.sum()), grad_out


# ---------------------------------------------------------------- optimizer
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


@cython.boundscheck(False)
@cython.wraparound(False)
def _adam(floating[::1] param, floating[::1] grad, floating[::1] m, floating[::1] v,
          double lr_t, double beta1, double beta2, double eps_t, double wd, double decay,
          bint zero_grad):
    cdef Py_ssize_t n = param.shape[0], nchunks = (n + ELEM_CHUNK - 1) // ELEM_CHUNK
    cdef Py_ssize_t c, start, size
    cdef int nt = fastnn_threads_for(<double>n)
    for c in prange(nchunks, nogil=True, schedule="static", num_threads=nt):
        start = c * ELEM_CHUNK
        size = n - start
        if size > ELEM_CHUNK:
            size = ELEM_CHUNK
        _adam_n(size, &param[start], &grad[start], &m[start], &v[start], beta1, beta2, lr_t,
                eps_t, wd, 1.0 - decay, zero_grad)


def _adam_coefficients(lr, beta1, beta2, eps, step, weight_decay, decoupled):
    """(step size, epsilon, L2, decoupled decay) with bias corrections folded in."""
    if step < 1:
        raise ValueError(f"step is {step}; expected a count starting at 1")
    c1 = 1.0 - beta1 ** step
    c2 = 1.0 - beta2 ** step
    return (lr * sqrt(c2) / c1, eps * sqrt(c2), 0.0 if decoupled else weight_decay,
            lr * weight_decay if decoupled else 0.0)


def adam_update(param, grad, m, v, lr, beta1, beta2, eps, step, weight_decay=0.0,
                decoupled=False, zero_grad=False):
    """One fused, parallel Adam step in place (``step`` counts from 1): one pass
    over ``param``, ``grad``, ``m``, ``v`` (same shape, C-contiguous, one
    float dtype). Same math as ``Ops.adam_update``, with the bias corrections
    folded into the step size and epsilon:
    ``param -= lr/c1 * m / (sqrt(v/c2) + eps) == lr*sqrt(c2)/c1 * m / (sqrt(v) + eps*sqrt(c2))``.
    ``weight_decay`` is L2 added to the gradient, or AdamW decay when ``decoupled``.
    ``zero_grad`` sets ``grad`` to 0 in the same pass (ready for the next batch's
    accumulation), saving a separate pass over it.
    """
    arrays = {"param": param, "grad": grad, "m": m, "v": v}
    for name, a in arrays.items():
        if not isinstance(a, np.ndarray) or not a.flags.c_contiguous:
            raise ValueError(f"{name} must be a C-contiguous numpy.ndarray")
        if a.shape != param.shape:
            raise ValueError(f"{name} has shape {a.shape}; expected {param.shape} (param's)")
    _float_dtype(arrays)
    for name in ("param", "m", "v") + (("grad",) if zero_grad else ()):
        _writable(arrays[name], name)
    lr_t, eps_t, wd, decay = _adam_coefficients(lr, beta1, beta2, eps, step, weight_decay,
                                                decoupled)
    if param.size:
        _adam(param.reshape(-1), grad.reshape(-1), m.reshape(-1), v.reshape(-1),
              lr_t, beta1, beta2, eps_t, wd, decay, zero_grad)


# ------------------------------------------------- whole AutoRec training step
cdef inline double _adam_sq(Py_ssize_t k, floating* p, const floating* g, floating* m,
                            floating* v, double b1, double b2, double lr_t, double eps_t,
                            double wd) noexcept nogil:
    if floating is float:
        return fastnn_adam_sq_f32(k, p, g, m, v, <float>b1, <float>b2, <float>lr_t,
                                  <float>eps_t, <float>wd)
    else:
        return fastnn_adam_sq_f64(k, p, g, m, v, b1, b2, lr_t, eps_t, wd)


cdef inline void _adam1(floating* p, floating* g, floating* m, floating* v, double b1,
                        double b2, double lr_t, double eps_t) noexcept nogil:
    """Adam on one scalar, no L2: the same expression as adam_update's kernel."""
    _adam_n(1, p, g, m, v, b1, b2, lr_t, eps_t, 0.0, 1.0, 0)


cdef void _decoder_block(Py_ssize_t j0, Py_ssize_t j1, const index_t* tptr,
                         const index_t* tind, const index_t* perm, const floating* target,
                         const floating* H, Py_ssize_t n, Py_ssize_t k, floating* Vt,
                         floating* mV, floating* vV, floating* c, floating* mc, floating* vc,
                         double b1, double b2, double lr_t, double eps_t, double wd,
                         floating* dh, floating* grad, double* row_loss,
                         double* row_sq) noexcept nogil:
    """Output units (users) j0..j1-1 of the decoder, one at a time: predictions
    at the unit's observed entries, their squared error, the unit's Vt and c
    gradient (in a buffer) and its contribution to dH (into this block's partial
    ``dh``, n x k), then Adam (+ L2) on Vt[j] and Adam on c[j] at once: Vt[j] is
    read from memory once per step, by the Adam pass that has to read it anyway."""
    cdef Py_ssize_t j, t, u
    cdef index_t q, lo, hi, qn, i0, i1, i2, i3
    cdef floating pr[4]
    cdef floating g[4]
    cdef floating* vrow
    cdef floating cj, gc_f
    cdef double s, d, gc
    memset(dh, 0, n * k * sizeof(floating))
    for j in range(j0, j1):
        vrow = Vt + j * k
        lo = tptr[j]
        hi = tptr[j + 1]
        cj = c[j]
        for t in range(k):
            grad[t] = 0
        s = 0
        gc = 0
        q = lo
        while q + 4 <= hi:
            qn = q + 4 if q + 8 <= hi else q
            # The same products and sums as sddmm's (dot4 of H row and Vt row).
            if floating is float:
                fastnn_dot4_f32(k, vrow, H + tind[q] * k, H + tind[q + 1] * k,
                                H + tind[q + 2] * k, H + tind[q + 3] * k, pr,
                                H + tind[qn] * k, H + tind[qn + 1] * k,
                                H + tind[qn + 2] * k, H + tind[qn + 3] * k)
            else:
                fastnn_dot4_f64(k, vrow, H + tind[q] * k, H + tind[q + 1] * k,
                                H + tind[q + 2] * k, H + tind[q + 3] * k, pr,
                                H + tind[qn] * k, H + tind[qn + 1] * k,
                                H + tind[qn + 2] * k, H + tind[qn + 3] * k)
            for u in range(4):
                d = <double>(pr[u] + cj) - <double>target[perm[q + u]]
                s = s + d * d
                g[u] = <floating>(2.0 * d)
                gc = gc + g[u]
            # Vt gradient row (the same four-at-a-time sums as csr_t_matmul) and
            # the four dH rows, in one pass; rows must be distinct for the fused
            # version (a pattern may repeat an entry: then one at a time).
            i0 = tind[q]
            i1 = tind[q + 1]
            i2 = tind[q + 2]
            i3 = tind[q + 3]
            if i0 != i1 and i0 != i2 and i0 != i3 and i1 != i2 and i1 != i3 and i2 != i3:
                if floating is float:
                    fastnn_grad_scatter4_f32(k, g[0], H + i0 * k, g[1], H + i1 * k, g[2],
                                             H + i2 * k, g[3], H + i3 * k, grad, vrow,
                                             dh + i0 * k, dh + i1 * k, dh + i2 * k,
                                             dh + i3 * k)
                else:
                    fastnn_grad_scatter4_f64(k, g[0], H + i0 * k, g[1], H + i1 * k, g[2],
                                             H + i2 * k, g[3], H + i3 * k, grad, vrow,
                                             dh + i0 * k, dh + i1 * k, dh + i2 * k,
                                             dh + i3 * k)
            else:
                if floating is float:
                    fastnn_axpy4_f32(k, g[0], H + i0 * k, g[1], H + i1 * k, g[2], H + i2 * k,
                                     g[3], H + i3 * k, grad, H + i0 * k, H + i1 * k,
                                     H + i2 * k, H + i3 * k)
                else:
                    fastnn_axpy4_f64(k, g[0], H + i0 * k, g[1], H + i1 * k, g[2], H + i2 * k,
                                     g[3], H + i3 * k, grad, H + i0 * k, H + i1 * k,
                                     H + i2 * k, H + i3 * k)
                for u in range(4):
                    _axpy(k, g[u], vrow, dh + tind[q + u] * k)
            q = q + 4
        while q < hi:
            d = <double>(_dot(vrow, H + tind[q] * k, k) + cj) - <double>target[perm[q]]
            s = s + d * d
            g[0] = <floating>(2.0 * d)
            gc = gc + g[0]
            _axpy(k, g[0], H + tind[q] * k, grad)
            _axpy(k, g[0], vrow, dh + tind[q] * k)
            q = q + 1
        row_loss[j] = s
        row_sq[j] = _adam_sq(k, vrow, grad, mV + j * k, vV + j * k, b1, b2, lr_t, eps_t, wd)
        gc_f = <floating>gc
        _adam1(c + j, &gc_f, mc + j, vc + j, b1, b2, lr_t, eps_t)


@cython.boundscheck(False)
@cython.wraparound(False)
def _autorec_decoder(const index_t[::1] t_indptr, const index_t[::1] t_indices,
                     const index_t[::1] perm, const floating[::1] target,
                     const floating[:, ::1] H, floating[:, ::1] Vt, floating[:, ::1] mV,
                     floating[:, ::1] vV, floating[::1] c, floating[::1] mc, floating[::1] vc,
                     double lr_t, double beta1, double beta2, double eps_t, double wd,
                     const int64_t[::1] bounds, floating[:, :, ::1] dH_part,
                     floating[::1] rows_buf, Py_ssize_t stride, double[::1] row_loss,
                     double[::1] row_sq):
    cdef Py_ssize_t nb = bounds.shape[0] - 1, n = H.shape[0], k = H.shape[1]
    cdef Py_ssize_t blk
    cdef int nt = fastnn_threads_for(<double>(t_indptr[t_indptr.shape[0] - 1]
                                              + 4.0 * Vt.shape[0]) * k)
    if nt > nb:
        nt = <int>nb
    # Block blk always sums into partial blk (and uses row buffer blk), whichever
    # thread runs it: the result depends on the number of blocks only, never on
    # the schedule, so blocks can be handed out dynamically (a thread that loses
    # its core on a shared machine does not hold the others up).
    for blk in prange(nb, nogil=True, schedule="dynamic", chunksize=1, num_threads=nt):
        _decoder_block(bounds[blk], bounds[blk + 1], &t_indptr[0], &t_indices[0], &perm[0],
                       &target[0], &H[0, 0], n, k, &Vt[0, 0], &mV[0, 0], &vV[0, 0], &c[0],
                       &mc[0], &vc[0], beta1, beta2, lr_t, eps_t, wd, &dH_part[blk, 0, 0],
                       &rows_buf[blk * stride], &row_loss[0], &row_sq[0])


@cython.boundscheck(False)
@cython.wraparound(False)
def _sum_parts_act_grad(const floating[:, :, ::1] parts, const floating[:, ::1] H,
                        floating[:, ::1] dZ, int act):
    """dZ = act'(H) * (sum of the partials, in partial order), row-parallel."""
    cdef Py_ssize_t nb = parts.shape[0], n = H.shape[0], k = H.shape[1]
    cdef Py_ssize_t i, b, t
    cdef floating* z
    cdef int nt = fastnn_threads_for(<double>nb * n * k)
    for i in prange(n, nogil=True, schedule="static", num_threads=nt):
        z = &dZ[i, 0]
        for t in range(k):
            z[t] = parts[0, i, t]
        for b in range(1, nb):
            _axpy(k, <floating>1, &parts[b, i, 0], z)
        if floating is float:
            fastnn_act_grad_f32(k, &H[i, 0], z, z, act)
        else:
            fastnn_act_grad_f64(k, &H[i, 0], z, z, act)


@cython.boundscheck(False)
@cython.wraparound(False)
def _csr_perm_matmul_adam_sq(const index_t[::1] t_indptr, const index_t[::1] t_indices,
                             const index_t[::1] perm, const floating[::1] data,
                             const floating[:, ::1] G, floating[:, ::1] param,
                             floating[:, ::1] m, floating[:, ::1] v, double lr_t, double beta1,
                             double beta2, double eps_t, double wd, floating[::1] rows_buf,
                             Py_ssize_t stride, int nt, double[::1] row_sq):
    """csr_t_matmul_adam with the L2 term fused and each row's squared norm
    (before the step) written to row_sq."""
    cdef Py_ssize_t rows = t_indptr.shape[0] - 1, k = G.shape[1]
    cdef Py_ssize_t j, t
    cdef floating* grad
    for j in prange(rows, nogil=True, schedule="dynamic", chunksize=ROW_CHUNK,
                    num_threads=nt):
        grad = &rows_buf[threadid() * stride]
        for t in range(k):
            grad[t] = 0
        _combine_rows(&t_indices[0], &perm[0], &data[0], t_indptr[j], t_indptr[j + 1],
                      &G[0, 0], k, grad)
        row_sq[j] = _adam_sq(k, &param[j, 0], grad, &m[j, 0], &v[j, 0], beta1, beta2, lr_t,
                             eps_t, wd)


cdef inline void _sample_decode(Py_ssize_t i, index_t lo, index_t hi, const index_t* ind,
                                const floating* target, const floating* Vt,
                                const floating* c, Py_ssize_t k, const floating* h,
                                floating* G, floating* dh, double* row_loss) noexcept nogil:
    """Sample i's stored outputs lo..hi-1 (CSR positions): predictions
    h . Vt[j] + c[j] (sddmm's sums), their squared error added to row_loss[i]
    one entry at a time, G = 2 (pred - target), and dh += sum G_ij Vt[j]
    (csr_matmul's sums: four rows at a time in CSR order, each four used while
    still in L1 from their dots)."""
    cdef index_t p = lo, pn
    cdef floating pr[4]
    cdef double s = row_loss[i], d
    cdef Py_ssize_t u
    while p + 4 <= hi:
        pn = p + 4 if p + 8 <= hi else p
        if floating is float:
            fastnn_dot4_f32(k, h, Vt + ind[p] * k, Vt + ind[p + 1] * k, Vt + ind[p + 2] * k,
                            Vt + ind[p + 3] * k, pr, Vt + ind[pn] * k, Vt + ind[pn + 1] * k,
                            Vt + ind[pn + 2] * k, Vt + ind[pn + 3] * k)
        else:
            fastnn_dot4_f64(k, h, Vt + ind[p] * k, Vt + ind[p + 1] * k, Vt + ind[p + 2] * k,
                            Vt + ind[p + 3] * k, pr, Vt + ind[pn] * k, Vt + ind[pn + 1] * k,
                            Vt + ind[pn + 2] * k, Vt + ind[pn + 3] * k)
        for u in range(4):
            d = <double>(pr[u] + c[ind[p + u]]) - <double>target[p + u]
            s = s + d * d
            G[p + u] = <floating>(2.0 * d)
        # The four Vt rows are in L1: "prefetch" them again rather than reach ahead.
        if floating is float:
            fastnn_axpy4_f32(k, G[p], Vt + ind[p] * k, G[p + 1], Vt + ind[p + 1] * k,
                             G[p + 2], Vt + ind[p + 2] * k, G[p + 3], Vt + ind[p + 3] * k, dh,
                             Vt + ind[p] * k, Vt + ind[p + 1] * k, Vt + ind[p + 2] * k,
                             Vt + ind[p + 3] * k)
        else:
            fastnn_axpy4_f64(k, G[p], Vt + ind[p] * k, G[p + 1], Vt + ind[p + 1] * k,
                             G[p + 2], Vt + ind[p + 2] * k, G[p + 3], Vt + ind[p + 3] * k, dh,
                             Vt + ind[p] * k, Vt + ind[p + 1] * k, Vt + ind[p + 2] * k,
                             Vt + ind[p + 3] * k)
        p = p + 4
    while p < hi:
        d = <double>(_dot(h, Vt + ind[p] * k, k) + c[ind[p]]) - <double>target[p]
        s = s + d * d
        G[p] = <floating>(2.0 * d)
        _axpy(k, G[p], Vt + ind[p] * k, dh)
        p = p + 1
    row_loss[i] = s


cdef inline void _bias_act(Py_ssize_t k, floating* h, const floating* b, int act) noexcept nogil:
    if floating is float:
        fastnn_bias_act_f32(k, h, b, act)
    else:
        fastnn_bias_act_f64(k, h, b, act)


cdef inline void _act_grad(Py_ssize_t k, const floating* h, const floating* dh, floating* dz,
                           int act) noexcept nogil:
    if floating is float:
        fastnn_act_grad_f32(k, h, dh, dz, act)
    else:
        fastnn_act_grad_f64(k, h, dh, dz, act)


cdef void _sample_row(Py_ssize_t i, const index_t* ptr, const index_t* ind,
                      const floating* x_in, const floating* target, const floating* W,
                      const floating* b, const floating* Vt, const floating* c, Py_ssize_t k,
                      int act, floating* H, floating* dZ, floating* G, floating* dh,
                      double* row_loss) noexcept nogil:
    """Sample i of the batch, forward and back to its pre-activation: the
    encoder row h = act(x_i W + b) (csr_matmul's sums), then _sample_decode
    over all its outputs into the buffer dh, then dZ_i = act'(h) * dh."""
    cdef floating* h = H + i * k
    cdef Py_ssize_t t
    for t in range(k):
        h[t] = 0
    _combine_rows(ind, <const index_t*>NULL, x_in, ptr[i], ptr[i + 1], W, k, h)
    _bias_act(k, h, b, act)
    for t in range(k):
        dh[t] = 0
    row_loss[i] = 0
    _sample_decode(i, ptr[i], ptr[i + 1], ind, target, Vt, c, k, h, G, dh, row_loss)
    _act_grad(k, h, dh, dZ + i * k, act)


cdef inline index_t _lower_bound(const index_t* a, index_t lo, index_t hi,
                                 Py_ssize_t x) noexcept nogil:
    """First position in the sorted a[lo:hi] holding a value >= x (hi if none)."""
    cdef index_t mid
    while lo < hi:
        mid = lo + (hi - lo) // 2
        if a[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


@cython.boundscheck(False)
@cython.wraparound(False)
def _autorec_samples(const index_t[::1] indptr, const index_t[::1] indices,
                     const floating[::1] x_in, const floating[::1] target,
                     const floating[:, ::1] W, const floating[::1] b,
                     const floating[:, ::1] Vt, const floating[::1] c, int act,
                     floating[:, ::1] H, floating[:, ::1] dZ, floating[::1] G,
                     floating[::1] rows_buf, Py_ssize_t stride, int nt,
                     double[::1] row_loss, Py_ssize_t block=0, floating[:, ::1] dH=None):
    """The "samples" sweep's first pass: _sample_row for every sample, samples
    handed out one at a time (their lengths are long-tailed).

    ``block`` > 0 (with ``dH``, n x k scratch): the same sums in the same order,
    output units taken ``block`` at a time, so that the W and Vt rows a phase
    gathers lie in a cache-sized slice of each: the encoder for every sample
    over units [0, block), then [block, 2 block), ...; the activation; then the
    decoder (_sample_decode into dH) slice by slice; then dZ. Each sample's
    sums run over its entries in CSR order across the slices, as unblocked:
    the bits do not depend on ``block``."""
    cdef Py_ssize_t n = indptr.shape[0] - 1, m = W.shape[0], k = W.shape[1]
    cdef Py_ssize_t i, t, s, ns
    cdef index_t* seg
    if block <= 0 or block >= m:
        for i in prange(n, nogil=True, schedule="dynamic", chunksize=1, num_threads=nt):
            _sample_row(i, &indptr[0], &indices[0], &x_in[0], &target[0], &W[0, 0], &b[0],
                        &Vt[0, 0], &c[0], k, act, &H[0, 0], &dZ[0, 0], &G[0],
                        &rows_buf[threadid() * stride], &row_loss[0])
        return
    if dH is None or dH.shape[0] != n or dH.shape[1] != k:
        raise ValueError(f"dH must be {n} x {k} scratch when block > 0")
    ns = (m + block - 1) // block
    bounds = _slice_bounds(indptr, indices, block, ns, nt)
    cdef index_t[::1] bnd = bounds
    seg = &bnd[0]
    _encoder_slices(indptr, indices, x_in, W, b, act, H, bounds, ns, nt)
    for i in prange(n, nogil=True, schedule="static", num_threads=nt):
        for t in range(k):
            dH[i, t] = 0
        row_loss[i] = 0
    for s in range(ns):
        for i in prange(n, nogil=True, schedule="dynamic", chunksize=1, num_threads=nt):
            _sample_decode(i, seg[i * (ns + 1) + s], seg[i * (ns + 1) + s + 1], &indices[0],
                           &target[0], &Vt[0, 0], &c[0], k, &H[i, 0], &G[0], &dH[i, 0],
                           &row_loss[0])
    for i in prange(n, nogil=True, schedule="static", num_threads=nt):
        _act_grad(k, &H[i, 0], &dH[i, 0], &dZ[i, 0], act)


@cython.boundscheck(False)
@cython.wraparound(False)
def _slice_bounds(const index_t[::1] indptr, const index_t[::1] indices, Py_ssize_t block,
                  Py_ssize_t ns, int nt):
    """(n * (ns + 1),) array: entry i * (ns + 1) + s is row i's first CSR position
    with a column >= s * block (rows' columns sorted); the last is indptr[i + 1]."""
    cdef Py_ssize_t n = indptr.shape[0] - 1, i, r
    bounds = np.empty(n * (ns + 1), dtype=np.asarray(indptr).dtype)
    cdef index_t[::1] seg = bounds
    for i in prange(n, nogil=True, schedule="static", num_threads=nt):
        seg[i * (ns + 1)] = indptr[i]
        for r in range(1, ns):
            seg[i * (ns + 1) + r] = _lower_bound(&indices[0], seg[i * (ns + 1) + r - 1],
                                                 indptr[i + 1], r * block)
        seg[i * (ns + 1) + ns] = indptr[i + 1]
    return bounds


@cython.boundscheck(False)
@cython.wraparound(False)
def _encoder_slices(const index_t[::1] indptr, const index_t[::1] indices,
                    const floating[::1] x_in, const floating[:, ::1] W, const floating[::1] b,
                    int act, floating[:, ::1] H, const index_t[::1] seg, Py_ssize_t ns, int nt):
    """H = act(X_in @ W + b) with csr_matmul's sums in its order (bitwise the
    same), gathered one slice of W's rows at a time (``seg`` from _slice_bounds):
    every sample's entries in [0, block), then [block, 2 block), ..."""
    cdef Py_ssize_t n = indptr.shape[0] - 1, k = W.shape[1], i, t, s
    for i in prange(n, nogil=True, schedule="static", num_threads=nt):
        for t in range(k):
            H[i, t] = 0
    for s in range(ns):
        for i in prange(n, nogil=True, schedule="dynamic", chunksize=1, num_threads=nt):
            _combine_rows(&indices[0], <const index_t*>NULL, &x_in[0], seg[i * (ns + 1) + s],
                          seg[i * (ns + 1) + s + 1], &W[0, 0], k, &H[i, 0])
    for i in prange(n, nogil=True, schedule="static", num_threads=nt):
        _bias_act(k, &H[i, 0], &b[0], act)


cdef void _output_unit_adam(Py_ssize_t j, const index_t* tptr, const index_t* tind,
                            const index_t* perm, const floating* G, const floating* x_in,
                            const floating* H, const floating* dZ, Py_ssize_t k, floating* W,
                            floating* mW, floating* vW, floating* Vt, floating* mV,
                            floating* vV, floating* c, floating* mc, floating* vc, double b1,
                            double b2, double lr_t, double eps_t, double wd, floating* gv,
                            floating* gw, double* sq_W, double* sq_V) noexcept nogil:
    """Output unit j of the "samples" sweep's second pass (see _autorec_outputs_adam)."""
    cdef index_t q, lo = tptr[j], hi = tptr[j + 1]
    cdef Py_ssize_t t
    cdef double gc = 0
    cdef floating gc_f
    for t in range(k):
        gv[t] = 0
        gw[t] = 0
    _combine_rows(tind, perm, G, lo, hi, H, k, gv)
    _combine_rows(tind, perm, x_in, lo, hi, dZ, k, gw)
    for q in range(lo, hi):
        gc = gc + G[perm[q]]
    sq_V[j] = _adam_sq(k, Vt + j * k, gv, mV + j * k, vV + j * k, b1, b2, lr_t, eps_t, wd)
    sq_W[j] = _adam_sq(k, W + j * k, gw, mW + j * k, vW + j * k, b1, b2, lr_t, eps_t, wd)
    gc_f = <floating>gc
    _adam1(c + j, &gc_f, mc + j, vc + j, b1, b2, lr_t, eps_t)


@cython.boundscheck(False)
@cython.wraparound(False)
def _autorec_outputs_adam(const index_t[::1] t_indptr, const index_t[::1] t_indices,
                          const index_t[::1] perm, const floating[::1] G,
                          const floating[::1] x_in, const floating[:, ::1] H,
                          const floating[:, ::1] dZ, floating[:, ::1] W, floating[:, ::1] mW,
                          floating[:, ::1] vW, floating[:, ::1] Vt, floating[:, ::1] mV,
                          floating[:, ::1] vV, floating[::1] c, floating[::1] mc,
                          floating[::1] vc, double lr_t, double beta1, double beta2,
                          double eps_t, double wd, floating[::1] rows_buf, Py_ssize_t stride,
                          int nt, double[::1] sq_W, double[::1] sq_V, floating[::1] b=None,
                          floating[::1] mb=None, floating[::1] vb=None):
    """The "samples" sweep's second pass, output unit j by unit: its Vt gradient
    row (G.T @ H, csr_t_matmul's sums), its W gradient row (X_in.T @ dZ, the
    same) and its c gradient, each applied by Adam (+ L2 on Vt and W) at once;
    squared norms of the Vt and W rows before the step into sq_V, sq_W.

    With ``b``, ``mb``, ``vb``: also b's gradient, the column sums of dZ
    (_sum_rows' sums: float64, row by row, in blocks of SUM_COLS columns, each
    block one more task of the same loop), applied by Adam (adam_update's
    kernel, no L2): one parallel loop for the whole pass."""
    cdef Py_ssize_t m = t_indptr.shape[0] - 1, k = W.shape[1], n = H.shape[0]
    cdef Py_ssize_t j, c0, c1, t
    cdef Py_ssize_t nblk = (k + SUM_COLS - 1) // SUM_COLS if b is not None else 0
    cdef floating* gv
    cdef double* acc
    cdef floating* dbf
    if b is not None:
        for name, a in (("b", b), ("mb", mb), ("vb", vb)):
            if a is None or a.shape[0] != k:
                raise ValueError(f"{name} must have length {k} (with b)")
    acc_arr = np.zeros(k, np.float64)
    db_arr = np.empty(k, np.asarray(W).dtype)
    cdef double[::1] acc_v = acc_arr
    cdef floating[::1] db_v = db_arr
    for j in prange(m + nblk, nogil=True, schedule="dynamic", chunksize=ROW_CHUNK,
                    num_threads=nt):
        if j >= m:
            c0 = (j - m) * SUM_COLS
            c1 = min(c0 + SUM_COLS, k)
            acc = &acc_v[0]
            dbf = &db_v[0]
            _acc_rows_block(&dZ[0, 0], n, k, c0, c1, acc)
            for t in range(c0, c1):
                dbf[t] = <floating>acc[t]
            _adam_n(c1 - c0, &b[c0], dbf + c0, &mb[c0], &vb[c0], beta1, beta2, lr_t, eps_t,
                    0.0, 1.0, 0)
            continue
        gv = &rows_buf[2 * threadid() * stride]
        _output_unit_adam(j, &t_indptr[0], &t_indices[0], &perm[0], &G[0], &x_in[0],
                          &H[0, 0], &dZ[0, 0], k, &W[0, 0], &mW[0, 0], &vW[0, 0], &Vt[0, 0],
                          &mV[0, 0], &vV[0, 0], &c[0], &mc[0], &vc[0], beta1, beta2, lr_t,
                          eps_t, wd, gv, gv + stride, &sq_W[0], &sq_V[0])


class _Ticker:
    """Adds the seconds since the previous call to ``timings[name]`` (no-op without a dict)."""

    def __init__(self, timings):
        import time
        self.timings, self.clock = timings, time.perf_counter
        self.t = self.clock() if timings is not None else 0.0

    def __call__(self, name):
        if self.timings is not None:
            t = self.clock()
            self.timings[name] = self.timings.get(name, 0.0) + t - self.t
            self.t = t


def _row_buffers(nt, k, dtype):
    """``nt`` rows of length k, each starting on its own 64-byte line: (buf, stride)."""
    itemsize = np.dtype(dtype).itemsize
    per_line = 64 // itemsize
    stride = -(-k // per_line) * per_line
    buf = np.empty(nt * stride + per_line, dtype=dtype)
    start = (-buf.ctypes.data % 64) // itemsize
    return buf[start:start + nt * stride], stride


SWEEPS = ("samples", "outputs")

#: The "samples" sweep's first pass gathers W and Vt rows one slice of output
#: units at a time, each slice at most this many bytes of W (see
#: _autorec_samples). On a Zen 3 VM a random 2 KB row read cost about 50-90 ns
#: from up to 4 MB, 230 ns from 16 MB and 300+ ns beyond (the L3 is shared with
#: other tenants). Whole epochs, `bench/compare_autorec.py --ways
#: step:samples:64,step:samples:4 --interleave` (bench/RESULTS_sparse.md, round
#: 5): slicing was 10% faster at ML-1M's 6,040 x 500 float32 and 5% at 4,000 x
#: 500; 0.5 MiB slices were 17% slower at ML-100K's 943 x 500 (1.9 MB, unsliced
#: under this limit). A fixed number: the OS's view of the cache is not to be
#: trusted in a VM (this one reports a 256 MiB L3).
SAMPLES_BLOCK_BYTES = 4 << 20


def samples_block(m_out, k, dtype):
    """Output units per slice of the "samples" sweep's first pass: as many
    rows of W (or Vt) as fit in SAMPLES_BLOCK_BYTES; m_out (no slicing) if all do."""
    rows = max(1, SAMPLES_BLOCK_BYTES // (int(k) * np.dtype(dtype).itemsize))
    return min(int(m_out), rows)


def autorec_adam_step(indptr, indices, target, W, b, Vt, c, mW, vW, mb, vb, mVt, vVt, mc, vc,
                      lr, beta1, beta2, eps, step, lam_scale, activation="sigmoid",
                      input_values=None, transpose=None, n_blocks=None, timings=None,
                      sweep=None):
    """One exact AutoRec training step with Adam (see
    ``fastnn.recsys.sparse_ops.autorec_adam_step`` for the semantics), on the
    batch's CSR pattern ``(indptr, indices)`` (n samples x m outputs) with
    ``target`` its values (CSR order) and ``input_values`` the encoder's input
    values (default ``target``). Updates W, b, Vt, c and their Adam moments in
    place; returns ``(data_loss, sq_W, sq_Vt)``: the summed squared error and
    the squared norms of W and Vt before the step (float64).

    ``sweep`` chooses how the work is ordered (the math is the same):

    - ``"samples"``: one pass over the samples (encoder row, predictions, loss,
      dH row, dZ row: everything of a sample while its rows are in cache), then
      one over the output units (the W, Vt and c gradient rows, each applied by
      Adam at once). Every output is written by one thread in a fixed order:
      the bits do not depend on the thread count, and every sum is the one the
      unfused kernels compute. Its W and Vt reads are scattered: for models
      bigger than SAMPLES_BLOCK_BYTES the first pass takes the output units
      one cache-sized slice at a time (``samples_block``; same sums, same
      order, same bits).
    - ``"outputs"``: the encoder, then one sweep over the output units doing
      the decoder (predictions, loss, Vt/c gradient + Adam, dH), then W's
      gradient + Adam. Vt is read in order; dH is summed in ``n_blocks``
      partials (default: twice the OpenMP thread count, 1 for problems too
      small to parallelise; blocks are scheduled dynamically), added in block
      order, so the bits depend on ``n_blocks`` only.
    - ``None`` (default): ``"samples"`` (as fast or faster at every size
      measured, from ML-100K to 12,000 outputs), or ``"outputs"`` when
      ``n_blocks`` is given.

    ``timings``: a dict to which each phase's seconds are added (profiling).
    """
    tick = _Ticker(timings)
    for name, a, nd in (("target", target, 1), ("W", W, 2), ("b", b, 1), ("Vt", Vt, 2),
                        ("c", c, 1), ("mW", mW, 2), ("vW", vW, 2), ("mb", mb, 1), ("vb", vb, 1),
                        ("mVt", mVt, 2), ("vVt", vVt, 2), ("mc", mc, 1), ("vc", vc, 1)):
        _array(a, name, nd)
    x_in = target if input_values is None else _array(input_values, "input_values", 1)
    _float_dtype({"target": target, "input_values": x_in, "W": W, "b": b, "Vt": Vt, "c": c,
                  "mW": mW, "vW": vW, "mb": mb, "vb": vb, "mVt": mVt, "vVt": vVt, "mc": mc,
                  "vc": vc})
    for name, a in (("W", W), ("b", b), ("Vt", Vt), ("c", c), ("mW", mW), ("vW", vW),
                    ("mb", mb), ("vb", vb), ("mVt", mVt), ("vVt", vVt), ("mc", mc), ("vc", vc)):
        _writable(a, name)
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation={activation!r}; expected one of {sorted(_ACTIVATIONS)}")
    m_out, k = W.shape
    if m_out == 0 or k == 0:
        raise ValueError(f"W has shape {W.shape}; expected at least one input and one "
                         f"hidden unit")
    _array(indptr, "indptr", 1)
    n = indptr.shape[0] - 1
    t_indptr, t_indices, perm = _transpose_of(indptr, indices, target, n, m_out, transpose)
    _shape(x_in, "input_values", target.shape)
    for name, a, shape in (("b", b, (k,)), ("Vt", Vt, (m_out, k)), ("c", c, (m_out,)),
                           ("mW", mW, W.shape), ("vW", vW, W.shape), ("mb", mb, (k,)),
                           ("vb", vb, (k,)), ("mVt", mVt, (m_out, k)), ("vVt", vVt, (m_out, k)),
                           ("mc", mc, (m_out,)), ("vc", vc, (m_out,))):
        _shape(a, name, shape)
    lr_t, eps_t, _, _ = _adam_coefficients(lr, beta1, beta2, eps, step, 0.0, False)
    wd = float(lam_scale)
    if wd < 0:
        raise ValueError(f"lam_scale is {lam_scale}; expected >= 0")
    if sweep is None:
        sweep = "outputs" if n_blocks is not None else "samples"
    if sweep not in SWEEPS:
        raise ValueError(f"sweep={sweep!r}; expected one of {SWEEPS} or None")
    if sweep == "samples" and n_blocks is not None:
        raise ValueError(f"n_blocks={n_blocks!r} is for sweep='outputs'; the 'samples' "
                         f"sweep has no blocks")
    dtype = W.dtype
    act = _ACTIVATIONS[activation]
    tick("validation, transpose")
    if sweep == "samples":
        return _step_samples(indptr, indices, target, x_in, W, b, Vt, c, mW, vW, mb, vb, mVt,
                             vVt, mc, vc, t_indptr, t_indices, perm, lr, beta1, beta2, eps,
                             step, lr_t, eps_t, wd, act, tick)
    # Encoder: H = act(X_in @ W + b), bias and activation fused.
    H = np.empty((n, k), dtype)
    if n:
        _csr_matmul(indptr, indices, x_in, W, H, False, b, act)
    tick("encoder SpMM + bias + activation")
    # Decoder sweep over output units in blocks balanced by work: a unit costs its
    # Adam row (about two entries' work) plus its entries.
    nt = fastnn_threads_for((t_indptr[m_out] + 4.0 * m_out) * k)
    # Two blocks per thread (dynamically scheduled) when parallel: on a shared
    # machine a preempted thread then delays half as much work.
    nb = int(n_blocks) if n_blocks is not None else (1 if nt == 1 else 2 * nt)
    nb = max(1, min(nb, m_out))
    cost = np.cumsum(np.diff(t_indptr).astype(np.float64) + 2.0)
    bounds = np.empty(nb + 1, np.int64)
    bounds[0], bounds[nb] = 0, m_out
    bounds[1:nb] = np.searchsorted(cost, cost[-1] * np.arange(1, nb) / nb)
    dH_part = np.empty((nb, n, k), dtype)
    buf, stride = _row_buffers(nb, k, dtype)
    row_loss = np.empty(m_out, np.float64)
    sq_V = np.empty(m_out, np.float64)
    _autorec_decoder(t_indptr, t_indices, perm, target, H, Vt, mVt, vVt, c, mc, vc, lr_t,
                     beta1, beta2, eps_t, wd, bounds, dH_part, buf, stride, row_loss, sq_V)
    tick("decoder sweep: SDDMM, loss, dH, Vt/c grad + Adam")
    # Encoder backward: dZ = act'(H) * dH, db, then W's gradient applied by Adam.
    dZ = np.empty((n, k), dtype)
    if n:
        _sum_parts_act_grad(dH_part, H, dZ, act)
    del dH_part
    db = np.empty(k, dtype)
    _sum_rows(dZ, db)
    adam_update(b, db, mb, vb, lr, beta1, beta2, eps, step)
    tick("dH reduce, activation', db + Adam")
    nt = fastnn_threads_for((t_indptr[m_out] + 4.0 * m_out) * k)
    buf, stride = _row_buffers(nt, k, dtype)
    sq_W = np.empty(m_out, np.float64)
    _csr_perm_matmul_adam_sq(t_indptr, t_indices, perm, x_in, dZ, W, mW, vW, lr_t, beta1, beta2,
                             eps_t, wd, buf, stride, nt, sq_W)
    tick("W: SpMM-T grad + Adam")
    return float(row_loss.sum()), float(sq_W.sum()), float(sq_V.sum())


def _step_samples(indptr, indices, target, x_in, W, b, Vt, c, mW, vW, mb, vb, mVt, vVt, mc, vc,
                  t_indptr, t_indices, perm, lr, beta1, beta2, eps, step, lr_t, eps_t, wd, act,
                  tick):
    """autorec_adam_step's "samples" sweep on validated arguments.

    Everything is allocated first, so that nothing runs between the two passes
    (b's update is part of the second): the OpenMP threads that ended the first
    pass are still spinning (briefly, before they sleep: see
    fastnn/_C/__init__.py) when the second starts."""
    n, m_out, k, nnz = indptr.shape[0] - 1, W.shape[0], W.shape[1], target.shape[0]
    dtype = W.dtype
    H = np.empty((n, k), dtype)
    dZ = np.empty((n, k), dtype)
    G = np.empty(nnz, dtype)
    row_loss = np.empty(n, np.float64)
    nt1 = fastnn_threads_for((2.0 * nnz + n) * k)
    block = samples_block(m_out, k, dtype)
    dH = np.empty((n, k), dtype) if n and block < m_out else None
    nt2 = fastnn_threads_for((2.0 * nnz + 4.0 * m_out) * k)
    buf, stride = _row_buffers(max(nt1, 2 * nt2), k, dtype)
    sq_W = np.empty(m_out, np.float64)
    sq_V = np.empty(m_out, np.float64)
    if n:
        _autorec_samples(indptr, indices, x_in, target, W, b, Vt, c, act, H, dZ, G, buf,
                         stride, nt1, row_loss, block, dH)
    tick("samples: encoder, SDDMM, loss, dH, activation'")
    _autorec_outputs_adam(t_indptr, t_indices, perm, G, x_in, H, dZ, W, mW, vW, Vt, mVt, vVt,
                          c, mc, vc, lr_t, beta1, beta2, eps_t, wd, buf, stride, nt2, sq_W, sq_V,
                          b, mb, vb)
    tick("outputs: Vt, W, b, c gradients + Adam")
    return float(row_loss.sum()), float(sq_W.sum()), float(sq_V.sum())
