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


@pytest.mark.parametrize("kwargs,message", [
    ({"hidden": 500.0}, "hidden must be a positive integer or a sequence"),
    ({"hidden": "500"}, "hidden must be"),
    ({"hidden": (50, 0, 50)}, "hidden must be"),
    ({"hidden": ()}, "hidden must be"),
    ({"hidden": True}, "hidden must be"),
    ({"lam": float("nan")}, "lam must be a finite number >= 0"),
    ({"lam": -1}, "lam must be"),
    ({"learning_rate": 0}, "learning_rate must be a finite number > 0"),
    ({"learning_rate": float("inf")}, "learning_rate must be"),
    ({"batch_size": 2.5}, "batch_size must be an integer >= 1"),
    ({"batch_size": 0}, "batch_size must be"),
    ({"input_dropout": 1.0}, r"input_dropout must be in \[0, 1\)"),
    ({"activation": "foo"}, "unknown activation 'foo'"),
    ({"optimizer": "foo"}, "unknown optimizer 'foo'; valid names are"),
    ({"dtype": "int32"}, "dtype must be float32 or float64"),
    ({"seed": 1.5}, "seed must be an integer or None"),
])
def test_bad_settings_are_refused_when_the_model_is_made(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AutoRec(**kwargs)


def test_numpy_integers_are_settings_too():
    model = AutoRec(hidden=numpy.int64(20), batch_size=numpy.int32(64), seed=numpy.int64(3))
    assert model.hidden == (20,) and model.batch_size == 64
    assert AutoRec(hidden=[numpy.int64(8), 4, 8]).hidden == (8, 4, 8)
    assert type(model.seed) is int  # saved as JSON


def test_numpy_settings_survive_save_and_load(rng, tmp_path):
    ratings = _ratings(rng)
    model = AutoRec(hidden=numpy.int64(6), lam=numpy.float32(0.5), seed=numpy.int64(3),
                    batch_size=numpy.int64(8))
    model.fit(ratings, epochs=1, verbose=0)
    model.save(tmp_path / "m")
    back = AutoRec.load(tmp_path / "m")
    assert (back.hidden, back.lam, back.seed, back.batch_size) == ((6,), 0.5, 3, 8)


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


def test_cold_user_gets_item_mean_and_both_cold_get_global_mean(rng):
    ratings = _ratings(rng, density=0.3)
    m = ratings.matrix.tolil()
    m[7, :] = 0
    m[:, 2] = 0
    train = scipy.sparse.csr_matrix(m)
    train.eliminate_zeros()
    for variant in ("item", "user"):
        model = AutoRec(hidden=4, variant=variant, seed=0)
        model.fit(train, epochs=2, verbose=0)
        col = train.getcol(5)
        assert model.predict([7], [5])[0] == pytest.approx(col.data.mean())
        assert model.predict([7], [2])[0] == pytest.approx(train.data.mean())


@pytest.mark.parametrize("variant", ["item", "user"])
@pytest.mark.parametrize("hidden", [7, (6, 4, 6)])
def test_predict_equals_the_dense_reconstruction(variant, hidden, rng):
    """predict() on pairs in any order, repeated pairs included, equals
    score_matrix() (the whole reconstruction by dense products) at those pairs."""
    ratings = _ratings(rng, density=0.3)
    model = AutoRec(hidden=hidden, variant=variant, lam=1.0, seed=2, batch_size=8, clip=False)
    model.fit(ratings, epochs=3, verbose=0)
    seen_u = numpy.flatnonzero(numpy.diff(ratings.matrix.indptr))
    seen_i = numpy.unique(ratings.matrix.indices)
    users = rng.choice(seen_u, 200)
    items = rng.choice(seen_i, 200)
    users[-5:], items[-5:] = users[0], items[0]  # repeated pairs
    dense = model.score_matrix()
    numpy.testing.assert_allclose(model.predict(users, items), dense[users, items],
                                  rtol=1e-5, atol=1e-5)
    assert model.predict([], []).shape == (0,)


def test_predictions_are_clipped_unless_clip_false(rng):
    ratings = _ratings(rng, density=0.4)
    model = AutoRec(hidden=4, seed=0, clip=True)
    model.fit(ratings, epochs=1, verbose=0)
    model.c[...] = 100.0                         # push every output far above 5
    u, i, _ = ratings.to_triples()
    assert (model.predict(u, i) == 5.0).all()
    model.clip = False
    assert (model.predict(u, i) > 50).all()


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_deeper_stack_and_lbfgs_train(rng, optimizer):
    ratings = _ratings(rng, density=0.4)
    model = AutoRec(hidden=(8, 4, 8), lam=0.1, seed=0, batch_size=8, optimizer=optimizer,
                    learning_rate=1e-2, dtype="float64" if optimizer == "lbfgs" else "float32")
    history = model.fit(ratings, validation=ratings, epochs=25, patience=50, verbose=0)
    assert history["rmse"][-1] < history["rmse"][0]
    assert min(history["val_rmse"]) < history["val_rmse"][0]
    assert len(history["loss"]) <= 25
    assert model.best_epoch == int(numpy.argmin(history["val_rmse"])) + 1


def test_lbfgs_early_stopping_restores_best(rng):
    ratings = _ratings(rng, density=0.3)
    model = AutoRec(hidden=6, lam=0.0, seed=0, optimizer="lbfgs", dtype="float64")
    history = model.fit(ratings, validation=ratings, epochs=40, patience=3, verbose=0)
    assert model.evaluate(ratings)[0] == pytest.approx(min(history["val_rmse"]), rel=1e-9)


def test_predict_rejects_out_of_range_and_mismatched_indices(rng):
    model = AutoRec(hidden=2, seed=0)
    with pytest.raises(RuntimeError, match="not fitted"):
        model.predict([0], [0])
    ratings = _ratings(rng)
    model.fit(ratings, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"user indices must lie in \[0, 40\)"):
        model.predict([-1], [0])
    with pytest.raises(ValueError, match=r"user indices must lie in \[0, 40\)"):
        model.predict([40], [0])
    with pytest.raises(ValueError, match="same length"):
        model.predict([0, 1], [0])
    with pytest.raises(ValueError, match="shape"):
        model.evaluate(scipy.sparse.csr_matrix((3, 3)))
    inf = scipy.sparse.csr_matrix(numpy.array([[1.0, numpy.inf], [0, 2.0]]))
    with pytest.raises(ValueError, match="infinite"):
        AutoRec(hidden=2).fit(inf, verbose=0)


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_fused_step_equals_layer_by_layer_training(dropout, rng, monkeypatch):
    """AutoRec's one-kernel Adam step trains to the same weights as the
    layer-by-layer path (forward, backprop, L2, Adam) in float64."""
    ratings = _ratings(rng, density=0.3)
    from fastnn.recsys import sparse_ops
    calls = []
    real_step = sparse_ops.autorec_adam_step
    monkeypatch.setattr(sparse_ops, "autorec_adam_step",
                        lambda *a, **k: calls.append(1) or real_step(*a, **k))
    weights = []
    for fused in (True, False):
        model = AutoRec(hidden=6, lam=2.0, input_dropout=dropout, dtype="float64", seed=3,
                        batch_size=7)
        if not fused:
            model._fused_adam_applies = lambda: False
        model.fit(ratings, epochs=3, verbose=0)
        weights.append(model.get_weights())
        assert bool(calls) == fused
        calls.clear()
    for a, b in zip(*weights):
        numpy.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def _plateau_cuts(val_rmse, patience):
    """The documented lr_decay rule, from a validation curve: after epoch
    count e, cut when e - max(best epoch, last cut) >= patience."""
    best, best_epoch, cuts = numpy.inf, 0, []
    for e, v in enumerate(val_rmse, start=1):
        if v < best - 1e-6:
            best, best_epoch = v, e
        if e - max(best_epoch, cuts[-1] if cuts else 0) >= patience:
            cuts.append(e)
    return cuts


def _recording_lr(monkeypatch):
    """Patch the fused Adam step to record the learning rate it is given."""
    from fastnn.recsys import sparse_ops
    seen = []
    real_step = sparse_ops.autorec_adam_step

    def step(X, W, b, Vt, c, state, lr, *args, **kwargs):
        seen.append(lr)
        return real_step(X, W, b, Vt, c, state, lr, *args, **kwargs)

    monkeypatch.setattr(sparse_ops, "autorec_adam_step", step)
    return seen


def test_lr_decay_cuts_the_rate_the_step_uses_after_a_plateau(rng, monkeypatch):
    from fastnn.recsys import validation_split
    part, val = validation_split(_ratings(rng, density=0.4), 0.2, seed=0)
    seen = _recording_lr(monkeypatch)
    model = AutoRec(hidden=8, lam=0.1, learning_rate=3e-2, batch_size=8, lr_decay=0.5,
                    lr_decay_patience=2, seed=0)
    history = model.fit(part, validation=val, epochs=40, patience=12, verbose=0)
    n_epochs = len(history["val_rmse"])
    assert model.lr_drops == _plateau_cuts(history["val_rmse"], 2)
    assert len(model.lr_drops) >= 2                  # the rule did fire here
    expected = [3e-2 * 0.5 ** sum(d <= e for d in model.lr_drops) for e in range(n_epochs)]
    numpy.testing.assert_allclose(history["learning_rate"], expected, rtol=1e-12)
    steps = len(seen) // n_epochs                     # the kernel ran at those rates
    assert steps * n_epochs == len(seen)
    numpy.testing.assert_allclose(seen, numpy.repeat(expected, steps), rtol=1e-12)


def test_lr_drops_replay_equals_the_same_step_schedule(rng):
    """A refit's replay (lr_drops, no validation) trains exactly like an Adam
    whose learning rate steps down at those epochs; and differs from constant."""
    from fastnn.optimizers import Adam, PiecewiseConstantDecay
    ratings = _ratings(rng, density=0.4)
    kw = dict(hidden=6, lam=0.5, batch_size=8, seed=2)
    replay = AutoRec(learning_rate=1e-2, lr_decay=0.5, **kw)
    history = replay.fit(ratings, epochs=5, lr_drops=[2, 4], verbose=0)
    assert replay.lr_drops == [2, 4]
    assert history["learning_rate"] == [1e-2, 1e-2, 5e-3, 5e-3, 2.5e-3]
    steps = -(-ratings.n_items // 8)                  # I-AutoRec: one sample per item
    schedule = PiecewiseConstantDecay([2 * steps - 1, 4 * steps - 1], [1e-2, 5e-3, 2.5e-3])
    stepped = AutoRec(optimizer=Adam(learning_rate=schedule), **kw)
    stepped.fit(ratings, epochs=5, verbose=0)
    constant = AutoRec(learning_rate=1e-2, **kw)
    constant.fit(ratings, epochs=5, verbose=0)
    for a, b, c in zip(replay.get_weights(), stepped.get_weights(), constant.get_weights()):
        numpy.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert any(not numpy.allclose(a, c) for a, c in zip(replay.get_weights(),
                                                        constant.get_weights()))
    again = replay.fit(ratings, epochs=1, lr_drops=[], verbose=0)   # the cut rate persists
    assert again["learning_rate"] == [2.5e-3] and replay.lr_drops == []


def test_lr_decay_bad_arguments(rng):
    from fastnn.optimizers import Adam, ExponentialDecay
    for factor in (0, 1, 1.5, -0.5):
        with pytest.raises(ValueError, match=r"lr_decay must be None or a factor in \(0, 1\)"):
            AutoRec(lr_decay=factor)
    for patience in (0, -1, 2.5):
        with pytest.raises(ValueError, match="lr_decay_patience must be an integer >= 1"):
            AutoRec(lr_decay=0.5, lr_decay_patience=patience)
    with pytest.raises(ValueError, match="L-BFGS has no learning rate"):
        AutoRec(lr_decay=0.5, optimizer="lbfgs")
    ratings = _ratings(rng)
    with pytest.raises(ValueError, match="give validation, or lr_drops"):
        AutoRec(hidden=2, lr_decay=0.5).fit(ratings, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="lr_decay=None"):
        AutoRec(hidden=2).fit(ratings, epochs=1, verbose=0, lr_drops=[1])
    for drops in ([0], [1.5], [-3]):
        with pytest.raises(ValueError, match=r"lr_drops must be epoch counts"):
            AutoRec(hidden=2, lr_decay=0.5).fit(ratings, epochs=1, verbose=0, lr_drops=drops)
    scheduled = Adam(learning_rate=ExponentialDecay(1e-2, 10, 0.9))
    with pytest.raises(ValueError, match="learning-rate schedule"):
        AutoRec(hidden=2, lr_decay=0.5, optimizer=scheduled).fit(ratings, validation=ratings,
                                                                 epochs=1, verbose=0)


class TestIndexArguments:
    """Indices are refused, never truncated or counted from the end."""

    @pytest.fixture(scope="class")
    def model(self):
        ratings = _ratings(numpy.random.default_rng(5), density=0.4)
        model = AutoRec(hidden=4, seed=0, batch_size=8)
        model.fit(ratings, epochs=2, verbose=0)
        return model

    @pytest.mark.parametrize("users,items,message", [
        ([1.7], [2.9], "user indices must be integer indices, got dtype float64"),
        ([1], [2.0], "item indices must be integer indices, got dtype float64"),
        (["1"], ["2"], "user indices must be integer indices, got dtype <U1"),
        ([True], [1], "user indices must be integer indices, got dtype bool"),
        ([-1], [0], r"user indices must lie in \[0, 40\)"),
        ([0], [-1], r"item indices must lie in \[0, 30\)")])
    def test_predict(self, model, users, items, message):
        with pytest.raises(ValueError, match=message):
            model.predict(users, items)

    @pytest.mark.parametrize("users", [[-1], [40], [0.5]])
    def test_score_matrix_and_recommend(self, model, users):
        with pytest.raises(ValueError, match="user indices must"):
            model.score_matrix(users)
        with pytest.raises(ValueError, match="user indices must"):
            model.recommend(users)

    @pytest.mark.parametrize("epochs", [-1, 2.0, True, None])
    def test_fit_epochs(self, epochs):
        with pytest.raises(ValueError, match="epochs must be a non-negative integer"):
            AutoRec(hidden=4).fit(_ratings(numpy.random.default_rng(0)), epochs=epochs, verbose=0)


@pytest.mark.parametrize("variant", ["user", "item"])
def test_fit_leaves_the_callers_matrix_as_it_was(variant):
    rng = numpy.random.default_rng(3)
    dense = (rng.random((12, 9)) < 0.5) * rng.integers(1, 6, (12, 9))
    m = scipy.sparse.csr_matrix(dense.astype(numpy.float32))
    for i in range(m.shape[0]):  # store every row's entries in reverse (unsorted) order
        lo, hi = m.indptr[i], m.indptr[i + 1]
        m.indices[lo:hi] = m.indices[lo:hi][::-1].copy()
        m.data[lo:hi] = m.data[lo:hi][::-1].copy()
    m.has_sorted_indices = False
    before = m.indptr.copy(), m.indices.copy(), m.data.copy()
    AutoRec(hidden=3, variant=variant, seed=0).fit(m, epochs=1, verbose=0)
    for a, b in zip((m.indptr, m.indices, m.data), before):
        numpy.testing.assert_array_equal(a, b)
