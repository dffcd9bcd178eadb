import numpy
import pytest

import fastnn
from fastnn.backend import NumpyOps, Ops, available_backends, get_backend, set_backend, use_backend


def test_default_switch_and_context():
    assert isinstance(get_backend(), NumpyOps) and get_backend().name == "numpy"
    with use_backend("reference") as ops:
        assert get_backend() is ops and type(ops) is Ops
    assert get_backend().name == "numpy"
    set_backend("reference")
    try:
        assert get_backend().name == "reference"
    finally:
        set_backend("numpy")
    assert {"numpy", "reference"} <= set(available_backends())


def test_unknown_backend_lists_valid_names():
    with pytest.raises(ValueError, match="expected one of.*numpy"):
        set_backend("tpu")


def test_foreign_array_error_names_both():
    class FakeDeviceArray:  # stands in for an array of another backend
        pass
    FakeDeviceArray.__module__ = "cupy"
    with pytest.raises(TypeError, match=r"cupy\.FakeDeviceArray.*'numpy'.*numpy\.ndarray"):
        get_backend().check_native(FakeDeviceArray(), "input")
    model = fastnn.Sequential([fastnn.Input((2,)), fastnn.layers.Dense(1)])
    with pytest.raises(TypeError, match="cupy"):
        model.predict(FakeDeviceArray())


def test_backends_agree_on_training(rng):
    """The kernel backend, the plain NumPy reference and the strict backend
    train to the same weights."""
    x = rng.standard_normal((64, 6)).astype("float32")
    y = rng.integers(0, 3, 64)
    results = []
    for name in ("numpy", "reference", "strict"):
        with use_backend(name):
            fastnn.set_seed(5)
            model = fastnn.Sequential([fastnn.Input((6,)), fastnn.layers.Dense(8, activation="elu"),
                                       fastnn.layers.Dense(3, activation="softmax")])
            model.compile("adam", "sparse_categorical_crossentropy")
            model.fit(x, y, batch_size=16, epochs=2, verbose=0)
            results.append(model.get_weights())
    for a, b, c in zip(*results):
        numpy.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
        numpy.testing.assert_array_equal(b, c)  # strict computes as the reference does
