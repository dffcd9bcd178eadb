import json
import re

import numpy
import pytest

from fastnn.__main__ import main
from fastnn.recsys import synthetic_ratings


def _write_udata(path, seed=0):
    r = synthetic_ratings(40, 50, density=0.2, seed=seed)
    u, i, v = r.to_triples()
    lines = [f"{a + 1}\t{b + 1}\t{int(c)}\t{881250949 + n}" for n, (a, b, c) in
             enumerate(zip(u, i, v))]
    path.write_text("\n".join(lines) + "\n")
    return r


FAST = ["--hidden", "8", "--lam", "1", "10", "--epochs", "5", "--patience", "2",
        "--batch-size", "16", "--seeds", "0", "1"]


def test_json_output_parses(tmp_path, capsys):
    data = tmp_path / "u.data"
    r = _write_udata(data)
    assert main(["autorec", "--data", str(data), "--json"] + FAST) == 0
    out, err = capsys.readouterr()
    res = json.loads(out)
    assert err == ""
    assert res["protocol"]["lams"] == [1.0, 10.0] and res["protocol"]["seeds"] == [0, 1]
    assert res["protocol"]["ratings"] == r.nnz
    assert [row["seed"] for row in res["seeds"]] == [0, 1]
    for row in res["seeds"]:
        assert row["chosen_lam"] in (1.0, 10.0) and len(row["selection"]) == 2
    assert numpy.isfinite(res["summary"]["test_rmse"]["mean"])


def test_table_output_and_progress(tmp_path, capsys):
    data = tmp_path / "u.data"
    _write_udata(data, seed=1)
    assert main(["autorec", "--data", str(data), "--format", "movielens", "--variant", "user",
                 "--optimizer", "lbfgs", "--no-refit", "--hidden", "6", "4", "6",
                 "--lam", "3", "--epochs", "4", "--seeds", "2"]) == 0
    out, err = capsys.readouterr()
    assert "val RMSE" in out and "test RMSE" in out and "NDCG@10" in out
    assert "seed 2" in err and "lam 3" in err


def test_dat_format(tmp_path, capsys):
    r = synthetic_ratings(30, 40, density=0.25, seed=4)
    u, i, v = r.to_triples()
    data = tmp_path / "ratings.dat"
    data.write_text("".join(f"{a + 1}::{b + 1}::{int(c)}::978300760\n"
                            for a, b, c in zip(u, i, v)))
    assert main(["autorec", "--data", str(data), "--json", "--seeds", "0", "--hidden", "4",
                 "--lam", "1", "--epochs", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["protocol"]["ratings"] == r.nnz


def test_malformed_line_names_file_and_line(tmp_path):
    data = tmp_path / "u.data"
    data.write_text("1\t1\t5\t881250949\n2\t1\t4\t881250949\n3\t2\n")
    with pytest.raises(SystemExit, match=r"u\.data, line 3: expected at least 4 fields"):
        main(["autorec", "--data", str(data), "--json"])


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="nothere.data"):
        main(["autorec", "--data", str(tmp_path / "nothere.data")])


def test_help_is_clear(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["autorec", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for word in ("--data", "--lam", "--optimizer", "--seeds", "--json", "--models", "validation",
                 "--lr-decay", "--lr-decay-patience", "--no-lr-decay"):
        assert word in out


def test_missing_data_argument_fails(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["autorec"])
    assert exc.value.code == 2
    assert "--data" in capsys.readouterr().err


def test_models_average(tmp_path, capsys):
    data = tmp_path / "u.data"
    _write_udata(data, seed=5)
    assert main(["autorec", "--data", str(data), "--json", "--models", "2", "--seeds", "0",
                 "--hidden", "4", "--lam", "1", "--epochs", "3"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["protocol"]["n_models"] == 2


def test_lr_decay_flags_reach_the_protocol(tmp_path, capsys):
    data = tmp_path / "u.data"
    _write_udata(data, seed=6)
    assert main(["autorec", "--data", str(data), "--json", "--lr-decay", "0.25",
                 "--lr-decay-patience", "2"] + FAST) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["protocol"]["model"]["lr_decay"] == 0.25
    assert res["protocol"]["model"]["lr_decay_patience"] == 2
    assert "x0.25 after every 2 epochs" in res["protocol"]["lr_schedule"]
    for row in res["seeds"]:
        assert all("lr_drops" in s for s in row["selection"])
        assert isinstance(row["refit_lr_drops"], list)
    assert main(["autorec", "--data", str(data), "--json", "--no-lr-decay"] + FAST) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["protocol"]["model"]["lr_decay"] is None
    assert res["protocol"]["lr_schedule"] == "constant"


@pytest.mark.parametrize("flag, value, message", [
    ("--lr-decay", "1.5", r"must be a factor in \(0, 1\), got 1.5"),
    ("--lr-decay", "0", r"must be a factor in \(0, 1\), got 0"),
    ("--lr-decay-patience", "0", "must be an integer >= 1, got 0"),
])
def test_bad_lr_decay_flags_fail_clearly(tmp_path, capsys, flag, value, message):
    data = tmp_path / "u.data"
    _write_udata(data)
    with pytest.raises(SystemExit) as exc:
        main(["autorec", "--data", str(data), flag, value])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert flag in err and re.search(message, err)


def test_rating_range_flag_rejects_a_rating_outside_it(tmp_path):
    data = tmp_path / "ratings.dat"
    data.write_text("1::1::5::978300760\n1::2::7::978300760\n")
    with pytest.raises(SystemExit, match=r"ratings\.dat, line 2"):
        main(["autorec", "--data", str(data), "--rating-range", "1", "5"])


def test_rating_range_flag_sets_the_clipping_range(tmp_path, capsys):
    data = tmp_path / "u.data"
    _write_udata(data, seed=7)
    assert main(["autorec", "--data", str(data), "--json", "--rating-range", "0", "10",
                 "--seeds", "0", "--hidden", "4", "--lam", "1", "--epochs", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["protocol"]["rating_range"] == [0.0, 10.0]


def test_duplicates_flag(tmp_path, capsys):
    data = tmp_path / "u.data"
    r = _write_udata(data, seed=8)
    first = data.read_text().splitlines()[0]
    data.write_text(data.read_text() + first + "\n")  # the first pair again, last line
    with pytest.raises(SystemExit, match="duplicate"):
        main(["autorec", "--data", str(data), "--duplicates", "error"])
    assert main(["autorec", "--data", str(data), "--json", "--seeds", "0", "--hidden", "4",
                 "--lam", "1", "--epochs", "2"]) == 0  # default: keep the last
    assert json.loads(capsys.readouterr().out)["protocol"]["ratings"] == r.nnz


def test_too_few_ratings_for_the_split_is_a_clear_error(tmp_path):
    data = tmp_path / "u.data"
    data.write_text("1\t1\t5\t1\n1\t2\t3\t2\n2\t1\t4\t3\n")
    with pytest.raises(SystemExit, match=r"seed 0: the (fit|validation|test) part of the "
                                         r"split is empty \(3 ratings"):
        main(["autorec", "--data", str(data), "--seeds", "0"])


def test_save_keeps_the_tested_model(tmp_path, capsys):
    from fastnn.recsys import AutoRec, load_ratings, random_split
    data = tmp_path / "u.data"
    _write_udata(data)
    path = tmp_path / "m.autorec"
    fast = FAST[:FAST.index("--seeds")] + ["--seeds", "3"]
    assert main(["autorec", "--data", str(data), "--json", "--save", str(path)] + fast) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["saved"] == str(path)
    model = AutoRec.load(path)
    _, test = random_split(load_ratings(data), test_frac=0.1, seed=3)
    rmse, mae = model.evaluate(test)
    assert rmse == pytest.approx(res["seeds"][0]["test_rmse"], rel=1e-12)
    assert mae == pytest.approx(res["seeds"][0]["test_mae"], rel=1e-12)
    assert model.lam == res["seeds"][0]["chosen_lam"]


@pytest.mark.parametrize("extra", [["--seeds", "0", "1"], ["--seeds", "0", "--models", "2"]])
def test_save_with_several_models_is_a_clear_error(tmp_path, extra):
    data = tmp_path / "u.data"
    _write_udata(data)
    with pytest.raises(SystemExit, match="--save keeps one model: give one seed"):
        main(["autorec", "--data", str(data), "--save", str(tmp_path / "m")] + extra)
    assert not (tmp_path / "m").exists()
