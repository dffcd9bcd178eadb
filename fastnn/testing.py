"""Test helpers for layer and kernel authors. One harness for every layer (as Keras's run_layer_test and Chainer's
function_link): output shape, eager/symbolic agreement, a float64 gradient
check of inputs and weights, and a config round trip."""
import numpy

from fastnn.gradcheck import gradcheck
from fastnn.layers import Input


def run_layer_test(make_layer, input_shapes, expected_output_shape, rng, training=True,
                   n_weights=None, input_data=None, call_kwargs=None):
    """``make_layer(dtype)`` builds a fresh layer; ``input_shapes`` are per-batch
    shapes (a list for merge layers). ``expected_output_shape`` is a list of
    shapes for a layer with several outputs. ``input_data`` replaces the
    random inputs (integer indices for an Embedding); ``call_kwargs`` go to
    every call (``mask=``, ``initial_state=``), float64 arrays among them are
    gradient-checked like inputs."""
    multi = isinstance(input_shapes, list)
    shapes = input_shapes if multi else [input_shapes]
    if input_data is not None:
        xs = list(input_data) if multi else [input_data]
    else:
        xs = [rng.standard_normal(s) for s in shapes]
    several = isinstance(expected_output_shape, list)
    expected = expected_output_shape if several else [expected_output_shape]
    kwargs = dict(call_kwargs or {})

    def as32(a):
        return a.astype("float32") if a.dtype.kind == "f" else a

    def eager(layer):
        y = layer([as32(x) for x in xs] if multi else as32(xs[0]),
                  **{k: ([as32(v) for v in val] if isinstance(val, list) else
                         as32(val) if hasattr(val, "dtype") else val)
                     for k, val in kwargs.items()})
        return y if several else [y]

    # Symbolic call: output shape without the batch axis.
    layer = make_layer("float32")
    ins = [Input(s[1:], dtype="float32" if x.dtype.kind == "f" else x.dtype)
           for s, x in zip(shapes, xs)]
    out = layer(ins if multi else ins[0])
    outs = out if several else [out]
    assert [o.shape for o in outs] == [tuple(e[1:]) for e in expected], (outs, expected)
    if n_weights is not None:
        assert len(layer.weights) == n_weights

    # Eager call in float32 gives the declared shape and dtype.
    ys = eager(layer)
    assert [y.shape for y in ys] == [tuple(e) for e in expected]
    assert all(y.dtype == numpy.float32 for y in ys)

    # Gradients of inputs and weights, float64, central differences.
    layer64 = make_layer("float64")
    result = gradcheck(layer64, xs if multi else xs[0], training=training, call_kwargs=kwargs)
    assert result.ok

    # Config round trip rebuilds an equal layer; with equal weights, equal outputs.
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    clone._ensure_built([s[1:] for s in shapes] if multi else shapes[0][1:])
    clone.set_weights(layer.get_weights())
    for y, y2 in zip(ys, eager(clone)):
        numpy.testing.assert_array_equal(y, y2)
    return layer


# ----------------------------------------------------------- kernel helpers
DTYPES = [numpy.float32, numpy.float64]
LAYOUTS = ["C", "F", "strided"]


def make(rng, shape, dtype, layout="C", scale=1.0):
    """A random array of ``shape`` laid out C-contiguous, F-contiguous or strided."""
    if layout == "strided":
        big = rng.standard_normal(shape[:-1] + (shape[-1] * 2,)) * scale
        a = big.astype(dtype)[..., ::2]
        assert not a.flags.c_contiguous or a.size <= 1
        return a
    a = (rng.standard_normal(shape) * scale).astype(dtype)
    return numpy.asfortranarray(a) if layout == "F" else a


def assert_close(actual, expected, dtype=None, tol=None, floor=None):
    """Element-wise relative error: ``|actual - expected| <= tol * max(|expected|, floor)``
    for every element (tol: float32 2e-5, float64 1e-12).

    ``floor`` keeps elements near zero from demanding an impossible relative
    accuracy (a float32 sum that cancels); it defaults to 3% of the reference's
    largest magnitude (at least 0.03), so an element 30x smaller than the
    largest is held to an absolute bound, and every larger one to its own
    relative bound: a wrong small entry cannot hide behind a large one."""
    actual = numpy.asarray(actual)
    expected = numpy.asarray(expected)
    dtype = numpy.dtype(dtype or expected.dtype)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert actual.dtype == dtype, (actual.dtype, dtype)
    if tol is None:
        tol = 2e-5 if dtype == numpy.float32 else 1e-12
    if expected.size == 0:
        return
    e64 = expected.astype(numpy.float64)
    mag = numpy.abs(e64)
    if floor is None:
        floor = 0.03 * max(1.0, float(mag.max()))
    err = numpy.abs(actual.astype(numpy.float64) - e64)
    bound = tol * numpy.maximum(mag, floor)
    bad = ~(err <= bound)
    if bad.any():
        i = numpy.unravel_index(int(numpy.argmax(err / bound)), err.shape)
        raise AssertionError(
            f"{int(bad.sum())} of {err.size} elements differ by more than {tol:.1g} relative "
            f"(floor {floor:.3g}); worst at {tuple(int(k) for k in i)}: got "
            f"{actual[i]!r}, expected {expected[i]!r}")
