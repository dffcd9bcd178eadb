"""Training on data larger than memory (issue #19): ``fit``, ``evaluate`` and
``predict`` on ``numpy.load(path, mmap_mode="r")`` arrays (read-only, memory-mapped)
give exactly what the in-memory arrays give, and ``fit`` streams from the file
instead of copying it (or building a temporary the size of it) first."""
import tracemalloc

import numpy
import pytest

import fastnn
from fastnn import layers, threads


@pytest.fixture(autouse=True)
def fixed_threads():
    """A fixed thread count, so two runs compared bit for bit take the same GEMM slices
    (the load-adaptive policy could pick another count between them)."""
    cap, adapt = threads.get_num_threads(), threads._state.adapt
    threads.set_num_threads(2, adapt=False)
    yield
    threads.set_num_threads(cap, adapt=bool(adapt))


def _data(tmp_path, n, features, classes=3):
    rng = numpy.random.default_rng(7)
    x = rng.standard_normal((n, features)).astype(numpy.float32)
    y = numpy.eye(classes, dtype=numpy.float32)[rng.integers(0, classes, n)]
    numpy.save(tmp_path / "x.npy", x)
    numpy.save(tmp_path / "y.npy", y)
    xm = numpy.load(tmp_path / "x.npy", mmap_mode="r")
    ym = numpy.load(tmp_path / "y.npy", mmap_mode="r")
    assert isinstance(xm, numpy.memmap) and not xm.flags.writeable
    return x, y, xm, ym


def _model(features, classes=3, optimizer="adam"):
    fastnn.random.set_seed(3)
    model = fastnn.Sequential([
        layers.Dense(32, activation="relu", input_shape=(features,)),
        layers.Dense(16, activation="tanh"),
        layers.Dense(classes, activation="softmax"),
    ])
    model.compile(optimizer=optimizer, loss="categorical_crossentropy", metrics=["accuracy"])
    return model


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("optimizer", ["adam", "sgd", "rmsprop"])
def test_fit_on_memmap_equals_fit_in_memory(tmp_path, shuffle, optimizer):
    x, y, xm, ym = _data(tmp_path, 3000, 50)  # 600 KB of x
    results = []
    for xs, ys in ((x, y), (xm, ym)):
        model = _model(50, optimizer=optimizer)
        hist = model.fit(xs, ys, epochs=2, batch_size=128, shuffle=shuffle, verbose=0,
                         validation_data=(xs[:500], ys[:500]))
        results.append((hist.history, model.get_weights(), model.predict(xs, batch_size=256),
                        model.evaluate(xs, ys, batch_size=256, verbose=0)))
    (h1, w1, p1, e1), (h2, w2, p2, e2) = results
    assert h1 == h2
    assert len(w1) == len(w2) == 6
    for a, b in zip(w1, w2):
        numpy.testing.assert_array_equal(a, b)
    numpy.testing.assert_array_equal(p1, p2)
    assert e1 == e2
    assert not numpy.array_equal(w1[0], _model(50).get_weights()[0])  # it trained
    assert not xm.flags.writeable  # nothing made the caller's array writeable


def test_memmap_with_nan_is_refused_with_its_count(tmp_path):
    x, y, _, _ = _data(tmp_path, 5000, 300)  # more than one finiteness chunk
    x[0, 0] = numpy.nan
    x[-1, -1] = numpy.inf
    x[2500, 7] = numpy.nan
    numpy.save(tmp_path / "bad.npy", x)
    xm = numpy.load(tmp_path / "bad.npy", mmap_mode="r")
    with pytest.raises(ValueError, match="contains 3 NaN or infinite"):
        _model(300).fit(xm, y, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="contains 3 NaN or infinite"):
        _model(300).predict(xm)


def test_fit_on_memmap_does_not_copy_it(tmp_path):
    # 16 MB of x: a copy of it, or a whole-array temporary such as isfinite(x)
    # (4 MB of bools), would show in the peak; batches, weights and the chunked
    # check stay well under the bound.
    x, y, xm, ym = _data(tmp_path, 100_000, 40)
    del x, y
    size = xm.nbytes
    model = _model(40)
    model.predict(xm[:10])  # build and warm up outside the measurement
    for call in (lambda: model.fit(xm, ym, epochs=1, batch_size=1024, shuffle=False, verbose=0),
                 lambda: model.evaluate(xm, ym, batch_size=1024, verbose=0)):
        tracemalloc.start()
        try:
            call()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < size / 8, f"peak {peak / 1e6:.1f} MB while the data is {size / 1e6:.0f} MB"
