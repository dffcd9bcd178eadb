"""fastnn._C.xent.softmax_cross_entropy and NumpyOps against Ops."""
import numpy
import pytest

from fastnn._C.xent import softmax_cross_entropy
from fastnn.testing import DTYPES, assert_close, make


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,c", [(1, 1), (1, 5), (17, 3), (256, 1000)])
@pytest.mark.parametrize("label_dtype", [numpy.int32, numpy.int64, numpy.uint8])
def test_integer_labels(ops, ref, rng, dtype, n, c, label_dtype):
    logits = make(rng, (n, c), dtype, scale=3.0)
    labels = rng.integers(0, c, n).astype(label_dtype)
    loss_r, grad_r = ref.softmax_cross_entropy(logits, labels.astype(numpy.int64))
    for impl in (softmax_cross_entropy, ops.softmax_cross_entropy):
        loss, grad = impl(logits, labels)
        assert_close(loss, loss_r)
        assert_close(grad, grad_r)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ["C", "F", "strided"])
def test_target_distributions(ops, ref, rng, dtype, layout):
    logits = make(rng, (33, 9), dtype, layout, scale=3.0)
    targets = rng.random((33, 9)).astype(dtype)
    targets[:5] /= targets[:5].sum(axis=1, keepdims=True)  # some rows sum to 1, some not
    loss_r, grad_r = ref.softmax_cross_entropy(logits, targets)
    loss, grad = ops.softmax_cross_entropy(logits, targets)
    assert_close(loss, loss_r)
    assert_close(grad, grad_r)


def test_targets_with_more_dimensions(ops, ref, rng):
    logits = make(rng, (4, 5, 6), numpy.float64)
    targets = rng.random((4, 5, 6))
    for got, want in zip(ops.softmax_cross_entropy(logits, targets),
                         ref.softmax_cross_entropy(logits, targets)):
        assert_close(got, want)


@pytest.mark.parametrize("dtype", DTYPES)
def test_huge_logits_stay_finite(ops, dtype):
    logits = numpy.array([[1e4, 0.0, -1e4], [-1e4, -1e4, 1e4], [1e4, 1e4, 1e4]], dtype=dtype)
    loss, grad = ops.softmax_cross_entropy(logits, numpy.array([0, 0, 2]))
    assert numpy.isfinite(loss).all() and numpy.isfinite(grad).all()
    assert_close(loss, numpy.array([0.0, 2e4, numpy.log(3)], dtype=dtype))
    assert_close(grad[1], numpy.array([-1, 0, 1], dtype=dtype))
    loss_t, grad_t = ops.softmax_cross_entropy(logits, numpy.eye(3, dtype=dtype)[[0, 0, 2]])
    assert_close(loss_t, loss)
    assert_close(grad_t, grad)


def test_errors(ops, rng):
    logits = make(rng, (4, 3), numpy.float32)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\).*max 3"):
        softmax_cross_entropy(logits, numpy.array([0, 1, 2, 3]))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\).*min -1"):
        ops.softmax_cross_entropy(logits, numpy.array([0, -1, 2, 2]))
    with pytest.raises(ValueError, match=r"labels has shape \(3,\) but logits has shape \(4, 3\)"):
        softmax_cross_entropy(logits, numpy.array([0, 1, 2]))
    with pytest.raises(TypeError, match="integer class ids"):
        softmax_cross_entropy(logits, numpy.zeros(4, numpy.float32))
    with pytest.raises(ValueError, match=r"labels has shape \(4, 2\) but logits has shape \(4, 3\)"):
        softmax_cross_entropy(logits, numpy.zeros((4, 2), numpy.float32))
    with pytest.raises(TypeError, match="float64 but the other operands are float32"):
        softmax_cross_entropy(logits, numpy.zeros((4, 3)))
    with pytest.raises(ValueError, match="2-D"):
        softmax_cross_entropy(logits[0], numpy.array([0]))
