"""The sparse AutoRec path (SpMM encoder -> sigmoid -> SDDMM decoder -> masked
loss) equals the dense masked formulation in loss and in every parameter
gradient, and passes a float64 central-difference gradient check."""
import numpy as np
import pytest
import scipy.sparse as sp

from fastnn.recsys import sparse_ops as so


def problem(n=9, m=14, k=6, density=0.3, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    X = sp.random(n, m, density=density, format="lil", random_state=rng, dtype=np.float64)
    X[0, :] = 0                       # a sample with nothing observed
    X[1, :] = 0
    X[1, 3] = 4.0                     # one observation
    X[2, :] = rng.integers(1, 6, m)   # fully observed
    X[3, 5] = 0.0                     # (no explicit zeros here: scipy drops them)
    X = X.tocsr().astype(dtype)
    X.data = np.round(X.data * 4 + 1).astype(dtype)
    params = dict(W=rng.normal(0, 0.3, (m, k)), b=rng.normal(0, 0.1, k),
                  Vt=rng.normal(0, 0.3, (m, k)), c=rng.normal(0, 0.1, m))
    return X, {name: p.astype(dtype) for name, p in params.items()}


def sparse_path(X, W, b, Vt, c, target=None, weights=None):
    """Loss and gradients through the sparse kernels. ``target``: a CSR matrix
    giving the loss pattern and values (default: X itself, as in AutoRec)."""
    P = so.as_pattern(X, W.dtype)
    T = P if target is None else so.as_pattern(target, W.dtype)
    H, enc_back = so.sparse_dense_forward(P, W, b, "sigmoid")
    vals, dec_back = so.sampled_dense_forward(T, H, Vt, c)
    loss, dvals = so.masked_sq_error(vals, T.data, weights)
    assert enc_back(dec_back(dvals)) is None
    return loss, dict(W=enc_back.dW, b=enc_back.db, Vt=dec_back.dVt, c=dec_back.dc)


def dense_path(X, W, b, Vt, c, target=None, weights=None):
    """The dense masked formulation: dense input with zeros, dense decoder, mask."""
    Xd = X.toarray()
    Td = Xd if target is None else target.toarray()
    M = ((X if target is None else target) != 0).toarray().astype(Xd.dtype)
    if weights is not None:  # weights in CSR order of the target -> dense
        Wm = (X if target is None else target).copy()
        Wm.data = weights
        M = Wm.toarray()
    Z = Xd @ W + b
    H = 1 / (1 + np.exp(-Z))
    R = H @ Vt.T + c
    E = R - Td
    loss = float((M * E * E).sum(dtype=np.float64))
    dR = 2 * M * E
    dH = dR @ Vt
    dZ = dH * H * (1 - H)
    return loss, dict(W=Xd.T @ dZ, b=dZ.sum(0), Vt=dR.T @ H, c=dR.sum(0))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sparse_path_equals_dense_masked(seed, dtype):
    X, p = problem(dtype=dtype, seed=seed, n=5 + 7 * seed, m=11 + 5 * seed, k=3 + seed)
    loss, grads = sparse_path(X, **p)
    ref_loss, ref = dense_path(X.astype(np.float64), **{k: v.astype(np.float64) for k, v in p.items()})
    rtol = 2e-5 if dtype == np.float32 else 1e-12
    assert loss == pytest.approx(ref_loss, rel=rtol)
    for name in ref:
        assert grads[name].dtype == dtype and grads[name].shape == p[name].shape
        scale = np.abs(ref[name]).max()
        np.testing.assert_allclose(grads[name], ref[name], rtol=rtol, atol=rtol * scale,
                                   err_msg=name)


def test_other_target_pattern_and_weights():
    X, p = problem(seed=7)
    rng = np.random.default_rng(1)
    target = sp.random(*X.shape, density=0.4, format="csr", random_state=rng) * 5 + 0
    target.data += 1
    w = rng.random(target.nnz)
    loss, grads = sparse_path(X, **p, target=target, weights=w)
    ref_loss, ref = dense_path(X, **p, target=target, weights=w)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    for name in ref:
        np.testing.assert_allclose(grads[name], ref[name], rtol=1e-10, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("seed", range(3))
def test_gradient_check_float64(seed):
    X, p = problem(seed=seed)
    loss, grads = sparse_path(X, **p)
    rng = np.random.default_rng(seed + 100)
    eps = 1e-5
    for name in p:
        for _ in range(3):  # random directions: one finite difference each
            d = rng.standard_normal(p[name].shape)
            plus = dict(p, **{name: p[name] + eps * d})
            minus = dict(p, **{name: p[name] - eps * d})
            numeric = (sparse_path(X, **plus)[0] - sparse_path(X, **minus)[0]) / (2 * eps)
            assert float((grads[name] * d).sum()) == pytest.approx(numeric, rel=1e-5, abs=1e-6), name
        flat = p[name].reshape(-1)
        for idx in rng.choice(flat.size, size=min(4, flat.size), replace=False):
            e = np.zeros_like(flat)
            e[idx] = eps
            plus = dict(p, **{name: (flat + e).reshape(p[name].shape)})
            minus = dict(p, **{name: (flat - e).reshape(p[name].shape)})
            numeric = (sparse_path(X, **plus)[0] - sparse_path(X, **minus)[0]) / (2 * eps)
            assert grads[name].reshape(-1)[idx] == pytest.approx(numeric, rel=1e-5, abs=1e-6), name


def test_gradients_accumulate_into_given_arrays():
    X, p = problem(seed=2)
    P = so.as_pattern(X)
    dW = np.ones_like(p["W"])
    H, back = so.sparse_dense_forward(P, p["W"], None, "sigmoid", dW=dW)
    back(np.ones_like(H))
    assert back.dW is dW and back.db is None
    ref = 1 + X.T @ (H * (1 - H))
    np.testing.assert_allclose(dW, ref, rtol=1e-12)


def test_pattern_helpers():
    X, _ = problem(seed=3)
    P = so.as_pattern(X, np.float32)
    assert P.indices.dtype == np.int32 and P.dtype == np.float32
    assert so.as_pattern(P) is P
    t_indptr, t_indices, perm = P.transpose_structure
    assert P.transpose_structure[0] is t_indptr  # cached
    np.testing.assert_array_equal(
        sp.csr_matrix((P.data[perm], t_indices, t_indptr), shape=X.shape[::-1]).toarray(),
        X.T.toarray().astype(np.float32))
    np.testing.assert_array_equal(P.row_ids(), X.nonzero()[0])
    B = np.ones((X.shape[1], 2), np.float32)
    np.testing.assert_allclose(so.spmm(X.astype(np.float32), B), X @ B, rtol=1e-6)
    np.testing.assert_allclose(so.spmm_t(P, np.ones((X.shape[0], 2), np.float32)),
                               X.T @ np.ones((X.shape[0], 2)), rtol=1e-6)
    np.testing.assert_allclose(so.column_sums(P, P.data), np.asarray(X.sum(0)).ravel(), rtol=1e-6)
    rows = np.array([4, 0, 2, 2])
    Q = P.take_rows(rows)
    assert Q.shape == (4, X.shape[1]) and Q.dtype == np.float32
    np.testing.assert_array_equal(Q.to_scipy().toarray(), X[rows].toarray().astype(np.float32))
    np.testing.assert_array_equal(Q.transpose_structure[0],
                                  so.as_pattern(X[rows], np.float32).transpose_structure[0])
    with pytest.raises(ValueError, match="rows holds"):
        P.take_rows([X.shape[0]])
    # Unsorted rows (SciPy allows them): as_pattern sorts a copy; the raw arrays
    # are rejected by the pattern itself.
    U = X.astype(np.float32)
    for i in range(U.shape[0]):
        sl = slice(U.indptr[i], U.indptr[i + 1])
        U.indices[sl], U.data[sl] = U.indices[sl][::-1].copy(), U.data[sl][::-1].copy()
    U.has_sorted_indices = False
    before = U.indices.copy()
    Q = so.as_pattern(U)
    np.testing.assert_array_equal(U.indices, before)  # the caller's matrix is untouched
    np.testing.assert_array_equal(Q.to_scipy().toarray(), X.toarray().astype(np.float32))
    np.testing.assert_array_equal(Q.indices, P.indices)
    with pytest.raises(ValueError, match="not sorted in row 2"):
        so.SparsePattern(U.indptr, U.indices, U.data, U.shape)


def test_sparse_ops_errors():
    X, p = problem(seed=1)
    with pytest.raises(TypeError, match="scipy.sparse"):
        so.as_pattern(X.toarray())
    with pytest.raises(ValueError, match="A.shape\\[1\\] must equal B.shape\\[0\\]"):
        so.spmm(X, np.ones((3, 2)))
    with pytest.raises(ValueError, match="dtype float32; expected float64"):
        so.spmm(X, np.ones((X.shape[1], 2), np.float32))
    with pytest.raises(ValueError, match="Vt has shape"):
        so.sddmm(X, np.ones((X.shape[0], 3)), np.ones((X.shape[1], 2)))
    with pytest.raises(ValueError, match="float32 or float64"):
        so.as_pattern(X, np.int64)


@pytest.mark.parametrize("activation", ["linear", "sigmoid", "relu", "tanh", "elu"])
def test_encoder_activations(activation):
    from fastnn.backend.ops import Ops
    X, p = problem(seed=4)
    H, back = so.sparse_dense_forward(X, p["W"], p["b"], activation)
    ref = Ops().activation_forward(activation, X.toarray() @ p["W"] + p["b"])
    np.testing.assert_allclose(H, ref, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_decoder_loss_equals_composition(dtype):
    X, p = problem(seed=5, dtype=dtype)
    P = so.as_pattern(X)
    H, _ = so.sparse_dense_forward(P, p["W"], p["b"], "sigmoid")
    vals, dec_back = so.sampled_dense_forward(P, H, p["Vt"], p["c"])
    loss, dvals = so.masked_sq_error(vals, P.data)
    dH = dec_back(dvals)
    loss2, vals2, back2 = so.sampled_dense_sq_error(P, H, p["Vt"], p["c"])
    dH2 = back2()
    assert loss2 == pytest.approx(loss, rel=1e-12)
    np.testing.assert_array_equal(vals2, vals)
    np.testing.assert_array_equal(dH2, dH)
    np.testing.assert_array_equal(back2.dVt, dec_back.dVt)
    np.testing.assert_array_equal(back2.dc, dec_back.dc)


def _unfused_step(X, p, state, step, lam, x_in=None, adam=None):
    """The step composed from the layer-contract pieces: sparse_dense_forward ->
    sampled_dense_forward -> masked_sq_error -> backprop -> + lam*p -> adam_update."""
    from fastnn.backend.ops import Ops
    P = so.as_pattern(X, p["W"].dtype)
    P_in = P if x_in is None else so.SparsePattern(P.indptr, P.indices, x_in, P.shape)
    H, enc_back = so.sparse_dense_forward(P_in, p["W"], p["b"], "sigmoid")
    vals, dec_back = so.sampled_dense_forward(P, H, p["Vt"], p["c"])
    loss, dvals = so.masked_sq_error(vals, P.data)
    enc_back(dec_back(dvals))
    g = dict(W=enc_back.dW, b=enc_back.db, Vt=dec_back.dVt, c=dec_back.dc)
    reg = lam / 2 * float((p["W"].astype(np.float64) ** 2).sum()
                          + (p["Vt"].astype(np.float64) ** 2).sum())
    for n in ("W", "Vt"):
        g[n] = g[n] + p[n].dtype.type(lam) * p[n]
    for n in p:
        Ops().adam_update(p[n], g[n], *state[n], *adam, step)
    return loss, reg


ADAM = (1e-2, 0.9, 0.999, 1e-8)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("dropout", [False, True])
@pytest.mark.parametrize("sweep", ["samples", "outputs"])
def test_autorec_adam_step_equals_unfused_float32(seed, dropout, sweep):
    X, p = problem(n=30, m=50, k=12, seed=seed, dtype=np.float32)
    x_in = None
    if dropout:
        rng = np.random.default_rng(seed)
        x_in = (X.data * (rng.random(X.nnz) > 0.25) / np.float32(0.75)).astype(np.float32)
    q = {n: a.copy() for n, a in p.items()}
    # One step from the same state (later steps would compare two trajectories
    # that drift apart from float32 rounding); nonzero moments, step 1 and 3.
    rng = np.random.default_rng(seed + 10)
    st_p = {n: ((rng.random(a.shape) * 0.1).astype(np.float32),
                (rng.random(a.shape) * 0.01).astype(np.float32)) for n, a in p.items()}
    st_q = {n: (m.copy(), v.copy()) for n, (m, v) in st_p.items()}
    for step in (1, 3):
        if step == 3:  # restart both from the same point
            q = {n: a.copy() for n, a in p.items()}
            st_q = {n: (m.copy(), v.copy()) for n, (m, v) in st_p.items()}
        loss, reg = so.autorec_adam_step(X, p["W"], p["b"], p["Vt"], p["c"], st_p, *ADAM, step,
                                         0.05, input_values=x_in, sweep=sweep)
        rloss, rreg = _unfused_step(X, q, st_q, step, 0.05, x_in, ADAM)
        assert loss == pytest.approx(rloss, rel=1e-6)
        assert reg == pytest.approx(rreg, rel=1e-6)
        # float32 rounding: dH is summed in another order, so the gradients of W
        # and b agree to float32 rounding of sums with cancellation (relative to
        # the array's scale); parameters to 1e-4 of an Adam step.
        for n in p:
            np.testing.assert_allclose(p[n], q[n], rtol=1e-5, atol=1e-6, err_msg=n)
            for got, want in zip(st_p[n], st_q[n]):
                np.testing.assert_allclose(got, want, rtol=1e-4,
                                           atol=2e-6 * float(np.abs(want).max()), err_msg=n)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("sweep", ["samples", "outputs"])
def test_autorec_adam_step_equals_dense_masked_float64(seed, sweep):
    """Against the dense masked formulation (dense_path) + NumPy Adam, to 1e-10."""
    X, p = problem(n=25, m=40, k=8, seed=seed, dtype=np.float64)
    q = {n: a.copy() for n, a in p.items()}
    st_p = so.autorec_adam_state(*(p[n] for n in ("W", "b", "Vt", "c")))
    st_q = {n: (np.zeros_like(a), np.zeros_like(a)) for n, a in q.items()}
    lam, (lr, b1, b2, eps) = 0.2, ADAM
    for step in (1, 2, 3, 4):
        loss, reg = so.autorec_adam_step(X, p["W"], p["b"], p["Vt"], p["c"], st_p, lr, b1, b2,
                                         eps, step, lam, sweep=sweep)
        rloss, g = dense_path(X, q["W"], q["b"], q["Vt"], q["c"])
        rreg = lam / 2 * float((q["W"] ** 2).sum() + (q["Vt"] ** 2).sum())
        g["W"] = g["W"] + lam * q["W"]
        g["Vt"] = g["Vt"] + lam * q["Vt"]
        for n in q:
            m, v = st_q[n]
            m[...] = b1 * m + (1 - b1) * g[n]
            v[...] = b2 * v + (1 - b2) * g[n] ** 2
            q[n] -= lr / (1 - b1 ** step) * m / (np.sqrt(v / (1 - b2 ** step)) + eps)
        assert loss == pytest.approx(rloss, rel=1e-10)
        assert reg == pytest.approx(rreg, rel=1e-10)
        for n in p:
            np.testing.assert_allclose(p[n], q[n], rtol=1e-10, atol=1e-10, err_msg=n)
            np.testing.assert_allclose(st_p[n][0], st_q[n][0], rtol=1e-10, atol=1e-10)
            np.testing.assert_allclose(st_p[n][1], st_q[n][1], rtol=1e-10, atol=1e-12)


def test_autorec_adam_step_errors():
    X, p = problem()
    st = so.autorec_adam_state(p["W"], p["b"], p["Vt"], p["c"])
    with pytest.raises(ValueError, match="adam_state"):
        so.autorec_adam_step(X, p["W"], p["b"], p["Vt"], p["c"], {"W": st["W"]}, *ADAM, 1, 0.1)
    with pytest.raises(ValueError, match="X.shape"):
        so.autorec_adam_step(X[:, :5], p["W"], p["b"], p["Vt"], p["c"], st, *ADAM, 1, 0.1)
    with pytest.raises(TypeError):
        so.autorec_adam_step(X.toarray(), p["W"], p["b"], p["Vt"], p["c"], st, *ADAM, 1, 0.1)


@pytest.mark.parametrize("sweep", ["samples", "outputs"])
def test_autorec_adam_step_with_repeated_entries(sweep):
    """A pattern that stores one (sample, output) twice (scipy allows it): each
    stored entry is a term of the loss. Exercises the "outputs" sweep's fallback
    for four entries of one output unit that are not all distinct rows."""
    rng = np.random.default_rng(7)
    n, m, k = 6, 3, 5
    rows = [[0, 0, 1], [0, 0, 2], [1, 1], [0, 1, 2, 2], [0, 0, 0, 1], [1]]  # sorted, repeats
    indptr = np.cumsum([0] + [len(r) for r in rows]).astype(np.int32)
    indices = np.concatenate(rows).astype(np.int32)
    data = rng.integers(1, 6, indices.size).astype(np.float64)
    P = so.SparsePattern(indptr, indices, data, (n, m))
    p = dict(W=rng.normal(0, 0.3, (m, k)), b=rng.normal(0, 0.1, k),
             Vt=rng.normal(0, 0.3, (m, k)), c=rng.normal(0, 0.1, m))
    q = {name: a.copy() for name, a in p.items()}
    st_p = so.autorec_adam_state(p["W"], p["b"], p["Vt"], p["c"])
    st_q = so.autorec_adam_state(q["W"], q["b"], q["Vt"], q["c"])
    for step in (1, 2):
        loss, reg = so.autorec_adam_step(P, p["W"], p["b"], p["Vt"], p["c"], st_p, *ADAM, step,
                                         0.1, sweep=sweep)
        rloss, rreg = _unfused_step(P, q, st_q, step, 0.1, None, ADAM)
        assert loss == pytest.approx(rloss, rel=1e-12)
        for name in p:
            np.testing.assert_allclose(p[name], q[name], rtol=1e-10, atol=1e-12)


def test_autorec_adam_step_drives_a_fastnn_adam_optimizer_state():
    """The wiring AutoRec can use: the moments of a fastnn.optimizers.Adam (built
    on [W, b, Vt, c]) passed as adam_state, with its lr, betas, epsilon and
    iteration count, give what apply_gradients gives on the unfused gradients."""
    from fastnn import optimizers
    X, p = problem(n=20, m=30, k=7, seed=11, dtype=np.float64)
    q = {n: a.copy() for n, a in p.items()}
    names = ("W", "b", "Vt", "c")
    fused_opt = optimizers.Adam(learning_rate=3e-3)
    ref_opt = optimizers.Adam(learning_rate=3e-3)
    fused_opt.build([p[n] for n in names])
    lam = 0.4
    for _ in range(3):
        lr = fused_opt.current_learning_rate
        fused_opt.iterations += 1
        state = {n: (s["m"], s["v"]) for n, s in zip(names, fused_opt._state)}
        loss, reg = so.autorec_adam_step(X, p["W"], p["b"], p["Vt"], p["c"], state, lr,
                                         fused_opt.beta_1, fused_opt.beta_2, fused_opt.epsilon,
                                         fused_opt.iterations, lam)
        rloss, g = dense_path(X, q["W"], q["b"], q["Vt"], q["c"])
        g["W"] = g["W"] + lam * q["W"]
        g["Vt"] = g["Vt"] + lam * q["Vt"]
        ref_opt.apply_gradients([q[n] for n in names], [g[n] for n in names])
        assert loss == pytest.approx(rloss, rel=1e-10)
        for n in names:
            np.testing.assert_allclose(p[n], q[n], rtol=1e-10, atol=1e-12, err_msg=n)
