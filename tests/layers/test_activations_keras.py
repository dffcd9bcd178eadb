"""Keras's further activations (selu, softplus, softsign, hard_sigmoid, gelu,
silu/swish, mish) and the forms ``activation=`` takes (a name, a function of
fastnn.activations, an activation layer, a registered function): forward
against formulas written here, gradients checked in float64."""
import math

import numpy
import pytest

import fastnn
from fastnn import activations
from fastnn.gradcheck import gradcheck
from fastnn.layers import ELU, Activation, Dense, Input, LeakyReLU, ReLU, Softmax
from fastnn.models import Model, Sequential, load_model

_erf = numpy.vectorize(math.erf)


def _sigmoid(x):
    return 1 / (1 + numpy.exp(-x))


def _softplus(x):
    return numpy.log1p(numpy.exp(x))  # fine for the |x| < 30 used here


REFERENCE = {
    "selu": lambda x: 1.0507009873554805 * numpy.where(x > 0, x, 1.6732632423543772 * (numpy.exp(x) - 1)),
    "softplus": _softplus,
    "softsign": lambda x: x / (1 + numpy.abs(x)),
    "hard_sigmoid": lambda x: numpy.minimum(numpy.maximum(x + 3, 0), 6) / 6,
    "gelu": lambda x: 0.5 * x * (1 + _erf(x / math.sqrt(2))),
    "silu": lambda x: x * _sigmoid(x),
    "swish": lambda x: x * _sigmoid(x),
    "mish": lambda x: x * numpy.tanh(_softplus(x)),
}
NEW = sorted(REFERENCE)


def _awkward(rng, shape, dtype):
    x = rng.standard_normal(shape) * 4
    x.flat[0] = 0.0  # a kink for relu-like shapes
    return x.astype(dtype)


@pytest.mark.parametrize("name", NEW)
@pytest.mark.parametrize("shape", [(1,), (7, 3), (2, 5, 4)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_forward_matches_formula(name, shape, dtype, ops, rng):
    x = _awkward(rng, shape, dtype)
    y = getattr(activations, name)(x)
    assert y.dtype == x.dtype and y.shape == x.shape
    tol = 1e-5 if dtype == "float32" else 1e-12
    numpy.testing.assert_allclose(y, REFERENCE[name](x.astype("float64")), rtol=tol, atol=tol)


@pytest.mark.parametrize("name", NEW)
def test_forward_non_contiguous(name, ops, rng):
    x = _awkward(rng, (6, 8), "float32")[:, ::2]
    numpy.testing.assert_allclose(fastnn.layers.Activation(name)(x), REFERENCE[name](x),
                                  rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", NEW)
def test_gradcheck_through_dense_and_activation(name, ops, rng):
    x = rng.standard_normal((5, 3)) * 2
    assert gradcheck(Dense(4, activation=name, dtype="float64"), x).ok
    assert gradcheck(Activation(name, dtype="float64"), x).ok
    frozen = Dense(4, activation=name, dtype="float64", trainable=False)
    assert gradcheck(frozen, x).ok


def test_swish_is_silu():
    assert activations.get("swish") == ("silu", 0.0)
    assert Dense(2, activation="swish").get_config()["activation"] == ["silu", 0.0]


@pytest.mark.parametrize("fn,name", [(activations.relu, "relu"), (activations.gelu, "gelu"),
                                     (activations.swish, "silu"), (activations.tanh, "tanh")])
def test_fastnn_functions_map_to_their_names(fn, name):
    assert Dense(3, activation=fn).activation == name
    assert Activation(fn).activation == name


@pytest.mark.parametrize("layer,expected", [(LeakyReLU(0.2), ("leaky_relu", 0.2)),
                                            (ELU(0.5), ("elu", 0.5)), (ReLU(), ("relu", 0.0)),
                                            (Softmax(), ("softmax", 0.0)),
                                            (Activation("mish"), ("mish", 0.0))])
def test_activation_layer_instance_as_activation(layer, expected, rng):
    dense = Dense(3, activation=layer, dtype="float64")
    assert (dense.activation, dense.alpha) == expected
    assert gradcheck(dense, rng.standard_normal((4, 2))).ok


def test_leaky_relu_instance_matches_dense_then_layer(rng):
    x = rng.standard_normal((6, 4)).astype("float32")
    fused = Dense(3, activation=LeakyReLU(0.2))
    y = fused(x)
    z = x @ fused.params["kernel"] + fused.params["bias"]
    numpy.testing.assert_allclose(y, numpy.where(z > 0, z, 0.2 * z), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("bad", [lambda x: x * 2, numpy.tanh, Dense(2)])
def test_callable_without_known_derivative_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="derivative|unknown activation"):
        Dense(3, activation=bad)


def test_unknown_name_lists_the_new_ones():
    with pytest.raises(ValueError, match="gelu.*mish.*swish"):
        Dense(3, activation="nope")


@pytest.fixture
def cube():
    def forward(x):
        return x ** 3 / 3

    activations.register("cube_third", forward, lambda x: x * x)
    yield forward
    activations._CUSTOM.pop("cube_third", None)


def test_registered_function_trains_gradchecks_and_saves(cube, rng, tmp_path):
    x = rng.standard_normal((5, 3))
    dense = Dense(4, activation=cube, dtype="float64")
    assert dense.activation == "cube_third"
    y = dense(x)
    z = x @ dense.params["kernel"] + dense.params["bias"]
    numpy.testing.assert_allclose(y, z ** 3 / 3, rtol=1e-12)
    assert gradcheck(dense, x).ok
    assert gradcheck(Activation("cube_third", dtype="float64"), x).ok
    model = Sequential([Input(shape=(3,)), Dense(4, activation="cube_third"), Dense(1)])
    model.save(tmp_path / "m.fastnn")
    numpy.testing.assert_allclose(load_model(tmp_path / "m.fastnn").predict(x), model.predict(x),
                                  rtol=1e-6)


def test_register_refuses_builtin_names_and_non_callables():
    with pytest.raises(ValueError, match="built-in"):
        activations.register("relu", lambda x: x, lambda x: x)
    with pytest.raises(TypeError, match="two callables"):
        activations.register("thing", lambda x: x, 3)


@pytest.mark.parametrize("name", ["gelu", "selu", "hard_sigmoid"])
def test_new_activations_save_load_and_train(name, tmp_path, rng):
    inp = Input(shape=(4,))
    model = Model(inp, Dense(1)(Dense(5, activation=name)(inp)))
    model.compile("adam", "mse")
    x, y = rng.random((32, 4)).astype("float32"), rng.random((32, 1)).astype("float32")
    model.fit(x, y, epochs=2, verbose=0)
    model.save(tmp_path / "m.fastnn")
    numpy.testing.assert_allclose(load_model(tmp_path / "m.fastnn").predict(x), model.predict(x),
                                  rtol=1e-6)
