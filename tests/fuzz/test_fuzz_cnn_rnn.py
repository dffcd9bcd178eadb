"""Fuzzing the convolution, pooling, depthwise, batch-norm and recurrent kernels
(fastnn._C.conv, .pool, .norm, .recurrent) with hostile geometry (zero sizes,
windows, strides, dilations and pads that do not fit, negative and huge ints),
operands (wrong dtype/ndim, non-contiguous, read-only, lists, NaN), outputs that
are or overlap an input, mismatched weight shapes and bad argmax/mask arrays.
The float64 references are loops written in the test files of tests/kernels
(loaded from there, never the Ops fallback) or here; the recurrent backward
is checked against complex-step derivatives of the step-by-step reference
(exact to rounding, unlike finite differences). Machinery: conftest.py."""
import importlib.util
import os

import numpy
import pytest
from hypothesis import strategies as st

from fastnn._C import conv as CV
from fastnn._C import norm as NM
from fastnn._C import pool as PL
from fastnn._C import recurrent as RC

_HERE = os.path.dirname(os.path.abspath(__file__))


def _load(name):
    """A tests/kernels module, for its loop reference (by path: tests/ is no package)."""
    path = os.path.join(_HERE, "..", "kernels", name + ".py")
    spec = importlib.util.spec_from_file_location("fuzz_ref_" + name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


REF_CONV = _load("test_conv")
REF_POOL = _load("test_pool")
REF_NORM = _load("test_norm")
REF_RNN = _load("test_recurrent")


def _sigmoid(v):
    """The reference's sigmoid, safe for the complex step: 1 / (1 + exp(-v)) of a
    complex v with a large negative real part is inf / inf, NaN (a linear GRU's
    state grows to 1e4 in three steps), where the real sigmoid is just 0. The
    tanh form is the same function, analytic, and saturates cleanly."""
    if numpy.iscomplexobj(v):
        return 0.5 + 0.5 * numpy.tanh(v / 2)
    return 1 / (1 + numpy.exp(-v))


# This module's own copy of test_recurrent (see _load): tests/kernels keeps its sigmoid.
REF_RNN.ACT = dict(REF_RNN.ACT, sigmoid=_sigmoid)

CONV_ACTS = ("linear", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "softmax")
DW_ACTS = ("linear", "sigmoid", "tanh", "relu", "leaky_relu", "elu")
# Ints no geometry can take: zero/negative sizes, values past int32 and int64.
BAD_INTS = (0, -1, -2**31, 2**31, 2**40, 2**63, -2**63)
NHWC = ("C", "strided", "reversed", "readonly", "list", "dtype", "ndim")
# The operand that norm.pyx and recurrent.pyx check the others' dtype against
# (x, xproj, R) is not given another dtype alone: their message then names the
# other operand ("dy has dtype float32 but the other operands are float64"), a
# wording left as is in those kernels (being changed on other branches now).
NO_LONE_DTYPE = ("C", "F", "strided", "readonly", "list", "ndim")


def f64(a):
    return numpy.asarray(a, numpy.float64)


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
    if mode == "max" and rdx is None and not g.h.must:
        return g.case(lambda: None, None, dt)  # nothing left to compare
    return g.case(lambda: PL.pool2d_backward(DY, A, xs, *ints, mode=mode), rdx, dt, sdx)


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


# -------------------------------------------------------------- recurrent
RNN_ACTS = ("tanh", "sigmoid", "linear", "relu")


def _rnn_inputs(draw, g, dt, cell, T, N, U, special=True):
    G = REF_RNN.G[cell]
    d = {"xproj": g.values(draw, (T, N, G * U), dt, special=special),
         "R": g.values(draw, (U, G * U), dt, lo=-1.0, hi=1.0, special=special),
         "h0": g.values(draw, (N, U), dt, special=special)}
    if cell == "lstm":
        d["c0"] = g.values(draw, (N, U), dt, special=special)
    if draw(st.booleans()):
        d["mask"] = numpy.random.default_rng(draw(st.integers(0, 2**32 - 1))).random((T, N)) < 0.7
    if draw(st.booleans()):
        d["rec_mask"] = g.values(draw, (N, U), dt, lo=0.0, hi=2.0, special=False)
    if cell == "gru" and draw(st.booleans()):
        d["b_rec"] = g.values(draw, (G * U,), dt, special=special)
    return d


def rnn_reference(cell, a, ra, d):
    """tests/kernels' step-by-step reference; (Y, H, C) of an empty sequence too."""
    if d["xproj"].shape[0] == 0:
        N, U = d["h0"].shape
        # (the states as given: complex for the complex step)
        return (numpy.zeros((0, N, U)), d["h0"][None], d["c0"][None] if cell == "lstm" else None)
    return REF_RNN.reference(cell, act=a, ract=ra, **d)


def _ref64(d):
    return {k: (f64(v) if v.dtype.kind == "f" else v) for k, v in d.items()}


def case_rnn_forward(draw, g):
    dt = g.dtype(draw)
    cell = draw(st.sampled_from(["simple", "lstm", "gru"]))
    T, N, U = g.dim(draw, 0, 5), g.dim(draw, 0, 4), g.dim(draw, 0, 4)
    a, ra = draw(st.sampled_from(RNN_ACTS)), draw(st.sampled_from(RNN_ACTS))
    d = _rnn_inputs(draw, g, dt, cell, T, N, U)
    with numpy.errstate(all="ignore"):
        rY, rH, rC = rnn_reference(cell, a, ra, _ref64(d))
    # A step's state is a sum over U products and a few gates: errors grow with
    # the state's magnitude, step after step.
    sc = (numpy.abs(rH).max(initial=1.0) if numpy.isfinite(rH).all() else 1.0) * (T + 1) * (U + 1)
    want = [rY.transpose(1, 0, 2), rH, rC]
    A = dict(d)
    for k in list(A):
        A[k] = g.arg(draw, k, A[k], allow=NO_LONE_DTYPE if k == "xproj" else
                     ("C", "strided", "readonly", "list", "dtype", "ndim")
                     if k != "mask" else ("C", "strided", "list", "ndim"))
    if not draw(st.integers(0, 9)):
        what = draw(st.sampled_from(["R", "h0", "mask", "b_rec", "c0", "rec_mask"]))
        bad = {"R": lambda: numpy.zeros((U + 1, REF_RNN.G[cell] * U), dt),
               "h0": lambda: numpy.zeros((N + 1, U), dt),
               "mask": lambda: numpy.ones((T, N + 1), bool),
               "b_rec": lambda: numpy.zeros((REF_RNN.G[cell] * U + 1,), dt),
               "c0": lambda: numpy.zeros((N, U + 1), dt),
               "rec_mask": lambda: numpy.ones((N, U), numpy.complex64)}[what]
        A[what] = bad()
        if what == "mask":
            A[what] = numpy.full((T, N + 1), True) if draw(st.booleans()) else \
                numpy.full((T, N), 0.5, numpy.float32)
        g.hazard(what, g.MUST, "wrong shape or dtype")
    if U and not draw(st.integers(0, 14)):
        # Another cell's arrays: R has the wrong number of gates (checked first).
        bad_cell = draw(st.sampled_from(["lstm", "gru", "simple"]))
        if bad_cell != cell:
            g.hazard("R", g.MUST, f"cell {bad_cell} for {cell}'s arrays")
            cell = bad_cell
    # Linear cells can grow past float32's range over the steps: the kernel then
    # rightly holds inf (or NaN from inf - inf) where float64 is finite; only the
    # elements finite on both sides are compared there.
    big = numpy.abs(rH[numpy.isfinite(rH)]).max(initial=0.0) > numpy.finfo(dt).max / 16
    return g.case(lambda: tuple(RC.rnn_forward(cell, activation=a, recurrent_activation=ra,
                                               **A)[:3]), tuple(want), dt, (sc, sc, sc),
                  compare_nonfinite=not big)


def _rnn_loss(cell, d, dY, dhT, dcT, a, ra):
    Y, H, C = rnn_reference(cell, a, ra, d)
    loss = (Y * dY).sum() + (H[-1] * dhT).sum()
    if cell == "lstm":
        loss = loss + (C[-1] * dcT).sum()
    return loss


def complex_step_grads(cell, d, dY, dhT, dcT, a, ra, names):
    """The gradient of the reference's loss for each input in ``names``, one
    element at a time by the complex step: Im f(x + ih) / h is the derivative to
    rounding (no difference of nearby values, so no cancellation)."""
    h = 1e-30
    base = {k: (v.astype(numpy.complex128) if v.dtype.kind == "f" else v) for k, v in d.items()}
    out = {}
    for name in names:
        grad = numpy.zeros(d[name].shape)
        flat = base[name].reshape(-1)
        for i in range(flat.size):
            flat[i] += 1j * h
            grad.reshape(-1)[i] = _rnn_loss(cell, base, dY, dhT, dcT, a, ra).imag / h
            flat[i] -= 1j * h
        out[name] = grad
    return out


def case_rnn_backward(draw, g):
    dt = g.dtype(draw)
    cell = draw(st.sampled_from(["simple", "lstm", "gru"]))
    T, N, U = g.dim(draw, 0, 3), g.dim(draw, 0, 3), g.dim(draw, 0, 3)
    a = draw(st.sampled_from(("tanh", "sigmoid", "linear")))
    ra = draw(st.sampled_from(("sigmoid", "tanh", "linear")))
    d = _rnn_inputs(draw, g, dt, cell, T, N, U, special=False)
    Y, H, C, A, E = RC.rnn_forward(cell, activation=a, recurrent_activation=ra, **d)
    dY = g.values(draw, (T, N, U), dt, special=False)
    dhT = g.values(draw, (N, U), dt, special=False) if draw(st.booleans()) else None
    dcT = g.values(draw, (N, U), dt, special=False) if cell == "lstm" and draw(st.booleans()) \
        else None
    has_dR, has_db = draw(st.booleans()), "b_rec" in d and draw(st.booleans())
    dR0 = g.values(draw, d["R"].shape, dt, special=False)
    db0 = g.values(draw, d["b_rec"].shape, dt, special=False) if "b_rec" in d else None
    names = ["xproj", "h0", "R"] + (["c0"] if cell == "lstm" else []) \
        + (["b_rec"] if "b_rec" in d else [])
    zeros = numpy.zeros((N, U))
    with numpy.errstate(all="ignore"):
        # The kernel differentiates through the states it computed (H, C, A, E
        # in dtype): for float32, the reference's float64 states differ by
        # rounding only, within the tolerance.
        ref = complex_step_grads(cell, _ref64(d), f64(dY), zeros if dhT is None else f64(dhT),
                                 zeros if dcT is None else f64(dcT), a, ra, names)
    mags = [numpy.abs(v).max(initial=0.0) for v in ref.values()]
    sc = (max(mags, default=0.0) + 1) * (T + 1) * (U + 1) * 4
    DYb = numpy.ascontiguousarray(dY.transpose(1, 0, 2))
    args = dict(R=d["R"], H=H, C=C, A=A, E=E, dY=DYb)
    for k in ("R", "H", "A", "dY"):
        args[k] = g.arg(draw, k, args[k], allow=NO_LONE_DTYPE if k == "R" else
                        ("C", "strided", "readonly", "list", "dtype", "ndim"))
    dR = g.arg(draw, "dR", dR0.copy(), out=True, allow=("C", "readonly", "strided", "dtype")) \
        if has_dR else None
    db = g.arg(draw, "db_rec", db0.copy(), out=True, allow=("C", "readonly", "strided", "dtype")) \
        if has_db else None
    form = draw(st.sampled_from(["plain"] * 5 + ["dR_is_R", "db_in_dR", "dR_in_H", "bad_mask"]))
    mask = d.get("mask")
    if form == "dR_is_R" and dR is not None and d["R"].size:
        dR = args["R"]
        g.hazard("dR", g.MUST, "is R")
    elif form == "db_in_dR" and dR is not None and db is not None and \
            isinstance(dR, numpy.ndarray) and dR.flags.c_contiguous and dR.size >= db0.size \
            and db0.size:  # empty arrays share no memory
        db = dR.reshape(-1)[:db0.size]
        g.hazard("db_rec", g.MUST, "inside dR")
    elif form == "dR_in_H" and dR is not None and isinstance(args["H"], numpy.ndarray) \
            and args["H"].flags.c_contiguous and args["H"].size >= dR0.size and dR0.size \
            and args["H"].flags.writeable:
        dR = args["H"].reshape(-1)[:dR0.size].reshape(dR0.shape)
        g.hazard("dR", g.MUST, "inside H")
    elif form == "bad_mask":
        mask = numpy.ones((T + 1, N), bool)
        g.hazard("mask", g.MUST, "shape (T + 1, N)")
    want = (ref["xproj"], ref["h0"], ref["c0"] if cell == "lstm" else None,
            None if dR is None else f64(dR0) + ref["R"],
            None if db is None else f64(db0) + ref["b_rec"])

    def call():
        dX, dh0, dc0 = RC.rnn_backward(cell, args["R"], args["H"], args["C"], args["A"],
                                       args["E"], args["dY"], dhT, dcT, mask, d.get("rec_mask"),
                                       dR, db, a, ra)
        return (dX, dh0, dc0, dR, db)
    return g.case(call, want, dt, sc)


def test_rnn_backward_reference_with_a_saturated_sigmoid():
    # The one case the long run (10,000 examples) found: a float32 GRU with a
    # linear recurrent activation whose state reaches 1.6e4 in three steps, so
    # the sigmoid candidate saturates; the complex-step reference gave NaN for
    # dxproj[0, 2] while the kernel's finite values are right (central differences
    # of the float64 reference agree to 1e-6). Inputs as the fuzzer drew them.
    def vals(seed, shape, lo=-2.0, hi=2.0):
        return numpy.random.default_rng(seed).uniform(lo, hi, shape).astype(numpy.float32)
    cell, T, N, U, a, ra = "gru", 3, 3, 3, "sigmoid", "linear"
    d = {"xproj": vals(0, (T, N, 3 * U)), "R": vals(262, (U, 3 * U), -1.0, 1.0),
         "h0": vals(2, (N, U))}
    dY = vals(0, (T, N, U))
    zeros = numpy.zeros((N, U))
    ref = complex_step_grads(cell, _ref64(d), f64(dY), zeros, zeros, a, ra, ["xproj"])["xproj"]
    assert numpy.isfinite(ref).all()

    def loss(xp):
        with numpy.errstate(over="ignore"):   # exp(-v) = inf: the real sigmoid's 0
            return _rnn_loss(cell, dict(_ref64(d), xproj=xp), f64(dY), zeros, zeros, a, ra)
    x0, h = f64(d["xproj"]), 1e-6
    for j in range(3 * U):   # the row that was NaN, by central differences
        e = numpy.zeros_like(x0)
        e[0, 2, j] = h
        cd = (loss(x0 + e) - loss(x0 - e)) / (2 * h)
        assert abs(cd - ref[0, 2, j]) <= 1e-5 * abs(ref[0, 2, j]) + 1e-6
    assert numpy.abs(ref[0, 2]).max() > 1e4   # the saturated regime, not a tame case
    Y, H, C, A, E = RC.rnn_forward(cell, activation=a, recurrent_activation=ra, **d)
    dX = RC.rnn_backward(cell, d["R"], H, C, A, E, numpy.ascontiguousarray(dY.transpose(1, 0, 2)),
                         activation=a, recurrent_activation=ra)[0]
    assert dX.dtype == numpy.float32 and numpy.isfinite(dX).all()
    # float32 steps of states up to 1.6e4: a float32 rounding of the largest terms.
    numpy.testing.assert_allclose(dX, ref, rtol=1e-4, atol=1e-5 * numpy.abs(ref).max())


CASES = [case_conv2d_forward, case_conv2d_backward, case_pool2d_forward, case_pool2d_backward,
         case_depthwise_forward, case_depthwise_backward, case_batchnorm_forward,
         case_batchnorm_backward, case_rnn_forward, case_rnn_backward]


@pytest.mark.parametrize("case_fn", CASES, ids=lambda f: f.__name__[5:])
def test_fuzz(case_fn, fuzz):
    fuzz(case_fn)
