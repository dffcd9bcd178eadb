"""CupyOps on a GPU against NumPy references written here, to float32
rounding, in float32 and float64, on awkward shapes (size 1, odd sizes, an
empty CSR row, non-contiguous input).

The methods CupyOps overrides (the fused ElementwiseKernels, the sparse
products, the SDDMM RawModule kernel, the Adam/SGD updates, the scatter-adds)
each get a plain NumPy reference in this file. The methods it inherits from
the reference ``Ops`` (convolution, pooling, batch norm, the recurrent cells,
softmax, the losses) run the reference's own code on CuPy: they are compared
with the "numpy" backend's Cython kernels, a different implementation whose
own tests compare it with references written in tests/kernels.

Every test skips, saying why, without CuPy or a CUDA device (the ``gpu``
fixture, tests/gpu/conftest.py).
"""
import numpy
import pytest
import scipy.sparse

from fastnn.backend import get_instance
from fastnn.backend.ops import CSR

pytestmark = pytest.mark.gpu

DTYPES = ["float32", "float64"]


def tol(dtype):
    return dict(rtol=2e-5, atol=2e-5) if dtype == "float32" else dict(rtol=1e-11, atol=1e-11)


def close(ops, got, want, dtype, **kw):
    assert ops.is_native(got), type(got)
    assert got.dtype == want.dtype or numpy.dtype(dtype) == got.dtype
    t = tol(dtype)
    t.update(kw)
    numpy.testing.assert_allclose(ops.to_numpy(got), want, **t)


def sigmoid(x):
    return 1 / (1 + numpy.exp(-x))


FORWARD = {
    "linear": lambda x, a: x, "sigmoid": lambda x, a: sigmoid(x), "tanh": lambda x, a: numpy.tanh(x),
    "relu": lambda x, a: numpy.maximum(x, 0), "leaky_relu": lambda x, a: numpy.where(x > 0, x, a * x),
    "elu": lambda x, a: numpy.where(x > 0, x, a * (numpy.exp(numpy.minimum(x, 0)) - 1)),
}
DERIV_FROM_Y = {
    "linear": lambda y, a: numpy.ones_like(y), "sigmoid": lambda y, a: y * (1 - y),
    "tanh": lambda y, a: 1 - y * y, "relu": lambda y, a: (y > 0).astype(y.dtype),
    "leaky_relu": lambda y, a: numpy.where(y > 0, 1, a), "elu": lambda y, a: numpy.where(y > 0, 1, y + a),
}


# ------------------------------------------------------------------ arrays
def test_transfers_round_trip_and_predict_keeps_the_array_kind(gpu, rng):
    cupy = pytest.importorskip("cupy", reason="CuPy is not installed")
    x = rng.standard_normal((3, 5)).astype("float32")
    d = gpu.asarray(x)
    assert isinstance(d, cupy.ndarray) and gpu.is_native(d) and not gpu.is_host
    numpy.testing.assert_array_equal(gpu.to_numpy(d), x)
    assert gpu.fetch([d.sum(), 1, numpy.float64(2.5)]) == pytest.approx([x.sum(), 1, 2.5], rel=1e-6)
    assert get_instance("gpu") is gpu


def test_random_draws_live_on_the_device_and_follow_the_seed(gpu):
    import fastnn
    fastnn.set_seed(5)
    a = gpu.random_uniform((400, 3), "float32")
    b = gpu.random_normal((7,), "float64")
    p = gpu.permutation(11)
    fastnn.set_seed(5)
    numpy.testing.assert_array_equal(gpu.to_numpy(gpu.random_uniform((400, 3), "float32")),
                                     gpu.to_numpy(a))
    assert a.dtype == numpy.float32 and b.dtype == numpy.float64 and b.shape == (7,)
    ah = gpu.to_numpy(a)
    assert 0 <= ah.min() and ah.max() < 1 and 0.4 < ah.mean() < 0.6
    assert sorted(gpu.to_numpy(p).tolist()) == list(range(11))


# ------------------------------------------------------------- activations
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(FORWARD))
def test_activation_kernels(gpu, rng, dtype, name):
    alpha = 0.3
    x = (rng.standard_normal((7, 13)) * 4).astype(dtype)
    x[0, :3] = [0, 80, -80]  # sigmoid's both tails, a kink
    y = FORWARD[name](x.astype(numpy.float64), alpha)
    dy = rng.standard_normal(x.shape).astype(dtype)
    xd = gpu.asarray(x)[:, ::2]  # non-contiguous
    got = gpu.activation_forward(name, xd, alpha)
    close(gpu, got, y[:, ::2], dtype)
    yd = gpu.asarray(y.astype(dtype))
    want = dy.astype(numpy.float64) * DERIV_FROM_Y[name](y.astype(dtype).astype(numpy.float64), alpha)
    close(gpu, gpu.activation_backward(name, yd, gpu.asarray(dy), alpha), want, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_and_gelu_through_the_reference_code(gpu, rng, dtype):
    x = rng.standard_normal((5, 9)).astype(dtype)
    e = numpy.exp(x - x.max(1, keepdims=True))
    close(gpu, gpu.activation_forward("softmax", gpu.asarray(x)), e / e.sum(1, keepdims=True), dtype)
    from scipy.special import erf
    close(gpu, gpu.activation_forward("gelu", gpu.asarray(x)), x * 0.5 * (1 + erf(x / numpy.sqrt(2))),
          dtype)


# ------------------------------------------------------------------- dense
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(FORWARD) + ["softmax"])
@pytest.mark.parametrize("shape", [(1, 1, 1), (17, 33, 5), (64, 7, 130)])
def test_dense_forward_backward(gpu, rng, dtype, name, shape):
    n, d, k = shape
    x = rng.standard_normal((n, d)).astype(dtype)
    W = rng.standard_normal((d, k)).astype(dtype) / numpy.sqrt(d)
    b = rng.standard_normal(k).astype(dtype)
    z = x.astype(numpy.float64) @ W + b
    if name == "softmax":
        e = numpy.exp(z - z.max(1, keepdims=True))
        y = e / e.sum(1, keepdims=True)
    else:
        y = FORWARD[name](z, 0.0)
    y_got = gpu.dense_forward(gpu.asarray(x), gpu.asarray(W), gpu.asarray(b), name)
    close(gpu, y_got, y, dtype, rtol=1e-4, atol=1e-5)
    # no bias
    close(gpu, gpu.dense_forward(gpu.asarray(x), gpu.asarray(W), None, "relu"),
          numpy.maximum(x.astype(numpy.float64) @ W, 0), dtype, rtol=1e-4, atol=1e-5)
    dy = rng.standard_normal((n, k)).astype(dtype)
    yh = gpu.to_numpy(y_got).astype(numpy.float64)
    if name == "softmax":
        dz = yh * (dy - (dy * yh).sum(1, keepdims=True))
    else:
        dz = dy * DERIV_FROM_Y[name](yh, 0.0)
    dW = gpu.asarray(numpy.ones((d, k), dtype=dtype))
    db = gpu.asarray(numpy.ones(k, dtype=dtype))
    dx = gpu.dense_backward(gpu.asarray(x), gpu.asarray(W), y_got, gpu.asarray(dy), dW, db, name)
    close(gpu, dx, dz @ W.T, dtype, rtol=1e-4, atol=1e-5)
    close(gpu, dW, 1 + x.T.astype(numpy.float64) @ dz, dtype, rtol=1e-4, atol=1e-4)
    close(gpu, db, 1 + dz.sum(0), dtype, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_variants(gpu, rng, dtype):
    a = rng.standard_normal((9, 4)).astype(dtype)
    b = rng.standard_normal((9, 6)).astype(dtype)
    out = gpu.asarray(numpy.ones((4, 6), dtype=dtype))
    gpu.gemm(gpu.asarray(a), gpu.asarray(b), trans_a=True, out=out, alpha=2.0, beta=0.5)
    close(gpu, out, 0.5 + 2 * a.T.astype(numpy.float64) @ b, dtype, rtol=1e-4, atol=1e-5)


# -------------------------------------------------------------- optimizers
def adam_reference(p, g, m, v, lr, b1, b2, eps, step, wd, decoupled):
    p, g, m, v = (a.astype(numpy.float64) for a in (p, g, m, v))
    if wd and not decoupled:
        g = g + wd * p
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    if wd and decoupled:
        p = p - lr * wd * p
    p = p - lr / (1 - b1 ** step) * m / (numpy.sqrt(v / (1 - b2 ** step)) + eps)
    return p, m, v


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("wd,decoupled", [(0.0, False), (0.01, False), (0.05, True)])
def test_adam_update_kernel(gpu, rng, dtype, wd, decoupled):
    shape = (13, 7)
    p, g, m = (rng.standard_normal(shape).astype(dtype) for _ in range(3))
    v = rng.random(shape).astype(dtype)
    want = adam_reference(p, g, m, v, 0.01, 0.9, 0.999, 1e-7, 3, wd, decoupled)
    pd, md, vd = gpu.asarray(p), gpu.asarray(m), gpu.asarray(v)
    gpu.adam_update(pd, gpu.asarray(g), md, vd, 0.01, 0.9, 0.999, 1e-7, 3, wd, decoupled)
    for got, w in zip((pd, md, vd), want):
        close(gpu, got, w, dtype, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum_kernel(gpu, rng, dtype, nesterov):
    p, g, vel = (rng.standard_normal(11).astype(dtype) for _ in range(3))
    lr, mom, wd = 0.1, 0.9, 0.01
    g64 = g.astype(numpy.float64) + wd * p
    v_new = mom * vel - lr * g64
    p_new = p + (mom * v_new - lr * g64 if nesterov else v_new)
    pd, vd = gpu.asarray(p), gpu.asarray(vel)
    gpu.sgd_update(pd, gpu.asarray(g), vd, lr, mom, nesterov, wd)
    close(gpu, pd, p_new, dtype)
    close(gpu, vd, v_new, dtype)
    pd = gpu.asarray(p)
    gpu.sgd_update(pd, gpu.asarray(g), None, lr)  # plain SGD: the reference code
    close(gpu, pd, p - lr * g.astype(numpy.float64), dtype)


# ------------------------------------------------------------ scatter-adds
@pytest.mark.parametrize("dtype", DTYPES)
def test_embedding_backward_sums_repeated_rows(gpu, rng, dtype):
    idx = numpy.array([[3, 1, 3], [0, 3, 4]])
    dy = rng.standard_normal((2, 3, 5)).astype(dtype)
    want = numpy.zeros((6, 5))
    for i, row in enumerate(idx):
        for j, r in enumerate(row):
            want[r] += dy[i, j]
    dt = gpu.asarray(numpy.zeros((6, 5), dtype=dtype))
    gpu.embedding_backward(gpu.asarray(idx), gpu.asarray(dy), dt)
    close(gpu, dt, want, dtype)


def test_maxout_backward(gpu, rng):
    idx = rng.integers(0, 3, (4, 5)).astype(numpy.int32)
    dy = rng.standard_normal((4, 5)).astype("float32")
    want = numpy.zeros((4, 5, 3), dtype="float32")
    for i in range(4):
        for u in range(5):
            want[i, u, idx[i, u]] = dy[i, u]
    close(gpu, gpu.maxout_backward(gpu.asarray(dy), gpu.asarray(idx), 3), want.reshape(4, 15),
          "float32")


# --------------------------------------------------------- sparse products
def _csr(rng, n, m, density, dtype):
    A = scipy.sparse.random(n, m, density=density, format="csr", random_state=rng,
                            dtype=numpy.float64)
    A.data = numpy.round(A.data * 4) + 1
    if n > 2:
        A = scipy.sparse.csr_matrix(scipy.sparse.diags((numpy.arange(n) != 2) * 1.0) @ A)
        A.eliminate_zeros()  # an empty row
    A.sort_indices()
    return A.astype(dtype)


def _dev(gpu, A):
    return CSR(A.indptr, A.indices, gpu.asarray(A.data), A.shape)


def _dense_at(A, M):
    """M's values at A's stored positions, in A's CSR order (loops)."""
    out = []
    for r in range(A.shape[0]):
        for p in range(A.indptr[r], A.indptr[r + 1]):
            out.append(M[r, A.indices[p]])
    return numpy.array(out)


SPARSE_SHAPES = [(1, 1, 1), (9, 7, 3), (40, 33, 65), (200, 150, 500)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,m,k", SPARSE_SHAPES)
def test_spmm_spmm_t_column_sums(gpu, rng, dtype, n, m, k):
    A = _csr(rng, n, m, 0.3 if n > 1 else 1.0, dtype)
    Ad = A.toarray().astype(numpy.float64)
    B = rng.standard_normal((m, k)).astype(dtype)
    bias = rng.standard_normal(k).astype(dtype)
    close(gpu, gpu.spmm(_dev(gpu, A), gpu.asarray(B)), Ad @ B, dtype, rtol=1e-4, atol=1e-5)
    close(gpu, gpu.spmm(_dev(gpu, A), gpu.asarray(B), gpu.asarray(bias), "sigmoid"),
          sigmoid(Ad @ B + bias), dtype, rtol=1e-4, atol=1e-5)
    G = rng.standard_normal((n, k)).astype(dtype)
    close(gpu, gpu.spmm_t(_dev(gpu, A), gpu.asarray(G)), Ad.T @ G, dtype, rtol=1e-4, atol=1e-5)
    data = rng.standard_normal(A.nnz).astype(dtype)
    Adata = scipy.sparse.csr_matrix((data, A.indices, A.indptr), shape=A.shape).toarray()
    out = gpu.asarray(numpy.ones((m, k), dtype=dtype))
    r = gpu.spmm_t(_dev(gpu, A), gpu.asarray(G), data=gpu.asarray(data), out=out)
    assert r is out
    close(gpu, out, 1 + Adata.T.astype(numpy.float64) @ G, dtype, rtol=1e-4, atol=1e-4)
    want = numpy.zeros(m)
    for p, col in enumerate(A.indices):
        want[col] += data[p]
    close(gpu, gpu.column_sums(_dev(gpu, A), gpu.asarray(data)), want, dtype, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,m,k", SPARSE_SHAPES + [(5, 4, 31), (5, 4, 32), (5, 4, 33)])
def test_sddmm_kernel(gpu, rng, dtype, n, m, k):
    A = _csr(rng, n, m, 0.3 if n > 1 else 1.0, dtype)
    H = rng.standard_normal((n, k)).astype(dtype)
    Vt = rng.standard_normal((m, k)).astype(dtype)
    c = rng.standard_normal(m).astype(dtype)
    full = H.astype(numpy.float64) @ Vt.T.astype(numpy.float64)
    got = gpu.sddmm(_dev(gpu, A), gpu.asarray(H), gpu.asarray(Vt))
    close(gpu, got, _dense_at(A, full), dtype, rtol=1e-5, atol=1e-5)
    got = gpu.sddmm(_dev(gpu, A), gpu.asarray(H), gpu.asarray(Vt), gpu.asarray(c))
    close(gpu, got, _dense_at(A, full + c), dtype, rtol=1e-5, atol=1e-5)
    # non-contiguous H (a column slice): the kernel reads a contiguous copy
    wide = numpy.zeros((n, 2 * k), dtype=dtype)
    wide[:, ::2] = H
    Hw = gpu.asarray(wide)[:, ::2]
    close(gpu, gpu.sddmm(_dev(gpu, A), Hw, gpu.asarray(Vt)), _dense_at(A, full), dtype,
          rtol=1e-5, atol=1e-5)


def test_sddmm_of_an_empty_pattern(gpu):
    A = scipy.sparse.csr_matrix((3, 4), dtype="float32")
    got = gpu.sddmm(_dev(gpu, A), gpu.asarray(numpy.ones((3, 2), "float32")),
                    gpu.asarray(numpy.ones((4, 2), "float32")))
    assert got.shape == (0,)


@pytest.mark.parametrize("dtype", DTYPES)
def test_csr_take_rows_and_masked_sq_error(gpu, rng, dtype):
    A = _csr(rng, 9, 7, 0.4, dtype)
    rows = numpy.array([8, 2, 0, 0, 5])
    got = gpu.csr_take_rows(_dev(gpu, A), rows)
    want = A[rows]
    numpy.testing.assert_array_equal(got.indptr, want.indptr)
    numpy.testing.assert_array_equal(got.indices, want.indices)
    numpy.testing.assert_array_equal(gpu.to_numpy(got.data), want.data)
    p, t, w = (rng.standard_normal(17).astype(dtype) for _ in range(3))
    loss, grad = gpu.masked_sq_error(gpu.asarray(p), gpu.asarray(t), gpu.asarray(w))
    d = p.astype(numpy.float64) - t
    assert gpu.is_native(loss) and loss.shape == ()
    assert gpu.fetch([loss])[0] == pytest.approx((w * d * d).sum(), rel=1e-6)
    close(gpu, grad, 2 * w * d, dtype)


def autorec_step_reference(X, W, b, Vt, c, state, lr, b1, b2, eps, step, lam):
    """One I-AutoRec step in float64 NumPy on dense arrays: sigmoid encoder,
    linear decoder, squared error on X's stored entries, L2 lam/2 on W and Vt,
    Adam on the four parameters."""
    Xd = X.toarray().astype(numpy.float64)
    mask = X.copy()
    mask.data[:] = 1
    M = mask.toarray()
    W, b, Vt, c = (a.astype(numpy.float64) for a in (W, b, Vt, c))
    H = sigmoid(Xd @ W + b)
    P = H @ Vt.T + c
    E = (P - Xd) * M
    data_loss = (E * E).sum()
    reg = 0.5 * lam * ((W * W).sum() + (Vt * Vt).sum())
    G = 2 * E
    dVt = G.T @ H + lam * Vt
    dc = G.sum(0)
    dZ = (G @ Vt) * H * (1 - H)
    dW = Xd.T @ dZ + lam * W
    db = dZ.sum(0)
    new = {}
    for name, p, g in (("W", W, dW), ("b", b, db), ("Vt", Vt, dVt), ("c", c, dc)):
        m, v = state[name]
        new[name] = adam_reference(p, g, m, v, lr, b1, b2, eps, step, 0.0, False)
    return data_loss, reg, new


@pytest.mark.parametrize("dtype", DTYPES)
def test_autorec_adam_step(gpu, rng, dtype):
    n, m, k = 12, 9, 6
    X = _csr(rng, n, m, 0.4, dtype)
    W = (rng.standard_normal((m, k)) * 0.3).astype(dtype)
    b = (rng.standard_normal(k) * 0.1).astype(dtype)
    Vt = (rng.standard_normal((m, k)) * 0.3).astype(dtype)
    c = (rng.standard_normal(m) * 0.1).astype(dtype)
    state = {name: (rng.standard_normal(a.shape).astype(dtype) * 0.01,
                    rng.random(a.shape).astype(dtype) * 0.01)
             for name, a in (("W", W), ("b", b), ("Vt", Vt), ("c", c))}
    want_loss, want_reg, want = autorec_step_reference(X, W, b, Vt, c, state, 0.01, 0.9, 0.999,
                                                       1e-8, 2, 0.5)
    params = {name: gpu.asarray(a) for name, a in (("W", W), ("b", b), ("Vt", Vt), ("c", c))}
    dstate = {name: (gpu.asarray(mv[0]), gpu.asarray(mv[1])) for name, mv in state.items()}
    loss, reg = gpu.autorec_adam_step(_dev(gpu, X), params["W"], params["b"], params["Vt"],
                                      params["c"], dstate, 0.01, 0.9, 0.999, 1e-8, 2, 0.5)
    assert gpu.is_native(loss) and gpu.is_native(reg)
    got_loss, got_reg = gpu.fetch([loss, reg])
    assert got_loss == pytest.approx(want_loss, rel=1e-5)
    assert got_reg == pytest.approx(want_reg, rel=1e-5)
    for name in params:
        p, mm, vv = want[name]
        close(gpu, params[name], p, dtype, rtol=1e-4, atol=1e-5)
        close(gpu, dstate[name][0], mm, dtype, rtol=1e-4, atol=1e-5)
        close(gpu, dstate[name][1], vv, dtype, rtol=1e-4, atol=1e-6)


# --------------------- inherited reference code against the Cython kernels
@pytest.fixture
def cpu():
    return get_instance("numpy")


def _both(gpu, cpu, method, *args, **kwargs):
    g = getattr(gpu, method)(*[gpu.asarray(a) if isinstance(a, numpy.ndarray) else a
                               for a in args], **kwargs)
    c = getattr(cpu, method)(*args, **kwargs)
    return g, c


@pytest.mark.parametrize("dtype", DTYPES)
def test_conv2d_matches_the_cpu_kernel(gpu, cpu, rng, dtype):
    x = rng.standard_normal((2, 9, 8, 6)).astype(dtype)
    W = rng.standard_normal((3, 2, 3, 4)).astype(dtype)  # groups=2: 6 channels, 3 a group
    b = rng.standard_normal(4).astype(dtype)
    geo = dict(strides=(2, 1), pads=(1, 1, 0, 1), dilation=(1, 2), groups=2)
    g, c = _both(gpu, cpu, "conv2d_forward", x, W, b, activation="relu", **geo)
    close(gpu, g, c, dtype, rtol=1e-4, atol=1e-5)
    dy = rng.standard_normal(c.shape).astype(dtype)
    dWg, dWc = gpu.asarray(numpy.zeros_like(W)), numpy.zeros_like(W)
    dbg, dbc = gpu.asarray(numpy.zeros_like(b)), numpy.zeros_like(b)
    dxg = gpu.conv2d_backward(gpu.asarray(x), gpu.asarray(W), g, gpu.asarray(dy), dWg, dbg,
                              activation="relu", **geo)
    dxc = cpu.conv2d_backward(x, W, c, dy, dWc, dbc, activation="relu", **geo)
    for got, want in ((dxg, dxc), (dWg, dWc), (dbg, dbc)):
        close(gpu, got, want, dtype, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["max", "avg"])
def test_pooling_matches_the_cpu_kernel(gpu, cpu, rng, dtype, mode):
    x = rng.standard_normal((2, 7, 5, 3)).astype(dtype)
    g, c = _both(gpu, cpu, "pool2d_forward", x, (3, 2), (2, 2), "same", mode)
    close(gpu, g[0], c[0], dtype)
    dy = rng.standard_normal(c[0].shape).astype(dtype)
    dg = gpu.pool2d_backward(gpu.asarray(dy), g[1], x.shape, (3, 2), (2, 2), "same", mode)
    dc = cpu.pool2d_backward(dy, c[1], x.shape, (3, 2), (2, 2), "same", mode)
    close(gpu, dg, dc, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_batchnorm_matches_the_cpu_kernel(gpu, cpu, rng, dtype):
    x = (rng.standard_normal((37, 5)) * 3 + 2).astype(dtype)
    gamma, beta = rng.standard_normal(5).astype(dtype), rng.standard_normal(5).astype(dtype)
    g, c = _both(gpu, cpu, "batchnorm_forward", x, gamma, beta, 1e-3)
    for a, bb in zip(g, c):
        close(gpu, a, bb, dtype, rtol=1e-4, atol=1e-5)
    dy = rng.standard_normal(x.shape).astype(dtype)
    dgg, dbg = gpu.asarray(numpy.zeros(5, dtype)), gpu.asarray(numpy.zeros(5, dtype))
    dgc, dbc = numpy.zeros(5, dtype), numpy.zeros(5, dtype)
    dxg = gpu.batchnorm_backward(gpu.asarray(x), gpu.asarray(dy), gpu.asarray(gamma), g[1], g[2],
                                 1e-3, dgg, dbg)
    dxc = cpu.batchnorm_backward(x, dy, gamma, c[1], c[2], 1e-3, dgc, dbc)
    for a, bb in ((dxg, dxc), (dgg, dgc), (dbg, dbc)):
        close(gpu, a, bb, dtype, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cell", ["simple", "lstm", "gru"])
def test_recurrent_cells_match_the_cpu_kernels(gpu, cpu, rng, dtype, cell):
    T, N, U = 5, 3, 4
    G = {"simple": 1, "lstm": 4, "gru": 3}[cell]
    xproj = rng.standard_normal((T, N, G * U)).astype(dtype)
    R = (rng.standard_normal((U, G * U)) * 0.5).astype(dtype)
    h0 = rng.standard_normal((N, U)).astype(dtype)
    c0 = rng.standard_normal((N, U)).astype(dtype) if cell == "lstm" else None
    b_rec = rng.standard_normal(3 * U).astype(dtype) if cell == "gru" else None
    mask = rng.random((T, N)) > 0.3
    args = dict(mask=mask, b_rec=b_rec)
    yg = gpu.rnn_forward(cell, gpu.asarray(xproj), gpu.asarray(R), gpu.asarray(h0),
                         None if c0 is None else gpu.asarray(c0), mask=gpu.asarray(mask),
                         b_rec=None if b_rec is None else gpu.asarray(b_rec))
    yc = cpu.rnn_forward(cell, xproj.copy(), R, h0, c0, **args)
    close(gpu, yg[0], yc[0], dtype, rtol=1e-4, atol=1e-5)
    dY = rng.standard_normal(yc[0].shape).astype(dtype)
    dRg, dRc = gpu.asarray(numpy.zeros_like(R)), numpy.zeros_like(R)
    dbg = None if b_rec is None else gpu.asarray(numpy.zeros_like(b_rec))
    dbc = None if b_rec is None else numpy.zeros_like(b_rec)
    gg = gpu.rnn_backward(yg[3], gpu.asarray(dY), dR=dRg, db_rec=dbg)
    gc = cpu.rnn_backward(yc[3], dY, dR=dRc, db_rec=dbc)
    close(gpu, gg[0], gc[0], dtype, rtol=1e-4, atol=1e-4)
    close(gpu, gg[1], gc[1], dtype, rtol=1e-4, atol=1e-4)
    close(gpu, dRg, dRc, dtype, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_cross_entropy_matches_the_cpu_kernel(gpu, cpu, rng, dtype):
    logits = rng.standard_normal((6, 5)).astype(dtype)
    labels = numpy.array([0, 4, 2, 2, 1, 3])
    g, c = _both(gpu, cpu, "softmax_cross_entropy", logits, labels)
    close(gpu, g[0], c[0], dtype)
    close(gpu, g[1], c[1], dtype)
