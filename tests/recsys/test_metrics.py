"""RMSE/MAE and ranking metrics against hand-checked cases and brute force."""
import numpy as np
import pytest
import scipy.sparse as sp

from fastnn.recsys import mae, ranking_metrics, rmse
from fastnn.recsys import Ratings


def test_rmse_mae_hand_checked():
    test = sp.csr_matrix(np.array([[0, 4, 0], [2, 0, 5]], dtype=np.float32))
    pred = np.array([[9, 3, 9], [2, 0, 7]], dtype=np.float32)  # errors -1, 0, 2
    assert rmse(test, pred) == pytest.approx(np.sqrt(5 / 3))
    assert mae(test, pred) == pytest.approx(1.0)
    assert mae(test, pred, clip=(1, 5)) == pytest.approx(1 / 3)
    assert rmse(test, np.array([3, 2, 7])) == pytest.approx(np.sqrt(5 / 3))  # CSR order
    assert rmse(test, lambda u, i: pred[u, i]) == pytest.approx(np.sqrt(5 / 3))
    assert rmse(test, sp.csr_matrix(pred)) == pytest.approx(np.sqrt(5 / 3))
    with pytest.raises(ValueError, match="predictions have shape"):
        rmse(test, np.ones(4))


def brute_force(scores, train, test, k, threshold):
    train, test = train.toarray(), test.toarray()
    tr_mask = train != 0
    out = {"p": [], "r": [], "n": [], "h": []}
    for u in range(scores.shape[0]):
        rel = {i for i in range(test.shape[1]) if test[u, i] != 0
               and (threshold is None or test[u, i] >= threshold)}
        if not rel:
            continue
        cands = [i for i in range(scores.shape[1]) if not tr_mask[u, i]]
        ranked = sorted(cands, key=lambda i: (-scores[u, i], i))[:k]
        hits = [i in rel for i in ranked]
        dcg = sum(1 / np.log2(r + 2) for r, h in enumerate(hits) if h)
        idcg = sum(1 / np.log2(r + 2) for r in range(min(k, len(rel))))
        out["p"].append(sum(hits) / k)
        out["r"].append(sum(hits) / len(rel))
        out["n"].append(dcg / idcg)
        out["h"].append(float(any(hits)))
    return {key: np.mean(v) for key, v in out.items()}, len(out["p"])


def test_ranking_hand_checked():
    # user 0: trained on item 0; test: item 2 (5 stars, relevant), item 3 (2 stars)
    train = sp.csr_matrix(np.array([[5, 0, 0, 0], [0, 0, 0, 0]], dtype=np.float32))
    test = sp.csr_matrix(np.array([[0, 0, 5, 2], [0, 0, 0, 3]], dtype=np.float32))
    scores = np.array([[9.0, 1.0, 0.5, 3.0], [0, 0, 0, 0]])
    m = ranking_metrics(scores, train, test, k=2, threshold=4)
    # ranking without item 0: 3, 1 | 2 -> no hit in top 2; user 1 has no relevant item
    assert m == {"precision@2": 0.0, "recall@2": 0.0, "ndcg@2": 0.0, "hr@2": 0.0, "users": 1}
    m = ranking_metrics(scores, train, test, k=3, threshold=4)
    assert m["precision@3"] == pytest.approx(1 / 3)
    assert m["recall@3"] == 1.0 and m["hr@3"] == 1.0
    assert m["ndcg@3"] == pytest.approx(1 / np.log2(4))
    m = ranking_metrics(scores, train, test, k=1, threshold=None)  # every test item relevant
    # user 0: item 3 ranks first (relevant); user 1: all tie, item 0 wins by index (not relevant)
    assert m["users"] == 2 and m["precision@1"] == pytest.approx(0.5)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("k", [1, 3, 10])
@pytest.mark.parametrize("threshold", [None, 4.0])
def test_ranking_matches_brute_force(seed, k, threshold):
    rng = np.random.default_rng(seed)
    n, m = 12, 15
    dense = rng.integers(1, 6, (n, m)) * (rng.random((n, m)) < 0.4)
    split = rng.random((n, m)) < 0.3
    train = sp.csr_matrix((dense * ~split).astype(np.float32))
    test = sp.csr_matrix((dense * split).astype(np.float32))
    scores = rng.integers(0, 4, (n, m)).astype(float)  # many ties
    got = ranking_metrics(scores, train, test, k=k, threshold=threshold, block=5)
    want, users = brute_force(scores, train, test, k, threshold)
    assert got["users"] == users
    for key, name in zip("prnh", ["precision", "recall", "ndcg", "hr"]):
        assert got[f"{name}@{k}"] == pytest.approx(want[key])
    got2 = ranking_metrics(lambda u: scores[u], train, test, k=k, threshold=threshold)
    assert got2 == pytest.approx(got)


def test_ratings_objects_accepted():
    r = Ratings.from_triples([1, 2], [1, 2], [3.0, 5.0])
    assert rmse(r, np.array([3.0, 4.0])) == pytest.approx(np.sqrt(0.5))
