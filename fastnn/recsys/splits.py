"""Train/test splits of a ``Ratings``: seeded random holdout, MovieLens
``u1``-``u5`` folds, per-user leave-k-out, and a validation part carved from
a training part. Holds splitting only; readers are in data.py.

The id-map rule: every part of a split shares the id maps and the shape of
the ratings it came from. A user or item that appears only in the test part
keeps its index and has an empty row/column in the training matrix; a model
sees it as cold (no ratings) and predicts from biases alone. Use
``unseen_in_train(train, test)`` to find or drop such entries.
"""
import numpy

from .data import Ratings, load_ratings
from .._types import Any, Optional, Tuple


def _rng(seed):
    return numpy.random.default_rng(seed)


def random_split(ratings: Ratings, test_frac: float = 0.1,
                 seed: int = 0) -> Tuple[Ratings, Ratings]:
    """``(train, test)``: each rating goes to test with probability ~``test_frac``
    (exactly ``round(test_frac * nnz)`` ratings, drawn uniformly, seeded).

    Parameters
    ----------
    ratings : Ratings
        All ratings.
    test_frac : float, default 0.1
        The fraction held out.
    seed : int, default 0
        Seeds the draw.

    Returns
    -------
    train, test : Ratings
        Same shape and id maps.
    """
    if not 0.0 <= test_frac < 1.0:
        raise ValueError(f"test_frac={test_frac}; expected a fraction in [0, 1)")
    n_test = int(round(test_frac * ratings.nnz))
    test = numpy.zeros(ratings.nnz, dtype=bool)
    test[_rng(seed).choice(ratings.nnz, size=n_test, replace=False)] = True
    return ratings.subset(~test), ratings.subset(test)


def leave_k_out(ratings: Ratings, k: int = 1, seed: int = 0, by: str = "random",
                min_train: int = 1) -> Tuple[Ratings, Ratings]:
    """``(train, test)``: per user, ``k`` ratings held out: the latest ones
    (``by="time"``, needs timestamps; ties broken by item index) or ``k`` drawn
    at random (``by="random"``, seeded). Users with fewer than
    ``k + min_train`` ratings keep all of them in train.

    Parameters
    ----------
    ratings : Ratings
        All ratings.
    k : int, default 1
        Ratings held out per user.
    seed : int, default 0
        Seeds the random draw.
    by : {"random", "time"}, default "random"
        Which ratings are held out.
    min_train : int, default 1
        Ratings a user must keep in train to have any held out.

    Returns
    -------
    train, test : Ratings
    """
    if k < 1:
        raise ValueError(f"k={k}; expected k >= 1")
    if by not in ("random", "time"):
        raise ValueError(f"by={by!r}; expected 'random' or 'time'")
    if by == "time" and ratings.timestamps is None:
        raise ValueError("by='time' needs timestamps, and these ratings have none")
    indptr = ratings.matrix.indptr
    counts = numpy.diff(indptr)
    rows = numpy.repeat(numpy.arange(ratings.n_users), counts)
    if by == "time":
        assert ratings.timestamps is not None  # for mypy: checked above
        key = ratings.timestamps.astype(numpy.float64)
    else:
        key = _rng(seed).random(ratings.nnz)
    # Sort each user's ratings by key (rows first): the last k of a row are held out.
    order = numpy.lexsort((ratings.matrix.indices, key, rows))
    rank_from_end = indptr[rows + 1] - 1 - numpy.arange(ratings.nnz)
    test = numpy.zeros(ratings.nnz, dtype=bool)
    eligible = counts[rows] >= k + min_train
    test[order] = (rank_from_end < k) & eligible
    return ratings.subset(~test), ratings.subset(test)


def validation_split(train: Ratings, val_frac: float = 0.1, seed: int = 0,
                     method: str = "random", k: int = 1) -> Tuple[Ratings, Ratings]:
    """``(train_part, validation)`` carved from a training part, by
    ``random_split`` (``method="random"``) or ``leave_k_out`` (``"leave_k_out"``).

    Parameters
    ----------
    train : Ratings
        The training part.
    val_frac : float, default 0.1
        The fraction held out (``method="random"``).
    seed : int, default 0
        Seeds the draw.
    method : {"random", "leave_k_out"}, default "random"
        How to split.
    k : int, default 1
        Ratings per user held out (``method="leave_k_out"``).

    Returns
    -------
    train_part, validation : Ratings
    """
    if method == "random":
        return random_split(train, val_frac, seed)
    if method == "leave_k_out":
        return leave_k_out(train, k=k, seed=seed)
    raise ValueError(f"method={method!r}; expected 'random' or 'leave_k_out'")


def load_fold(base: Any, test: Any, format: Optional[str] = None,
              rating_range: Optional[Tuple[float, float]] = None,
              duplicates: str = "last") -> Tuple[Ratings, Ratings]:
    """A predefined fold, e.g. MovieLens 100K ``u1.base``/``u1.test``:
    ``(train, test)`` sharing id maps built from the union of both files, so
    they have the same shape; ids only in ``test`` get empty training rows/columns.

    Parameters
    ----------
    base : str or os.PathLike
        The training file.
    test : str or os.PathLike
        The test file.
    format : str, optional
        As for ``load_ratings`` (default: detected).
    rating_range : tuple of float, optional
        ``(lo, hi)``; a rating outside it is an error.
    duplicates : {"last", "error"}, default "last"
        As for ``load_ratings``.

    Returns
    -------
    train, test : Ratings
    """
    a = load_ratings(base, format, rating_range, duplicates)
    b = load_ratings(test, format, rating_range, duplicates)
    user_ids = numpy.union1d(a.user_ids, b.user_ids)
    item_ids = numpy.union1d(a.item_ids, b.item_ids)
    lo = min(a.rating_range[0], b.rating_range[0])
    hi = max(a.rating_range[1], b.rating_range[1])
    parts = []
    for r in (a, b):
        u, i, v = r.to_triples()
        parts.append(Ratings.from_triples(
            r.user_ids[u], r.item_ids[i], v, r.timestamps,
            rating_range=rating_range or (lo, hi), user_ids=user_ids, item_ids=item_ids,
            source=r.source))
    return parts[0], parts[1]


def unseen_in_train(train, test):
    """Mask over ``test``'s entries (CSR order) whose user or item has no
    rating in ``train``."""
    if train.shape != test.shape:
        raise ValueError(f"train has shape {train.shape} and test {test.shape}; a split's "
                         f"parts share one shape")
    u, i, _ = test.to_triples()
    user_seen = numpy.diff(train.matrix.indptr) > 0
    item_seen = numpy.bincount(train.matrix.indices, minlength=train.n_items) > 0
    return ~(user_seen[u] & item_seen[i])
