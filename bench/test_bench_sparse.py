"""pytest-benchmark: each sparse kernel against the dense masked NumPy
formulation it replaces, on one ML-1M-sized I-AutoRec batch (256 items x 6,040
users, ~4.5% observed, k = 500, float32). Benchmarks in one group compare the
two ways; ``test_*_ratio`` checks a speed goal as a ratio measured in the same
run (never an absolute time).

    python -m pytest bench/test_bench_sparse.py --benchmark-group-by=group
    python -m pytest bench/test_bench_sparse.py --benchmark-disable   # ratio checks only
"""
import time

import numpy as np
import pytest
import scipy.sparse as sp

from fastnn.backend.ops import Ops
from fastnn.recsys import sparse_ops as so

BATCH, USERS, K, DENSITY = 256, 6040, 500, 0.045


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    X = sp.random(BATCH, USERS, density=DENSITY, format="csr", dtype=np.float32,
                  random_state=rng)
    X.data = rng.integers(1, 6, X.nnz).astype(np.float32)
    P = so.as_pattern(X)
    P.transpose_structure  # computed once per pattern, as in training
    f32 = lambda *shape: rng.standard_normal(shape).astype(np.float32)  # noqa: E731
    Xd = X.toarray()
    return dict(P=P, Xd=Xd, M=(Xd != 0).astype(np.float32), W=f32(USERS, K) * 0.01,
                b=f32(K), Vt=f32(USERS, K) * 0.01, c=f32(USERS), H=np.abs(f32(BATCH, K)) % 1,
                G=f32(BATCH, K), vals=f32(X.nnz))


# ------------------------------------------------------------------ kernels
@pytest.mark.benchmark(group="encoder X @ W")
def test_spmm_sparse(benchmark, batch):
    out = np.empty((BATCH, K), np.float32)
    benchmark(so.spmm, batch["P"], batch["W"], out)


@pytest.mark.benchmark(group="encoder X @ W")
def test_spmm_dense(benchmark, batch):
    benchmark(np.matmul, batch["Xd"], batch["W"])


@pytest.mark.benchmark(group="weight gradient X.T @ G")
def test_spmm_t_sparse(benchmark, batch):
    out = np.empty((USERS, K), np.float32)
    benchmark(so.spmm_t, batch["P"], batch["G"], out)


@pytest.mark.benchmark(group="weight gradient X.T @ G")
def test_spmm_t_dense(benchmark, batch):
    benchmark(lambda: batch["Xd"].T @ batch["G"])


@pytest.mark.benchmark(group="decoder at observed entries")
def test_sddmm_sparse(benchmark, batch):
    out = np.empty(batch["P"].nnz, np.float32)
    benchmark(so.sddmm, batch["P"], batch["H"], batch["Vt"], batch["c"], out)


@pytest.mark.benchmark(group="decoder at observed entries")
def test_sddmm_dense_masked(benchmark, batch):
    benchmark(lambda: (batch["H"] @ batch["Vt"].T + batch["c"]) * batch["M"])


@pytest.mark.benchmark(group="masked squared error + gradient")
def test_masked_loss_sparse(benchmark, batch):
    benchmark(so.masked_sq_error, batch["vals"], batch["P"].data)


@pytest.mark.benchmark(group="masked squared error + gradient")
def test_masked_loss_dense(benchmark, batch):
    R = batch["H"] @ batch["Vt"].T

    def dense():
        E = batch["M"] * (R - batch["Xd"])
        return float((E * E).sum(dtype=np.float64)), 2 * E
    benchmark(dense)


@pytest.mark.benchmark(group="Adam step on W (6040 x 500)")
def test_adam_fused(benchmark, batch):
    p, g = batch["W"].copy(), batch["Vt"].copy()
    m, v = np.zeros_like(p), np.zeros_like(p)
    benchmark(so.adam_update, p, g, m, v, 1e-3, 0.9, 0.999, 1e-8, 10, 1e-3)


@pytest.mark.benchmark(group="Adam step on W (6040 x 500)")
def test_adam_numpy(benchmark, batch):
    p, g = batch["W"].copy(), batch["Vt"].copy()
    m, v = np.zeros_like(p), np.zeros_like(p)
    benchmark(Ops().adam_update, p, g, m, v, 1e-3, 0.9, 0.999, 1e-8, 10, 1e-3)


@pytest.mark.benchmark(group="Adam step on W (6040 x 500)")
def test_spmm_t_adam_fused(benchmark, batch):
    p = batch["W"].copy()
    m, v = np.zeros_like(p), np.zeros_like(p)
    benchmark(so.spmm_t_adam, batch["P"], batch["G"], p, m, v, 1e-3, 0.9, 0.999, 1e-8, 10,
              1e-3)


# ------------------------------------------------------- whole batch step
def sparse_step(d):
    # Gradient buffers persist across steps, as in training (zeroing is counted).
    grads = d.setdefault("grads", {n: np.zeros_like(d[n]) for n in ("W", "b", "Vt", "c")})
    for g in grads.values():
        g[...] = 0
    H, enc_back = so.sparse_dense_forward(d["P"], d["W"], d["b"], "sigmoid", grads["W"],
                                          grads["b"])
    vals, dec_back = so.sampled_dense_forward(d["P"], H, d["Vt"], d["c"], grads["Vt"],
                                              grads["c"])
    loss, dvals = so.masked_sq_error(vals, d["P"].data)
    enc_back(dec_back(dvals))
    return loss


def dense_step(d):
    X, M = d["Xd"], d["M"]
    H = 1 / (1 + np.exp(-(X @ d["W"] + d["b"])))
    E = M * (H @ d["Vt"].T + d["c"] - X)
    dR = 2 * E
    dZ = (dR @ d["Vt"]) * H * (1 - H)
    grads = (X.T @ dZ, dZ.sum(0), dR.T @ H, dR.sum(0))
    return float((E * E).sum(dtype=np.float64)), grads


@pytest.mark.benchmark(group="I-AutoRec batch forward + backward")
def test_batch_step_sparse(benchmark, batch):
    benchmark(sparse_step, batch)


@pytest.mark.benchmark(group="I-AutoRec batch forward + backward")
def test_batch_step_dense_masked(benchmark, batch):
    benchmark(dense_step, batch)


def _train_state(d, key):
    """Parameters and Adam moments of their own per benchmark (steps update them)."""
    if key not in d:
        params = {n: d[n].copy() for n in ("W", "b", "Vt", "c")}
        d[key] = (params, so.autorec_adam_state(*(params[n] for n in ("W", "b", "Vt", "c"))),
                  [0])
    return d[key]


def fused_train_step(d, sweep):
    params, state, step = _train_state(d, f"train-{sweep}")
    step[0] += 1
    return so.autorec_adam_step(d["P"], params["W"], params["b"], params["Vt"], params["c"],
                                state, 1e-3, 0.9, 0.999, 1e-8, step[0], 1e-3, sweep=sweep)


def dense_train_step(d, ops=Ops()):
    params, state, step = _train_state(d, "train-dense")
    step[0] += 1
    saved = {n: d[n] for n in params}
    d.update(params)
    try:
        loss, grads = dense_step(d)
    finally:
        d.update(saved)
    for (n, p), g in zip(params.items(), grads):
        m, v = state[n]
        ops.adam_update(p, g, m, v, 1e-3, 0.9, 0.999, 1e-8, step[0],
                        weight_decay=1e-3 if n in ("W", "Vt") else 0.0)
    return loss


@pytest.mark.benchmark(group="I-AutoRec training step (forward, backward, L2, Adam)")
@pytest.mark.parametrize("sweep", ["samples", "outputs"])
def test_train_step_fused(benchmark, batch, sweep):
    benchmark(fused_train_step, batch, sweep)


@pytest.mark.benchmark(group="I-AutoRec training step (forward, backward, L2, Adam)")
def test_train_step_dense_masked(benchmark, batch):
    benchmark(dense_train_step, batch)


def best_time(fn, repeat=15):
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def test_batch_step_ratio(batch):
    """Same loss as the dense masked step, in at most 0.5x its time (measured
    here ~0.15-0.2x; the bound leaves room for a shared, noisy machine)."""
    assert sparse_step(batch) == pytest.approx(dense_step(batch)[0], rel=1e-4)
    ratio = best_time(lambda: sparse_step(batch)) / best_time(lambda: dense_step(batch))
    print(f"sparse / dense masked batch step: {ratio:.3f}")
    assert ratio < 0.5
