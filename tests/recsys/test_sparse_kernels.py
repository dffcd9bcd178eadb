"""fastnn._C.sparse kernels against NumPy/SciPy references on random CSR inputs
of awkward shapes: empty rows, single-entry rows, long rows, empty matrices,
int32/int64 indices, float32/float64; plus validation errors and determinism.
The fused AutoRec step built on them: test_autorec_step_kernel.py."""
import numpy as np
import pytest
import scipy.sparse as sp

from fastnn._C import autorec_step as AR
from fastnn._C import sparse as K

from _sparse import ADAM, FLOAT, INDEX, random_csr, tol  # shared with test_autorec_step_kernel.py


SHAPES = [(1, 1, 1), (3, 1, 2), (7, 5, 1), (17, 33, 9), (40, 300, 64), (5, 3, 0)]


@pytest.mark.parametrize("index", INDEX)
@pytest.mark.parametrize("dtype", FLOAT)
@pytest.mark.parametrize("n,m,k", SHAPES)
def test_csr_matmul(index, dtype, n, m, k):
    rng = np.random.default_rng(n * 100 + m + k)
    indptr, indices, data, A = random_csr(n, m, rng, dtype, index)
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
def test_csr_t_matmul(index, dtype, n, m, k):
    rng = np.random.default_rng(n * 7 + m + k)
    indptr, indices, data, A = random_csr(n, m, rng, dtype, index)
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
    indptr, indices, data, A = random_csr(20, 13, rng, np.float64, index)
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
    indptr, indices, data, A = random_csr(n, m, rng, dtype, index)
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


def test_kernels_reject_unsorted_indices():
    """A row whose column indices are out of order is an error before any kernel
    runs, naming the row; a repeated index (a second stored entry) is not."""
    rng = np.random.default_rng(5)
    indptr, indices, data, A = random_csr(6, 4, rng, unsorted=True)
    (row,) = [i for i in range(6) if (np.diff(indices[indptr[i]:indptr[i + 1]]) < 0).any()][:1]
    k = 3
    B, H = np.ones((4, k), np.float32), np.ones((6, k), np.float32)
    vals = np.empty(len(data), np.float32)
    p, m, v = (np.ones((4, k), np.float32) for _ in range(3))
    calls = {
        "check_csr": lambda: K.check_csr(indptr, indices, 6, 4),
        "csr_matmul": lambda: K.csr_matmul(indptr, indices, data, B, H.copy()),
        "csr_t_matmul": lambda: K.csr_t_matmul(indptr, indices, data, H, B.copy()),
        "csr_transpose": lambda: K.csr_transpose(indptr, indices, 4),
        "sddmm": lambda: K.sddmm(indptr, indices, H, B, None, vals),
        "sddmm_sq_error": lambda: K.sddmm_sq_error(indptr, indices, H, B, None, data,
                                                   vals, vals.copy(), H.copy()),
        "csr_t_matmul_adam": lambda: K.csr_t_matmul_adam(indptr, indices, data, H, p, m, v,
                                                         1e-3, .9, .999, 1e-8, 1),
    }
    for name, call in calls.items():
        with pytest.raises(ValueError, match=rf"not sorted in row {row} "):
            call()
    state = {n: (np.zeros_like(a), np.zeros_like(a)) for n, a in
             dict(W=B, b=np.zeros(k, np.float32), Vt=B.copy(), c=np.zeros(4, np.float32)).items()}
    for sweep in ("samples", "outputs"):
        with pytest.raises(ValueError, match="not sorted"):
            AR.autorec_adam_step(indptr, indices, data, B.copy(), np.zeros(k, np.float32),
                                B.copy(), np.zeros(4, np.float32), *state["W"], *state["b"],
                                *state["Vt"], *state["c"], step=1, lam_scale=0.1,
                                sweep=sweep, **ADAM)
    # Repeats are sorted (non-decreasing): accepted.
    K.check_csr(np.array([0, 3], np.int32), np.array([1, 1, 2], np.int32), 1, 3)


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
    with pytest.raises(ValueError, match="unknown activation"):
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
    indptr, indices, data, A = random_csr(n, m, rng, dtype, index)
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
    indptr, indices, data, A = random_csr(n, m, rng, dtype, index)
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


def _sigmoid_epilogue_f32(z):
    n = len(z)
    ident = np.arange(n + 1, dtype=np.int32)
    return K.csr_matmul(ident, ident[:-1], np.ones(n, np.float32), z.reshape(-1, 1).copy(),
                        np.empty((n, 1), np.float32), activation="sigmoid")[:, 0]


def test_float32_sigmoid_epilogue_saturates_to_zero_never_to_a_denormal():
    # Saturated units must hold 0, not a tiny value: products of a tiny value
    # with gradients below 1 are denormals, several times slower to compute.
    tiny = np.finfo(np.float32).tiny
    z = np.linspace(-300, 0, 300001).astype(np.float32)
    out = _sigmoid_epilogue_f32(z)
    assert not ((out > 0) & (out < tiny)).any()
    assert (out[z < -87.34] == 0).all()
    # Just above the cut the values are normal floats and still accurate.
    near = np.linspace(-87.3, -80, 5001).astype(np.float32)
    got = _sigmoid_epilogue_f32(near)
    ref = (1 / (1 + np.exp(-near.astype(np.float64)))).astype(np.float32)
    assert (got >= tiny).all()
    ulps = np.abs(got.view(np.int32).astype(np.int64) - ref.view(np.int32).astype(np.int64))
    assert ulps.max() <= 2


@pytest.mark.parametrize("index", INDEX)
@pytest.mark.parametrize("dtype", FLOAT)
@pytest.mark.parametrize("n,m", [(1, 1), (3, 4), (40, 300)])
def test_csr_take_rows_matches_scipy(index, dtype, n, m):
    rng = np.random.default_rng(n + m)
    indptr, indices, data, A = random_csr(n, m, rng, dtype, index)
    for rows in (np.arange(n), rng.permutation(n), rng.integers(0, n, 2 * n),  # repeats
                 np.array([], np.int64), np.array([n - 1, 0], np.int32), [0]):
        got = K.csr_take_rows(indptr, indices, data, rows)
        want = A[np.asarray(rows, np.int64)]
        assert [a.dtype for a in got] == [np.dtype(index), np.dtype(index), np.dtype(dtype)]
        np.testing.assert_array_equal(got[0], want.indptr)
        np.testing.assert_array_equal(got[1], want.indices)
        np.testing.assert_array_equal(got[2], want.data)


def test_csr_take_rows_rejects_bad_rows():
    indptr, indices, data, A = random_csr(6, 5, np.random.default_rng(0))
    for rows, match in (([6], r"rows holds 6; expected row numbers in \[0, 6\)"),
                        ([-1, 2], r"rows holds -1"),
                        (np.zeros((2, 2), np.int64), "1-D array of integers"),
                        (np.array([0.0, 1.0]), "1-D array of integers")):
        with pytest.raises(ValueError, match=match):
            K.csr_take_rows(indptr, indices, data, rows)


@pytest.mark.parametrize("dtype", FLOAT)
@pytest.mark.parametrize("n,k", [(0, 3), (4, 0), (1, 1), (7, 5), (300, 129), (700, 501)])
def test_sum_rows(dtype, n, k):
    # (700, 501) is big enough for threads, which take blocks of columns: the
    # bits must still be those of a float64 sum row by row, in row order.
    A = np.random.default_rng(n + k).standard_normal((n, k)).astype(dtype)
    out = np.empty(k, dtype)
    K._sum_rows(A, out)
    acc = np.zeros(k, np.float64)
    for row in A:
        acc += row
    np.testing.assert_array_equal(out, acc.astype(dtype))
