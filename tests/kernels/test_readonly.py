"""Kernels on read-only inputs (issue #19): every input is a ``const`` memoryview,
so a read-only array (a ``numpy.load(..., mmap_mode="r")`` file, a frozen array)
is read in place and gives the writable array's result bit for bit; a read-only
*output* is refused with a ValueError naming it."""
import numpy
import pytest

from fastnn import threads
from fastnn._C import activations, blas, dense, optim, sparse

DTYPES = [numpy.float32, numpy.float64]


@pytest.fixture(autouse=True)
def fixed_threads():
    """A fixed thread count: the sliced GEMM's bits depend on the slices, and the
    load-adaptive policy could pick another count between the two calls compared."""
    cap, adapt = threads.get_num_threads(), threads._state.adapt
    threads.set_num_threads(2, adapt=False)
    yield
    threads.set_num_threads(cap, adapt=bool(adapt))


def frozen(a):
    """A read-only copy of ``a`` (what a memory-mapped ``mode="r"`` file gives)."""
    a = numpy.array(a, copy=True)
    a.setflags(write=False)
    return a


def arrays(rng, dtype, *shapes):
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


def same(a, b):
    """Bit-for-bit equality, NaNs in the same places included."""
    assert a.dtype == b.dtype and a.shape == b.shape
    numpy.testing.assert_array_equal(a, b)


def test_frozen_is_read_only():
    # The helper must really give what Cython refused before: a non-writeable buffer.
    assert not frozen(numpy.ones(3)).flags.writeable


# ------------------------------------------------------------------ dense / gemm
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ["linear", "relu", "sigmoid", "tanh", "softmax"])
@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (7, 5, 3), (300, 33, 130)])
def test_dense_forward_read_only_inputs(rng, dtype, activation, m, k, n):
    x, W, b = arrays(rng, dtype, (m, k), (k, n), (n,))
    want = dense.dense_forward(x, W, b, activation)
    same(dense.dense_forward(frozen(x), frozen(W), frozen(b), activation), want)
    # Transposed (F-contiguous) read-only views are used in place too.
    xf, Wf = x.T.copy().T, W.T.copy().T
    got = dense.dense_forward(frozen(xf.T).T, frozen(Wf.T).T, None, activation)
    same(got, dense.dense_forward(xf, Wf, None, activation))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ["linear", "relu", "tanh"])
@pytest.mark.parametrize("with_db", [True, False])
@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (19, 6, 5), (300, 33, 130)])
def test_dense_backward_read_only_inputs(rng, dtype, activation, with_db, m, k, n):
    x, W, dy = arrays(rng, dtype, (m, k), (k, n), (m, n))
    y = dense.dense_forward(x, W, None, activation)
    dW0, db0 = arrays(rng, dtype, (k, n), (n,))
    dW, db = dW0.copy(), db0.copy() if with_db else None
    want = dense.dense_backward(x, W, y, dy, dW, db, activation)
    dW2, db2 = dW0.copy(), db0.copy() if with_db else None
    got = dense.dense_backward(frozen(x), frozen(W), frozen(y), frozen(dy), dW2, db2, activation)
    same(got, want)
    same(dW2, dW)
    if with_db:
        same(db2, db)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dense_read_only_outputs_are_refused(rng, dtype):
    x, W, y, dy = arrays(rng, dtype, (4, 3), (3, 2), (4, 2), (4, 2))
    with pytest.raises(ValueError, match="out"):
        dense.dense_forward(x, W, out=frozen(numpy.empty((4, 2), dtype)))
    with pytest.raises(ValueError, match="dW"):
        dense.dense_backward(x, W, y, dy, frozen(numpy.zeros_like(W)), None)
    with pytest.raises(ValueError, match="db"):
        dense.dense_backward(x, W, y, dy, numpy.zeros_like(W), frozen(numpy.zeros(2, dtype)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_gemm_read_only_inputs(rng, dtype, ta, tb):
    a, b = arrays(rng, dtype, (9, 13) if not ta else (13, 9), (13, 5) if not tb else (5, 13))
    same(blas.gemm(frozen(a), frozen(b), ta, tb), blas.gemm(a, b, ta, tb))
    with pytest.raises(ValueError, match="out"):
        blas.gemm(a, b, ta, tb, out=frozen(numpy.empty((9, 5), dtype)))


# ------------------------------------------------------------------- activations
NAMES = ["linear", "relu", "leaky_relu", "sigmoid", "tanh", "elu", "softmax"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (70, 1000)])
def test_activations_read_only_inputs(rng, dtype, name, shape):
    x, dy = arrays(rng, dtype, shape, shape)
    y = activations.activation_forward(name, x, 0.3)
    same(activations.activation_forward(name, frozen(x), 0.3), y)
    same(activations.activation_backward(name, frozen(y), frozen(dy), 0.3),
         activations.activation_backward(name, y, dy, 0.3))


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_and_maxout_read_only_inputs(rng, dtype):
    x, dy = arrays(rng, dtype, (40, 12), (40, 12))
    y = activations.softmax(x)
    same(activations.softmax(frozen(x)), y)
    same(activations.softmax_backward(frozen(y), frozen(dy)), activations.softmax_backward(y, dy))
    out, idx = activations.maxout_forward(x, 3)
    out2, idx2 = activations.maxout_forward(frozen(x), 3)
    same(out2, out)
    same(idx2, idx)
    g = dy[:, :4].copy()
    same(activations.maxout_backward(frozen(g), frozen(idx), 3),
         activations.maxout_backward(g, idx, 3))


@pytest.mark.parametrize("dtype", DTYPES)
def test_activation_read_only_outputs_are_refused(rng, dtype):
    x, = arrays(rng, dtype, (5, 4))
    with pytest.raises(ValueError, match="out"):
        activations.activation_forward("relu", x, out=frozen(numpy.empty_like(x)))
    with pytest.raises(ValueError, match="out"):
        activations.activation_backward("relu", x, x.copy(), out=frozen(numpy.empty_like(x)))
    with pytest.raises(ValueError, match="out"):
        activations.softmax(x, out=frozen(numpy.empty_like(x)))


# --------------------------------------------------------------------- optimizers
OPTIMIZERS = [
    ("sgd_update", ["velocity"], dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("rmsprop_update", ["sq"], dict(lr=0.01, rho=0.8, eps=1e-6)),
    ("adagrad_update", ["acc"], dict(lr=0.05, eps=1e-7)),
    ("adam_update", ["m", "v"], dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-7, step=2)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("method,state_names,kwargs", OPTIMIZERS)
@pytest.mark.parametrize("shape", [(1,), (3, 17), (1 << 17,)])
def test_optimizer_read_only_grad(rng, dtype, method, state_names, kwargs, shape):
    param, grad = arrays(rng, dtype, shape, shape)
    state = [numpy.abs(s) for s in arrays(rng, dtype, *[shape] * len(state_names))]
    update = getattr(optim, method)
    p1, s1 = param.copy(), [s.copy() for s in state]
    update(p1, grad, *s1, **kwargs)
    p2, s2 = param.copy(), [s.copy() for s in state]
    update(p2, frozen(grad), *s2, **kwargs)
    same(p2, p1)
    for a, b in zip(s2, s1):
        same(a, b)
    assert not numpy.array_equal(p1, param)  # the step did something


@pytest.mark.parametrize("method,state_names,kwargs", OPTIMIZERS)
def test_optimizer_read_only_param_or_state_is_refused(rng, method, state_names, kwargs):
    shape = (4, 3)
    param, grad = arrays(rng, numpy.float32, shape, shape)
    state = [numpy.abs(s) for s in arrays(rng, numpy.float32, *[shape] * len(state_names))]
    update = getattr(optim, method)
    with pytest.raises(ValueError, match="param is read-only"):
        update(frozen(param), grad, *state, **kwargs)
    for i, name in enumerate(state_names):
        s = [a.copy() for a in state]
        s[i] = frozen(s[i])
        p = param.copy()
        with pytest.raises(ValueError, match=f"^{name} is read-only"):
            update(p, grad, *s, **kwargs)
        same(p, param)  # refused before anything was written


# ------------------------------------------------------------------------ sparse
def _csr(rng, n, m, density=0.3):
    mask = rng.random((n, m)) < density
    indptr = numpy.concatenate([[0], numpy.cumsum(mask.sum(1))]).astype(numpy.int32)
    indices = numpy.nonzero(mask)[1].astype(numpy.int32)
    return indptr, indices


@pytest.mark.parametrize("dtype", DTYPES)
def test_sparse_kernels_read_only_inputs(rng, dtype):
    n, m, k = 23, 17, 6
    indptr, indices = _csr(rng, n, m)
    nnz = int(indptr[-1])
    data, target = arrays(rng, dtype, (nnz,), (nnz,))
    B, G, H, Vt, c, bias = arrays(rng, dtype, (m, k), (n, k), (n, k), (m, k), (m,), (k,))
    f = frozen

    def run(fr):
        out = {}
        out["mm"] = numpy.empty((n, k), dtype)
        sparse.csr_matmul(fr(indptr), fr(indices), fr(data), fr(B), out["mm"], bias=fr(bias),
                          activation="sigmoid")
        out["tmm"] = numpy.empty((m, k), dtype)
        sparse.csr_t_matmul(fr(indptr), fr(indices), fr(data), fr(G), out["tmm"])
        out["sddmm"] = numpy.empty(nnz, dtype)
        sparse.sddmm(fr(indptr), fr(indices), fr(H), fr(Vt), fr(c), out["sddmm"])
        out["loss"] = numpy.array(sparse.masked_sq_error(fr(data), fr(target))[0])
        out["cols"] = numpy.zeros(m, dtype)
        sparse.column_sums(fr(indices), fr(data), out["cols"])
        p, mm, vv = B.copy(), numpy.zeros_like(B), numpy.zeros_like(B)
        sparse.adam_update(p, fr(B * 0.5), mm, vv, 1e-2, 0.9, 0.999, 1e-7, 1)
        out["adam"] = p
        return out

    want, got = run(lambda a: a), run(f)
    for key in want:
        same(got[key], want[key])


def test_sparse_adam_zero_grad_needs_a_writeable_grad(rng):
    p, g = arrays(rng, numpy.float32, (5,), (5,))
    with pytest.raises(ValueError, match="grad"):
        sparse.adam_update(p, frozen(g), numpy.zeros(5, numpy.float32),
                           numpy.zeros(5, numpy.float32), 1e-2, 0.9, 0.999, 1e-7, 1,
                           zero_grad=True)
