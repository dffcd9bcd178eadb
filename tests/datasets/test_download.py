"""Downloads into the data cache, against a loopback HTTP server serving small
fixture files (never the internet): success, checksum mismatch, truncated
body, server error, stalled and interrupted downloads (no partial file left),
no network, mirrors; then load_mnist/load_fashion_mnist end to end."""
import gzip
import hashlib
import io
import os
import socket
import struct

import numpy
import pytest

from fastnn.datasets import DownloadError, load_fashion_mnist, load_mnist
from fastnn.datasets import download as dl
from fastnn.datasets import mnist
from fastnn.datasets._loopback import LoopbackServer

BODY = bytes(range(256)) * 300 + b"end"   # several 64 KiB chunks
SHA = hashlib.sha256(BODY).hexdigest()


@pytest.fixture(autouse=True)
def _no_mirror(monkeypatch, tmp_path):
    # Whatever the machine's environment says, these tests use their own cache
    # and never reach a real mirror.
    monkeypatch.delenv(dl.MIRROR_ENV, raising=False)
    monkeypatch.setenv("FASTNN_DATA", str(tmp_path / "cache"))


@pytest.fixture
def server():
    with LoopbackServer() as s:
        yield s


def _remote(urls, sha256=SHA, md5=None, size=None, name="file.bin"):
    return dl.RemoteFile("things", name, tuple(urls), sha256=sha256, md5=md5, size=size)


def _closed_port_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"   # nothing listens there any more


def _leftovers(folder):
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def test_success_writes_verified_file_and_then_reads_the_cache(server, tmp_path):
    server.add("/file.bin", BODY)
    dest = tmp_path / "out" / "file.bin"
    out = io.StringIO()
    assert dl.fetch(_remote([server.url + "/file.bin"]), dest, stream=out) == str(dest)
    assert dest.read_bytes() == BODY
    assert _leftovers(dest.parent) == ["file.bin"]            # no temporary left
    assert "Downloading " + server.url + "/file.bin" in out.getvalue()
    assert "KiB" in out.getvalue()                            # the progress bar's line
    server.routes.clear()                                     # the server forgets it...
    dl.fetch(_remote([server.url + "/file.bin"]), dest, stream=out)
    assert server.hits == ["/file.bin"]                       # ...and is not asked again


def test_verbose_zero_is_silent(server, tmp_path):
    server.add("/file.bin", BODY)
    out = io.StringIO()
    dl.fetch(_remote([server.url + "/file.bin"]), tmp_path / "f", verbose=0, stream=out)
    assert out.getvalue() == ""


def test_checksum_mismatch_names_both_hashes_and_leaves_nothing(server, tmp_path):
    server.add("/file.bin", BODY[:-1] + b"X")
    got = hashlib.sha256(BODY[:-1] + b"X").hexdigest()
    with pytest.raises(DownloadError, match=f"checksum mismatch: sha256 expected {SHA}, "
                                            f"got {got}"):
        dl.fetch(_remote([server.url + "/file.bin"]), tmp_path / "file.bin", verbose=0)
    assert _leftovers(tmp_path) == []


def test_md5_is_checked_where_no_sha256_is_published(server, tmp_path):
    server.add("/file.bin", BODY)
    good = _remote([server.url + "/file.bin"], sha256=None, md5=hashlib.md5(BODY).hexdigest())
    dl.fetch(good, tmp_path / "a", verbose=0)
    bad = _remote([server.url + "/file.bin"], sha256=None, md5="0" * 32)
    with pytest.raises(DownloadError, match="md5 expected 0{32}"):
        dl.fetch(bad, tmp_path / "b", verbose=0)
    assert _leftovers(tmp_path) == ["a"]


def test_wrong_size_is_refused(server, tmp_path):
    server.add("/file.bin", BODY)
    with pytest.raises(DownloadError, match=f"got {len(BODY)} bytes, expected {len(BODY) + 1}"):
        dl.fetch(_remote([server.url + "/file.bin"], sha256=None, size=len(BODY) + 1),
                 tmp_path / "f", verbose=0)
    assert _leftovers(tmp_path) == []


def test_truncated_body_is_refused(server, tmp_path):
    server.add("/file.bin", BODY, send=len(BODY) // 2)     # Content-Length says all of it
    with pytest.raises(DownloadError, match=f"truncated download.*{len(BODY)}"):
        dl.fetch(_remote([server.url + "/file.bin"]), tmp_path / "file.bin", verbose=0)
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("status", [404, 500, 503])
def test_server_error_names_the_status(server, tmp_path, status):
    server.add("/file.bin", status=status)
    with pytest.raises(DownloadError, match=f"HTTP {status}"):
        dl.fetch(_remote([server.url + "/file.bin"]), tmp_path / "file.bin", verbose=0)
    assert _leftovers(tmp_path) == []


def test_a_failing_url_falls_back_to_the_next(server, tmp_path):
    server.add("/down.bin", status=500)
    server.add("/other.bin", BODY[::-1])                     # serves other bytes
    server.add("/good.bin", BODY)
    urls = [server.url + p for p in ("/down.bin", "/other.bin", "/good.bin")]
    dl.fetch(_remote(urls), tmp_path / "file.bin", verbose=0)
    assert (tmp_path / "file.bin").read_bytes() == BODY
    assert server.hits == ["/down.bin", "/other.bin", "/good.bin"]


def test_stalled_download_times_out_and_leaves_nothing(server, tmp_path):
    server.add("/file.bin", BODY, send=70000, stall=3.0)
    with pytest.raises(DownloadError, match="interrupted after"):
        dl.fetch(_remote([server.url + "/file.bin"]), tmp_path / "file.bin", verbose=0,
                 timeout=0.3)
    assert _leftovers(tmp_path) == []


def test_interrupted_download_leaves_no_partial_file(server, tmp_path, monkeypatch):
    server.add("/file.bin", BODY)
    calls = []

    def interrupt(self, current, values=None, finalize=None):
        calls.append(current)
        raise KeyboardInterrupt   # Ctrl-C after the first chunk hit the disk

    monkeypatch.setattr(dl.Progbar, "update", interrupt)
    with pytest.raises(KeyboardInterrupt):
        dl.fetch(_remote([server.url + "/file.bin"]), tmp_path / "file.bin",
                 stream=io.StringIO())
    assert calls and _leftovers(tmp_path) == []
    monkeypatch.undo()
    monkeypatch.setenv("FASTNN_DATA", str(tmp_path / "cache"))
    dl.fetch(_remote([server.url + "/file.bin"]), tmp_path / "file.bin", verbose=0)
    assert (tmp_path / "file.bin").read_bytes() == BODY   # the next try starts clean


def test_no_network_says_which_file_where_and_the_url(tmp_path):
    canonical = "https://example.org/data/file.bin"
    remote = dl.RemoteFile("things", "file.bin", (canonical,), sha256=SHA)
    dest = tmp_path / "cache" / "things" / "file.bin"
    with pytest.raises(DownloadError) as info:
        dl.fetch(remote, dest, base_url=_closed_port_url(), verbose=0, timeout=5)
    message = str(info.value)
    assert "cannot download file.bin" in message
    assert f"To install it by hand (no network here?), download {canonical} and put it at {dest}" in message
    assert str(dest.parent) in message
    assert _leftovers(dest.parent) == []


def test_mirror_environment_variable_and_file_urls(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    (mirror / "things").mkdir(parents=True)
    (mirror / "things" / "file.bin").write_bytes(BODY)
    monkeypatch.setenv(dl.MIRROR_ENV, mirror.as_uri())
    remote = dl.RemoteFile("things", "file.bin", ("https://example.invalid/file.bin",),
                           sha256=SHA)
    dl.fetch(remote, tmp_path / "got", verbose=0)
    assert (tmp_path / "got").read_bytes() == BODY


def test_a_mirror_that_is_not_a_url_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv(dl.MIRROR_ENV, "mirror.example.org/data")   # no scheme
    with pytest.raises(DownloadError, match="unknown url type.*mirror.example.org/data/things"):
        dl.fetch(_remote(["https://example.invalid/file.bin"]), tmp_path / "f", verbose=0)


def test_data_home_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTNN_DATA", str(tmp_path))
    assert dl.data_home() == str(tmp_path)
    monkeypatch.delenv("FASTNN_DATA")
    assert dl.data_home() == os.path.join(os.path.expanduser("~"), ".cache", "fastnn-data")


def test_registry_has_a_published_checksum_for_every_file():
    for kind in ("mnist", "fashion"):
        files = mnist.remote_files(kind)
        assert sorted(f.name for f in files) == sorted(n for pair in mnist._FILES.values()
                                                       for n in pair)
        for f in files:
            assert len(f.sha256) == 64 and int(f.sha256, 16) >= 0
            assert f.size > 0 and len(f.urls) == 2
            assert all(u.endswith("/" + f.name) for u in f.urls)


# --- load_mnist / load_fashion_mnist end to end on fixture IDX files ---------

def _idx_gz(array):
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I",
                                                                   *array.shape)
    return gzip.compress(header + array.astype(">u1").tobytes(), mtime=0)


def _serve_fixture_set(server, monkeypatch, kind, seed=0):
    rng = numpy.random.default_rng(seed)
    arrays, checksums = {}, {}
    for split, n in (("train", 7), ("test", 4)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=numpy.uint8)
        labels = rng.integers(0, 10, size=n, dtype=numpy.uint8)
        arrays[split] = (images, labels)
        for name, array in zip(mnist._FILES[split], (images, labels)):
            body = _idx_gz(array)
            server.add(f"/{kind}/{name}", body)
            checksums[name] = (len(body), hashlib.sha256(body).hexdigest())
    monkeypatch.setitem(mnist._CHECKSUMS, kind, checksums)
    return arrays


def _assert_loaded(data, arrays):
    (x_train, y_train), (x_test, y_test) = data
    numpy.testing.assert_array_equal(x_train, arrays["train"][0])
    numpy.testing.assert_array_equal(y_train, arrays["train"][1])
    numpy.testing.assert_array_equal(x_test, arrays["test"][0])
    numpy.testing.assert_array_equal(y_test, arrays["test"][1])


def test_load_mnist_downloads_on_first_use_then_reads_the_cache(server, monkeypatch, tmp_path,
                                                                 capsys):
    arrays = _serve_fixture_set(server, monkeypatch, "mnist")
    _assert_loaded(load_mnist(url=server.url + "/mnist"), arrays)
    assert "Downloading" in capsys.readouterr().err
    folder = tmp_path / "cache" / "mnist"
    assert _leftovers(folder) == sorted(n for p in mnist._FILES.values() for n in p)
    served = len(server.hits)
    _assert_loaded(load_mnist(url=server.url + "/mnist"), arrays)
    assert len(server.hits) == served == 4


def test_load_fashion_mnist_through_the_mirror_variable(server, monkeypatch, tmp_path):
    arrays = _serve_fixture_set(server, monkeypatch, "fashion", seed=1)
    server.routes = {p.replace("/fashion/", "/fashion-mnist/"): r
                     for p, r in server.routes.items()}
    monkeypatch.setenv(dl.MIRROR_ENV, server.url)
    _assert_loaded(load_fashion_mnist(verbose=0), arrays)
    assert os.path.isdir(tmp_path / "cache" / "fashion-mnist")


def test_load_mnist_bad_download_leaves_the_cache_empty(server, monkeypatch, tmp_path):
    _serve_fixture_set(server, monkeypatch, "mnist")
    server.add("/mnist/t10k-images-idx3-ubyte.gz", b"not the file")
    with pytest.raises(DownloadError, match="t10k-images-idx3-ubyte.gz.*checksum mismatch"):
        load_mnist(url=server.url + "/mnist", verbose=0)
    assert "t10k-images-idx3-ubyte.gz" not in _leftovers(tmp_path / "cache" / "mnist")
    assert not [n for n in _leftovers(tmp_path / "cache" / "mnist") if n.startswith(".")]


def test_files_already_in_the_cache_are_read_without_network(monkeypatch, tmp_path):
    # The layout shared/data/fetch.sh writes (recompressed, so not the published
    # bytes): read as it is, never checked against the download hashes.
    arrays = {}
    folder = tmp_path / "cache" / "mnist"
    folder.mkdir(parents=True)
    rng = numpy.random.default_rng(2)
    for split, n in (("train", 3), ("test", 2)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=numpy.uint8)
        labels = rng.integers(0, 10, size=n, dtype=numpy.uint8)
        arrays[split] = (images, labels)
        for name, array in zip(mnist._FILES[split], (images, labels)):
            (folder / name).write_bytes(_idx_gz(array))
    monkeypatch.setenv(dl.MIRROR_ENV, _closed_port_url())
    _assert_loaded(load_mnist(), arrays)


def test_a_named_folder_is_not_downloaded_into_unless_asked(server, monkeypatch, tmp_path):
    arrays = _serve_fixture_set(server, monkeypatch, "mnist")
    folder = tmp_path / "mine"
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte.gz.*"
                       "https://ossci-datasets.s3.amazonaws.com/mnist/train-images"):
        load_mnist(folder, verbose=0)
    assert server.hits == []
    _assert_loaded(load_mnist(folder, download=True, url=server.url + "/mnist", verbose=0),
                   arrays)


def test_load_mnist_without_network_names_file_folder_and_url(monkeypatch, tmp_path):
    monkeypatch.setenv(dl.MIRROR_ENV, _closed_port_url())
    folder = tmp_path / "cache" / "mnist"
    with pytest.raises(DownloadError, match=r"cannot download train-images-idx3-ubyte.gz.*"
                       r"download https://ossci-datasets.s3.amazonaws.com/mnist/"
                       r"train-images-idx3-ubyte.gz and put it at " +
                       str(folder / "train-images-idx3-ubyte.gz")):
        load_mnist(verbose=0)


def test_keras_spelling_load_data(server, monkeypatch, tmp_path):
    from fastnn.datasets import fashion_mnist
    from fastnn.datasets import mnist as keras_style_mnist
    arrays = _serve_fixture_set(server, monkeypatch, "mnist")
    fashion = _serve_fixture_set(server, monkeypatch, "fashion", seed=3)
    server.routes = {p.replace("/fashion/", "/fashion-mnist/"): r
                     for p, r in server.routes.items()}
    monkeypatch.setenv(dl.MIRROR_ENV, server.url)
    _assert_loaded(keras_style_mnist.load_data(), arrays)
    _assert_loaded(fashion_mnist.load_data(), fashion)


def test_a_dead_download_s_temporary_is_removed_a_live_one_kept(server, tmp_path):
    server.add("/file.bin", BODY)
    dead = tmp_path / ".file.bin.abc123.part"
    live = tmp_path / ".file.bin.def456.part"
    other = tmp_path / ".other.bin.abc123.part"
    for p in (dead, live, other):
        p.write_bytes(b"partial")
    old = os.path.getmtime(dead) - dl.STALE_PART_SECONDS - 60
    os.utime(dead, (old, old))
    os.utime(other, (old, old))
    dl.fetch(_remote([server.url + "/file.bin"]), tmp_path / "file.bin", verbose=0)
    assert _leftovers(tmp_path) == sorted([live.name, other.name, "file.bin"])
