import numpy
import pytest

import fastnn
from fastnn import layers as L

from fastnn.testing import run_layer_test


def test_dropout_layer(rng):
    run_layer_test(lambda dt: L.Dropout(0.3, dtype=dt), (6, 7), (6, 7), rng)


def test_dropout_statistics_and_inference_identity(rng):
    x = numpy.ones((200, 500), dtype="float32")
    layer = L.Dropout(0.25)
    y, backprop = layer.forward(x, training=True)
    kept = y != 0
    assert abs(kept.mean() - 0.75) < 0.01
    numpy.testing.assert_allclose(y[kept], 1 / 0.75, rtol=1e-6)
    numpy.testing.assert_array_equal(backprop(x) != 0, kept)
    numpy.testing.assert_array_equal(layer(x), x)  # inference: identity
    with pytest.raises(ValueError, match="rate"):
        L.Dropout(1.0)


def test_gaussian_noise(rng):
    run_layer_test(lambda dt: L.GaussianNoise(0.5, dtype=dt), (5, 4), (5, 4), rng)
    x = numpy.zeros((400, 400), dtype="float32")
    y, _ = L.GaussianNoise(0.5).forward(x, training=True)
    assert abs(y.std() - 0.5) < 0.01 and abs(y.mean()) < 0.01
    numpy.testing.assert_array_equal(L.GaussianNoise(0.5)(x), x)


def test_noise_is_seeded():
    x = numpy.zeros((3, 4), dtype="float32")
    fastnn.set_seed(7)
    a = L.GaussianNoise(1.0).forward(x, training=True)[0]
    fastnn.set_seed(7)
    b = L.GaussianNoise(1.0).forward(x, training=True)[0]
    numpy.testing.assert_array_equal(a, b)
