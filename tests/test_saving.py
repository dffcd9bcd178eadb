import os
import zipfile

import numpy
import pytest

import fastnn
from fastnn import layers as L
from fastnn.saving import ModelFileError


def _data(rng, n=96):
    x = rng.standard_normal((n, 6)).astype("float32")
    return x, (x[:, 0] + x[:, 1] > 0).astype("int64") + (x[:, 2] > 1)


def _functional():
    inp = fastnn.Input((6,))
    shared = L.Dense(6, activation="elu", kernel_regularizer=fastnn.regularizers.L2(1e-3))
    h = shared(inp)
    h = L.Add()([h, shared(h)])
    h = L.Concatenate()([h, L.Dense(3, activation=("leaky_relu", 0.1))(inp)])
    out = L.Dense(3, activation="softmax")(L.Dropout(0.1)(h))
    return fastnn.Model(inp, out, name="graph")


def _sequential():
    return fastnn.Sequential([fastnn.Input((6,)), L.Dense(8, activation="tanh"),
                              L.GaussianNoise(0.1), L.Maxout(4), L.Dense(3, activation="softmax")])


@pytest.mark.parametrize("make", [_functional, _sequential])
def test_round_trip_predictions_bit_identical(make, rng, tmp_path):
    x, y = _data(rng)
    model = make()
    opt = fastnn.optimizers.Adam(learning_rate=fastnn.optimizers.ExponentialDecay(0.01, 10, 0.9))
    model.compile(opt, "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    path = tmp_path / "model.fastnn"
    model.save(path)
    loaded = fastnn.load_model(path)
    assert type(loaded) is type(model) and loaded.name == model.name
    numpy.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.evaluate(x, y, return_dict=True) == model.evaluate(x, y, return_dict=True)
    assert [l.name for l in loaded.layers] == [l.name for l in model.layers]


def test_resume_training_equals_uninterrupted(rng, tmp_path):
    x, y = _data(rng)

    def fresh():
        fastnn.set_seed(11)
        model = _functional()
        model.compile("adam", "sparse_categorical_crossentropy")
        return model

    straight = fresh()
    fastnn.set_seed(99)
    straight.fit(x, y, epochs=4, batch_size=16, verbose=0)

    first = fresh()
    fastnn.set_seed(99)
    first.fit(x, y, epochs=2, batch_size=16, verbose=0)
    first.save(tmp_path / "half.fastnn")
    resumed = fastnn.load_model(tmp_path / "half.fastnn")
    resumed.fit(x, y, epochs=4, initial_epoch=2, batch_size=16, verbose=0)
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        numpy.testing.assert_array_equal(a, b)


def test_save_is_atomic(rng, tmp_path, monkeypatch):
    model = _sequential()
    model.compile("sgd", "mse")
    path = tmp_path / "m.fastnn"
    model.save(path)
    before = path.read_bytes()
    model.set_weights([w + 1 for w in model.get_weights()])

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed mid-save")

    monkeypatch.setattr(fastnn.saving, "_array_bytes", crash)
    with pytest.raises(KeyboardInterrupt):
        model.save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.fastnn"]  # no temporary file left behind


@pytest.mark.skipif(os.name != "posix", reason="file modes and the umask are POSIX")
@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_saved_file_gets_the_mode_any_new_file_gets(umask, tmp_path):
    """Not mkstemp's 0600: a saved model is as readable as the user's other files."""
    model = _sequential()
    old = os.umask(umask)
    try:
        model.save(tmp_path / "m.fastnn")
        (tmp_path / "plain").write_bytes(b"")
    finally:
        os.umask(old)
    mode = os.stat(tmp_path / "m.fastnn").st_mode & 0o777
    assert mode == os.stat(tmp_path / "plain").st_mode & 0o777 == 0o666 & ~umask


def test_weights_only(rng, tmp_path):
    a, b = _sequential(), _sequential()
    a.save_weights(tmp_path / "w.fastnn")
    b.load_weights(tmp_path / "w.fastnn")
    for u, v in zip(a.get_weights(), b.get_weights()):
        numpy.testing.assert_array_equal(u, v)
    with pytest.raises(ModelFileError, match="weights only"):
        fastnn.load_model(tmp_path / "w.fastnn")
    other = fastnn.Sequential([fastnn.Input((6,)), L.Dense(2)])
    with pytest.raises(ModelFileError, match="do not fit"):
        other.load_weights(tmp_path / "w.fastnn")


class TestBadFiles:
    def _saved(self, tmp_path):
        model = _functional()
        model.compile("adam", "mse")
        path = tmp_path / "good.fastnn"
        model.save(path)
        return path

    def test_missing(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="no model file"):
            fastnn.load_model(tmp_path / "nope.fastnn")

    def test_truncated(self, tmp_path):
        path = self._saved(tmp_path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        with pytest.raises(ModelFileError, match="good.fastnn.*(corrupt|truncated)"):
            fastnn.load_model(path)

    def test_foreign(self, tmp_path):
        path = tmp_path / "foreign.fastnn"
        path.write_bytes(b"\x80\x04K\x01.")  # a pickle: must never be executed
        with pytest.raises(ModelFileError, match="not a fastnn model file"):
            fastnn.load_model(path)
        with zipfile.ZipFile(tmp_path / "other.zip", "w") as z:
            z.writestr("fastnn.json", '{"format": "something-else"}')
        with pytest.raises(ModelFileError, match="not a fastnn model file"):
            fastnn.load_model(tmp_path / "other.zip")

    def test_corrupt_array_and_config(self, tmp_path):
        path = self._saved(tmp_path)
        with zipfile.ZipFile(path) as z:
            entries = {n: z.read(n) for n in z.namelist()}
        bad = dict(entries)
        bad["weights/00000.npy"] = b"garbage"
        self._write(path, bad)
        with pytest.raises(ModelFileError, match="corrupt array weights/00000.npy"):
            fastnn.load_model(path)
        bad = dict(entries)
        bad["fastnn.json"] = b'{"format": "fastnn-model", "version": 1, "model": {"layers": []}}'
        self._write(path, bad)
        with pytest.raises(ModelFileError, match="malformed model description"):
            fastnn.load_model(path)
        bad["fastnn.json"] = b"{not json"
        self._write(path, bad)
        with pytest.raises(ModelFileError, match="corrupt model description"):
            fastnn.load_model(path)

    def test_pickled_array_is_refused(self, tmp_path):
        path = self._saved(tmp_path)
        with zipfile.ZipFile(path) as z:
            entries = {n: z.read(n) for n in z.namelist()}
        import io
        buf = io.BytesIO()
        numpy.save(buf, numpy.array([object()], dtype=object), allow_pickle=True)
        entries["weights/00000.npy"] = buf.getvalue()
        self._write(path, entries)
        with pytest.raises(ModelFileError, match="weights/00000.npy has dtype object"):
            fastnn.load_model(path)

    @staticmethod
    def _write(path, entries):
        with zipfile.ZipFile(path, "w") as z:
            for n, data in entries.items():
                z.writestr(n, data)


@pytest.mark.skipif(os.name != "posix", reason="pid probing of stale temporaries is POSIX")
def test_save_removes_temporaries_of_dead_savers_only(rng, tmp_path):
    import subprocess
    import sys
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid that no longer exists (reuse within this test is vanishingly rare)
    stale = tmp_path / f".fastnn-{dead.pid}-0123456789ab.tmp"
    alive = tmp_path / f".fastnn-{os.getppid()}-0123456789ab.tmp"   # a live process's
    other = tmp_path / f".fastnn-{dead.pid}-notours.tmp"             # not a name we make
    for p in (stale, alive, other):
        p.write_bytes(b"half a zip")
    model = fastnn.Sequential([fastnn.Input((3,)), L.Dense(2)])
    model.save(tmp_path / "m.fastnn")
    assert not stale.exists()
    assert alive.exists() and other.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [alive.name, other.name, "m.fastnn"])


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL and pid probing are POSIX")
def test_a_save_killed_mid_write_leaves_nothing_after_the_next_save(tmp_path):
    import signal
    import subprocess
    import sys
    import time
    target = tmp_path / "big.fastnn"
    script = f"""
import fastnn
from fastnn import layers as L
m = fastnn.Sequential([fastnn.Input((1500,)), L.Dense(1500)])
while True:
    m.save({str(target)!r})
"""
    for _ in range(5):  # a kill can land just after a rename; then try again
        # cwd: from the repository root the child would import the uncompiled sources.
        child = subprocess.Popen([sys.executable, "-c", script], cwd=tmp_path)
        try:
            deadline = time.monotonic() + 60
            while not list(tmp_path.glob(".fastnn-*.tmp")):
                assert child.poll() is None and time.monotonic() < deadline, "no save started"
                time.sleep(0.001)
            child.send_signal(signal.SIGKILL)
            child.wait()
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        if list(tmp_path.glob(".fastnn-*.tmp")):
            break
    assert list(tmp_path.glob(".fastnn-*.tmp")), "no kill landed mid-write in 5 tries"
    fastnn.Sequential([fastnn.Input((2,)), L.Dense(1)]).save(tmp_path / "small.fastnn")
    assert not list(tmp_path.glob(".fastnn-*.tmp"))


def test_archive_reads_what_write_archive_wrote(tmp_path):
    from fastnn.saving import Archive, write_archive
    path = tmp_path / "a.zip"
    a = numpy.arange(6.0).reshape(2, 3)
    write_archive(path, {"format": "test-format", "version": 3, "n": 1}, {"x.npy": a})
    with Archive(path, "test-format", 3, "test file") as archive:
        assert archive.config["n"] == 1
        numpy.testing.assert_array_equal(archive.array("x.npy"), a)
        with pytest.raises(ModelFileError, match="missing y.npy"):
            archive.array("y.npy")
    with pytest.raises(ModelFileError, match="not a test file .format 'test-format'"):
        Archive(path, "other-format", 3, "test file")
    with pytest.raises(ModelFileError, match="version 3 is not supported"):
        Archive(path, "test-format", 4, "test file")
