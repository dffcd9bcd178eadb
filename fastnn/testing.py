"""Test helpers for layer authors. One harness for every layer (as Keras's run_layer_test and Chainer's
function_link): output shape, eager/symbolic agreement, a float64 gradient
check of inputs and weights, and a config round trip."""
import numpy

from fastnn.gradcheck import gradcheck
from fastnn.layers import Input


def run_layer_test(make_layer, input_shapes, expected_output_shape, rng, training=True,
                   n_weights=None):
    """``make_layer(dtype)`` builds a fresh layer; ``input_shapes`` are per-batch
    shapes (a list for merge layers)."""
    multi = isinstance(input_shapes, list)
    shapes = input_shapes if multi else [input_shapes]
    xs = [rng.standard_normal(s) for s in shapes]

    # Symbolic call: output shape without the batch axis.
    layer = make_layer("float32")
    ins = [Input(s[1:]) for s in shapes]
    out = layer(ins if multi else ins[0])
    assert out.shape == tuple(expected_output_shape[1:]), (out.shape, expected_output_shape)
    if n_weights is not None:
        assert len(layer.weights) == n_weights

    # Eager call in float32 gives the declared shape and dtype.
    y = layer([x.astype("float32") for x in xs] if multi else xs[0].astype("float32"))
    assert y.shape == tuple(expected_output_shape)
    assert y.dtype == numpy.float32

    # Gradients of inputs and weights, float64, central differences.
    layer64 = make_layer("float64")
    result = gradcheck(layer64, xs if multi else xs[0], training=training)
    assert result.ok

    # Config round trip rebuilds an equal layer; with equal weights, equal outputs.
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    clone._ensure_built([s[1:] for s in shapes] if multi else shapes[0][1:])
    clone.set_weights(layer.get_weights())
    y2 = clone([x.astype("float32") for x in xs] if multi else xs[0].astype("float32"))
    numpy.testing.assert_array_equal(y, y2)
    return layer
