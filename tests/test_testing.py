"""fastnn.testing's own checks: assert_close must catch wrong entries of any size."""
import numpy
import pytest

from fastnn.testing import assert_close


def _softmax(z):
    e = numpy.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_small_entries_cannot_hide_behind_a_large_one(rng):
    # A softmax with one dominant class: most entries are small. Making 62% of
    # them 50% wrong passed the old max-error-times-max-magnitude bound.
    z = rng.standard_normal((64, 10))
    z[:, 0] += 12  # the other entries are about 1e-6 to 1e-4
    p = _softmax(z).astype(numpy.float32)
    wrong = p.copy()
    hit = rng.random(p.shape) < 0.62
    hit[:, 0] = False
    wrong[hit] *= 1.5
    with pytest.raises(AssertionError, match="elements differ"):
        assert_close(wrong, p)


@pytest.mark.parametrize("dtype,rel", [(numpy.float32, 1e-4), (numpy.float64, 1e-10)])
def test_one_element_off_by_a_relative_error_is_caught(rng, dtype, rel):
    e = rng.standard_normal((7, 5)).astype(dtype)
    a = e.copy()
    i = numpy.unravel_index(numpy.argmax(numpy.abs(e)), e.shape)
    a[i] *= 1 + rel
    with pytest.raises(AssertionError):
        assert_close(a, e)


def test_rounding_level_differences_pass(rng):
    e = rng.standard_normal((50, 40))
    assert_close((e * (1 + 1e-6)).astype(numpy.float32), e.astype(numpy.float32))
    assert_close(e * (1 + 1e-14), e)
    tiny = numpy.full(3, 1e-9, numpy.float32)  # near zero: held to the absolute floor
    assert_close(tiny * 2, tiny)


def test_shape_and_dtype_must_match():
    with pytest.raises(AssertionError):
        assert_close(numpy.zeros(3, numpy.float32), numpy.zeros(4, numpy.float32))
    with pytest.raises(AssertionError):
        assert_close(numpy.zeros(3, numpy.float64), numpy.zeros(3, numpy.float32))


# Pinned by the mutation check (tools/mutation_check.py): each test below fails
# under a one-line change of assert_close that the tests above let through.
def test_the_floor_is_three_percent_of_the_largest_magnitude():
    # tol 1: an element at 0 is held to 0.03 * max(1, max|expected|).
    e = numpy.array([0.0, 10.0])
    assert_close(numpy.array([0.29, 10.0]), e, tol=1.0)      # under the floor 0.3
    with pytest.raises(AssertionError):
        assert_close(numpy.array([0.31, 10.0]), e, tol=1.0)  # over it
    small = numpy.array([0.0, 0.5])                           # max < 1: the floor is 0.03
    with pytest.raises(AssertionError):
        assert_close(numpy.array([0.045, 0.5]), small, tol=1.0)


def test_exact_equality_passes_a_zero_tolerance():
    e = numpy.array([0.0, 1.5, -2.0])
    assert_close(e.copy(), e, tol=0.0, floor=0.0)


def test_a_single_element_is_checked():
    with pytest.raises(AssertionError):
        assert_close(numpy.array([1.1]), numpy.array([1.0]))


def test_the_message_names_the_worst_element():
    e = numpy.ones((3, 4))
    a = e.copy()
    a[0, 1] += 1e-6
    a[2, 3] += 1e-3
    with pytest.raises(AssertionError, match=r"worst at \(2, 3\)"):
        assert_close(a, e)


# Pinned by the mutation check: run_layer_test's merge-layer (list of shapes)
# and integer-input paths were never taken by the tests it scores.
def test_run_layer_test_takes_merge_layers_and_integer_inputs(rng):
    from fastnn import layers as L
    from fastnn.testing import run_layer_test
    layer = run_layer_test(lambda dt: L.Concatenate(dtype=dt), [(2, 3), (2, 4)], (2, 7), rng)
    assert isinstance(layer, L.Concatenate)
    ids = rng.integers(0, 5, (3, 4))
    layer = run_layer_test(lambda dt: L.Embedding(5, 2, dtype=dt), (3, 4), (3, 4, 2), rng,
                           input_data=ids, n_weights=1)
    assert layer.built
    # A wrong declared shape or weight count is caught, for merge layers too.
    with pytest.raises(AssertionError):
        run_layer_test(lambda dt: L.Concatenate(dtype=dt), [(2, 3), (2, 4)], (2, 6), rng)
    with pytest.raises(AssertionError):
        run_layer_test(lambda dt: L.Embedding(5, 2, dtype=dt), (3, 4), (3, 4, 2), rng,
                       input_data=ids, n_weights=2)


# Pinned by the mutation check, second round: run_layer_test's training flag,
# call arguments and input kinds, and make's layouts.
from fastnn import layers as L  # noqa: E402
from fastnn.testing import DTYPES, make, run_layer_test  # noqa: E402


class _RightIn(L.Dense):
    """Dense whose backprop is right only in one mode: in the other the output
    is tripled but backprop does not know it."""
    right_in_training = True

    def forward(self, x, training=False, **kw):
        y, backprop = super().forward(x, training, **kw)
        return (y if training == self.right_in_training else 3 * y), backprop


class _RightInInference(_RightIn):
    right_in_training = False


def test_run_layer_test_checks_gradients_in_the_mode_it_is_given(rng):
    run_layer_test(lambda dt: _RightIn(3, dtype=dt), (4, 2), (4, 3), rng)  # default: training
    run_layer_test(lambda dt: _RightInInference(3, dtype=dt), (4, 2), (4, 3), rng,
                   training=False)
    with pytest.raises(AssertionError):
        run_layer_test(lambda dt: _RightIn(3, dtype=dt), (4, 2), (4, 3), rng, training=False)
    with pytest.raises(AssertionError):
        run_layer_test(lambda dt: _RightInInference(3, dtype=dt), (4, 2), (4, 3), rng)


class _CallArgs(L.Dense):
    """``y = scale * dense(x) + sum(shifts) + offset``: every call needs all three
    call arguments (float32 arrays in a float32 layer); records what it got."""

    seen = []

    def forward(self, x, training=False, shifts=None, offset=None, scale=None):
        if shifts is None or offset is None or scale is None:
            raise ValueError("_CallArgs needs shifts=, offset= and scale=")
        _CallArgs.seen.append((self.dtype, [s.dtype for s in shifts], offset.dtype, scale))
        y, backprop = super().forward(x, training)

        def back(dy):
            return backprop(dy * scale), {"shifts": [dy for _ in shifts], "offset": dy}
        return scale * y + sum(shifts) + offset, back


def test_run_layer_test_passes_call_arguments_to_every_call_in_the_layer_dtype(rng):
    kw = {"shifts": [rng.standard_normal((4, 3))], "offset": rng.standard_normal((4, 3)),
          "scale": 2.0}
    _CallArgs.seen = []
    run_layer_test(lambda dt: _CallArgs(3, dtype=dt), (4, 2), (4, 3), rng, call_kwargs=kw)
    f32 = numpy.dtype("float32")
    eager = [s for s in _CallArgs.seen if s[0] == f32]
    assert len(eager) == 2  # the layer and its config clone
    assert all(s == (f32, [f32], f32, 2.0) for s in eager)
    assert any(s[0] == numpy.dtype("float64") for s in _CallArgs.seen)  # the gradient check


class _IndexDtypes(L.Embedding):
    seen = []

    def forward(self, x, training=False, **kw):
        _IndexDtypes.seen.append(x.dtype.kind)
        return super().forward(x, training, **kw)


def test_run_layer_test_hands_integer_inputs_over_unchanged(rng):
    _IndexDtypes.seen = []
    run_layer_test(lambda dt: _IndexDtypes(5, 2, dtype=dt), (3, 4), (3, 4, 2), rng,
                   input_data=rng.integers(0, 5, (3, 4)))
    assert _IndexDtypes.seen and set(_IndexDtypes.seen) == {"i"}


def test_run_layer_test_takes_given_inputs_for_merge_layers(rng):
    # input_data for a merge layer: one array per input, used as given.
    a, b = numpy.zeros((2, 3)), numpy.ones((2, 4))
    seen = []

    class Spy(L.Concatenate):
        def forward(self, xs, training=False, **kw):
            seen.append([numpy.asarray(x).copy() for x in xs])
            return super().forward(xs, training, **kw)
    run_layer_test(lambda dt: Spy(dtype=dt), [(2, 3), (2, 4)], (2, 7), rng, input_data=[a, b])
    eager = [xs for xs in seen if xs[0].dtype == numpy.float32]  # not the gradient check's
    assert len(eager) == 2 and all(len(xs) == 2 and (xs[0] == 0).all() and (xs[1] == 1).all()
                                   for xs in eager)


@pytest.mark.parametrize("dtype", DTYPES)
def test_make_draws_scaled_normals_in_the_layout_asked_for(dtype):
    shape = (3, 4, 5)
    ref = numpy.random.default_rng(1).standard_normal(shape) * 3
    c = make(numpy.random.default_rng(1), shape, dtype, scale=3)
    f = make(numpy.random.default_rng(1), shape, dtype, "F", scale=3)
    assert c.dtype == f.dtype == dtype and c.shape == f.shape == shape
    assert c.flags.c_contiguous and not c.flags.f_contiguous
    assert f.flags.f_contiguous and not f.flags.c_contiguous
    numpy.testing.assert_array_equal(c, ref.astype(dtype))
    numpy.testing.assert_array_equal(f, ref.astype(dtype))
    # Strided: every other element of a row twice as long.
    big = numpy.random.default_rng(1).standard_normal((3, 4, 10)) * 3
    s = make(numpy.random.default_rng(1), shape, dtype, "strided", scale=3)
    assert s.dtype == dtype and s.shape == shape
    assert not s.flags.c_contiguous and not s.flags.f_contiguous
    assert s.strides[-1] == 2 * numpy.dtype(dtype).itemsize
    numpy.testing.assert_array_equal(s, big.astype(dtype)[..., ::2])
    assert make(numpy.random.default_rng(1), (1,), dtype, "strided").shape == (1,)


def test_make_defaults_to_c_order_and_unit_scale():
    a = make(numpy.random.default_rng(2), (4, 3), numpy.float64)
    assert a.flags.c_contiguous
    numpy.testing.assert_array_equal(a, numpy.random.default_rng(2).standard_normal((4, 3)))


def test_the_worst_element_is_the_worst_relative_to_its_bound():
    # Index 0 is off by more in absolute terms, index 1 by more relative to its
    # own magnitude: the message points at index 1.
    e = numpy.array([100.0, 10.0])
    a = numpy.array([100.0 + 1e-8, 10.0 + 5e-9])
    with pytest.raises(AssertionError, match=r"worst at \(1,\)"):
        assert_close(a, e)
