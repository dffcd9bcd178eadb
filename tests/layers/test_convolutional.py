"""Conv1D, Conv2D and Conv2DTranspose: the layer harness (shapes, float64
gradient check, config round trip), Keras's output-shape rules, channels_first
against channels_last, PyTorch's results for the same weights, saving and
loading, training on the strict backend, and the bad-input messages."""
import math

import numpy
import pytest

import fastnn
from fastnn import layers as L
from fastnn.backend import use_backend
from fastnn.backend.strict import StrictArray
from fastnn.gradcheck import gradcheck
from fastnn.testing import run_layer_test

try:
    import torch
except ImportError:  # pragma: no cover - torch is installed on the team's machines
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")


def keras_conv_length(n, k, padding, s, d=1):
    """Keras's documented output length of a convolution."""
    keff = (k - 1) * d + 1
    if padding == "same":
        return math.ceil(n / s)
    if padding == "causal":
        return math.ceil(n / s) if s == 1 else (n - 1) // s + 1
    return (n - keff) // s + 1


# --------------------------------------------------------------- harness
@pytest.mark.parametrize("backend", ["numpy", "reference"])
@pytest.mark.parametrize("kwargs,in_shape,out_shape", [
    (dict(filters=4, kernel_size=3), (2, 6, 5, 3), (2, 4, 3, 4)),
    (dict(filters=3, kernel_size=(2, 3), padding="same", activation="relu"),
     (2, 5, 7, 2), (2, 5, 7, 3)),
    (dict(filters=4, kernel_size=3, strides=2, padding="same", activation="tanh"),
     (1, 7, 6, 3), (1, 4, 3, 4)),
    (dict(filters=2, kernel_size=3, dilation_rate=2, activation="sigmoid"),
     (2, 7, 8, 2), (2, 3, 4, 2)),
    (dict(filters=6, kernel_size=3, groups=2, padding="same", activation="elu"),
     (2, 4, 5, 4), (2, 4, 5, 6)),
    (dict(filters=3, kernel_size=1, use_bias=False), (3, 4, 4, 5), (3, 4, 4, 3)),
    (dict(filters=2, kernel_size=(4, 5)), (2, 4, 5, 3), (2, 1, 1, 2)),     # kernel = input
    (dict(filters=3, kernel_size=3, padding="same", activation="gelu"), (2, 4, 4, 2),
     (2, 4, 4, 3)),
    (dict(filters=3, kernel_size=2, data_format="channels_first", activation="softmax"),
     (2, 2, 4, 5), (2, 3, 3, 4)),
])
def test_conv2d_harness(backend, kwargs, in_shape, out_shape, rng):
    with use_backend(backend):
        run_layer_test(lambda dt: L.Conv2D(dtype=dt, **kwargs), in_shape, out_shape, rng,
                       n_weights=1 if kwargs.get("use_bias") is False else 2)


@pytest.mark.parametrize("backend", ["numpy", "reference"])
@pytest.mark.parametrize("kwargs,in_shape,out_shape", [
    (dict(filters=4, kernel_size=3), (2, 9, 3), (2, 7, 4)),
    (dict(filters=3, kernel_size=3, padding="same", strides=2), (2, 9, 2), (2, 5, 3)),
    (dict(filters=3, kernel_size=2, padding="causal", dilation_rate=2, activation="relu"),
     (2, 7, 2), (2, 7, 3)),
    (dict(filters=4, kernel_size=3, groups=2, data_format="channels_first"), (2, 4, 8),
     (2, 4, 6)),
])
def test_conv1d_harness(backend, kwargs, in_shape, out_shape, rng):
    with use_backend(backend):
        run_layer_test(lambda dt: L.Conv1D(dtype=dt, **kwargs), in_shape, out_shape, rng,
                       n_weights=2)


@pytest.mark.parametrize("backend", ["numpy", "reference"])
@pytest.mark.parametrize("kwargs,in_shape,out_shape", [
    (dict(filters=3, kernel_size=3), (2, 4, 5, 2), (2, 6, 7, 3)),
    (dict(filters=2, kernel_size=3, strides=2, padding="same", activation="relu"),
     (2, 3, 4, 3), (2, 6, 8, 2)),
    (dict(filters=2, kernel_size=3, strides=2, output_padding=1), (1, 3, 3, 2), (1, 8, 8, 2)),
    (dict(filters=2, kernel_size=(2, 3), strides=(2, 3), padding="same", output_padding=(1, 0)),
     (2, 3, 2, 2), (2, 5, 4, 2)),
    (dict(filters=3, kernel_size=2, dilation_rate=2, data_format="channels_first",
          activation="tanh"), (2, 2, 3, 4), (2, 3, 5, 6)),
])
def test_conv2d_transpose_harness(backend, kwargs, in_shape, out_shape, rng):
    with use_backend(backend):
        run_layer_test(lambda dt: L.Conv2DTranspose(dtype=dt, **kwargs), in_shape, out_shape,
                       rng, n_weights=2)


# -------------------------------------------------------- Keras semantics
@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("dilation", [1, 2])
@pytest.mark.parametrize("size", [7, 8, 11])
def test_output_shapes_follow_keras(padding, stride, dilation, size, rng):
    layer = L.Conv2D(2, (3, 2), strides=stride, padding=padding, dilation_rate=dilation)
    x = rng.standard_normal((1, size, size + 1, 3)).astype("float32")
    expected = (1, keras_conv_length(size, 3, padding, stride, dilation),
                keras_conv_length(size + 1, 2, padding, stride, dilation), 2)
    assert layer(x).shape == expected
    assert layer.compute_output_shape(x.shape[1:]) == expected[1:]
    t = L.Conv2DTranspose(2, 3, strides=stride, padding=padding, dilation_rate=dilation)
    keff = 2 * dilation + 1
    n = size * stride + max(keff - stride, 0) if padding == "valid" else size * stride
    assert t(x).shape == (1, n, t.compute_output_shape(x.shape[1:])[1], 2)
    c1 = L.Conv1D(2, 3, strides=stride, padding="causal", dilation_rate=dilation)
    assert c1(x[:, 0]).shape == (1, keras_conv_length(size + 1, 3, "causal", stride), 2)


def test_weight_layouts_and_names():
    conv = L.Conv2D(8, (3, 2), groups=2)
    conv(numpy.zeros((1, 5, 5, 6), "float32"))
    assert conv.params["kernel"].shape == (3, 2, 3, 8) and conv.params["bias"].shape == (8,)
    t = L.Conv2DTranspose(8, (3, 2))
    t(numpy.zeros((1, 5, 5, 6), "float32"))
    assert t.params["kernel"].shape == (3, 2, 8, 6)
    c1 = L.Conv1D(4, 5)
    c1(numpy.zeros((1, 9, 3), "float32"))
    assert c1.params["kernel"].shape == (5, 3, 4)
    assert L.Convolution2D is L.Conv2D and L.Convolution1D is L.Conv1D
    assert L.Convolution2DTranspose is L.Conv2DTranspose


@pytest.mark.parametrize("cls,kwargs,shape", [
    (L.Conv2D, dict(filters=4, kernel_size=3, strides=2, padding="same", activation="relu"),
     (2, 7, 6, 3)),
    (L.Conv1D, dict(filters=4, kernel_size=3, padding="causal"), (2, 7, 3)),
    (L.Conv2DTranspose, dict(filters=4, kernel_size=3, strides=2, padding="same"), (2, 3, 4, 3)),
])
def test_channels_first_equals_transposed_channels_last(cls, kwargs, shape, rng):
    last = cls(**kwargs)
    first = cls(data_format="channels_first", **kwargs)
    x = rng.standard_normal(shape).astype("float32")
    perm = (0, x.ndim - 1) + tuple(range(1, x.ndim - 1))
    back = (0,) + tuple(range(2, x.ndim)) + (1,)
    y_last = last(x)
    first(numpy.ascontiguousarray(x.transpose(perm)))
    first.set_weights(last.get_weights())
    y_first = first(numpy.ascontiguousarray(x.transpose(perm)))
    numpy.testing.assert_allclose(y_first.transpose(back), y_last, rtol=1e-5, atol=1e-6)
    # and the gradients
    dy = rng.standard_normal(y_last.shape).astype("float32")
    _, bp_last = last.forward(x, True)
    _, bp_first = first.forward(numpy.ascontiguousarray(x.transpose(perm)), True)
    dx_last = bp_last(dy)
    dx_first = bp_first(numpy.ascontiguousarray(dy.transpose(perm)))
    numpy.testing.assert_allclose(dx_first.transpose(back), dx_last, rtol=1e-5, atol=1e-5)
    numpy.testing.assert_allclose(first.grads["kernel"], last.grads["kernel"], rtol=1e-4,
                                  atol=1e-4)


def test_frozen_layer_passes_gradients_only(rng):
    conv = L.Conv2D(3, 3, padding="same", activation="relu", trainable=False)
    x = rng.standard_normal((2, 5, 5, 2))
    conv64 = L.Conv2D(3, 3, padding="same", activation="relu", dtype="float64")
    conv64(x)
    conv(x.astype("float32"))
    conv.set_weights(conv64.get_weights())
    y, bp = conv.forward(x.astype("float32"))
    y64, bp64 = conv64.forward(x)
    dy = rng.standard_normal(y.shape)
    numpy.testing.assert_allclose(bp(dy.astype("float32")), bp64(dy), rtol=1e-4, atol=1e-5)
    assert not conv.grads["kernel"].any()
    assert bp(dy.astype("float32"), need_dx=False) is None


# ------------------------------------------------------------- PyTorch
@needs_torch
@pytest.mark.parametrize("kwargs,torch_pad", [
    (dict(kernel_size=3, padding="same"), 1),
    (dict(kernel_size=(3, 5), strides=(2, 1)), 0),
    (dict(kernel_size=3, dilation_rate=2), 0),
    (dict(kernel_size=3, strides=2, dilation_rate=2), 0),   # Keras refuses; fastnn computes it
    (dict(kernel_size=3, groups=3, padding="same"), 1),
    (dict(kernel_size=1), 0),
])
def test_conv2d_matches_torch(kwargs, torch_pad, rng):
    conv = L.Conv2D(6, dtype="float64", **kwargs)
    x = rng.standard_normal((3, 9, 10, 6))
    y = conv(x)
    W, b = conv.get_weights()
    xt = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
    Wt = torch.tensor(W.transpose(3, 2, 0, 1), requires_grad=True)
    bt = torch.tensor(b, requires_grad=True)
    yt = torch.nn.functional.conv2d(xt, Wt, bt, stride=conv.strides, padding=torch_pad,
                                    dilation=conv.dilation_rate, groups=conv.groups)
    numpy.testing.assert_allclose(y, yt.detach().numpy().transpose(0, 2, 3, 1), rtol=1e-10,
                                  atol=1e-10)
    dy = rng.standard_normal(y.shape)
    conv.zero_grads()
    _, bp = conv.forward(x, True)
    dx = bp(dy)
    yt.backward(torch.tensor(dy.transpose(0, 3, 1, 2)))
    numpy.testing.assert_allclose(dx, xt.grad.numpy().transpose(0, 2, 3, 1), rtol=1e-10,
                                  atol=1e-10)
    numpy.testing.assert_allclose(conv.grads["kernel"], Wt.grad.numpy().transpose(2, 3, 1, 0),
                                  rtol=1e-10, atol=1e-10)
    numpy.testing.assert_allclose(conv.grads["bias"], bt.grad.numpy(), rtol=1e-10, atol=1e-10)


@needs_torch
@pytest.mark.parametrize("strides,output_padding,dilation", [
    (1, None, 1), (2, None, 1), (2, 1, 1), (3, 2, 1), (1, None, 2), (2, 1, 2)])
def test_conv2d_transpose_valid_matches_torch(strides, output_padding, dilation, rng):
    t = L.Conv2DTranspose(4, 3, strides=strides, output_padding=output_padding,
                          dilation_rate=dilation, dtype="float64")
    x = rng.standard_normal((2, 4, 5, 3))
    y = t(x)
    K, b = t.get_weights()
    keff = 2 * dilation + 1
    extra = max(keff - strides, 0) if output_padding is None else keff + output_padding - strides
    op = (y.shape[1] - ((4 - 1) * strides + keff))
    yt = torch.nn.functional.conv_transpose2d(
        torch.tensor(x.transpose(0, 3, 1, 2)), torch.tensor(K.transpose(3, 2, 0, 1)),
        torch.tensor(b), stride=strides, output_padding=op, dilation=dilation)
    assert y.shape[1] == 4 * strides + extra
    numpy.testing.assert_allclose(y, yt.numpy().transpose(0, 2, 3, 1), rtol=1e-10, atol=1e-10)


@needs_torch
@pytest.mark.parametrize("size,kernel,stride", [(8, 3, 2), (7, 4, 1), (9, 4, 3), (6, 2, 2)])
def test_same_padding_puts_the_odd_zero_after_as_keras(size, kernel, stride, rng):
    """Keras's (TensorFlow's) "same": the odd pad goes after (bottom, right);
    PyTorch pads symmetrically, so torch runs on an input padded by hand."""
    conv = L.Conv2D(3, kernel, strides=stride, padding="same", dtype="float64")
    x = rng.standard_normal((2, size, size + 1, 2))
    y = conv(x)
    W, b = conv.get_weights()
    pads = []
    for n in (size + 1, size):  # torch's F.pad lists the last axis first
        out = -(-n // stride)
        total = max((out - 1) * stride + kernel - n, 0)
        pads += [total // 2, total - total // 2]
    xt = torch.nn.functional.pad(torch.tensor(x.transpose(0, 3, 1, 2)), pads)
    yt = torch.nn.functional.conv2d(xt, torch.tensor(W.transpose(3, 2, 0, 1)), torch.tensor(b),
                                    stride=stride)
    numpy.testing.assert_allclose(y, yt.numpy().transpose(0, 2, 3, 1), rtol=1e-10, atol=1e-10)
    # The transposed convolution crops its full output as TensorFlow's
    # conv2d_transpose: total = (n - 1) * s + k - out, the odd row cropped after.
    t = L.Conv2DTranspose(3, kernel, strides=stride, padding="same", dtype="float64")
    yt_ = t(x)
    K, bt = t.get_weights()
    full = torch.nn.functional.conv_transpose2d(
        torch.tensor(x.transpose(0, 3, 1, 2)), torch.tensor(K.transpose(3, 2, 0, 1)),
        torch.tensor(bt), stride=stride).numpy().transpose(0, 2, 3, 1)
    crops = []
    for n in (size, size + 1):
        total = max((n - 1) * stride + kernel - n * stride, 0)
        crops.append(total // 2)
    assert yt_.shape == (2, size * stride, (size + 1) * stride, 3)
    numpy.testing.assert_allclose(
        yt_, full[:, crops[0]:crops[0] + size * stride, crops[1]:crops[1] + (size + 1) * stride],
        rtol=1e-10, atol=1e-10)


@needs_torch
def test_conv1d_causal_matches_left_padded_torch(rng):
    c = L.Conv1D(3, 3, padding="causal", dilation_rate=2, dtype="float64")
    x = rng.standard_normal((2, 8, 2))
    y = c(x)
    W, b = c.get_weights()
    xt = torch.nn.functional.pad(torch.tensor(x.transpose(0, 2, 1)), (4, 0))
    yt = torch.nn.functional.conv1d(xt, torch.tensor(W.transpose(2, 1, 0)), torch.tensor(b),
                                    dilation=2)
    numpy.testing.assert_allclose(y, yt.numpy().transpose(0, 2, 1), rtol=1e-10, atol=1e-10)
    # step t does not see steps after t
    x2 = x.copy()
    x2[:, 5:] += 1
    numpy.testing.assert_array_equal(c(x2)[:, :5], y[:, :5])


# ----------------------------------------------------- models and saving
def _convnet(backend):
    fastnn.set_seed(7)
    model = fastnn.Sequential([
        fastnn.Input((6, 6, 2)),
        L.Conv2D(4, 3, padding="same", activation="relu", kernel_regularizer="l2"),
        L.Conv2D(4, 3, strides=2, groups=2, activation="tanh"),
        L.Conv2DTranspose(3, 2, strides=2, activation="relu"),
        L.Reshape((4 * 4, 3)),
        L.Conv1D(2, 3, padding="causal", data_format="channels_last"),
        L.Flatten(),
        L.Dense(2, activation="softmax")], backend=backend)
    model.compile(fastnn.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    return model


def _images(n=48, seed=0):
    rng = numpy.random.default_rng(seed)
    x = rng.standard_normal((n, 6, 6, 2)).astype("float32")
    y = (x[:, :3, :, 0].mean((1, 2)) > x[:, 3:, :, 1].mean((1, 2))).astype(int)
    return x, y


def test_convnet_trains_on_strict_backend_as_on_reference():
    x, y = _images()
    results = {}
    for name in ("reference", "strict"):
        model = _convnet(name)
        if name == "strict":
            assert all(isinstance(p, StrictArray) for p in model.weights)
        hist = model.fit(x, y, batch_size=16, epochs=6, verbose=0)
        results[name] = (hist.history["loss"], model.get_weights())
    losses = results["strict"][0]
    assert losses[-1] < losses[0]
    assert losses == results["reference"][0]
    for a, b in zip(results["strict"][1], results["reference"][1]):
        numpy.testing.assert_array_equal(a, b)
    # The Cython backend trains the same net to the same place (to rounding).
    model = _convnet("numpy")
    hist = model.fit(x, y, batch_size=16, epochs=6, verbose=0)
    numpy.testing.assert_allclose(hist.history["loss"], losses, rtol=1e-3)


def test_save_load_round_trip(tmp_path):
    x, y = _images(20)
    model = _convnet("numpy")
    model.fit(x, y, batch_size=10, epochs=1, verbose=0)
    model.save(tmp_path / "conv.fnn")
    loaded = fastnn.load_model(tmp_path / "conv.fnn")
    numpy.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert [type(l).__name__ for l in loaded.layers] == [type(l).__name__ for l in model.layers]
    for a, b in zip(loaded.layers, model.layers):
        assert a.get_config() == b.get_config()


def test_model_gradients(rng):
    model = _convnet("numpy")
    x, y = _images(6)
    model64 = fastnn.Sequential([fastnn.Input((6, 6, 2), dtype="float64")] + [
        type(l).from_config({**l.get_config(), "dtype": "float64"}) for l in model.layers])
    model64.compile("sgd", "sparse_categorical_crossentropy")
    assert gradcheck(model64, x.astype("float64"), y).ok


# ------------------------------------------------------------ bad input
def test_bad_input_messages():
    conv = L.Conv2D(4, 3, name="c")
    conv(numpy.zeros((1, 5, 5, 3), "float32"))
    # A 3D batch is read as samples of shape (5, 3).
    with pytest.raises(ValueError, match=r"'c' expects 4D inputs of shape \(batch, rows, cols, "
                                         r"3\), got input of shape \(None, 5, 3\)"):
        conv(numpy.zeros((5, 5, 3), "float32"))
    with pytest.raises(ValueError, match=r"'c' expects 4D inputs of shape \(batch, rows, cols, "
                                         r"3\), got input of shape \(5, 5, 3\)"):
        conv.forward(numpy.zeros((5, 5, 3), "float32"))
    with pytest.raises(ValueError, match=r"'c' was built for 3 input channels, inputs of shape "
                                         r"\(batch, rows, cols, 3\); got input of shape "
                                         r"\(None, 5, 5, 2\)"):
        conv(numpy.zeros((1, 5, 5, 2), "float32"))
    with pytest.raises(ValueError, match=r"'c'.*window of 3.*axis 0 of size 2.*padding='valid'"):
        conv(numpy.zeros((1, 2, 5, 3), "float32"))
    with pytest.raises(ValueError, match="'d'.*window of 5.*size 4"):
        L.Conv2D(4, 5, name="d")(numpy.zeros((1, 4, 9, 3), "float32"))
    with pytest.raises(ValueError, match=r"'e' expects 4D inputs.*got input of shape "
                                         r"\(None, 5, 3\)"):
        fastnn.Sequential([fastnn.Input((5, 3)), L.Conv2D(4, 3, name="e")])
    with pytest.raises(ValueError, match="strides must be >= 1"):
        L.Conv2D(4, 3, strides=0)
    with pytest.raises(ValueError, match="strides must be >= 1"):
        L.Conv1D(4, 3, strides=-2)
    with pytest.raises(ValueError, match="data_format must be 'channels_last' or "
                                         "'channels_first', got 'NHWC'"):
        L.Conv2D(4, 3, data_format="NHWC")
    with pytest.raises(ValueError, match="padding must be one of 'valid', 'same'"):
        L.Conv2D(4, 3, padding="causal")
    with pytest.raises(ValueError, match="multiple of groups"):
        L.Conv2D(5, 3, groups=2)
    with pytest.raises(ValueError, match=r"input channels \(3\) must be a multiple of groups"):
        L.Conv2D(4, 3, groups=2)(numpy.zeros((1, 5, 5, 3), "float32"))
    with pytest.raises(ValueError, match="output_padding .* must be smaller than strides"):
        L.Conv2DTranspose(4, 3, strides=2, output_padding=2)
    with pytest.raises(ValueError, match="filters must be a positive integer"):
        L.Conv2D(0, 3)
    with pytest.raises(ValueError, match="kernel_size"):
        L.Conv2D(4, (3, 3, 3))
    c1 = L.Conv1D(2, 3, name="s")
    with pytest.raises(ValueError, match=r"'s' expects 3D inputs of shape \(batch, steps, "
                                         r"channels\), got input of shape \(None, 4, 4, 4\)"):
        c1(numpy.zeros((1, 4, 4, 4), "float32"))
    t = L.Conv2DTranspose(2, 3, data_format="channels_first", name="t")
    t(numpy.zeros((1, 3, 4, 4), "float32"))
    with pytest.raises(ValueError, match=r"'t' was built for 3 input channels, inputs of shape "
                                         r"\(batch, 3, rows, cols\)"):
        t(numpy.zeros((1, 4, 4, 4), "float32"))


@pytest.mark.parametrize("padding", ["same", "valid"])
def test_model_gradients_on_the_winograd_path(padding, monkeypatch):
    """Conv2D 3x3 / stride 1 in float64 through fastnn._C.conv's Winograd
    F(2x2, 3x3) path (forced by the module's switch: these channels are too few
    for "auto"), odd image sizes, gradient-checked; the path is counted."""
    from fastnn._C import conv as conv_kernels
    monkeypatch.setattr(conv_kernels, "WINOGRAD", True)
    calls = []
    apply = conv_kernels._wg_apply
    monkeypatch.setattr(conv_kernels, "_wg_apply", lambda *a: calls.append(1) or apply(*a))
    rng = numpy.random.default_rng(3)
    x = rng.standard_normal((4, 5, 7, 3))
    y = rng.integers(0, 2, 4)
    model = fastnn.Sequential([
        fastnn.Input((5, 7, 3), dtype="float64"),
        L.Conv2D(4, 3, padding=padding, activation="relu", dtype="float64"),
        L.Conv2D(3, 3, padding="same", activation="elu", dtype="float64"),
        L.Flatten(dtype="float64"),
        L.Dense(2, activation="softmax", dtype="float64")], backend="numpy")
    model.compile("sgd", "sparse_categorical_crossentropy")
    assert gradcheck(model, x, y).ok
    assert calls   # forward (and the second layer's dx) took the Winograd path
