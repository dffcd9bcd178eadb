import numpy
import pytest

from fastnn import layers as L
from fastnn import regularizers
from fastnn.gradcheck import gradcheck


def _check_gradient(reg, x, eps=1e-6):
    v = numpy.random.default_rng(0).standard_normal(x.shape)
    numeric = (reg(x + eps * v) - reg(x - eps * v)) / (2 * eps)
    assert numeric == pytest.approx(float((reg.gradient(x) * v).sum()), rel=1e-6)


def test_l1_l2(rng):
    w = rng.standard_normal((4, 3))
    assert regularizers.L1(0.1)(w) == pytest.approx(0.1 * numpy.abs(w).sum())
    assert regularizers.L2(0.1)(w) == pytest.approx(0.1 * (w ** 2).sum())
    assert regularizers.L1L2(0.1, 0.2)(w) == pytest.approx(0.1 * numpy.abs(w).sum() + 0.2 * (w ** 2).sum())
    for reg in (regularizers.L1(0.1), regularizers.L2(0.3), regularizers.L1L2(0.1, 0.2)):
        _check_gradient(reg, w)


def test_kl_sparsity(rng):
    a = rng.uniform(0.05, 0.95, (8, 5))
    reg = regularizers.KLSparsity(rho=0.1, beta=3.0)
    q = a.mean(0)
    expected = 3.0 * (0.1 * numpy.log(0.1 / q) + 0.9 * numpy.log(0.9 / (1 - q))).sum()
    assert reg(a) == pytest.approx(expected)
    _check_gradient(reg, a)
    with pytest.raises(ValueError, match=r"activations in \[0, 1\]"):
        reg(a - 1)


def test_activity_regularizer_in_layer_gradcheck(rng):
    layer = L.Dense(4, activation="sigmoid", activity_regularizer=regularizers.KLSparsity(0.2, 1.0),
                    dtype="float64")
    # The layer's own backprop covers the activation; the model adds the penalty
    # (checked in test_model); here the plain layer still checks.
    assert gradcheck(layer, rng.standard_normal((6, 3))).ok


def test_get():
    assert regularizers.get(None) is None
    assert isinstance(regularizers.get("l2"), regularizers.L2)
    with pytest.raises(ValueError, match="valid names"):
        regularizers.get("l3")
