"""load_movielens/fetch_movielens against a loopback HTTP server serving tiny
SYNTHETIC zips laid out like GroupLens's (MovieLens may not be redistributed):
each name end to end, the cache (fetch.sh's layout included), checksum
mismatch, a missing member, path traversal in the archive, no network."""
import hashlib
import io
import os
import socket
import zipfile

import pytest

from fastnn.datasets import DownloadError
from fastnn.datasets import download as dl
from fastnn.datasets._loopback import LoopbackServer
from fastnn.recsys import Ratings, load_movielens
from fastnn.recsys import movielens as ml

# (user, item, rating) triples; the zips hold them in each set's own format.
TRIPLES = [(1, 10, 4.0), (1, 11, 3.0), (2, 10, 5.0), (3, 12, 1.0), (3, 10, 2.0)]


def _ratings_text(name):
    if name == "ml-100k":
        return "".join(f"{u}\t{i}\t{int(r)}\t88125094{k}\n" for k, (u, i, r) in enumerate(TRIPLES))
    if name == "ml-latest-small":
        return "userId,movieId,rating,timestamp\n" + "".join(
            f"{u},{i},{r},96498296{k}\n" for k, (u, i, r) in enumerate(TRIPLES))
    return "".join(f"{u}::{i}::{int(r)}::97830076{k}\n" for k, (u, i, r) in enumerate(TRIPLES))


def _zip_bytes(members):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for member, text in members.items():
            z.writestr(member, text)
    return buf.getvalue()


def _fixture_zip(name, extra=None):
    spec = ml.MOVIELENS[name]
    folder = spec.member.split("/")[0]
    members = {f"{folder}/README": "synthetic fixture, not MovieLens\n",
               spec.member: _ratings_text(name)}
    members.update(extra or {})
    return _zip_bytes(members)


def _serve(server, monkeypatch, name, body, sha_of=None):
    """Serve ``body`` as <name>.zip and make the registry expect ``sha_of``'s hash."""
    spec = ml.MOVIELENS[name]
    server.add(f"/{spec.archive.name}", body)
    expected = body if sha_of is None else sha_of
    archive = spec.archive._replace(sha256=hashlib.sha256(expected).hexdigest(), md5=None,
                                    size=len(expected))
    monkeypatch.setitem(ml.MOVIELENS, name, spec._replace(archive=archive))


def _closed_port_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def _tree(root):
    return sorted(os.path.relpath(os.path.join(d, f), root)
                  for d, _, files in os.walk(root) for f in files)


@pytest.fixture(autouse=True)
def _cache(monkeypatch, tmp_path):
    monkeypatch.delenv(dl.MIRROR_ENV, raising=False)
    monkeypatch.setenv("FASTNN_DATA", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def server():
    with LoopbackServer() as s:
        yield s


def _check_ratings(r):
    assert isinstance(r, Ratings)
    assert r.nnz == len(TRIPLES) and r.shape == (3, 3)
    for u, i, rating in TRIPLES:
        assert r.matrix[r.user_index[u], r.item_index[i]] == rating


@pytest.mark.parametrize("name", sorted(ml.MOVIELENS))
def test_each_set_downloads_unpacks_and_then_reads_the_cache(server, monkeypatch, _cache,
                                                             name, capsys):
    _serve(server, monkeypatch, name, _fixture_zip(name))
    _check_ratings(load_movielens(name, url=server.url))
    assert "Downloading" in capsys.readouterr().err
    ratings_file = ml.MOVIELENS[name].ratings
    assert _tree(_cache) == [os.path.join(name, ratings_file)]   # zip and temporaries gone
    server.routes.clear()
    _check_ratings(load_movielens(name, url=server.url))
    assert len(server.hits) == 1


def test_fetch_sh_layout_counts_as_cached(monkeypatch, _cache):
    (_cache / "ml-100k").mkdir(parents=True)
    (_cache / "ml-100k" / "u.data").write_text(_ratings_text("ml-100k"))
    monkeypatch.setenv(dl.MIRROR_ENV, _closed_port_url())
    _check_ratings(load_movielens("ml-100k"))


def test_mirror_variable_serves_movielens_folder(server, monkeypatch):
    _serve(server, monkeypatch, "ml-1m", _fixture_zip("ml-1m"))
    server.routes = {"/movielens" + p: r for p, r in server.routes.items()}
    monkeypatch.setenv(dl.MIRROR_ENV, server.url)
    _check_ratings(load_movielens("ml-1m", verbose=0))
    assert server.hits == ["/movielens/ml-1m.zip"]


def test_checksum_mismatch_leaves_nothing(server, monkeypatch, _cache):
    good = _fixture_zip("ml-100k")
    _serve(server, monkeypatch, "ml-100k", _fixture_zip("ml-1m"), sha_of=good)
    with pytest.raises(DownloadError, match="ml-100k.zip.*checksum mismatch: sha256 expected "
                                            + hashlib.sha256(good).hexdigest()):
        load_movielens("ml-100k", url=server.url, verbose=0)
    assert _tree(_cache) == []


def test_server_error_names_status(server, monkeypatch, _cache):
    _serve(server, monkeypatch, "ml-100k", _fixture_zip("ml-100k"))
    server.add("/ml-100k.zip", status=500)
    with pytest.raises(DownloadError, match="HTTP 500"):
        load_movielens("ml-100k", url=server.url, verbose=0)
    assert _tree(_cache) == []


def test_archive_without_the_ratings_file(server, monkeypatch, _cache):
    _serve(server, monkeypatch, "ml-100k", _zip_bytes({"ml-100k/u.item": "1|x\n"}))
    with pytest.raises(DownloadError, match="no ml-100k/u.data in the archive.*u.item"):
        load_movielens("ml-100k", url=server.url, verbose=0)
    assert _tree(_cache) == []


def test_not_a_zip(server, monkeypatch, _cache):
    _serve(server, monkeypatch, "ml-100k", b"<html>not a zip</html>")
    with pytest.raises(DownloadError, match="not a readable zip"):
        load_movielens("ml-100k", url=server.url, verbose=0)
    assert _tree(_cache) == []


def test_path_traversal_in_the_archive_writes_nothing_outside(server, monkeypatch, tmp_path,
                                                             _cache):
    evil = {"../../evil.txt": "x", "/tmp/fastnn-evil-abs.txt": "x",
            "ml-100k/../../../evil2.txt": "x"}
    _serve(server, monkeypatch, "ml-100k", _fixture_zip("ml-100k", extra=evil))
    _check_ratings(load_movielens("ml-100k", url=server.url, verbose=0))
    assert _tree(tmp_path) == [os.path.join("cache", "ml-100k", "u.data")]
    assert not os.path.exists("/tmp/fastnn-evil-abs.txt")


def test_zip_put_by_hand_is_unpacked_without_network(monkeypatch, _cache):
    (_cache / "ml-latest-small").mkdir(parents=True)
    (_cache / "ml-latest-small" / "ml-latest-small.zip").write_bytes(
        _fixture_zip("ml-latest-small"))
    monkeypatch.setenv(dl.MIRROR_ENV, _closed_port_url())
    _check_ratings(load_movielens("ml-latest-small", verbose=0))
    assert _tree(_cache) == [os.path.join("ml-latest-small", "ratings.csv")]


def test_no_network_says_which_file_where_and_the_url(monkeypatch, _cache):
    monkeypatch.setenv(dl.MIRROR_ENV, _closed_port_url())
    with pytest.raises(DownloadError) as info:
        load_movielens("ml-1m", verbose=0, )
    message = str(info.value)
    assert "cannot download ml-1m.zip" in message
    assert ("download https://files.grouplens.org/datasets/movielens/ml-1m.zip and put it at "
            + str(_cache / "ml-1m" / "ml-1m.zip")) in message
    assert f"put the unpacked ml-1m/ratings.dat at {_cache / 'ml-1m' / 'ratings.dat'}" in message


def test_download_false_and_unknown_names(_cache):
    with pytest.raises(FileNotFoundError, match=r"ml-10m not found: .*ml-10m/ratings.dat.*"
                       r"https://files.grouplens.org/datasets/movielens/ml-10m.zip.*"
                       r"ml-10M100K/ratings.dat"):
        load_movielens("ml-10m", download=False)
    with pytest.raises(ValueError, match=r"unknown MovieLens data set 'ml-20m'.*ml-100k"):
        load_movielens("ml-20m")


def test_load_ratings_options_pass_through(server, monkeypatch):
    _serve(server, monkeypatch, "ml-100k", _fixture_zip("ml-100k"))
    with pytest.raises(ValueError, match="outside"):
        load_movielens("ml-100k", url=server.url, verbose=0, rating_range=(2, 5))


def test_registry_has_a_published_checksum_for_every_archive():
    assert sorted(ml.MOVIELENS) == ["ml-100k", "ml-10m", "ml-1m", "ml-latest-small"]
    for name, spec in ml.MOVIELENS.items():
        assert spec.archive.urls == (
            f"https://files.grouplens.org/datasets/movielens/{name}.zip",)
        assert spec.member.endswith("/" + spec.ratings)
        if spec.archive.sha256 is not None:
            assert len(spec.archive.sha256) == 64 and spec.archive.size > 0
        else:  # ml-10m: GroupLens's published MD5 (see the module's comment)
            assert name == "ml-10m" and len(spec.archive.md5) == 32


_REAL_ROOT = dl.data_home()   # read before the autouse fixture points FASTNN_DATA elsewhere


@pytest.mark.skipif(not os.path.isfile(os.path.join(_REAL_ROOT, "ml-100k", "u.data")),
                    reason=f"MovieLens-100K not in {_REAL_ROOT}/ml-100k (bash "
                           "../shared/data/fetch.sh puts it there)")
def test_real_ml100k_from_fetch_sh_is_read_without_network(monkeypatch):
    monkeypatch.setenv(dl.MIRROR_ENV, _closed_port_url())
    r = load_movielens("ml-100k", data_dir=_REAL_ROOT)
    assert r.shape == (943, 1682) and r.nnz == 100000
