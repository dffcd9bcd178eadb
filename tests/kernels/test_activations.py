"""fastnn._C.activations and the NumpyOps activation methods against Ops."""
import numpy
import pytest
from hypothesis import given, settings, strategies as st

from fastnn._C import activations as kernels
from fastnn.testing import DTYPES, assert_close, make

NAMES = ["linear", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "softmax"]
SHAPES = [(1, 1), (3, 17), (129, 257), (7,), (2, 3, 5), (16, 70000)]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_backward_match_reference(ops, ref, rng, name, dtype, shape):
    x = make(rng, shape, dtype, scale=4.0)
    y_ref = ref.activation_forward(name, x, 0.3)
    assert_close(kernels.activation_forward(name, x, 0.3), y_ref)
    assert_close(ops.activation_forward(name, x, 0.3), y_ref)
    dy = make(rng, shape, dtype)
    dx_ref = ref.activation_backward(name, y_ref, dy, 0.3)
    assert_close(kernels.activation_backward(name, y_ref, dy, 0.3), dx_ref)
    assert_close(ops.activation_backward(name, y_ref, dy, 0.3), dx_ref)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("layout", ["F", "strided"])
def test_numpy_ops_non_contiguous(ops, ref, rng, name, layout):
    x = make(rng, (13, 9), numpy.float32, layout, scale=3.0)
    dy = make(rng, (13, 9), numpy.float32, layout)
    y = ref.activation_forward(name, x, 0.2)
    assert_close(ops.activation_forward(name, x, 0.2), y)
    assert_close(ops.activation_backward(name, y, dy, 0.2), ref.activation_backward(name, y, dy, 0.2))


def test_in_place_forward_and_backward(rng):
    x = make(rng, (5, 6), numpy.float64)
    want = numpy.maximum(x, 0)
    assert kernels.activation_forward("relu", x, out=x) is x
    assert_close(x, want)
    dy = make(rng, (5, 6), numpy.float64)
    want = numpy.where(x > 0, dy, 0)
    kernels.activation_backward("relu", x, dy, out=dy)
    assert_close(dy, want)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_and_softmax_stable_for_huge_inputs(ops, dtype):
    x = numpy.array([[-1e4, 0.0, 1e4], [1e4, 1e4, -1e4]], dtype=dtype)
    s = ops.activation_forward("sigmoid", x)
    assert numpy.isfinite(s).all()
    assert_close(s, numpy.array([[0, 0.5, 1], [1, 1, 0]], dtype=dtype))
    p = ops.softmax(x)
    assert_close(p, numpy.array([[0, 0, 1], [0.5, 0.5, 0]], dtype=dtype))


def test_fallback_for_integer_and_float16(ops, ref):
    ints = numpy.array([[-2, 0, 3]])
    assert (ops.activation_forward("relu", ints) == [[0, 0, 3]]).all()
    half = numpy.array([[-1.0, 2.0]], dtype=numpy.float16)
    out = ops.activation_forward("sigmoid", half)
    assert out.dtype == numpy.float16
    assert_close(out, ref.activation_forward("sigmoid", half), tol=1e-3)


@given(rows=st.integers(1, 20), cols=st.integers(1, 40), pieces=st.integers(1, 5),
       dtype=st.sampled_from(DTYPES))
@settings(max_examples=40, deadline=None)
def test_maxout_matches_reference(rows, cols, pieces, dtype):
    from fastnn.backend import NumpyOps, Ops
    rng = numpy.random.default_rng(rows * 1000 + cols * 10 + pieces)
    x = make(rng, (rows, cols * pieces), dtype)
    x[0, :pieces] = 1.0  # ties: the first maximum wins, as numpy.argmax
    y, idx = NumpyOps().maxout_forward(x, pieces)
    y_ref, idx_ref = Ops().maxout_forward(x, pieces)
    assert idx.dtype == numpy.int32
    assert (idx == idx_ref).all()
    assert_close(y, y_ref)
    dy = make(rng, y.shape, dtype)
    assert_close(NumpyOps().maxout_backward(dy, idx, pieces), Ops().maxout_backward(dy, idx_ref, pieces))


def test_maxout_nan_is_the_maximum(ops, ref):
    x = numpy.array([[1.0, numpy.nan, 3.0, 2.0]], dtype=numpy.float32)
    y, idx = ops.maxout_forward(x, 4)
    assert idx[0, 0] == ref.maxout_forward(x, 4)[1][0, 0] == 1
    assert numpy.isnan(y[0, 0])


def test_errors(rng):
    x = make(rng, (3, 4), numpy.float32)
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        kernels.activation_forward("swish", x)
    with pytest.raises(TypeError, match="float32 or float64"):
        kernels.activation_forward("relu", x.astype(numpy.int32))
    with pytest.raises(ValueError, match="C-contiguous"):
        kernels.activation_forward("relu", x[:, ::2])
    with pytest.raises(ValueError, match=r"dy has shape \(4, 3\) but y has shape \(3, 4\)"):
        kernels.activation_backward("tanh", x, x.T.copy())
    with pytest.raises(TypeError, match="dy has dtype float64 but y has float32"):
        kernels.activation_backward("tanh", x, x.astype(numpy.float64))
    with pytest.raises(ValueError, match=r"out has shape \(4,\)"):
        kernels.activation_forward("relu", x, out=numpy.empty(4, numpy.float32))
    with pytest.raises(ValueError, match="0-D"):
        kernels.softmax(numpy.ones((), numpy.float32))
    with pytest.raises(ValueError, match="groups of 3 pieces"):
        kernels.maxout_forward(x, 3)
    with pytest.raises(ValueError, match=r"outside \[0, 2\)"):
        kernels.maxout_backward(x[:, :2].copy(), numpy.full((3, 2), 2, numpy.int32), 2)
    with pytest.raises(TypeError, match="int32"):
        kernels.maxout_backward(x[:, :2].copy(), numpy.zeros((3, 2), numpy.int64), 2)
