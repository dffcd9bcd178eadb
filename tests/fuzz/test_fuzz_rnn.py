"""Fuzzing the recurrent kernels (fastnn._C.recurrent: the SimpleRNN, LSTM and
GRU step loops, forward and backward) with hostile shapes and operands (zero
sizes, wrong dtype/ndim, non-contiguous, read-only, lists, NaN), gradients
that are or overlap an input, mismatched weight shapes and bad masks. The
float64 reference is tests/kernels/test_recurrent.py's step-by-step loop
(loaded from there, never the Ops fallback); the backward is checked against
complex-step derivatives of it (exact to rounding, unlike finite differences).
The convolution, pooling, depthwise and batch-norm kernels' fuzzing is
test_fuzz_cnn.py; what both share, tests/_fuzz_helpers.py; machinery: conftest.py."""
import numpy
import pytest
from hypothesis import strategies as st

from _fuzz_helpers import NO_LONE_DTYPE, f64, load_kernel_test  # shared with test_fuzz_cnn.py
from fastnn._C import recurrent as RC

REF_RNN = load_kernel_test("test_recurrent")


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


CASES = [case_rnn_forward, case_rnn_backward]


@pytest.mark.parametrize("case_fn", CASES, ids=lambda f: f.__name__[5:])
def test_fuzz(case_fn, fuzz):
    fuzz(case_fn)
