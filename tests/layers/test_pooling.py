"""Pooling layers: shapes, float64 gradient checks and config round trips
(run_layer_test), values against NumPy written here, channels_first equal to
channels_last transposed, Keras's aliases, bad input messages, save/load and
training on the strict backend."""
import numpy
import pytest

import fastnn
from fastnn import layers as L
from fastnn.testing import run_layer_test


@pytest.fixture
def rng():
    return numpy.random.default_rng(7)


LAYER_CASES = [
    (lambda dt: L.MaxPooling2D(dtype=dt), (2, 6, 7, 3), (2, 3, 3, 3)),
    (lambda dt: L.MaxPooling2D((3, 3), (2, 2), "same", dtype=dt), (2, 7, 7, 3), (2, 4, 4, 3)),
    (lambda dt: L.MaxPooling2D((2, 2), (1, 1), dtype=dt), (1, 4, 5, 2), (1, 3, 4, 2)),
    (lambda dt: L.MaxPooling2D(data_format="channels_first", dtype=dt), (2, 3, 5, 4),
     (2, 3, 2, 2)),
    (lambda dt: L.AveragePooling2D((2, 3), (1, 2), "same", dtype=dt), (2, 5, 7, 3),
     (2, 5, 4, 3)),
    (lambda dt: L.AveragePooling2D(data_format="channels_first", dtype=dt), (2, 3, 6, 4),
     (2, 3, 3, 2)),
    (lambda dt: L.MaxPooling1D(3, 2, dtype=dt), (2, 9, 3), (2, 4, 3)),
    (lambda dt: L.MaxPooling1D(2, data_format="channels_first", dtype=dt), (2, 3, 7),
     (2, 3, 3)),
    (lambda dt: L.AveragePooling1D(2, padding="same", dtype=dt), (2, 9, 3), (2, 5, 3)),
    (lambda dt: L.GlobalAveragePooling2D(dtype=dt), (2, 5, 4, 3), (2, 3)),
    (lambda dt: L.GlobalAveragePooling2D(data_format="channels_first", keepdims=True,
                                         dtype=dt), (2, 3, 5, 4), (2, 3, 1, 1)),
    (lambda dt: L.GlobalMaxPooling2D(keepdims=True, dtype=dt), (2, 5, 4, 3), (2, 1, 1, 3)),
    (lambda dt: L.GlobalMaxPooling2D(data_format="channels_first", dtype=dt), (2, 3, 5, 4),
     (2, 3)),
    (lambda dt: L.GlobalMaxPooling1D(dtype=dt), (2, 5, 4), (2, 4)),
    (lambda dt: L.GlobalMaxPooling1D(data_format="channels_first", dtype=dt), (2, 5, 4),
     (2, 5)),
    (lambda dt: L.GlobalAveragePooling1D(data_format="channels_first", dtype=dt), (2, 5, 4),
     (2, 5)),
]


@pytest.mark.parametrize("make,in_shape,out_shape", LAYER_CASES)
def test_pooling_layer_harness(make, in_shape, out_shape, rng):
    run_layer_test(make, in_shape, out_shape, rng)


def _windows_max(x, k, s):
    n, h, w, c = x.shape
    ho, wo = (h - k) // s + 1, (w - k) // s + 1
    y = numpy.empty((n, ho, wo, c), x.dtype)
    for i in range(ho):
        for j in range(wo):
            y[:, i, j] = x[:, i * s:i * s + k, j * s:j * s + k].max(axis=(1, 2))
    return y


def test_max_pooling_values_and_first_max_gradient(rng):
    x = rng.standard_normal((2, 7, 6, 3)).astype("float32")
    layer = L.MaxPooling2D((3, 3), strides=2)
    y = layer(x)
    numpy.testing.assert_array_equal(y, _windows_max(x, 3, 2))
    # Ties: every value equal, the gradient goes to each window's first cell.
    ones = numpy.ones((1, 4, 4, 1), "float32")
    out, backprop = L.MaxPooling2D((2, 2), strides=1).forward(ones)
    dx = backprop(numpy.ones_like(out))
    numpy.testing.assert_array_equal(dx[0, :, :, 0], [[1, 1, 1, 0], [1, 1, 1, 0],
                                                      [1, 1, 1, 0], [0, 0, 0, 0]])


def test_average_pooling_same_excludes_padding(rng):
    x = numpy.arange(1, 10, dtype="float64").reshape(1, 3, 3, 1)
    y = L.AveragePooling2D(2, padding="same", dtype="float64")(x)
    numpy.testing.assert_allclose(y[0, :, :, 0], [[3.0, 4.5], [7.5, 9.0]])
    y1 = L.AveragePooling1D(2, padding="same", dtype="float64")(numpy.array([[[1.], [2.], [4.]]]))
    numpy.testing.assert_allclose(y1[0, :, 0], [1.5, 4.0])


@pytest.mark.parametrize("cls,kwargs", [(L.MaxPooling2D, {"pool_size": 3, "strides": 2,
                                                          "padding": "same"}),
                                        (L.AveragePooling2D, {"pool_size": (2, 3)}),
                                        (L.GlobalMaxPooling2D, {}),
                                        (L.GlobalAveragePooling2D, {})])
def test_channels_first_is_channels_last_transposed(cls, kwargs, rng):
    x = rng.standard_normal((2, 7, 8, 3)).astype("float32")
    last = cls(**kwargs)
    first = cls(data_format="channels_first", **kwargs)
    y_last = last(x)
    y_first = first(x.transpose(0, 3, 1, 2))
    if y_last.ndim == 4:
        y_first = y_first.transpose(0, 2, 3, 1)
    numpy.testing.assert_array_equal(y_first, y_last)


def test_global_pooling_values(rng):
    x = rng.standard_normal((3, 4, 5, 2))
    numpy.testing.assert_allclose(L.GlobalAveragePooling2D(dtype="float64")(x),
                                  x.mean(axis=(1, 2)))
    numpy.testing.assert_array_equal(L.GlobalMaxPooling2D(dtype="float64")(x), x.max(axis=(1, 2)))
    numpy.testing.assert_array_equal(L.GlobalMaxPooling1D(dtype="float64")(x[:, 0]),
                                     x[:, 0].max(axis=1))
    # The gradient of a global max goes to the first maximum only.
    ties = numpy.zeros((1, 3, 1))
    out, backprop = L.GlobalMaxPooling1D(dtype="float64").forward(ties)
    numpy.testing.assert_array_equal(backprop(numpy.ones((1, 1)))[0, :, 0], [1, 0, 0])


def test_global_average_pooling1d_mask_with_channels_first(rng):
    x = rng.standard_normal((2, 4, 5))
    mask = numpy.array([[1, 1, 0, 0, 1], [0, 0, 0, 0, 0]], bool)
    y = L.GlobalAveragePooling1D(data_format="channels_first", dtype="float64")(x, mask=mask)
    numpy.testing.assert_allclose(y[0], x[0][:, mask[0]].mean(axis=1))
    numpy.testing.assert_array_equal(y[1], 0)


def test_aliases_are_the_same_classes_and_load_by_name():
    assert L.MaxPool2D is L.MaxPooling2D and L.AvgPool2D is L.AveragePooling2D
    assert L.MaxPool1D is L.MaxPooling1D and L.AvgPool1D is L.AveragePooling1D
    assert L.GlobalAvgPool2D is L.GlobalAveragePooling2D
    assert L.GlobalMaxPool1D is L.GlobalMaxPooling1D
    assert L.layer_class("MaxPool2D") is L.MaxPooling2D
    assert L.MaxPooling2D().name.startswith("max_pooling2d")


@pytest.mark.parametrize("make,x_shape,match", [
    (lambda: L.MaxPooling2D(), (4, 6, 6), r"expects inputs of shape \(batch, rows, cols, "
                                          r"channels\), got shape \(None, 6, 6\)"),
    (lambda: L.AveragePooling1D(), (4, 6, 6, 2), r"\(batch, steps, channels\), got shape"),
    (lambda: L.MaxPooling2D(5), (2, 4, 6, 3), r"does not fit spatial axis 0 of size 4"),
    (lambda: L.MaxPooling1D(4), (2, 3, 3), r"does not fit spatial axis 0 of size 3"),
    (lambda: L.GlobalMaxPooling2D(), (2, 5, 3), r"expects inputs of shape"),
])
def test_bad_input_names_the_layer_and_both_shapes(make, x_shape, match):
    layer = make()
    with pytest.raises(ValueError, match=match) as info:
        layer(numpy.zeros(x_shape, "float32"))
    assert layer.name in str(info.value)


def test_bad_arguments_and_changed_channels():
    for bad in (lambda: L.MaxPooling2D(strides=0), lambda: L.MaxPooling2D((2, -1)),
                lambda: L.AveragePooling1D(strides=-2), lambda: L.MaxPooling2D(padding="full"),
                lambda: L.MaxPooling2D(data_format="channels_middle"),
                lambda: L.GlobalAveragePooling1D(data_format="NCW")):
        with pytest.raises(ValueError):
            bad()
    layer = L.MaxPooling2D()
    layer(numpy.zeros((1, 4, 4, 3), "float32"))
    with pytest.raises(ValueError, match=r"built for 3 channels.*got shape \(None, 4, 4, 5\)"):
        layer(numpy.zeros((1, 4, 4, 5), "float32"))
    with pytest.raises(ValueError, match=r"built for 3 channels.*got shape \(1, 4, 4, 5\)"):
        layer.forward(numpy.zeros((1, 4, 4, 5), "float32"))
    with pytest.raises(ValueError, match=r"\(batch, rows, cols, 3\), got shape \(2, 4, 3\)"):
        layer.forward(numpy.zeros((2, 4, 3), "float32"))
    with pytest.raises(ValueError, match="built for 3 channels"):
        layer(fastnn.Input((4, 4, 2)))


def _cnn(backend=None, seed=0):
    fastnn.set_seed(seed)
    model = fastnn.Sequential([
        fastnn.Input((8, 8, 2)),
        L.MaxPooling2D(2, strides=1, padding="same"),
        L.AveragePooling2D(2),
        L.Reshape((16, 2)),
        L.MaxPooling1D(2),
        L.AveragePooling1D(2, padding="same"),
        L.Reshape((2, 2, 2)),
        L.GlobalMaxPooling2D(keepdims=True),
        L.Flatten(),
        L.Dense(3, activation="softmax")], backend=backend)
    model.compile(fastnn.optimizers.Adam(0.05), "sparse_categorical_crossentropy")
    return model


def test_pooling_model_trains_on_strict_backend_like_numpy(rng):
    x = rng.standard_normal((40, 8, 8, 2)).astype("float32")
    y = (x[:, :4].mean(axis=(1, 2, 3)) > 0).astype(int)
    strict = _cnn("strict")
    hist = strict.fit(x, y, batch_size=10, epochs=3, verbose=0)
    ref = _cnn("reference")
    ref_hist = ref.fit(x, y, batch_size=10, epochs=3, verbose=0)
    numpy.testing.assert_allclose(hist.history["loss"], ref_hist.history["loss"], rtol=1e-5)
    assert hist.history["loss"][-1] < hist.history["loss"][0]


def test_pooling_model_saves_and_loads(tmp_path, rng):
    x = rng.standard_normal((6, 8, 8, 2)).astype("float32")
    model = _cnn()
    model.fit(x, numpy.arange(6) % 3, epochs=1, verbose=0)
    model.save(tmp_path / "pool.fastnn")
    loaded = fastnn.load_model(tmp_path / "pool.fastnn")
    numpy.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert [type(la).__name__ for la in loaded.layers] == [type(la).__name__
                                                          for la in model.layers]
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "max_pooling2d" in text and "(None, 4, 4, 2)" in text and "(None, 1, 1, 2)" in text
