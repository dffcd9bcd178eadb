import numpy
import pytest
import scipy.sparse

from fastnn.recsys import Ratings
from fastnn.recsys.autorec import AutoRec


def _ratings(rng, n_users=40, n_items=30, density=0.2):
    mask = rng.random((n_users, n_items)) < density
    u, i = numpy.nonzero(mask)
    r = rng.integers(1, 6, u.size).astype(float)
    return Ratings.from_triples(u, i, r, rating_range=(1, 5))


@pytest.mark.parametrize("variant", ["item", "user"])
@pytest.mark.parametrize("hidden", [7, (6, 4, 6)])
def test_sparse_gradients_equal_dense_masked(variant, hidden, rng):
    """Loss and gradients of the sparse path equal the dense masked formulation."""
    ratings = _ratings(rng)
    model = AutoRec(hidden=hidden, variant=variant, lam=0.7, dtype="float64", seed=1)
    X = model._samples(ratings.matrix)
    model.build(X.shape[1])
    model._alloc_grads()
    data_loss, reg = model._loss_and_grads(X, X.shape[0], 1.0)
    sparse_grads = [g.copy() for _, _, g, _ in model._params()]

    dense = X.toarray()
    mask = numpy.zeros_like(dense, dtype=bool)
    mask[X.nonzero()] = True
    params = [p.copy() for _, p, _, _ in model._params()]

    def objective(ps):
        W, b = ps[0], ps[1]
        h = 1 / (1 + numpy.exp(-(dense @ W + b)))
        for k in range(len(model.middle)):
            K, c = ps[2 + 2 * k], ps[3 + 2 * k]
            h = 1 / (1 + numpy.exp(-(h @ K + c)))
        Vt, c = ps[-2], ps[-1]
        out = h @ Vt.T + c
        loss = (((out - dense) ** 2) * mask).sum()
        return loss + 0.35 * sum((p ** 2).sum() for p in ps[0::2])

    assert data_loss + reg == pytest.approx(objective(params), rel=1e-10)
    eps = 1e-6
    for j, (p, g) in enumerate(zip(params, sparse_grads)):
        v = rng.standard_normal(p.shape)
        plus = [q.copy() for q in params]
        minus = [q.copy() for q in params]
        plus[j] += eps * v
        minus[j] -= eps * v
        numeric = (objective(plus) - objective(minus)) / (2 * eps)
        assert numeric == pytest.approx((g * v).sum(), rel=1e-5)


def test_fit_predict_and_rules(rng):
    ratings = _ratings(rng, density=0.4)
    model = AutoRec(hidden=8, lam=1.0, seed=0, batch_size=8)
    history = model.fit(ratings, validation=ratings, epochs=30, patience=50, verbose=0)
    assert history["rmse"][-1] < history["rmse"][0]
    pred = model.predict([0, 1], [0, 1])
    assert pred.shape == (2,) and ((pred >= 1) & (pred <= 5)).all()
    with pytest.raises(ValueError, match=r"item indices must lie in \[0, 30\)"):
        model.predict([0], [30])
    rmse, mae = model.evaluate(ratings)
    assert 0 < mae <= rmse


def test_cold_items_get_user_mean(rng):
    ratings = _ratings(rng)
    m = ratings.matrix.tolil()
    m[:, 3] = 0
    train = scipy.sparse.csr_matrix(m)
    train.eliminate_zeros()
    model = AutoRec(hidden=4, seed=0)
    model.fit(train, epochs=2, verbose=0)
    row = train.getrow(5)
    assert model.predict([5], [3])[0] == pytest.approx(row.data.mean())


def test_bad_input(rng):
    with pytest.raises(ValueError, match="variant"):
        AutoRec(variant="both")
    with pytest.raises(TypeError, match="Ratings or a scipy.sparse"):
        AutoRec().fit(numpy.zeros((3, 3)))
    bad = scipy.sparse.csr_matrix(numpy.array([[1.0, numpy.nan], [0, 2.0]]))
    with pytest.raises(ValueError, match="NaN"):
        AutoRec(hidden=2).fit(bad, verbose=0)


def test_user_means_with_trailing_empty_users():
    """The cold-start fallback's user means are exact even when the last users
    have no training rating (a reduceat over indptr used to drop a rating)."""
    m = scipy.sparse.csr_matrix(numpy.array([[1.0, 0, 3], [2.0, 5, 0], [0, 0, 0], [0, 0, 0]]))
    model = AutoRec(hidden=2, seed=0)
    model.fit(m, epochs=1, verbose=0)
    numpy.testing.assert_allclose(model.user_mean[:2], [2.0, 3.5])
    assert numpy.isnan(model.user_mean[2:]).all()
    # a cold user on a warm item gets the item mean
    assert model.predict([3], [0])[0] == pytest.approx(1.5)
