"""Ratings container and readers: every format, id maps, and bad input."""
import os

import numpy as np
import pytest

from fastnn.recsys import Ratings, load_ratings
from fastnn.recsys.data import detect_format

ROWS = [(196, 242, 3, 881250949), (186, 302, 3, 891717742), (22, 377, 1, 878887116),
        (196, 302, 5, 881250950), (244, 51, 2, 880606923)]


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def files(tmp_path):
    return {
        "movielens": write(tmp_path, "u.data", "".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in ROWS)),
        "dat": write(tmp_path, "ratings.dat", "".join(f"{u}::{i}::{r}::{t}\n" for u, i, r, t in ROWS)),
        "csv": write(tmp_path, "ratings.csv", "userId,movieId,rating,timestamp\n"
                     + "".join(f"{u},{i},{r}.0,{t}\n" for u, i, r, t in ROWS)),
        "inter": write(tmp_path, "ml.inter",
                       "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
                       + "".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in ROWS)),
    }


@pytest.mark.parametrize("fmt", ["movielens", "dat", "csv", "inter"])
def test_every_format_reads_the_same(tmp_path, fmt):
    path = files(tmp_path)[fmt]
    assert detect_format(path) == fmt
    for r in (load_ratings(path), load_ratings(path, format=fmt)):
        assert r.shape == (4, 4)
        assert r.matrix.dtype == np.float32
        np.testing.assert_array_equal(r.user_ids, [22, 186, 196, 244])
        np.testing.assert_array_equal(r.item_ids, [51, 242, 302, 377])
        for u, i, rating, t in ROWS:
            ui, ii = r.user_index[u], r.item_index[i]
            assert r.matrix[ui, ii] == rating
            assert r.user_ids[ui] == u and r.item_ids[ii] == i
        assert r.rating_range == (1.0, 5.0)
        assert r.nnz == 5
        # timestamps stay aligned with the CSR data
        uu, ii, vv = r.to_triples()
        for a, b, v, t in zip(uu, ii, vv, r.timestamps):
            assert (r.user_ids[a], r.item_ids[b], v, t) in [(x, y, float(z), w) for x, y, z, w in ROWS]


def test_string_ids_and_detection_by_content(tmp_path):
    p = write(tmp_path, "data.txt", "user_id:token\titem_id:token\trating:float\n"
              "alice\tmatrix\t4.5\nbob\tmatrix\t2\n")
    r = load_ratings(p)
    assert list(r.user_ids) == ["alice", "bob"]
    assert r.matrix[r.user_index["alice"], r.item_index["matrix"]] == 4.5
    assert r.timestamps is None
    assert detect_format(write(tmp_path, "x", "1::2::3::4\n")) == "dat"


def test_real_movielens_100k():
    root = os.environ.get("FASTNN_DATA") or os.path.expanduser("~/.cache/fastnn-data")
    path = os.path.join(root, "ml-100k", "u.data")
    if not os.path.exists(path):
        pytest.skip("MovieLens 100K not fetched (bash /work/shared/data/fetch.sh)")
    r = load_ratings(path)
    assert r.shape == (943, 1682) and r.nnz == 100000
    assert r.rating_range == (1.0, 5.0)
    assert r.matrix[r.user_index[196], r.item_index[242]] == 3


@pytest.mark.parametrize("text,message", [
    ("1\t2\t3\t4\n5\t6\n", r"u.data, line 2: expected at least 4 fields"),
    ("1\t2\t3\t4\n\n5\t6\tx\t7\n", r"line 3: rating 'x' is not a number"),
    ("1\t2\tnan\t4\n", r"line 1: rating 'nan' is not a finite number"),
    ("1\t2\t3\t4\n1\t3\tinf\t4\n", r"line 2: rating 'inf'"),
    ("", r"u.data: the file is empty"),
    ("\n\n", r"u.data: the file is empty"),
])
def test_bad_input(tmp_path, text, message):
    p = write(tmp_path, "u.data", text)
    with pytest.raises(ValueError, match=message):
        load_ratings(p)


def test_binary_file_is_an_error_naming_file_and_line(tmp_path):
    p = tmp_path / "ratings.dat"
    p.write_bytes(b"1::2::5::9\n1::3::4::9\n\x9b\xff::1::2::3\n")
    with pytest.raises(ValueError, match=r"ratings.dat, line 3: not UTF-8 text \(byte 0x9b"):
        load_ratings(p)


def test_csv_with_a_byte_order_mark_and_crlf_reads(tmp_path):
    p = tmp_path / "ratings.csv"
    p.write_bytes(b"\xef\xbb\xbfuserId,movieId,rating\r\n1,2,5\r\n2,2,3\r\n")
    r = load_ratings(p)
    assert r.shape == (2, 1) and r.nnz == 2
    assert r.matrix[r.user_index[2], r.item_index[2]] == 3


def test_header_only_file_is_an_error(tmp_path):
    p = write(tmp_path, "r.csv", "userId,movieId,rating,timestamp\n")
    with pytest.raises(ValueError, match="no ratings"):
        load_ratings(p)
    p = write(tmp_path, "r2.csv", "who,what,rating\n1,2,3\n")
    with pytest.raises(ValueError, match="no user column"):
        load_ratings(p)


def test_rating_range(tmp_path):
    p = write(tmp_path, "u.data", "1\t2\t3\t4\n1\t3\t6\t4\n")
    with pytest.raises(ValueError, match=r"line 2: rating 6 is outside the declared range \[1, 5\]"):
        load_ratings(p, rating_range=(1, 5))
    assert load_ratings(p, rating_range=(0, 10)).rating_range == (0.0, 10.0)


def test_duplicates(tmp_path):
    p = write(tmp_path, "u.data", "1\t2\t3\t10\n1\t3\t4\t11\n1\t2\t5\t12\n")
    r = load_ratings(p)  # default: keep the last
    assert r.nnz == 2
    assert r.matrix[0, r.item_index[2]] == 5
    assert sorted(r.timestamps) == [11, 12]
    with pytest.raises(ValueError, match=r"duplicate rating of user 1 for item 2 on lines 1 and 3"):
        load_ratings(p, duplicates="error")
    with pytest.raises(ValueError, match="duplicates="):
        load_ratings(p, duplicates="mean")


def test_zero_rating_is_observed():
    r = Ratings.from_triples([1, 2], [1, 1], [0.0, 3.0])
    assert r.nnz == 2
    assert r.matrix.indptr.tolist() == [0, 1, 2]


def test_given_id_maps():
    r = Ratings.from_triples([5, 7], [1, 9], [1, 2], user_ids=[3, 5, 7], item_ids=[1, 2, 9])
    assert r.shape == (3, 3)
    assert r.matrix[1, 0] == 1 and r.matrix[2, 2] == 2
    with pytest.raises(ValueError, match="user 8 is not in the given user_ids"):
        Ratings.from_triples([8], [1], [1], user_ids=[3, 5], item_ids=[1])


def test_item_matrix_is_transpose():
    r = Ratings.from_triples([1, 1, 2], [1, 2, 2], [1, 2, 3])
    np.testing.assert_array_equal(r.item_matrix().toarray(), r.matrix.toarray().T)


def test_a_directory_stands_for_the_ratings_file_in_it(tmp_path):
    (tmp_path / "ml").mkdir()
    write(tmp_path / "ml", "u.data", "1\t2\t3\t4\n2\t2\t5\t4\n")
    write(tmp_path / "ml", "u.item", "not ratings\n")
    r = load_ratings(tmp_path / "ml")
    assert r.nnz == 2 and r.source.endswith("u.data")
    (tmp_path / "rb").mkdir()
    write(tmp_path / "rb", "ml.inter", "user_id:token\titem_id:token\trating:float\n1\t2\t3\n")
    assert load_ratings(tmp_path / "rb").nnz == 1
    write(tmp_path / "rb", "other.inter", "user_id:token\titem_id:token\trating:float\n")
    with pytest.raises(ValueError, match=r"several: \['ml.inter', 'other.inter'\]"):
        load_ratings(tmp_path / "rb")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="is a directory without a ratings file: expected u.data"):
        load_ratings(tmp_path / "empty")


@pytest.mark.parametrize("raw", ["01", "+1", "1_000", "\u0661", "-0", "1.0"])
def test_non_canonical_integer_ids_stay_strings(tmp_path, raw):
    # int("01") == int("1") == 1: parsing these as integers merges different raw
    # ids into one user, and duplicates="last" then silently drops a rating.
    canonical = {"01": "1", "+1": "1", "1_000": "1000", "\u0661": "1", "-0": "0",
                 "1.0": "1"}[raw]
    p = tmp_path / "r.csv"
    p.write_text(f"userId,movieId,rating\n{raw},5,3\n{canonical},5,4\n", encoding="utf-8")
    r = load_ratings(p, duplicates="error")
    assert r.n_users == 2 and r.nnz == 2
    assert r.user_ids.dtype.kind == "U"
    assert sorted(r.user_ids.tolist()) == sorted([raw.strip(), canonical])


def test_canonical_integer_ids_are_integers(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("userId,movieId,rating\n-3,0,3\n10,9223372036854775807,4\n0,0,1\n")
    r = load_ratings(p)
    assert r.user_ids.dtype == np.int64 and r.item_ids.dtype == np.int64
    np.testing.assert_array_equal(r.user_ids, [-3, 0, 10])
    np.testing.assert_array_equal(r.item_ids, [0, 2**63 - 1])


def test_id_too_large_for_int64_stays_a_string(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("userId,movieId,rating\n9223372036854775808,1,3\n1,1,4\n")
    r = load_ratings(p)
    assert r.user_ids.dtype.kind == "U" and r.n_users == 2


@pytest.mark.parametrize("rating", ["1e39", "-3.5e38"])
def test_rating_beyond_float32_is_an_error(tmp_path, rating):
    p = tmp_path / "r.csv"
    p.write_text(f"userId,movieId,rating\n1,1,3\n2,1,{rating}\n")
    with pytest.raises(ValueError, match=r"line 3: rating .* float32"):
        load_ratings(p)
    with pytest.raises(ValueError, match=r"line 2: rating .* float32"):
        Ratings.from_triples([1, 2], [1, 1], [3.0, float(rating)])


@pytest.mark.parametrize("stamp", ["inf", "nan", "-inf"])
def test_non_finite_timestamp_is_an_error(tmp_path, stamp):
    p = tmp_path / "u.data"
    p.write_text(f"1\t1\t3\t100\n2\t1\t4\t{stamp}\n")
    with pytest.raises(ValueError, match=r"line 2: timestamp .* finite"):
        load_ratings(p)


def test_timestamp_beyond_int64_stays_float(tmp_path):
    p = tmp_path / "u.data"
    p.write_text("1\t1\t3\t100\n2\t1\t4\t1e20\n")
    r = load_ratings(p)
    assert r.timestamps.dtype == np.float64
    assert sorted(r.timestamps.tolist()) == [100.0, 1e20]
    p.write_text("1\t1\t3\t100\n2\t1\t4\t200\n")
    assert load_ratings(p).timestamps.dtype == np.int64


def test_ratings_refuses_non_finite_timestamps():
    with pytest.raises(ValueError, match="timestamps .* finite"):
        Ratings.from_triples([1, 2], [1, 1], [3.0, 4.0], timestamps=[1.0, np.nan])
