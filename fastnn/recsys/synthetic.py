"""Synthetic explicit ratings for demos and fast tests: a low-rank preference
model observed through a long-tailed (Zipf-like) item popularity. Holds data
generation only; nothing here is real data, and ``Ratings.source`` says so.
"""
import numpy

from .data import Ratings


def synthetic_ratings(n_users=200, n_items=300, density=0.05, seed=0, rating_range=(1, 5),
                      rank=5, noise=0.3):
    """A ``Ratings`` of about ``density * n_users * n_items`` integer ratings.

    Each user and item gets a ``rank``-dimensional latent vector; the true
    preference ``u . v`` (plus user and item biases, plus Gaussian ``noise``)
    is mapped onto the integer grid of ``rating_range``. Which entries are
    observed follows item popularity ``(rank_of_item + 3) ** -1.1`` (a long tail:
    a few items get many ratings, most get few) and a milder user activity
    weight; every user rates at least one item. ``source`` is
    ``"synthetic(seed=...)"`` so results are never mistaken for MovieLens.

    Parameters
    ----------
    n_users, n_items : int
        The matrix's shape (defaults 200 and 300).
    density : float, default 0.05
        The fraction of entries observed, in (0, 1].
    seed : int, default 0
        Seeds everything.
    rating_range : tuple of int, default (1, 5)
        The integer grid of ratings.
    rank : int, default 5
        The latent dimension.
    noise : float, default 0.3
        The standard deviation of the Gaussian noise.

    Returns
    -------
    Ratings
    """
    if n_users < 1 or n_items < 1:
        raise ValueError(f"n_users and n_items must be >= 1, got {n_users}, {n_items}")
    if not 0 < density <= 1:
        raise ValueError(f"density must be in (0, 1], got {density}")
    lo, hi = int(rating_range[0]), int(rating_range[1])
    if not lo < hi:
        raise ValueError(f"rating_range must be (low, high) integers with low < high, "
                         f"got {rating_range}")
    rng = numpy.random.default_rng(seed)
    n_obs = max(n_users, int(round(density * n_users * n_items)))
    n_obs = min(n_obs, n_users * n_items)

    item_pop = (rng.permutation(n_items) + 3.0) ** -1.1
    user_act = rng.lognormal(0.0, 0.5, n_users)
    # Sample entries without replacement with probability ~ user_act * item_pop
    # (Gumbel top-k over all cells; fine for demo-sized matrices).
    logits = numpy.log(user_act)[:, None] + numpy.log(item_pop)[None, :]
    keys = logits + rng.gumbel(size=logits.shape)
    flat = numpy.argpartition(-keys.ravel(), n_obs - 1)[:n_obs]
    mask = numpy.zeros(n_users * n_items, dtype=bool)
    mask[flat] = True
    mask = mask.reshape(n_users, n_items)
    empty = ~mask.any(axis=1)
    mask[numpy.flatnonzero(empty), numpy.argmax(keys[empty], axis=1)] = True

    U = rng.standard_normal((n_users, rank)) / numpy.sqrt(rank)
    V = rng.standard_normal((n_items, rank)) / numpy.sqrt(rank)
    users, items = numpy.nonzero(mask)
    pref = ((U[users] * V[items]).sum(axis=1) + 0.3 * rng.standard_normal(n_users)[users]
            + 0.5 * rng.standard_normal(n_items)[items] + noise * rng.standard_normal(users.size))
    # Standardize, then spread over the rating grid around its upper-middle.
    z = (pref - pref.mean()) / (pref.std() + 1e-12)
    mid = lo + 0.6 * (hi - lo)
    values = numpy.clip(numpy.rint(mid + z * (hi - lo) / 4.0), lo, hi)
    return Ratings.from_triples(users, items, values, rating_range=(lo, hi),
                                user_ids=numpy.arange(n_users), item_ids=numpy.arange(n_items),
                                source=f"synthetic(seed={seed})")
