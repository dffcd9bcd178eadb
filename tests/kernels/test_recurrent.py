"""csrc/recurrent.pyx: the SimpleRNN, LSTM and GRU (reset_after) cells over a
whole time-major sequence. Forward against a step-by-step NumPy reference
written here (every step's state, masks, initial states, recurrent dropout,
the GRU's recurrent bias; recurrent dropout with one mask for every gate and
with one per gate, as Keras draws them), float32 and float64, awkward shapes; backward
against central differences of that reference in float64 (the vector-Jacobian
product along random directions), float32 against float64; bad arguments
refused with clear errors before any pointer is touched."""
import numpy
import pytest
from hypothesis import given, settings, strategies as st

from fastnn._C import recurrent as K
from fastnn.testing import assert_close

G = {"simple": 1, "lstm": 4, "gru": 3}
ACT = {"linear": lambda v: v, "tanh": numpy.tanh, "relu": lambda v: numpy.maximum(v, 0),
       "sigmoid": lambda v: 1 / (1 + numpy.exp(-v))}


def reference(cell, xproj, R, h0, c0=None, mask=None, b_rec=None, rec_mask=None,
              act="tanh", ract="sigmoid", reset_after=True):
    """Keras's cells, step by step: (Y, H) with H[0] = h0, and C for the LSTM."""
    f, rf = ACT[act], ACT[ract]
    T, N, _ = xproj.shape
    U = R.shape[0]
    G = R.shape[1] // U if U else 1   # zero units: no gates to mask
    if rec_mask is not None and rec_mask.shape[1] == U:
        rec_mask = numpy.tile(rec_mask, (1, G))   # one mask for every gate

    def product(h):
        """h_{t-1} @ R, gate g's block reading h_{t-1} through its mask."""
        if rec_mask is None:
            return h @ R
        return numpy.concatenate([(h * rec_mask[:, g * U:(g + 1) * U]) @ R[:, g * U:(g + 1) * U]
                                  for g in range(G)], axis=1)
    H = [h0]
    C = [c0]
    Y = []
    y = numpy.zeros_like(h0)
    for t in range(T):
        h, c = H[-1], C[-1]
        x = xproj[t]
        c_new = None
        if cell == "simple":
            h_new = f(x + product(h))
        elif cell == "lstm":
            a = x + product(h)
            i, fg, g, o = rf(a[:, :U]), rf(a[:, U:2 * U]), f(a[:, 2 * U:3 * U]), rf(a[:, 3 * U:])
            c_new = fg * c + i * g
            h_new = o * f(c_new)
        elif not reset_after:
            # The first form: h_{t-1} (through the candidate's mask) reset
            # before the candidate's product.
            p = product(h)
            z = rf(x[:, :U] + p[:, :U])
            r = rf(x[:, U:2 * U] + p[:, U:2 * U])
            hm = h if rec_mask is None else h * rec_mask[:, 2 * U:]
            hh = f(x[:, 2 * U:] + (r * hm) @ R[:, 2 * U:])
            h_new = z * h + (1 - z) * hh
        else:
            inner = product(h) + (0 if b_rec is None else b_rec)
            z = rf(x[:, :U] + inner[:, :U])
            r = rf(x[:, U:2 * U] + inner[:, U:2 * U])
            hh = f(x[:, 2 * U:] + r * inner[:, 2 * U:])
            h_new = z * h + (1 - z) * hh   # the mix reads h_{t-1} itself (Keras)
        m = numpy.ones((N, 1), bool) if mask is None else mask[t][:, None]
        H.append(numpy.where(m, h_new, h))
        if cell == "lstm":
            C.append(numpy.where(m, c_new, c))
        y = numpy.where(m, h_new, y)
        Y.append(y)
    return numpy.stack(Y), numpy.stack(H), (numpy.stack(C) if cell == "lstm" else None)


def _inputs(rng, cell, T, N, U, dtype, masked=True, dropout=True, bias=True, per_gate=False):
    GU = G[cell] * U
    d = dict(xproj=rng.standard_normal((T, N, GU)), R=rng.standard_normal((U, GU)) * 0.6,
             h0=rng.standard_normal((N, U)))
    if cell == "lstm":
        d["c0"] = rng.standard_normal((N, U))
    if masked:
        d["mask"] = rng.random((T, N)) < 0.7
    if dropout:
        d["rec_mask"] = (rng.random((N, GU if per_gate else U)) < 0.8) / 0.8
    if bias and cell == "gru":
        d["b_rec"] = rng.standard_normal(GU)
    return {k: (v.astype(dtype) if v.dtype.kind == "f" else v) for k, v in d.items()}


SHAPES = [(1, 1, 1), (1, 3, 2), (5, 1, 3), (7, 4, 5), (3, 9, 17)]


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("cell", ["simple", "lstm", "gru"])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("variant", ["plain", "masked", "all", "per_gate"])
def test_forward_matches_the_step_by_step_reference(cell, shape, dtype, variant, rng):
    T, N, U = shape
    d = _inputs(rng, cell, T, N, U, dtype, masked=variant != "plain",
                dropout=variant in ("all", "per_gate"), bias=variant != "plain",
                per_gate=variant == "per_gate")
    Y, H, C, A, E = K.rnn_forward(cell, **d)
    d64 = {k: (v.astype(numpy.float64) if v.dtype.kind == "f" else v) for k, v in d.items()}
    rY, rH, rC = reference(cell, **d64)
    tol = 1e-4 if dtype == numpy.float32 else 1e-12
    assert_close(Y, rY.transpose(1, 0, 2).astype(dtype), tol=tol)
    assert_close(H, rH.astype(dtype), tol=tol)  # the state at every step
    if cell == "lstm":
        assert_close(C, rC.astype(dtype), tol=tol)
    else:
        assert C is None


@pytest.mark.parametrize("act,ract", [("relu", "sigmoid"), ("linear", "tanh"),
                                      ("sigmoid", "relu")])
@pytest.mark.parametrize("cell", ["simple", "lstm", "gru"])
def test_other_activations(cell, act, ract, rng):
    d = _inputs(rng, cell, 4, 3, 5, numpy.float64)
    Y, H, *_ = K.rnn_forward(cell, activation=act, recurrent_activation=ract, **d)
    rY, rH, _ = reference(cell, act=act, ract=ract, **d)
    assert_close(Y, rY.transpose(1, 0, 2))
    assert_close(H, rH)


def _loss_and_grads(cell, d, dY, dhT, dcT, act="tanh", ract="sigmoid", reset_after=True):
    """The kernel's gradients of L = sum(Y * dY) + sum(h_T * dhT) (+ sum(c_T * dcT))."""
    Y, H, C, A, E = K.rnn_forward(cell, activation=act, recurrent_activation=ract,
                                  reset_after=reset_after, **d)
    dR = numpy.zeros_like(d["R"])
    db = numpy.zeros_like(d["b_rec"]) if "b_rec" in d else None
    dY = numpy.ascontiguousarray(dY.transpose(1, 0, 2))  # the kernel's outputs are batch-major
    dX, dh0, dc0 = K.rnn_backward(cell, d["R"], H, C, A, E, dY, dhT, dcT, d.get("mask"),
                                  d.get("rec_mask"), dR, db, act, ract, reset_after)
    grads = {"xproj": dX, "R": dR, "h0": dh0}
    if cell == "lstm":
        grads["c0"] = dc0
    if db is not None:
        grads["b_rec"] = db
    return grads


def _ref_loss(cell, d, dY, dhT, dcT, act="tanh", ract="sigmoid", reset_after=True):
    Y, H, C = reference(cell, act=act, ract=ract, reset_after=reset_after, **d)
    loss = (Y * dY).sum() + (H[-1] * dhT).sum()
    if cell == "lstm":
        loss += (C[-1] * dcT).sum()
    return loss


@pytest.mark.parametrize("cell", ["simple", "lstm", "gru"])
@pytest.mark.parametrize("shape", [(1, 1, 1), (4, 3, 2), (6, 2, 5)])
@pytest.mark.parametrize("variant", ["plain", "masked", "all", "per_gate"])
def test_backward_matches_central_differences_of_the_reference(cell, shape, variant, rng):
    T, N, U = shape
    d = _inputs(rng, cell, T, N, U, numpy.float64, masked=variant != "plain",
                dropout=variant in ("all", "per_gate"), bias=variant != "plain",
                per_gate=variant == "per_gate")
    dY = rng.standard_normal((T, N, U))
    dhT = rng.standard_normal((N, U))
    dcT = rng.standard_normal((N, U)) if cell == "lstm" else None
    grads = _loss_and_grads(cell, d, dY, dhT, dcT)
    eps = 1e-6
    for name, g in grads.items():
        for _ in range(2):
            v = rng.standard_normal(d[name].shape)
            plus, minus = dict(d), dict(d)
            plus[name], minus[name] = d[name] + eps * v, d[name] - eps * v
            numeric = (_ref_loss(cell, plus, dY, dhT, dcT)
                       - _ref_loss(cell, minus, dY, dhT, dcT)) / (2 * eps)
            assert abs(numeric - (g * v).sum()) <= 1e-6 * max(1.0, abs(numeric)), name


@pytest.mark.parametrize("cell", ["simple", "lstm", "gru"])
def test_float32_backward_agrees_with_float64(cell, rng):
    d64 = _inputs(rng, cell, 6, 5, 7, numpy.float64, per_gate=True)
    d32 = {k: (v.astype(numpy.float32) if v.dtype.kind == "f" else v) for k, v in d64.items()}
    dY = rng.standard_normal((6, 5, 7))
    dhT = rng.standard_normal((5, 7))
    dcT = rng.standard_normal((5, 7)) if cell == "lstm" else None
    g64 = _loss_and_grads(cell, d64, dY, dhT, dcT)
    g32 = _loss_and_grads(cell, d32, dY.astype(numpy.float32), dhT.astype(numpy.float32),
                          None if dcT is None else dcT.astype(numpy.float32))
    for name in g64:
        assert_close(g32[name], g64[name].astype(numpy.float32), tol=2e-4)


def test_fully_masked_steps_pass_gradients_through(rng):
    d = _inputs(rng, "lstm", 3, 2, 3, numpy.float64, masked=False, dropout=False)
    d["mask"] = numpy.zeros((3, 2), bool)
    Y, H, C, A, E = K.rnn_forward("lstm", **d)
    numpy.testing.assert_array_equal(Y, 0)
    numpy.testing.assert_array_equal(H[-1], d["h0"])
    dY = rng.standard_normal((3, 2, 3))
    dhT, dcT = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    dX, dh0, dc0 = K.rnn_backward("lstm", d["R"], H, C, A, E, dY.transpose(1, 0, 2), dhT, dcT,
                                  d["mask"])
    numpy.testing.assert_array_equal(dX, 0)
    numpy.testing.assert_array_equal(dh0, dhT)
    numpy.testing.assert_array_equal(dc0, dcT)


def test_read_only_inputs_are_read_in_place(rng):
    d = _inputs(rng, "gru", 3, 2, 4, numpy.float32)
    for v in d.values():
        v.setflags(write=False)
    Y, H, C, A, E = K.rnn_forward("gru", **d)
    dY = rng.standard_normal((2, 3, 4)).astype(numpy.float32)
    dY.setflags(write=False)
    K.rnn_backward("gru", d["R"], H, C, A, E, dY, mask=d["mask"], rec_mask=d["rec_mask"])


def test_bad_arguments_are_clear_errors(rng):
    d = _inputs(rng, "lstm", 3, 2, 4, numpy.float32, masked=False, dropout=False)
    with pytest.raises(ValueError, match="unknown cell 'rnn'"):
        K.rnn_forward("rnn", **d)
    with pytest.raises(ValueError, match=r"needs R \(4, 16\) and xproj \(T, N, 16\)"):
        K.rnn_forward("lstm", d["xproj"][..., :12], d["R"], d["h0"], d["c0"])
    with pytest.raises(ValueError, match=r"h0 has shape \(3, 4\); expected \(2, 4\)"):
        K.rnn_forward("lstm", d["xproj"], d["R"], numpy.zeros((3, 4), numpy.float32), d["c0"])
    with pytest.raises(ValueError, match="needs c0"):
        K.rnn_forward("lstm", d["xproj"], d["R"], d["h0"])
    with pytest.raises(TypeError, match="R has dtype float64 but xproj has float32"):
        K.rnn_forward("lstm", d["xproj"], d["R"].astype(numpy.float64), d["h0"], d["c0"])
    with pytest.raises(ValueError, match=r"mask has shape \(2, 3\); expected \(3, 2\)"):
        K.rnn_forward("lstm", mask=numpy.ones((2, 3), bool), **d)
    with pytest.raises(ValueError, match="unknown activation 'softmax'"):
        K.rnn_forward("lstm", activation="softmax", **d)
    with pytest.raises(ValueError, match=r"rec_mask has shape \(2, 8\); expected \(2, 4\) "
                                         r"\(one mask for every gate\) or \(2, 16\)"):
        K.rnn_forward("lstm", rec_mask=numpy.ones((2, 8), numpy.float32), **d)
    with pytest.raises(ValueError, match="b_rec is the reset_after GRU's"):
        K.rnn_forward("lstm", b_rec=numpy.zeros(16, numpy.float32), **d)
    Y, H, C, A, E = K.rnn_forward("lstm", **d)
    dY = numpy.ones((2, 3, 4), numpy.float32)
    with pytest.raises(ValueError, match=r"dR has shape \(4, 12\); expected \(4, 16\)"):
        K.rnn_backward("lstm", d["R"], H, C, A, E, dY, dR=numpy.zeros((4, 12), numpy.float32))
    ro = numpy.zeros((4, 16), numpy.float32)
    ro.setflags(write=False)
    with pytest.raises(ValueError, match="dR is read-only"):
        K.rnn_backward("lstm", d["R"], H, C, A, E, dY, dR=ro)
    with pytest.raises(ValueError, match=r"H has shape \(3, 2, 4\); expected \(4, 2, 4\)"):
        K.rnn_backward("lstm", d["R"], H[1:], C, A, E, dY)
    with pytest.raises(ValueError, match=r"dY has shape \(2, 3, 5\)"):
        K.rnn_backward("lstm", d["R"], H, C, A, E, numpy.ones((2, 3, 5), numpy.float32))


@settings(max_examples=40, deadline=None)
@given(cell=st.sampled_from(["simple", "lstm", "gru"]), T=st.integers(1, 6),
       N=st.integers(1, 5), U=st.integers(1, 6), masked=st.booleans(),
       dtype=st.sampled_from([numpy.float32, numpy.float64]), seed=st.integers(0, 2 ** 31),
       bad=st.sampled_from([None, "nan", "strided"]))
def test_property_equals_reference_or_raises_clearly(cell, T, N, U, masked, dtype, seed, bad):
    rng = numpy.random.default_rng(seed)
    d = _inputs(rng, cell, T, N, U, dtype, masked=masked, dropout=False, bias=False)
    if bad == "nan":
        d["xproj"][0, 0, 0] = numpy.nan
    elif bad == "strided":
        d["xproj"] = numpy.repeat(d["xproj"], 2, axis=2)[..., ::2]
    Y, H, *_ = K.rnn_forward(cell, **d)
    Y = Y.transpose(1, 0, 2)
    d64 = {k: (v.astype(numpy.float64) if v.dtype.kind == "f" else v) for k, v in d.items()}
    rY, rH, _ = reference(cell, **d64)
    tol = 1e-4 if dtype == numpy.float32 else 1e-12
    numpy.testing.assert_array_equal(numpy.isnan(Y), numpy.isnan(rY))
    ok = ~numpy.isnan(rY)
    assert numpy.all(numpy.abs(Y[ok] - rY[ok]) <= tol * numpy.maximum(numpy.abs(rY[ok]), 1))


@pytest.mark.parametrize("cell", ["simple", "lstm", "gru"])
@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
def test_overwriting_the_input_projection_gives_the_same_results(cell, dtype, rng):
    d = _inputs(rng, cell, 5, 3, 4, dtype)
    want = K.rnn_forward(cell, **d)
    given = dict(d, xproj=d["xproj"].copy())
    got = K.rnn_forward(cell, overwrite_xproj=True, **given)
    assert got[3] is given["xproj"]  # the gates took its memory
    for a, b in zip(got, want):
        if b is not None:
            numpy.testing.assert_array_equal(a, b)
    ro = d["xproj"].copy()
    ro.setflags(write=False)
    assert K.rnn_forward(cell, overwrite_xproj=True, **dict(d, xproj=ro))[3] is not ro


@pytest.mark.parametrize("cell", ["simple", "lstm", "gru"])
def test_results_do_not_depend_on_the_thread_count(cell, rng):
    from fastnn import threads
    # Large enough rows for the policy to go parallel; each row is one thread's.
    N, U = 256, 160
    d = _inputs(rng, cell, 3, N, U, numpy.float32, per_gate=True)
    dY = rng.standard_normal((N, 3, U)).astype(numpy.float32)
    runs = []
    saved = threads.get_num_threads()
    try:
        for n in (1, 3):
            threads.set_num_threads(n, adapt=False)
            assert (K._threads_for(N * G[cell] * U * 8.0) > 1) == (n > 1)
            Y, H, C, A, E = K.rnn_forward(cell, **d)
            dR = numpy.zeros_like(d["R"])
            dX, dh0, _ = K.rnn_backward(cell, d["R"], H, C, A, E, dY, mask=d["mask"],
                                        rec_mask=d["rec_mask"], dR=dR)
            runs.append((Y, H, dX, dh0))
    finally:
        threads.set_num_threads(saved)
    for a, b in zip(*runs):
        numpy.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("cell", ["simple", "lstm", "gru"])
@pytest.mark.parametrize("act,ract", [("relu", "sigmoid"), ("linear", "tanh"),
                                      ("sigmoid", "relu"), ("tanh", "linear")])
def test_backward_with_other_activations_matches_central_differences(cell, act, ract, rng):
    d = _inputs(rng, cell, 4, 3, 5, numpy.float64)
    dY = rng.standard_normal((4, 3, 5))
    dhT = rng.standard_normal((3, 5))
    dcT = rng.standard_normal((3, 5)) if cell == "lstm" else None
    grads = _loss_and_grads(cell, d, dY, dhT, dcT, act, ract)
    eps = 1e-6
    for name, g in grads.items():
        v = rng.standard_normal(d[name].shape)
        plus, minus = dict(d), dict(d)
        plus[name], minus[name] = d[name] + eps * v, d[name] - eps * v
        numeric = (_ref_loss(cell, plus, dY, dhT, dcT, act, ract)
                   - _ref_loss(cell, minus, dY, dhT, dcT, act, ract)) / (2 * eps)
        assert abs(numeric - (g * v).sum()) <= 1e-5 * max(1.0, abs(numeric)), name


# ------------------------------------------ the GRU's first form (reset_after=False)
@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("variant", ["plain", "masked", "all", "per_gate"])
def test_first_form_gru_matches_the_step_by_step_reference(shape, dtype, variant, rng):
    T, N, U = shape
    d = _inputs(rng, "gru", T, N, U, dtype, masked=variant != "plain",
                dropout=variant in ("all", "per_gate"), bias=False,
                per_gate=variant == "per_gate")
    Y, H, C, A, E = K.rnn_forward("gru", reset_after=False, **d)
    d64 = {k: (v.astype(numpy.float64) if v.dtype.kind == "f" else v) for k, v in d.items()}
    rY, rH, _ = reference("gru", reset_after=False, **d64)
    tol = 1e-4 if dtype == numpy.float32 else 1e-12
    assert_close(Y, rY.transpose(1, 0, 2).astype(dtype), tol=tol)
    assert_close(H, rH.astype(dtype), tol=tol)
    # Not the reset_after cell on the same weights.
    if U > 1 or T > 1:
        other, *_ = K.rnn_forward("gru", **d)
        assert not numpy.allclose(other, Y)


@pytest.mark.parametrize("shape", [(1, 1, 1), (4, 3, 2), (6, 2, 5)])
@pytest.mark.parametrize("variant", ["plain", "masked", "all", "per_gate"])
@pytest.mark.parametrize("act,ract", [("tanh", "sigmoid"), ("relu", "tanh")])
def test_first_form_gru_backward_matches_central_differences(shape, variant, act, ract, rng):
    T, N, U = shape
    d = _inputs(rng, "gru", T, N, U, numpy.float64, masked=variant != "plain",
                dropout=variant in ("all", "per_gate"), bias=False,
                per_gate=variant == "per_gate")
    dY = rng.standard_normal((T, N, U))
    dhT = rng.standard_normal((N, U))
    grads = _loss_and_grads("gru", d, dY, dhT, None, act, ract, reset_after=False)
    eps = 1e-6
    for name, g in grads.items():
        for _ in range(2):
            v = rng.standard_normal(d[name].shape)
            plus, minus = dict(d), dict(d)
            plus[name], minus[name] = d[name] + eps * v, d[name] - eps * v
            numeric = (_ref_loss("gru", plus, dY, dhT, None, act, ract, False)
                       - _ref_loss("gru", minus, dY, dhT, None, act, ract, False)) / (2 * eps)
            assert abs(numeric - (g * v).sum()) <= 1e-6 * max(1.0, abs(numeric)), name


def test_first_form_gru_float32_and_overwritten_projection(rng):
    d64 = _inputs(rng, "gru", 6, 5, 7, numpy.float64, bias=False, per_gate=True)
    d32 = {k: (v.astype(numpy.float32) if v.dtype.kind == "f" else v) for k, v in d64.items()}
    dY = rng.standard_normal((6, 5, 7))
    dhT = rng.standard_normal((5, 7))
    g64 = _loss_and_grads("gru", d64, dY, dhT, None, reset_after=False)
    g32 = _loss_and_grads("gru", d32, dY.astype(numpy.float32), dhT.astype(numpy.float32),
                          None, reset_after=False)
    for name in g64:
        assert_close(g32[name], g64[name].astype(numpy.float32), tol=2e-4)
    want = K.rnn_forward("gru", reset_after=False, **d32)
    given = dict(d32, xproj=d32["xproj"].copy())
    got = K.rnn_forward("gru", reset_after=False, overwrite_xproj=True, **given)
    assert got[3] is given["xproj"]
    for a, b in zip(got, want):
        if b is not None:
            numpy.testing.assert_array_equal(a, b)


def test_first_form_gru_takes_no_recurrent_bias(rng):
    d = _inputs(rng, "gru", 3, 2, 4, numpy.float32)
    with pytest.raises(ValueError, match=r"b_rec is the reset_after GRU's; cell 'gru' "
                                         r"\(reset_after=False\) takes None"):
        K.rnn_forward("gru", reset_after=False, **d)


def test_first_form_gru_does_not_depend_on_the_thread_count(rng):
    from fastnn import threads
    N, U = 256, 160
    d = _inputs(rng, "gru", 3, N, U, numpy.float32, bias=False, per_gate=True)
    dY = rng.standard_normal((N, 3, U)).astype(numpy.float32)
    runs = []
    saved = threads.get_num_threads()
    try:
        for n in (1, 3):
            threads.set_num_threads(n, adapt=False)
            Y, H, C, A, E = K.rnn_forward("gru", reset_after=False, **d)
            dR = numpy.zeros_like(d["R"])
            dX, dh0, _ = K.rnn_backward("gru", d["R"], H, C, A, E, dY, mask=d["mask"],
                                        rec_mask=d["rec_mask"], dR=dR, reset_after=False)
            runs.append((Y, H, dX, dh0, dR))
    finally:
        threads.set_num_threads(saved)
    for a, b in zip(*runs):
        numpy.testing.assert_array_equal(a, b)
