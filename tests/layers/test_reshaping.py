"""UpSampling, ZeroPadding and Cropping layers: shapes, float64 gradient checks
and config round trips (run_layer_test), values against NumPy written here
(bilinear against PyTorch's align_corners=False when installed), bad input
messages, save/load and training on the strict backend."""
import numpy
import pytest

import fastnn
from fastnn import layers as L
from fastnn.testing import run_layer_test


@pytest.fixture
def rng():
    return numpy.random.default_rng(11)


LAYER_CASES = [
    (lambda dt: L.UpSampling2D((2, 3), dtype=dt), (2, 3, 4, 2), (2, 6, 12, 2)),
    (lambda dt: L.UpSampling2D(2, data_format="channels_first", dtype=dt), (2, 2, 3, 4),
     (2, 2, 6, 8)),
    (lambda dt: L.UpSampling2D((2, 2), interpolation="bilinear", dtype=dt), (2, 3, 4, 2),
     (2, 6, 8, 2)),
    (lambda dt: L.UpSampling2D((3, 2), interpolation="bilinear", dtype=dt), (1, 1, 3, 2),
     (1, 3, 6, 2)),
    (lambda dt: L.UpSampling1D(3, dtype=dt), (2, 3, 2), (2, 9, 2)),
    (lambda dt: L.ZeroPadding2D(dtype=dt), (2, 3, 4, 2), (2, 5, 6, 2)),
    (lambda dt: L.ZeroPadding2D(((1, 2), (0, 3)), dtype=dt), (2, 3, 4, 2), (2, 6, 7, 2)),
    (lambda dt: L.ZeroPadding2D((2, 1), data_format="channels_first", dtype=dt), (2, 2, 3, 4),
     (2, 2, 7, 6)),
    (lambda dt: L.ZeroPadding1D((1, 2), dtype=dt), (2, 3, 2), (2, 6, 2)),
    (lambda dt: L.Cropping2D(((1, 0), (1, 2)), dtype=dt), (2, 4, 5, 2), (2, 3, 2, 2)),
    (lambda dt: L.Cropping2D(1, data_format="channels_first", dtype=dt), (2, 2, 4, 5),
     (2, 2, 2, 3)),
    (lambda dt: L.Cropping1D((1, 2), dtype=dt), (2, 5, 2), (2, 2, 2)),
]


@pytest.mark.parametrize("make,in_shape,out_shape", LAYER_CASES)
def test_reshaping_layer_harness(make, in_shape, out_shape, rng):
    run_layer_test(make, in_shape, out_shape, rng)


def test_values_against_numpy(rng):
    x = rng.standard_normal((2, 3, 4, 5))
    f64 = {"dtype": "float64"}
    numpy.testing.assert_array_equal(L.UpSampling2D((2, 3), **f64)(x),
                                     x.repeat(2, axis=1).repeat(3, axis=2))
    numpy.testing.assert_array_equal(L.UpSampling1D(2, **f64)(x[:, 0]), x[:, 0].repeat(2, axis=1))
    numpy.testing.assert_array_equal(L.ZeroPadding2D(((1, 2), (3, 0)), **f64)(x),
                                     numpy.pad(x, ((0, 0), (1, 2), (3, 0), (0, 0))))
    numpy.testing.assert_array_equal(L.ZeroPadding1D(2, **f64)(x[:, 0]),
                                     numpy.pad(x[:, 0], ((0, 0), (2, 2), (0, 0))))
    numpy.testing.assert_array_equal(L.Cropping2D(((1, 0), (1, 2)), **f64)(x), x[:, 1:, 1:2])
    numpy.testing.assert_array_equal(L.Cropping1D((0, 1), **f64)(x[:, 0]), x[:, 0, :3])


def _bilinear_reference(x, sh, sw):
    """Half-pixel centres, edges clamped (TensorFlow's resize, PyTorch's
    align_corners=False), one output pixel at a time."""
    n, h, w, c = x.shape
    y = numpy.zeros((n, h * sh, w * sw, c))
    for p in range(h * sh):
        r = max((p + 0.5) / sh - 0.5, 0)
        r0, fr = int(r), r - int(r)
        r1 = min(r0 + 1, h - 1)
        for q in range(w * sw):
            s = max((q + 0.5) / sw - 0.5, 0)
            s0, fs = int(s), s - int(s)
            s1 = min(s0 + 1, w - 1)
            y[:, p, q] = ((1 - fr) * ((1 - fs) * x[:, r0, s0] + fs * x[:, r0, s1])
                          + fr * ((1 - fs) * x[:, r1, s0] + fs * x[:, r1, s1]))
    return y


def test_bilinear_upsampling_against_a_loop_and_pytorch(rng):
    x = rng.standard_normal((2, 3, 5, 2))
    y = L.UpSampling2D((2, 3), interpolation="bilinear", dtype="float64")(x)
    numpy.testing.assert_allclose(y, _bilinear_reference(x, 2, 3), rtol=1e-12, atol=1e-12)
    torch = pytest.importorskip("torch", reason="PyTorch compares bilinear upsampling")
    t = torch.nn.functional.interpolate(torch.from_numpy(x.transpose(0, 3, 1, 2)),
                                        scale_factor=(2, 3), mode="bilinear",
                                        align_corners=False)
    numpy.testing.assert_allclose(y, t.numpy().transpose(0, 2, 3, 1), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("make,x_shape,match", [
    (lambda: L.UpSampling2D(), (4, 6, 6), r"\(batch, rows, cols, channels\), got shape"),
    (lambda: L.ZeroPadding1D(), (4, 6, 6, 1), r"\(batch, steps, channels\), got shape"),
    (lambda: L.Cropping2D(((2, 2), (0, 0))), (2, 4, 6, 3), r"leaves nothing of spatial axis 0"),
    (lambda: L.Cropping1D((3, 3)), (2, 5, 3), r"leaves nothing of spatial axis 0 of size 5"),
])
def test_bad_input_names_the_layer_and_shapes(make, x_shape, match):
    layer = make()
    with pytest.raises(ValueError, match=match) as info:
        layer(numpy.zeros(x_shape, "float32"))
    assert layer.name in str(info.value)


def test_bad_arguments():
    for bad in (lambda: L.UpSampling2D(0), lambda: L.UpSampling2D(interpolation="area"),
                lambda: L.ZeroPadding2D(-1), lambda: L.ZeroPadding2D((1, 2, 3)),
                lambda: L.ZeroPadding2D(((1, 2), (3,))), lambda: L.Cropping2D("1"),
                lambda: L.Cropping1D((1, -1)), lambda: L.UpSampling2D(data_format="nhwc")):
        with pytest.raises(ValueError):
            bad()
    layer = L.ZeroPadding2D()
    layer(numpy.zeros((1, 3, 3, 2), "float32"))
    with pytest.raises(ValueError, match="built for 2 channels"):
        layer.forward(numpy.zeros((1, 3, 3, 4), "float32"))


def _model(backend=None, seed=1):
    fastnn.set_seed(seed)
    model = fastnn.Sequential([
        fastnn.Input((4, 4, 2)),
        L.ZeroPadding2D(((1, 0), (0, 1))),
        L.UpSampling2D(2, interpolation="bilinear"),
        L.Cropping2D(((1, 2), (3, 0))),
        L.UpSampling2D((1, 2)),
        L.Reshape((7 * 14, 2)),
        L.ZeroPadding1D(1),
        L.Cropping1D((2, 0)),
        L.UpSampling1D(2),
        L.Flatten(),
        L.Dense(3, activation="softmax")], backend=backend)
    model.compile(fastnn.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    return model


def test_reshaping_model_trains_on_strict_like_reference_and_saves(tmp_path, rng):
    x = rng.standard_normal((30, 4, 4, 2)).astype("float32")
    y = (x[:, :2].sum(axis=(1, 2, 3)) > 0).astype(int)
    hist = _model("strict").fit(x, y, batch_size=10, epochs=3, verbose=0)
    ref = _model("reference")
    ref_hist = ref.fit(x, y, batch_size=10, epochs=3, verbose=0)
    numpy.testing.assert_allclose(hist.history["loss"], ref_hist.history["loss"], rtol=1e-5)
    assert hist.history["loss"][-1] < hist.history["loss"][0]
    ref.save(tmp_path / "reshape.fastnn")
    numpy.testing.assert_array_equal(fastnn.load_model(tmp_path / "reshape.fastnn").predict(x),
                                     ref.predict(x))
