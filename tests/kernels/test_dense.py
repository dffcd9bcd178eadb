"""fastnn._C.dense and NumpyOps.dense_forward/backward against Ops."""
import numpy
import pytest
from hypothesis import given, settings, strategies as st

from fastnn._C import dense as kernels
from fastnn.testing import DTYPES, LAYOUTS, assert_close, make

ACTS = ["linear", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "softmax"]
SHAPES = [(1, 1, 1), (3, 17, 5), (129, 784, 257), (300, 40, 1100)]


def tol(dtype, k):
    return (2e-6 * max(8.0, numpy.sqrt(k))) if dtype == numpy.float32 else 1e-12


def run_both(impl, ref, x, W, b, y_ref, dy, act, need_dx, dW0, db0):
    dW, db = dW0.copy(order="K"), None if db0 is None else db0.copy()
    dW_r, db_r = dW0.copy(order="K"), None if db0 is None else db0.copy()
    dx = impl(x, W, y_ref, dy, dW, db, act, 0.2, need_dx)
    dx_r = ref.dense_backward(x, W, y_ref, dy, dW_r, db_r, act, 0.2, need_dx)
    return (dx, dW, db), (dx_r, dW_r, db_r)


@pytest.mark.parametrize("m,k,n", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ACTS)
def test_dense_matches_reference(ops, ref, rng, m, k, n, dtype, act):
    x, W, b = make(rng, (m, k), dtype), make(rng, (k, n), dtype, scale=0.2), make(rng, (n,), dtype)
    y_ref = ref.dense_forward(x, W, b, act, 0.2)
    t = tol(dtype, k)
    # The product's rounding (float32 sums of k terms, in an order that differs
    # between BLAS builds and fastnn's slices) scales with the pre-activation z,
    # not with a bounded output such as tanh's: floor the error there.
    z = numpy.abs(x.astype(numpy.float64) @ W + b).max() if x.size and W.size else 0.0
    floor = 0.03 * max(1.0, float(z))
    assert_close(kernels.dense_forward(x, W, b, act, 0.2), y_ref, tol=t, floor=floor)
    assert_close(ops.dense_forward(x, W, b, act, 0.2), y_ref, tol=t, floor=floor)
    dy = make(rng, (m, n), dtype)
    # Non-zero starting gradients: the kernels must accumulate, not overwrite.
    dW0, db0 = make(rng, (k, n), dtype), make(rng, (n,), dtype)
    for impl in (kernels.dense_backward, ops.dense_backward):
        got, want = run_both(impl, ref, x, W, b, y_ref, dy, act, True, dW0, db0)
        for g, w in zip(got, want):
            assert_close(g, w, tol=t)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_dense_layouts(ops, ref, rng, layout, dtype):
    m, k, n = 37, 29, 23
    x, W = make(rng, (m, k), dtype, layout), make(rng, (k, n), dtype, layout)
    b = make(rng, (n,), dtype)
    y_ref = ref.dense_forward(x, W, b, "tanh")
    assert_close(ops.dense_forward(x, W, b, "tanh"), y_ref, tol=tol(dtype, k))
    dy = make(rng, (m, n), dtype, layout)
    y_in = numpy.asfortranarray(y_ref) if layout == "F" else y_ref
    dW0 = make(rng, (k, n), dtype, layout)   # F-contiguous dW goes through dW.T
    got, want = run_both(ops.dense_backward, ref, x, W, b, y_in, dy, "tanh", True, dW0, None)
    assert got[2] is None
    for g, w in zip(got[:2], want[:2]):
        assert_close(g, w, tol=tol(dtype, k))


def test_need_dx_false_and_no_bias(ops, ref, rng):
    x, W = make(rng, (8, 5), numpy.float64), make(rng, (5, 3), numpy.float64)
    y = ops.dense_forward(x, W, None, "relu")
    assert_close(y, ref.dense_forward(x, W, None, "relu"))
    dy = make(rng, (8, 3), numpy.float64)
    dW, dW_r = numpy.zeros((5, 3)), numpy.zeros((5, 3))
    assert ops.dense_backward(x, W, y, dy, dW, None, "relu", need_dx=False) is None
    ref.dense_backward(x, W, y, dy, dW_r, None, "relu", need_dx=False)
    assert_close(dW, dW_r)


def test_bias_gradient_is_deterministic_and_float64_accurate(rng):
    m, n = 5000, 7
    x, W = make(rng, (m, 1), numpy.float32), make(rng, (1, n), numpy.float32)
    dy = (rng.standard_normal((m, n)) + 100).astype(numpy.float32)
    dbs = []
    for _ in range(3):
        db = numpy.zeros(n, numpy.float32)
        kernels.dense_backward(x, W, dy, dy, numpy.zeros((1, n), numpy.float32), db)
        dbs.append(db)
    assert all((d == dbs[0]).all() for d in dbs)
    exact = dy.astype(numpy.float64).sum(axis=0)
    assert numpy.abs(dbs[0] - exact).max() <= 1e-6 * numpy.abs(exact).max()


def test_empty_batch_and_empty_input(ops, ref, rng):
    W, b = make(rng, (4, 3), numpy.float32), make(rng, (3,), numpy.float32)
    assert ops.dense_forward(numpy.zeros((0, 4), numpy.float32), W, b, "relu").shape == (0, 3)
    x0 = numpy.zeros((2, 0), numpy.float32)
    W0 = numpy.zeros((0, 3), numpy.float32)
    assert_close(ops.dense_forward(x0, W0, b, "relu"), ref.dense_forward(x0, W0, b, "relu"))


@given(m=st.integers(1, 30), k=st.integers(1, 30), n=st.integers(1, 30),
       act=st.sampled_from(ACTS), layout=st.sampled_from(LAYOUTS))
@settings(max_examples=40, deadline=None)
def test_dense_property(m, k, n, act, layout):
    from fastnn.backend import NumpyOps, Ops
    rng = numpy.random.default_rng(m * 10000 + k * 100 + n)
    x, W = make(rng, (m, k), numpy.float64, layout), make(rng, (k, n), numpy.float64)
    b, dy = make(rng, (n,), numpy.float64), make(rng, (m, n), numpy.float64, layout)
    y = Ops().dense_forward(x, W, b, act, 0.1)
    assert_close(NumpyOps().dense_forward(x, W, b, act, 0.1), y)
    got, want = run_both(NumpyOps().dense_backward, Ops(), x, W, b, y, dy, act, True,
                         make(rng, (k, n), numpy.float64), make(rng, (n,), numpy.float64))
    for g, w in zip(got, want):
        assert_close(g, w)


def test_fallbacks(ops, ref, rng):
    x, W = make(rng, (4, 3), numpy.float32), make(rng, (3, 2), numpy.float32)
    y = ref.dense_forward(x, W, None)
    dy = make(rng, (4, 2), numpy.float32)
    dW = numpy.zeros((3, 4), numpy.float32)[:, ::2]  # strided: goes to Ops
    dW_r = numpy.zeros((3, 2), numpy.float32)
    assert_close(ops.dense_backward(x, W, y, dy, dW, None), ref.dense_backward(x, W, y, dy, dW_r, None))
    assert_close(dW, dW_r)
    xi = numpy.arange(6).reshape(2, 3)
    assert (ops.dense_forward(xi, numpy.eye(3, dtype=int), None) == xi).all()


def test_errors(rng):
    x, W, b = make(rng, (4, 3), numpy.float32), make(rng, (3, 2), numpy.float32), numpy.zeros(2, numpy.float32)
    with pytest.raises(ValueError, match=r"x has shape \(4, 3\) but W has shape \(2, 3\)"):
        kernels.dense_forward(x, W.T, b)
    with pytest.raises(ValueError, match=r"b has shape \(3,\)"):
        kernels.dense_forward(x, W, numpy.zeros(3, numpy.float32))
    with pytest.raises(TypeError, match="W has dtype float64 but x has float32"):
        kernels.dense_forward(x, W.astype(numpy.float64), b)
    with pytest.raises(ValueError, match="unknown activation"):
        kernels.dense_forward(x, W, b, "gelu")
    y = numpy.zeros((4, 2), numpy.float32)
    with pytest.raises(ValueError, match=r"dy has shape \(4, 3\) but x @ W has shape \(4, 2\)"):
        kernels.dense_backward(x, W, y, numpy.zeros((4, 3), numpy.float32), numpy.zeros_like(W), b)
    with pytest.raises(ValueError, match=r"dW has shape \(2, 3\) but W has shape \(3, 2\)"):
        kernels.dense_backward(x, W, y, y, numpy.zeros((2, 3), numpy.float32), b)
    with pytest.raises(ValueError, match="dW must be a writeable C- or F-contiguous"):
        kernels.dense_backward(x, W, y, y, numpy.zeros((3, 4), numpy.float32)[:, ::2], b)
