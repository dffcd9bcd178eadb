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
