"""2D convolution kernels, NHWC (channels last): forward ``y = act(conv(x, W) + b)``
by im2col feeding the row-major GEMM of ``common/gemm.pxd`` with the bias +
activation epilogue fused on each output row, and backward (``dz = dy * act'(y)``
with float64 column sums for ``db``; ``dW +=`` im2col(x)^T dz; ``dx`` by col2im
of dz W^T, skipped when not needed). 3x3, stride-1, undilated, ungrouped
convolutions with enough channels take Winograd F(2x2, 3x3) instead (below
``_wg_conv``: 2.25x fewer multiplies; forward, dx and dW). Strides, dilation, explicit (top, bottom,
left, right) zero padding and groups. Shapes and semantics match
``Ops.conv2d_forward`` / ``Ops.conv2d_backward``; x is (N, H, W, C), W is
(kh, kw, C // groups, F), y is (N, OH, OW, F). No layer logic here (padding
rules, data formats and Keras's arguments live in fastnn/layers)."""
from cython cimport floating
from cython.parallel cimport prange, threadid
from libc.string cimport memcpy, memset
cimport numpy as cnp
import numpy

from checks cimport (check_disjoint, check_float, check_ndim, check_c_contiguous, check_out,
                      activation_code, activation_codes, BLAS_INT_MAX)
from epilogue cimport epilogue_row, dz_block
from elementwise cimport act_forward_run
from activation_codes cimport ACT_LINEAR
from gemm cimport gemm_rm, _gemm_blas, fastnn_blas_single_begin, fastnn_blas_single_end

cnp.import_array()
include "common/threads.pxi"

#: Activation name -> code, the table every kernel module shares (checks.pxd).
ACTIVATION_CODES = activation_codes()

cdef enum:
    # Elements of the im2col buffer per chunk of output rows: 512 KiB in float32,
    # so the block im2col writes is still in the cores' L2 when the GEMM reads it
    # (a chunk of whole samples, megabytes, went out to L3 and back: slower in
    # bench/test_bench_conv.py), while each GEMM keeps a hundred rows or more.
    # The chunk is a function of the shapes only: results do not depend on threads.
    CHUNK_ELEMS = 1 << 17
    SUM_ROWS = 64         # output rows per partial bias-gradient sum: fixes the order


ctypedef struct Geom:
    Py_ssize_t n, h, w, c, oh, ow, f, kh, kw, sh, sw, dh, dw, pt, pl, groups, cg, fg, kg


cdef inline void _im2col_row(const floating* x, floating* cols, const Geom* g, Py_ssize_t grp,
                             Py_ssize_t oh) noexcept nogil:
    """The OW column-matrix rows of output row ``oh`` of one sample (at ``cols``),
    for group ``grp``: row ``ow`` holds the window ``x[ih, iw, grp * cg:(grp + 1) * cg]``
    for ``(i, j)`` in kernel order, zeros where the window leaves the input."""
    cdef Py_ssize_t ow, i, j, ih, iw, iw0, cg = g.cg, run = g.kw * g.cg
    cdef floating* row
    cdef floating* dst
    # With one group and no dilation along columns, a kernel row's kw pixels are
    # contiguous in x (kw * C values): one copy instead of kw.
    cdef bint whole = g.groups == 1 and g.dw == 1
    for ow in range(g.ow):
        row = cols + ow * g.kg
        iw0 = ow * g.sw - g.pl
        for i in range(g.kh):
            ih = oh * g.sh - g.pt + i * g.dh
            dst = row + i * run
            if ih < 0 or ih >= g.h:
                memset(dst, 0, run * sizeof(floating))
                continue
            if whole and iw0 >= 0 and iw0 + g.kw <= g.w:
                memcpy(dst, x + (ih * g.w + iw0) * g.c, run * sizeof(floating))
                continue
            for j in range(g.kw):
                iw = iw0 + j * g.dw
                if iw < 0 or iw >= g.w:
                    memset(dst + j * cg, 0, cg * sizeof(floating))
                else:
                    memcpy(dst + j * cg, x + (ih * g.w + iw) * g.c + grp * cg,
                           cg * sizeof(floating))


cdef inline void _col2im_row(const floating* cols, floating* dx, const Geom* g, Py_ssize_t grp,
                             Py_ssize_t ih, Py_ssize_t oh_lo, Py_ssize_t oh_hi) noexcept nogil:
    """Adds into input row ``ih`` of one sample's ``dx`` (group ``grp``'s channels)
    every column-matrix entry that im2col copied from it, among output rows
    ``oh_lo .. oh_hi`` (``cols`` points at row oh_lo's block). Gathering by input
    row means each task writes only its own row: tasks run in parallel without races."""
    cdef Py_ssize_t i, j, oh, ow, iw, c, t, cg = g.cg
    cdef const floating* src
    cdef floating* dst
    for i in range(g.kh):
        t = ih + g.pt - i * g.dh
        if t < 0 or t % g.sh:
            continue
        oh = t // g.sh
        if oh < oh_lo or oh >= oh_hi:
            continue
        for ow in range(g.ow):
            src = cols + ((oh - oh_lo) * g.ow + ow) * g.kg + i * g.kw * cg
            for j in range(g.kw):
                iw = ow * g.sw - g.pl + j * g.dw
                if iw < 0 or iw >= g.w:
                    continue
                dst = dx + (ih * g.w + iw) * g.c + grp * cg
                for c in range(cg):
                    dst[c] += src[j * cg + c]


cdef inline bint _direct(const Geom* g) noexcept nogil:
    """A 1x1, stride-1, unpadded, ungrouped convolution: x is its own column matrix."""
    return (g.kh == 1 and g.kw == 1 and g.sh == 1 and g.sw == 1 and g.pt == 0 and g.pl == 0
            and g.groups == 1 and g.oh == g.h and g.ow == g.w)


cdef inline Py_ssize_t _chunk(const Geom* g) noexcept nogil:
    """Output image rows (of OW pixels, across samples) per im2col chunk."""
    return max(1, CHUNK_ELEMS // max(1, g.ow * g.kg))


cdef inline void _im2col_rows(const floating* x, floating* cols, const Geom* g, Py_ssize_t grp,
                              Py_ssize_t t0, Py_ssize_t t1) noexcept nogil:
    """The column matrix of output rows t0 .. t1 (t = sample * OH + oh), in parallel."""
    cdef Py_ssize_t t, xs = g.h * g.w * g.c
    cdef int nt = fastnn_threads(<double>(t1 - t0) * g.ow * g.kg * FASTNN_ELEMENT_COST)
    for t in prange(t0, t1, schedule="static", num_threads=nt):
        _im2col_row(x + (t // g.oh) * xs, cols + (t - t0) * g.ow * g.kg, g, grp, t % g.oh)


cdef inline void _col2im_rows(const floating* cols, floating* dx, const Geom* g, Py_ssize_t grp,
                              Py_ssize_t t0, Py_ssize_t t1) noexcept nogil:
    """Adds the column matrix of output rows t0 .. t1 back into ``dx``: sample by
    sample, in parallel over the input rows those output rows read."""
    cdef Py_ssize_t n, lo, hi, ih0, ih1, ih, xs = g.h * g.w * g.c
    cdef int nt
    for n in range(t0 // g.oh, (t1 - 1) // g.oh + 1):
        lo = max(t0 - n * g.oh, 0)
        hi = min(t1 - n * g.oh, g.oh)
        ih0 = max(lo * g.sh - g.pt, 0)
        ih1 = min((hi - 1) * g.sh - g.pt + (g.kh - 1) * g.dh + 1, g.h)
        if ih1 <= ih0:
            continue
        nt = fastnn_threads(<double>(hi - lo) * g.ow * g.kg * FASTNN_ELEMENT_COST)
        for ih in prange(ih0, ih1, schedule="static", num_threads=nt):
            _col2im_row(cols + (n * g.oh + lo - t0) * g.ow * g.kg, dx + n * xs, g, grp, ih,
                        lo, hi)


cdef void _forward(int code, const floating* x, const floating* W, const floating* bias,
                   floating* y, floating* cols, Geom g, floating alpha) noexcept nogil:
    cdef Py_ssize_t nrows = g.n * g.oh, step = _chunk(&g), t0, t1, grp, rows, r
    cdef const floating* a
    cdef int nt
    cdef bint direct = _direct(&g)
    t0 = 0
    while t0 < nrows:
        t1 = min(nrows, t0 + step)
        rows = (t1 - t0) * g.ow
        for grp in range(g.groups):
            if direct:
                a = x + t0 * g.ow * g.c
            else:
                _im2col_rows(x, cols, &g, grp, t0, t1)
                a = cols
            gemm_rm(False, False, <int>rows, <int>g.fg, <int>g.kg, 1, a, <int>g.kg,
                    W + grp * g.fg, <int>g.f, 0, y + t0 * g.ow * g.f + grp * g.fg, <int>g.f)
        if code != ACT_LINEAR or bias != NULL:
            nt = fastnn_threads(<double>rows * g.f * FASTNN_ELEMENT_COST)
            for r in prange(rows, schedule="static", num_threads=nt):
                epilogue_row(code, y + (t0 * g.ow + r) * g.f, bias, g.f, alpha)
        t0 = t1


cdef void _backward(int code, const floating* x, const floating* W, const floating* y,
                    const floating* dy, floating* dz_buf, floating* dW, floating* db,
                    double* partial, floating* dx, floating* cols, Geom g,
                    floating alpha) noexcept nogil:
    """Chunk by chunk of output rows: dz = dy * act'(y) and the bias gradient's
    partial sums of the chunk (into ``dz_buf``, one chunk long, still in cache for
    the GEMMs), then dW += cols^T dz and dx += col2im(dz W^T)."""
    cdef Py_ssize_t nrows = g.n * g.oh, step = _chunk(&g), t0, t1, ci = 0
    cdef Py_ssize_t grp, rows, j, blk, nblk, per_chunk = (step * g.ow + SUM_ROWS - 1) // SUM_ROWS
    cdef Py_ssize_t nchunks = (nrows + step - 1) // step
    cdef bint fuse = code != ACT_LINEAR, direct = _direct(&g)
    cdef const floating* dz
    cdef const floating* a
    cdef double s
    cdef int nt
    t0 = 0
    while t0 < nrows:
        t1 = min(nrows, t0 + step)
        rows = (t1 - t0) * g.ow
        dz = dy + t0 * g.ow * g.f
        if fuse or db != NULL:
            nblk = (rows + SUM_ROWS - 1) // SUM_ROWS
            nt = fastnn_threads(<double>rows * g.f * FASTNN_ELEMENT_COST)
            for blk in prange(nblk, schedule="static", num_threads=nt):
                dz_block(code, y + t0 * g.ow * g.f, dz, dz_buf if fuse else NULL,
                          partial + (ci * per_chunk + blk) * g.f if db != NULL else NULL,
                          blk * SUM_ROWS, min(rows, (blk + 1) * SUM_ROWS), g.f, alpha)
            if fuse:
                dz = dz_buf
        for grp in range(g.groups):
            if dW != NULL:
                if direct:
                    a = x + t0 * g.ow * g.c
                else:
                    _im2col_rows(x, cols, &g, grp, t0, t1)
                    a = cols
                # dW[:, :, :, group] += cols^T @ dz[:, group]
                gemm_rm(True, False, <int>g.kg, <int>g.fg, <int>rows, 1, a, <int>g.kg,
                        dz + grp * g.fg, <int>g.f, 1, dW + grp * g.fg, <int>g.f)
            if dx != NULL:
                if direct:
                    # dx is its own column matrix: write the product there.
                    gemm_rm(False, True, <int>rows, <int>g.kg, <int>g.fg, 1, dz, <int>g.f, W,
                            <int>g.f, 0, dx + t0 * g.ow * g.c, <int>g.kg)
                    continue
                gemm_rm(False, True, <int>rows, <int>g.kg, <int>g.fg, 1, dz + grp * g.fg,
                        <int>g.f, W + grp * g.fg, <int>g.f, 0, cols, <int>g.kg)
                _col2im_rows(cols, dx, &g, grp, t0, t1)
        t0 = t1
        ci += 1
    if db != NULL:
        # Partial sums in a fixed order (chunks and blocks are functions of the
        # shapes): the result does not depend on threads.
        for j in range(g.f):
            s = 0
            for blk in range(nchunks * per_chunk):
                s = s + partial[blk * g.f + j]
            db[j] += <floating>s


# ------------------------------------------------------------------ Winograd
# F(2x2, 3x3) for 3x3, stride-1, undilated, ungrouped convolutions, any padding:
# each 2x2 output tile comes from a 4x4 input tile as A^T [(G g G^T) . (B^T d B)] A,
# 16 products where direct convolution does 36. Over a chunk of tiles the 16
# elementwise products summed over channels are 16 GEMMs (tiles x C) @ (C x F)
# against the transformed kernel U = G g G^T, between the input transform and
# the output transform (winograd_rows.h). dx is the same convolution of dz with
# the kernel turned 180 degrees, channels and filters swapped, pads 2 - pad;
# dW is the transposed form: G^T [sum over tiles (B^T d B) . (A dz A^T)] G.
# A NaN or inf in the input reaches, through the transforms, every output of
# the 2x2 tiles whose 4x4 input tiles hold it (as NaN where +-inf terms cancel),
# where the direct sum reaches only the outputs whose windows hold it; finite
# values agree with the direct sum to rounding (tests/kernels/test_conv.py).
cdef extern from "winograd_rows.h" nogil:
    void fastnn_wg_in_f(const float* x, Py_ssize_t H, Py_ssize_t W, Py_ssize_t C,
                        Py_ssize_t ih0, Py_ssize_t iw0, const float* zero, float* v,
                        Py_ssize_t plane)
    void fastnn_wg_in_d(const double* x, Py_ssize_t H, Py_ssize_t W, Py_ssize_t C,
                        Py_ssize_t ih0, Py_ssize_t iw0, const double* zero, double* v,
                        Py_ssize_t plane)
    void fastnn_wg_out_f(const float* m, Py_ssize_t plane, const float* bias, float* y00,
                         float* y01, float* y10, float* y11, Py_ssize_t F)
    void fastnn_wg_out_d(const double* m, Py_ssize_t plane, const double* bias, double* y00,
                         double* y01, double* y10, double* y11, Py_ssize_t F)
    void fastnn_wg_dz_f(const float* z00, const float* z01, const float* z10,
                        const float* z11, float* v, Py_ssize_t plane, Py_ssize_t F)
    void fastnn_wg_dz_d(const double* z00, const double* z01, const double* z10,
                        const double* z11, double* v, Py_ssize_t plane, Py_ssize_t F)

cdef enum:
    # Transformed elements (input and product planes) per chunk of tiles: 1 MiB
    # in float32, a core's L2 here, so the GEMMs read what the transform just
    # wrote from cache; 128 tiles for 64 channels and 64 filters.
    WG_CHUNK_ELEMS = 1 << 18
    # Weight-gradient accumulators (16 x C x F each): chunk i adds into
    # accumulator i % WG_DW_SLOTS, in chunk order, and the slots are summed in
    # order, so dW's bits depend on the shapes only, never on the thread count.
    WG_DW_SLOTS = 4

#: "auto": Winograd where it qualifies (3x3, stride 1, dilation 1, groups 1) and
#: both channels and filters reach WINOGRAD_MIN_CHANNELS; True: wherever it
#: qualifies; False: never (im2col + GEMM). The ``winograd`` keyword of
#: conv2d_forward / conv2d_backward overrides it per call (tests, benchmarks).
WINOGRAD = "auto"
#: Below this many channels or filters the transforms cost more than the GEMMs
#: save (measured with bench/conv_cpu_check.py).
WINOGRAD_MIN_CHANNELS = 16

cdef bint _wg_qualifies(const Geom* g) noexcept nogil:
    return (g.kh == 3 and g.kw == 3 and g.sh == 1 and g.sw == 1 and g.dh == 1 and g.dw == 1
            and g.groups == 1)


cdef bint _use_winograd(str fn, const Geom* g, winograd) except -1:
    """Whether this call takes the Winograd path (ValueError when forced on a
    convolution it cannot do)."""
    mode = WINOGRAD if winograd is None else winograd
    if mode is True:
        if not _wg_qualifies(g):
            raise ValueError(f"{fn}: winograd=True needs a 3x3 kernel, strides (1, 1), "
                             f"dilation (1, 1) and groups=1; got kernel {(g.kh, g.kw)}, "
                             f"strides {(g.sh, g.sw)}, dilation {(g.dh, g.dw)}, "
                             f"groups {g.groups}")
        return True
    if mode is False:
        return False
    if mode != "auto":
        raise ValueError(f"{fn}: winograd must be None, True, False or 'auto', got {mode!r}")
    return _wg_qualifies(g) and min(g.c, g.f) >= WINOGRAD_MIN_CHANNELS


def _wg_g(a):
    """G a along the first axis (3 -> 4), in a's dtype: G = [1 0 0; 1/2 1/2 1/2;
    1/2 -1/2 1/2; 0 0 1] (exact in binary, so float32 rounds only the two sums)."""
    s = a[0] + a[2]
    return numpy.stack((a[0], (s + a[1]) * 0.5, (s - a[1]) * 0.5, a[2]))


def _wg_gt(a):
    """G^T a along the first axis (4 -> 3)."""
    s = a[1] + a[2]
    return numpy.stack((a[0] + s * 0.5, (a[1] - a[2]) * 0.5, s * 0.5 + a[3]))


def _wg_kernel(W, bint flip):
    """U (16, C, F) = G g G^T of W (3, 3, C, F), plane by plane in W's dtype; with
    ``flip`` the kernel of dx: turned 180 degrees, (16, F, C). Slab arithmetic
    on whole (C, F) planes: a product along the 3x3 axes (einsum, tensordot)
    spent longer than the convolution on transposes for 256 channels."""
    w = numpy.asarray(W)
    if flip:
        w = w[::-1, ::-1]
    u = _wg_g(_wg_g(w.swapaxes(0, 1)).swapaxes(0, 1))        # u[p, q] = G_p w G_q^T
    u = u.reshape(16, w.shape[2], w.shape[3])
    return numpy.ascontiguousarray(u.transpose(0, 2, 1) if flip else u)


cdef inline Py_ssize_t _wg_chunk(Py_ssize_t c, Py_ssize_t f, Py_ssize_t total) noexcept nogil:
    """Tiles per chunk: a function of the shapes only."""
    return max(1, min(total, WG_CHUNK_ELEMS // (16 * (c + f))))


cdef void _wg_conv_chunk(int code, const floating* x, Py_ssize_t h, Py_ssize_t w, Py_ssize_t c,
                         const floating* U, const floating* bias, floating* y, Py_ssize_t oh,
                         Py_ssize_t ow, Py_ssize_t f, Py_ssize_t pt, Py_ssize_t pl,
                         Py_ssize_t t0, Py_ssize_t t1, floating* buf, const floating* zero,
                         floating alpha) noexcept nogil:
    """Output tiles t0 .. t1 (t = (sample * tiles down + row) * tiles across + column):
    transform, 16 one-thread GEMMs, output transform + bias + activation."""
    cdef Py_ssize_t nt = t1 - t0, tw = (ow + 1) // 2, per = ((oh + 1) // 2) * tw
    cdef Py_ssize_t t, s, r, oy, ox, k
    cdef floating* V = buf
    cdef floating* M = buf + 16 * nt * c
    cdef floating* scratch = M + 16 * nt * f
    cdef floating* p[4]
    cdef const floating* xs
    for t in range(t0, t1):
        s = t // per
        r = t % per
        xs = x + s * h * w * c
        if floating is float:
            fastnn_wg_in_f(xs, h, w, c, 2 * (r // tw) - pt, 2 * (r % tw) - pl, zero,
                           V + (t - t0) * c, nt * c)
        else:
            fastnn_wg_in_d(xs, h, w, c, 2 * (r // tw) - pt, 2 * (r % tw) - pl, zero,
                           V + (t - t0) * c, nt * c)
    for k in range(16):
        _gemm_blas(False, False, <int>nt, <int>f, <int>c, 1, V + k * nt * c, <int>c,
                   U + k * c * f, <int>f, 0, M + k * nt * f, <int>f)
    for t in range(t0, t1):
        s = t // per
        r = t % per
        oy = 2 * (r // tw)
        ox = 2 * (r % tw)
        p[0] = y + ((s * oh + oy) * ow + ox) * f
        p[1] = p[0] + f if ox + 1 < ow else scratch
        p[2] = p[0] + ow * f if oy + 1 < oh else scratch
        p[3] = p[2] + f if oy + 1 < oh and ox + 1 < ow else scratch
        if floating is float:
            fastnn_wg_out_f(M + (t - t0) * f, nt * f, bias, p[0], p[1], p[2], p[3], f)
        else:
            fastnn_wg_out_d(M + (t - t0) * f, nt * f, bias, p[0], p[1], p[2], p[3], f)
        if code != ACT_LINEAR:
            for k in range(4):
                if k == 0 or p[k] != scratch:
                    act_forward_run(code, p[k], p[k], f, alpha)


cdef void _wg_conv(int code, const floating* x, Py_ssize_t n, Py_ssize_t h, Py_ssize_t w,
                   Py_ssize_t c, const floating* U, const floating* bias, floating* y,
                   Py_ssize_t oh, Py_ssize_t ow, Py_ssize_t f, Py_ssize_t pt, Py_ssize_t pl,
                   floating* work, Py_ssize_t wsize, int nt, const floating* zero,
                   floating alpha) noexcept nogil:
    """y (n, oh, ow, f) = act(conv3x3(x (n, h, w, c), U) + bias), the input read from
    (oy - pt, ox - pl) for output (oy, ox) (pt, pl may be negative), in parallel
    over chunks of tiles, each thread in its own ``wsize`` of ``work``. Every
    output is one chunk's: the result does not depend on the thread count."""
    cdef Py_ssize_t total = n * ((oh + 1) // 2) * ((ow + 1) // 2)
    cdef Py_ssize_t step = _wg_chunk(c, f, total), nch = (total + step - 1) // step, ch
    cdef int saved = fastnn_blas_single_begin()
    for ch in prange(nch, schedule="static", num_threads=nt):
        _wg_conv_chunk(code, x, h, w, c, U, bias, y, oh, ow, f, pt, pl, ch * step,
                       min(total, (ch + 1) * step), work + threadid() * wsize, zero, alpha)
    fastnn_blas_single_end(saved)


cdef void _wg_dw_slot(const floating* x, Py_ssize_t h, Py_ssize_t w, Py_ssize_t c,
                      const floating* dz, Py_ssize_t oh, Py_ssize_t ow, Py_ssize_t f,
                      Py_ssize_t pt, Py_ssize_t pl, floating* acc, Py_ssize_t slot,
                      Py_ssize_t slots, Py_ssize_t total, Py_ssize_t step, floating* V,
                      const floating* zero) noexcept nogil:
    """acc (16, c, f) += the planes' products of chunks slot, slot + slots, ... in order."""
    cdef Py_ssize_t tw = (ow + 1) // 2, per = ((oh + 1) // 2) * tw
    cdef Py_ssize_t nch = (total + step - 1) // step, ch, t0, t1, t, s, r, oy, ox, k, m
    cdef floating* Z
    cdef const floating* q[4]
    ch = slot
    while ch < nch:
        t0 = ch * step
        t1 = min(total, t0 + step)
        m = t1 - t0
        Z = V + 16 * m * c
        for t in range(t0, t1):
            s = t // per
            r = t % per
            oy = 2 * (r // tw)
            ox = 2 * (r % tw)
            q[0] = dz + ((s * oh + oy) * ow + ox) * f
            q[1] = q[0] + f if ox + 1 < ow else zero
            q[2] = q[0] + ow * f if oy + 1 < oh else zero
            q[3] = q[2] + f if oy + 1 < oh and ox + 1 < ow else zero
            if floating is float:
                fastnn_wg_in_f(x + s * h * w * c, h, w, c, oy - pt, ox - pl, zero,
                               V + (t - t0) * c, m * c)
                fastnn_wg_dz_f(q[0], q[1], q[2], q[3], Z + (t - t0) * f, m * f, f)
            else:
                fastnn_wg_in_d(x + s * h * w * c, h, w, c, oy - pt, ox - pl, zero,
                               V + (t - t0) * c, m * c)
                fastnn_wg_dz_d(q[0], q[1], q[2], q[3], Z + (t - t0) * f, m * f, f)
        for k in range(16):
            _gemm_blas(True, False, <int>c, <int>f, <int>m, 1, V + k * m * c, <int>c,
                       Z + k * m * f, <int>f, 1, acc + k * c * f, <int>f)
        ch += slots


cdef void _wg_dw(const floating* x, Py_ssize_t n, Py_ssize_t h, Py_ssize_t w, Py_ssize_t c,
                 const floating* dz, Py_ssize_t oh, Py_ssize_t ow, Py_ssize_t f,
                 Py_ssize_t pt, Py_ssize_t pl, floating* acc, Py_ssize_t slots,
                 floating* work, Py_ssize_t wsize, int nt, const floating* zero) noexcept nogil:
    """acc[slot] (16, c, f) += sum over the slot's chunks of tiles of
    (B^T d B)^T (A dz A^T), plane by plane (acc starts zeroed), the slots in
    parallel, each thread in its own ``wsize`` of ``work``."""
    cdef Py_ssize_t total = n * ((oh + 1) // 2) * ((ow + 1) // 2)
    cdef Py_ssize_t step = _wg_chunk(c, f, total), slot
    cdef int saved = fastnn_blas_single_begin()
    for slot in prange(slots, schedule="static", num_threads=nt):
        _wg_dw_slot(x, h, w, c, dz, oh, ow, f, pt, pl, acc + slot * 16 * c * f, slot, slots,
                    total, step, work + threadid() * wsize, zero)
    fastnn_blas_single_end(saved)


cdef void _wg_conv_typed(int code, const floating[:, :, :, ::1] x, const floating[:, :, ::1] U,
                         const floating[::1] b, bint has_b, floating[:, :, :, ::1] y,
                         Py_ssize_t pt, Py_ssize_t pl, floating[::1] work, Py_ssize_t wsize,
                         int nt, const floating[::1] zero, double alpha):
    with nogil:
        _wg_conv(code, &x[0, 0, 0, 0], x.shape[0], x.shape[1], x.shape[2], x.shape[3],
                 &U[0, 0, 0], &b[0] if has_b else NULL, &y[0, 0, 0, 0], y.shape[1], y.shape[2],
                 y.shape[3], pt, pl, &work[0], wsize, nt, &zero[0], <floating>alpha)


cdef void _wg_dw_typed(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] dz,
                       Py_ssize_t pt, Py_ssize_t pl, floating[:, :, :, ::1] acc,
                       floating[::1] work, Py_ssize_t wsize, int nt,
                       const floating[::1] zero):
    with nogil:
        _wg_dw(&x[0, 0, 0, 0], x.shape[0], x.shape[1], x.shape[2], x.shape[3], &dz[0, 0, 0, 0],
               dz.shape[1], dz.shape[2], dz.shape[3], pt, pl, &acc[0, 0, 0, 0], acc.shape[0],
               &work[0], wsize, nt, &zero[0])


def _wg_apply(int code, x, U, b, y, Py_ssize_t pt, Py_ssize_t pl, double alpha):
    """Fills y with the Winograd convolution of x by U (see _wg_conv)."""
    cdef Py_ssize_t n = x.shape[0], c = x.shape[3], f = y.shape[3]
    cdef Py_ssize_t total = n * ((y.shape[1] + 1) // 2) * ((y.shape[2] + 1) // 2)
    cdef Py_ssize_t step = _wg_chunk(c, f, total)
    cdef Py_ssize_t wsize = 16 * step * (c + f) + f
    cdef int nt = fastnn_threads(<double>total * 16 * (c * f + c + f))
    nt = max(1, min(nt, (total + step - 1) // step))
    work = numpy.empty(nt * wsize, x.dtype)
    zero = numpy.zeros(c, x.dtype)
    has_b = b is not None
    b = b if has_b else zero
    if x.dtype == numpy.float32:
        _wg_conv_typed[float](code, x, U, b, has_b, y, pt, pl, work, wsize, nt, zero, alpha)
    else:
        _wg_conv_typed[double](code, x, U, b, has_b, y, pt, pl, work, wsize, nt, zero, alpha)


def _wg_weight_grad(x, dz, dW, Py_ssize_t pt, Py_ssize_t pl):
    """dW += the Winograd weight gradient of x and dz (see _wg_dw)."""
    cdef Py_ssize_t n = x.shape[0], c = x.shape[3], f = dz.shape[3]
    cdef Py_ssize_t total = n * ((dz.shape[1] + 1) // 2) * ((dz.shape[2] + 1) // 2)
    cdef Py_ssize_t step = _wg_chunk(c, f, total)
    cdef Py_ssize_t slots = min(WG_DW_SLOTS, (total + step - 1) // step)
    cdef Py_ssize_t wsize = 16 * step * (c + f)
    cdef int nt = fastnn_threads(<double>total * 16 * (c * f + c + f))
    nt = max(1, min(nt, slots))
    work = numpy.empty(nt * wsize, x.dtype)
    zero = numpy.zeros(max(c, f), x.dtype)
    acc = numpy.zeros((slots, 16, c, f), x.dtype)
    if x.dtype == numpy.float32:
        _wg_dw_typed[float](x, dz, pt, pl, acc, work, wsize, nt, zero)
    else:
        _wg_dw_typed[double](x, dz, pt, pl, acc, work, wsize, nt, zero)
    m = acc[0]
    for s in range(1, slots):   # in slot order: fixed bits
        m += acc[s]
    m = m.reshape(4, 4, c, f)
    dW += _wg_gt(_wg_gt(m.swapaxes(0, 1)).swapaxes(0, 1))     # G^T M G, (i, j, C, F)


# ------------------------------------------------------------------ checks
cdef tuple _int_args(str fn, strides, pads, dilation, groups):
    def ints(name, value, n, low):
        try:
            vals = tuple(int(v) for v in value)
        except TypeError:
            raise ValueError(f"{fn}: {name} must be a tuple of {n} integers, got {value!r}") from None
        # Below 2**31: the geometry's products stay far from overflowing (an
        # int64 value would not even fit the Geom's fields: OverflowError).
        if (len(vals) != n or any(v < low or v >= 2**31 for v in vals)
                or any(int(v) != v for v in value)):
            raise ValueError(f"{fn}: {name} must be {n} integers in [{low}, 2**31), "
                             f"got {value!r}")
        return vals
    s = ints("strides", strides, 2, 1)
    p = ints("pads", pads, 4, 0)
    d = ints("dilation", dilation, 2, 1)
    if isinstance(groups, bool) or int(groups) != groups or not 1 <= groups < 2**31:
        raise ValueError(f"{fn}: groups must be an integer >= 1, got {groups!r}")
    return s, p, d, int(groups)


cdef Geom _geometry(str fn, tuple x_shape, tuple w_shape, strides, pads, dilation, groups) except *:
    """The convolution's sizes, or a ValueError saying which argument disagrees."""
    cdef Geom g
    (g.sh, g.sw), (g.pt, pb, g.pl, pr), (g.dh, g.dw), g.groups = _int_args(fn, strides, pads,
                                                                             dilation, groups)
    if len(x_shape) != 4:
        raise ValueError(f"{fn}: x must be 4-D (N, H, W, C), got shape {x_shape}")
    if len(w_shape) != 4:
        raise ValueError(f"{fn}: W must be 4-D (kh, kw, C // groups, F), got shape {w_shape}")
    g.n, g.h, g.w, g.c = x_shape
    g.kh, g.kw, g.cg, g.f = w_shape
    if min(g.kh, g.kw, g.cg, g.f) < 1 or min(g.h, g.w, g.c) < 1 or g.n < 0:
        raise ValueError(f"{fn}: x {x_shape} and W {w_shape} must be non-empty but for the batch")
    if g.c != g.cg * g.groups:
        raise ValueError(f"{fn}: x has shape {x_shape} and W has shape {w_shape}; with "
                         f"groups={g.groups} x must have {g.cg * g.groups} channels "
                         f"(W.shape[2] * groups)")
    if g.f % g.groups:
        raise ValueError(f"{fn}: W has shape {w_shape}: its {g.f} filters are not a multiple "
                         f"of groups={g.groups}")
    g.fg = g.f // g.groups
    g.kg = g.kh * g.kw * g.cg
    g.oh = (g.h + g.pt + pb - (g.kh - 1) * g.dh - 1) // g.sh + 1
    g.ow = (g.w + g.pl + pr - (g.kw - 1) * g.dw - 1) // g.sw + 1
    if g.h + g.pt + pb < (g.kh - 1) * g.dh + 1 or g.w + g.pl + pr < (g.kw - 1) * g.dw + 1:
        raise ValueError(f"{fn}: the dilated kernel {((g.kh - 1) * g.dh + 1, (g.kw - 1) * g.dw + 1)} "
                         f"does not fit the padded input {(g.h + g.pt + pb, g.w + g.pl + pr)} "
                         f"(x {x_shape}, W {w_shape}, pads {tuple(pads)}, "
                         f"dilation {tuple(dilation)})")
    if max(g.oh * g.ow * g.kg, g.h * g.w * g.c, g.oh * g.ow * g.f, g.kg * g.f) > BLAS_INT_MAX:
        raise ValueError(f"{fn}: x {x_shape} and W {w_shape} with strides {tuple(strides)}, "
                         f"pads {tuple(pads)} and dilation {tuple(dilation)} exceed the "
                         f"32-bit BLAS limit per sample")
    return g


def conv2d_forward(x, W, b=None, strides=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1),
                   groups=1, activation="linear", double alpha=0.0, out=None, winograd=None):
    """``act(conv(x, W) + b)`` for x (N, H, W, C), W (kh, kw, C // groups, F), b (F,)
    or None; ``pads`` is (top, bottom, left, right) zeros. Inputs that are not
    C-contiguous are copied. ``out`` (N, OH, OW, F), if given, must be a writeable
    C-contiguous array apart from the inputs, and is returned. ``winograd``: None
    (the module's WINOGRAD setting), True (Winograd F(2x2, 3x3); ValueError if the
    convolution is not 3x3, stride 1, undilated, ungrouped), False (im2col + GEMM)
    or "auto"."""
    cdef int code = activation_code(activation)
    check_float("x", x)
    check_float("W", W, x, "x")
    check_ndim("x", x, 4)
    check_ndim("W", W, 4)
    cdef Geom g = _geometry("conv2d_forward", x.shape, W.shape, strides, pads, dilation, groups)
    cdef bint wg = _use_winograd("conv2d_forward", &g, winograd)
    cdef bint has_b = b is not None
    if has_b:
        check_float("b", b, x, "x")
        if b.shape != (g.f,):
            raise ValueError(f"conv2d_forward: b has shape {b.shape} but W has shape "
                             f"{W.shape}; b must have shape {(g.f,)}")
    check_disjoint("out", out, {"x": x, "W": W, "b": b})
    out = check_out("out", out, (g.n, g.oh, g.ow, g.f), x, "x")
    if g.n == 0:
        return out
    x = numpy.ascontiguousarray(x)
    W = numpy.ascontiguousarray(W)
    if wg:
        _wg_apply(code, x, _wg_kernel(W, False), numpy.ascontiguousarray(b) if has_b else None,
                  out, g.pt, g.pl, alpha)
        return out
    b = numpy.ascontiguousarray(b) if has_b else numpy.zeros(1, x.dtype)
    cols = numpy.empty(1 if _direct(&g) else min(g.n * g.oh, _chunk(&g)) * g.ow * g.kg, x.dtype)
    if x.dtype == numpy.float32:
        _forward_typed[float](code, x, W, b, has_b, out, cols, g, alpha)
    else:
        _forward_typed[double](code, x, W, b, has_b, out, cols, g, alpha)
    return out


cdef void _forward_typed(int code, const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] W,
                         const floating[::1] b, bint has_b, floating[:, :, :, ::1] y,
                         floating[::1] cols, Geom g, double alpha):
    with nogil:
        _forward(code, &x[0, 0, 0, 0], &W[0, 0, 0, 0], &b[0] if has_b else NULL,
                 &y[0, 0, 0, 0], &cols[0], g, <floating>alpha)


def conv2d_backward(x, W, y, dy, dW, db, strides=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1),
                    groups=1, activation="linear", double alpha=0.0, bint need_dx=True,
                    x_shape=None, winograd=None):
    """With ``dz = dy * act'(y)``: accumulate ``dW += `` the gradient of the kernel
    and ``db += dz.sum((0, 1, 2))`` in place, and return ``dx`` (None unless
    ``need_dx``). ``dW`` (same shape as W) and ``db`` (F,) must be writeable and
    C-contiguous; either may be None (not computed). With ``dW`` None, ``x`` may be
    None and ``x_shape`` gives the input's shape (the input gradient alone: the
    forward of a transposed convolution). ``y`` may be None for a linear activation.
    ``winograd`` as in conv2d_forward (dx and dW both by Winograd F(2x2, 3x3))."""
    cdef int code = activation_code(activation)
    fn = "conv2d_backward"
    check_float("dy", dy)
    check_float("W", W, dy, "dy")
    check_ndim("dy", dy, 4)
    check_ndim("W", W, 4)
    if x is None:
        if dW is not None or x_shape is None:
            raise ValueError(f"{fn}: x may be None only when dW is None and x_shape is given")
        x_shape = tuple(int(v) for v in x_shape)
    else:
        check_float("x", x, dy, "dy")
        check_ndim("x", x, 4)
        if x_shape is not None and tuple(x_shape) != x.shape:
            raise ValueError(f"{fn}: x has shape {x.shape} but x_shape is {tuple(x_shape)}")
        x_shape = x.shape
    cdef Geom g = _geometry(fn, x_shape, W.shape, strides, pads, dilation, groups)
    cdef bint wg = _use_winograd(fn, &g, winograd)
    out_shape = (g.n, g.oh, g.ow, g.f)
    if dy.shape != out_shape:
        raise ValueError(f"{fn}: dy has shape {dy.shape} but the convolution of x {x_shape} "
                         f"by W {W.shape} has shape {out_shape}")
    if code != ACT_LINEAR:
        if y is None:
            raise ValueError(f"{fn}: y (the forward output) is needed for activation "
                             f"{activation!r}")
        check_float("y", y, dy, "dy")
        if y.shape != out_shape:
            raise ValueError(f"{fn}: y has shape {y.shape} but dy has shape {dy.shape}")
    for what, a, shape in (("dW", dW, W.shape), ("db", db, (g.f,))):
        if a is None:
            continue
        check_float(what, a, dy, "dy")
        if a.shape != shape:
            raise ValueError(f"{fn}: {what} has shape {a.shape}; expected {shape}")
        check_c_contiguous(what, a, writeable=True)
    if dW is not None and db is not None:
        check_disjoint("db", db, {"dW": dW})
    if dW is not None:
        check_disjoint("dW", dW, {"x": x, "W": W, "y": y, "dy": dy})
    if db is not None:
        check_disjoint("db", db, {"x": x, "W": W, "y": y, "dy": dy})
    if g.n == 0:
        return numpy.zeros(x_shape, dy.dtype) if need_dx else None
    dy = numpy.ascontiguousarray(dy)
    W = numpy.ascontiguousarray(W)
    x = numpy.ascontiguousarray(x) if dW is not None else numpy.zeros((1, 1, 1, 1), dy.dtype)
    y = numpy.ascontiguousarray(y) if code != ACT_LINEAR else dy
    if wg:
        return _wg_backward(code, x, W, y, dy, dW, db, need_dx, x_shape, g.pt, g.pl, alpha)
    cdef Py_ssize_t step = min(g.n * g.oh, _chunk(&g))
    cdef Py_ssize_t nchunks = (g.n * g.oh + _chunk(&g) - 1) // _chunk(&g)
    cdef Py_ssize_t per_chunk = (_chunk(&g) * g.ow + SUM_ROWS - 1) // SUM_ROWS
    # dz of one chunk of output rows; the bias gradient's partial sums, zero
    # where a last, shorter chunk has fewer blocks.
    dz = numpy.empty(step * g.ow * g.f if code != ACT_LINEAR else 1, dy.dtype)
    partial = numpy.zeros((nchunks * per_chunk if db is not None else 1, g.f), numpy.float64)
    dx = numpy.zeros(x_shape, dy.dtype) if need_dx else numpy.empty((1, 1, 1, 1), dy.dtype)
    cdef bint need_cols = not _direct(&g) and (dW is not None or need_dx)
    cols = numpy.empty(min(g.n * g.oh, _chunk(&g)) * g.ow * g.kg if need_cols else 1, dy.dtype)
    dW_ = dW if dW is not None else numpy.empty((1, 1, 1, 1), dy.dtype)
    db_ = db if db is not None else numpy.empty(1, dy.dtype)
    if dy.dtype == numpy.float32:
        _backward_typed[float](code, x, W, y, dy, dz, dW_, dW is not None, db_, db is not None,
                               partial, dx, need_dx, cols, g, alpha)
    else:
        _backward_typed[double](code, x, W, y, dy, dz, dW_, dW is not None, db_, db is not None,
                                partial, dx, need_dx, cols, g, alpha)
    return dx if need_dx else None


cdef void _backward_typed(int code, const floating[:, :, :, ::1] x,
                          const floating[:, :, :, ::1] W, const floating[:, :, :, ::1] y,
                          const floating[:, :, :, ::1] dy, floating[::1] dz,
                          floating[:, :, :, ::1] dW, bint has_dW, floating[::1] db, bint has_db,
                          double[:, ::1] partial, floating[:, :, :, ::1] dx, bint need_dx,
                          floating[::1] cols, Geom g, double alpha):
    with nogil:
        _backward(code, &x[0, 0, 0, 0], &W[0, 0, 0, 0], &y[0, 0, 0, 0], &dy[0, 0, 0, 0],
                  &dz[0], &dW[0, 0, 0, 0] if has_dW else NULL,
                  &db[0] if has_db else NULL, &partial[0, 0],
                  &dx[0, 0, 0, 0] if need_dx else NULL, &cols[0], g, <floating>alpha)


def _wg_backward(int code, x, W, y, dy, dW, db, bint need_dx, x_shape, Py_ssize_t pt,
                 Py_ssize_t pl, double alpha):
    """conv2d_backward's Winograd path (arguments checked and contiguous): the
    whole dz = dy * act'(y) with the bias gradient's partial sums first, then dW
    and dx from it."""
    cdef Py_ssize_t rows = dy.shape[0] * dy.shape[1] * dy.shape[2], f = dy.shape[3]
    cdef Py_ssize_t nblk = (rows + SUM_ROWS - 1) // SUM_ROWS
    dz = dy
    if code != ACT_LINEAR or db is not None:
        # Linear: dz is dy, only read (dy may be read-only); dz_ is then a stand-in.
        dz = numpy.empty_like(dy) if code != ACT_LINEAR else dy
        dz_ = dz.reshape(rows, f) if code != ACT_LINEAR else numpy.empty((1, f), dy.dtype)
        partial = numpy.zeros((nblk if db is not None else 1, f), numpy.float64)
        db_ = db if db is not None else numpy.empty(1, dy.dtype)
        if dy.dtype == numpy.float32:
            _dz_all_typed[float](code, y.reshape(rows, f), dy.reshape(rows, f), dz_,
                                 code != ACT_LINEAR, partial, db_, db is not None, alpha)
        else:
            _dz_all_typed[double](code, y.reshape(rows, f), dy.reshape(rows, f), dz_,
                                  code != ACT_LINEAR, partial, db_, db is not None, alpha)
    if dW is not None:
        _wg_weight_grad(x, dz, dW, pt, pl)
    if not need_dx:
        return None
    dx = numpy.empty(x_shape, dy.dtype)
    # dx[a, b] = sum over taps (i, j) of dz[a + pt - i, b + pl - j] W[i, j]^T: the
    # convolution of dz by the turned kernel, read from (a - (2 - pt), b - (2 - pl)).
    _wg_apply(ACT_LINEAR, dz, _wg_kernel(W, True), None, dx, 2 - pt, 2 - pl, 0.0)
    return dx


cdef void _dz_all_typed(int code, const floating[:, ::1] y, const floating[:, ::1] dy,
                        floating[:, ::1] dz, bint fuse, double[:, ::1] partial,
                        floating[::1] db, bint has_db, double alpha):
    """dz = dy * act'(y) (when ``fuse``) and db += its column sums, by blocks of
    SUM_ROWS rows summed in block order (fixed bits)."""
    cdef Py_ssize_t rows = dy.shape[0], f = dy.shape[1], blk, j
    cdef Py_ssize_t nblk = (rows + SUM_ROWS - 1) // SUM_ROWS
    cdef int nt = fastnn_threads(<double>rows * f * FASTNN_ELEMENT_COST)
    cdef double s
    with nogil:
        for blk in prange(nblk, schedule="static", num_threads=nt):
            dz_block(code, &y[0, 0], &dy[0, 0], &dz[0, 0] if fuse else NULL,
                     &partial[blk, 0] if has_db else NULL, blk * SUM_ROWS,
                     min(rows, (blk + 1) * SUM_ROWS), f, <floating>alpha)
        if has_db:
            for j in range(f):
                s = 0
                for blk in range(nblk):
                    s = s + partial[blk, j]
                db[j] += <floating>s
