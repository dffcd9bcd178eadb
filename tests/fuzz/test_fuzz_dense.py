"""Fuzzing the dense kernels (fastnn._C.blas, .dense, .activations) and the
softmax cross-entropy: each case function draws one call, hostile or not, and
its float64 NumPy reference written here (machinery and property: conftest.py).
A new dense-style kernel: write ``case_<name>(draw, g)`` and add it to CASES."""
import numpy
import pytest
from hypothesis import strategies as st

from fastnn._C import activations as A
from fastnn._C import blas, dense
from fastnn.backend import NumpyOps

# The elementwise kernels take any number of axes: no wrong-ndim variant.
NDIM_FREE = ("C", "F", "strided", "reversed", "readonly", "list", "dtype")
ACTS = ("linear", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "softmax")


# ---------------------------------------------------------- references
def act_ref(name, z, alpha):
    """act(z) in float64, from the textbook formulas."""
    with numpy.errstate(all="ignore"):
        if name == "linear":
            return z
        if name == "sigmoid":
            return 1.0 / (1.0 + numpy.exp(-z))
        if name == "tanh":
            return numpy.tanh(z)
        if name == "relu":
            return numpy.where(numpy.isnan(z), z, numpy.where(z > 0, z, 0.0))
        if name == "leaky_relu":
            return numpy.where(z > 0, z, alpha * z)
        if name == "elu":
            return numpy.where(z > 0, z, alpha * (numpy.exp(z) - 1.0))
        if name == "softmax":
            e = numpy.exp(z - z.max(axis=-1, keepdims=True, initial=-numpy.inf))
            return e / e.sum(axis=-1, keepdims=True)
    raise AssertionError(name)


def act_grad_ref(name, y, dy, alpha):
    """dy * act'(z) written from the output y = act(z)."""
    with numpy.errstate(all="ignore"):
        if name == "linear":
            return dy
        if name == "sigmoid":
            return dy * y * (1.0 - y)
        if name == "tanh":
            return dy * (1.0 - y * y)
        if name == "relu":
            return numpy.where(y > 0, dy, 0.0)
        if name == "leaky_relu":
            return numpy.where(y > 0, dy, alpha * dy)
        if name == "elu":
            return numpy.where(y > 0, dy, dy * (y + alpha))
        if name == "softmax":
            return y * (dy - (dy * y).sum(axis=-1, keepdims=True))
    raise AssertionError(name)


def f64(a):
    return numpy.asarray(a, numpy.float64)


# ---------------------------------------------------------------- cases
def case_gemm(draw, g):
    dt = g.dtype(draw)
    m, k, n = g.dim(draw), g.dim(draw), g.dim(draw)
    ta, tb = draw(st.booleans()), draw(st.booleans())
    a = g.values(draw, (k, m) if ta else (m, k), dt)
    b = g.values(draw, (n, k) if tb else (k, n), dt)
    alpha = draw(st.sampled_from([1.0, -0.5, 2.0]))
    beta = draw(st.sampled_from([0.0, 1.0, 0.5]))
    opa, opb = (f64(a).T if ta else f64(a)), (f64(b).T if tb else f64(b))
    with numpy.errstate(all="ignore"):
        prod = opa @ opb if k else numpy.zeros((m, n))
        scale = numpy.abs(opa) @ numpy.abs(opb) * abs(alpha) if k else numpy.zeros((m, n))
    form = draw(st.sampled_from(["none", "out", "alias_a", "alias_b"]))
    out = None
    if form == "none":
        want = alpha * prod
    else:
        old = g.values(draw, (m, n), dt, special=False)
        with numpy.errstate(all="ignore"):
            want = alpha * prod + beta * f64(old) if beta else alpha * prod
        scale = scale + abs(beta) * numpy.abs(f64(old))
        if beta == 0.0:
            old[...] = numpy.nan  # beta == 0: out's old contents must be ignored
        out = g.arg(draw, "out", old, out=True, allow=("C", "readonly", "strided", "F", "dtype"))
    A_ = g.arg(draw, "a", a)
    B_ = g.arg(draw, "b", b)
    if form == "alias_a" and a.shape == (m, n) and a.size:
        out = A_
        g.hazard("out", g.MUST, "is a")
    elif form == "alias_b" and b.shape == (m, n) and b.size:
        out = B_
        g.hazard("out", g.MUST, "is b")
    return g.case(lambda: blas.gemm(A_, B_, ta, tb, out, alpha, beta), want, dt, scale)


def _affine(draw, g, dt, m, k, n):
    x = g.values(draw, (m, k), dt)
    W = g.values(draw, (k, n), dt)
    b = g.values(draw, (n,), dt) if draw(st.booleans()) else None
    with numpy.errstate(all="ignore"):
        z = f64(x) @ f64(W) if k else numpy.zeros((m, n))
        scale = numpy.abs(f64(x)) @ numpy.abs(f64(W)) if k else numpy.zeros((m, n))
    if b is not None:
        z = z + f64(b)
        scale = scale + numpy.abs(f64(b))
    return x, W, b, z, scale


def case_dense_forward(draw, g):
    dt = g.dtype(draw)
    m, k, n = g.dim(draw), g.dim(draw), g.dim(draw)
    act = draw(st.sampled_from(ACTS))
    alpha = draw(st.sampled_from([0.0, 0.1, 1.0]))
    x, W, b, z, scale = _affine(draw, g, dt, m, k, n)
    want = act_ref(act, z, alpha)
    if act == "softmax":
        scale = numpy.ones_like(scale) * (1 + numpy.abs(z).max(initial=0))
    form = draw(st.sampled_from(["none", "out", "alias"]))
    X, Wa = g.arg(draw, "x", x), g.arg(draw, "W", W)
    B = g.arg(draw, "b", b, allow=("C", "readonly", "list", "dtype", "ndim")) if b is not None else None
    out = None
    if form == "out":
        out = g.arg(draw, "out", numpy.full((m, n), numpy.nan, dt), out=True,
                    allow=("C", "readonly", "strided", "F", "dtype"))
    elif form == "alias" and x.shape == (m, n) and isinstance(X, numpy.ndarray) and x.size:
        out = X
        g.hazard("out", g.MUST, "is x")
    return g.case(lambda: dense.dense_forward(X, Wa, B, act, alpha, out), want, dt,
                  scale + 1.0)


def case_dense_backward(draw, g):
    dt = g.dtype(draw)
    m, k, n = g.dim(draw), g.dim(draw), g.dim(draw)
    act = draw(st.sampled_from(ACTS))
    alpha = draw(st.sampled_from([0.0, 0.1, 1.0]))
    x, W, b, z, _ = _affine(draw, g, dt, m, k, n)
    y = act_ref(act, f64(g.values(draw, (m, n), dt, special=False)), alpha).astype(dt)
    dy = g.values(draw, (m, n), dt)
    dW0 = g.values(draw, (k, n), dt, special=False)
    has_db = draw(st.booleans())
    db0 = g.values(draw, (n,), dt, special=False)
    need_dx = draw(st.booleans())
    dz = act_grad_ref(act, f64(y), f64(dy), alpha)
    with numpy.errstate(all="ignore"):
        gW = f64(x).T @ dz if m else numpy.zeros((k, n))
        sW = numpy.abs(f64(x)).T @ numpy.abs(dz) if m else numpy.zeros((k, n))
        dx = dz @ f64(W).T if n else numpy.zeros((m, k))
        sx = numpy.abs(dz) @ numpy.abs(f64(W)).T if n else numpy.zeros((m, k))
    want = (f64(dW0) + gW, f64(db0) + dz.sum(0) if has_db else None,
            dx if need_dx else None)
    scale = (sW + numpy.abs(f64(dW0)) + 1, numpy.abs(dz).sum(0) + numpy.abs(f64(db0)) + 1,
             sx + 1)
    X, Wa = g.arg(draw, "x", x), g.arg(draw, "W", W)
    Y, DY = g.arg(draw, "y", y), g.arg(draw, "dy", dy)
    dW = g.arg(draw, "dW", dW0.copy(), out=True, allow=("C", "F", "readonly", "strided", "dtype"))
    db = (g.arg(draw, "db", db0.copy(), out=True, allow=("C", "readonly", "strided", "dtype"))
          if has_db else None)
    alias = draw(st.sampled_from([None, "x", "dy"]))
    if alias == "x" and isinstance(X, numpy.ndarray) and x.shape == dW0.shape and x.size:
        dW = X
        g.hazard("dW", g.MUST, "is x")
    elif alias == "dy" and isinstance(DY, numpy.ndarray) and has_db and m == 1 and n:
        db = DY[0]
        g.hazard("db", g.MUST, "overlaps dy")

    def call():
        r = dense.dense_backward(X, Wa, Y, DY, dW, db, act, alpha, need_dx)
        return (dW, db, r)
    return g.case(call, want, dt, scale)


def _act_case(draw, g, backward):
    dt = g.dtype(draw)
    shape = tuple(g.dim(draw) for _ in range(draw(st.integers(1, 3))))
    act = draw(st.sampled_from(ACTS))
    alpha = draw(st.sampled_from([0.0, 0.1, 1.0]))
    x = g.values(draw, shape, dt, lo=-6, hi=6)
    if not backward:
        want = act_ref(act, f64(x), alpha)
        X = g.arg(draw, "x", x, allow=NDIM_FREE)
        out = None
        form = draw(st.sampled_from(["none", "out", "same", "partial"]))
        if form == "out":
            out = g.arg(draw, "out", numpy.empty(shape, dt), out=True,
                        allow=("C", "readonly", "strided", "dtype"))
        elif form == "same" and isinstance(X, numpy.ndarray) and X.flags.writeable:
            out = X  # documented: in place
        elif form == "partial" and isinstance(X, numpy.ndarray) and X.size > 1:
            buf = numpy.empty(X.size + 1, dt)
            X = buf[1:].reshape(shape)
            X[...] = x
            out = buf[:-1].reshape(shape)
            g.hazard("out", g.MUST, "overlaps x by all but one element")
        return g.case(lambda: A.activation_forward(act, X, alpha, out=out), want, dt)
    y = act_ref(act, f64(x), alpha).astype(dt)
    dy = g.values(draw, shape, dt)
    want = act_grad_ref(act, f64(y), f64(dy), alpha)
    Y, DY = g.arg(draw, "y", y, allow=NDIM_FREE), g.arg(draw, "dy", dy, allow=NDIM_FREE)
    out = None
    form = draw(st.sampled_from(["none", "out", "dy"]))
    if form == "out":
        out = g.arg(draw, "out", numpy.empty(shape, dt), out=True,
                    allow=("C", "readonly", "strided", "dtype"))
    elif form == "dy" and isinstance(DY, numpy.ndarray) and DY.flags.writeable:
        out = DY
    scale = 1.0 + (numpy.abs(f64(dy)).sum(axis=-1, keepdims=True) if act == "softmax" else 0)
    return g.case(lambda: A.activation_backward(act, Y, DY, alpha, out=out), want, dt, scale)


def case_activation_forward(draw, g):
    return _act_case(draw, g, backward=False)


def case_activation_backward(draw, g):
    return _act_case(draw, g, backward=True)


def case_maxout(draw, g):
    dt = g.dtype(draw)
    n, units = g.dim(draw), g.dim(draw)
    pieces = draw(st.one_of(st.integers(1, 4), st.sampled_from([0, -1, 2**31 - 1, 2**31, 2**40])))
    cols = units * pieces if 1 <= pieces <= 4 else draw(st.integers(0, 6))
    # A few columns that do not split into groups.
    if draw(st.integers(0, 5)) == 0:
        cols += 1
    x = g.values(draw, (n, cols), dt, special=False)
    ok = 1 <= pieces < 2**31 and cols % pieces == 0
    if not ok:
        g.hazard("pieces", g.MUST, f"pieces={pieces} for {cols} columns")
        X = x
        want = None
    else:
        grp = f64(x).reshape(n, cols // pieces, pieces)
        want = (grp.max(axis=2), grp.argmax(axis=2).astype(numpy.int32))
        X = g.arg(draw, "x", x)
    return g.case(lambda: A.maxout_forward(X, pieces), want, dt)


def case_maxout_backward(draw, g):
    dt = g.dtype(draw)
    n, units, pieces = g.dim(draw), g.dim(draw), draw(st.integers(1, 4))
    dy = g.values(draw, (n, units), dt)
    idx = numpy.random.default_rng(draw(st.integers(0, 99))).integers(
        0, pieces, (n, units)).astype(numpy.int32)
    want = numpy.zeros((n, units, pieces))
    numpy.put_along_axis(want, idx[..., None].astype(numpy.int64), f64(dy)[..., None], axis=2)
    want = want.reshape(n, units * pieces)
    if idx.size and draw(st.integers(0, 5)) == 0:
        idx.reshape(-1)[draw(st.integers(0, idx.size - 1))] = draw(
            st.sampled_from([-1, pieces, 2**31 - 1]))
        g.hazard("idx", g.MUST, "out of range")
    DY = g.arg(draw, "dy", dy)
    I = g.arg(draw, "idx", idx, allow=("C", "strided", "reversed", "dtype", "list", "ndim"))
    return g.case(lambda: A.maxout_backward(DY, I, pieces), want, dt)


def case_softmax_cross_entropy(draw, g):
    """NumpyOps.softmax_cross_entropy (NumPy math, no kernel): integer labels or
    target distributions, against the definition -sum t log softmax(z)."""
    dt = g.dtype(draw)
    n, c = g.dim(draw), g.dim(draw, lo=1)
    c = max(c, 1)
    z = g.values(draw, (n, c), dt, lo=-30, hi=30, special=False)
    zz = f64(z)
    logp = zz - zz.max(axis=1, keepdims=True)
    logp = logp - numpy.log(numpy.exp(logp).sum(axis=1, keepdims=True))
    p = numpy.exp(logp)
    if draw(st.booleans()):
        labels = numpy.random.default_rng(draw(st.integers(0, 99))).integers(0, c, n)
        labels = labels.astype(draw(st.sampled_from([numpy.int32, numpy.int64, numpy.uint8])))
        t = numpy.zeros((n, c))
        t[numpy.arange(n), labels] = 1
        if n and draw(st.integers(0, 4)) == 0:
            labels[draw(st.integers(0, n - 1))] = draw(st.sampled_from([c, 255 if labels.dtype == numpy.uint8 else -1]))
            g.hazard("labels", g.MUST, "out of range")
    else:
        # Soft targets whose rows need not sum to 1 (label smoothing, weights).
        t = g.values(draw, (n, c), dt, lo=0, hi=1, special=False)
        labels, t = t, f64(t)
    loss = -(t * logp).sum(axis=1)
    # d/dz of -sum_j t_j log p_j = p * sum_j t_j - t, written out independently.
    grad = p * t.sum(axis=1, keepdims=True) - t
    ops = NumpyOps()
    return g.case(lambda: tuple(ops.softmax_cross_entropy(z, labels)), (loss, grad), dt,
                  (1 + numpy.abs(t).sum(1) * 30, 1.0))


CASES = [case_gemm, case_dense_forward, case_dense_backward, case_activation_forward,
         case_activation_backward, case_maxout, case_maxout_backward,
         case_softmax_cross_entropy]


@pytest.mark.parametrize("case_fn", CASES, ids=lambda f: f.__name__[5:])
def test_fuzz(case_fn, fuzz):
    fuzz(case_fn)
