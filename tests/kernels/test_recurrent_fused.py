"""csrc/recurrent_gemm.h: the cells' own small GEMM (R packed once per call,
a register-blocked microkernel, gate passes fused, one thread team per
sequence) behind csrc/recurrent.pyx's "fused" path. The microkernel against
NumPy's matmul at the edges of its 6 x 16 (float64: 6 x 8) tile; the whole
cells against the step-by-step NumPy reference of test_recurrent.py (its tests
run again here with each path forced, on awkward sizes: units 1, 3, 17, 33,
130, batch 1 and 5, one step), central differences in float64, thread-count
independence, the layers (go_backwards, masks, gradient checks) on both paths."""
import importlib.util
import os

import numpy
import pytest

from fastnn import layers as L
from fastnn._C import recurrent as K
from fastnn.testing import assert_close, run_layer_test


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


T_REC = _load("_fused_test_recurrent", os.path.join(os.path.dirname(__file__),
                                                     "test_recurrent.py"))
G = T_REC.G
reference, _inputs, _loss_and_grads, _ref_loss = (T_REC.reference, T_REC._inputs,
                                                  T_REC._loss_and_grads, T_REC._ref_loss)


@pytest.fixture(params=["fused", "blas"])
def path(request):
    old = K.set_recurrence_path(request.param)
    yield request.param
    K.set_recurrence_path(old)


# ------------------------------------------------------------------ microkernel
@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("M", [1, 5, 6, 7, 13])
@pytest.mark.parametrize("Kd", [1, 3, 17, 64])
@pytest.mark.parametrize("W", [1, 7, 8, 9, 15, 16, 17, 33])
@pytest.mark.parametrize("add", [False, True])
def test_small_gemm_matches_numpy_at_the_tile_edges(dtype, M, Kd, W, add, rng):
    a = rng.standard_normal((M, Kd)).astype(dtype)
    b = rng.standard_normal((Kd, W)).astype(dtype)
    c0 = rng.standard_normal((M, W)).astype(dtype)
    out = c0.copy()
    got = K.small_gemm(a, b, out=out, add=add)
    assert got is out
    # The reference, written here: float64 products summed in order.
    want = numpy.zeros((M, W))
    for k in range(Kd):
        want += numpy.outer(a[:, k].astype(numpy.float64), b[k].astype(numpy.float64))
    if add:
        want += c0
    tol = 1e-5 if dtype == numpy.float32 else 1e-13
    assert_close(got, want.astype(dtype), tol=tol)


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
def test_prepacked_small_gemm_matches_numpy(dtype, rng):
    a = rng.standard_normal((13, 33)).astype(dtype)
    b = rng.standard_normal((33, 17)).astype(dtype)
    packed = K.pack_panels(b)
    out = numpy.full((13, 17), numpy.nan, dtype)
    assert K.small_gemm_packed(a, packed, 17, out) is out
    assert_close(out, (a.astype(numpy.float64) @ b).astype(dtype),
                 tol=1e-5 if dtype == numpy.float32 else 1e-13)
    with pytest.raises(ValueError, match="small_gemm_packed: a"):
        K.small_gemm_packed(a, packed, 16, out)       # packed for another width
    with pytest.raises(ValueError, match="small_gemm_packed: a"):
        K.small_gemm_packed(a[:, :32], packed, 17, out)


def test_small_gemm_strided_and_empty_operands(rng):
    a = rng.standard_normal((9, 20))[:, ::2]   # not contiguous: copied
    b = rng.standard_normal((10, 19))
    assert_close(K.small_gemm(a, b), a @ b, tol=1e-13)
    assert K.small_gemm(a[:0], b).shape == (0, 19)
    z = K.small_gemm(numpy.ones((3, 0)), numpy.ones((0, 4)), out=numpy.full((3, 4), 7.0))
    numpy.testing.assert_array_equal(z, 0)


def test_small_gemm_bad_arguments_are_clear_errors(rng):
    a = rng.standard_normal((4, 3))
    with pytest.raises(ValueError, match=r"small_gemm: a has shape \(4, 3\), b \(4, 5\)"):
        K.small_gemm(a, rng.standard_normal((4, 5)))
    with pytest.raises(ValueError, match=r"out has shape \(4, 4\); expected \(4, 5\)"):
        K.small_gemm(a, rng.standard_normal((3, 5)), out=numpy.empty((4, 4)))
    with pytest.raises((TypeError, ValueError)):
        K.small_gemm(a, rng.standard_normal((3, 5)).astype(numpy.float32))
    with pytest.raises(ValueError):
        K.small_gemm(a.ravel(), rng.standard_normal((3, 5)))
    out = numpy.empty((4, 5))
    with pytest.raises(ValueError):
        K.small_gemm(out.reshape(-1)[:12].reshape(4, 3), rng.standard_normal((3, 5)),
                     out=out)  # a aliases out


def test_the_path_setting_is_checked_and_restored():
    old = K.set_recurrence_path("blas")
    try:
        assert K.set_recurrence_path("fused") == "blas"
        with pytest.raises(ValueError, match="path 'fast'"):
            K.set_recurrence_path("fast")
    finally:
        K.set_recurrence_path(old)


def test_auto_takes_the_fused_path_for_small_kernels_only():
    # LSTM float32: R packed is 4 * U * U * 4 bytes.
    big_u = int((K.FUSED_MAX_R_BYTES / 16) ** 0.5) + 1
    old = K.set_recurrence_path("auto")
    try:
        assert K.path_for("lstm", 128, numpy.float32) == "fused"
        assert K.path_for("lstm", big_u - 1, numpy.float32) == "fused"
        assert K.path_for("lstm", big_u, numpy.float32) == "blas"
        assert K.path_for("simple", K.FUSED_MAX_UNITS, numpy.float32) == "fused"
        assert K.path_for("simple", K.FUSED_MAX_UNITS + 1, numpy.float32) == "blas"
        assert K.path_for("lstm", 200, numpy.float64) == "blas"   # 4 * 200^2 * 8 > 1 MB
        assert K.path_for("lstm", 128, numpy.float32, rec_dropout=True) == "blas"
        assert K.path_for("gru", 4, numpy.float64, reset_after=False) == "blas"
        K.set_recurrence_path("fused")
        assert K.path_for("lstm", 4 * big_u, numpy.float64) == "fused"
        assert K.path_for("gru", 4, numpy.float64, reset_after=False) == "blas"
        K.set_recurrence_path("blas")
        assert K.path_for("lstm", 4, numpy.float32) == "blas"
    finally:
        K.set_recurrence_path(old)


# ----------------------------------------------------- the cells on either path
SHAPES = [(1, 1, 1), (1, 5, 3), (3, 1, 17), (4, 5, 33), (2, 5, 130), (3, 7, 16)]


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("cell", ["simple", "lstm", "gru"])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("variant", ["plain", "masked", "bias", "inplace"])
def test_forward_matches_the_reference_on_both_paths(cell, shape, dtype, variant, path, rng):
    T, N, U = shape
    d = _inputs(rng, cell, T, N, U, dtype, masked=variant in ("masked", "inplace"),
                dropout=False, bias=variant in ("bias", "inplace"))
    d64 = {k: (v.astype(numpy.float64) if v.dtype.kind == "f" else v) for k, v in d.items()}
    rY, rH, rC = reference(cell, **d64)
    Y, H, C, A, E = K.rnn_forward(cell, overwrite_xproj=variant == "inplace", **d)
    # float32 sums of U terms: the rounding grows with U (the BLAS path's alike).
    tol = (1e-4 if U <= 17 else 5e-4) if dtype == numpy.float32 else 1e-12
    assert_close(Y, rY.transpose(1, 0, 2).astype(dtype), tol=tol)
    assert_close(H, rH.astype(dtype), tol=tol)
    if cell == "lstm":
        assert_close(C, rC.astype(dtype), tol=tol)


@pytest.mark.parametrize("cell", ["simple", "lstm", "gru"])
@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 5, 3), (2, 1, 17), (2, 5, 33)])
@pytest.mark.parametrize("masked", [False, True])
def test_backward_matches_central_differences_on_both_paths(cell, shape, masked, path, rng):
    T, N, U = shape
    d = _inputs(rng, cell, T, N, U, numpy.float64, masked=masked, dropout=False)
    dY = rng.standard_normal((T, N, U))
    dhT = rng.standard_normal((N, U))
    dcT = rng.standard_normal((N, U)) if cell == "lstm" else None
    grads = _loss_and_grads(cell, d, dY, dhT, dcT)
    eps = 1e-6
    for name, g in grads.items():
        v = rng.standard_normal(d[name].shape)
        plus, minus = dict(d), dict(d)
        plus[name], minus[name] = d[name] + eps * v, d[name] - eps * v
        numeric = (_ref_loss(cell, plus, dY, dhT, dcT) - _ref_loss(cell, minus, dY, dhT, dcT)) \
            / (2 * eps)
        assert abs(numeric - (g * v).sum()) <= 1e-6 * max(1.0, abs(numeric)), name


@pytest.mark.parametrize("cell", ["simple", "lstm", "gru"])
@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
def test_the_paths_agree_forward_and_backward(cell, dtype, rng):
    d = _inputs(rng, cell, 6, 5, 130, dtype, dropout=False)
    dY = rng.standard_normal((5, 6, 130)).astype(dtype)
    runs = []
    for p in ("fused", "blas"):
        old = K.set_recurrence_path(p)
        try:
            Y, H, C, A, E = K.rnn_forward(cell, **d)
            dR = numpy.zeros_like(d["R"])
            db = numpy.zeros_like(d["b_rec"]) if "b_rec" in d else None
            dX, dh0, dc0 = K.rnn_backward(cell, d["R"], H, C, A, E, dY, mask=d["mask"], dR=dR,
                                          db_rec=db)
            runs.append([Y, H, dX, dh0, dR] + ([db] if db is not None else [])
                        + ([C, dc0] if cell == "lstm" else []))
        finally:
            K.set_recurrence_path(old)
    tol = 2e-4 if dtype == numpy.float32 else 1e-11
    for a, b in zip(*runs):
        assert_close(a, b, tol=tol)


@pytest.mark.parametrize("cell", ["simple", "lstm", "gru"])
@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("N", [64, 5])
def test_fused_results_do_not_depend_on_the_thread_count(cell, dtype, N, rng):
    from fastnn import threads
    # U = 130: 9 panels of 16 (float64: 17 of 8), the last one partial, split
    # unevenly between 2 and 3 threads. N = 64: the forward splits the samples
    # (11 row blocks, 5 + 6 and 3 + 4 + 4); N = 5, one block: it splits the
    # units (U = 250, 16 panels, so that the work still takes two threads).
    U = 250 if N == 5 else 130
    d = _inputs(rng, cell, 4, N, U, dtype, dropout=False)
    dY = rng.standard_normal((N, 4, U)).astype(dtype)
    runs = []
    saved = threads.get_num_threads()
    old = K.set_recurrence_path("fused")
    try:
        for n in (1, 2, 3):
            threads.set_num_threads(n, adapt=False)
            assert (K._threads_for(N * G[cell] * U * U) > 1) == (n > 1)
            Y, H, C, A, E = K.rnn_forward(cell, **d)
            dR = numpy.zeros_like(d["R"])
            db = numpy.zeros_like(d["b_rec"]) if "b_rec" in d else None
            dX, dh0, dc0 = K.rnn_backward(cell, d["R"], H, C, A, E, dY, mask=d["mask"], dR=dR,
                                          db_rec=db)
            runs.append([Y, H, A, dX, dh0, dR] + ([C, dc0] if cell == "lstm" else []))
    finally:
        threads.set_num_threads(saved)
        K.set_recurrence_path(old)
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            numpy.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("cell", ["simple", "lstm", "gru"])
def test_the_split_by_samples_without_weight_gradients(cell, rng):
    # No dR, no input side: the backward split by samples skips its weight
    # phase (and that barrier); dX and dh0 still match one thread's bits.
    from fastnn import threads
    d = _inputs(rng, cell, 3, 64, 130, numpy.float32, dropout=False)
    dY = rng.standard_normal((64, 3, 130)).astype(numpy.float32)
    runs = []
    saved = threads.get_num_threads()
    old = K.set_recurrence_path("fused")
    try:
        for n in (1, 2):
            threads.set_num_threads(n, adapt=False)
            Y, H, C, A, E = K.rnn_forward(cell, **d)
            runs.append(K.rnn_backward(cell, d["R"], H, C, A, E, dY, mask=d["mask"])[:2])
    finally:
        threads.set_num_threads(saved)
        K.set_recurrence_path(old)
    for a, b in zip(*runs):
        numpy.testing.assert_array_equal(a, b)


def test_fully_masked_steps_pass_gradients_through_on_the_fused_path(rng):
    old = K.set_recurrence_path("fused")
    try:
        T_REC.test_fully_masked_steps_pass_gradients_through(rng)
        T_REC.test_overwriting_the_input_projection_gives_the_same_results(
            "gru", numpy.float64, rng)
    finally:
        K.set_recurrence_path(old)


# ------------------------------------------------------------------ the layers
def _lengths_mask(rng, n, steps):
    lengths = rng.integers(1, steps + 1, n)
    return numpy.arange(steps)[None, :] < lengths[:, None]


@pytest.mark.parametrize("kind", ["SimpleRNN", "LSTM", "GRU"])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_layers_gradcheck_on_both_paths(kind, go_backwards, path, rng):
    n, steps, units = 5, 4, 17
    mask = _lengths_mask(rng, n, steps)
    shapes = [(n, steps, units)] + [(n, units)] * (2 if kind == "LSTM" else 1)
    run_layer_test(lambda dt: getattr(L, kind)(units, dtype=dt, return_sequences=True,
                                               return_state=True, go_backwards=go_backwards),
                   (n, steps, 3), shapes, rng, call_kwargs={"mask": mask})


@pytest.mark.parametrize("kind", ["SimpleRNN", "LSTM", "GRU"])
def test_layers_give_the_same_results_on_both_paths(kind, rng):
    layer = getattr(L, kind)(33, return_sequences=True, go_backwards=True)
    x = rng.standard_normal((5, 6, 7)).astype("float32")
    mask = _lengths_mask(rng, 5, 6)
    layer(x)
    dy = rng.standard_normal((5, 6, 33)).astype("float32")
    outs = []
    for p in ("fused", "blas"):
        old = K.set_recurrence_path(p)
        try:
            for g in layer.grads.values():
                g[...] = 0
            y, back = layer.forward(x, training=True, mask=mask)
            dx = back(dy)
            outs.append([y, dx] + [g.copy() for g in layer.grads.values()])
        finally:
            K.set_recurrence_path(old)
    for a, b in zip(*outs):
        assert_close(a, b, tol=2e-4)



# ------------------------------------- the input projection's gradients (W mode)
def _input_case(rng, cell, T, N, F, U, dtype, masked=True, dropout=False):
    """x (T, N, F), W (F, G*U), b_in, and the cell's inputs with xproj = x @ W + b_in."""
    GU = G[cell] * U
    x = rng.standard_normal((T, N, F))
    W = rng.standard_normal((F, GU)) / numpy.sqrt(max(F, 1))
    b = rng.standard_normal(GU) * 0.1
    d = _inputs(rng, cell, T, N, U, numpy.float64, masked=masked, dropout=dropout)
    d["xproj"] = x @ W + b
    cast = {k: (v.astype(dtype) if v.dtype.kind == "f" else v) for k, v in d.items()}
    return x.astype(dtype), W.astype(dtype), b.astype(dtype), cast


def _input_grads(cell, d, x, W, dY, need_dx=True):
    """rnn_backward in W mode: (dx, dW, db_in, dR, dh0) accumulated into ones."""
    Y, H, C, A, E = K.rnn_forward(cell, **d)
    dR = numpy.zeros_like(d["R"])
    dW = numpy.ones_like(W)
    db = numpy.ones(W.shape[1], W.dtype)
    dx, dh0, _ = K.rnn_backward(cell, d["R"], H, C, A, E, dY, mask=d.get("mask"),
                                rec_mask=d.get("rec_mask"), dR=dR, x=x, W=W, dW=dW,
                                db_in=db, need_dx=need_dx)
    return dx, dW - 1, db - 1, dR, dh0


@pytest.mark.parametrize("cell", ["simple", "lstm", "gru"])
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (3, 5, 3, 17), (2, 7, 20, 33),
                                   (4, 13, 6, 16), (2, 3, 1, 5)])
@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
def test_input_side_gradients_match_numpy_products_on_both_paths(cell, shape, dtype, path,
                                                                 rng):
    # The products written here in NumPy, over the plain call's dxproj (which
    # the tests above check against the reference and central differences).
    T, N, F, U = shape
    x, W, b, d = _input_case(rng, cell, T, N, F, U, dtype)
    dY = rng.standard_normal((N, T, U)).astype(dtype)
    Y, H, C, A, E = K.rnn_forward(cell, **d)
    dR0 = numpy.zeros_like(d["R"])
    dX, dh0_0, _ = K.rnn_backward(cell, d["R"], H, C, A, E, dY, mask=d["mask"], dR=dR0)
    dx, dW, db, dR, dh0 = _input_grads(cell, d, x, W, dY)
    z = dX.reshape(T * N, -1).astype(numpy.float64)
    x64 = x.reshape(T * N, F).astype(numpy.float64)
    tol = 2e-4 if dtype == numpy.float32 else 1e-11
    assert dx.shape == (T, N, F) and dx.dtype == dtype
    assert_close(dx.reshape(T * N, F), (z @ W.T.astype(numpy.float64)).astype(dtype), tol=tol)
    assert_close(dW, (x64.T @ z).astype(dtype), tol=tol)
    assert_close(db, z.sum(axis=0).astype(dtype), tol=tol)
    # ... and what the plain call gives is unchanged.
    assert_close(dR, dR0, tol=tol)
    assert_close(dh0, dh0_0, tol=tol)


@pytest.mark.parametrize("cell", ["simple", "lstm", "gru"])
@pytest.mark.parametrize("masked", [False, True])
def test_input_side_gradients_match_central_differences(cell, masked, path, rng):
    # L = sum(Y * dY) of the reference cell fed xproj = x @ W + b, in float64.
    T, N, F, U = 3, 4, 5, 7
    x, W, b, d = _input_case(rng, cell, T, N, F, U, numpy.float64, masked=masked)
    dY = rng.standard_normal((T, N, U))
    dx, dW, db, _, _ = _input_grads(cell, d, x, W, numpy.ascontiguousarray(dY.transpose(1, 0, 2)))

    def loss(x, W, b):
        dd = dict(d, xproj=x @ W + b)
        Y, _, _ = reference(cell, **dd)
        return (Y * dY).sum()

    eps = 1e-6
    for name, value, grad in (("x", x, dx), ("W", W, dW), ("b", b, db)):
        v = rng.standard_normal(value.shape)
        args = {"x": x, "W": W, "b": b}
        plus = dict(args, **{name: value + eps * v})
        minus = dict(args, **{name: value - eps * v})
        numeric = (loss(**plus) - loss(**minus)) / (2 * eps)
        assert abs(numeric - (grad * v).sum()) <= 1e-6 * max(1.0, abs(numeric)), name


@pytest.mark.parametrize("cell", ["simple", "lstm", "gru"])
def test_input_side_with_recurrent_dropout_takes_the_blas_path_alike(cell, rng):
    x, W, b, d = _input_case(rng, cell, 3, 5, 4, 6, numpy.float64, dropout=True)
    dY = rng.standard_normal((5, 3, 6))
    Y, H, C, A, E = K.rnn_forward(cell, **d)
    dX, _, _ = K.rnn_backward(cell, d["R"], H, C, A, E, dY, mask=d["mask"],
                              rec_mask=d["rec_mask"])
    dx, dW, db, _, _ = _input_grads(cell, d, x, W, dY)
    z = dX.reshape(15, -1)
    assert_close(dx.reshape(15, 4), z @ W.T, tol=1e-11)
    assert_close(dW, x.reshape(15, 4).T @ z, tol=1e-11)
    assert_close(db, z.sum(axis=0), tol=1e-11)


@pytest.mark.parametrize("cell", ["simple", "lstm", "gru"])
@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
def test_input_side_does_not_depend_on_the_thread_count(cell, dtype, rng):
    from fastnn import threads
    # 64 rows in 11 blocks of 6, split unevenly between 2 and 3 threads; F = 21
    # is a whole and a partial panel.
    x, W, b, d = _input_case(rng, cell, 4, 64, 21, 130, dtype)
    dY = rng.standard_normal((64, 4, 130)).astype(dtype)
    runs = []
    saved = threads.get_num_threads()
    old = K.set_recurrence_path("fused")
    try:
        for n in (1, 2, 3):
            threads.set_num_threads(n, adapt=False)
            runs.append(_input_grads(cell, d, x, W, dY))
    finally:
        threads.set_num_threads(saved)
        K.set_recurrence_path(old)
    for other in runs[1:]:
        for a, b_ in zip(runs[0], other):
            numpy.testing.assert_array_equal(a, b_)


def test_input_side_parts_are_optional(rng):
    x, W, b, d = _input_case(rng, "lstm", 3, 5, 4, 6, numpy.float32)
    dY = rng.standard_normal((5, 3, 6)).astype(numpy.float32)
    Y, H, C, A, E = K.rnn_forward("lstm", **d)
    full = K.rnn_backward("lstm", d["R"], H, C, A, E, dY, W=W, need_dx=True)[0]
    assert K.rnn_backward("lstm", d["R"], H, C, A, E, dY, W=W)[0] is None
    dW = numpy.zeros_like(W)
    dx, _, _ = K.rnn_backward("lstm", d["R"], H, C, A, E, dY, x=x, W=W, dW=dW)
    assert dx is None and numpy.abs(dW).sum() > 0
    db = numpy.zeros(W.shape[1], W.dtype)
    K.rnn_backward("lstm", d["R"], H, C, A, E, dY, W=W, db_in=db)
    assert numpy.abs(db).sum() > 0
    assert_close(K.rnn_backward("lstm", d["R"], H, C, A, E, dY, x=x, W=W, dW=dW, db_in=db,
                                need_dx=True)[0], full, tol=0)
    # No input features: an empty input gradient, no dW, but db_in still sums
    # dxproj (xproj is the bias alone).
    W0 = numpy.zeros((0, W.shape[1]), numpy.float32)
    db0 = numpy.zeros(W.shape[1], numpy.float32)
    dx0, _, _ = K.rnn_backward("lstm", d["R"], H, C, A, E, dY, x=x[:, :, :0], W=W0,
                               dW=numpy.zeros_like(W0), db_in=db0, need_dx=True)
    assert dx0.shape == (3, 5, 0)
    db1 = numpy.zeros(W.shape[1], numpy.float32)
    K.rnn_backward("lstm", d["R"], H, C, A, E, dY, W=W, db_in=db1)
    assert numpy.abs(db1).sum() > 0
    assert_close(db0, db1, tol=0)


def test_input_side_bad_arguments_are_clear_errors(rng):
    x, W, b, d = _input_case(rng, "lstm", 3, 5, 4, 6, numpy.float32)
    dY = rng.standard_normal((5, 3, 6)).astype(numpy.float32)
    Y, H, C, A, E = K.rnn_forward("lstm", **d)
    args = ("lstm", d["R"], H, C, A, E, dY)
    with pytest.raises(ValueError, match="go with W"):
        K.rnn_backward(*args, need_dx=True)
    with pytest.raises(ValueError, match="dW needs x"):
        K.rnn_backward(*args, W=W, dW=numpy.zeros_like(W))
    with pytest.raises(ValueError, match=r"W has shape \(4, 12\); expected \(F, 24\)"):
        K.rnn_backward(*args, W=W[:, :12])
    with pytest.raises(ValueError, match="x"):
        K.rnn_backward(*args, x=x[:2], W=W, dW=numpy.zeros_like(W))
    with pytest.raises(ValueError, match=r"dW has shape"):
        K.rnn_backward(*args, x=x, W=W, dW=numpy.zeros((4, 23), numpy.float32))
    with pytest.raises(ValueError, match=r"db_in has shape"):
        K.rnn_backward(*args, W=W, db_in=numpy.zeros(23, numpy.float32))
    with pytest.raises(TypeError):
        K.rnn_backward(*args, W=W.astype(numpy.float64), need_dx=True)
    with pytest.raises(ValueError, match="dW"):   # dW may not be an input
        K.rnn_backward(*args, x=x, W=W, dW=W)
    dW = numpy.zeros_like(W)
    with pytest.raises(ValueError, match="db_in"):
        K.rnn_backward(*args, x=x, W=W, dW=dW, db_in=dW[0])


@pytest.mark.parametrize("cell", ["simple", "lstm", "gru"])
def test_ops_rnn_backward_input_agrees_with_the_reference_ops(cell, path, rng):
    # NumpyOps (the kernel, per step) against Ops (plain xp: rnn_backward, then
    # the products): dW given Fortran-ordered, so the kernel's sum goes through
    # a temporary.
    from fastnn.backend import NumpyOps, Ops
    T, N, F, U = 4, 6, 5, 9
    x, W, b, d = _input_case(rng, cell, T, N, F, U, numpy.float64)
    dY = rng.standard_normal((N, T, U))
    results = []
    for ops in (NumpyOps(), Ops()):
        Y, hT, cT, cache = ops.rnn_forward(cell, d["xproj"].copy(), d["R"], d["h0"],
                                           d.get("c0"), d["mask"])
        dR = numpy.zeros_like(d["R"])
        dW = numpy.asfortranarray(numpy.full_like(W, 0.5))
        db = numpy.zeros(W.shape[1])
        dx, dh0, dc0 = ops.rnn_backward_input(cache, dY, x.reshape(T * N, F), W, dW, db,
                                              dR=dR, need_dx=True)
        results.append((dx, dh0, dW, db, dR) + ((dc0,) if cell == "lstm" else ()))
    assert "kernel" in NumpyOps().rnn_forward(cell, d["xproj"].copy(), d["R"], d["h0"],
                                              d.get("c0"))[3]
    for a, b_ in zip(*results):
        assert_close(a, b_, tol=1e-11)


@pytest.mark.parametrize("kind", ["SimpleRNN", "LSTM", "GRU"])
@pytest.mark.parametrize("shape", [(0, 3, 4), (2, 3, 0)])
def test_layers_take_an_empty_batch_and_no_features(kind, shape, rng):
    # Batch 0: empty gradients; no features: the bias still gets dxproj's sums.
    from fastnn.backend import NumpyOps, Ops
    x = rng.standard_normal(shape).astype(numpy.float32)
    got, weights = [], None
    for ops in (NumpyOps(), Ops()):
        layer = getattr(L, kind)(5, return_sequences=True)
        layer._ensure_built(shape[1:])
        layer.to(ops)
        weights = weights or [w + 0.1 for w in layer.get_weights()]
        layer.set_weights(weights)
        y, backprop = layer.forward(x, training=True)
        dx = backprop(numpy.ones_like(y))
        assert dx.shape == x.shape
        got.append([g.copy() for g in layer.grads.values()])
    for a, b_ in zip(*got):
        assert_close(a, b_, tol=1e-4)
    if shape[0]:
        assert numpy.abs(got[0][-1]).sum() > 0   # the bias's gradient
