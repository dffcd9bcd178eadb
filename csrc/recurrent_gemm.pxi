# The recurrent cells' path switch and their small GEMM's Python-visible entries,
# included by recurrent.pyx (textually: it uses that file's cimports, its
# recurrent_gemm.h declarations and its cell codes, and is no module of its own).
# It holds which per-step product the cells take ("fused" or "blas",
# set_recurrence_path, path_for), the microkernel's test and benchmark entries
# (small_gemm, pack_panels, small_gemm_packed) and the packing of R into
# recurrent_gemm.h's panels that the cells' forward and backward call. The
# cells' loops and their checks stay in recurrent.pyx; the C itself is in
# recurrent_gemm.h.

# Which per-step product the cells use (recurrent_gemm.h's own small GEMM over R
# packed once per call, the "fused" path, or gemm_rm's OpenBLAS, the "blas"
# path): chosen by size ("auto"), or forced (set_recurrence_path) so that tests
# cover both. The first-form GRU and recurrent dropout always take the BLAS path
# (their products are gate by gate).
cdef int _PATH_AUTO = 0, _PATH_FUSED = 1, _PATH_BLAS = 2
cdef int _path = _PATH_AUTO
_PATHS = {"auto": _PATH_AUTO, "fused": _PATH_FUSED, "blas": _PATH_BLAS}
#: "auto" takes the fused path while R's packed copy is at most this many bytes
#: (L2-resident) and the units at most FUSED_MAX_UNITS (the microkernel does not
#: block k = U): measured fwd+bwd, one thread, fused / BLAS time, batch 64: LSTM
#: U = 128 0.94, 256 0.93, 384 1.00, 512 0.98, 1024 1.61; SimpleRNN 128 0.95,
#: 256 0.96, 384 1.01, 512 1.04, 1024 1.18 (bench/RESULTS.md, recurrent section).
FUSED_MAX_R_BYTES = 1 << 20
FUSED_MAX_UNITS = 256


def set_recurrence_path(path):
    """Force the per-step product: "fused" (fastnn's own small GEMM, R packed
    once, gate passes fused, one thread team per sequence), "blas" (OpenBLAS
    per step) or "auto" (by size, the default). Returns the previous setting
    (for tests and benchmarks; not thread-safe against running kernels)."""
    global _path
    if path not in _PATHS:
        raise ValueError(f"set_recurrence_path: path {path!r}; expected one of {tuple(_PATHS)}")
    old = next(k for k, v in _PATHS.items() if v == _path)
    _path = _PATHS[path]
    return old


cdef bint _fused(int code, object rec_mask, Py_ssize_t U, Py_ssize_t G, Py_ssize_t itemsize):
    if code == CELL_GRU0 or rec_mask is not None or _path == _PATH_BLAS:
        return False
    return _path == _PATH_FUSED or (U <= FUSED_MAX_UNITS
                                    and G * U * U * itemsize <= FUSED_MAX_R_BYTES)


def path_for(cell, Py_ssize_t units, dtype, bint rec_dropout=False, bint reset_after=True):
    """The path ("fused" or "blas") rnn_forward/rnn_backward take now for
    ``cell`` with ``units`` units of ``dtype`` (the decision they make)."""
    cdef int code = _cell_code(cell, reset_after)
    return "fused" if _fused(code, True if rec_dropout else None, units, CELL_GATES[cell],
                             numpy.dtype(dtype).itemsize) else "blas"


def small_gemm(a, b, out=None, bint add=False):
    """``out (=|+=) a @ b`` through the cells' packed-panel microkernel (its
    test entry; the cells call it from their own loops): ``a`` (M, K), ``b``
    (K, W), same float dtype, ``out`` (M, W) C-contiguous or None."""
    check_float("a", a)
    check_float("b", b, a, "a")
    check_ndim("a", a, 2)
    check_ndim("b", b, 2)
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"small_gemm: a has shape {a.shape}, b {b.shape}; expected b "
                         f"({a.shape[1]}, W)")
    cdef Py_ssize_t M = a.shape[0], K = a.shape[1], W = b.shape[1]
    a = numpy.ascontiguousarray(a)
    b = numpy.ascontiguousarray(b)
    if out is None:
        out = numpy.zeros((M, W), a.dtype)
    else:
        check_float("out", out, a, "a")
        if out.shape != (M, W):
            raise ValueError(f"small_gemm: out has shape {out.shape}; expected {(M, W)}")
        check_c_contiguous("out", out, writeable=True)
        check_disjoint("out", out, {"a": a, "b": b})
    if M == 0 or W == 0:
        return out
    if K == 0:
        if not add:
            out[...] = 0
        return out
    packed = _pack(b, K, W, W, 1)
    if a.dtype == numpy.float32:
        _small_gemm_typed[float](a, packed, out, add)
    else:
        _small_gemm_typed[double](a, packed, out, add)
    return out


def pack_panels(b):
    """``b`` (K, W) packed as the microkernel reads it (panels of 16 float32 or
    8 float64 columns, zero-padded), for ``small_gemm_packed`` (benchmarks:
    bench/rnn_gemm_floor.py times the products without the packing, as the
    cells pack R once per call)."""
    check_float("b", b)
    check_ndim("b", b, 2)
    b = numpy.ascontiguousarray(b)
    return _pack(b, b.shape[0], b.shape[1], b.shape[1], 1)


def small_gemm_packed(a, packed, Py_ssize_t width, out):
    """``out = a @ b`` for ``packed = pack_panels(b)``, ``b`` (K, width)."""
    check_float("a", a)
    check_ndim("a", a, 2)
    check_float("packed", packed, a, "a")
    check_ndim("packed", packed, 1)
    check_float("out", out, a, "a")
    check_c_contiguous("out", out, writeable=True)
    cdef Py_ssize_t M = a.shape[0], K = a.shape[1]
    cdef Py_ssize_t NR = FASTNN_RG_NR_f32 if a.dtype == numpy.float32 else FASTNN_RG_NR_f64
    if out.shape != (M, width) or packed.shape[0] != max((width + NR - 1) // NR * K * NR, 1):
        raise ValueError(f"small_gemm_packed: a {a.shape}, packed {packed.shape}, out "
                         f"{out.shape}; expected out ({M}, {width}) and packed "
                         f"({(width + NR - 1) // NR * K * NR},) from pack_panels of ({K}, "
                         f"{width})")
    check_disjoint("out", out, {"a": a, "packed": packed})
    a = numpy.ascontiguousarray(a)
    packed = numpy.ascontiguousarray(packed)
    if M == 0 or width == 0:
        return out
    if K == 0:
        out[...] = 0
        return out
    if a.dtype == numpy.float32:
        _small_gemm_typed[float](a, packed, out, False)
    else:
        _small_gemm_typed[double](a, packed, out, False)
    return out


cdef object _small_gemm_typed(const floating[:, ::1] a, const floating[::1] packed,
                              floating[:, ::1] out, bint add):
    with nogil:
        if floating is float:
            fastnn_rg_gemm_f32(a.shape[0], out.shape[1], a.shape[1], &a[0, 0], a.shape[1],
                               &packed[0], &out[0, 0], out.shape[1], add)
        else:
            fastnn_rg_gemm_f64(a.shape[0], out.shape[1], a.shape[1], &a[0, 0], a.shape[1],
                               &packed[0], &out[0, 0], out.shape[1], add)


cdef object _pack(object src, Py_ssize_t K, Py_ssize_t W, Py_ssize_t sk, Py_ssize_t sj):
    """The panels of B[k, j] = src.flat[k * sk + j * sj] (K x W), recurrent_gemm.h's
    layout, as a new 1-D array."""
    cdef Py_ssize_t NR = FASTNN_RG_NR_f32 if src.dtype == numpy.float32 else FASTNN_RG_NR_f64
    cdef Py_ssize_t P = (W + NR - 1) // NR
    dst = numpy.empty(max(P * K * NR, 1), src.dtype)
    if src.dtype == numpy.float32:
        _pack_typed[float](src.reshape(-1), K, W, sk, sj, dst)
    else:
        _pack_typed[double](src.reshape(-1), K, W, sk, sj, dst)
    return dst


cdef object _pack_typed(const floating[::1] src, Py_ssize_t K, Py_ssize_t W, Py_ssize_t sk,
                        Py_ssize_t sj, floating[::1] dst):
    if K == 0 or W == 0:
        return
    with nogil:
        _pack_ptr(&src[0], K, W, sk, sj, &dst[0])


cdef inline void _pack_ptr(const floating* src, Py_ssize_t K, Py_ssize_t W, Py_ssize_t sk,
                           Py_ssize_t sj, floating* dst) noexcept nogil:
    if floating is float:
        fastnn_rg_pack_f32(K, W, src, sk, sj, dst)
    else:
        fastnn_rg_pack_f64(K, W, src, sk, sj, dst)
