import numpy
import pytest

from fastnn import layers as L
from fastnn.backend import use_backend

from fastnn.testing import run_layer_test

ACTS = ["linear", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "softmax"]


@pytest.mark.parametrize("backend", ["numpy", "reference"])
@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("shape", [(1, 1), (7, 13), (4, 3, 5)])
def test_dense(activation, shape, backend, rng):
    with use_backend(backend):
        run_layer_test(lambda dt: L.Dense(9, activation=activation, dtype=dt),
                       shape, shape[:-1] + (9,), rng, n_weights=2)


def test_dense_without_bias_and_regularizer(rng):
    layer = run_layer_test(lambda dt: L.Dense(3, use_bias=False, kernel_regularizer="l2",
                                              dtype=dt), (5, 4), (5, 3), rng, n_weights=1)
    assert "kernel" in layer.regularizers


def test_dense_matches_numpy(rng):
    layer = L.Dense(6, activation="tanh")
    x = rng.standard_normal((8, 5)).astype("float32")
    y = layer(x)
    W, b = layer.get_weights()
    numpy.testing.assert_allclose(y, numpy.tanh(x @ W + b), rtol=1e-5, atol=1e-6)


def test_dense_noncontiguous_input(rng):
    layer = L.Dense(4, activation="relu")
    big = rng.standard_normal((10, 12)).astype("float32")
    x = big[::2, ::2]  # strided view
    W, b = layer.get_weights() if layer.built else (None, None)
    y = layer(x)
    W, b = layer.get_weights()
    numpy.testing.assert_allclose(y, numpy.maximum(numpy.ascontiguousarray(x) @ W + b, 0),
                                  rtol=1e-5, atol=1e-6)


def test_dense_shape_mismatch_names_layer_and_shapes(rng):
    layer = L.Dense(3, name="hidden")
    layer(rng.standard_normal((2, 4)))
    with pytest.raises(ValueError, match=r"'hidden'.*\(None, \.\.\., 4\), got \(None, 5\)"):
        layer(rng.standard_normal((2, 5)))
    with pytest.raises(ValueError, match=r"'hidden'.*\(batch, \.\.\., 4\), got \(2, 5\)"):
        layer.forward(rng.standard_normal((2, 5)).astype("float32"))


def test_dense_rejects_bad_arguments():
    with pytest.raises(ValueError, match="units"):
        L.Dense(0)
    with pytest.raises(ValueError, match="valid names are"):
        L.Dense(3, activation="swishy")
    with pytest.raises(ValueError, match="valid names are"):
        L.Dense(3, kernel_initializer="nope").build((4,))


@pytest.mark.parametrize("activation", ACTS)
def test_activation_layer(activation, rng):
    run_layer_test(lambda dt: L.Activation(activation, dtype=dt), (6, 5), (6, 5), rng)


@pytest.mark.parametrize("cls", [L.ReLU, L.LeakyReLU, L.ELU, L.Softmax])
def test_named_activation_layers(cls, rng):
    run_layer_test(lambda dt: cls(dtype=dt), (3, 4), (3, 4), rng)


def test_leaky_relu_slope():
    y = L.LeakyReLU(negative_slope=0.1)(numpy.array([[-2.0, 3.0]]))
    numpy.testing.assert_allclose(y, [[-0.2, 3.0]], rtol=1e-6)


@pytest.mark.parametrize("shape,units", [((5, 12), 3), ((1, 2), 1), ((4, 2, 9), 3)])
def test_maxout(shape, units, rng):
    run_layer_test(lambda dt: L.Maxout(units, dtype=dt), shape, shape[:-1] + (units,), rng)


def test_maxout_values_and_bad_width(rng):
    x = rng.standard_normal((4, 6)).astype("float32")
    numpy.testing.assert_array_equal(L.Maxout(2)(x), x.reshape(4, 2, 3).max(-1))
    with pytest.raises(ValueError, match="multiple of num_units"):
        L.Maxout(4)(x)


def test_flatten_and_reshape(rng):
    run_layer_test(lambda dt: L.Flatten(dtype=dt), (3, 2, 5), (3, 10), rng)
    run_layer_test(lambda dt: L.Reshape((5, -1), dtype=dt), (3, 10), (3, 5, 2), rng)
    with pytest.raises(ValueError, match="cannot reshape"):
        L.Reshape((3, 3))(rng.standard_normal((2, 10)))


def test_shared_dense_refuses_incompatible_symbolic_input():
    layer = L.Dense(8, name="shared")
    layer(L.Input((6,)))
    with pytest.raises(ValueError, match=r"'shared' was built for inputs of shape \(None, \.\.\., 6\), got \(None, 8\)"):
        layer(L.Input((8,)))
