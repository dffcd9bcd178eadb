"""Fuzzing the convolution, pooling, depthwise and batch-norm kernels
(fastnn._C.conv, .pool, .norm) with hostile geometry (zero sizes, windows,
strides, dilations and pads that do not fit, negative and huge ints), operands
(wrong dtype/ndim, non-contiguous, read-only, lists, NaN), outputs that are or
overlap an input, mismatched weight shapes and bad argmax arrays. The float64
references are loops written in the test files of tests/kernels (loaded from
there, never the Ops fallback) or here. The recurrent kernels' fuzzing is
test_fuzz_rnn.py; what both share, tests/_fuzz_helpers.py; machinery: conftest.py."""
import numpy
import pytest
from hypothesis import strategies as st

from _fuzz_helpers import NO_LONE_DTYPE, f64, load_kernel_test  # shared with test_fuzz_rnn.py
from fastnn._C import conv as CV
from fastnn._C import norm as NM
from fastnn._C import pool as PL

REF_CONV = load_kernel_test("test_conv")
REF_POOL = load_kernel_test("test_pool")
REF_NORM = load_kernel_test("test_norm")

CONV_ACTS = ("linear", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "softmax")
DW_ACTS = ("linear", "sigmoid", "tanh", "relu", "leaky_relu", "elu")
# Ints no geometry can take: zero/negative sizes, values past int32 and int64.
BAD_INTS = (0, -1, -2**31, 2**31, 2**40, 2**63, -2**63)
NHWC = ("C", "strided", "reversed", "readonly", "list", "dtype", "ndim")


def act(name, z, alpha):
    with numpy.errstate(all="ignore"):
        if name == "relu":  # NaN kept, as numpy.maximum does
            return numpy.where(numpy.isnan(z), z, numpy.where(z > 0, z, 0.0))
        if name == "elu":
            return numpy.where(z > 0, z, alpha * numpy.expm1(numpy.minimum(z, 0)))
        if name == "softmax":
            e = numpy.exp(z - z.max(-1, keepdims=True, initial=-numpy.inf))
            return e / e.sum(-1, keepdims=True)
        return REF_CONV.ref_act(name, z, alpha)


def act_grad(name, y, dy, alpha):
    with numpy.errstate(all="ignore"):
        if name == "relu":
            return numpy.where(y > 0, dy, 0.0)
        return REF_CONV.ref_act_grad(name, y, dy, alpha)


def geometry_ints(draw, g, name, valid, low):
    """``valid`` (a tuple), or once in a while the same with one entry made hostile:
    below ``low``, or past int32 (the kernels' geometry is C ints: a value that
    large, even a stride, must be refused with a ValueError, not an OverflowError)."""
    if draw(st.integers(0, 9)):
        return tuple(valid)
    k = draw(st.integers(0, len(valid) - 1))
    v = draw(st.sampled_from([b for b in BAD_INTS if b < low or b > 2**30]))
    g.hazard(name, g.MUST, f"{name}[{k}] = {v}")
    g.log.append(f"{name}: {valid} -> [{k}] = {v}")
    return tuple(valid[:k]) + (v,) + tuple(valid[k + 1:])


def out_size(n, k, s, d, p0, p1):
    return (n + p0 + p1 - (k - 1) * d - 1) // s + 1


# ------------------------------------------------------------ convolution
def _conv_geometry(draw, g):
    n = g.dim(draw, 0, 3)
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    cg, fg = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    p = tuple(draw(st.integers(0, 2)) for _ in range(4))
    if not draw(st.integers(0, 2)):
        # A third of the cases 3x3, stride 1, undilated, ungrouped: what
        # conv.pyx's Winograd path takes (_winograd below forces it on half).
        kh = kw = 3
        s, d, groups = (1, 1), (1, 1), 1
    return n, h, w, groups, cg, fg, kh, kw, s, d, p


def _conv_fits(h, w, kh, kw, s, d, p):
    return (h + p[0] + p[1] >= (kh - 1) * d[0] + 1 and w + p[2] + p[3] >= (kw - 1) * d[1] + 1)


def conv_ref(x, W, b, s, p, d, groups):
    """tests/kernels' loop reference over the zero-padded input: padded cells
    are zeros that multiply the weights (0 * inf = NaN, as in any convolution
    that pads, PyTorch's and TensorFlow's included)."""
    xp = numpy.pad(f64(x), ((0, 0), (p[0], p[1]), (p[2], p[3]), (0, 0)))
    return REF_CONV.ref_forward(xp, f64(W), b, s, (0, 0, 0, 0), d, groups)


def conv_ref_backward(x, W, dz, s, p, d, groups):
    xp = numpy.pad(f64(x), ((0, 0), (p[0], p[1]), (p[2], p[3]), (0, 0)))
    dxp, dW, db = REF_CONV.ref_backward(xp, f64(W), dz, s, (0, 0, 0, 0), d, groups)
    return dxp[:, p[0]:p[0] + x.shape[1], p[2]:p[2] + x.shape[2]], dW, db


def _winograd(draw, kh, kw, s, d, groups):
    """conv.pyx's winograd switch for a drawn case: half of the 3x3, stride-1,
    undilated, ungrouped cases force the Winograd path (its channels are too few
    for "auto"), the others leave the default. A Winograd output mixes a 4x4
    input tile through the transforms, so a NaN or inf spreads over its 2x2
    output tile where the direct sum reaches fewer outputs (as in every Winograd
    convolution): those cases compare only where both are finite. Its rounding is
    a constant factor over the direct sum's (tests/kernels/test_conv.py's
    wg_tol): the scale is taken 8x."""
    if (kh, kw, tuple(s), tuple(d), groups) == (3, 3, (1, 1), (1, 1), 1) and draw(st.booleans()):
        return True
    return None


def _conv_args(draw, g, s, p, d, groups):
    S = geometry_ints(draw, g, "strides", s, 1)
    P = geometry_ints(draw, g, "pads", p, 0)
    D = geometry_ints(draw, g, "dilation", d, 1)
    G = groups
    if not draw(st.integers(0, 14)):
        G = draw(st.sampled_from([0, -1, 2**63, 1.5, True]))
        g.hazard("groups", g.MUST, f"groups = {G}")
    return S, P, D, G


def _conv_weights(draw, g, dt, kh, kw, cg, groups, fg):
    """W (kh, kw, cg, groups * fg), or now and then one of the wrong shape."""
    shape = (kh, kw, cg, groups * fg)
    if not draw(st.integers(0, 14)):
        axis = draw(st.integers(0, 3))
        bad = list(shape)
        bad[axis] = draw(st.sampled_from([0, shape[axis] + 1]))
        if axis == 3 and groups > 1 and bad[3] % groups == 0 and bad[3]:
            bad[3] += 1
        if axis in (0, 1) and bad[axis]:
            return g.values(draw, shape, dt), shape  # a bigger kernel is a valid one
        if axis == 3 and groups == 1 and bad[3]:
            # One more filter is a valid W on its own (b and out are drawn for
            # the right count later, and their own hazards cover a mismatch).
            return g.values(draw, shape, dt), shape
        g.hazard("W", g.MUST, f"shape {tuple(bad)} for {shape}")
        return g.values(draw, tuple(bad), dt), tuple(bad)
    return g.values(draw, shape, dt), shape


def case_conv2d_forward(draw, g):
    dt = g.dtype(draw)
    n, h, w, groups, cg, fg, kh, kw, s, d, p = _conv_geometry(draw, g)
    x = g.values(draw, (n, h, w, cg * groups), dt)
    W, wshape = _conv_weights(draw, g, dt, kh, kw, cg, groups, fg)
    b = g.values(draw, (groups * fg,), dt) if draw(st.booleans()) else None
    a = draw(st.sampled_from(CONV_ACTS))
    alpha = draw(st.sampled_from([0.0, 0.2, 1.0]))
    S, P, D, G = _conv_args(draw, g, s, p, d, groups)
    if not _conv_fits(h, w, kh, kw, s, d, p):
        g.hazard("dilation" if d != (1, 1) else "pads", g.MUST,
                 "the dilated kernel does not fit the padded input")
    want = scale = None
    if not g.h.must:
        with numpy.errstate(all="ignore"):
            z = conv_ref(x, W, b, s, p, d, groups)
            sc = conv_ref(numpy.abs(f64(x)), numpy.abs(f64(W)),
                          None if b is None else numpy.abs(f64(b)), s, p, d, groups)
        want, scale = act(a, z, alpha), sc
        if a == "softmax":  # softmax of a row: error relative to the row's spread
            scale = sc.max(-1, keepdims=True, initial=0) + numpy.zeros_like(sc)
    wg = _winograd(draw, wshape[0], wshape[1], s, d, groups)
    if wg and scale is not None:
        scale = scale * 8
    X = g.arg(draw, "x", x)
    W_ = g.arg(draw, "W", W)
    B = g.arg(draw, "b", b) if b is not None else None
    out = None
    oshape = (n, out_size(h, kh, s[0], d[0], p[0], p[1]), out_size(w, kw, s[1], d[1], p[2], p[3]),
              groups * fg)
    form = draw(st.sampled_from(["none"] * 3 + ["out", "alias"]))
    if form == "out" and min(oshape) >= 0:
        out = g.arg(draw, "out", numpy.full(oshape, numpy.nan, dt), out=True,
                    allow=("C", "readonly", "strided", "dtype"))
    elif form == "alias" and isinstance(X, numpy.ndarray) and X.shape == oshape and X.size:
        out = X
        g.hazard("out", g.MUST, "is x")
    return g.case(lambda: CV.conv2d_forward(X, W_, B, S, P, D, G, a, alpha, out, winograd=wg),
                  want, dt, scale, compare_nonfinite=not wg)


def case_conv2d_backward(draw, g):
    dt = g.dtype(draw)
    n, h, w, groups, cg, fg, kh, kw, s, d, p = _conv_geometry(draw, g)
    p0 = p
    S, P, D, G = _conv_args(draw, g, s, p, d, groups)
    if not _conv_fits(h, w, kh, kw, s, d, p):
        # The backward needs a valid dy shape: pads that make the kernel fit.
        p = ((kh - 1) * d[0], 0, (kw - 1) * d[1], 0)
        P = p if P == p0 else P
    x = g.values(draw, (n, h, w, cg * groups), dt)
    W = g.values(draw, (kh, kw, cg, groups * fg), dt)
    oshape = (n, out_size(h, kh, s[0], d[0], p[0], p[1]), out_size(w, kw, s[1], d[1], p[2], p[3]),
              groups * fg)
    a = draw(st.sampled_from(CONV_ACTS))
    alpha = draw(st.sampled_from([0.0, 0.2, 1.0]))
    with numpy.errstate(all="ignore"):
        y = act(a, conv_ref(x, W, None, s, p, d, groups), alpha).astype(dt)
    dy = g.values(draw, oshape, dt)
    # The input gradient alone (x None, x_shape given: a transposed convolution's forward).
    dx_only = draw(st.integers(0, 3)) == 0
    need_dx = dx_only or draw(st.booleans())
    has_dW, has_db = not dx_only, not dx_only and draw(st.booleans())
    dW0 = g.values(draw, W.shape, dt, special=False)
    db0 = g.values(draw, (groups * fg,), dt, special=False)
    with numpy.errstate(all="ignore"):
        dz = act_grad(a, f64(y), f64(dy), alpha)
        rdx, rdW, rdb = conv_ref_backward(x, W, dz, s, p, d, groups)
        # dz's own rounding: act'(y) is formed from y in the data's dtype (elu's
        # y + alpha cancels to 0 in float32 where float64 leaves 1e-9).
        adz = numpy.abs(dz) + numpy.abs(f64(dy)) * (1 + numpy.abs(f64(y)) + alpha) * (
            1 + (a == "softmax") * oshape[-1])
        sdx, sdW, sdb = conv_ref_backward(numpy.abs(f64(x)), numpy.abs(f64(W)), adz, s, p,
                                          d, groups)
    X = None if dx_only else g.arg(draw, "x", x)
    W_ = g.arg(draw, "W", W)
    Y = g.arg(draw, "y", y) if a != "linear" else None
    DY = g.arg(draw, "dy", dy)
    dW = db = None
    if has_dW:
        dW = g.arg(draw, "dW", dW0.copy(), out=True, allow=("C", "readonly", "strided", "dtype"))
    if has_db:
        db = g.arg(draw, "db", db0.copy(), out=True, allow=("C", "readonly", "strided", "dtype"))
    form = draw(st.sampled_from(["plain"] * 4 + ["dW_is_W", "db_in_dW", "dW_is_x"]))
    if form == "dW_is_W" and has_dW:
        dW = W_
        g.hazard("dW", g.MUST, "is W")
    elif form == "db_in_dW" and has_dW and has_db and isinstance(dW, numpy.ndarray) \
            and dW.flags.c_contiguous and dW.size >= db0.size:
        db = dW.reshape(-1)[:db0.size]
        g.hazard("db", g.MUST, "inside dW")
    elif form == "dW_is_x" and has_dW and isinstance(X, numpy.ndarray) and X.shape == W.shape:
        dW = X
        g.hazard("dW", g.MUST, "is x")
    want = (rdx if need_dx else None,
            None if dW is None else f64(dW0) + rdW,
            None if db is None else f64(db0) + rdb)
    scale = (sdx, sdW + numpy.abs(f64(dW0)), sdb + numpy.abs(f64(db0)))
    wg = _winograd(draw, kh, kw, s, d, groups)
    if wg:
        scale = (sdx * 8, sdW * 8 + numpy.abs(f64(dW0)), scale[2])

    def call():
        r = CV.conv2d_backward(X, W_, Y, DY, dW, db, S, P, D, G, a, alpha, need_dx,
                               x_shape=x.shape if dx_only else None, winograd=wg)
        return (r, None if dW is None else dW, None if db is None else db)
    return g.case(call, want, dt, scale, compare_nonfinite=not wg)


# ---------------------------------------------------------------- pooling
def _pool_geometry(draw, g, must_touch):
    n = g.dim(draw, 0, 3)
    h, w, c = draw(st.integers(1, 6)), draw(st.integers(1, 6)), g.dim(draw, 0, 4)
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    if must_touch:
        p = (draw(st.integers(0, k[0] - 1)), draw(st.integers(0, k[0] - 1)),
             draw(st.integers(0, k[1] - 1)), draw(st.integers(0, k[1] - 1)))
    else:
        p = tuple(draw(st.integers(0, 2)) for _ in range(4))
    return n, h, w, c, k, s, p


def _pool_ints(draw, g, k, s, p):
    """The 10 int arguments (window, strides, pads), maybe one hostile."""
    K = geometry_ints(draw, g, "window", k, 1)
    S = geometry_ints(draw, g, "strides", s, 1)
    P = geometry_ints(draw, g, "padding", p, 0)
    return K + S + P


def ref_pool(x, k, s, p, mode):
    """y and argmax from tests/kernels' loop reference, with NaN handled as
    NumPy's max does: a window holding NaN gives NaN (argmax: the first NaN)."""
    y, arg, cells = REF_POOL.ref_pool(numpy.where(numpy.isnan(x), numpy.inf, f64(x)), k, s, p, mode)
    if numpy.isnan(x).any():
        yn, argn, _ = REF_POOL.ref_pool(numpy.isnan(x).astype(numpy.float64), k, s, p, "max")
        if mode == "max":
            y = numpy.where(yn > 0, numpy.nan, y)
            arg = numpy.where(yn > 0, argn, arg)
        else:
            y = REF_POOL.ref_pool(f64(x), k, s, p, mode)[0]
    return y, arg


def _fits(h, w, k, s, p):
    return h + p[0] + p[1] >= k[0] and w + p[2] + p[3] >= k[1]


def case_pool2d_forward(draw, g):
    dt = g.dtype(draw)
    n, h, w, c, k, s, p = _pool_geometry(draw, g, True)
    mode = draw(st.sampled_from(["max", "avg"]))
    if not draw(st.integers(0, 9)):
        p = (p[0], k[0], p[2], p[3])  # a window of padding only
        g.hazard("padding", g.MUST, "as large as the window")
    x = g.values(draw, (n, h, w, c), dt)
    ints = _pool_ints(draw, g, k, s, p)
    if not _fits(h, w, k, s, p):
        g.hazard("window", g.MUST, "larger than the padded input")
    want = None
    if not g.h.must:
        with numpy.errstate(all="ignore"):
            y, arg = ref_pool(x, k, s, p, mode) if x.size else (
                numpy.zeros((n, out_size(h, k[0], s[0], 1, p[0], p[1]),
                             out_size(w, k[1], s[1], 1, p[2], p[3]), c)),) * 2
        want = (y, arg.astype(numpy.int32) if mode == "max" else None)
    X = g.arg(draw, "x", x, allow=NHWC)
    return g.case(lambda: PL.pool2d_forward(X, *ints, mode=mode), want, dt,
                  (numpy.abs(want[0]) if want else 1.0, 0.0))


def case_pool2d_backward(draw, g):
    dt = g.dtype(draw)
    n, h, w, c, k, s, p = _pool_geometry(draw, g, True)
    if not _fits(h, w, k, s, p):
        k = (min(k[0], h), min(k[1], w))
        p = (min(p[0], k[0] - 1), min(p[1], k[0] - 1), min(p[2], k[1] - 1), min(p[3], k[1] - 1))
    mode = draw(st.sampled_from(["max", "avg"]))
    x = g.values(draw, (n, h, w, c), dt, special=False)
    ho, wo = out_size(h, k[0], s[0], 1, p[0], p[1]), out_size(w, k[1], s[1], 1, p[2], p[3])
    dy = g.values(draw, (n, ho, wo, c), dt)
    if x.size:
        _, arg, cells = REF_POOL.ref_pool(f64(x), k, s, p, mode)
        with numpy.errstate(all="ignore"):
            rdx = REF_POOL.ref_pool_backward(f64(dy), x.shape, cells)
            sdx = REF_POOL.ref_pool_backward(numpy.abs(f64(dy)), x.shape, cells)
    else:
        arg = numpy.zeros(dy.shape, numpy.int32)
        rdx = sdx = numpy.zeros(x.shape)
    arg = arg.astype(numpy.int32)
    if mode == "max" and arg.size and not draw(st.integers(0, 5)):
        # An argmax no pool2d_forward could give: off the window or on padding.
        pos = tuple(draw(st.integers(0, m - 1)) for m in arg.shape)
        arg[pos] = draw(st.sampled_from([-1, k[0] * k[1], 2**31 - 1, -2**31]
                                        + ([0] if p[0] or p[2] else [])))
        oh, ow = pos[1], pos[2]
        i, j = divmod(int(arg[pos]), k[1])
        r, q = oh * s[0] - p[0] + i, ow * s[1] - p[2] + j
        if not (0 <= arg[pos] < k[0] * k[1] and 0 <= r < h and 0 <= q < w):
            g.hazard("argmax", g.MUST, f"{arg[pos]} at {pos}")
        else:
            rdx = None  # a real position after all: the reference no longer applies
    ints = _pool_ints(draw, g, k, s, p)
    xs = x.shape
    if not draw(st.integers(0, 14)):
        xs = draw(st.sampled_from([(n, h, w), (n, h, w, c, 1), (-1, h, w, c), (n, h, w, c + 1),
                                   (n, 2**40, w, c)]))
        g.hazard("x_shape", g.MUST, f"{xs} for {x.shape}")
    DY = g.arg(draw, "dy", dy, allow=NHWC)
    A = arg if mode == "avg" else g.arg(draw, "argmax", arg, allow=NHWC)
    case = g.case(lambda: PL.pool2d_backward(DY, A, xs, *ints, mode=mode), rdx, dt, sdx)
    # Checked after g.case, which drops a dtype swap of dy (float32 <-> float64, a
    # consistent call): before, such a swap still counted as a must-fail hazard
    # here, and a valid call was then expected to fail (found by the long run).
    if mode == "max" and rdx is None and not case.hazards.must:
        return g.case(lambda: None, None, dt)  # nothing left to compare
    return case


# -------------------------------------------------------------- depthwise
def _dw_geometry(draw, g):
    n = g.dim(draw, 0, 2)
    h, w, c = draw(st.integers(1, 5)), draw(st.integers(1, 5)), g.dim(draw, 0, 3)
    m = draw(st.sampled_from([1, 1, 2, 3]))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    p = tuple(draw(st.integers(0, 2)) for _ in range(4))
    return n, h, w, c, m, kh, kw, s, d, p


def _dw_ints(draw, g, s, d, p):
    S = geometry_ints(draw, g, "strides", s, 1)
    D = geometry_ints(draw, g, "dilation", d, 1)
    P = geometry_ints(draw, g, "padding", p, 0)
    return S + D + P


def _dw_fits(h, w, kh, kw, d, p):
    return (h + p[0] + p[1] >= (kh - 1) * d[0] + 1 and w + p[2] + p[3] >= (kw - 1) * d[1] + 1)


def _dw_kernel(draw, g, dt, kh, kw, c, m):
    shape = (kh, kw, c, m)
    if not draw(st.integers(0, 14)):
        axis = draw(st.sampled_from([2, 3]))
        bad = list(shape)
        bad[axis] = shape[axis] + 1 if axis == 2 else 0  # another multiplier is valid
        g.hazard("kernel", g.MUST, f"shape {tuple(bad)}")
        return g.values(draw, tuple(bad), dt)
    return g.values(draw, shape, dt)


def case_depthwise_forward(draw, g):
    dt = g.dtype(draw)
    n, h, w, c, m, kh, kw, s, d, p = _dw_geometry(draw, g)
    x = g.values(draw, (n, h, w, c), dt)
    kern = _dw_kernel(draw, g, dt, kh, kw, c, m)
    bias = g.values(draw, (c * m,), dt) if draw(st.booleans()) else None
    a = draw(st.sampled_from(DW_ACTS))
    alpha = draw(st.sampled_from([0.0, 0.2, 1.0]))
    ints = _dw_ints(draw, g, s, d, p)
    if not _dw_fits(h, w, kh, kw, d, p):
        g.hazard("padding", g.MUST, "the dilated kernel does not fit")
    want = scale = None
    if not g.h.must:
        with numpy.errstate(all="ignore"):
            want = act(a, REF_POOL.ref_depthwise(f64(x), f64(kern), bias, s, d, p), alpha)
            scale = REF_POOL.ref_depthwise(numpy.abs(f64(x)), numpy.abs(f64(kern)),
                                           None if bias is None else numpy.abs(f64(bias)),
                                           s, d, p)
    X = g.arg(draw, "x", x, allow=NHWC)
    K = g.arg(draw, "kernel", kern, allow=NHWC)
    B = g.arg(draw, "bias", bias, allow=("C", "strided", "readonly", "list", "dtype", "ndim")) \
        if bias is not None else None
    return g.case(lambda: PL.depthwise_conv2d_forward(X, K, B, *ints, activation=a,
                                                      alpha=alpha), want, dt, scale)


def case_depthwise_backward(draw, g):
    dt = g.dtype(draw)
    n, h, w, c, m, kh, kw, s, d, p = _dw_geometry(draw, g)
    if not _dw_fits(h, w, kh, kw, d, p):
        p = ((kh - 1) * d[0], 0, (kw - 1) * d[1], 0)
    x = g.values(draw, (n, h, w, c), dt)
    kern = g.values(draw, (kh, kw, c, m), dt)
    a = draw(st.sampled_from(DW_ACTS))
    alpha = draw(st.sampled_from([0.0, 0.2, 1.0]))
    with numpy.errstate(all="ignore"):
        y = act(a, REF_POOL.ref_depthwise(f64(x), f64(kern), None, s, d, p), alpha).astype(dt)
    dy = g.values(draw, y.shape, dt)
    need_dx = draw(st.booleans())
    has_db = draw(st.booleans())
    dk0 = g.values(draw, kern.shape, dt, special=False)
    db0 = g.values(draw, (c * m,), dt, special=False)
    with numpy.errstate(all="ignore"):
        dz = act_grad(a, f64(y), f64(dy), alpha)
        rdx, rdk, rdb = REF_POOL.ref_depthwise_backward(f64(x), f64(kern), dz, s, d, p)
        adz = numpy.abs(dz) + numpy.abs(f64(dy)) * (1 + numpy.abs(f64(y)) + alpha)
        sdx, sdk, sdb = REF_POOL.ref_depthwise_backward(numpy.abs(f64(x)),
                                                        numpy.abs(f64(kern)), adz, s, d, p)
    ints = _dw_ints(draw, g, s, d, p)
    X = g.arg(draw, "x", x, allow=NHWC)
    K = g.arg(draw, "kernel", kern, allow=NHWC)
    Y = g.arg(draw, "y", y, allow=NHWC)
    DY = g.arg(draw, "dy", dy, allow=NHWC)
    dk = g.arg(draw, "dkernel", dk0.copy(), out=True, allow=("C", "readonly", "strided", "dtype"))
    db = g.arg(draw, "dbias", db0.copy(), out=True, allow=("C", "readonly", "strided", "dtype")) \
        if has_db else None
    form = draw(st.sampled_from(["plain"] * 4 + ["dk_is_kernel", "dk_is_x", "db_in_dk"]))
    if form == "dk_is_kernel" and kern.size:
        dk = K
        g.hazard("dkernel", g.MUST, "is kernel")
    elif form == "dk_is_x" and isinstance(X, numpy.ndarray) and X.shape == kern.shape and X.size:
        dk = X
        g.hazard("dkernel", g.MUST, "is x")
    elif form == "db_in_dk" and has_db and isinstance(dk, numpy.ndarray) \
            and dk.flags.c_contiguous and dk.size >= db0.size and db0.size:
        db = dk.reshape(-1)[:db0.size]
        g.hazard("dbias", g.MUST, "inside dkernel")
    want = (rdx if need_dx else None, f64(dk0) + rdk, None if db is None else f64(db0) + rdb)
    scale = (sdx, sdk + numpy.abs(f64(dk0)), sdb + numpy.abs(f64(db0)))

    def call():
        r = PL.depthwise_conv2d_backward(X, K, Y, DY, dk, db, *ints, activation=a, alpha=alpha,
                                         need_dx=need_dx)
        return (r, dk, db)
    return g.case(call, want, dt, scale)


# ------------------------------------------------------------- batch norm
def case_batchnorm_forward(draw, g):
    dt = g.dtype(draw)
    m, n = g.dim(draw, 0, 70), g.dim(draw, 0, 5)
    x = g.values(draw, (m, n), dt, lo=-3.0, hi=5.0)
    gamma = g.values(draw, (n,), dt) if draw(st.booleans()) else None
    beta = g.values(draw, (n,), dt) if draw(st.booleans()) else None
    eps = draw(st.sampled_from([1e-3, 1e-5, 0.5]))
    stats = draw(st.booleans())
    mean = var = None
    if stats:
        mean = g.values(draw, (n,), dt)
        var = numpy.abs(g.values(draw, (n,), dt, special=False))
        if n and not draw(st.integers(0, 9)):
            var[draw(st.integers(0, n - 1))] = -0.5
            g.hazard("variance", g.MUST, "a negative entry")
    if not draw(st.integers(0, 19)):
        eps = draw(st.sampled_from([0.0, -1e-3, float("nan")]))
        g.hazard("epsilon", g.MUST, f"{eps}")
    if not stats and m == 0:
        g.hazard("x", g.MUST, "no rows for batch statistics")
    want = scale = None
    if not g.h.must:
        with numpy.errstate(all="ignore"):
            y, mu, v = REF_NORM.reference_forward(f64(x), None if gamma is None else f64(gamma),
                                                  None if beta is None else f64(beta), eps,
                                                  None if mean is None else f64(mean),
                                                  None if var is None else f64(var))
            if m == 0:
                y = numpy.zeros((0, n))
            # Each y is a few roundings of (x - mean) * gamma / sqrt(var + eps) + beta.
            inv = 1 / numpy.sqrt(numpy.asarray(v, numpy.float64) + eps)
            ag = 1.0 if gamma is None else numpy.abs(f64(gamma))
            ab = 0.0 if beta is None else numpy.abs(f64(beta))
            sc = (numpy.abs(f64(x)) + numpy.abs(mu)) * inv * ag * 4 + ab + numpy.zeros((m, n))
        want = (y, numpy.asarray(mu, numpy.float64), numpy.asarray(v, numpy.float64))
        scale = (sc, numpy.abs(want[1]) + numpy.abs(f64(x)).max(0, initial=0),
                 numpy.abs(want[2]) + (numpy.abs(f64(x)).max(0, initial=0) ** 2) * 4)
    X = g.arg(draw, "x", x, allow=NO_LONE_DTYPE)
    GA = g.arg(draw, "gamma", gamma, allow=("C", "strided", "readonly", "list", "dtype", "ndim")) \
        if gamma is not None else None
    BE = g.arg(draw, "beta", beta, allow=("C", "strided", "readonly", "dtype", "ndim")) \
        if beta is not None else None
    MU = g.arg(draw, "mean", mean, allow=("C", "readonly", "dtype", "ndim")) if stats else None
    VA = g.arg(draw, "variance", var, allow=("C", "readonly", "dtype", "ndim")) if stats else None
    if stats and not draw(st.integers(0, 14)):
        MU = None  # one statistic without the other
        g.hazard("mean", g.MUST, "given without the variance")
    return g.case(lambda: NM.batchnorm_forward(X, GA, BE, eps, MU, VA), want, dt, scale)


def case_batchnorm_backward(draw, g):
    dt = g.dtype(draw)
    m, n = g.dim(draw, 0, 70), g.dim(draw, 0, 5)
    # NaN/inf x too: with fixed statistics dx = dy * gamma / sqrt(var + eps) reads
    # no x, so dx stays finite (the kernel once computed 0 * (inf - mean) = NaN).
    x = g.values(draw, (m, n), dt, lo=-3.0, hi=5.0)
    dy = g.values(draw, (m, n), dt)
    gamma = g.values(draw, (n,), dt) if draw(st.booleans()) else None
    mean = g.values(draw, (n,), dt, special=False)
    var = numpy.abs(g.values(draw, (n,), dt, special=False)) + numpy.asarray(0.1, dt)
    eps = draw(st.sampled_from([1e-3, 0.5]))
    batch_stats, need_dx = draw(st.booleans()), draw(st.booleans())
    dg0 = g.values(draw, (n,), dt, special=False)
    db0 = g.values(draw, (n,), dt, special=False)
    has_dg, has_db = draw(st.booleans()), draw(st.booleans())
    with numpy.errstate(all="ignore"):
        rdx, rdg, rdb = REF_NORM.reference_backward(
            f64(x), f64(dy), None if gamma is None else f64(gamma), f64(mean), f64(var), eps,
            batch_stats)
        inv = 1 / numpy.sqrt(f64(var) + eps)
        ad = numpy.abs(f64(dy))
        axh = (numpy.abs(f64(x)) + numpy.abs(f64(mean))) * inv
        ag = 1.0 if gamma is None else numpy.abs(f64(gamma))
        sdg = (ad * axh).sum(0) * 2
        sdb = ad.sum(0)
        sdx = ag * inv * (ad + (ad.sum(0) + axh * (ad * axh).sum(0)) / max(m, 1)) * 4 \
            + numpy.zeros((m, n))
    X = g.arg(draw, "x", x, allow=NO_LONE_DTYPE)
    DY = g.arg(draw, "dy", dy, allow=("C", "strided", "readonly", "dtype", "ndim"))
    GA = g.arg(draw, "gamma", gamma, allow=("C", "readonly", "dtype", "ndim")) \
        if gamma is not None else None
    MU = g.arg(draw, "mean", mean, allow=("C", "readonly", "list", "dtype", "ndim"))
    VA = g.arg(draw, "variance", var, allow=("C", "readonly", "dtype", "ndim"))
    DG = g.arg(draw, "dgamma", dg0.copy(), out=True, allow=("C", "readonly", "strided", "dtype")) \
        if has_dg else None
    DB = g.arg(draw, "dbeta", db0.copy(), out=True, allow=("C", "readonly", "strided", "dtype")) \
        if has_db else None
    form = draw(st.sampled_from(["plain"] * 4 + ["db_is_mean", "dg_is_var", "dg_is_db"]))
    if n and form == "db_is_mean" and has_db:
        DB = MU
        g.hazard("dbeta", g.MUST, "is mean")
    elif n and form == "dg_is_var" and has_dg:
        DG = VA
        g.hazard("dgamma", g.MUST, "is variance")
    elif n and form == "dg_is_db" and has_dg and has_db:
        DG = DB
        g.hazard("dgamma", g.MUST, "is dbeta")
    want = (rdx if need_dx else None, None if DG is None else f64(dg0) + rdg,
            None if DB is None else f64(db0) + rdb)
    scale = (sdx, sdg + numpy.abs(f64(dg0)), sdb + numpy.abs(f64(db0)))

    def call():
        r = NM.batchnorm_backward(X, DY, GA, MU, VA, eps, DG, DB, batch_stats, need_dx)
        return (r, DG, DB)
    return g.case(call, want, dt, scale)


CASES = [case_conv2d_forward, case_conv2d_backward, case_pool2d_forward, case_pool2d_backward,
         case_depthwise_forward, case_depthwise_backward, case_batchnorm_forward,
         case_batchnorm_backward]


@pytest.mark.parametrize("case_fn", CASES, ids=lambda f: f.__name__[5:])
def test_fuzz(case_fn, fuzz):
    fuzz(case_fn)
