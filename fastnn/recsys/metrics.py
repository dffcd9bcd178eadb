"""Evaluation of rating predictions: RMSE and MAE over a test set's observed
entries, and top-K ranking metrics (Precision, Recall, NDCG, HR) with each
user's training items excluded from the ranking. Holds metrics only.

Predictions may be given as
* a dense array (n_users x n_items) of scores,
* a scipy sparse matrix holding a value at every test position,
* an array of length ``test.nnz`` aligned with the test matrix's CSR order,
* a callable ``predict(users, items) -> values`` (index arrays) for RMSE/MAE,
  or ``score(users) -> (len(users), n_items)`` for ranking.

Ranking rules: a test item is relevant when its rating is ``>= threshold``
(``threshold=None``: every test item is relevant). Users with no relevant
test item are skipped (the count evaluated is returned). Items are ranked by
score, ties by lower item index; training items never appear in the top K.
Recall@K divides by the user's number of relevant items; NDCG uses binary
gains and log2 discounts; HR@K is 1 when any relevant item is in the top K.
"""
import numpy
import scipy.sparse

from .data import Ratings
from .._types import Any, Dict, Optional, Tuple

__all__ = ["rmse", "mae", "ranking_metrics", "precision_at_k", "recall_at_k",
           "ndcg_at_k", "hit_rate_at_k"]


def _csr(x, name):
    if isinstance(x, Ratings):
        return x.matrix
    if scipy.sparse.issparse(x):
        m = x.tocsr()
        m.sort_indices()
        return m
    raise TypeError(f"{name} must be a Ratings or a scipy sparse matrix, got {type(x).__name__}")


def _test_predictions(test, predictions):
    """(truth, predictions) aligned over the test entries, float64."""
    t = _csr(test, "test")
    rows = numpy.repeat(numpy.arange(t.shape[0]), numpy.diff(t.indptr))
    truth = t.data.astype(numpy.float64)
    if callable(predictions):
        p = numpy.asarray(predictions(rows, t.indices), dtype=numpy.float64).ravel()
    elif scipy.sparse.issparse(predictions):
        if predictions.shape != t.shape:
            raise ValueError(f"predictions have shape {predictions.shape}; expected {t.shape}")
        p = numpy.asarray(predictions.tocsr()[rows, t.indices], dtype=numpy.float64).ravel()
    else:
        p = numpy.asarray(predictions)
        if p.shape == t.shape:
            p = p[rows, t.indices].astype(numpy.float64)
        elif p.shape == (t.nnz,):
            p = p.astype(numpy.float64)
        else:
            raise ValueError(f"predictions have shape {p.shape}; expected {t.shape} (dense) "
                             f"or ({t.nnz},) (one per test rating)")
    if p.shape != truth.shape:
        raise ValueError(f"predict returned {p.shape[0]} values for {truth.shape[0]} ratings")
    if t.nnz == 0:
        raise ValueError("the test set holds no ratings")
    return truth, p


def _clip(p, clip):
    return p if clip is None else numpy.clip(p, clip[0], clip[1])


def rmse(test: Any, predictions: Any, clip: Optional[Tuple[float, float]] = None) -> float:
    """Root mean squared error over the test ratings; ``clip=(lo, hi)`` clips
    predictions first (e.g. to the rating range).

    Parameters
    ----------
    test : Ratings or scipy.sparse matrix
        The test ratings.
    predictions : array_like, scipy.sparse matrix or callable
        One prediction per test rating (CSR order), a matrix of the test's
        shape, or a function ``predict(users, items)`` (e.g. ``model.predict``).
    clip : tuple of float, optional
        ``(lo, hi)`` to clip the predictions to.

    Returns
    -------
    float
    """
    truth, p = _test_predictions(test, predictions)
    return float(numpy.sqrt(numpy.mean((_clip(p, clip) - truth) ** 2)))


def mae(test: Any, predictions: Any, clip: Optional[Tuple[float, float]] = None) -> float:
    """Mean absolute error over the test ratings.

    Parameters
    ----------
    test : Ratings or scipy.sparse matrix
        The test ratings.
    predictions : array_like, scipy.sparse matrix or callable
        One prediction per test rating (CSR order), a matrix of the test's
        shape, or a function ``predict(users, items)`` (e.g. ``model.predict``).
    clip : tuple of float, optional
        ``(lo, hi)`` to clip the predictions to.

    Returns
    -------
    float
    """
    truth, p = _test_predictions(test, predictions)
    return float(numpy.mean(numpy.abs(_clip(p, clip) - truth)))


def ranking_metrics(scores: Any, train: Any, test: Any, k: int = 10,
                    threshold: Optional[float] = 4.0, block: int = 1024) -> Dict[str, Any]:
    """Precision@K, Recall@K, NDCG@K and HR@K averaged over users with at least
    one relevant test item. Returns a dict with keys ``precision@k``,
    ``recall@k``, ``ndcg@k``, ``hr@k`` and ``users`` (how many were evaluated).

    ``scores``: dense (n_users x n_items), ``score(users) -> block of rows``,
    or a fitted model with ``score_matrix`` (an ``AutoRec``).

    Parameters
    ----------
    scores : array_like, callable or AutoRec
        Dense (n_users x n_items) scores, ``score(users) -> rows``, or a model
        with ``score_matrix``.
    train : Ratings or scipy.sparse matrix
        The training ratings (left out of each user's ranking).
    test : Ratings or scipy.sparse matrix
        The test ratings.
    k : int, default 10
        The cut-off.
    threshold : float or None, default 4.0
        A test rating at or above it is relevant (None: every test rating).
    block : int, default 1024
        Users scored at a time (bounds memory).

    Returns
    -------
    dict
    """
    tr, te = _csr(train, "train"), _csr(test, "test")
    if tr.shape != te.shape:
        raise ValueError(f"train has shape {tr.shape} and test {te.shape}; they must match")
    if k < 1:
        raise ValueError(f"k={k}; expected k >= 1")
    n_users, n_items = te.shape
    if hasattr(scores, "score_matrix"):
        scores = scores.score_matrix
    if not callable(scores):
        if not hasattr(scores, "__array__") and not isinstance(scores, (list, tuple)):
            raise TypeError(f"scores must be a dense (n_users x n_items) array, a function "
                            f"of user indices, or a model with score_matrix; got "
                            f"{type(scores).__name__}")
        dense = numpy.asarray(scores)
        if dense.shape != te.shape:
            raise ValueError(f"scores have shape {dense.shape}; expected {te.shape}")
        score_rows = dense.__getitem__
    else:
        score_rows = scores
    relevant = te.copy()
    relevant.data = (te.data >= threshold) if threshold is not None else numpy.ones(te.nnz, bool)
    relevant.eliminate_zeros()
    n_rel = numpy.diff(relevant.indptr)
    users = numpy.flatnonzero(n_rel > 0)
    discount = 1.0 / numpy.log2(numpy.arange(2, k + 2))
    ideal = numpy.cumsum(discount)
    sums = numpy.zeros(4)
    for start in range(0, len(users), block):
        u = users[start:start + block]
        s = numpy.array(score_rows(u), dtype=numpy.float64)
        if s.shape != (len(u), n_items):
            raise ValueError(f"scores for {len(u)} users have shape {s.shape}; expected "
                             f"({len(u)}, {n_items})")
        s[numpy.isnan(s)] = -numpy.inf
        seen = tr[u]
        s[numpy.repeat(numpy.arange(len(u)), numpy.diff(seen.indptr)), seen.indices] = numpy.nan
        # Stable sort of -score: ties go to the lower item index; NaN (training
        # items) sorts last, so they never enter the top K.
        top = numpy.argsort(-s, axis=1, kind="stable")[:, :k]
        rel = relevant[u].toarray().astype(bool)
        hits = numpy.take_along_axis(rel, top, axis=1)
        hits &= ~numpy.isnan(numpy.take_along_axis(s, top, axis=1))
        n_hit = hits.sum(axis=1)
        nr = n_rel[u]
        sums += [(n_hit / k).sum(), (n_hit / nr).sum(),
                 ((hits * discount[:hits.shape[1]]).sum(axis=1)
                  / ideal[numpy.minimum(nr, k) - 1]).sum(),
                 (n_hit > 0).sum()]
    n = max(len(users), 1)
    return {f"precision@{k}": float(sums[0] / n), f"recall@{k}": float(sums[1] / n),
            f"ndcg@{k}": float(sums[2] / n), f"hr@{k}": float(sums[3] / n),
            "users": int(len(users))}


def precision_at_k(scores: Any, train: Any, test: Any, k: int = 10,
                   threshold: Optional[float] = 4.0) -> float:
    """Precision@K averaged over users with a relevant test item (see ``ranking_metrics``).

    Parameters
    ----------
    scores : array_like, callable or AutoRec
        Dense (n_users x n_items) scores, ``score(users) -> rows``, or a model
        with ``score_matrix``.
    train : Ratings or scipy.sparse matrix
        The training ratings (left out of each user's ranking).
    test : Ratings or scipy.sparse matrix
        The test ratings.
    k : int, default 10
        The cut-off.
    threshold : float or None, default 4.0
        A test rating at or above it is relevant (None: every test rating).

    Returns
    -------
    float
    """
    return ranking_metrics(scores, train, test, k, threshold)[f"precision@{k}"]


def recall_at_k(scores: Any, train: Any, test: Any, k: int = 10,
                threshold: Optional[float] = 4.0) -> float:
    """Recall@K averaged over users with a relevant test item (see ``ranking_metrics``).

    Parameters
    ----------
    scores : array_like, callable or AutoRec
        Dense (n_users x n_items) scores, ``score(users) -> rows``, or a model
        with ``score_matrix``.
    train : Ratings or scipy.sparse matrix
        The training ratings (left out of each user's ranking).
    test : Ratings or scipy.sparse matrix
        The test ratings.
    k : int, default 10
        The cut-off.
    threshold : float or None, default 4.0
        A test rating at or above it is relevant (None: every test rating).

    Returns
    -------
    float
    """
    return ranking_metrics(scores, train, test, k, threshold)[f"recall@{k}"]


def ndcg_at_k(scores: Any, train: Any, test: Any, k: int = 10,
              threshold: Optional[float] = 4.0) -> float:
    """NDCG@K averaged over users with a relevant test item (see ``ranking_metrics``).

    Parameters
    ----------
    scores : array_like, callable or AutoRec
        Dense (n_users x n_items) scores, ``score(users) -> rows``, or a model
        with ``score_matrix``.
    train : Ratings or scipy.sparse matrix
        The training ratings (left out of each user's ranking).
    test : Ratings or scipy.sparse matrix
        The test ratings.
    k : int, default 10
        The cut-off.
    threshold : float or None, default 4.0
        A test rating at or above it is relevant (None: every test rating).

    Returns
    -------
    float
    """
    return ranking_metrics(scores, train, test, k, threshold)[f"ndcg@{k}"]


def hit_rate_at_k(scores: Any, train: Any, test: Any, k: int = 10,
                  threshold: Optional[float] = 4.0) -> float:
    """Hit rate@K averaged over users with a relevant test item (see ``ranking_metrics``).

    Parameters
    ----------
    scores : array_like, callable or AutoRec
        Dense (n_users x n_items) scores, ``score(users) -> rows``, or a model
        with ``score_matrix``.
    train : Ratings or scipy.sparse matrix
        The training ratings (left out of each user's ranking).
    test : Ratings or scipy.sparse matrix
        The test ratings.
    k : int, default 10
        The cut-off.
    threshold : float or None, default 4.0
        A test rating at or above it is relevant (None: every test rating).

    Returns
    -------
    float
    """
    return ranking_metrics(scores, train, test, k, threshold)[f"hr@{k}"]
