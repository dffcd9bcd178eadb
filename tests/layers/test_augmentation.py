"""RandomFlip: per image, either the image or its mirror (checked against
numpy.flip), both kinds seen, the identity at inference, the gradient flipped
back, config round trip and bad input."""
import numpy
import pytest

import fastnn
from fastnn import layers as L


def _run(layer, x, training=True):
    y, back = layer.forward(layer.ops.asarray(x), training=training)
    return numpy.asarray(y), back


@pytest.mark.parametrize("mode,axes", [("horizontal", (2,)), ("vertical", (1,)),
                                       ("horizontal_and_vertical", (1, 2))])
def test_each_image_is_itself_or_its_flip(mode, axes):
    fastnn.set_seed(3)
    rng = numpy.random.default_rng(0)
    x = rng.standard_normal((64, 5, 4, 2)).astype("float32")
    layer = L.RandomFlip(mode)
    layer._ensure_built(x.shape[1:])
    y, back = _run(layer, x)
    seen = set()
    for i in range(len(x)):
        candidates = {}
        for pattern in range(2 ** len(axes)):
            flipped = x[i]
            for bit, axis in enumerate(axes):
                if pattern >> bit & 1:
                    flipped = numpy.flip(flipped, axis=axis - 1)
            candidates[pattern] = flipped
        match = [p for p, c in candidates.items() if numpy.array_equal(c, y[i])]
        assert match, f"image {i} is neither itself nor a flip of itself"
        seen.add(match[0])
    assert seen == set(range(2 ** len(axes)))  # every combination drawn in 64 images
    # The gradient goes back through the same flips: backprop(y) is x.
    numpy.testing.assert_array_equal(numpy.asarray(back(layer.ops.asarray(y))), x)


def test_identity_at_inference_and_channels_first():
    x = numpy.random.default_rng(1).standard_normal((8, 3, 5, 6)).astype("float32")
    layer = L.RandomFlip("horizontal")
    layer._ensure_built(x.shape[1:])
    y, _ = _run(layer, x, training=False)
    numpy.testing.assert_array_equal(y, x)
    fastnn.set_seed(0)
    cf = L.RandomFlip("horizontal", data_format="channels_first")
    cf._ensure_built(x.shape[1:])
    y, _ = _run(cf, x)
    for i in range(len(x)):  # width is the last axis in channels_first
        assert numpy.array_equal(y[i], x[i]) or numpy.array_equal(y[i], x[i][:, :, ::-1])


def test_config_round_trip_and_bad_input():
    layer = L.RandomFlip("vertical", name="flip")
    again = L.layer_class("RandomFlip").from_config(layer.get_config())
    assert again.mode == "vertical" and again.name == "flip"
    with pytest.raises(ValueError, match="mode must be one of"):
        L.RandomFlip("diagonal")
    with pytest.raises(ValueError, match=r"expects images of shape .*got \(None, 5, 4\)"):
        fastnn.Sequential([L.Input((5, 4)), L.RandomFlip()])


def test_trains_in_a_model_and_repeats_under_a_seed():
    rng = numpy.random.default_rng(2)
    x = rng.random((32, 6, 6, 1)).astype("float32")
    y = rng.integers(0, 2, 32)
    weights = []
    for _ in range(2):
        fastnn.set_seed(7)
        model = fastnn.Sequential([L.Input((6, 6, 1)), L.RandomFlip("horizontal"),
                                   L.Flatten(), L.Dense(2, activation="softmax")])
        model.compile("adam", "sparse_categorical_crossentropy")
        model.fit(x, y, epochs=2, batch_size=8, verbose=0)
        weights.append(model.get_weights())
    for a, b in zip(*weights):
        numpy.testing.assert_array_equal(a, b)
