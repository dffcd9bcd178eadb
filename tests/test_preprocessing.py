import numpy
import pytest
from hypothesis import given, settings, strategies as st

from fastnn.preprocessing import (MinMaxScaler, StandardScaler, batch_iterator, one_hot,
                                  to_categorical, train_test_split)


def test_split_sizes_alignment_and_seed():
    x = numpy.arange(20).reshape(10, 2)
    y = numpy.arange(10)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.3, seed=1)
    assert len(x_tr) == 7 and len(x_te) == 3
    numpy.testing.assert_array_equal(x_tr[:, 0] // 2, y_tr)  # rows stay aligned
    numpy.testing.assert_array_equal(x_te[:, 0] // 2, y_te)
    assert sorted(numpy.concatenate([y_tr, y_te]).tolist()) == list(range(10))
    again = train_test_split(x, y, test_size=0.3, seed=1)
    numpy.testing.assert_array_equal(again[3], y_te)


def test_split_integer_size_and_no_shuffle():
    y = numpy.arange(10)
    tr, te = train_test_split(y, test_size=4, shuffle=False)
    assert tr.tolist() == [0, 1, 2, 3, 4, 5] and te.tolist() == [6, 7, 8, 9]


def test_split_fraction_rounds_up_like_sklearn():
    tr, te = train_test_split(numpy.arange(10), test_size=0.25, seed=0)
    assert len(te) == 3 and len(tr) == 7


@pytest.mark.parametrize("size", [0.0, 1.0, -0.1, 0, 10, 11, "half", True])
def test_split_bad_sizes(size):
    with pytest.raises(ValueError, match="test_size"):
        train_test_split(numpy.arange(10), test_size=size)


def test_split_length_mismatch():
    with pytest.raises(ValueError, match=r"different numbers of samples: \[10, 9\]"):
        train_test_split(numpy.zeros(10), numpy.zeros(9))
    with pytest.raises(ValueError, match="at least one array"):
        train_test_split()


def test_stratified_keeps_proportions():
    y = numpy.repeat([0, 1, 2], [60, 30, 10])
    x = numpy.arange(100)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, seed=3, stratify=y)
    assert numpy.bincount(y_te).tolist() == [12, 6, 2]
    assert numpy.bincount(y_tr).tolist() == [48, 24, 8]
    numpy.testing.assert_array_equal(y[x_te], y_te)


@settings(max_examples=40, deadline=None)
@given(counts=st.lists(st.integers(2, 30), min_size=2, max_size=6),
       frac=st.floats(0.1, 0.6), seed=st.integers(0, 1000))
def test_stratified_property(counts, frac, seed):
    y = numpy.repeat(numpy.arange(len(counts)), counts)
    n = len(y)
    n_test = int(numpy.ceil(frac * n))
    if n_test < len(counts) or n - n_test < len(counts):
        return
    y_tr, y_te = train_test_split(y, test_size=frac, seed=seed, stratify=y)
    assert len(y_te) == n_test
    got = numpy.bincount(y_te, minlength=len(counts))
    assert numpy.all(numpy.abs(got - numpy.array(counts) * n_test / n) < 1.0 + 1e-9)
    assert sorted(numpy.concatenate([y_tr, y_te]).tolist()) == sorted(y.tolist())


def test_stratified_errors():
    y = numpy.array([0, 0, 0, 1])
    with pytest.raises(ValueError, match="class 1 has only 1 sample"):
        train_test_split(y, stratify=y, test_size=0.5)
    with pytest.raises(ValueError, match="shuffle"):
        train_test_split(y, stratify=y, shuffle=False)


def test_stratify_one_hot_labels():
    y = to_categorical(numpy.repeat([0, 1], [8, 4]))
    _, y_te = train_test_split(y, test_size=0.25, seed=0, stratify=y)
    assert y_te.sum(axis=0).tolist() == [2.0, 1.0]


def test_standard_scaler():
    rng = numpy.random.default_rng(0)
    x = rng.normal(3.0, 2.0, size=(50, 3))
    x[:, 2] = 7.0  # constant feature
    s = StandardScaler().fit(x)
    z = s.transform(x)
    numpy.testing.assert_allclose(z[:, :2].mean(0), 0, atol=1e-12)
    numpy.testing.assert_allclose(z[:, :2].std(0), 1, atol=1e-12)
    numpy.testing.assert_array_equal(z[:, 2], 0.0)
    numpy.testing.assert_allclose(s.inverse_transform(z), x, atol=1e-12)
    numpy.testing.assert_allclose(s.mean_, x.mean(0))
    numpy.testing.assert_allclose(StandardScaler().fit_transform(x), z)


def test_scalers_fit_on_train_only():
    train = numpy.array([[0.0], [2.0]])
    test = numpy.array([[4.0]])
    assert StandardScaler().fit(train).transform(test)[0, 0] == pytest.approx(3.0)
    assert MinMaxScaler().fit(train).transform(test)[0, 0] == pytest.approx(2.0)


def test_minmax_scaler_range_and_constant():
    x = numpy.array([[1.0, 5.0], [3.0, 5.0], [2.0, 5.0]], dtype=numpy.float32)
    s = MinMaxScaler(feature_range=(-1, 1))
    z = s.fit_transform(x)
    assert z.dtype == numpy.float32
    numpy.testing.assert_allclose(z[:, 0], [-1, 1, 0])
    numpy.testing.assert_allclose(z[:, 1], [-1, -1, -1])
    numpy.testing.assert_allclose(s.inverse_transform(z), x, rtol=1e-6)
    with pytest.raises(ValueError, match="feature_range"):
        MinMaxScaler((1, 1))


@pytest.mark.parametrize("scaler", [StandardScaler, MinMaxScaler])
def test_scaler_errors(scaler):
    with pytest.raises(RuntimeError, match="fit"):
        scaler().transform(numpy.zeros((2, 2)))
    bad = numpy.array([[1.0, numpy.nan], [2.0, 3.0]])
    with pytest.raises(ValueError, match="NaN"):
        scaler().fit(bad)
    s = scaler().fit(numpy.ones((3, 2)))
    with pytest.raises(ValueError, match="NaN"):
        s.transform(bad)
    with pytest.raises(ValueError, match="3 features"):
        s.transform(numpy.ones((2, 3)))
    with pytest.raises(ValueError, match="2-D"):
        scaler().fit(numpy.ones(3))


def test_integer_input_scaled_to_float():
    z = StandardScaler().fit_transform(numpy.array([[1], [3]]))
    assert z.dtype == numpy.float64 and z.ravel().tolist() == [-1.0, 1.0]


def test_to_categorical():
    out = to_categorical([0, 2, 1])
    assert out.dtype == numpy.float32
    numpy.testing.assert_array_equal(out, numpy.eye(3)[[0, 2, 1]])
    assert to_categorical(numpy.array([[1], [0]]), num_classes=4).shape == (2, 4)
    assert to_categorical(numpy.array([[1, 0], [0, 1]])).shape == (2, 2, 2)
    assert one_hot is to_categorical
    with pytest.raises(ValueError, match="num_classes"):
        to_categorical([3], num_classes=3)
    with pytest.raises(ValueError, match=">= 0"):
        to_categorical([-1, 0])
    with pytest.raises(ValueError, match="integer"):
        to_categorical([0.5])
    assert to_categorical(numpy.array([1.0, 0.0])).tolist() == [[0, 1], [1, 0]]


def test_batch_iterator_aligned_keeps_last_partial():
    x = numpy.arange(10)
    y = numpy.arange(10) * 10
    batches = list(batch_iterator(x, y, batch_size=4))
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    for bx, by in batches:
        numpy.testing.assert_array_equal(bx * 10, by)
    shuffled = list(batch_iterator(x, y, batch_size=3, shuffle=True, seed=0))
    got = numpy.concatenate([b[0] for b in shuffled])
    assert sorted(got.tolist()) == list(range(10)) and got.tolist() != list(range(10))
    for bx, by in shuffled:
        numpy.testing.assert_array_equal(bx * 10, by)
    again = numpy.concatenate([b[0] for b in batch_iterator(x, y, batch_size=3, shuffle=True,
                                                            seed=0)])
    numpy.testing.assert_array_equal(got, again)
    single = list(batch_iterator(x, batch_size=5))
    assert isinstance(single[0], numpy.ndarray) and len(single) == 2


def test_batch_iterator_errors_are_immediate():
    with pytest.raises(ValueError, match="batch_size"):
        batch_iterator(numpy.arange(3), batch_size=0)
    with pytest.raises(ValueError, match="different numbers"):
        batch_iterator(numpy.arange(3), numpy.arange(4), batch_size=2)
