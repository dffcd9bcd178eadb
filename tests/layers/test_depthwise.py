"""DepthwiseConv2D and SeparableConv2D: shapes, float64 gradient checks and
config round trips (run_layer_test), equality with PyTorch's grouped
convolution (skipped without torch), Keras's weight names and layouts, bad
input messages, save/load and training on the strict backend."""
import numpy
import pytest

import fastnn
from fastnn import layers as L
from fastnn.testing import run_layer_test


@pytest.fixture
def rng():
    return numpy.random.default_rng(5)


LAYER_CASES = [
    (lambda dt: L.DepthwiseConv2D(3, padding="same", activation="relu", dtype=dt),
     (2, 5, 6, 3), (2, 5, 6, 3)),
    (lambda dt: L.DepthwiseConv2D((2, 3), strides=2, depth_multiplier=2, dtype=dt),
     (2, 5, 7, 3), (2, 2, 3, 6)),
    (lambda dt: L.DepthwiseConv2D((2, 3), strides=(1, 2), activation="gelu", use_bias=False,
                                  dtype=dt), (1, 4, 7, 2), (1, 3, 3, 2)),
    (lambda dt: L.DepthwiseConv2D(3, dilation_rate=2, data_format="channels_first",
                                  activation="softmax", dtype=dt), (2, 3, 6, 7), (2, 3, 2, 3)),
    (lambda dt: L.DepthwiseConv2D((4, 5), activation="tanh", dtype=dt), (2, 4, 5, 3),
     (2, 1, 1, 3)),
    (lambda dt: L.SeparableConv2D(4, 3, padding="same", depth_multiplier=2, activation="tanh",
                                  dtype=dt), (2, 5, 6, 3), (2, 5, 6, 4)),
    (lambda dt: L.SeparableConv2D(4, (2, 2), strides=(2, 1), data_format="channels_first",
                                  activation="silu", dtype=dt), (2, 3, 5, 6), (2, 4, 2, 5)),
    (lambda dt: L.SeparableConv2D(2, 1, use_bias=False, dtype=dt), (1, 3, 3, 4), (1, 3, 3, 2)),
]


@pytest.mark.parametrize("make,in_shape,out_shape", LAYER_CASES)
def test_depthwise_layer_harness(make, in_shape, out_shape, rng):
    run_layer_test(make, in_shape, out_shape, rng)


def test_weights_are_named_and_laid_out_as_keras():
    layer = L.DepthwiseConv2D((3, 2), depth_multiplier=4)
    layer(numpy.zeros((1, 5, 5, 3), "float32"))
    assert {k: v.shape for k, v in layer.params.items()} == {"kernel": (3, 2, 3, 4),
                                                             "bias": (12,)}
    sep = L.SeparableConv2D(7, 3, depth_multiplier=2)
    sep(numpy.zeros((1, 5, 5, 3), "float32"))
    assert {k: v.shape for k, v in sep.params.items()} == {
        "depthwise_kernel": (3, 3, 3, 2), "pointwise_kernel": (1, 1, 6, 7), "bias": (7,)}
    assert L.SeparableConvolution2D is L.SeparableConv2D


@pytest.mark.parametrize("strides,dilation,padding,mult", [
    ((1, 1), (1, 1), "same", 1), ((2, 2), (1, 1), "valid", 2), ((1, 1), (2, 2), "same", 3),
    ((2, 1), (1, 1), "valid", 1)])
def test_depthwise_equals_torch_grouped_conv(strides, dilation, padding, mult, rng):
    torch = pytest.importorskip("torch", reason="PyTorch is the reference for grouped conv")
    x = rng.standard_normal((2, 9, 8, 4))
    layer = L.DepthwiseConv2D(3, strides=strides, padding=padding, dilation_rate=dilation,
                              depth_multiplier=mult, dtype="float64")
    layer._ensure_built(x.shape[1:])
    layer.set_weights([rng.standard_normal((3, 3, 4, mult)), rng.standard_normal(4 * mult)])
    y, backprop = layer.forward(x, training=True)
    dy = rng.standard_normal(y.shape)
    dx = backprop(dy)
    kernel, bias = layer.get_weights()
    # Keras's (kh, kw, C, M) kernel is PyTorch's (C*M, 1, kh, kw): output c*M + m.
    w = torch.tensor(kernel.transpose(2, 3, 0, 1).reshape(4 * mult, 1, 3, 3), requires_grad=True)
    xt = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
    bt = torch.tensor(bias, requires_grad=True)
    pad = "same" if padding == "same" else 0  # the "same" cases here have stride 1
    yt = torch.nn.functional.conv2d(xt, w, bt, stride=strides, padding=pad, dilation=dilation,
                                    groups=4)
    numpy.testing.assert_allclose(y, yt.detach().numpy().transpose(0, 2, 3, 1), rtol=1e-10,
                                  atol=1e-10)
    yt.backward(torch.tensor(dy.transpose(0, 3, 1, 2)))
    numpy.testing.assert_allclose(dx, xt.grad.numpy().transpose(0, 2, 3, 1), rtol=1e-10,
                                  atol=1e-10)
    numpy.testing.assert_allclose(
        layer.grads["kernel"], w.grad.numpy().reshape(4, mult, 3, 3).transpose(2, 3, 0, 1),
        rtol=1e-10, atol=1e-10)
    numpy.testing.assert_allclose(layer.grads["bias"], bt.grad.numpy(), rtol=1e-10, atol=1e-10)


def test_separable_is_depthwise_then_pointwise(rng):
    x = rng.standard_normal((2, 6, 5, 3))
    sep = L.SeparableConv2D(5, 3, padding="same", depth_multiplier=2, activation="relu",
                            dtype="float64")
    y = sep(x)
    dk, pk, b = sep.get_weights()
    dw = L.DepthwiseConv2D(3, padding="same", depth_multiplier=2, use_bias=False,
                           dtype="float64")
    dw._ensure_built(x.shape[1:])
    dw.set_weights([dk])
    z = dw(x)
    numpy.testing.assert_allclose(y, numpy.maximum(z @ pk[0, 0] + b, 0), rtol=1e-12, atol=1e-12)


def test_frozen_layers_still_pass_gradients(rng):
    x = rng.standard_normal((2, 5, 5, 3))
    for layer in (L.DepthwiseConv2D(3, dtype="float64"),
                  L.SeparableConv2D(2, 3, dtype="float64")):
        layer._ensure_built(x.shape[1:])
        layer.trainable = False
        y, backprop = layer.forward(x, training=True)
        dx = backprop(numpy.ones(y.shape))
        assert dx.shape == x.shape and numpy.abs(dx).sum() > 0
        assert all(not g.any() for g in layer.grads.values())


@pytest.mark.parametrize("make,x_shape,match", [
    (lambda: L.DepthwiseConv2D(3), (4, 6, 6), r"\(batch, rows, cols, channels\), got shape"),
    (lambda: L.DepthwiseConv2D(5), (2, 4, 6, 3), r"does not fit spatial axis 0 of size 4"),
    (lambda: L.SeparableConv2D(2, (1, 7)), (2, 4, 6, 3), r"does not fit spatial axis 1 of size 6"),
    (lambda: L.DepthwiseConv2D(3, data_format="channels_first"), (2, 3, 2, 6),
     r"does not fit spatial axis 0 of size 2"),
])
def test_bad_input_names_the_layer_and_shapes(make, x_shape, match):
    layer = make()
    with pytest.raises(ValueError, match=match) as info:
        layer(numpy.zeros(x_shape, "float32"))
    assert layer.name in str(info.value)


def test_bad_arguments_and_changed_channels():
    for bad in (lambda: L.DepthwiseConv2D(3, strides=0), lambda: L.DepthwiseConv2D(0),
                lambda: L.DepthwiseConv2D(3, depth_multiplier=0),
                lambda: L.DepthwiseConv2D(3, strides=2, dilation_rate=2),
                lambda: L.DepthwiseConv2D(3, padding="causal"),
                lambda: L.SeparableConv2D(0, 3), lambda: L.SeparableConv2D(2, 3, strides=-1),
                lambda: L.DepthwiseConv2D(3, data_format="NHWC")):
        with pytest.raises(ValueError):
            bad()
    layer = L.DepthwiseConv2D(3)
    layer(numpy.zeros((1, 5, 5, 3), "float32"))
    with pytest.raises(ValueError, match=r"built for 3 channels.*\(batch, rows, cols, 3\); got "
                                         r"shape \(1, 5, 5, 2\)"):
        layer.forward(numpy.zeros((1, 5, 5, 2), "float32"))
    with pytest.raises(ValueError, match="built for 3 channels"):
        layer(fastnn.Input((5, 5, 4)))


def _model(backend=None, seed=2):
    fastnn.set_seed(seed)
    model = fastnn.Sequential([
        fastnn.Input((6, 6, 2)),
        L.DepthwiseConv2D(3, padding="same", depth_multiplier=2, activation="relu"),
        L.SeparableConv2D(3, 3, strides=2, activation="elu"),
        L.GlobalAveragePooling2D(),
        L.Dense(2, activation="softmax")], backend=backend)
    model.compile(fastnn.optimizers.Adam(0.02), "sparse_categorical_crossentropy")
    return model


def test_depthwise_model_trains_on_strict_like_reference_and_saves(tmp_path, rng):
    x = rng.standard_normal((30, 6, 6, 2)).astype("float32")
    y = (x[..., 0].mean(axis=(1, 2)) > 0).astype(int)
    hist = _model("strict").fit(x, y, batch_size=10, epochs=4, verbose=0)
    ref = _model("reference")
    ref_hist = ref.fit(x, y, batch_size=10, epochs=4, verbose=0)
    numpy.testing.assert_allclose(hist.history["loss"], ref_hist.history["loss"], rtol=1e-5)
    assert hist.history["loss"][-1] < hist.history["loss"][0]
    fast = _model()
    fast_hist = fast.fit(x, y, batch_size=10, epochs=4, verbose=0)
    numpy.testing.assert_allclose(fast_hist.history["loss"], ref_hist.history["loss"], rtol=1e-4)
    fast.save(tmp_path / "dw.fastnn")
    loaded = fastnn.load_model(tmp_path / "dw.fastnn")
    numpy.testing.assert_array_equal(loaded.predict(x), fast.predict(x))
    lines = []
    fast.summary(print_fn=lines.append)
    assert "(None, 6, 6, 4)" in "\n".join(lines) and "40" in "\n".join(lines)
