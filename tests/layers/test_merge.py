import numpy
import pytest

from fastnn import layers as L

from fastnn.testing import run_layer_test


def test_add(rng):
    run_layer_test(lambda dt: L.Add(dtype=dt), [(4, 5), (4, 5), (4, 5)], (4, 5), rng)


def test_concatenate(rng):
    run_layer_test(lambda dt: L.Concatenate(dtype=dt), [(4, 2), (4, 3)], (4, 5), rng)
    run_layer_test(lambda dt: L.Concatenate(axis=1, dtype=dt), [(2, 1, 3), (2, 4, 3)],
                   (2, 5, 3), rng)


def test_merge_shape_errors(rng):
    with pytest.raises(ValueError, match="one shape"):
        L.Add()([L.Input((3,)), L.Input((4,))])
    with pytest.raises(ValueError, match="differ outside axis"):
        L.Concatenate(axis=1)([L.Input((3, 2)), L.Input((3, 4))])
    with pytest.raises(ValueError, match="batch axis"):
        L.Concatenate(axis=0)


def test_add_values(rng):
    a, b = rng.standard_normal((2, 3, 4)).astype("float32")
    numpy.testing.assert_array_equal(L.Add()([a, b]), a + b)
