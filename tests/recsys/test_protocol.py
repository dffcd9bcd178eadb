import json
import os
import time
from pathlib import Path

import numpy
import pytest

from fastnn.recsys import load_ratings, random_split, synthetic_ratings
from fastnn.recsys.protocol import evaluate_autorec, format_table


def _small(seed=0):
    return synthetic_ratings(60, 80, density=0.15, seed=seed)


def test_synthetic_ratings_shape_range_and_long_tail():
    r = synthetic_ratings(200, 300, density=0.05, seed=3)
    assert r.shape == (200, 300) and r.source == "synthetic(seed=3)"
    assert abs(r.nnz - 0.05 * 200 * 300) <= 200
    v = r.matrix.data
    assert v.min() >= 1 and v.max() <= 5 and (v == numpy.rint(v)).all()
    assert len(numpy.unique(v)) >= 4
    assert (numpy.diff(r.matrix.indptr) > 0).all()          # no empty user
    pop = numpy.sort(numpy.bincount(r.matrix.indices, minlength=300))[::-1]
    assert pop[:30].sum() > 2 * pop[-150:].sum()             # long tail
    again = synthetic_ratings(200, 300, density=0.05, seed=3)
    assert (again.matrix != r.matrix).nnz == 0
    with pytest.raises(ValueError, match="density"):
        synthetic_ratings(10, 10, density=0)


def test_selection_is_argmin_of_validation_and_refit_uses_chosen_epochs():
    res = evaluate_autorec(_small(), seeds=(0, 1), lams=(0.1, 10.0, 1000.0), hidden=16,
                           epochs=30, patience=5, batch_size=16, learning_rate=3e-3)
    json.dumps(res)                                           # JSON-able
    assert res["protocol"]["lams"] == [0.1, 10.0, 1000.0]
    assert res["protocol"]["seeds"] == [0, 1]
    for row in res["seeds"]:
        vals = [s["val_rmse"] for s in row["selection"]]
        best = int(numpy.argmin(vals))
        assert row["chosen_lam"] == row["selection"][best]["lam"]
        assert row["chosen_epochs"] == row["selection"][best]["best_epoch"]
        assert row["val_rmse"] == min(vals)
        assert 1 <= row["chosen_epochs"] <= 30
        for key in ("test_rmse", "test_mae", "precision@10", "recall@10", "ndcg@10", "hr@10"):
            assert numpy.isfinite(row[key])
        assert row["n_fit"] + row["n_val"] + row["n_test"] == _small().nnz
    s = res["summary"]["test_rmse"]
    rows = [r["test_rmse"] for r in res["seeds"]]
    assert s["mean"] == pytest.approx(numpy.mean(rows))
    assert s["std"] == pytest.approx(numpy.std(rows, ddof=1))
    table = format_table(res)
    assert "test RMSE" in table and "±" in table


@pytest.mark.parametrize("lr_decay", [None, 0.5])
def test_test_ratings_never_influence_selection(lr_decay):
    """Scrambling the test part's values (positions kept, so the splits are the
    same) leaves every selection score and choice unchanged; only test metrics move."""
    r = _small(1)
    kw = dict(seeds=(0,), lams=(1.0, 100.0), hidden=12, epochs=15, patience=4, batch_size=16,
              lr_decay=lr_decay, lr_decay_patience=2)
    a = evaluate_autorec(r, **kw)
    n_test = int(round(0.1 * r.nnz))
    test_mask = numpy.zeros(r.nnz, dtype=bool)
    test_mask[numpy.random.default_rng(0).choice(r.nnz, size=n_test, replace=False)] = True
    _, test = random_split(r, 0.1, 0)
    assert test_mask.sum() == test.nnz
    m = r.matrix.copy()
    m.data[test_mask] = 6 - m.data[test_mask]                # flip test ratings
    b = evaluate_autorec(r.with_matrix(m), **kw)
    assert a["seeds"][0]["selection"] == [
        {**s, "seconds": s2["seconds"]} for s, s2 in zip(b["seeds"][0]["selection"],
                                                         a["seeds"][0]["selection"])]
    assert a["seeds"][0]["chosen_lam"] == b["seeds"][0]["chosen_lam"]
    assert a["seeds"][0]["refit_lr_drops"] == b["seeds"][0]["refit_lr_drops"]
    assert a["seeds"][0]["test_rmse"] != b["seeds"][0]["test_rmse"]


def test_no_refit_lbfgs_user_variant_and_stack():
    r = _small(2)
    res = evaluate_autorec(r, seeds=(0,), lams=(1.0,), hidden=(8, 4, 8), variant="user",
                           optimizer="lbfgs", epochs=10, patience=3, refit=False,
                           dtype="float64")
    row = res["seeds"][0]
    assert res["protocol"]["model"]["hidden"] == [8, 4, 8]
    assert "none" in res["protocol"]["refit"]
    # L-BFGS has no learning rate: the default decay is off, and the record says so
    assert res["protocol"]["model"]["lr_decay"] is None
    assert res["protocol"]["lr_schedule"] == "constant"
    assert row["refit_lr_drops"] is None and row["selection"][0]["lr_drops"] == []
    assert row["selection"][0]["epochs_run"] <= 10 and numpy.isfinite(row["test_rmse"])


def test_bad_arguments():
    with pytest.raises(ValueError, match="lams"):
        evaluate_autorec(_small(), lams=())
    with pytest.raises(ValueError, match="seeds"):
        evaluate_autorec(_small(), seeds=())
    # model settings fail before any training (these would take minutes otherwise)
    with pytest.raises(ValueError, match=r"lr_decay must be None or a factor in \(0, 1\)"):
        evaluate_autorec(_small(), lr_decay=1.5)
    with pytest.raises(ValueError, match="lr_decay_patience"):
        evaluate_autorec(_small(), lr_decay_patience=0)


def test_refit_replays_the_chosen_runs_learning_rate_cuts(monkeypatch):
    """Selection records where each run cut its learning rate; the refit (no
    validation) cuts at the chosen run's epochs before its best one, and the
    JSON says so."""
    from fastnn.recsys.autorec import AutoRec
    fits = []
    real_fit = AutoRec.fit

    def fit(self, train, validation=None, **kw):
        history = real_fit(self, train, validation=validation, **kw)
        fits.append({"validation": validation is not None, "lam": self.lam,
                     "lr_drops": kw.get("lr_drops"), "lr": list(history["learning_rate"])})
        return history

    monkeypatch.setattr(AutoRec, "fit", fit)
    res = evaluate_autorec(_small(4), seeds=(0, 1), lams=(0.1, 10.0), hidden=16, epochs=40,
                           patience=8, batch_size=16, learning_rate=3e-2, lr_decay=0.5,
                           lr_decay_patience=2)
    assert res["protocol"]["model"]["lr_decay"] == 0.5
    assert res["protocol"]["model"]["lr_decay_patience"] == 2
    assert "x0.5 after every 2 epochs" in res["protocol"]["lr_schedule"]
    assert "learning-rate cuts" in res["protocol"]["refit"]
    refits = [f for f in fits if not f["validation"]]
    assert len(refits) == 2 and len(fits) == 6
    replayed = 0
    for row, refit in zip(res["seeds"], refits):
        chosen = next(s for s in row["selection"] if s["lam"] == row["chosen_lam"])
        expected = [e for e in chosen["lr_drops"] if e < row["chosen_epochs"]]
        assert row["refit_lr_drops"] == expected == refit["lr_drops"]
        assert refit["lam"] == row["chosen_lam"] and len(refit["lr"]) == row["chosen_epochs"]
        rates = [3e-2 * 0.5 ** sum(d <= e for d in expected) for e in range(len(refit["lr"]))]
        numpy.testing.assert_allclose(refit["lr"], rates, rtol=1e-12)
        replayed += len(expected)
    assert replayed > 0                              # some cut was really replayed


def test_constant_learning_rate_is_recorded():
    res = evaluate_autorec(_small(), seeds=(0,), lams=(1.0,), hidden=8, epochs=6, patience=3,
                           batch_size=16, lr_decay=None)
    assert res["protocol"]["lr_schedule"] == "constant"
    assert res["protocol"]["model"]["lr_decay"] is None
    assert res["seeds"][0]["selection"][0]["lr_drops"] == []
    assert res["seeds"][0]["refit_lr_drops"] == []


def _ml100k():
    root = os.environ.get("FASTNN_DATA")
    candidates = ([Path(root) / "ml-100k" / "u.data"] if root else []) + \
        [Path.home() / ".cache" / "fastnn-data" / "ml-100k" / "u.data"]
    for path in candidates:
        if path.is_file():
            return path
    pytest.skip("MovieLens-100K u.data not found in $FASTNN_DATA/ml-100k or "
                "~/.cache/fastnn-data/ml-100k; fetch it with: bash ../shared/data/fetch.sh")


#: The issue's target for a single I-AutoRec (k=500) under this protocol. The
#: defaults (Adam lr 1e-2 halved after 5 epochs without a new best validation
#: RMSE, the cuts replayed in the refit) measure 0.8782 +- 0.0065
#: (bench/RESULTS.md, AutoRec quality); before the decay they measured 0.8837.
TARGET_RMSE = 0.880
#: What the test guards: the target itself, 0.0018 above the measured mean (room
#: for BLAS, thread-count and platform differences in float32).
GUARD_RMSE = TARGET_RMSE


@pytest.mark.slow
def test_ml100k_i_autorec_quality():
    """The documented protocol (bench/RESULTS.md, AutoRec quality) on real
    MovieLens-100K with the defaults of ``evaluate_autorec``: 5 seeds, 90/10
    random splits, lambda and epochs chosen on a 10% validation part carved
    from training (the learning-rate cuts too), refit on train+validation
    replaying them, single I-AutoRec k=500. About 2.5 minutes of one core
    (measured: 318 s wall, 135 s user, under nice on the loaded 2-core box)."""
    ratings = load_ratings(_ml100k())
    start = time.perf_counter()
    res = evaluate_autorec(ratings)
    elapsed = time.perf_counter() - start
    mean = res["summary"]["test_rmse"]["mean"]
    per_seed = [round(r["test_rmse"], 4) for r in res["seeds"]]
    assert res["protocol"]["model"]["lr_decay"] is not None
    assert all(r["refit_lr_drops"] for r in res["seeds"])   # the refits did replay cuts
    assert mean <= GUARD_RMSE, (f"mean test RMSE {mean:.4f} (per seed {per_seed}, "
                                f"{elapsed:.0f} s); target {TARGET_RMSE}")


def test_refit_average_of_several_models():
    r = _small(3)
    kw = dict(seeds=(0,), lams=(10.0,), hidden=8, epochs=20, patience=5, batch_size=16,
              learning_rate=1e-2)
    one = evaluate_autorec(r, **kw)
    two = evaluate_autorec(r, n_models=2, **kw)
    assert two["protocol"]["n_models"] == 2 and "averaged over 2" in two["protocol"]["refit"]
    assert two["seeds"][0]["selection"] == [
        {**s, "seconds": s1["seconds"]} for s, s1 in zip(one["seeds"][0]["selection"],
                                                         two["seeds"][0]["selection"])]
    assert two["seeds"][0]["test_rmse"] != one["seeds"][0]["test_rmse"]
    assert numpy.isfinite(two["seeds"][0]["ndcg@10"])
    with pytest.raises(ValueError, match="n_models"):
        evaluate_autorec(r, n_models=2, refit=False, **kw)
