# cython: language_level=3
# distutils: extra_compile_args = -fno-math-errno
"""Sparse kernels for recommendation: CSR x dense (SpMM, with a fused bias +
activation epilogue), its transpose, sampled dense x dense (SDDMM), the masked
squared-error loss over observed entries, a fused Adam step, and the transpose
SpMM fused with Adam (the weight gradient applied without being stored).
Compiled to ``fastnn._C.sparse``; the per-row inner loops are C in
common/simd_rows.h (AVX2/AVX-512 versions chosen at load time), reached through
common/sparse_rows.pxd, which the AutoRec step (autorec_step.pyx) shares.

Holds matrix kernels only: no model logic (the AutoRec training step is
autorec_step.pyx), no scipy. Every public function validates
its arguments with NumPy (dtypes, shapes, contiguity, CSR structure, index
ranges) and raises ValueError naming what was wrong before any ``nogil`` code
runs. Results are deterministic: each output element is written by one thread
in a fixed order, and reductions sum fixed-size blocks, then the blocks in order.

CSR arguments come as ``(indptr, indices, data)`` of an ``n x m`` matrix;
``indptr`` and ``indices`` share one integer dtype (int32 or int64), every
floating array of one call shares one dtype (float32 or float64).
"""
import numpy
import numpy as np

cimport cython
from cython.parallel cimport prange, threadid
from libc.math cimport sqrt
from libc.string cimport memcpy
from libc.stdint cimport int32_t, int64_t
include "common/threads.pxi"

# The C row loops, the fused index type, the chunk sizes, the inline row helpers.
from sparse_rows cimport *
from checks cimport (check_all_disjoint, check_count, check_disjoint, check_array, check_float_dtype, check_writable, check_shape,
                     activation_codes, activation_code)

#: Activation name -> code (fastnn_activations.h), the same table in every module.
ACTIVATION_CODES = activation_codes()
#: The activations the sparse epilogues (csr_matmul, the AutoRec step) compute.
FUSED_ACTIVATIONS = ("linear", "sigmoid", "relu", "tanh")
INDEX_DTYPES = (np.dtype(np.int32), np.dtype(np.int64))


# --------------------------------------------------------------- validation
def check_csr(indptr, indices, n_rows, n_cols, nnz=None, name=None, nnz_name="data"):
    """Validate a CSR structure of shape ``(n_rows, n_cols)``; raise ValueError.

    Checks: 1-D C-contiguous int32/int64 arrays of one dtype, ``len(indptr) ==
    n_rows + 1``, ``indptr[0] == 0``, ``indptr`` non-decreasing,
    ``indptr[-1] == len(indices)`` (``== nnz`` when given) and every column
    index in ``[0, n_cols)``, and every row's column indices in non-decreasing
    order (sorted; a repeated index is a second stored entry, allowed).

    Messages name the arrays as ``indptr``/``indices`` (the kernels' argument
    names), or ``<name>.indptr`` when ``name`` is given (a matrix the caller
    knows by that name); ``nnz_name`` is the array whose length ``nnz`` is.
    """
    n_rows = check_count("n_rows", n_rows)
    n_cols = check_count("n_cols", n_cols)
    p = f"{name}." if name else ""
    check_array(indptr, f"{p}indptr", 1)
    check_array(indices, f"{p}indices", 1)
    if indptr.dtype not in INDEX_DTYPES:
        raise ValueError(f"{p}indptr has dtype {indptr.dtype}; expected int32 or int64")
    if indices.dtype != indptr.dtype:
        raise ValueError(f"{p}indices has dtype {indices.dtype} but {p}indptr has "
                         f"{indptr.dtype}; they must match")
    if indptr.shape[0] != n_rows + 1:
        raise ValueError(f"{p}indptr has length {indptr.shape[0]}; expected "
                         f"n_rows + 1 = {n_rows + 1}")
    if indptr[0] != 0:
        raise ValueError(f"{p}indptr[0] is {indptr[0]}; expected 0")
    # Compiled passes over the arrays; NumPy only to name what is wrong.
    if _indptr_decreases(indptr):
        row = int(np.argmax(np.diff(indptr) < 0))
        raise ValueError(f"{p}indptr decreases at row {row} "
                         f"({indptr[row]} -> {indptr[row + 1]}); it must be non-decreasing")
    if indptr[n_rows] != indices.shape[0]:
        raise ValueError(f"{p}indptr[-1] is {indptr[n_rows]} but {p}indices has "
                         f"{indices.shape[0]} entries; they must be equal (nnz)")
    if nnz is not None and indices.shape[0] != nnz:
        raise ValueError(f"{p}indices has {indices.shape[0]} stored entries but {nnz_name} has "
                         f"{nnz}; they must be equal (one index per stored value)")
    bad = _indices_scan(indptr, indices, n_cols)
    if bad & 1:
        lo, hi = indices.min(), indices.max()
        bad = lo if lo < 0 else hi
        raise ValueError(f"{p}indices holds column {bad}; expected every column "
                         f"index in [0, {n_cols})")
    if bad & 2:
        starts = np.zeros(indices.shape[0], bool)
        starts[indptr[:-1][indptr[:-1] < indices.shape[0]]] = True
        p = int(np.flatnonzero((np.diff(indices) < 0) & ~starts[1:])[0]) + 1
        row = int(np.searchsorted(indptr, p, side="right")) - 1
        raise ValueError(f"{p}indices are not sorted in row {row} (column "
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
def _outside(const index_t[::1] values, Py_ssize_t n):
    """Whether any value lies outside [0, n)."""
    cdef Py_ssize_t i, m = values.shape[0]
    cdef int out = 0
    with nogil:
        for i in range(m):
            out = out | (values[i] < 0) | (values[i] >= n)
    return out


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
    # The structure is checked (not its column order or range: columns are only
    # copied), since the copy runs from indptr's offsets: a bad one would read
    # or write outside the arrays.
    check_array(indptr, "indptr", 1)
    check_array(indices, "indices", 1)
    check_array(data, "data", 1)
    check_float_dtype({"data": data})
    if indptr.dtype not in INDEX_DTYPES or indices.dtype != indptr.dtype:
        raise ValueError(f"indptr and indices must share one dtype, int32 or int64; got "
                         f"{indptr.dtype} and {indices.dtype}")
    if indptr.shape[0] < 1 or indptr[0] != 0:
        raise ValueError("indptr must start with 0 (a CSR row pointer of length n_rows + 1)")
    if _indptr_decreases(indptr):
        row = int(np.argmax(np.diff(indptr) < 0))
        raise ValueError(f"indptr decreases at row {row} ({indptr[row]} -> {indptr[row + 1]}); "
                         f"it must be non-decreasing")
    if indptr[indptr.shape[0] - 1] != indices.shape[0] or data.shape[0] != indices.shape[0]:
        raise ValueError(f"indptr[-1] is {indptr[indptr.shape[0] - 1]}, indices has "
                         f"{indices.shape[0]} entries and data {data.shape[0]}; all three "
                         f"must be equal (nnz)")
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
    check_array(data, "data", 1)
    check_array(B, "B", 2)
    check_array(out, "out", 2)
    if bias is not None:
        check_array(bias, "bias", 1)
    check_float_dtype({"data": data, "B": B, "out": out, "bias": bias})
    check_writable(out, "out")
    act = activation_code(activation, FUSED_ACTIVATIONS)
    n = out.shape[0]
    check_csr(indptr, indices, n, B.shape[0], data.shape[0])
    check_shape(out, "out", (n, B.shape[1]))
    if bias is not None:
        check_shape(bias, "bias", (B.shape[1],))
    check_disjoint("out", out, {"B": B, "data": data, "bias": bias})
    if n and B.shape[1]:
        _csr_matmul(indptr, indices, data, B, out, accumulate,
                    np.empty(0, out.dtype) if bias is None else bias, act)
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
    check_array(indptr, "indptr", 1)
    check_csr(indptr, indices, max(indptr.shape[0] - 1, 0), n_cols)
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


def _transpose_of(indptr, indices, data, n, m, transpose, data_name="data"):
    """Validated ``(t_indptr, t_indices, perm)`` of CSR ``A`` (n x m)."""
    check_csr(indptr, indices, n, m, data.shape[0], nnz_name=data_name)
    if transpose is None:
        t_indptr = np.empty(m + 1, dtype=indptr.dtype)
        t_indices = np.empty(indices.shape[0], dtype=indptr.dtype)
        perm = np.empty(indices.shape[0], dtype=indptr.dtype)
        _csr_transpose(indptr, indices, t_indptr, t_indices, perm)
        return t_indptr, t_indices, perm
    t_indptr, t_indices, perm = transpose
    check_csr(t_indptr, t_indices, m, n, data.shape[0], name="transpose", nnz_name=data_name)
    check_array(perm, "transpose perm", 1)
    if perm.dtype != t_indptr.dtype or perm.shape[0] != data.shape[0]:
        raise ValueError(f"transpose perm must be {t_indptr.dtype} with {data.shape[0]} "
                         f"entries, got {perm.dtype} with {perm.shape[0]}")
    # The kernels read data[perm[q]]: a value outside [0, nnz) would read any memory.
    if _outside(perm, data.shape[0]):
        bad = perm.min() if perm.min() < 0 else perm.max()
        raise ValueError(f"transpose perm holds {bad}; expected positions in "
                         f"[0, {data.shape[0]}) (the transpose from csr_transpose)")
    return t_indptr, t_indices, perm


def csr_t_matmul(indptr, indices, data, G, out, accumulate=False, transpose=None):
    """``out = A.T @ G`` (or ``+=`` when ``accumulate``) for CSR ``A`` (n x m),
    dense ``G`` (n x k), ``out`` (m x k): the weight gradient of ``A @ W``.

    Deterministic without atomics: it builds the transposed structure (or uses
    ``transpose = csr_transpose(indptr, indices, m)``) and runs a row-parallel
    SpMM on it, so each output row is one thread's sum in row order of ``A``.
    Returns ``out``.
    """
    check_array(data, "data", 1)
    check_array(G, "G", 2)
    check_array(out, "out", 2)
    check_float_dtype({"data": data, "G": G, "out": out})
    check_writable(out, "out")
    n, m = G.shape[0], out.shape[0]
    check_shape(out, "out", (m, G.shape[1]))
    t_indptr, t_indices, perm = _transpose_of(indptr, indices, data, n, m, transpose)
    check_disjoint("out", out, {"G": G, "data": data})
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
    check_array(data, "data", 1)
    check_array(G, "G", 2)
    arrays = {"data": data, "G": G, "param": param, "m": m, "v": v}
    for name in ("param", "m", "v"):
        check_array(arrays[name], name, 2)
        check_writable(arrays[name], name)
    check_float_dtype(arrays)
    n, rows = G.shape[0], param.shape[0]
    check_shape(param, "param", (rows, G.shape[1]))
    check_shape(m, "m", param.shape)
    check_shape(v, "v", param.shape)
    t_indptr, t_indices, perm = _transpose_of(indptr, indices, data, n, rows, transpose)
    check_all_disjoint({"param": param, "m": m, "v": v}, {"G": G, "data": data})
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
    check_array(H, "H", 2)
    check_array(Vt, "Vt", 2)
    check_array(out_vals, "out_vals", 1)
    if c is not None:
        check_array(c, "c", 1)
    check_float_dtype({"H": H, "Vt": Vt, "c": c, "out_vals": out_vals})
    check_writable(out_vals, "out_vals")
    n, m = H.shape[0], Vt.shape[0]
    check_csr(indptr, indices, n, m, out_vals.shape[0], nnz_name="out_vals")
    if Vt.shape[1] != H.shape[1]:
        raise ValueError(f"Vt has shape {Vt.shape}; expected ({m}, {H.shape[1]}) "
                         f"(its second axis must match H's, {H.shape[1]})")
    if c is not None:
        check_shape(c, "c", (m,))
    check_disjoint("out_vals", out_vals, {"H": H, "Vt": Vt, "c": c})
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
        check_array(a, name, nd)
    if c is not None:
        check_array(c, "c", 1)
    if weights is not None:
        check_array(weights, "weights", 1)
    check_float_dtype({"H": H, "Vt": Vt, "c": c, "target_vals": target_vals, "weights": weights,
                  "out_vals": out_vals, "grad_vals": grad_vals, "dH": dH})
    for name, a in (("out_vals", out_vals), ("grad_vals", grad_vals), ("dH", dH)):
        check_writable(a, name)
    n, m = H.shape[0], Vt.shape[0]
    nnz = out_vals.shape[0]
    check_csr(indptr, indices, n, m, nnz, nnz_name="out_vals")
    if Vt.shape[1] != H.shape[1]:
        raise ValueError(f"Vt has shape {Vt.shape}; expected ({m}, {H.shape[1]}) "
                         f"(its second axis must match H's, {H.shape[1]})")
    if c is not None:
        check_shape(c, "c", (m,))
    for name, a in (("target_vals", target_vals), ("grad_vals", grad_vals), ("weights", weights)):
        if a is not None:
            check_shape(a, name, (nnz,))
    check_shape(dH, "dH", H.shape)
    check_all_disjoint({"out_vals": out_vals, "grad_vals": grad_vals, "dH": dH},
                       {"H": H, "Vt": Vt, "c": c, "target_vals": target_vals, "weights": weights})
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
    check_array(indices, "indices", 1)
    check_array(vals, "vals", 1)
    check_array(out, "out", 1)
    check_float_dtype({"vals": vals, "out": out})
    check_writable(out, "out")
    if indices.dtype not in INDEX_DTYPES:
        raise ValueError(f"indices has dtype {indices.dtype}; expected int32 or int64")
    check_shape(vals, "vals", indices.shape)
    check_disjoint("out", out, {"vals": vals})
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
    check_array(pred_vals, "pred_vals", 1)
    check_array(target_vals, "target_vals", 1)
    if weights is not None:
        check_array(weights, "weights", 1)
    if grad_out is None:
        grad_out = np.empty_like(pred_vals)
    check_array(grad_out, "grad_out", 1)
    check_float_dtype({"pred_vals": pred_vals, "target_vals": target_vals,
                  "weights": weights, "grad_out": grad_out})
    check_writable(grad_out, "grad_out")
    nnz = pred_vals.shape[0]
    check_shape(target_vals, "target_vals", (nnz,))
    if weights is not None:
        check_shape(weights, "weights", (nnz,))
    check_shape(grad_out, "grad_out", (nnz,))
    check_disjoint("grad_out", grad_out, {"pred_vals": pred_vals, "target_vals": target_vals,
                                          "weights": weights}, ("pred_vals", "target_vals"))
    if nnz == 0:
        return 0.0, grad_out
    partial = np.empty((nnz + SUM_BLOCK - 1) // SUM_BLOCK, dtype=np.float64)
    _masked_sq_error(pred_vals, target_vals, pred_vals if weights is None else weights,
                     weights is not None, grad_out, partial)
    return float(partial.sum()), grad_out


# ---------------------------------------------------------------- optimizer
@cython.boundscheck(False)
@cython.wraparound(False)
def _adam(floating[::1] param, const floating[::1] grad, floating[::1] m, floating[::1] v,
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
        # grad is const so a read-only grad is taken; _adam_n writes it only with
        # zero_grad, and adam_update checked it writeable then.
        _adam_n(size, &param[start], <floating*>&grad[start], &m[start], &v[start], beta1, beta2, lr_t,
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
    check_float_dtype(arrays)
    for name in ("param", "m", "v") + (("grad",) if zero_grad else ()):
        check_writable(arrays[name], name)
    check_all_disjoint({"param": param, "m": m, "v": v, "grad": grad if zero_grad else None},
                       {"grad": None if zero_grad else grad})
    lr_t, eps_t, wd, decay = _adam_coefficients(lr, beta1, beta2, eps, step, weight_decay,
                                                decoupled)
    if param.size:
        _adam(param.reshape(-1), grad.reshape(-1), m.reshape(-1), v.reshape(-1),
              lr_t, beta1, beta2, eps_t, wd, decay, zero_grad)
