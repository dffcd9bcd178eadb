"""fastnn._C.autorec_step, the whole fused AutoRec training step (forward,
backward, L2 and Adam in one kernel), against a dense masked float64 NumPy
step written here, on random CSR inputs of awkward shapes, both sweeps and
their block counts, int32/int64 indices, float32/float64; plus its pieces
(the permuted CSR x dense Adam product, the activation-gradient sum), bitwise
determinism, slicing, and validation errors. The sparse kernels it is built
on are in test_sparse_kernels.py."""
import numpy as np
import pytest
import scipy.sparse as sp

from fastnn._C import autorec_step as AR
from fastnn._C import sparse as K

from _sparse import ADAM, FLOAT, INDEX, random_csr, tol  # shared with test_sparse_kernels.py


# ------------------------------------------------- whole AutoRec training step
ACT_REF = {
    "sigmoid": (lambda z: 1 / (1 + np.exp(-z)), lambda y: y * (1 - y)),
    "tanh": (np.tanh, lambda y: 1 - y * y),
    "relu": (lambda z: np.maximum(z, 0), lambda y: (y > 0).astype(y.dtype)),
    "linear": (lambda z: z, lambda y: np.ones_like(y)),
}


def _np_adam(p, g, m, v, step, lr, beta1, beta2, eps):
    """Ops.adam_update's formula (weight_decay=0, decoupled=False), float64."""
    m[...] = beta1 * m + (1 - beta1) * g
    v[...] = beta2 * v + (1 - beta2) * g * g
    p -= lr / (1 - beta1 ** step) * m / (np.sqrt(v / (1 - beta2 ** step)) + eps)


def _step_reference(A, x_in, params, state, step, lam, act):
    """Dense masked I-AutoRec step in float64 NumPy, then NumPy Adam."""
    f, df = ACT_REF[act]
    Xd = sp.csr_matrix((x_in.astype(np.float64), A.indices, A.indptr), shape=A.shape).toarray()
    T = A.toarray().astype(np.float64)
    M = sp.csr_matrix((np.ones(A.nnz), A.indices, A.indptr), shape=A.shape).toarray()
    W, b, Vt, c = (params[n] for n in ("W", "b", "Vt", "c"))
    H = f(Xd @ W + b)
    E = M * (H @ Vt.T + c - T)
    loss = float((E * E).sum())
    reg = lam / 2 * float((W ** 2).sum() + (Vt ** 2).sum())
    dR = 2 * E
    dZ = (dR @ Vt) * df(H)
    g = dict(W=Xd.T @ dZ + lam * W, b=dZ.sum(0), Vt=dR.T @ H + lam * Vt, c=dR.sum(0))
    for n in params:
        _np_adam(params[n], g[n], *state[n], step, **ADAM)
    return loss, reg


def _step_problem(n, m, k, dtype, index, seed):
    rng = np.random.default_rng(seed)
    indptr, indices, data, A = random_csr(n, m, rng, dtype, index, density=0.25)
    data[...] = rng.integers(1, 6, data.shape[0])
    A = sp.csr_matrix((data, indices, indptr), shape=(n, m))
    params = dict(W=rng.normal(0, 0.3, (m, k)), b=rng.normal(0, 0.1, k),
                  Vt=rng.normal(0, 0.3, (m, k)), c=rng.normal(0, 0.1, m))
    params = {name: p.astype(dtype) for name, p in params.items()}
    state = {name: (rng.random(p.shape).astype(dtype) * 0.01,
                    rng.random(p.shape).astype(dtype) * 1e-4) for name, p in params.items()}
    return indptr, indices, data, A, params, state


def _kernel_step(indptr, indices, data, params, state, step, lam, act, x_in=None,
                 n_blocks=None, sweep=None):
    return AR.autorec_adam_step(indptr, indices, data, params["W"], params["b"], params["Vt"],
                               params["c"], *state["W"], *state["b"], *state["Vt"],
                               *state["c"], step=step, lam_scale=lam, activation=act,
                               input_values=x_in, n_blocks=n_blocks, sweep=sweep, **ADAM)


# Both sweeps; "outputs" with its default, one and three blocks.
SWEEP_BLOCKS = [("samples", None), ("outputs", None), ("outputs", 1), ("outputs", 3)]


def _copy(params, state):
    return ({n: p.copy() for n, p in params.items()},
            {n: (m.copy(), v.copy()) for n, (m, v) in state.items()})


@pytest.mark.parametrize("index", INDEX)
@pytest.mark.parametrize("dtype", FLOAT)
@pytest.mark.parametrize("n,m,k", [(1, 1, 1), (3, 1, 2), (7, 5, 1), (17, 33, 9), (40, 300, 21),
                                   (0, 4, 3)])
@pytest.mark.parametrize("act", sorted(ACT_REF))
@pytest.mark.parametrize("sweep,n_blocks", SWEEP_BLOCKS)
def test_autorec_adam_step_matches_dense_numpy(index, dtype, n, m, k, act, sweep, n_blocks):
    indptr, indices, data, A, params, state = _step_problem(n, m, k, dtype, index, n + m + k)
    ref_p, ref_s = _copy(params, state)
    ref_p = {n_: p.astype(np.float64) for n_, p in ref_p.items()}
    ref_s = {n_: (a.astype(np.float64), b.astype(np.float64)) for n_, (a, b) in ref_s.items()}
    lam = 0.3
    for step in (1, 2, 3):
        loss, sq_W, sq_V = _kernel_step(indptr, indices, data, params, state, step, lam, act,
                                        n_blocks=n_blocks, sweep=sweep)
        rloss, rreg = _step_reference(A, data, ref_p, ref_s, step, lam, act)
        # float64: to 1e-10. float32: to float32 rounding of sums with cancellation,
        # relative to each array's scale.
        t = 1e-10 if dtype == np.float64 else 1e-3
        assert loss == pytest.approx(rloss, rel=t, abs=t)
        assert lam / 2 * (sq_W + sq_V) == pytest.approx(rreg, rel=t, abs=t)
        for name in params:
            for got, want in ((params[name], ref_p[name]), (state[name][0], ref_s[name][0]),
                              (state[name][1], ref_s[name][1])):
                scale = float(np.abs(want).max()) if want.size else 0.0
                np.testing.assert_allclose(got, want, rtol=t,
                                           atol=1e-10 if dtype == np.float64 else 1e-4 * scale,
                                           err_msg=name)


@pytest.mark.parametrize("dtype", FLOAT)
@pytest.mark.parametrize("sweep", ["samples", "outputs"])
def test_autorec_adam_step_input_values_differ_from_targets(dtype, sweep):
    indptr, indices, data, A, params, state = _step_problem(30, 40, 7, dtype, np.int32, 9)
    rng = np.random.default_rng(0)
    x_in = (data * (rng.random(data.shape[0]) > 0.3) / dtype(0.7)).astype(dtype)
    ref_p = {n: p.astype(np.float64) for n, p in params.items()}
    ref_s = {n: (a.astype(np.float64), b.astype(np.float64)) for n, (a, b) in state.items()}
    loss, _, _ = _kernel_step(indptr, indices, data, params, state, 1, 0.1, "sigmoid", x_in,
                              sweep=sweep)
    rloss, _ = _step_reference(A, x_in, ref_p, ref_s, 1, 0.1, "sigmoid")
    t = 1e-10 if dtype == np.float64 else 2e-4
    assert loss == pytest.approx(rloss, rel=t)
    for name in params:
        np.testing.assert_allclose(params[name], ref_p[name], rtol=t, atol=t)


@pytest.mark.parametrize("sweep,n_blocks", [("samples", None), ("outputs", None),
                                            ("outputs", 1), ("outputs", 2), ("outputs", 5)])
def test_autorec_adam_step_deterministic(sweep, n_blocks):
    base = _step_problem(200, 150, 64, np.float32, np.int32, 3)
    outs = []
    for _ in range(4):
        indptr, indices, data, A, params, state = base[:4] + _copy(*base[4:])
        losses = [_kernel_step(indptr, indices, data, params, state, s, 0.01, "sigmoid",
                               n_blocks=n_blocks, sweep=sweep) for s in (1, 2)]
        outs.append((losses, params, state))
    for losses, params, state in outs[1:]:
        assert losses == outs[0][0]
        for name in params:
            np.testing.assert_array_equal(params[name], outs[0][1][name])
            np.testing.assert_array_equal(state[name][0], outs[0][2][name][0])
            np.testing.assert_array_equal(state[name][1], outs[0][2][name][1])


def test_outputs_sweep_bits_do_not_follow_the_machine_load():
    """The default block count of the "outputs" sweep (dH's summation order)
    follows the thread cap, not the threads a call gets now: those drop while
    other processes keep the CPUs busy, and a rerun under other load must give
    the same bits. Simulated here by holding the live count at 1 (the sampler
    kept from running) against the full cap, on a step above the parallel
    threshold."""
    import fastnn
    from fastnn import threads
    base = _step_problem(300, 400, 64, np.float32, np.int32, 11)
    state, cap = threads._state, fastnn.get_num_threads()
    saved = (state.now, state.sampling)
    fastnn.set_num_threads(2)
    outs = []
    try:
        for live in (2, 1):
            state.now, state.sampling = live, 1   # sampling=1: no re-sample mid-test
            indptr, indices, data, A, params, st = base[:4] + _copy(*base[4:])
            loss = _kernel_step(indptr, indices, data, params, st, 1, 0.01, "sigmoid",
                                sweep="outputs")
            outs.append((loss, params))
    finally:
        fastnn.set_num_threads(cap)
        state.now, state.sampling = saved[0], 0
    assert outs[0][0] == outs[1][0]
    for name in outs[0][1]:
        np.testing.assert_array_equal(outs[0][1][name], outs[1][1][name])


@pytest.mark.parametrize("index", INDEX)
@pytest.mark.parametrize("dtype", FLOAT)
@pytest.mark.parametrize("n,m,k,rows", [(200, 150, 64, 1), (200, 150, 64, 37),
                                        (200, 150, 64, 149), (9, 40, 3, 6), (0, 12, 5, 4)])
def test_samples_sweep_sliced_step_is_bitwise_the_unsliced_step(monkeypatch, index, dtype,
                                                                n, m, k, rows):
    """A model bigger than SAMPLES_BLOCK_BYTES takes the first pass in slices of
    output units: two steps (dropout inputs on the second) give the same
    losses, parameters and moments, bit for bit, as without slicing (which
    test_autorec_adam_step_matches_dense_numpy checks against NumPy)."""
    base = _step_problem(n, m, k, dtype, index, n + m + rows)
    data = base[2]
    x_in = (data * (np.arange(data.shape[0]) % 4 > 0)).astype(dtype)
    itemsize = np.dtype(dtype).itemsize
    outs = []
    for limit in (m * k * itemsize, rows * k * itemsize):
        monkeypatch.setattr(AR, "SAMPLES_BLOCK_BYTES", limit)
        assert AR.samples_block(m, k, dtype) == (m if limit == m * k * itemsize else rows)
        indptr, indices, data, A, params, state = base[:4] + _copy(*base[4:])
        losses = [_kernel_step(indptr, indices, data, params, state, 1, 0.01, "sigmoid",
                               sweep="samples"),
                  _kernel_step(indptr, indices, data, params, state, 2, 0.01, "tanh", x_in,
                               sweep="samples")]
        outs.append((losses, params, state))
    (l0, p0, s0), (l1, p1, s1) = outs
    assert l1 == l0
    for name in p0:
        np.testing.assert_array_equal(p1[name], p0[name], err_msg=name)
        np.testing.assert_array_equal(s1[name][0], s0[name][0], err_msg=name)
        np.testing.assert_array_equal(s1[name][1], s0[name][1], err_msg=name)
    if n:
        assert not np.array_equal(p1["W"], base[4]["W"])  # the steps did something


def test_autorec_samples_sliced_needs_its_scratch():
    indptr, indices, data, A, params, state = _step_problem(6, 10, 4, np.float32, np.int32, 1)
    H, dZ = np.empty((6, 4), np.float32), np.empty((6, 4), np.float32)
    G, row_loss = np.empty(A.nnz, np.float32), np.empty(6)
    buf, stride = AR._row_buffers(1, 4, np.float32)
    args = (indptr, indices, data, data, params["W"], params["b"], params["Vt"], params["c"], 1,
            H, dZ, G, buf, stride, 1, row_loss, 3)
    with pytest.raises(ValueError, match="dH must be 6 x 4 scratch"):
        AR._autorec_samples(*args)
    with pytest.raises(ValueError, match="dH must be 6 x 4 scratch"):
        AR._autorec_samples(*args, np.empty((6, 5), np.float32))


def test_autorec_adam_step_large_parallel_agrees_with_one_block():
    """A problem big enough for the parallel path: blocks, and the sweep, change
    only dH's summation order, so every result agrees to float32 rounding."""
    base = _step_problem(300, 2000, 128, np.float32, np.int64, 4)
    res = []
    for sweep, nb in (("outputs", 1), ("outputs", 2), ("outputs", 4), ("samples", None)):
        indptr, indices, data, A, params, state = base[:4] + _copy(*base[4:])
        loss = _kernel_step(indptr, indices, data, params, state, 1, 0.01, "sigmoid",
                            n_blocks=nb, sweep=sweep)
        res.append((loss, params))
    for loss, params in res[1:]:
        np.testing.assert_allclose(loss, res[0][0], rtol=1e-6)
        for name in params:
            # atol: 1e-3 of an Adam step (lr = 1e-2)
            np.testing.assert_allclose(params[name], res[0][1][name], rtol=1e-5, atol=1e-5)


def test_autorec_adam_step_rejects_bad_input():
    indptr, indices, data, A, params, state = _step_problem(6, 5, 3, np.float32, np.int32, 0)
    with pytest.raises(ValueError, match="step"):
        _kernel_step(indptr, indices, data, params, state, 0, 0.1, "sigmoid")
    with pytest.raises(ValueError, match="activation"):
        _kernel_step(indptr, indices, data, params, state, 1, 0.1, "softmax")
    with pytest.raises(ValueError, match="lam_scale"):
        _kernel_step(indptr, indices, data, params, state, 1, -1.0, "sigmoid")
    with pytest.raises(ValueError, match="input_values"):
        _kernel_step(indptr, indices, data, params, state, 1, 0.1, "sigmoid", data[:-1].copy())
    bad = dict(params, Vt=params["Vt"][:, :2].copy())
    with pytest.raises(ValueError, match="Vt"):
        _kernel_step(indptr, indices, data, bad, state, 1, 0.1, "sigmoid")
    bad = dict(params, W=params["W"].astype(np.float64))
    with pytest.raises(ValueError, match="float dtype"):
        _kernel_step(indptr, indices, data, bad, state, 1, 0.1, "sigmoid")
    bad_idx = indices.copy()
    bad_idx[-1] = 5
    with pytest.raises(ValueError, match="column"):
        _kernel_step(indptr, bad_idx, data, params, state, 1, 0.1, "sigmoid")
    ro = params["W"].copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        _kernel_step(indptr, indices, data, dict(params, W=ro), state, 1, 0.1, "sigmoid")
    with pytest.raises(ValueError, match="sweep='rows'"):
        _kernel_step(indptr, indices, data, params, state, 1, 0.1, "sigmoid", sweep="rows")
    with pytest.raises(ValueError, match="n_blocks=2 is for sweep='outputs'"):
        _kernel_step(indptr, indices, data, params, state, 1, 0.1, "sigmoid", n_blocks=2,
                     sweep="samples")


def test_samples_block_slices_models_bigger_than_the_limit():
    """Output units per slice of the "samples" sweep's first pass: all of them
    while W fits in SAMPLES_BLOCK_BYTES (ML-100K's 943 x 500 float32), else as
    many rows as fit; at least one."""
    limit = AR.SAMPLES_BLOCK_BYTES
    assert AR.samples_block(943, 500, np.float32) == 943
    assert AR.samples_block(6040, 500, np.float32) == limit // 2000
    assert AR.samples_block(6040, 500, np.float64) == limit // 4000
    assert AR.samples_block(limit // 4, 1, np.float32) == limit // 4
    assert AR.samples_block(limit // 4 + 1, 1, np.float32) == limit // 4
    assert AR.samples_block(10, limit, np.float32) == 1


@pytest.mark.parametrize("index", INDEX)
def test_slice_bounds_match_searchsorted(index):
    """Row i's first CSR position at a column >= s * block, for every slice s,
    on rows that are empty, single, full, and long-tailed."""
    rng = np.random.default_rng(5)
    indptr, indices, data, A = random_csr(37, 53, rng, np.float32, index)
    for block in (1, 2, 7, 26, 52, 53):
        ns = -(-53 // block)
        got = AR._slice_bounds(indptr, indices, block, ns, 2).reshape(37, ns + 1)
        assert got.dtype == indptr.dtype
        for i in range(37):
            cols = indices[indptr[i]:indptr[i + 1]]
            want = indptr[i] + np.searchsorted(cols, np.arange(ns + 1) * block)
            want[ns] = indptr[i + 1]
            np.testing.assert_array_equal(got[i], want, err_msg=f"row {i}, block {block}")


@pytest.mark.parametrize("dtype", FLOAT)
@pytest.mark.parametrize("block", [0, 1, 64, 699, 700])
@pytest.mark.parametrize("k", [96, 300])  # 300: b's gradient in three column blocks
def test_samples_sweep_passes_equal_the_unfused_kernels_bitwise(dtype, block, k):
    """The "samples" sweep's two passes compute every sum the unfused kernels
    do, in their order: H is csr_matmul's, the loss, the entry gradients and dH
    are sddmm_sq_error's, dZ is act'(H) * dH, and each W / Vt row update is
    _csr_perm_matmul_adam_sq's (X_in.T @ dZ and G.T @ H), b's is _sum_rows(dZ)
    then adam_update. Bitwise, on a problem
    big enough to run in parallel; unsliced (block 0, or one slice of all 700
    outputs) and in slices of 1, 64 and 699 output units (the same bits)."""
    indptr, indices, data, A, params, state = _step_problem(260, 700, k, dtype, np.int32, 11)
    W, b, Vt, c = (params[n] for n in ("W", "b", "Vt", "c"))
    n, m = A.shape[0], W.shape[0]
    act = AR.ACTIVATION_CODES["sigmoid"]
    x_in = (data * (np.arange(data.shape[0]) % 3 > 0)).astype(dtype)  # "dropout"
    H, dZ = np.empty((n, k), dtype), np.empty((n, k), dtype)
    G, row_loss = np.empty(A.nnz, dtype), np.empty(n)
    buf, stride = AR._row_buffers(2, k, dtype)
    AR._autorec_samples(indptr, indices, x_in, data, W, b, Vt, c, act, H, dZ, G, buf, stride, 2,
                       row_loss, block, np.empty((n, k), dtype) if block else None)
    H_ref = np.empty((n, k), dtype)
    K.csr_matmul(indptr, indices, x_in, W, H_ref, bias=b, activation="sigmoid")
    np.testing.assert_array_equal(H, H_ref)
    pred, G_ref, dH = np.empty(A.nnz, dtype), np.empty(A.nnz, dtype), np.empty((n, k), dtype)
    loss_ref = K.sddmm_sq_error(indptr, indices, H_ref, Vt, c, data, pred, G_ref, dH)
    np.testing.assert_array_equal(G, G_ref)
    assert row_loss.sum() == loss_ref
    dZ_ref = np.empty((n, k), dtype)
    AR._sum_parts_act_grad(dH[None], H_ref, dZ_ref, act)
    np.testing.assert_array_equal(dZ, dZ_ref)

    t_indptr, t_indices, perm = K.csr_transpose(indptr, indices, m)
    lr_t, eps_t, _, _ = K._adam_coefficients(ADAM["lr"], ADAM["beta1"], ADAM["beta2"],
                                             ADAM["eps"], 3, 0.0, False)
    hyper = (lr_t, ADAM["beta1"], ADAM["beta2"], eps_t, 0.05)
    got_p, got_s = _copy(params, state)
    buf, stride = AR._row_buffers(4, k, dtype)
    sq_W, sq_V = np.empty(m), np.empty(m)
    AR._autorec_outputs_adam(t_indptr, t_indices, perm, G, x_in, H, dZ, got_p["W"],
                            *got_s["W"], got_p["Vt"], *got_s["Vt"], got_p["c"], *got_s["c"],
                            *hyper, buf, stride, 2, sq_W, sq_V, got_p["b"], *got_s["b"])
    ref_p, ref_s = _copy(params, state)
    buf, stride = AR._row_buffers(2, k, dtype)
    sq_W_ref, sq_V_ref = np.empty(m), np.empty(m)
    AR._csr_perm_matmul_adam_sq(t_indptr, t_indices, perm, x_in, dZ_ref, ref_p["W"],
                               *ref_s["W"], *hyper, buf, stride, 2, sq_W_ref)
    AR._csr_perm_matmul_adam_sq(t_indptr, t_indices, perm, G_ref, H_ref, ref_p["Vt"],
                               *ref_s["Vt"], *hyper, buf, stride, 2, sq_V_ref)
    for name in ("W", "Vt"):
        np.testing.assert_array_equal(got_p[name], ref_p[name], err_msg=name)
        np.testing.assert_array_equal(got_s[name][0], ref_s[name][0], err_msg=name)
        np.testing.assert_array_equal(got_s[name][1], ref_s[name][1], err_msg=name)
    np.testing.assert_array_equal(sq_W, sq_W_ref)
    np.testing.assert_array_equal(sq_V, sq_V_ref)
    # b, in the same loop: _sum_rows' column sums of dZ, then adam_update's kernel.
    db = np.empty(k, dtype)
    K._sum_rows(dZ_ref, db)
    K.adam_update(ref_p["b"], db, *ref_s["b"], ADAM["lr"], ADAM["beta1"], ADAM["beta2"],
                  ADAM["eps"], 3)
    np.testing.assert_array_equal(got_p["b"], ref_p["b"])
    np.testing.assert_array_equal(got_s["b"][0], ref_s["b"][0])
    np.testing.assert_array_equal(got_s["b"][1], ref_s["b"][1])
    assert not np.array_equal(got_p["b"], params["b"])  # b moved
    # c: Adam on the column sums of G (float64, in the transposed order).
    gc = np.array([G[perm[t_indptr[j]:t_indptr[j + 1]]].astype(np.float64).sum()
                   for j in range(m)])
    ref_c, (mc, vc) = params["c"].astype(np.float64), (a.astype(np.float64) for a in state["c"])
    _np_adam(ref_c, gc.astype(dtype).astype(np.float64), mc, vc, 3, **ADAM)
    t = 1e-12 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(got_p["c"], ref_c, rtol=t, atol=t)


@pytest.mark.parametrize("index", INDEX)
@pytest.mark.parametrize("dtype", FLOAT)
def test_csr_perm_matmul_adam_sq(index, dtype):
    """The W part of the step: gradient A.T @ G + wd * p, Adam, row squared norms."""
    rng = np.random.default_rng(2)
    indptr, indices, data, A = random_csr(23, 41, rng, dtype, index)
    k = 19
    G = rng.standard_normal((23, k)).astype(dtype)
    p = rng.standard_normal((41, k)).astype(dtype)
    m = rng.random((41, k)).astype(dtype) * 0.1
    v = rng.random((41, k)).astype(dtype) * 0.01
    rp, rm, rv = (a.astype(np.float64) for a in (p, m, v))
    sq_ref = (rp ** 2).sum(1)
    _np_adam(rp, A.toarray().T.astype(np.float64) @ G + 0.2 * rp, rm, rv, 2, **ADAM)
    t_indptr, t_indices, perm = K.csr_transpose(indptr, indices, 41)
    lr_t, eps_t, _, _ = K._adam_coefficients(ADAM["lr"], ADAM["beta1"], ADAM["beta2"],
                                             ADAM["eps"], 2, 0.0, False)
    buf, stride = AR._row_buffers(2, k, dtype)
    sq = np.empty(41)
    AR._csr_perm_matmul_adam_sq(t_indptr, t_indices, perm, data, G, p, m, v, lr_t,
                               ADAM["beta1"], ADAM["beta2"], eps_t, 0.2, buf, stride, 2, sq)
    t = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(sq, sq_ref, rtol=t)
    np.testing.assert_allclose(p, rp, rtol=t, atol=t)
    np.testing.assert_allclose(m, rm, rtol=t, atol=t)
    np.testing.assert_allclose(v, rv, rtol=t, atol=t)


@pytest.mark.parametrize("dtype", FLOAT)
@pytest.mark.parametrize("act", sorted(ACT_REF))
def test_sum_parts_act_grad(dtype, act):
    rng = np.random.default_rng(3)
    parts = rng.standard_normal((3, 11, 7)).astype(dtype)
    H = ACT_REF[act][0](rng.standard_normal((11, 7))).astype(dtype)
    dZ = np.empty((11, 7), dtype)
    AR._sum_parts_act_grad(parts, H, dZ, AR.ACTIVATION_CODES[act])
    ref = parts.astype(np.float64).sum(0) * ACT_REF[act][1](H.astype(np.float64))
    np.testing.assert_allclose(dZ, ref, **tol(dtype))
