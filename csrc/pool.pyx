"""Pooling and depthwise-convolution kernels over NHWC (batch, rows, cols,
channels) C-contiguous float32/float64 arrays: max pooling (forward keeps the
argmax, backward scatters through it), average pooling (a "same" window
divides by the count of its real, unpadded inputs, as Keras), and a direct
depthwise convolution (GEMM is the wrong tool at one channel per group) with
a fused bias + activation epilogue and its backward (dW and db accumulated
``+=``: each output row's sum in the data's dtype, the rows in float64 over
fixed blocks; dx one input row per work item). Shapes and
semantics match ``Ops.pool2d_*`` / ``Ops.depthwise_conv2d_*``; the padding is
given explicitly (top, bottom, left, right) and the output size follows from
it, so every window arithmetic lives in fastnn/layers/conv_utils.py.
No layer logic, no NumPy fallback (the backend holds that), no Python loop
over data."""
from cython cimport floating
from cython.parallel cimport prange, threadid
from libc.string cimport memset
cimport numpy as cnp
import numpy

from checks cimport (check_float, check_ndim, check_c_contiguous, activation_code,
                      activation_codes, check_disjoint)
from elementwise cimport act_forward_run, act_backward_run
from activation_codes cimport ACT_LINEAR

cnp.import_array()
include "common/threads.pxi"

#: Activation name -> code, the table every kernel module shares (checks.pxd).
ACTIVATION_CODES = activation_codes()
# Softmax normalises over the channels of one pixel, which a run over a whole
# output row is not: the layer applies it after the kernel.
DEPTHWISE_ACTIVATIONS = ("linear", "sigmoid", "tanh", "relu", "leaky_relu", "elu")

cdef enum:
    # Output rows per partial sum of dW/db: fixes the summation order (the
    # result does not depend on the thread count) while keeping the partials
    # (blocks x kh*kw*C*M doubles) small beside the data.
    DW_ROWS = 8
    # Columns of the partial sums one work item of their final sum takes.
    DW_REDUCE_COLS = 256



# ------------------------------------------------- runs over the channels
# The inner loops, as functions of plain pointers and locals: inside a prange
# body GCC leaves them scalar (the loop's variables are the region's
# lastprivates), here it vectorises them.
cdef extern from *:
    """
    /* y = max(y, x), keeping in idx the position k of the first maximum;
       a NaN wins over any number (and the first NaN over later ones), as
       numpy.max propagates it: with "v > old" alone a NaN was kept only
       when it came first in its window (found by tests/fuzz).
       Written in C as bit masks: GCC turns any form with a select into
       conditional stores (a compare-and-branch per element, which random
       data mispredicts half the time); masks and unconditional stores
       vectorise. */
    #include <stdint.h>
    #include <string.h>
    #define FASTNN_MAX_RUN(NAME, T, U)                                           \
    static inline void NAME(const T *restrict x, T *restrict y, int *restrict idx, \
                            Py_ssize_t n, int k) {                               \
        for (Py_ssize_t c = 0; c < n; c++) {                                     \
            T v = x[c], old = y[c];                                              \
            U vb, ob, r, m = (U)0 - (U)((v > old) | ((v != v) & (old == old))); \
            int32_t mi = (int32_t)m;                                             \
            memcpy(&vb, &v, sizeof vb);                                          \
            memcpy(&ob, &old, sizeof ob);                                        \
            r = (vb & m) | (ob & ~m);                                            \
            memcpy(&y[c], &r, sizeof r);                                         \
            idx[c] = (k & mi) | (idx[c] & ~mi);                                  \
        }                                                                        \
    }
    FASTNN_MAX_RUN(fastnn_max_run_f, float, uint32_t)
    FASTNN_MAX_RUN(fastnn_max_run_d, double, uint64_t)
    """
    void fastnn_max_run_f(const float* x, float* y, int* idx, Py_ssize_t n, int k) nogil
    void fastnn_max_run_d(const double* x, double* y, int* idx, Py_ssize_t n, int k) nogil


cdef extern from "depthwise_rows.h" nogil:
    void fastnn_dw_row_f(const float** xrows, const float* k, const float* bias, float* y,
                         Py_ssize_t wo, Py_ssize_t W, Py_ssize_t C, int kh, int kw, int sw,
                         int dw, int pl)
    void fastnn_dw_row_d(const double** xrows, const double* k, const double* bias, double* y,
                         Py_ssize_t wo, Py_ssize_t W, Py_ssize_t C, int kh, int kw, int sw,
                         int dw, int pl)
    void fastnn_dw_dk_row_f(const float* xrow, const float* dzrow, double* part, Py_ssize_t lo,
                            Py_ssize_t hi, Py_ssize_t C, int sw, Py_ssize_t off)
    void fastnn_dw_dk_row_d(const double* xrow, const double* dzrow, double* part,
                            Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t C, int sw,
                            Py_ssize_t off)
    void fastnn_dw_dx_row_f(const float** dzrows, const float* k, float* dx, Py_ssize_t W,
                            Py_ssize_t wo, Py_ssize_t C, int kh, int kw, int sw, int dw,
                            int pl)
    void fastnn_dw_dx_row_d(const double** dzrows, const double* k, double* dx, Py_ssize_t W,
                            Py_ssize_t wo, Py_ssize_t C, int kh, int kw, int sw, int dw,
                            int pl)
    # kernel width 3, horizontal stride and dilation 1, M = 1 (depthwise_rows.h).
    void fastnn_dw3_row_f(const float** xrows, const float* k, const float* bias, float* y,
                          Py_ssize_t wo, Py_ssize_t W, Py_ssize_t C, int kh, int pl)
    void fastnn_dw3_row_d(const double** xrows, const double* k, const double* bias,
                          double* y, Py_ssize_t wo, Py_ssize_t W, Py_ssize_t C, int kh, int pl)
    void fastnn_dw3_dx_row_f(const float** dzrows, const float* k, float* dx, Py_ssize_t W,
                             Py_ssize_t wo, Py_ssize_t C, int kh, int pl)
    void fastnn_dw3_dx_row_d(const double** dzrows, const double* k, double* dx, Py_ssize_t W,
                             Py_ssize_t wo, Py_ssize_t C, int kh, int pl)
    void fastnn_dw3_dk_row_f(const float** xrows, const float* dz, double* pp, double* dbp,
                             Py_ssize_t wo, Py_ssize_t W, Py_ssize_t C, int pl)
    void fastnn_dw3_dk_row_d(const double** xrows, const double* dz, double* pp, double* dbp,
                             Py_ssize_t wo, Py_ssize_t W, Py_ssize_t C, int pl)
    # depth_multiplier M > 1 (k and y hold C * M channels).
    void fastnn_dw_row_mult_f(const float** xrows, const float* k, const float* bias, float* y,
                              Py_ssize_t wo, Py_ssize_t W, Py_ssize_t C, Py_ssize_t M, int kh,
                              int kw, int sw, int dw, int pl)
    void fastnn_dw_row_mult_d(const double** xrows, const double* k, const double* bias,
                              double* y, Py_ssize_t wo, Py_ssize_t W, Py_ssize_t C,
                              Py_ssize_t M, int kh, int kw, int sw, int dw, int pl)
    void fastnn_dw_dk_row_mult_f(const float* xrow, const float* dzrow, double* part,
                                 Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t C, Py_ssize_t M,
                                 int sw, Py_ssize_t off)
    void fastnn_dw_dk_row_mult_d(const double* xrow, const double* dzrow, double* part,
                                 Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t C, Py_ssize_t M,
                                 int sw, Py_ssize_t off)
    void fastnn_dw_dx_row_mult_f(const float** dzrows, const float* k, float* dx, Py_ssize_t W,
                                 Py_ssize_t wo, Py_ssize_t C, Py_ssize_t M, int kh, int kw,
                                 int sw, int dw, int pl)
    void fastnn_dw_dx_row_mult_d(const double** dzrows, const double* k, double* dx,
                                 Py_ssize_t W, Py_ssize_t wo, Py_ssize_t C, Py_ssize_t M,
                                 int kh, int kw, int sw, int dw, int pl)


cdef inline void _max_run(const floating* x, floating* y, int* idx, Py_ssize_t n,
                          int k) noexcept nogil:
    """``y = max(y, x)`` keeping the first maximum's position in ``idx``."""
    if floating is float:
        fastnn_max_run_f(x, y, idx, n, k)
    else:
        fastnn_max_run_d(x, y, idx, n, k)


cdef inline void _copy_run(const floating* x, floating* y, int* idx, Py_ssize_t n,
                           int k) noexcept nogil:
    cdef Py_ssize_t c
    for c in range(n):
        y[c] = x[c]
        idx[c] = k


cdef inline void _scale_add_run(floating* y, const floating* a, floating s,
                                Py_ssize_t n) noexcept nogil:
    """``y += s * a``."""
    cdef Py_ssize_t c
    for c in range(n):
        y[c] += s * a[c]


cdef inline void _add_f64_run(double* y, const floating* a, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t c
    for c in range(n):
        y[c] += a[c]


# ---------------------------------------------------------------- checks
cdef tuple _pool_geometry(str what, object x, int ph, int pw, int sh, int sw,
                          int pt, int pb, int pl, int pr, bint windows_must_touch):
    """Checked output size (ho, wo) of a window (ph, pw), strides (sh, sw) and
    padding over x (N, H, W, C)."""
    if ph < 1 or pw < 1:
        raise ValueError(f"{what}: the window must be at least 1x1, got {(ph, pw)}")
    if sh < 1 or sw < 1:
        raise ValueError(f"{what}: strides must be >= 1, got {(sh, sw)}")
    if min(pt, pb, pl, pr) < 0:
        raise ValueError(f"{what}: padding must be >= 0, got {(pt, pb, pl, pr)}")
    if windows_must_touch and (max(pt, pb) >= ph or max(pl, pr) >= pw):
        raise ValueError(f"{what}: padding {(pt, pb, pl, pr)} must be smaller than the "
                         f"window {(ph, pw)} (a window of padding only has no value)")
    H, W = int(x.shape[1]), int(x.shape[2])
    if H < 1 or W < 1 or H + pt + pb < ph or W + pl + pr < pw:
        raise ValueError(f"{what}: a window of {(ph, pw)} with padding {(pt, pb, pl, pr)} does "
                         f"not fit input of shape {x.shape}")
    return (H + pt + pb - ph) // sh + 1, (W + pl + pr - pw) // sw + 1


cdef tuple _c_ints(str what, str names, tuple values):
    """The geometry arguments as ints a C int holds, or a ValueError/TypeError
    naming the one that is not (typed ``int`` parameters raised OverflowError,
    naming nothing). ``names``: "name (group)" entries, comma-separated."""
    out = []
    for name, v in zip(names.split(", "), values):
        if isinstance(v, bool) or not hasattr(v, "__index__"):
            raise TypeError(f"{what}: {name} must be an integer, got {v!r}")
        i = v.__index__()
        if not -2**31 <= i < 2**31:
            raise ValueError(f"{what}: {name} = {i} is out of range (below 2**31 in size)")
        out.append(i)
    return tuple(out)


_POOL_INTS = ("ph (window), pw (window), sh (strides), sw (strides), pt (padding), "
              "pb (padding), pl (padding), pr (padding)")
_DW_INTS = ("sh (strides), sw (strides), dh (dilation), dw (dilation), pt (padding), "
            "pb (padding), pl (padding), pr (padding)")


cdef object _check_nhwc(str what, str name, object a, object like=None):
    check_float(f"{what}: {name}", a, like, None if like is None else "x")
    check_ndim(f"{what}: {name}", a, 4)
    check_c_contiguous(f"{what}: {name}", a)
    return a


# ------------------------------------------------------------ max/avg pool
cdef void _max_forward(const floating[:, :, :, ::1] x, floating[:, :, :, ::1] y,
                       int[:, :, :, ::1] idx, int ph, int pw, int sh, int sw,
                       int pt, int pl) noexcept nogil:
    cdef Py_ssize_t N = x.shape[0], H = x.shape[1], W = x.shape[2], C = x.shape[3]
    cdef Py_ssize_t ho = y.shape[1], wo = y.shape[2], r, n, oh, ow, c
    cdef int i, j, i0, i1, j0, j1, h0, w0, k
    cdef bint first
    cdef floating v
    cdef floating* yp
    cdef int* ip
    cdef const floating* xp
    for r in prange(N * ho, schedule="static",
                    num_threads=fastnn_threads(<double>N * ho * wo * C * ph * pw)):
        n = r // ho
        oh = r % ho
        h0 = <int>(oh * sh) - pt
        i0 = max(0, -h0)
        i1 = min(ph, <int>H - h0)
        for ow in range(wo):
            w0 = <int>(ow * sw) - pl
            j0 = max(0, -w0)
            j1 = min(pw, <int>W - w0)
            yp = &y[n, oh, ow, 0]
            ip = &idx[n, oh, ow, 0]
            first = True
            # Row-major window order with a strict ">": a tie keeps the first
            # maximum (TensorFlow's and Keras's choice for the gradient).
            for i in range(i0, i1):
                for j in range(j0, j1):
                    xp = &x[n, h0 + i, w0 + j, 0]
                    k = i * pw + j
                    if first:
                        _copy_run(xp, yp, ip, C, k)
                        first = False
                    else:
                        _max_run(xp, yp, ip, C, k)


cdef inline Py_ssize_t _scatter_run(const floating* g, const int* ip, floating* dimg,
                                    const int* krow, const int* kcol, int nk, int h0, int w0,
                                    Py_ssize_t H, Py_ssize_t W, Py_ssize_t C) noexcept nogil:
    """One output pixel's channels: ``dimg[h0 + krow[k], w0 + kcol[k], c] += g[c]``
    with ``k = ip[c]``; an entry off its window or on padding is skipped and
    counted. The window position's row and column come from tables: no
    division per element."""
    cdef Py_ssize_t c, bad = 0
    cdef int k, ih, iw
    for c in range(C):
        k = ip[c]
        if k < 0 or k >= nk:
            bad += 1
            continue
        ih = h0 + krow[k]
        iw = w0 + kcol[k]
        if ih < 0 or ih >= H or iw < 0 or iw >= W:
            bad += 1
            continue
        dimg[(ih * W + iw) * C + c] += g[c]
    return bad


cdef Py_ssize_t _max_backward(const floating[:, :, :, ::1] dy, const int[:, :, :, ::1] idx,
                              floating[:, :, :, ::1] dx, int ph, int pw, int sh, int sw, int pt,
                              int pl, const int* krow, const int* kcol) noexcept nogil:
    # Overlapping windows of one image add into the same dx: images in parallel.
    # An argmax off its window or on padding is skipped and counted (the caller
    # raises): nothing is ever written outside dx.
    cdef Py_ssize_t N = dy.shape[0], ho = dy.shape[1], wo = dy.shape[2], C = dy.shape[3]
    cdef Py_ssize_t H = dx.shape[1], W = dx.shape[2], n, oh, ow, bad = 0
    cdef int h0, w0
    for n in prange(N, schedule="static",
                    num_threads=fastnn_threads(<double>N * ho * wo * C * 4)):
        # dx comes uninitialised (numpy.empty reuses memory; zeros from calloc
        # would fault in fresh pages): each image is zeroed by its thread.
        memset(&dx[n, 0, 0, 0], 0, H * W * C * sizeof(floating))
        for oh in range(ho):
            h0 = <int>(oh * sh) - pt
            for ow in range(wo):
                w0 = <int>(ow * sw) - pl
                bad += _scatter_run(&dy[n, oh, ow, 0], &idx[n, oh, ow, 0], &dx[n, 0, 0, 0],
                                    krow, kcol, ph * pw, h0, w0, H, W, C)
    return bad


cdef void _avg_forward(const floating[:, :, :, ::1] x, floating[:, :, :, ::1] y, int ph, int pw,
                       int sh, int sw, int pt, int pl, double* scratch, int nt) noexcept nogil:
    cdef Py_ssize_t N = x.shape[0], H = x.shape[1], W = x.shape[2], C = x.shape[3]
    cdef Py_ssize_t ho = y.shape[1], wo = y.shape[2], r, n, oh, ow, c
    cdef int i, j, i0, i1, j0, j1, h0, w0
    cdef double inv
    cdef double* acc
    cdef const floating* xp
    for r in prange(N * ho, schedule="static", num_threads=nt):
        acc = scratch + threadid() * C
        n = r // ho
        oh = r % ho
        h0 = <int>(oh * sh) - pt
        i0 = max(0, -h0)
        i1 = min(ph, <int>H - h0)
        for ow in range(wo):
            w0 = <int>(ow * sw) - pl
            j0 = max(0, -w0)
            j1 = min(pw, <int>W - w0)
            for c in range(C):
                acc[c] = 0
            for i in range(i0, i1):
                for j in range(j0, j1):
                    _add_f64_run(acc, &x[n, h0 + i, w0 + j, 0], C)
            inv = 1.0 / ((i1 - i0) * (j1 - j0))
            for c in range(C):
                y[n, oh, ow, c] = <floating>(acc[c] * inv)


cdef void _avg_backward(const floating[:, :, :, ::1] dy, floating[:, :, :, ::1] dx, int ph,
                        int pw, int sh, int sw, int pt, int pl) noexcept nogil:
    cdef Py_ssize_t N = dx.shape[0], H = dx.shape[1], W = dx.shape[2], C = dx.shape[3]
    cdef Py_ssize_t ho = dy.shape[1], wo = dy.shape[2], n, oh, ow, c
    cdef int i, j, i0, i1, j0, j1, h0, w0
    cdef floating share
    cdef const floating* gp
    cdef floating* dp
    for n in prange(N, schedule="static",
                    num_threads=fastnn_threads(<double>N * ho * wo * C * ph * pw)):
        memset(&dx[n, 0, 0, 0], 0, H * W * C * sizeof(floating))
        for oh in range(ho):
            h0 = <int>(oh * sh) - pt
            i0 = max(0, -h0)
            i1 = min(ph, <int>H - h0)
            for ow in range(wo):
                w0 = <int>(ow * sw) - pl
                j0 = max(0, -w0)
                j1 = min(pw, <int>W - w0)
                share = <floating>(1.0 / ((i1 - i0) * (j1 - j0)))
                gp = &dy[n, oh, ow, 0]
                for i in range(i0, i1):
                    for j in range(j0, j1):
                        _scale_add_run(&dx[n, h0 + i, w0 + j, 0], gp, share, C)


def pool2d_forward(x, ph, pw, sh, sw, pt, pb, pl, pr, str mode="max"):
    """Max or average pooling of x (N, H, W, C) with window (ph, pw), strides
    (sh, sw) and padding (pt, pb, pl, pr) (padded cells never win a max nor
    count in an average). Returns ``(y, argmax)``: y (N, ho, wo, C) and, for
    max, int32 argmax (N, ho, wo, C) holding ``i * pw + j``, the position of
    the (first) maximum inside its padded window; None for average."""
    what = f"pool2d_forward({mode!r})"
    ph, pw, sh, sw, pt, pb, pl, pr = _c_ints(what, _POOL_INTS, (ph, pw, sh, sw, pt, pb, pl, pr))
    if mode not in ("max", "avg"):
        raise ValueError(f"pool2d_forward: mode must be 'max' or 'avg', got {mode!r}")
    _check_nhwc(what, "x", x)
    ho, wo = _pool_geometry(what, x, ph, pw, sh, sw, pt, pb, pl, pr, True)
    cdef Py_ssize_t N = x.shape[0], C = x.shape[3]
    y = numpy.empty((N, ho, wo, C), dtype=x.dtype)
    if y.size == 0:
        return y, (numpy.zeros(y.shape, numpy.int32) if mode == "max" else None)
    cdef double* scratch
    cdef int nt
    if mode == "max":
        idx = numpy.empty(y.shape, dtype=numpy.int32)
        if x.dtype == numpy.float32:
            _max_forward[float](x, y, idx, ph, pw, sh, sw, pt, pl)
        else:
            _max_forward[double](x, y, idx, ph, pw, sh, sw, pt, pl)
        return y, idx
    # One float64 accumulator row per thread, for the thread count decided here.
    nt = max(1, fastnn_threads(<double>N * ho * wo * C * ph * pw))
    scratch_arr = numpy.empty(nt * C, dtype=numpy.float64)
    scratch = <double*>cnp.PyArray_DATA(scratch_arr)
    if x.dtype == numpy.float32:
        _avg_forward[float](x, y, ph, pw, sh, sw, pt, pl, scratch, nt)
    else:
        _avg_forward[double](x, y, ph, pw, sh, sw, pt, pl, scratch, nt)
    return y, None


def pool2d_backward(dy, argmax, x_shape, ph, pw, sh, sw, pt, pb, pl, pr, str mode="max"):
    """dx (``x_shape``) of pool2d_forward: max scatters dy through argmax (a
    window position, checked to lie in range), average spreads dy evenly over
    the real inputs of each window. Overlapping windows sum."""
    what = f"pool2d_backward({mode!r})"
    ph, pw, sh, sw, pt, pb, pl, pr = _c_ints(what, _POOL_INTS, (ph, pw, sh, sw, pt, pb, pl, pr))
    cdef const int* krow
    cdef const int* kcol
    if mode not in ("max", "avg"):
        raise ValueError(f"pool2d_backward: mode must be 'max' or 'avg', got {mode!r}")
    x_shape = tuple(int(d) for d in x_shape)
    if len(x_shape) != 4 or min(x_shape) < 0:
        raise ValueError(f"{what}: x_shape must be (N, H, W, C), got {x_shape}")
    probe = numpy.empty(x_shape[:3] + (0,), numpy.float32)
    ho, wo = _pool_geometry(what, probe, ph, pw, sh, sw, pt, pb, pl, pr, True)
    _check_nhwc(what, "dy", dy)
    expected = (x_shape[0], ho, wo, x_shape[3])
    if dy.shape != expected:
        raise ValueError(f"{what}: dy has shape {dy.shape}; the pooling of an input of shape "
                         f"x_shape={x_shape} has shape {expected}")
    # argmax is checked before the empty case returns: a wrong one is wrong there too.
    if mode == "max" and (not isinstance(argmax, numpy.ndarray) or argmax.dtype != numpy.int32
                          or argmax.shape != dy.shape or not argmax.flags.c_contiguous):
        raise ValueError(f"{what}: argmax must be a C-contiguous int32 array of shape "
                         f"{dy.shape}, got "
                         f"{getattr(argmax, 'dtype', type(argmax).__name__)} "
                         f"{getattr(argmax, 'shape', '')}")
    if dy.size == 0 or x_shape[1] * x_shape[2] * x_shape[3] == 0:
        return numpy.zeros(x_shape, dtype=dy.dtype)
    dx = numpy.empty(x_shape, dtype=dy.dtype)  # the kernels zero it image by image
    if mode == "max":
        if dy.size == 0:
            return dx
        # Row and column of each window position, looked up per element.
        ktab = numpy.ascontiguousarray(numpy.divmod(numpy.arange(ph * pw, dtype=numpy.int32),
                                                    numpy.int32(pw)), dtype=numpy.int32)
        krow = <const int*>cnp.PyArray_DATA(ktab)
        kcol = krow + <Py_ssize_t>(ph * pw)
        if dy.dtype == numpy.float32:
            bad = _max_backward[float](dy, argmax, dx, ph, pw, sh, sw, pt, pl, krow, kcol)
        else:
            bad = _max_backward[double](dy, argmax, dx, ph, pw, sh, sw, pt, pl, krow, kcol)
        if bad:
            raise ValueError(f"{what}: {bad} argmax entries are not a real input's position "
                             f"in their {ph}x{pw} window (outside [0, {ph * pw}) or on "
                             f"padding); argmax must come from pool2d_forward with the same "
                             f"arguments")
        return dx
    if dy.size == 0:
        return dx
    if dy.dtype == numpy.float32:
        _avg_backward[float](dy, dx, ph, pw, sh, sw, pt, pl)
    else:
        _avg_backward[double](dy, dx, ph, pw, sh, sw, pt, pl)
    return dx


# ------------------------------------------------------- depthwise conv2d
# The three-tap row loops (kernel width 3, horizontal stride and dilation 1, M = 1) on;
# the tests turn them off to compare them with the general loops bit for bit.
cdef bint _dw3_enabled = True


def set_depthwise_three_tap(bint on):
    """Use the three-tap depthwise row loops where they apply (the default) or
    the general ones everywhere; returns the previous setting. Both give the
    same bits: a switch for the tests and for measuring."""
    global _dw3_enabled
    old = _dw3_enabled
    _dw3_enabled = on
    return old


cdef inline void _input_rows(const floating* image, Py_ssize_t H, Py_ssize_t row,
                             Py_ssize_t oh, int sh, int pt, int dh, Py_ssize_t kh,
                             const floating** rows) noexcept nogil:
    """The input row each kernel row of output row ``oh`` reads, in an image of
    ``H`` rows of ``row`` elements (NULL: outside the image)."""
    cdef Py_ssize_t i, ih
    for i in range(kh):
        ih = oh * sh - pt + i * dh
        if ih < 0 or ih >= H:
            rows[i] = NULL
        else:
            rows[i] = image + ih * row


cdef void _dw_forward(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] k,
                      const floating* bias, floating[:, :, :, ::1] y, int code, floating alpha,
                      int sh, int sw, int dh, int dw, int pt, int pl, void** ptrs,
                      int nt) noexcept nogil:
    cdef Py_ssize_t N = x.shape[0], H = x.shape[1], W = x.shape[2], C = x.shape[3]
    cdef Py_ssize_t kh = k.shape[0], kw = k.shape[1], M = k.shape[3], CM = C * M
    cdef Py_ssize_t ho = y.shape[1], wo = y.shape[2], r, n, oh
    cdef const floating** rows
    cdef bint three = _dw3_enabled and M == 1 and kw == 3 and sw == 1 and dw == 1
    for r in prange(N * ho, schedule="static", num_threads=nt):
        n = r // ho
        oh = r % ho
        rows = <const floating**>ptrs + threadid() * kh
        _input_rows(&x[n, 0, 0, 0], H, W * C, oh, sh, pt, dh, kh, rows)
        if three:
            if floating is float:
                fastnn_dw3_row_f(rows, &k[0, 0, 0, 0], bias, &y[n, oh, 0, 0], wo, W, C,
                                 <int>kh, pl)
            else:
                fastnn_dw3_row_d(rows, &k[0, 0, 0, 0], bias, &y[n, oh, 0, 0], wo, W, C,
                                 <int>kh, pl)
        elif M == 1:
            if floating is float:
                fastnn_dw_row_f(rows, &k[0, 0, 0, 0], bias, &y[n, oh, 0, 0], wo, W, C,
                                <int>kh, <int>kw, sw, dw, pl)
            else:
                fastnn_dw_row_d(rows, &k[0, 0, 0, 0], bias, &y[n, oh, 0, 0], wo, W, C,
                                <int>kh, <int>kw, sw, dw, pl)
        elif floating is float:
            fastnn_dw_row_mult_f(rows, &k[0, 0, 0, 0], bias, &y[n, oh, 0, 0], wo, W, C, M,
                                 <int>kh, <int>kw, sw, dw, pl)
        else:
            fastnn_dw_row_mult_d(rows, &k[0, 0, 0, 0], bias, &y[n, oh, 0, 0], wo, W, C, M,
                                 <int>kh, <int>kw, sw, dw, pl)
        # The epilogue runs on the output row while it is in cache.
        if code != ACT_LINEAR:
            act_forward_run(code, &y[n, oh, 0, 0], &y[n, oh, 0, 0], wo * CM, alpha)


cdef void _dw_dz(int code, const floating[:, :, :, ::1] y, const floating[:, :, :, ::1] dy,
                 floating[:, :, :, ::1] dz, floating alpha) noexcept nogil:
    cdef Py_ssize_t N = dy.shape[0], ho = dy.shape[1], run = dy.shape[2] * dy.shape[3], r
    for r in prange(N * ho, schedule="static",
                    num_threads=fastnn_threads(<double>N * ho * run * FASTNN_ELEMENT_COST)):
        act_backward_run(code, &y[r // ho, r % ho, 0, 0], &dy[r // ho, r % ho, 0, 0],
                         &dz[r // ho, r % ho, 0, 0], run, alpha)


cdef inline void _ow_range(Py_ssize_t wo, Py_ssize_t W, int sw, int off, Py_ssize_t* lo,
                          Py_ssize_t* hi) noexcept nogil:
    """The outputs ow whose input column ``ow * sw + off`` lies in [0, W)."""
    cdef Py_ssize_t a = 0, b
    if off < 0:
        a = (-off + sw - 1) // sw
    b = (W - 1 - off) // sw + 1 if W - 1 - off >= 0 else 0
    lo[0] = a
    hi[0] = min(wo, b) if b > a else a


cdef void _dw_backward_blocks(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] dz,
                              const floating* kp, floating* dxp, double[:, ::1] partial,
                              Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t M, int sh, int sw,
                              int dh, int dw, int pt, int pl, bint has_db, floating* scratch,
                              void** ptrs, int nt) noexcept nogil:
    """The whole backward but the final dW/db sum, in one parallel loop and one
    pass over x and dz: work item b is DW_ROWS output rows of one image.
    partial[b] = the dW (kh*kw*C*M) and db (C*M) sums of its rows. Each output
    row's products over its columns are summed in the data's dtype (a row is
    at most wo terms, in a fixed order), then added to the float64 block sums:
    the float64 conversion runs once per row, not once per product. Then, if
    dxp is not NULL, the dx rows of the same stretch of the image (input rows
    b's first row * sh up to the next block's; the image's last block takes
    the rest of its rows: every dx row once), while the dz rows they read are
    still in cache. Two loops (dW, then dx over the whole tensor) read x and
    dz from memory twice and woke the thread team twice."""
    cdef Py_ssize_t N = x.shape[0], H = x.shape[1], W = x.shape[2], C = x.shape[3], CM = C * M
    cdef Py_ssize_t ho = dz.shape[1], wo = dz.shape[2], K = partial.shape[1]
    cdef Py_ssize_t bph = (ho + DW_ROWS - 1) // DW_ROWS, b, n, oh, ow, o, lo, hi, ih0, ih1, r
    cdef int i, j, ih, off, t
    cdef bint three = _dw3_enabled and M == 1 and kw == 3 and sw == 1 and dw == 1
    cdef double* pp
    cdef floating* acc
    cdef floating* dxrow
    cdef const floating** rows
    for b in prange(N * bph, schedule="static", num_threads=nt):
        acc = scratch + threadid() * CM
        pp = &partial[b, 0]
        for o in range(K):
            pp[o] = 0
        n = b // bph
        for oh in range((b % bph) * DW_ROWS, min(ho, (b % bph + 1) * DW_ROWS)):
            if three and kh == 3:
                rows = <const floating**>ptrs + threadid() * kh
                _input_rows(&x[n, 0, 0, 0], H, W * C, oh, sh, pt, dh, kh, rows)
                if floating is float:
                    fastnn_dw3_dk_row_f(rows, &dz[n, oh, 0, 0], pp,
                                        pp + kh * kw * CM if has_db else NULL, wo, W, C, pl)
                else:
                    fastnn_dw3_dk_row_d(rows, &dz[n, oh, 0, 0], pp,
                                        pp + kh * kw * CM if has_db else NULL, wo, W, C, pl)
                continue
            if has_db:
                for o in range(CM):
                    acc[o] = 0
                for ow in range(wo):
                    _scale_add_run(acc, &dz[n, oh, ow, 0], 1, CM)
                for o in range(CM):
                    pp[kh * kw * CM + o] += acc[o]
            for i in range(kh):
                ih = <int>(oh * sh) - pt + i * dh
                if ih < 0 or ih >= H:
                    continue
                for j in range(kw):
                    off = j * dw - pl
                    # Assigned here so that Cython makes lo and hi private to each
                    # thread: written only through their addresses, they were shared,
                    # and two threads' taps now and then took each other's ranges (the
                    # thread-count test failed about one run in ten).
                    lo = 0
                    hi = 0
                    _ow_range(wo, W, sw, off, &lo, &hi)
                    if hi <= lo:
                        continue
                    if M == 1:
                        if floating is float:
                            fastnn_dw_dk_row_f(&x[n, ih, 0, 0], &dz[n, oh, 0, 0],
                                               pp + (i * kw + j) * CM, lo, hi, C, sw, off)
                        else:
                            fastnn_dw_dk_row_d(&x[n, ih, 0, 0], &dz[n, oh, 0, 0],
                                               pp + (i * kw + j) * CM, lo, hi, C, sw, off)
                    elif floating is float:
                        fastnn_dw_dk_row_mult_f(&x[n, ih, 0, 0], &dz[n, oh, 0, 0],
                                                pp + (i * kw + j) * CM, lo, hi, C, M, sw, off)
                    else:
                        fastnn_dw_dk_row_mult_d(&x[n, ih, 0, 0], &dz[n, oh, 0, 0],
                                                pp + (i * kw + j) * CM, lo, hi, C, M, sw, off)
        if dxp == NULL:
            continue
        ih0 = (b % bph) * DW_ROWS * sh
        ih1 = H if b % bph == bph - 1 else min(H, (b % bph + 1) * DW_ROWS * sh)
        rows = <const floating**>ptrs + threadid() * kh
        for r in range(ih0, ih1):
            # The output row each kernel row takes input row r to (NULL: none).
            for i in range(kh):
                t = <int>r + pt - i * dh
                if t < 0 or t % sh != 0 or t // sh >= ho:
                    rows[i] = NULL
                else:
                    rows[i] = &dz[n, t // sh, 0, 0]
            dxrow = dxp + (n * H + r) * W * C
            if three:
                if floating is float:
                    fastnn_dw3_dx_row_f(rows, kp, dxrow, W, wo, C, <int>kh, pl)
                else:
                    fastnn_dw3_dx_row_d(rows, kp, dxrow, W, wo, C, <int>kh, pl)
            elif M == 1:
                if floating is float:
                    fastnn_dw_dx_row_f(rows, kp, dxrow, W, wo, C, <int>kh, <int>kw, sw, dw, pl)
                else:
                    fastnn_dw_dx_row_d(rows, kp, dxrow, W, wo, C, <int>kh, <int>kw, sw, dw, pl)
            elif floating is float:
                fastnn_dw_dx_row_mult_f(rows, kp, dxrow, W, wo, C, M, <int>kh, <int>kw, sw, dw,
                                        pl)
            else:
                fastnn_dw_dx_row_mult_d(rows, kp, dxrow, W, wo, C, M, <int>kh, <int>kw, sw, dw,
                                        pl)


cdef void _dw_reduce(const double[:, ::1] partial, double* acc, floating* dk, floating* db,
                     Py_ssize_t nk, bint has_db) noexcept nogil:
    # Every column sums the blocks in their order, so the bits do not depend on the thread
    # count. Row by row over a stretch of DW_REDUCE_COLS columns: a column at a time strode
    # through the partials (K doubles apart), one cache line per add, and took 0.1-0.3 ms
    # of the benchmark step's backward on one thread. acc holds K doubles.
    cdef Py_ssize_t nb = partial.shape[0], K = partial.shape[1], col, b, s, c0, c1
    for s in prange((K + DW_REDUCE_COLS - 1) // DW_REDUCE_COLS, schedule="static",
                    num_threads=fastnn_threads(<double>nb * K)):
        c0 = s * DW_REDUCE_COLS
        c1 = min(K, c0 + DW_REDUCE_COLS)
        for col in range(c0, c1):
            acc[col] = 0
        for b in range(nb):
            _add_f64_run(acc + c0, &partial[b, c0], c1 - c0)
        for col in range(c0, c1):
            if col < nk:
                dk[col] += <floating>acc[col]
            elif has_db:
                db[col - nk] += <floating>acc[col]


cdef tuple _dw_check(str what, object x, object kernel, int sh, int sw, int dh, int dw, int pt,
                     int pb, int pl, int pr):
    _check_nhwc(what, "x", x)
    _check_nhwc(what, "kernel", kernel, x)
    if kernel.shape[2] != x.shape[3]:
        raise ValueError(f"{what}: kernel has shape {kernel.shape} (kh, kw, channels, "
                         f"depth_multiplier) but x has {x.shape[3]} channels (shape {x.shape})")
    if dh < 1 or dw < 1:
        raise ValueError(f"{what}: dilation must be >= 1, got {(dh, dw)}")
    kh, kw = kernel.shape[0], kernel.shape[1]
    if kh < 1 or kw < 1 or kernel.shape[3] < 1:
        raise ValueError(f"{what}: kernel has shape {kernel.shape}; every size must be >= 1")
    return _pool_geometry(what, x, (kh - 1) * dh + 1, (kw - 1) * dw + 1, sh, sw,
                          pt, pb, pl, pr, False)


def depthwise_conv2d_forward(x, kernel, bias, sh, sw, dh, dw, pt, pb, pl, pr,
                             activation="linear", double alpha=0.0):
    """``act(depthwise(x, kernel) + bias)`` for x (N, H, W, C), kernel (kh, kw,
    C, M), bias (C*M,) or None, strides (sh, sw), dilation (dh, dw), zero
    padding (pt, pb, pl, pr): y (N, ho, wo, C*M), output channel ``c*M + m``
    from input channel c (TensorFlow's order). A window's sum of kh*kw products
    accumulates in the data's dtype, as a GEMM's would."""
    what = "depthwise_conv2d_forward"
    sh, sw, dh, dw, pt, pb, pl, pr = _c_ints(what, _DW_INTS, (sh, sw, dh, dw, pt, pb, pl, pr))
    cdef int code = activation_code(activation, DEPTHWISE_ACTIVATIONS)
    ho, wo = _dw_check(what, x, kernel, sh, sw, dh, dw, pt, pb, pl, pr)
    cdef Py_ssize_t CM = kernel.shape[2] * kernel.shape[3]
    if bias is not None:
        check_float(f"{what}: bias", bias, x, "x")
        if bias.shape != (CM,):
            raise ValueError(f"{what}: bias has shape {bias.shape}; expected {(CM,)}")
        check_c_contiguous(f"{what}: bias", bias)
    y = numpy.empty((x.shape[0], ho, wo, CM), dtype=x.dtype)
    if y.size == 0:
        return y
    cdef const float[::1] bf
    cdef const double[::1] bd
    # Per-thread row pointers, for the thread count decided here.
    cdef int nt = max(1, fastnn_threads(<double>y.size * kernel.shape[0] * kernel.shape[1]))
    ptr_arr = numpy.empty(nt * kernel.shape[0], dtype=numpy.uintp)
    cdef void** ptrs = <void**>cnp.PyArray_DATA(ptr_arr)
    if x.dtype == numpy.float32:
        bf = bias if bias is not None else None
        _dw_forward[float](x, kernel, &bf[0] if bias is not None else NULL, y, code,
                           <float>alpha, sh, sw, dh, dw, pt, pl, ptrs, nt)
    else:
        bd = bias if bias is not None else None
        _dw_forward[double](x, kernel, &bd[0] if bias is not None else NULL, y, code,
                            alpha, sh, sw, dh, dw, pt, pl, ptrs, nt)
    return y


def depthwise_conv2d_backward(x, kernel, y, dy, dkernel, dbias, sh, sw, dh, dw, pt, pb, pl, pr,
                              activation="linear", double alpha=0.0, bint need_dx=True):
    """With ``dz = dy * act'(y)``: accumulate ``dkernel += dL/dkernel`` and
    ``dbias += dz summed over (N, ho, wo)`` (``dbias`` may be None) in place
    (per output row in the data's dtype, rows in float64 over fixed blocks, so
    the bits do not depend on the thread count), and return dx (None unless
    ``need_dx``)."""
    what = "depthwise_conv2d_backward"
    sh, sw, dh, dw, pt, pb, pl, pr = _c_ints(what, _DW_INTS, (sh, sw, dh, dw, pt, pb, pl, pr))
    cdef int code = activation_code(activation, DEPTHWISE_ACTIVATIONS)
    ho, wo = _dw_check(what, x, kernel, sh, sw, dh, dw, pt, pb, pl, pr)
    cdef Py_ssize_t N = x.shape[0], C = x.shape[3], M = kernel.shape[3], CM = C * M
    cdef Py_ssize_t kh = kernel.shape[0], kw = kernel.shape[1]
    expected = (N, ho, wo, CM)
    for name, a in (("y", y), ("dy", dy)):
        _check_nhwc(what, name, a, x)
        if a.shape != expected:
            raise ValueError(f"{what}: {name} has shape {a.shape}; the output for x {x.shape} "
                             f"and kernel {kernel.shape} has shape {expected}")
    check_float(f"{what}: dkernel", dkernel, x, "x")
    if dkernel.shape != kernel.shape:
        raise ValueError(f"{what}: dkernel has shape {dkernel.shape}; expected {kernel.shape}")
    check_c_contiguous(f"{what}: dkernel", dkernel, writeable=True)
    cdef bint has_db = dbias is not None
    if has_db:
        check_float(f"{what}: dbias", dbias, x, "x")
        if dbias.shape != (CM,):
            raise ValueError(f"{what}: dbias has shape {dbias.shape}; expected {(CM,)}")
        check_c_contiguous(f"{what}: dbias", dbias, writeable=True)
    # dkernel and dbias are added to in place: an overlap with an input would change it.
    check_disjoint(f"{what}: dkernel", dkernel, {"x": x, "kernel": kernel, "y": y, "dy": dy})
    check_disjoint(f"{what}: dbias", dbias, {"x": x, "kernel": kernel, "y": y, "dy": dy,
                                             "dkernel": dkernel})
    if dy.size == 0 or x.size == 0:
        return numpy.zeros(x.shape, dtype=x.dtype) if need_dx else None
    # Every row of dx is written (zeroed first) by _dw_dx.
    dx = numpy.empty(x.shape, dtype=x.dtype) if need_dx else None
    dz = dy
    if code != ACT_LINEAR:
        dz = numpy.empty_like(dy)
        if x.dtype == numpy.float32:
            _dw_dz[float](code, y, dy, dz, <float>alpha)
        else:
            _dw_dz[double](code, y, dy, dz, alpha)
    cdef Py_ssize_t nk = kh * kw * CM
    cdef Py_ssize_t nblocks = N * ((ho + DW_ROWS - 1) // DW_ROWS)
    partial = numpy.empty((nblocks, nk + (CM if has_db else 0)), dtype=numpy.float64)
    acc_arr = numpy.empty(partial.shape[1], dtype=numpy.float64)
    dbias_buf = dbias if has_db else numpy.zeros(1, dtype=x.dtype)
    cdef float[::1] dkf, dbf
    cdef double[::1] dkd, dbd
    # One row accumulator per thread, for the thread count decided here.
    cdef int nt = max(1, fastnn_threads(<double>N * ho * wo * CM * kh * kw))
    scratch_arr = numpy.empty(nt * CM, dtype=x.dtype)
    cdef void* scratch = cnp.PyArray_DATA(scratch_arr)
    ptr_arr = numpy.empty(nt * kh, dtype=numpy.uintp)
    cdef void** ptrs = <void**>cnp.PyArray_DATA(ptr_arr)
    cdef void* dxp = cnp.PyArray_DATA(dx) if need_dx else NULL
    cdef const float[:, :, :, ::1] kf
    cdef const double[:, :, :, ::1] kd
    if x.dtype == numpy.float32:
        kf = kernel
        _dw_backward_blocks[float](x, dz, &kf[0, 0, 0, 0], <float*>dxp, partial, kh, kw, M,
                                   sh, sw, dh, dw, pt, pl, has_db, <float*>scratch, ptrs, nt)
        dkf = dkernel.reshape(-1)
        dbf = dbias_buf
        _dw_reduce[float](partial, <double*>cnp.PyArray_DATA(acc_arr), &dkf[0], &dbf[0], nk,
                          has_db)
    else:
        kd = kernel
        _dw_backward_blocks[double](x, dz, &kd[0, 0, 0, 0], <double*>dxp, partial, kh, kw, M,
                                    sh, sw, dh, dw, pt, pl, has_db, <double*>scratch, ptrs, nt)
        dkd = dkernel.reshape(-1)
        dbd = dbias_buf
        _dw_reduce[double](partial, <double*>cnp.PyArray_DATA(acc_arr), &dkd[0], &dbd[0], nk,
                           has_db)
    return dx
