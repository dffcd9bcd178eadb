"""The sparse products as backend operations: ``Ops``'s plain NumPy/SciPy
reference against the dense masked formulas written here, and ``NumpyOps``'s
kernels against that reference on awkward shapes; AutoRec computes through
the ops it was built with."""
import numpy
import pytest
import scipy.sparse

from fastnn.backend import NumpyOps, Ops, use_backend
from fastnn.recsys.sparse_ops import as_pattern

# (n rows, m columns, k): size 1, odd sizes, more columns than rows and fewer
SHAPES = [(1, 1, 1), (5, 3, 2), (7, 11, 5), (13, 4, 9)]
DTYPES = [numpy.float32, numpy.float64]
TOL = {numpy.float32: dict(rtol=2e-5, atol=2e-5), numpy.float64: dict(rtol=1e-11, atol=1e-12)}


def _case(rng, n, m, dtype, density=0.4):
    """A random mask (with an empty row when there are several) and the CSR
    matrix of the dense values at it, plus the dense matrix itself."""
    mask = rng.random((n, m)) < density
    mask[0, 0] = True
    if n > 2:
        mask[1] = False
    dense = numpy.where(mask, rng.standard_normal((n, m)), 0).astype(dtype)
    rows, cols = numpy.nonzero(mask)
    A = scipy.sparse.csr_matrix((dense[rows, cols], (rows, cols)), shape=(n, m))
    A.sort_indices()
    return mask, dense, A


def _sigmoid(x):
    return 1 / (1 + numpy.exp(-x))


@pytest.mark.parametrize("n,m,k", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_reference_products_equal_the_dense_formulas(n, m, k, dtype, rng):
    mask, dense, A = _case(rng, n, m, dtype)
    B = rng.standard_normal((m, k)).astype(dtype)
    G = rng.standard_normal((n, k)).astype(dtype)
    H = rng.standard_normal((n, k)).astype(dtype)
    Vt = rng.standard_normal((m, k)).astype(dtype)
    c = rng.standard_normal(m).astype(dtype)
    ops, tol = Ops(), TOL[dtype]
    numpy.testing.assert_allclose(ops.spmm(A, B), dense @ B, **tol)
    bias = rng.standard_normal(k).astype(dtype)
    numpy.testing.assert_allclose(ops.spmm(A, B, bias, "sigmoid"), _sigmoid(dense @ B + bias),
                                  **tol)
    numpy.testing.assert_allclose(ops.spmm(A, B, bias, "tanh"), numpy.tanh(dense @ B + bias),
                                  **tol)
    acc = rng.standard_normal((m, k)).astype(dtype)
    expected = acc + dense.T @ G
    assert ops.spmm_t(A, G, out=acc) is acc
    numpy.testing.assert_allclose(acc, expected, **tol)
    vals = rng.standard_normal(A.nnz).astype(dtype)
    numpy.testing.assert_allclose(ops.column_sums(A, vals), _scatter(mask, vals).sum(0), **tol)
    sums = numpy.ones(m, dtype)
    ops.column_sums(A, vals, out=sums)
    numpy.testing.assert_allclose(sums, 1 + _scatter(mask, vals).sum(0), **tol)
    numpy.testing.assert_allclose(ops.spmm_t(A, G), dense.T @ G, **tol)
    other = rng.standard_normal(A.nnz).astype(dtype)       # same pattern, other values
    numpy.testing.assert_allclose(ops.spmm_t(A, G, data=other),
                                  numpy.where(mask, _scatter(mask, other), 0).T @ G, **tol)
    numpy.testing.assert_allclose(ops.sddmm(A, H, Vt, c), (H @ Vt.T + c)[mask], **tol)
    numpy.testing.assert_allclose(ops.sddmm(A, H, Vt), (H @ Vt.T)[mask], **tol)
    pred = rng.standard_normal((n, m)).astype(dtype)
    w = rng.random((n, m)).astype(dtype)
    loss, grad = ops.masked_sq_error(pred[mask], dense[mask], w[mask])
    assert loss == pytest.approx(float((mask * w * (pred - dense) ** 2).sum()), rel=1e-5)
    numpy.testing.assert_allclose(grad, (2 * w * (pred - dense))[mask], **tol)
    for out in (ops.spmm(A, B), ops.spmm_t(A, G), ops.sddmm(A, H, Vt, c), grad):
        assert out.dtype == dtype


def _scatter(mask, vals):
    out = numpy.zeros(mask.shape, vals.dtype)
    out[mask] = vals  # row-major order of the mask = CSR order
    return out


def _adam(p, g, m, v, lr, b1, b2, eps, t):
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    return p - lr * (m / (1 - b1 ** t)) / (numpy.sqrt(v / (1 - b2 ** t)) + eps), m, v


@pytest.mark.parametrize("n,m,k", SHAPES)
def test_reference_autorec_step_equals_the_dense_masked_step(n, m, k, rng):
    mask, X, A = _case(rng, n, m, numpy.float64)
    X = numpy.where(mask, numpy.abs(X) + 1, 0)        # ratings-like targets
    A.data[:] = X[mask]
    W, Vt = rng.standard_normal((m, k)) * 0.5, rng.standard_normal((m, k)) * 0.5
    b, c = rng.standard_normal(k) * 0.1, rng.standard_normal(m) * 0.1
    moments = {name: (rng.random(p.shape) * 0.1, rng.random(p.shape) * 0.1)
               for name, p in (("W", W), ("b", b), ("Vt", Vt), ("c", c))}
    lr, b1, b2, eps, step, lam = 1e-2, 0.9, 0.999, 1e-7, 3, 0.7
    # The dense masked formulation, written out.
    Hd = _sigmoid(X @ W + b)
    E = mask * (Hd @ Vt.T + c - X)
    dR = 2 * E
    dZ = (dR @ Vt) * Hd * (1 - Hd)
    grads = {"W": X.T @ dZ + lam * W, "b": dZ.sum(0), "Vt": dR.T @ Hd + lam * Vt,
             "c": dR.sum(0)}
    expected = {name: _adam(p, grads[name], *moments[name], lr, b1, b2, eps, step)
                for name, p in (("W", W), ("b", b), ("Vt", Vt), ("c", c))}
    params = {name: p.copy() for name, p in (("W", W), ("b", b), ("Vt", Vt), ("c", c))}
    state = {name: (mo.copy(), ve.copy()) for name, (mo, ve) in moments.items()}
    data_loss, reg = Ops().autorec_adam_step(A, params["W"], params["b"], params["Vt"],
                                             params["c"], state, lr, b1, b2, eps, step, lam)
    assert data_loss == pytest.approx(float((E ** 2).sum()), rel=1e-12)
    assert reg == pytest.approx(lam / 2 * float((W ** 2).sum() + (Vt ** 2).sum()), rel=1e-12)
    for name, (p, mo, ve) in expected.items():
        numpy.testing.assert_allclose(params[name], p, rtol=1e-10, atol=1e-12)
        numpy.testing.assert_allclose(state[name][0], mo, rtol=1e-10, atol=1e-12)
        numpy.testing.assert_allclose(state[name][1], ve, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("n,m,k", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("as_sparse_pattern", [False, True])
def test_kernels_equal_the_reference(n, m, k, dtype, as_sparse_pattern, rng):
    _, _, A = _case(rng, n, m, dtype)
    if as_sparse_pattern:
        A = as_pattern(A)
    B = rng.standard_normal((m, 2 * k)).astype(dtype)[:, ::2]   # not contiguous
    G = rng.standard_normal((n, k)).astype(dtype)
    H = rng.standard_normal((n, k)).astype(dtype)
    Vt = rng.standard_normal((m, k)).astype(dtype)
    c = rng.standard_normal(m).astype(dtype)
    data = rng.standard_normal(A.nnz).astype(dtype)
    ref, fast, tol = Ops(), NumpyOps(), TOL[dtype]
    numpy.testing.assert_allclose(fast.spmm(A, B), ref.spmm(A, B), **tol)
    bias = rng.standard_normal(k).astype(dtype)
    for activation in ("linear", "sigmoid", "relu", "tanh", "elu"):   # elu: not in the kernel
        numpy.testing.assert_allclose(fast.spmm(A, B, bias, activation),
                                      ref.spmm(A, B, bias, activation), **tol)
    start = rng.standard_normal((m, k)).astype(dtype)
    acc = [start.copy(), start.copy()]
    fast.spmm_t(A, G, data, out=acc[0])
    ref.spmm_t(A, G, data, out=acc[1])
    numpy.testing.assert_allclose(acc[0], acc[1], **tol)
    sums = [numpy.ones(m, dtype), numpy.ones(m, dtype)]
    fast.column_sums(A, data, out=sums[0])
    ref.column_sums(A, data, out=sums[1])
    numpy.testing.assert_allclose(sums[0], sums[1], **tol)
    numpy.testing.assert_allclose(fast.column_sums(A, data), ref.column_sums(A, data), **tol)
    numpy.testing.assert_allclose(fast.spmm_t(A, G), ref.spmm_t(A, G), **tol)
    numpy.testing.assert_allclose(fast.spmm_t(A, G, data), ref.spmm_t(A, G, data), **tol)
    numpy.testing.assert_allclose(fast.sddmm(A, H, Vt, c), ref.sddmm(A, H, Vt, c), **tol)
    pred, target = rng.standard_normal(A.nnz).astype(dtype), A.data.astype(dtype)
    for w in (None, rng.random(A.nnz).astype(dtype)):
        loss, grad = fast.masked_sq_error(pred, target, w)
        ref_loss, ref_grad = ref.masked_sq_error(pred, target, w)
        assert loss == pytest.approx(ref_loss, rel=1e-5)
        numpy.testing.assert_allclose(grad, ref_grad, **tol)


@pytest.mark.parametrize("n,m,k", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ["sigmoid", "relu", "tanh", "linear"])
def test_fused_autorec_step_kernel_equals_the_reference(n, m, k, dtype, activation, rng):
    _, _, A = _case(rng, n, m, dtype)
    W, Vt = (rng.standard_normal((m, k)) * 0.5).astype(dtype), \
        (rng.standard_normal((m, k)) * 0.5).astype(dtype)
    b = (rng.standard_normal(k) * 0.1).astype(dtype)
    c = (rng.standard_normal(m) * 0.1).astype(dtype)
    inputs = (A.data * (rng.random(A.nnz) > 0.3)).astype(dtype)   # input dropout
    results = []
    for ops in (Ops(), NumpyOps()):
        params = [p.copy() for p in (W, b, Vt, c)]
        state = {name: (numpy.full_like(p, 0.01), numpy.full_like(p, 0.02))
                 for name, p in zip(("W", "b", "Vt", "c"), params)}
        losses = [ops.autorec_adam_step(A, *params, state, 1e-2, 0.9, 0.999, 1e-7, step, 0.3,
                                        activation=activation, input_values=inputs)
                  for step in (1, 2)]
        results.append((losses, params, state))
    (ref_losses, ref_params, ref_state), (losses, params, state) = results
    numpy.testing.assert_allclose(losses, ref_losses, rtol=1e-4 if dtype == numpy.float32
                                  else 1e-10)
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == numpy.float32 else dict(rtol=1e-9, atol=1e-12)
    for p, q in zip(params, ref_params):
        numpy.testing.assert_allclose(p, q, **tol)
    for name in state:
        for a, r in zip(state[name], ref_state[name]):
            numpy.testing.assert_allclose(a, r, **tol)


# sparse_ops's wrappers of the product kernels (what NumpyOps calls)
_PRODUCT_KERNELS = ("spmm", "spmm_t", "sddmm", "column_sums", "masked_sq_error",
                    "autorec_adam_step", "sampled_dense_sq_error", "spmm_t_adam")


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])   # the fused step, the layer path
def test_autorec_computes_through_the_ops_fixed_at_build(optimizer, rng, monkeypatch):
    """An AutoRec built under the reference backend keeps computing on it
    (never calling a sparse product kernel) after the block ends, and trains
    and predicts as the kernels do."""
    from fastnn.recsys import Ratings, sparse_ops
    from fastnn.recsys.autorec import AutoRec
    mask = rng.random((30, 20)) < 0.3
    u, i = numpy.nonzero(mask)
    ratings = Ratings.from_triples(u, i, rng.integers(1, 6, u.size).astype(float),
                                   rating_range=(1, 5))
    kw = dict(hidden=5, lam=1.0, dtype="float64", seed=0, batch_size=7, optimizer=optimizer,
              learning_rate=1e-2)
    fast = AutoRec(**kw)
    fast.fit(ratings, epochs=1, verbose=0)
    fast.fit(ratings, epochs=3, verbose=0)
    fast_predictions = fast.predict(u, i)
    ref = AutoRec(**kw)
    with use_backend("reference"):
        ref.fit(ratings, epochs=1, verbose=0)

    def no_kernel(*args, **kwargs):
        raise AssertionError("the reference-built AutoRec called a sparse product kernel")
    for name in _PRODUCT_KERNELS:
        monkeypatch.setattr(sparse_ops, name, no_kernel)
    ref.fit(ratings, epochs=3, verbose=0)         # refit: the same ops, outside the block
    assert type(ref.ops) is Ops
    for a, b in zip(ref.get_weights(), fast.get_weights()):
        numpy.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)
    numpy.testing.assert_allclose(ref.predict(u, i), fast_predictions, rtol=1e-10)
