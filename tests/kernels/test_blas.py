"""fastnn._C.blas.gemm and NumpyOps.gemm against numpy's matmul."""
import numpy
import pytest
from hypothesis import given, settings, strategies as st

from fastnn._C.blas import gemm
from fastnn.testing import DTYPES, LAYOUTS, assert_close, make

SHAPES = [(1, 1, 1), (3, 17, 5), (129, 784, 257), (2, 1, 3), (1, 300, 1), (300, 64, 700)]


def operands(rng, m, k, n, dtype, layout, trans_a, trans_b):
    a = make(rng, (k, m) if trans_a else (m, k), dtype, layout)
    b = make(rng, (n, k) if trans_b else (k, n), dtype, layout)
    expected = (a.T if trans_a else a).astype(numpy.float64) @ (b.T if trans_b else b)
    return a, b, expected


@pytest.mark.parametrize("m,k,n", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (True, False), (False, True),
                                             (True, True)])
def test_gemm_matches_matmul(rng, m, k, n, dtype, layout, trans_a, trans_b):
    a, b, expected = operands(rng, m, k, n, dtype, layout, trans_a, trans_b)
    assert_close(gemm(a, b, trans_a, trans_b), expected.astype(dtype), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_alpha_beta_out(rng, dtype):
    a, b, expected = operands(rng, 33, 20, 7, dtype, "C", False, True)
    out = make(rng, (33, 7), dtype)
    before = out.copy()
    result = gemm(a, b, trans_b=True, out=out, alpha=-0.5, beta=2.0)
    assert result is out
    assert_close(out, (-0.5 * expected + 2.0 * before).astype(dtype), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_beta_zero_ignores_nan_in_out(rng, dtype):
    a, b, expected = operands(rng, 4, 5, 6, dtype, "C", False, False)
    out = numpy.full((4, 6), numpy.nan, dtype=dtype)
    assert_close(gemm(a, b, out=out), expected.astype(dtype), dtype)


def test_gemm_large(rng):
    a, b, expected = operands(rng, 512, 1024, 384, numpy.float32, "C", False, False)
    assert_close(gemm(a, b), expected.astype(numpy.float32), tol=5e-5)


def test_gemm_empty_inner_dimension():
    a = numpy.ones((3, 0), numpy.float32)
    b = numpy.ones((0, 4), numpy.float32)
    assert (gemm(a, b) == 0).all()
    out = numpy.ones((3, 4), numpy.float32)
    assert (gemm(a, b, out=out, beta=3.0) == 3).all()
    assert gemm(numpy.ones((0, 2)), numpy.ones((2, 5))).shape == (0, 5)


@given(m=st.integers(1, 40), k=st.integers(1, 40), n=st.integers(1, 40),
       trans_a=st.booleans(), trans_b=st.booleans(), layout=st.sampled_from(LAYOUTS),
       alpha=st.floats(-2, 2), beta=st.floats(-2, 2))
@settings(max_examples=60, deadline=None)
def test_gemm_property(m, k, n, trans_a, trans_b, layout, alpha, beta):
    rng = numpy.random.default_rng(m * 10000 + k * 100 + n)
    a, b, expected = operands(rng, m, k, n, numpy.float64, layout, trans_a, trans_b)
    out = rng.standard_normal((m, n))
    want = alpha * expected + beta * out
    assert_close(gemm(a, b, trans_a, trans_b, out, alpha, beta), want)


def test_gemm_errors():
    f = numpy.ones((3, 4), numpy.float32)
    with pytest.raises(ValueError, match=r"inner dimensions.*\(3, 4\).*\(3, 4\)"):
        gemm(f, f)
    with pytest.raises(TypeError, match="float32 or float64"):
        gemm(f.astype(numpy.int64), f.T)
    with pytest.raises(TypeError, match="b has dtype float64 but a has float32"):
        gemm(f, f.T.astype(numpy.float64))
    with pytest.raises(ValueError, match="2-D"):
        gemm(numpy.ones(3, numpy.float32), f)
    with pytest.raises(ValueError, match=r"out has shape \(2, 2\).*\(3, 3\)"):
        gemm(f, f.T, out=numpy.empty((2, 2), numpy.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        gemm(f, f.T, out=numpy.empty((3, 6), numpy.float32)[:, ::2])
    with pytest.raises(TypeError, match="ndarray"):
        gemm([[1.0]], f)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_numpy_ops_gemm(ops, ref, rng, layout):
    a, b, _ = operands(rng, 9, 13, 11, numpy.float32, layout, True, False)
    out = numpy.asfortranarray(make(rng, (9, 11), numpy.float32))  # falls back to Ops
    out_ref = out.copy()
    ops.gemm(a, b, trans_a=True, out=out, alpha=2.0, beta=0.5)
    ref.gemm(a, b, trans_a=True, out=out_ref, alpha=2.0, beta=0.5)
    assert_close(out, out_ref)
    assert_close(ops.gemm(a, b, trans_a=True), ref.gemm(a, b, trans_a=True))
    ints = numpy.arange(6).reshape(2, 3)
    assert (ops.gemm(ints, ints.T) == ints @ ints.T).all()
