# cython: language_level=3
"""One exact AutoRec training step with Adam (+ L2), fused: ``autorec_adam_step``
and the parallel sweeps it is made of. Compiled to ``fastnn._C.autorec_step``.

This is model logic written as kernels over the batch's CSR pattern. The sparse
matrix kernels it builds on (transpose, SpMM, Adam) are ``fastnn._C.sparse``'s,
and its per-row loops are common/sparse_rows.pxd's, the same ones, so every sum
is the one the unfused kernels compute. Validation as in sparse.pyx: every
argument is checked with NumPy before any ``nogil`` code runs. Results are
deterministic: the "outputs" sweep sums dH in one partial per block of output
units, in block order (its bits depend on ``n_blocks``, not on the schedule);
the "samples" sweep has no partials.
"""
import numpy
import numpy as np

cimport cython
from cython.parallel cimport prange, threadid
from libc.string cimport memset
from libc.stdint cimport int32_t, int64_t
include "common/threads.pxi"
cdef extern from "common/threads.h" nogil:
    double FASTNN_PARALLEL_MIN_WORK

# The C row loops, the fused index type, the chunk sizes, the inline row helpers.
from sparse_rows cimport *
from checks cimport (check_all_disjoint, check_array, check_float_dtype, check_writable, check_shape,
                     activation_codes, activation_code)

from fastnn._C.sparse import (FUSED_ACTIVATIONS, _adam_coefficients, _csr_matmul, _sum_rows,
                              _transpose_of, adam_update)

#: Activation name -> code (fastnn_activations.h), the same table in every module.
ACTIVATION_CODES = activation_codes()


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
#: _autorec_samples): scattered row reads cost several times more once the rows
#: they gather no longer fit in the shared last-level cache. A fixed number: the
#: OS's view of the cache is not to be trusted in a VM. Measured with
#: `bench/compare_autorec.py --ways step:samples:64,step:samples:4 --interleave`
#: (bench/RESULTS_sparse.md, round 5).
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
        check_array(a, name, nd)
    x_in = target if input_values is None else check_array(input_values, "input_values", 1)
    check_float_dtype({"target": target, "input_values": x_in, "W": W, "b": b, "Vt": Vt, "c": c,
                  "mW": mW, "vW": vW, "mb": mb, "vb": vb, "mVt": mVt, "vVt": vVt, "mc": mc,
                  "vc": vc})
    for name, a in (("W", W), ("b", b), ("Vt", Vt), ("c", c), ("mW", mW), ("vW", vW),
                    ("mb", mb), ("vb", vb), ("mVt", mVt), ("vVt", vVt), ("mc", mc), ("vc", vc)):
        check_writable(a, name)
    act = activation_code(activation, FUSED_ACTIVATIONS)
    m_out, k = W.shape
    if m_out == 0 or k == 0:
        raise ValueError(f"W has shape {W.shape}; expected at least one input and one "
                         f"hidden unit")
    check_array(indptr, "indptr", 1)
    n = indptr.shape[0] - 1
    t_indptr, t_indices, perm = _transpose_of(indptr, indices, target, n, m_out, transpose,
                                              "target")
    check_shape(x_in, "input_values", target.shape)
    for name, a, shape in (("b", b, (k,)), ("Vt", Vt, (m_out, k)), ("c", c, (m_out,)),
                           ("mW", mW, W.shape), ("vW", vW, W.shape), ("mb", mb, (k,)),
                           ("vb", vb, (k,)), ("mVt", mVt, (m_out, k)), ("vVt", vVt, (m_out, k)),
                           ("mc", mc, (m_out,)), ("vc", vc, (m_out,))):
        check_shape(a, name, shape)
    # Twelve arrays are updated in place while target and input_values are read.
    check_all_disjoint({"W": W, "b": b, "Vt": Vt, "c": c, "mW": mW, "vW": vW, "mb": mb,
                        "vb": vb, "mVt": mVt, "vVt": vVt, "mc": mc, "vc": vc},
                       {"target": target, "input_values": input_values})
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
    work = (t_indptr[m_out] + 4.0 * m_out) * k
    nt = fastnn_threads_for(work)
    # Two blocks per thread (dynamically scheduled) when parallel: on a shared
    # machine a preempted thread then delays half as much work. The count comes
    # from the thread cap (set_num_threads), not from the threads this call gets
    # now: those follow the machine's load, and dH's bits follow the block count,
    # so a rerun under other load must not change it.
    if n_blocks is not None:
        nb = int(n_blocks)
    else:
        cap = _fastnn_thread_policy.get_num_threads()
        nb = 1 if (cap <= 1 or work < FASTNN_PARALLEL_MIN_WORK) else 2 * cap
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
