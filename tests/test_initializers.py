import math

import numpy
import pytest

import fastnn
from fastnn import initializers


@pytest.mark.parametrize("name,std", [
    ("glorot_uniform", math.sqrt(2 / (300 + 200))), ("glorot_normal", math.sqrt(2 / (300 + 200))),
    ("he_uniform", math.sqrt(2 / 300)), ("he_normal", math.sqrt(2 / 300)),
    ("lecun_uniform", math.sqrt(1 / 300)), ("lecun_normal", math.sqrt(1 / 300))])
def test_variance_scaling_statistics(name, std):
    w = initializers.get(name)((300, 200), "float64")
    assert w.shape == (300, 200) and w.dtype == numpy.float64
    assert abs(w.std() / std - 1) < 0.03
    assert abs(w.mean()) < 0.01 * std * 10
    if name.endswith("uniform"):
        assert numpy.abs(w).max() <= math.sqrt(3) * std + 1e-12
    else:  # truncated at two standard deviations of the underlying normal
        assert numpy.abs(w).max() <= 2 * std / 0.87962566103423978 + 1e-12


@pytest.mark.parametrize("shape", [(5, 5), (8, 3), (3, 8), (2, 3, 4)])
def test_orthogonal(shape):
    w = initializers.Orthogonal()(shape, "float64").reshape(-1, shape[-1])
    small = min(w.shape)
    gram = w.T @ w if w.shape[0] >= w.shape[1] else w @ w.T
    numpy.testing.assert_allclose(gram, numpy.eye(small), atol=1e-10)


def test_constants_and_seed():
    assert (initializers.get("zeros")((2, 2)) == 0).all()
    assert (initializers.get("ones")((2,)) == 1).all()
    assert (initializers.Constant(3)((2,)) == 3).all()
    fastnn.set_seed(3)
    a = initializers.get("he_normal")((4, 4))
    fastnn.set_seed(3)
    numpy.testing.assert_array_equal(a, initializers.get("he_normal")((4, 4)))


def test_unknown_initializer():
    with pytest.raises(ValueError, match="valid names are:.*glorot_uniform"):
        initializers.get("glorot")
