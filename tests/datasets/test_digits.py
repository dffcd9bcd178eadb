import os

import numpy

from fastnn.datasets import load_digits
from fastnn.datasets.digits import _DATA_FILE


def test_shapes_dtypes_range():
    x, y = load_digits()
    assert x.shape == (1797, 64) and x.dtype == numpy.float32
    assert y.shape == (1797,) and y.dtype == numpy.int64
    assert x.min() == 0.0 and x.max() == 1.0
    # pixel counts 0..16 divided by 16: every value is a multiple of 1/16
    numpy.testing.assert_array_equal(x * 16, numpy.round(x * 16))


def test_label_distribution():
    _, y = load_digits()
    counts = numpy.bincount(y)
    assert len(counts) == 10
    assert counts.tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]


def test_first_sample_is_a_zero():
    x, y = load_digits(images=True)
    assert x.shape == (1797, 8, 8) and y[0] == 0
    assert (x[0] * 16).astype(int)[0].tolist() == [0, 0, 5, 13, 9, 1, 0, 0]


def test_deterministic():
    x1, y1 = load_digits()
    x2, y2 = load_digits()
    numpy.testing.assert_array_equal(x1, x2)
    numpy.testing.assert_array_equal(y1, y2)


def test_split_is_stratified_and_seeded():
    (x_train, y_train), (x_test, y_test) = load_digits(return_split=True)
    assert len(x_train) + len(x_test) == 1797 and len(x_test) == 450
    assert numpy.abs(numpy.bincount(y_test) - 45).max() <= 2
    (x_train2, _), _ = load_digits(return_split=True)
    numpy.testing.assert_array_equal(x_train, x_train2)


def test_data_file_small_and_licensed():
    assert os.path.getsize(_DATA_FILE) < 3 * 2**20
    licence = os.path.join(os.path.dirname(_DATA_FILE), "LICENSE-digits.txt")
    text = open(licence, encoding="utf-8").read()
    assert "CC BY 4.0" in text and "Alpaydin" in text
