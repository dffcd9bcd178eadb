"""fastnn._C.sparse kernels against NumPy/SciPy references on random CSR inputs
of awkward shapes: empty rows, single-entry rows, long rows, empty matrices,
int32/int64 indices, float32/float64; plus validation errors and determinism."""
import numpy as np
import pytest
import scipy.sparse as sp

from fastnn._C import sparse as K

INDEX = [np.int32, np.int64]
FLOAT = [np.float32, np.float64]


def tol(dtype):
    return dict(rtol=2e-5, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)


def random_csr(n, m, rng, dtype=np.float32, index=np.int32, density=0.2, unsorted=False):
    """Random CSR with an empty row, a one-entry row and a full (long) row."""
    A = sp.random(n, m, density=density, format="lil", random_state=rng, dtype=np.float64)
    if n >= 3 and m >= 1:
        A[0, :] = 0
        A[1, :] = 0
        A[1, m // 2] = 1.5
        A[2, :] = rng.standard_normal(m)
    A = A.tocsr()
    A.sort_indices()
    indptr = A.indptr.astype(index)
    indices = A.indices.astype(index)
    data = A.data.astype(dtype)
    if unsorted:  # reverse each row's entries: kernels must not rely on order
        for i in range(n):
            s = slice(indptr[i], indptr[i + 1])
            indices[s] = indices[s][::-1].copy()
            data[s] = data[s][::-1].copy()
    return indptr, indices, data, sp.csr_matrix((data, indices, indptr), shape=(n, m))


SHAPES = [(1, 1, 1), (3, 1, 2), (7, 5, 1), (17, 33, 9), (40, 300, 64), (5, 3, 0)]


@pytest.mark.parametrize("index", INDEX)
@pytest.mark.parametrize("dtype", FLOAT)
@pytest.mark.parametrize("n,m,k", SHAPES)
@pytest.mark.parametrize("unsorted", [False, True])
def test_csr_matmul(index, dtype, n, m, k, unsorted):
    rng = np.random.default_rng(n * 100 + m + k)
    indptr, indices, data, A = random_csr(n, m, rng, dtype, index, unsorted=unsorted)
    B = rng.standard_normal((m, k)).astype(dtype)
    out = np.full((n, k), np.nan, dtype)
    K.csr_matmul(indptr, indices, data, B, out)
    np.testing.assert_allclose(out, A.toarray() @ B, **tol(dtype))
    out0 = out.copy()
    K.csr_matmul(indptr, indices, data, B, out, accumulate=True)
    np.testing.assert_allclose(out, 2 * out0, **tol(dtype))


@pytest.mark.parametrize("index", INDEX)
@pytest.mark.parametrize("dtype", FLOAT)
@pytest.mark.parametrize("n,m,k", SHAPES)
@pytest.mark.parametrize("unsorted", [False, True])
def test_csr_t_matmul(index, dtype, n, m, k, unsorted):
    rng = np.random.default_rng(n * 7 + m + k)
    indptr, indices, data, A = random_csr(n, m, rng, dtype, index, unsorted=unsorted)
    G = rng.standard_normal((n, k)).astype(dtype)
    out = np.full((m, k), np.nan, dtype)
    K.csr_t_matmul(indptr, indices, data, G, out)
    ref = A.toarray().T @ G
    np.testing.assert_allclose(out, ref, **tol(dtype))
    t = K.csr_transpose(indptr, indices, m)
    K.csr_t_matmul(indptr, indices, data, G, out, accumulate=True, transpose=t)
    np.testing.assert_allclose(out, 2 * ref, **tol(dtype))


@pytest.mark.parametrize("index", INDEX)
def test_csr_transpose_matches_scipy(index):
    rng = np.random.default_rng(3)
    indptr, indices, data, A = random_csr(20, 13, rng, np.float64, index, unsorted=True)
    t_indptr, t_indices, perm = K.csr_transpose(indptr, indices, 13)
    assert t_indptr.dtype == t_indices.dtype == perm.dtype == index
    T = sp.csr_matrix((data[perm], t_indices, t_indptr), shape=(13, 20))
    np.testing.assert_array_equal(T.toarray(), A.toarray().T)
    for j in range(13):  # rows of the transpose come in increasing order
        assert (np.diff(t_indices[t_indptr[j]:t_indptr[j + 1]]) > 0).all()


@pytest.mark.parametrize("index", INDEX)
@pytest.mark.parametrize("dtype", FLOAT)
@pytest.mark.parametrize("n,m,k", SHAPES + [(4, 6, 13)])
@pytest.mark.parametrize("with_c", [True, False])
def test_sddmm(index, dtype, n, m, k, with_c):
    rng = np.random.default_rng(n + m * 3 + k)
    indptr, indices, data, A = random_csr(n, m, rng, dtype, index, unsorted=True)
    H = rng.standard_normal((n, k)).astype(dtype)
    Vt = rng.standard_normal((m, k)).astype(dtype)
    c = rng.standard_normal(m).astype(dtype) if with_c else None
    out = np.full(len(indices), np.nan, dtype)
    K.sddmm(indptr, indices, H, Vt, c, out)
    dense = H @ Vt.T + (c if with_c else 0)
    rows = np.repeat(np.arange(n), np.diff(indptr))
    np.testing.assert_allclose(out, dense[rows, indices], **tol(dtype))


@pytest.mark.parametrize("dtype", FLOAT)
def test_column_sums(dtype):
    rng = np.random.default_rng(0)
    indptr, indices, data, A = random_csr(30, 11, rng, dtype)
    out = np.ones(11, dtype)
    K.column_sums(indices, data, out)
    np.testing.assert_allclose(out, 1 + np.asarray(A.sum(axis=0)).ravel(), **tol(dtype))
    K.column_sums(indices, data, out, accumulate=False)
    np.testing.assert_allclose(out, np.asarray(A.sum(axis=0)).ravel(), **tol(dtype))


@pytest.mark.parametrize("dtype", FLOAT)
@pytest.mark.parametrize("nnz", [0, 1, 5, 4096, 10001])
@pytest.mark.parametrize("weighted", [False, True])
def test_masked_sq_error(dtype, nnz, weighted):
    rng = np.random.default_rng(nnz)
    p = rng.standard_normal(nnz).astype(dtype)
    t = rng.standard_normal(nnz).astype(dtype)
    w = rng.random(nnz).astype(dtype) if weighted else None
    loss, grad = K.masked_sq_error(p, t, w)
    wr = np.ones(nnz) if w is None else w.astype(np.float64)
    d = p.astype(np.float64) - t
    assert loss == pytest.approx(float((wr * d * d).sum()), rel=1e-12, abs=1e-12)
    assert grad.dtype == dtype
    np.testing.assert_allclose(grad, 2 * wr * d, **tol(dtype))


@pytest.mark.parametrize("dtype", FLOAT)
@pytest.mark.parametrize("decoupled", [False, True])
def test_adam_update_matches_reference(dtype, decoupled):
    from fastnn.backend.ops import Ops
    rng = np.random.default_rng(1)
    shape = (37, 5)
    p1 = rng.standard_normal(shape).astype(dtype)
    m1 = np.zeros(shape, dtype)
    v1 = np.zeros(shape, dtype)
    p2, m2, v2 = p1.copy(), m1.copy(), v1.copy()
    for step in range(1, 4):
        g = rng.standard_normal(shape).astype(dtype)
        K.adam_update(p1, g, m1, v1, 1e-2, 0.9, 0.999, 1e-7, step, 0.1, decoupled)
        Ops().adam_update(p2, g, m2, v2, 1e-2, 0.9, 0.999, 1e-7, step, 0.1, decoupled)
    np.testing.assert_allclose(p1, p2, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6)
    np.testing.assert_allclose(m1, m2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(v1, v2, rtol=1e-5, atol=1e-7)


def test_deterministic_across_runs():
    rng = np.random.default_rng(5)
    indptr, indices, data, A = random_csr(300, 200, rng, np.float32, density=0.3)
    G = rng.standard_normal((300, 64)).astype(np.float32)
    B = rng.standard_normal((200, 64)).astype(np.float32)
    outs = []
    for _ in range(5):
        o1 = K.csr_t_matmul(indptr, indices, data, G, np.empty((200, 64), np.float32))
        o2 = K.csr_matmul(indptr, indices, data, B, np.empty((300, 64), np.float32))
        o3 = K.sddmm(indptr, indices, G, B, None, np.empty(len(data), np.float32))
        loss, _ = K.masked_sq_error(o3, data)
        outs.append((o1, o2, o3, loss))
    for o in outs[1:]:
        for a, b in zip(o[:3], outs[0][:3]):
            np.testing.assert_array_equal(a, b)
        assert o[3] == outs[0][3]


# ----------------------------------------------------------------- validation
def _good():
    rng = np.random.default_rng(0)
    indptr, indices, data, A = random_csr(6, 4, rng)
    return indptr, indices, data, rng.standard_normal((4, 3)).astype(np.float32), \
        np.empty((6, 3), np.float32)


@pytest.mark.parametrize("mutate,message", [
    (lambda a: a.update(indptr=a["indptr"][:-1]), "indptr has length"),
    (lambda a: a.update(indptr=a["indptr"][::-1].copy()), "indptr"),
    (lambda a: a.update(indptr=np.r_[a["indptr"][:3], a["indptr"][2] - 1,
                                     a["indptr"][4:]].astype(np.int32)), "decreases"),
    (lambda a: a.update(indices=a["indices"] + 4), r"in \[0, 4\)"),
    (lambda a: a.update(indices=a["indices"] - 10), r"in \[0, 4\)"),
    (lambda a: a.update(indices=a["indices"].astype(np.int64)), "must match"),
    (lambda a: a.update(indptr=a["indptr"].astype(np.float32)), "int32 or int64"),
    (lambda a: a.update(data=a["data"].astype(np.float64)), "share one float dtype"),
    (lambda a: a.update(data=a["data"][:-1]), "indptr\\[-1\\]|stored entries"),
    (lambda a: a.update(B=a["B"][:3]), "in \\[0, 3\\)"),
    (lambda a: a.update(out=np.empty((6, 2), np.float32)), "out has shape"),
    (lambda a: a.update(B=np.asfortranarray(np.ones((4, 3), np.float32))), "C-contiguous"),
    (lambda a: a.update(B=[[1.0]]), "numpy.ndarray"),
    (lambda a: a.update(out=np.empty((6, 3), np.int32)), "float32 or float64"),
])
def test_csr_matmul_rejects_bad_input(mutate, message):
    indptr, indices, data, B, out = _good()
    args = dict(indptr=indptr, indices=indices, data=data, B=B, out=out)
    mutate(args)
    with pytest.raises(ValueError, match=message):
        K.csr_matmul(**args)


def test_other_kernels_reject_bad_input():
    indptr, indices, data, B, out = _good()
    H = np.ones((6, 3), np.float32)
    with pytest.raises(ValueError, match="Vt has shape"):
        K.sddmm(indptr, indices, H, np.ones((4, 2), np.float32), None,
                np.empty(len(data), np.float32))
    with pytest.raises(ValueError, match="c has shape"):
        K.sddmm(indptr, indices, H, B, np.ones(3, np.float32), np.empty(len(data), np.float32))
    with pytest.raises(ValueError, match="stored entries"):
        K.sddmm(indptr, indices, H, B, None, np.empty(len(data) + 1, np.float32))
    with pytest.raises(ValueError, match="out has shape"):
        K.csr_t_matmul(indptr, indices, data, H, np.empty((4, 2), np.float32))
    with pytest.raises(ValueError, match=r"in \[0, 3\)"):  # out's rows give A's columns
        K.csr_t_matmul(indptr, indices, data, H, np.empty((3, 3), np.float32))
    with pytest.raises(ValueError, match="target_vals has shape"):
        K.masked_sq_error(data, data[:-1])
    with pytest.raises(ValueError, match="read-only"):
        ro = np.empty((6, 3), np.float32)
        ro.flags.writeable = False
        K.csr_matmul(indptr, indices, data, B, ro)
    with pytest.raises(ValueError, match="step"):
        p = np.ones(3, np.float32)
        K.adam_update(p, p.copy(), p.copy(), p.copy(), 1e-3, 0.9, 0.999, 1e-8, 0)


@pytest.mark.parametrize("dtype", FLOAT)
@pytest.mark.parametrize("activation", ["linear", "sigmoid", "relu", "tanh"])
def test_csr_matmul_fused_epilogue(dtype, activation):
    rng = np.random.default_rng(11)
    indptr, indices, data, A = random_csr(9, 7, rng, dtype)
    B = (rng.standard_normal((7, 5)) * 30).astype(dtype)  # large |z|: sigmoid stability
    bias = rng.standard_normal(5).astype(dtype)
    out = K.csr_matmul(indptr, indices, data, B, np.empty((9, 5), dtype), bias=bias,
                       activation=activation)
    z = A.toarray().astype(np.float64) @ B + bias
    ref = {"linear": z, "sigmoid": 1 / (1 + np.exp(-z)), "relu": np.maximum(z, 0),
           "tanh": np.tanh(z)}[activation]
    np.testing.assert_allclose(out, ref, rtol=1e-5 if dtype == np.float32 else 1e-12,
                               atol=1e-6 if dtype == np.float32 else 1e-12)
    assert np.isfinite(out).all()
    with pytest.raises(ValueError, match="activation="):
        K.csr_matmul(indptr, indices, data, B, out, activation="softmax")
    with pytest.raises(ValueError, match="bias has shape"):
        K.csr_matmul(indptr, indices, data, B, out, bias=bias[:3])


def test_adam_zero_grad():
    p = np.ones(100000, np.float32)
    g = np.full_like(p, 0.5)
    K.adam_update(p, g, np.zeros_like(p), np.zeros_like(p), 1e-3, 0.9, 0.999, 1e-8, 1,
                  zero_grad=True)
    assert (g == 0).all() and (p < 1).all()


def test_large_inputs_take_the_parallel_path_and_agree():
    # big enough to pass the parallel threshold in every kernel
    rng = np.random.default_rng(2)
    indptr, indices, data, A = random_csr(2000, 600, rng, np.float32, density=0.05)
    B = rng.standard_normal((600, 64)).astype(np.float32)
    G = rng.standard_normal((2000, 64)).astype(np.float32)
    np.testing.assert_allclose(K.csr_matmul(indptr, indices, data, B, np.empty((2000, 64), np.float32)),
                               A @ B, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(K.csr_t_matmul(indptr, indices, data, G, np.empty((600, 64), np.float32)),
                               A.T @ G, rtol=1e-4, atol=1e-4)
    vals = K.sddmm(indptr, indices, G, B, None, np.empty(len(data), np.float32))
    rows = np.repeat(np.arange(2000), np.diff(indptr))
    np.testing.assert_allclose(vals, (G[rows] * B[indices]).sum(1), rtol=1e-4, atol=1e-4)
    big = rng.standard_normal(300000).astype(np.float32)
    loss, _ = K.masked_sq_error(big, np.zeros_like(big))
    assert loss == pytest.approx(float((big.astype(np.float64) ** 2).sum()), rel=1e-12)


@pytest.mark.parametrize("index", INDEX)
@pytest.mark.parametrize("dtype", FLOAT)
@pytest.mark.parametrize("n,m,k", [(1, 1, 1), (7, 5, 3), (40, 300, 64), (600, 900, 40)])
@pytest.mark.parametrize("decoupled", [False, True])
def test_csr_t_matmul_adam_equals_unfused(index, dtype, n, m, k, decoupled):
    rng = np.random.default_rng(n + m + k)
    indptr, indices, data, A = random_csr(n, m, rng, dtype, index, unsorted=True)
    fused = [rng.standard_normal((m, k)).astype(dtype), np.zeros((m, k), dtype),
             np.zeros((m, k), dtype)]
    plain = [a.copy() for a in fused]
    t = K.csr_transpose(indptr, indices, m)
    for step in (1, 2, 3):
        G = rng.standard_normal((n, k)).astype(dtype)
        K.csr_t_matmul_adam(indptr, indices, data, G, *fused, 1e-2, 0.9, 0.999, 1e-8, step,
                            weight_decay=0.05, decoupled=decoupled,
                            transpose=t if step > 1 else None)
        grad = K.csr_t_matmul(indptr, indices, data, G, np.empty((m, k), dtype))
        K.adam_update(plain[0], grad, plain[1], plain[2], 1e-2, 0.9, 0.999, 1e-8, step,
                      weight_decay=0.05, decoupled=decoupled)
    for a, b in zip(fused, plain):  # same operations in the same order: bitwise equal
        np.testing.assert_array_equal(a, b)


def test_csr_t_matmul_adam_rejects_bad_input():
    rng = np.random.default_rng(0)
    indptr, indices, data, A = random_csr(6, 4, rng)
    G = np.ones((6, 3), np.float32)
    p, m, v = (np.zeros((4, 3), np.float32) for _ in range(3))
    with pytest.raises(ValueError, match="m has shape"):
        K.csr_t_matmul_adam(indptr, indices, data, G, p, m[:2], v, 1e-3, .9, .999, 1e-8, 1)
    with pytest.raises(ValueError, match="share one float dtype"):
        K.csr_t_matmul_adam(indptr, indices, data, G, p, m, v.astype(np.float64),
                            1e-3, .9, .999, 1e-8, 1)
    with pytest.raises(ValueError, match=r"in \[0, 2\)"):
        K.csr_t_matmul_adam(indptr, indices, data, G, p[:2], m[:2], v[:2], 1e-3, .9, .999,
                            1e-8, 1)


# ------------------------------------------------------------ property-based
from hypothesis import given, settings, strategies as st  # noqa: E402


@st.composite
def csr_problems(draw):
    n = draw(st.integers(0, 12))
    m = draw(st.integers(1, 12))
    k = draw(st.integers(1, 40))
    dtype = draw(st.sampled_from(FLOAT))
    index = draw(st.sampled_from(INDEX))
    seed = draw(st.integers(0, 2**32 - 1))
    density = draw(st.floats(0.0, 1.0))
    rng = np.random.default_rng(seed)
    A = sp.random(n, m, density=density, format="csr", random_state=rng, dtype=np.float64)
    A.data = rng.standard_normal(A.nnz)
    return (A.indptr.astype(index), A.indices.astype(index), A.data.astype(dtype),
            A.astype(np.float64), k, dtype, rng)


@settings(max_examples=60, deadline=None)
@given(csr_problems())
def test_kernels_property(problem):
    indptr, indices, data, A, k, dtype, rng = problem
    n, m = A.shape
    Ad = A.toarray()
    B = rng.standard_normal((m, k)).astype(dtype)
    G = rng.standard_normal((n, k)).astype(dtype)
    np.testing.assert_allclose(K.csr_matmul(indptr, indices, data, B, np.empty((n, k), dtype)),
                               Ad @ B, **tol(dtype))
    np.testing.assert_allclose(K.csr_t_matmul(indptr, indices, data, G, np.empty((m, k), dtype)),
                               Ad.T @ G, **tol(dtype))
    vals = K.sddmm(indptr, indices, G, B, None, np.empty(len(data), dtype))
    rows = np.repeat(np.arange(n), np.diff(indptr))
    np.testing.assert_allclose(vals, (G @ B.T)[rows, indices], **tol(dtype))


@pytest.mark.parametrize("index", INDEX)
@pytest.mark.parametrize("dtype", FLOAT)
@pytest.mark.parametrize("n,m,k", [(1, 1, 1), (7, 5, 3), (17, 33, 9), (40, 300, 64),
                                   (600, 900, 40), (5, 3, 0)])
@pytest.mark.parametrize("with_c,weighted", [(True, False), (False, True)])
def test_sddmm_sq_error_equals_unfused(index, dtype, n, m, k, with_c, weighted):
    rng = np.random.default_rng(n * 3 + m + k)
    indptr, indices, data, A = random_csr(n, m, rng, dtype, index, unsorted=True)
    H = rng.standard_normal((n, k)).astype(dtype)
    Vt = rng.standard_normal((m, k)).astype(dtype)
    c = rng.standard_normal(m).astype(dtype) if with_c else None
    w = rng.random(len(data)).astype(dtype) if weighted else None
    vals, grad = np.empty_like(data), np.empty_like(data)
    dH = np.full((n, k), np.nan, dtype)
    loss = K.sddmm_sq_error(indptr, indices, H, Vt, c, data, vals, grad, dH, weights=w)
    ref_vals = K.sddmm(indptr, indices, H, Vt, c, np.empty_like(data))
    ref_loss, ref_grad = K.masked_sq_error(ref_vals, data, w)
    ref_dH = K.csr_matmul(indptr, indices, ref_grad, Vt, np.empty((n, k), dtype))
    np.testing.assert_array_equal(vals, ref_vals)   # same operations, same order
    np.testing.assert_array_equal(grad, ref_grad)
    np.testing.assert_array_equal(dH, ref_dH)
    assert loss == pytest.approx(ref_loss, rel=1e-12, abs=1e-300)
    K.sddmm_sq_error(indptr, indices, H, Vt, c, data, vals, grad, dH, weights=w,
                     accumulate=True)
    np.testing.assert_allclose(dH, 2 * ref_dH, **tol(dtype))


def test_sddmm_sq_error_rejects_bad_input():
    rng = np.random.default_rng(0)
    indptr, indices, data, A = random_csr(6, 4, rng)
    H, Vt = np.ones((6, 3), np.float32), np.ones((4, 3), np.float32)
    vals, grad = np.empty_like(data), np.empty_like(data)
    with pytest.raises(ValueError, match="dH has shape"):
        K.sddmm_sq_error(indptr, indices, H, Vt, None, data, vals, grad, np.empty((6, 2), np.float32))
    with pytest.raises(ValueError, match="target_vals has shape"):
        K.sddmm_sq_error(indptr, indices, H, Vt, None, data[:-1], vals, grad, np.empty_like(H))
    with pytest.raises(ValueError, match="share one float dtype"):
        K.sddmm_sq_error(indptr, indices, H, Vt.astype(np.float64), None, data, vals, grad,
                         np.empty_like(H))


def test_float32_sigmoid_epilogue_within_2_ulp():
    # The float32 epilogue uses a vectorisable exp (Cephes polynomial), not libm.
    z = np.concatenate([np.linspace(-100, 100, 20001),
                        np.random.default_rng(0).standard_normal(5000) * 5]).astype(np.float32)
    n = len(z)
    ident = np.arange(n + 1, dtype=np.int32)
    out = K.csr_matmul(ident, ident[:-1], np.ones(n, np.float32), z.reshape(-1, 1).copy(),
                       np.empty((n, 1), np.float32), activation="sigmoid")[:, 0]
    ref = (1 / (1 + np.exp(-z.astype(np.float64)))).astype(np.float32)
    normal = ref > 1e-30
    ulps = np.abs(out.view(np.int32).astype(np.int64) - ref.view(np.int32).astype(np.int64))
    assert ulps[normal].max() <= 2
    assert np.abs(out - ref).max() < 1e-30 + 1e-7 and ((out >= 0) & (out <= 1)).all()
