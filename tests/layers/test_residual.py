"""ResidualBlock: equal to the same block written with the functional API and
``Add`` for the same weights (inference, training outputs, and training
steps), gradient-checked in float64 in both modes, saved and loaded, frozen,
counted in summary, trained on the strict backend, and refusing bad input."""
import io

import numpy
import pytest

import fastnn
from fastnn import layers as L
from fastnn.gradcheck import gradcheck

CASES = [dict(filters=4), dict(filters=6, strides=2), dict(filters=5, batchnorm=False),
         dict(filters=4, separable=True), dict(filters=6, strides=2, separable=True),
         dict(filters=3, data_format="channels_first", activation="tanh")]


def _functional(block, input_shape):
    """The block's graph with the functional API and Add, on fresh layers
    holding copies of the block's weights, in the block's part order."""
    cf = block.data_format == "channels_first"
    conv = L.SeparableConv2D if block.separable else L.Conv2D
    dt = block.dtype.name
    kw = dict(padding="same", data_format=block.data_format, use_bias=not block.batchnorm,
              dtype=dt)

    def bn():
        return L.BatchNormalization(axis=1 if cf else -1, momentum=block.momentum,
                                    epsilon=block.epsilon, dtype=dt)
    inp = fastnn.Input(input_shape, dtype=dt)
    parts = [conv(block.filters, block.kernel_size, strides=block.strides, **kw)]
    h = parts[-1](inp)
    if block.batchnorm:
        parts.append(bn())
        h = parts[-1](h)
    parts.append(L.Activation(block.activation, dtype=dt))
    h = parts[-1](h)
    parts.append(conv(block.filters, block.kernel_size, **kw))
    h = parts[-1](h)
    if block.batchnorm:
        parts.append(bn())
        h = parts[-1](h)
    s = inp
    if block.shortcut_conv is not None:
        parts.append(L.Conv2D(block.filters, 1, strides=block.strides, **kw))
        s = parts[-1](s)
        if block.batchnorm:
            parts.append(bn())
            s = parts[-1](s)
    out = L.Activation(block.activation, dtype=dt)(L.Add(dtype=dt)([h, s]))
    model = fastnn.Model(inp, out)
    subs = [p for p in block._flatten_layers(include_self=False) if p.params]
    own = [p for p in parts if p.params]
    assert [type(p) for p in subs] == [type(p) for p in own]
    for mine, theirs in zip(subs, own):
        theirs.set_weights(mine.get_weights())
    return model


def _input_shape(case):
    return (4, 7, 5) if case.get("data_format") == "channels_first" else (7, 5, 4)


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_equals_functional_block_with_same_weights(case, rng):
    shape = _input_shape(case)
    fastnn.set_seed(3)
    block = L.ResidualBlock(**case)
    inp = fastnn.Input(shape)
    composite = fastnn.Model(inp, block(inp))
    # moving statistics away from their initial values first
    x = (rng.standard_normal((6,) + shape) + 0.5).astype("float32")
    composite(x, training=True)
    functional = _functional(block, shape)
    numpy.testing.assert_array_equal(composite.predict(x), functional.predict(x))
    numpy.testing.assert_array_equal(composite(x, training=True), functional(x, training=True))
    y = rng.standard_normal(composite.predict(x).shape)
    for model in (composite, functional):
        model.compile(fastnn.optimizers.SGD(0.05, momentum=0.9), "mse")
        for _ in range(2):
            model.train_on_batch(x, y.astype("float32"))
    numpy.testing.assert_allclose(composite.predict(x), functional.predict(x), rtol=1e-5,
                                  atol=1e-6)
    subs = [p for p in block._flatten_layers(include_self=False) if p.params]
    flat = [w for p in subs for w in p.get_weights()]
    assert len(flat) == len(functional.get_weights())


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_gradcheck_float64(case, training, rng):
    block = L.ResidualBlock(dtype="float64", **case)
    shape = _input_shape(case)
    x = rng.standard_normal((3,) + shape)
    block._ensure_built(shape)
    block.forward(x * 2 + 1, True)   # moving statistics away from 0 / 1
    assert gradcheck(block, x, training=training, rtol=1e-4).ok


def test_shortcut_only_where_the_shape_changes():
    for kw, has in ((dict(filters=4), False), (dict(filters=5), True),
                    (dict(filters=4, strides=2), True)):
        block = L.ResidualBlock(**kw)
        block(fastnn.Input((8, 8, 4)))
        assert (block.shortcut_conv is not None) == has
        assert (block.shortcut_bn is not None) == has


def test_save_load_and_summary(tmp_path, rng):
    fastnn.set_seed(4)
    model = fastnn.Sequential([
        fastnn.Input((8, 8, 3)), L.ResidualBlock(8, strides=2, separable=True, name="res1"),
        L.ResidualBlock(8, name="res2", kernel_regularizer="l2"), L.GlobalAveragePooling2D(),
        L.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    x = rng.standard_normal((16, 8, 8, 3)).astype("float32")
    y = rng.integers(0, 3, 16)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    out = io.StringIO()
    model.summary(print_fn=out.write)
    text = out.getvalue()
    res1, res2 = model.layers[0], model.layers[1]
    # moving statistics: 2 per channel in each BN (res1 has three, res2 two)
    non_trainable = 2 * 8 * 5
    assert f"Non-trainable params: {non_trainable:,}" in text
    assert f"Total params: {model.count_params():,}" in text
    assert "res1 (ResidualBlock)" in text
    path = tmp_path / "res.fastnn"
    model.save(path)
    loaded = fastnn.load_model(path)
    assert loaded.layers[0].get_config() == res1.get_config()
    assert loaded.layers[1].get_config() == res2.get_config()
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        numpy.testing.assert_array_equal(a, b)
    numpy.testing.assert_array_equal(model.predict(x), loaded.predict(x))
    model.fit(x, y, epochs=1, batch_size=8, verbose=0, shuffle=False)
    loaded.fit(x, y, epochs=1, batch_size=8, verbose=0, shuffle=False)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        numpy.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_frozen_block_runs_in_inference_mode(rng):
    block = L.ResidualBlock(4)
    x = rng.standard_normal((5, 6, 6, 4)).astype("float32")
    block(x, training=True)
    block.trainable = False
    assert block.trainable_weights == []
    before = block.get_weights()
    y, backprop = block.forward(x, training=True)
    numpy.testing.assert_array_equal(y, block(x))   # the inference output
    backprop(numpy.ones_like(y))
    for a, b in zip(before, block.get_weights()):
        numpy.testing.assert_array_equal(a, b)
    # frozen at construction too (Keras): the parts are frozen with it
    frozen = L.ResidualBlock(4, trainable=False)
    assert not frozen.bn1.trainable and not frozen.conv1.trainable


def test_trains_on_strict_backend_like_reference(rng):
    x = rng.standard_normal((8, 6, 6, 2)).astype("float32")
    y = rng.standard_normal((8, 4)).astype("float32")
    weights = []
    for backend in ("strict", "reference"):
        fastnn.set_seed(6)
        model = fastnn.Sequential([fastnn.Input((6, 6, 2)), L.ResidualBlock(3, strides=2),
                                   L.ResidualBlock(3, separable=True), L.Flatten(), L.Dense(4)],
                                  backend=backend)
        model.compile(fastnn.optimizers.Adam(0.01), "mse")
        model.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0)
        model.predict(x)
        weights.append(model.get_weights())
    for a, b in zip(*weights):
        numpy.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_bad_input_and_arguments():
    with pytest.raises(ValueError, match=r"ResidualBlock layer 'rb'.*\(None, 8, 3\)"):
        L.ResidualBlock(4, name="rb")(fastnn.Input((8, 3)))
    block = L.ResidualBlock(4, name="rb2")
    block(fastnn.Input((8, 8, 4)))
    with pytest.raises(ValueError, match=r"rb2.*\(None, 8, 8, 5\)"):
        block(fastnn.Input((8, 8, 5)))
    with pytest.raises(ValueError, match=r"rb2.*\(2, 8, 4\)"):
        block.forward(numpy.zeros((2, 8, 4), "float32"))
    with pytest.raises(ValueError, match="filters"):
        L.ResidualBlock(0)
    with pytest.raises(ValueError, match="strides"):
        L.ResidualBlock(4, strides=0)
    with pytest.raises(ValueError, match="data_format"):
        L.ResidualBlock(4, data_format="nhwc")
