"""RandomTranslation: fixed shifts (a (lower, upper) range of one value)
against a per-pixel NumPy reference written here (bilinear and nearest
sampling, each fill mode, awkward sizes, channels last and first, float32 and
float64); random whole-pixel shifts, each image a shifted copy; the identity
at inference; float64 gradient check and config round trip; bad input;
training on the strict backend as on the reference; save and load."""
import numpy
import pytest

import fastnn
from fastnn import layers as L
from fastnn.backend.strict import StrictArray
from fastnn.testing import run_layer_test

_PAD_MODES = {"reflect": "symmetric", "wrap": "wrap", "nearest": "edge"}


def _source(k, size, fill_mode):
    """Where source index ``k`` reads inside the image, by numpy.pad's modes
    (None outside the image for "constant")."""
    if fill_mode == "constant":
        return k if 0 <= k < size else None
    pad = 4 * size
    index = numpy.pad(numpy.arange(size), pad, mode=_PAD_MODES[fill_mode])
    return int(index[k + pad])


def _reference(x, dy, dx, fill_mode, interpolation, fill_value, channels_first=False):
    """Per pixel: output (i, j) samples the input at (i - dy, j - dx)."""
    if channels_first:
        x = numpy.moveaxis(x, 1, -1)
    n, h, w, c = x.shape
    out = numpy.zeros(x.shape, numpy.float64)

    def taps(p):
        if interpolation == "nearest":
            return [(int(numpy.floor(p + 0.5)), 1.0)]
        k = int(numpy.floor(p))
        return [(k, 1.0 - (p - k)), (k + 1, p - k)]

    for b in range(n):
        for i in range(h):
            for j in range(w):
                for ki, wi in taps(i - dy):
                    for kj, wj in taps(j - dx):
                        si, sj = _source(ki, h, fill_mode), _source(kj, w, fill_mode)
                        value = (fill_value if si is None or sj is None
                                 else x[b, si, sj].astype(numpy.float64))
                        out[b, i, j] += wi * wj * value
    return numpy.moveaxis(out, -1, 1) if channels_first else out


def _run(layer, x, training=True):
    layer._ensure_built(x.shape[1:])
    y, back = layer.forward(layer.ops.asarray(x), training=training)
    return numpy.asarray(y), back


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("fill_mode", ["reflect", "wrap", "constant", "nearest"])
@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
@pytest.mark.parametrize("fh,fw", [(0.3, -0.45), (-0.9, 1.0), (0.0, 0.25)])
def test_fixed_shift_matches_reference(dtype, fill_mode, interpolation, fh, fw):
    x = numpy.random.default_rng(0).standard_normal((3, 5, 7, 2)).astype(dtype)
    layer = L.RandomTranslation((fh, fh), (fw, fw), fill_mode=fill_mode,
                                interpolation=interpolation, fill_value=0.5, dtype=dtype)
    y, _ = _run(layer, x)
    assert y.dtype == dtype and y.shape == x.shape
    expected = _reference(x, fh * 5, fw * 7, fill_mode, interpolation, 0.5)
    tol = 1e-5 if dtype == numpy.float32 else 1e-12
    numpy.testing.assert_allclose(y, expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
def test_channels_first_and_batch_one(dtype):
    x = numpy.random.default_rng(1).standard_normal((1, 3, 6, 4)).astype(dtype)
    layer = L.RandomTranslation((0.4, 0.4), (-0.3, -0.3), fill_mode="constant",
                                data_format="channels_first", dtype=dtype)
    y, _ = _run(layer, x)
    expected = _reference(x, 0.4 * 6, -0.3 * 4, "constant", "bilinear", 0.0,
                          channels_first=True)
    tol = 1e-5 if dtype == numpy.float32 else 1e-12
    numpy.testing.assert_allclose(y, expected, rtol=tol, atol=tol)


def test_random_whole_pixel_shifts_and_gradient():
    fastnn.set_seed(4)
    x = numpy.random.default_rng(2).standard_normal((64, 8, 9, 1)).astype("float32")
    layer = L.RandomTranslation(0.25, 0.25, fill_mode="constant", interpolation="nearest")
    y, back = _run(layer, x)
    padded = numpy.pad(x, ((0, 0), (3, 3), (3, 3), (0, 0)))
    seen = set()
    for b in range(len(x)):
        match = [(dy, dx) for dy in range(-2, 3) for dx in range(-3, 4)
                 if numpy.array_equal(padded[b, 3 - dy:11 - dy, 3 - dx:12 - dx], y[b])]
        assert match, f"image {b} is not a whole-pixel shift of itself within the range"
        seen.add(match[0])
    assert len(seen) > 10            # shifts vary from image to image
    # The gradient of a shift is the opposite shift, zero where the border came in.
    g = numpy.asarray(back(layer.ops.asarray(y)))
    for b in range(len(x)):
        dy, dx = [m for m in seen if numpy.array_equal(
            padded[b, 3 - m[0]:11 - m[0], 3 - m[1]:12 - m[1]], y[b])][0]
        kept = numpy.zeros_like(x[b])
        kept[max(0, -dy):8 - max(0, dy), max(0, -dx):9 - max(0, dx)] = 1
        numpy.testing.assert_array_equal(g[b], x[b] * kept)


def test_identity_at_inference():
    x = numpy.random.default_rng(3).standard_normal((4, 5, 5, 2)).astype("float32")
    y, back = _run(L.RandomTranslation(0.5, 0.5), x, training=False)
    numpy.testing.assert_array_equal(y, x)


@pytest.mark.parametrize("fill_mode,interpolation", [("reflect", "bilinear"),
                                                     ("constant", "bilinear"),
                                                     ("wrap", "nearest")])
def test_layer_harness(fill_mode, interpolation, rng):
    run_layer_test(lambda dtype: L.RandomTranslation(
        0.3, (-0.2, 0.4), fill_mode=fill_mode, interpolation=interpolation, fill_value=0.25,
        dtype=dtype), (2, 5, 6, 3), (2, 5, 6, 3), rng, n_weights=0)


def test_config_round_trip_and_bad_input():
    layer = L.RandomTranslation((-0.1, 0.2), 0.3, fill_mode="wrap", interpolation="nearest",
                                fill_value=1.5, name="shift")
    again = L.layer_class("RandomTranslation").from_config(layer.get_config())
    assert again.get_config() == layer.get_config()
    assert again.name == "shift" and again.fill_mode == "wrap" and again.fill_value == 1.5
    with pytest.raises(ValueError, match=r"height_factor must lie in \[-1, 1\]"):
        L.RandomTranslation(1.5, 0.1)
    with pytest.raises(ValueError, match="width_factor must lie in"):
        L.RandomTranslation(0.1, (0.3, -0.3))
    with pytest.raises(ValueError, match="width_factor must be a float or"):
        L.RandomTranslation(0.1, (0.1, 0.2, 0.3))
    with pytest.raises(ValueError, match="fill_mode must be one of"):
        L.RandomTranslation(0.1, 0.1, fill_mode="mirror")
    with pytest.raises(ValueError, match="interpolation must be one of"):
        L.RandomTranslation(0.1, 0.1, interpolation="bicubic")
    with pytest.raises(ValueError, match=r"RandomTranslation layer .*expects images of shape "
                                         r".*got \(None, 5, 4\)"):
        fastnn.Sequential([L.Input((5, 4)), L.RandomTranslation(0.1, 0.1)])
    built = L.RandomTranslation(0.1, 0.1)
    built._ensure_built((5, 4, 1))
    with pytest.raises(ValueError, match=r"got \(2, 5, 4\)"):
        built.forward(built.ops.asarray(numpy.zeros((2, 5, 4), "float32")), training=True)


def _model(backend):
    fastnn.set_seed(5)
    model = fastnn.Sequential([
        fastnn.Input((6, 6, 1)),
        L.RandomTranslation(0.2, 0.2, name="shift"),
        L.Conv2D(3, 3, activation="relu"), L.Flatten(),
        L.Dense(2, activation="softmax")], backend=backend)
    model.compile(fastnn.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    return model


def _images(n=32):
    rng = numpy.random.default_rng(6)
    x = rng.random((n, 6, 6, 1)).astype("float32")
    return x, (x[:, :3].mean((1, 2, 3)) > x[:, 3:].mean((1, 2, 3))).astype(int)


def test_trains_on_strict_backend_as_on_reference():
    x, y = _images()
    results = {}
    for name in ("reference", "strict"):
        model = _model(name)
        if name == "strict":
            assert all(isinstance(p, StrictArray) for p in model.weights)
        hist = model.fit(x, y, batch_size=8, epochs=4, verbose=0)
        results[name] = (hist.history["loss"], model.get_weights())
    assert results["strict"][0][-1] < results["strict"][0][0]
    assert results["strict"][0] == results["reference"][0]
    for a, b in zip(results["strict"][1], results["reference"][1]):
        numpy.testing.assert_array_equal(a, b)


def test_save_load_and_summary(tmp_path):
    x, y = _images(16)
    model = _model("numpy")
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    model.save(tmp_path / "shift.fnn")
    again = fastnn.load_model(tmp_path / "shift.fnn")
    shift = again.get_layer("shift")
    assert type(shift).__name__ == "RandomTranslation" and shift.height_factor == 0.2
    numpy.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))
    lines = []
    model.summary(print_fn=lines.append)
    assert any("shift" in line and "RandomTranslation" in line for line in lines)
