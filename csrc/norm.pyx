"""Batch normalization kernels over the (rows, features) view of a tensor whose
feature axis is last (an NHWC batch is (N*H*W, C)): the forward (batch
statistics or given ones, then scale and shift) and the fused backward (dx,
dgamma, dbeta from one reduction pass and one element pass). Shapes and
semantics match ``Ops.batchnorm_forward`` / ``Ops.batchnorm_backward``.

The ``*_strided`` pair does the same on the (outer, features, inner) view of a
tensor whose feature axis is not last (an NCHW batch is (N, C, H*W)), in
place of moving the axis last and back; no layer logic, no moving-average
update and no hot Python loop here.

Reductions (per-feature sums over rows) run in float64 over fixed blocks of
``SUM_ROWS`` rows, each block written by one thread, then the blocks are added
in order: results do not depend on the thread count. The variance is computed
from values shifted by the first row (the shifted-data algorithm), so a large
mean does not cancel the sum of squares away; it is the biased (population)
variance, as Keras normalizes with.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport sqrt
cimport numpy as cnp
import numpy

from checks cimport check_disjoint, check_float, check_ndim, check_c_contiguous

cnp.import_array()
include "common/threads.pxi"

cdef enum:
    # Rows per partial sum: fixes the summation order whatever the thread count;
    # large enough that the partials (blocks x features doubles) stay small.
    SUM_ROWS = 64


cdef extern from "norm_rows.h" nogil:
    void fastnn_bn_stats_f32(Py_ssize_t rows, Py_ssize_t n, const float* x, const float* shift,
                             double* s1, double* s2)
    void fastnn_bn_stats_f64(Py_ssize_t rows, Py_ssize_t n, const double* x, const double* shift,
                             double* s1, double* s2)
    void fastnn_bn_normalize_f32(Py_ssize_t rows, Py_ssize_t n, const float* x, float* y,
                                 const float* mean, const float* scale, const float* beta)
    void fastnn_bn_normalize_f64(Py_ssize_t rows, Py_ssize_t n, const double* x, double* y,
                                 const double* mean, const double* scale, const double* beta)
    void fastnn_bn_grad_sums_f32(Py_ssize_t rows, Py_ssize_t n, const float* x, const float* dy,
                                 const float* mean, double* sdy, double* sdyx)
    void fastnn_bn_grad_sums_f64(Py_ssize_t rows, Py_ssize_t n, const double* x,
                                 const double* dy, const double* mean, double* sdy, double* sdyx)
    void fastnn_bn_dx_f32(Py_ssize_t rows, Py_ssize_t n, const float* x, const float* dy,
                          float* dx, const float* mean, const float* k1, const float* k2,
                          const float* k3)
    void fastnn_bn_dx_f64(Py_ssize_t rows, Py_ssize_t n, const double* x, const double* dy,
                          double* dx, const double* mean, const double* k1, const double* k2,
                          const double* k3)
    void fastnn_bn_dx_fixed_f32(Py_ssize_t rows, Py_ssize_t n, const float* dy, float* dx,
                                const float* k1)
    void fastnn_bn_dx_fixed_f64(Py_ssize_t rows, Py_ssize_t n, const double* dy, double* dx,
                                const double* k1)
    void fastnn_bn_stats_strided_f32(Py_ssize_t P, Py_ssize_t n, Py_ssize_t Q, const float* x,
                                     const float* shift, double* s1, double* s2)
    void fastnn_bn_stats_strided_f64(Py_ssize_t P, Py_ssize_t n, Py_ssize_t Q, const double* x,
                                     const double* shift, double* s1, double* s2)
    void fastnn_bn_normalize_strided_f32(Py_ssize_t P, Py_ssize_t n, Py_ssize_t Q,
                                         const float* x, float* y, const float* mean,
                                         const float* scale, const float* beta)
    void fastnn_bn_normalize_strided_f64(Py_ssize_t P, Py_ssize_t n, Py_ssize_t Q,
                                         const double* x, double* y, const double* mean,
                                         const double* scale, const double* beta)
    void fastnn_bn_grad_sums_strided_f32(Py_ssize_t P, Py_ssize_t n, Py_ssize_t Q,
                                         const float* x, const float* dy, const float* mean,
                                         double* sdy, double* sdyx)
    void fastnn_bn_grad_sums_strided_f64(Py_ssize_t P, Py_ssize_t n, Py_ssize_t Q,
                                         const double* x, const double* dy, const double* mean,
                                         double* sdy, double* sdyx)
    void fastnn_bn_dx_strided_f32(Py_ssize_t P, Py_ssize_t n, Py_ssize_t Q, const float* x,
                                  const float* dy, float* dx, const float* mean, const float* k1,
                                  const float* k2, const float* k3)
    void fastnn_bn_dx_strided_f64(Py_ssize_t P, Py_ssize_t n, Py_ssize_t Q, const double* x,
                                  const double* dy, double* dx, const double* mean,
                                  const double* k1, const double* k2, const double* k3)
    void fastnn_bn_dx_fixed_strided_f32(Py_ssize_t P, Py_ssize_t n, Py_ssize_t Q,
                                        const float* dy, float* dx, const float* k1)
    void fastnn_bn_dx_fixed_strided_f64(Py_ssize_t P, Py_ssize_t n, Py_ssize_t Q,
                                        const double* dy, double* dx, const double* k1)


# Rows [r0, r1) of an (m, n) block through the row loops of norm_rows.h.
cdef inline void _stats_block(const floating* x, Py_ssize_t n, const floating* shift,
                              double* s1, double* s2, Py_ssize_t r0, Py_ssize_t r1) noexcept nogil:
    # Sums of (x - shift) and its square, per feature.
    if floating is float:
        fastnn_bn_stats_f32(r1 - r0, n, x + r0 * n, shift, s1, s2)
    else:
        fastnn_bn_stats_f64(r1 - r0, n, x + r0 * n, shift, s1, s2)


cdef inline void _normalize_block(const floating* x, floating* y, Py_ssize_t n,
                                  const floating* mean, const floating* scale,
                                  const floating* beta, Py_ssize_t r0,
                                  Py_ssize_t r1) noexcept nogil:
    if floating is float:
        fastnn_bn_normalize_f32(r1 - r0, n, x + r0 * n, y + r0 * n, mean, scale, beta)
    else:
        fastnn_bn_normalize_f64(r1 - r0, n, x + r0 * n, y + r0 * n, mean, scale, beta)


cdef void _forward(const floating[:, ::1] x, floating[:, ::1] y, floating[::1] mean,
                   floating[::1] var, const floating[::1] gamma, const floating[::1] beta,
                   floating[::1] scale, double[:, :, ::1] partial, bint batch_stats,
                   double epsilon):
    with nogil:
        _forward_nogil(x, y, mean, var, gamma, beta, scale, partial, batch_stats, epsilon)


cdef void _forward_nogil(const floating[:, ::1] x, floating[:, ::1] y, floating[::1] mean,
                         floating[::1] var, const floating[::1] gamma, const floating[::1] beta,
                         floating[::1] scale, double[:, :, ::1] partial, bint batch_stats,
                         double epsilon) noexcept nogil:
    cdef Py_ssize_t m = x.shape[0], n = x.shape[1], blk, j
    cdef Py_ssize_t nblocks = (m + SUM_ROWS - 1) // SUM_ROWS
    cdef int nt = fastnn_threads(<double>m * n * FASTNN_ELEMENT_COST)
    cdef double s1, s2, mu
    if batch_stats:
        for blk in prange(nblocks, schedule="static", num_threads=nt):
            _stats_block(&x[0, 0], n, &x[0, 0], &partial[blk, 0, 0], &partial[blk, 1, 0],
                         blk * SUM_ROWS, min(m, (blk + 1) * <Py_ssize_t>SUM_ROWS))
        for j in range(n):
            s1 = 0
            s2 = 0
            for blk in range(nblocks):
                s1 = s1 + partial[blk, 0, j]
                s2 = s2 + partial[blk, 1, j]
            mu = s1 / m
            mean[j] = <floating>(<double>x[0, j] + mu)
            var[j] = <floating>max(s2 / m - mu * mu, 0.0)
    for j in range(n):
        scale[j] = <floating>(<double>gamma[j] / sqrt(<double>var[j] + epsilon))
    for blk in prange(nblocks, schedule="static", num_threads=nt):
        _normalize_block(&x[0, 0], &y[0, 0], n, &mean[0], &scale[0], &beta[0],
                         blk * SUM_ROWS, min(m, (blk + 1) * <Py_ssize_t>SUM_ROWS))


def _features(str fn, object a, str what, Py_ssize_t n, object like):
    """A C-contiguous per-feature vector (n,) of ``like``'s dtype."""
    check_float(what, a, like, "x")
    if a.shape != (n,):
        raise ValueError(f"{fn}: {what} has shape {a.shape} but x has {n} features; "
                         f"{what} must have shape {(n,)}")
    return numpy.ascontiguousarray(a)


def batchnorm_forward(x, gamma, beta, double epsilon, mean=None, variance=None):
    """Batch normalization of x (m, n) over its rows, features last.

    With ``mean`` and ``variance`` None (training), the batch's per-feature mean
    and biased variance (float64 sums) normalize x; otherwise the given ones
    (inference: the moving statistics). Returns ``(y, mean, variance)`` with
    ``y = (x - mean) / sqrt(variance + epsilon) * gamma + beta``; ``gamma`` and
    ``beta`` (n,) may be None (1 and 0). x must be C-contiguous."""
    check_float("x", x)
    check_ndim("x", x, 2)
    check_c_contiguous("x", x)
    if not epsilon > 0:
        raise ValueError(f"batchnorm_forward: epsilon must be positive, got {epsilon}")
    cdef Py_ssize_t m = x.shape[0], n = x.shape[1]
    cdef bint batch_stats = mean is None
    if (mean is None) != (variance is None):
        raise ValueError("batchnorm_forward: give both mean and variance (inference) or "
                         "neither (training, batch statistics)")
    if batch_stats and m == 0:
        raise ValueError(f"batchnorm_forward: x has shape {x.shape}; batch statistics need "
                         "at least one row")
    gamma = numpy.ones(n, x.dtype) if gamma is None else \
        _features("batchnorm_forward", gamma, "gamma", n, x)
    beta = numpy.zeros(n, x.dtype) if beta is None else \
        _features("batchnorm_forward", beta, "beta", n, x)
    if batch_stats:
        mean = numpy.empty(n, x.dtype)
        variance = numpy.empty(n, x.dtype)
    else:
        # Copies: the kernel's statistics are writable, a caller's may not be.
        mean = numpy.array(_features("batchnorm_forward", mean, "mean", n, x))
        variance = numpy.array(_features("batchnorm_forward", variance, "variance", n, x))
        # A NaN passes (a diverged model's statistics give NaN outputs, as
        # elsewhere, for TerminateOnNaN to see); a negative variance is a bug.
        if n and (variance < 0).any():
            raise ValueError("batchnorm_forward: variance holds a negative value")
    y = numpy.empty((m, n), x.dtype)
    if m == 0 or n == 0:
        return y, mean, variance
    cdef Py_ssize_t nblocks = (m + SUM_ROWS - 1) // SUM_ROWS
    # Inference reads no partial sums: a placeholder then.
    partial = numpy.empty((nblocks if batch_stats else 1, 2, n), numpy.float64)
    scale = numpy.empty(n, x.dtype)
    if x.dtype == numpy.float32:
        _forward[float](x, y, mean, variance, gamma, beta, scale, partial, batch_stats, epsilon)
    else:
        _forward[double](x, y, mean, variance, gamma, beta, scale, partial, batch_stats, epsilon)
    return y, mean, variance


cdef inline void _grad_sums_block(const floating* x, const floating* dy, Py_ssize_t n,
                                  const floating* mean, double* sdy, double* sdyx,
                                  Py_ssize_t r0, Py_ssize_t r1) noexcept nogil:
    # Sums of dy and of dy * (x - mean), per feature.
    if floating is float:
        fastnn_bn_grad_sums_f32(r1 - r0, n, x + r0 * n, dy + r0 * n, mean, sdy, sdyx)
    else:
        fastnn_bn_grad_sums_f64(r1 - r0, n, x + r0 * n, dy + r0 * n, mean, sdy, sdyx)


cdef inline void _dx_block(const floating* x, const floating* dy, floating* dx, Py_ssize_t n,
                           const floating* mean, const floating* k1, const floating* k2,
                           const floating* k3, bint batch_stats, Py_ssize_t r0,
                           Py_ssize_t r1) noexcept nogil:
    cdef Py_ssize_t o = r0 * n
    # Fixed statistics: dx = k1 * dy reads no x (0 * (inf - mean) would be NaN).
    if floating is float:
        if batch_stats:
            fastnn_bn_dx_f32(r1 - r0, n, x + o, dy + o, dx + o, mean, k1, k2, k3)
        else:
            fastnn_bn_dx_fixed_f32(r1 - r0, n, dy + o, dx + o, k1)
    else:
        if batch_stats:
            fastnn_bn_dx_f64(r1 - r0, n, x + o, dy + o, dx + o, mean, k1, k2, k3)
        else:
            fastnn_bn_dx_fixed_f64(r1 - r0, n, dy + o, dx + o, k1)


cdef void _backward(const floating[:, ::1] x, const floating[:, ::1] dy, floating[:, ::1] dx,
                    const floating[::1] gamma, const floating[::1] mean,
                    const floating[::1] var, floating[::1] dgamma, bint has_dgamma,
                    floating[::1] dbeta, bint has_dbeta, floating[:, ::1] coef,
                    double[:, :, ::1] partial, bint batch_stats, bint need_dx,
                    double epsilon):
    with nogil:
        _backward_nogil(x, dy, dx, gamma, mean, var, dgamma, has_dgamma, dbeta, has_dbeta,
                        coef, partial, batch_stats, need_dx, epsilon)


cdef void _backward_nogil(const floating[:, ::1] x, const floating[:, ::1] dy,
                          floating[:, ::1] dx, const floating[::1] gamma,
                          const floating[::1] mean, const floating[::1] var,
                          floating[::1] dgamma, bint has_dgamma, floating[::1] dbeta,
                          bint has_dbeta, floating[:, ::1] coef, double[:, :, ::1] partial,
                          bint batch_stats, bint need_dx, double epsilon) noexcept nogil:
    cdef Py_ssize_t m = x.shape[0], n = x.shape[1], nblocks = partial.shape[0], blk, j
    cdef int nt = fastnn_threads(<double>m * n * FASTNN_ELEMENT_COST)
    cdef double sdy, sdyx, inv, g
    for blk in prange(nblocks, schedule="static", num_threads=nt):
        _grad_sums_block(&x[0, 0], &dy[0, 0], n, &mean[0], &partial[blk, 0, 0],
                         &partial[blk, 1, 0], blk * SUM_ROWS,
                         min(m, (blk + 1) * <Py_ssize_t>SUM_ROWS))
    for j in range(n):
        sdy = 0
        sdyx = 0
        for blk in range(nblocks):
            sdy = sdy + partial[blk, 0, j]
            sdyx = sdyx + partial[blk, 1, j]
        inv = 1.0 / sqrt(<double>var[j] + epsilon)
        g = gamma[j]
        if has_dbeta:
            dbeta[j] += <floating>sdy
        if has_dgamma:
            dgamma[j] += <floating>(sdyx * inv)
        # dx = k1 * dy + k2 * (x - mean) + k3. With batch statistics the mean and
        # variance depend on x: dx = g*inv*(dy - mean(dy) - xhat*mean(dy*xhat)).
        coef[0, j] = <floating>(g * inv)
        if batch_stats:
            coef[1, j] = <floating>(-g * inv * inv * inv * sdyx / m)
            coef[2, j] = <floating>(-g * inv * sdy / m)
        else:
            coef[1, j] = 0
            coef[2, j] = 0
    if need_dx:
        for blk in prange(nblocks, schedule="static", num_threads=nt):
            _dx_block(&x[0, 0], &dy[0, 0], &dx[0, 0], n, &mean[0], &coef[0, 0], &coef[1, 0],
                      &coef[2, 0], batch_stats, blk * SUM_ROWS,
                      min(m, (blk + 1) * <Py_ssize_t>SUM_ROWS))


def batchnorm_backward(x, dy, gamma, mean, variance, double epsilon, dgamma=None, dbeta=None,
                       bint batch_stats=True, bint need_dx=True):
    """The gradient of ``batchnorm_forward`` for x, dy (m, n) C-contiguous.

    Accumulates ``dgamma += sum(dy * xhat)`` and ``dbeta += sum(dy)`` over rows
    (either may be None; float64 sums) in place, with ``xhat = (x - mean) /
    sqrt(variance + epsilon)``, and returns dx (None unless ``need_dx``).
    ``batch_stats``: mean and variance were x's own batch statistics (training),
    so dx includes the gradient through them; False: fixed (inference)
    statistics, dx = dy * gamma / sqrt(variance + epsilon)."""
    check_float("x", x)
    check_float("dy", dy, x, "x")
    check_ndim("x", x, 2)
    check_c_contiguous("x", x)
    check_c_contiguous("dy", dy)
    if dy.shape != x.shape:
        raise ValueError(f"batchnorm_backward: dy has shape {dy.shape} but x has shape "
                         f"{x.shape}")
    if not epsilon > 0:
        raise ValueError(f"batchnorm_backward: epsilon must be positive, got {epsilon}")
    cdef Py_ssize_t m = x.shape[0], n = x.shape[1]
    gamma = numpy.ones(n, x.dtype) if gamma is None else \
        _features("batchnorm_backward", gamma, "gamma", n, x)
    mean = _features("batchnorm_backward", mean, "mean", n, x)
    variance = _features("batchnorm_backward", variance, "variance", n, x)
    cdef bint has_dgamma = dgamma is not None, has_dbeta = dbeta is not None
    for what, g in (("dgamma", dgamma), ("dbeta", dbeta)):
        if g is not None:
            check_float(what, g, x, "x")
            if g.shape != (n,):
                raise ValueError(f"batchnorm_backward: {what} has shape {g.shape} but x has "
                                 f"{n} features; {what} must have shape {(n,)}")
            check_c_contiguous(what, g, writeable=True)
    if has_dgamma and has_dbeta:
        check_disjoint("dgamma", dgamma, {"dbeta": dbeta})
    # The sums are written before dx reads x, dy and the statistics: an
    # overlapping dgamma/dbeta would be read back (a wrong dx, no error).
    inputs = {"x": x, "dy": dy, "gamma": gamma, "mean": mean, "variance": variance}
    check_disjoint("dgamma", dgamma, inputs)
    check_disjoint("dbeta", dbeta, inputs)
    dx = numpy.empty((m, n), x.dtype) if need_dx else None
    if m == 0 or n == 0:
        return dx
    cdef Py_ssize_t nblocks = (m + SUM_ROWS - 1) // SUM_ROWS
    partial = numpy.empty((nblocks, 2, n), numpy.float64)
    coef = numpy.empty((3, n), x.dtype)
    placeholder = numpy.empty(1, x.dtype)
    dx_buf = dx if need_dx else numpy.empty((1, 1), x.dtype)
    if x.dtype == numpy.float32:
        _backward[float](x, dy, dx_buf, gamma, mean, variance,
                         dgamma if has_dgamma else placeholder, has_dgamma,
                         dbeta if has_dbeta else placeholder, has_dbeta, coef, partial,
                         batch_stats, need_dx, epsilon)
    else:
        _backward[double](x, dy, dx_buf, gamma, mean, variance,
                          dgamma if has_dgamma else placeholder, has_dgamma,
                          dbeta if has_dbeta else placeholder, has_dbeta, coef, partial,
                          batch_stats, need_dx, epsilon)
    return dx


# ------------------------------------------- feature axis in the middle: (P, n, Q)
cdef inline Py_ssize_t _outer_per_block(Py_ssize_t Q) noexcept nogil:
    # Outer indices per partial sum: about SUM_ROWS values of each feature (one
    # outer index at least), so the partials stay small beside the data and the
    # summation order is fixed by the shape alone.
    return max(1, SUM_ROWS // Q)


cdef void _forward_strided(const floating[:, :, ::1] x, floating[:, :, ::1] y,
                           const floating[::1] shift, floating[::1] mean, floating[::1] var,
                           const floating[::1] gamma, const floating[::1] beta,
                           floating[::1] scale, double[:, :, ::1] partial, bint batch_stats,
                           double epsilon) noexcept nogil:
    cdef Py_ssize_t P = x.shape[0], n = x.shape[1], Q = x.shape[2], blk, j, p0, p1
    cdef Py_ssize_t pb = _outer_per_block(Q), nblocks = (P + pb - 1) // pb
    cdef int nt = fastnn_threads(<double>P * n * Q * FASTNN_ELEMENT_COST)
    cdef double s1, s2, mu, count = <double>P * Q
    if batch_stats:
        for blk in prange(nblocks, schedule="static", num_threads=nt):
            p0 = blk * pb
            p1 = min(P, p0 + pb)
            if floating is float:
                fastnn_bn_stats_strided_f32(p1 - p0, n, Q, &x[p0, 0, 0], &shift[0],
                                            &partial[blk, 0, 0], &partial[blk, 1, 0])
            else:
                fastnn_bn_stats_strided_f64(p1 - p0, n, Q, &x[p0, 0, 0], &shift[0],
                                            &partial[blk, 0, 0], &partial[blk, 1, 0])
        for j in range(n):
            s1 = 0
            s2 = 0
            for blk in range(nblocks):
                s1 = s1 + partial[blk, 0, j]
                s2 = s2 + partial[blk, 1, j]
            mu = s1 / count
            mean[j] = <floating>(<double>shift[j] + mu)
            var[j] = <floating>max(s2 / count - mu * mu, 0.0)
    for j in range(n):
        scale[j] = <floating>(<double>gamma[j] / sqrt(<double>var[j] + epsilon))
    # The element pass: one outer index (an (n, Q) slab) per work item.
    for p0 in prange(P, schedule="static", num_threads=nt):
        if floating is float:
            fastnn_bn_normalize_strided_f32(1, n, Q, &x[p0, 0, 0], &y[p0, 0, 0], &mean[0],
                                            &scale[0], &beta[0])
        else:
            fastnn_bn_normalize_strided_f64(1, n, Q, &x[p0, 0, 0], &y[p0, 0, 0], &mean[0],
                                            &scale[0], &beta[0])


cdef void _forward_strided_gil(const floating[:, :, ::1] x, floating[:, :, ::1] y,
                               const floating[::1] shift, floating[::1] mean,
                               floating[::1] var, const floating[::1] gamma,
                               const floating[::1] beta, floating[::1] scale,
                               double[:, :, ::1] partial, bint batch_stats, double epsilon):
    # The memoryviews are taken with the GIL (the call's conversions), then released.
    with nogil:
        _forward_strided(x, y, shift, mean, var, gamma, beta, scale, partial, batch_stats,
                         epsilon)


def _check_strided(str fn, object x):
    check_float(f"{fn}: x", x)
    check_ndim(f"{fn}: x", x, 3)
    check_c_contiguous(f"{fn}: x", x)


def batchnorm_forward_strided(x, gamma, beta, double epsilon, mean=None, variance=None):
    """``batchnorm_forward`` for x (P, n, Q), C-contiguous, feature j being
    ``x[:, j, :]`` (an NCHW batch viewed as (N, C, H*W)): the statistics run
    over P*Q values per feature, read in place. Returns ``(y, mean, variance)``,
    y shaped like x. Sums in float64 over fixed blocks of outer indices, so
    the bits do not depend on the thread count."""
    fn = "batchnorm_forward_strided"
    _check_strided(fn, x)
    if not epsilon > 0:
        raise ValueError(f"{fn}: epsilon must be positive, got {epsilon}")
    cdef Py_ssize_t P = x.shape[0], n = x.shape[1], Q = x.shape[2]
    cdef bint batch_stats = mean is None
    if (mean is None) != (variance is None):
        raise ValueError(f"{fn}: give both mean and variance (inference) or neither "
                         "(training, batch statistics)")
    if batch_stats and P * Q == 0:
        raise ValueError(f"{fn}: x has shape {x.shape}; batch statistics need at least one "
                         "value per feature")
    gamma = numpy.ones(n, x.dtype) if gamma is None else _features(fn, gamma, "gamma", n, x)
    beta = numpy.zeros(n, x.dtype) if beta is None else _features(fn, beta, "beta", n, x)
    if batch_stats:
        mean = numpy.empty(n, x.dtype)
        variance = numpy.empty(n, x.dtype)
    else:
        mean = numpy.array(_features(fn, mean, "mean", n, x))
        variance = numpy.array(_features(fn, variance, "variance", n, x))
        if n and (variance < 0).any():
            raise ValueError(f"{fn}: variance holds a negative value")
    y = numpy.empty((P, n, Q), x.dtype)
    if y.size == 0:
        return y, mean, variance
    cdef Py_ssize_t pb = _outer_per_block(Q)
    partial = numpy.empty(((P + pb - 1) // pb if batch_stats else 1, 2, n), numpy.float64)
    # The shift of the shifted-data variance: each feature's first value.
    shift = numpy.ascontiguousarray(x[0, :, 0])
    scale = numpy.empty(n, x.dtype)
    if x.dtype == numpy.float32:
        _forward_strided_gil[float](x, y, shift, mean, variance, gamma, beta, scale, partial,
                                    batch_stats, epsilon)
    else:
        _forward_strided_gil[double](x, y, shift, mean, variance, gamma, beta, scale, partial,
                                     batch_stats, epsilon)
    return y, mean, variance


cdef void _backward_strided(const floating[:, :, ::1] x, const floating[:, :, ::1] dy,
                            floating[:, :, ::1] dx, const floating[::1] gamma,
                            const floating[::1] mean, const floating[::1] var,
                            floating[::1] dgamma, bint has_dgamma, floating[::1] dbeta,
                            bint has_dbeta, floating[:, ::1] coef, double[:, :, ::1] partial,
                            bint batch_stats, bint need_dx, double epsilon) noexcept nogil:
    cdef Py_ssize_t P = x.shape[0], n = x.shape[1], Q = x.shape[2], blk, j, p0, p1
    cdef Py_ssize_t pb = _outer_per_block(Q), nblocks = partial.shape[0]
    cdef int nt = fastnn_threads(<double>P * n * Q * FASTNN_ELEMENT_COST)
    cdef double sdy, sdyx, inv, g, count = <double>P * Q
    for blk in prange(nblocks, schedule="static", num_threads=nt):
        p0 = blk * pb
        p1 = min(P, p0 + pb)
        if floating is float:
            fastnn_bn_grad_sums_strided_f32(p1 - p0, n, Q, &x[p0, 0, 0], &dy[p0, 0, 0],
                                            &mean[0], &partial[blk, 0, 0], &partial[blk, 1, 0])
        else:
            fastnn_bn_grad_sums_strided_f64(p1 - p0, n, Q, &x[p0, 0, 0], &dy[p0, 0, 0],
                                            &mean[0], &partial[blk, 0, 0], &partial[blk, 1, 0])
    for j in range(n):
        sdy = 0
        sdyx = 0
        for blk in range(nblocks):
            sdy = sdy + partial[blk, 0, j]
            sdyx = sdyx + partial[blk, 1, j]
        inv = 1.0 / sqrt(<double>var[j] + epsilon)
        g = gamma[j]
        if has_dbeta:
            dbeta[j] += <floating>sdy
        if has_dgamma:
            dgamma[j] += <floating>(sdyx * inv)
        # As _backward_nogil: dx = k1 * dy + k2 * (x - mean) + k3.
        coef[0, j] = <floating>(g * inv)
        if batch_stats:
            coef[1, j] = <floating>(-g * inv * inv * inv * sdyx / count)
            coef[2, j] = <floating>(-g * inv * sdy / count)
        else:
            coef[1, j] = 0
            coef[2, j] = 0
    if need_dx:
        for p0 in prange(P, schedule="static", num_threads=nt):
            # Fixed statistics read no x, as _dx_block.
            if floating is float:
                if batch_stats:
                    fastnn_bn_dx_strided_f32(1, n, Q, &x[p0, 0, 0], &dy[p0, 0, 0],
                                             &dx[p0, 0, 0], &mean[0], &coef[0, 0], &coef[1, 0],
                                             &coef[2, 0])
                else:
                    fastnn_bn_dx_fixed_strided_f32(1, n, Q, &dy[p0, 0, 0], &dx[p0, 0, 0],
                                                   &coef[0, 0])
            else:
                if batch_stats:
                    fastnn_bn_dx_strided_f64(1, n, Q, &x[p0, 0, 0], &dy[p0, 0, 0],
                                             &dx[p0, 0, 0], &mean[0], &coef[0, 0], &coef[1, 0],
                                             &coef[2, 0])
                else:
                    fastnn_bn_dx_fixed_strided_f64(1, n, Q, &dy[p0, 0, 0], &dx[p0, 0, 0],
                                                   &coef[0, 0])


cdef void _backward_strided_gil(const floating[:, :, ::1] x, const floating[:, :, ::1] dy,
                                floating[:, :, ::1] dx, const floating[::1] gamma,
                                const floating[::1] mean, const floating[::1] var,
                                floating[::1] dgamma, bint has_dgamma, floating[::1] dbeta,
                                bint has_dbeta, floating[:, ::1] coef,
                                double[:, :, ::1] partial, bint batch_stats, bint need_dx,
                                double epsilon):
    with nogil:
        _backward_strided(x, dy, dx, gamma, mean, var, dgamma, has_dgamma, dbeta, has_dbeta,
                          coef, partial, batch_stats, need_dx, epsilon)


def batchnorm_backward_strided(x, dy, gamma, mean, variance, double epsilon, dgamma=None,
                               dbeta=None, bint batch_stats=True, bint need_dx=True):
    """``batchnorm_backward`` for x, dy (P, n, Q) C-contiguous, feature j being
    ``x[:, j, :]``: accumulates dgamma and dbeta (n,) in place (either may be
    None) and returns dx shaped like x (None unless ``need_dx``)."""
    fn = "batchnorm_backward_strided"
    _check_strided(fn, x)
    check_float(f"{fn}: dy", dy, x, "x")
    check_c_contiguous(f"{fn}: dy", dy)
    if dy.shape != x.shape:
        raise ValueError(f"{fn}: dy has shape {dy.shape} but x has shape {x.shape}")
    if not epsilon > 0:
        raise ValueError(f"{fn}: epsilon must be positive, got {epsilon}")
    cdef Py_ssize_t P = x.shape[0], n = x.shape[1], Q = x.shape[2]
    gamma = numpy.ones(n, x.dtype) if gamma is None else _features(fn, gamma, "gamma", n, x)
    mean = _features(fn, mean, "mean", n, x)
    variance = _features(fn, variance, "variance", n, x)
    cdef bint has_dgamma = dgamma is not None, has_dbeta = dbeta is not None
    for what, g in (("dgamma", dgamma), ("dbeta", dbeta)):
        if g is not None:
            check_float(f"{fn}: {what}", g, x, "x")
            if g.shape != (n,):
                raise ValueError(f"{fn}: {what} has shape {g.shape} but x has {n} features; "
                                 f"{what} must have shape {(n,)}")
            check_c_contiguous(f"{fn}: {what}", g, writeable=True)
    if has_dgamma and has_dbeta:
        check_disjoint("dgamma", dgamma, {"dbeta": dbeta})
    dx = numpy.empty((P, n, Q), x.dtype) if need_dx else None
    if x.size == 0:
        return dx
    cdef Py_ssize_t pb = _outer_per_block(Q)
    partial = numpy.empty(((P + pb - 1) // pb, 2, n), numpy.float64)
    coef = numpy.empty((3, n), x.dtype)
    placeholder = numpy.empty(1, x.dtype)
    dx_buf = dx if need_dx else numpy.empty((1, 1, 1), x.dtype)
    if x.dtype == numpy.float32:
        _backward_strided_gil[float](x, dy, dx_buf, gamma, mean, variance,
                                     dgamma if has_dgamma else placeholder, has_dgamma,
                                     dbeta if has_dbeta else placeholder, has_dbeta, coef,
                                     partial, batch_stats, need_dx, epsilon)
    else:
        _backward_strided_gil[double](x, dy, dx_buf, gamma, mean, variance,
                                      dgamma if has_dgamma else placeholder, has_dgamma,
                                      dbeta if has_dbeta else placeholder, has_dbeta, coef,
                                      partial, batch_stats, need_dx, epsilon)
    return dx
