"""AutoRec.recommend, AutoRec.save / AutoRec.load: against brute-force
references, round trips that must be exact, and files that must be refused."""
import io
import json
import zipfile

import numpy
import pytest
import scipy.sparse

import fastnn
from fastnn.layers import Dense
from fastnn.recsys import Ratings
from fastnn.recsys.autorec import AutoRec
from fastnn.saving import ModelFileError


def _ratings(rng, n_users=40, n_items=30, density=0.2, cold_users=(), cold_items=()):
    mask = rng.random((n_users, n_items)) < density
    mask[list(cold_users), :] = False
    mask[:, list(cold_items)] = False
    u, i = numpy.nonzero(mask)
    r = rng.integers(1, 6, u.size).astype(float)
    # raw ids unlike the indices, to check the id maps travel with the model
    return Ratings.from_triples(1000 + u, 5000 + i, r, rating_range=(1, 5),
                                user_ids=1000 + numpy.arange(n_users),
                                item_ids=5000 + numpy.arange(n_items))


def _fitted(rng, variant="item", hidden=8, optimizer="adam", epochs=4, **kw):
    ratings = _ratings(rng, **kw)
    model = AutoRec(hidden=hidden, variant=variant, lam=0.5, optimizer=optimizer,
                    learning_rate=1e-2, batch_size=8, seed=3)
    model.fit(ratings, validation=ratings, epochs=epochs, verbose=0)
    return model, ratings


# ------------------------------------------------------------------ recommend
@pytest.mark.parametrize("variant", ["item", "user"])
def test_recommend_is_the_top_k_of_the_scores_without_training_items(variant, rng):
    model, ratings = _fitted(rng, variant)
    k = 7
    items, scores = model.recommend(numpy.arange(ratings.shape[0]), k=k)
    assert items.shape == scores.shape == (ratings.shape[0], k)
    full = model.score_matrix()
    seen = ratings.matrix.toarray() != 0
    for u in range(ratings.shape[0]):
        s = numpy.where(seen[u], -numpy.inf, full[u])
        ref = numpy.lexsort((numpy.arange(s.size), -s))[:k]
        numpy.testing.assert_array_equal(items[u], ref)
        numpy.testing.assert_allclose(scores[u], s[ref], rtol=1e-12)
        assert not seen[u, items[u]].any()
    one_items, one_scores = model.recommend(3, k=k)
    assert one_items.shape == (k,)
    numpy.testing.assert_array_equal(one_items, items[3])


def test_recommend_with_training_items_included_and_rows_running_out(rng):
    model, ratings = _fitted(rng, n_users=12, n_items=10, density=0.7)
    n_items = ratings.shape[1]
    items, scores = model.recommend(numpy.arange(12), k=n_items, exclude_train=False)
    full = model.score_matrix()
    for u in range(12):
        numpy.testing.assert_array_equal(numpy.sort(items[u]), numpy.arange(n_items))
        assert (numpy.diff(scores[u]) <= 0).all()
        numpy.testing.assert_allclose(scores[u], full[u, items[u]], rtol=1e-12)
    items, scores = model.recommend(numpy.arange(12), k=n_items)
    n_seen = numpy.diff(ratings.matrix.indptr)
    for u in range(12):
        left = n_items - n_seen[u]
        assert (items[u, left:] == -1).all() and numpy.isnan(scores[u, left:]).all()
        assert (items[u, :left] >= 0).all() and numpy.isfinite(scores[u, :left]).all()


def test_recommend_for_a_user_without_training_ratings_ranks_by_item_mean(rng):
    model, ratings = _fitted(rng, cold_users=(4,), cold_items=(2,))
    items, scores = model.recommend(4, k=ratings.shape[1])
    expected = numpy.where(numpy.isnan(model.item_mean), model.global_mean, model.item_mean)
    numpy.testing.assert_allclose(scores, expected[items], rtol=0, atol=0)
    assert (numpy.diff(scores) <= 0).all()
    assert scores[list(items).index(2)] == model.global_mean


def test_recommend_bad_arguments(rng):
    model, ratings = _fitted(rng)
    n_users, n_items = ratings.shape
    for k in (0, n_items + 1, 2.5, True):
        with pytest.raises(ValueError, match=rf"k must be an integer in \[1, {n_items}\]"):
            model.recommend(0, k=k)
    with pytest.raises(ValueError, match=rf"user indices must lie in \[0, {n_users}\)"):
        model.recommend([0, n_users], k=3)
    with pytest.raises(ValueError, match="user indices must be integer indices"):
        model.recommend([0.5], k=3)
    with pytest.raises(RuntimeError, match="not fitted"):
        AutoRec().recommend(0)


def test_repr_says_what_the_model_is(rng):
    assert repr(AutoRec(hidden=(20, 10, 20), lam=3)) == \
        "AutoRec(variant='item', hidden=[20, 10, 20], lam=3, optimizer='adam', not fitted)"
    model, _ = _fitted(rng)
    assert repr(model).endswith("fitted on 40 users x 30 items)")


# ------------------------------------------------------------- save and load
@pytest.mark.parametrize("variant,hidden,optimizer", [
    ("item", 8, "adam"), ("user", 8, "adam"), ("item", (8, 5, 8), "adam"),
    ("item", 6, "lbfgs"), ("user", 6, fastnn.optimizers.RMSprop(learning_rate=5e-3))])
def test_save_load_round_trip_is_exact(variant, hidden, optimizer, rng, tmp_path):
    model, ratings = _fitted(rng, variant, hidden, optimizer, cold_users=(1,), cold_items=(2,))
    path = tmp_path / "model.autorec"
    model.save(path)
    back = AutoRec.load(path)
    users, items = numpy.nonzero(numpy.ones(ratings.shape, bool))
    numpy.testing.assert_array_equal(back.predict(users, items), model.predict(users, items))
    for a, b in zip(back.recommend(numpy.arange(40), k=5), model.recommend(numpy.arange(40), k=5)):
        numpy.testing.assert_array_equal(a, b)
    numpy.testing.assert_array_equal(back.user_ids, ratings.user_ids)
    numpy.testing.assert_array_equal(back.item_ids, ratings.item_ids)
    assert back.history == model.history and back.best_epoch == model.best_epoch
    assert back.rating_range == model.rating_range == (1.0, 5.0)
    assert repr(back) == repr(model)


@pytest.mark.parametrize("variant,hidden", [("item", 8), ("user", (8, 5, 8))])
def test_training_resumes_from_a_loaded_model_as_if_never_saved(variant, hidden, rng, tmp_path):
    """The optimizer state travels too: two more epochs after load give the
    same weights, bit for bit, as two more epochs of the original."""
    model, ratings = _fitted(rng, variant, hidden)
    model.save(tmp_path / "m")
    back = AutoRec.load(tmp_path / "m")
    assert back.optimizer.iterations == model.optimizer.iterations > 0
    model.fit(ratings, epochs=2, verbose=0)
    back.fit(ratings, epochs=2, verbose=0)
    for a, b in zip(back.get_weights(), model.get_weights()):
        numpy.testing.assert_array_equal(a, b)


def test_a_model_fitted_on_a_plain_matrix_has_no_id_maps(rng, tmp_path):
    ratings = _ratings(rng)
    model = AutoRec(hidden=5, seed=0)
    model.fit(scipy.sparse.csr_matrix(ratings.matrix), epochs=1, verbose=0)
    assert model.user_ids is None
    model.save(tmp_path / "m")
    back = AutoRec.load(tmp_path / "m")
    assert back.user_ids is None and back.item_ids is None
    assert back.rating_range == model.rating_range


def test_save_needs_a_fitted_model(tmp_path):
    with pytest.raises(RuntimeError, match="not fitted"):
        AutoRec().save(tmp_path / "m")
    assert not (tmp_path / "m").exists()


def _rewrite(src, dst, change):
    """Copy the zip at src to dst with change(name, bytes) -> bytes or None (drop)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for name in zin.namelist():
            data = change(name, zin.read(name))
            if data is not None:
                zout.writestr(name, data)


def _npy(a):
    buf = io.BytesIO()
    numpy.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def _config_change(fn):
    def change(name, data):
        if name != "fastnn.json":
            return data
        config = json.loads(data)
        fn(config)
        return json.dumps(config).encode()
    return change


def _array_change(target, fn):
    def change(name, data):
        if name != target:
            return data
        return _npy(fn(numpy.load(io.BytesIO(data))))
    return change


@pytest.mark.parametrize("change,message", [
    (lambda name, data: None if name == "train/indices.npy" else data, "missing train/indices"),
    (_array_change("train/indices.npy", lambda a: a + 1000),
     r"train.indices .*\[0, 40\)|column index"),
    (_array_change("train/indices.npy", lambda a: a[::-1].copy()), "sorted|decreases|order"),
    (_array_change("train/data.npy", lambda a: numpy.where(a > 4, numpy.nan, a)), "NaN"),
    (_array_change("weights/00000.npy", lambda a: a[:-1]), r"weight W: expected shape"),
    (_array_change("weights/00002.npy", lambda a: a.astype("U8")), "expected floats"),
    (_array_change("means/user.npy", lambda a: a[:3]), r"means/user.npy .* shape \(40,\)"),
    (_array_change("ids/users.npy", lambda a: a[:3]), "id maps"),
    (_config_change(lambda c: c["settings"].update(variant="both")), "variant must be"),
    (_config_change(lambda c: c.update(n_weights=3)), "AutoRec has 4 weight arrays, got 3"),
    (_config_change(lambda c: c.update(shape=[41, 30])), "n_features 40 does not match shape \\[41, 30\\]"),
    (_config_change(lambda c: c.pop("shape")), "KeyError: 'shape'"),
    (_config_change(lambda c: c.update(version=99)), "version 99 is not supported"),
    (lambda name, data: b"{not json" if name == "fastnn.json" else data,
     "corrupt model description"),
    (_array_change("optimizer/0/m.npy", lambda a: a[:2]), "optimizer|shape"),
])
def test_load_refuses_a_corrupt_or_inconsistent_file(change, message, rng, tmp_path):
    model, _ = _fitted(rng)
    model.save(tmp_path / "good")
    _rewrite(tmp_path / "good", tmp_path / "bad", change)
    with pytest.raises(ModelFileError, match=message) as info:
        AutoRec.load(tmp_path / "bad")
    assert "bad" in str(info.value)


def test_load_refuses_other_files_with_a_hint(rng, tmp_path):
    model, _ = _fitted(rng)
    model.save(tmp_path / "good")
    data = (tmp_path / "good").read_bytes()
    (tmp_path / "cut").write_bytes(data[:len(data) // 2])
    with pytest.raises(ModelFileError, match="not a fastnn AutoRec file or truncated"):
        AutoRec.load(tmp_path / "cut")
    with pytest.raises(FileNotFoundError, match="no model file"):
        AutoRec.load(tmp_path / "none")
    keras = fastnn.Sequential([fastnn.Input((3,)), Dense(2)])
    keras.save(tmp_path / "keras")
    with pytest.raises(ModelFileError, match="load it with fastnn.load_model"):
        AutoRec.load(tmp_path / "keras")
    with pytest.raises(ModelFileError, match=r"load it with fastnn.recsys.AutoRec.load"):
        fastnn.load_model(tmp_path / "good")


def test_a_failed_save_leaves_the_previous_file(rng, tmp_path, monkeypatch):
    model, _ = _fitted(rng)
    path = tmp_path / "m"
    model.save(path)
    before = path.read_bytes()
    import fastnn.saving

    def broken(a):
        raise OSError("disk full")
    monkeypatch.setattr(fastnn.saving, "_array_bytes", broken)
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


def test_ranking_metrics_take_the_model_itself(rng):
    from fastnn.recsys import ranking_metrics
    model, ratings = _fitted(rng)
    train = Ratings(ratings.matrix, ratings.user_ids, ratings.item_ids)
    assert ranking_metrics(model, train, ratings, k=5) == \
        ranking_metrics(model.score_matrix(), train, ratings, k=5)
    with pytest.raises(TypeError, match="scores must be a dense"):
        ranking_metrics(object(), train, ratings)


def test_model_checkpoint_saves_an_autorec_mid_fit(rng, tmp_path):
    from fastnn.callbacks import ModelCheckpoint
    ratings = _ratings(rng)
    model = AutoRec(hidden=6, lam=0.5, learning_rate=1e-2, batch_size=8, seed=1)
    seen = []

    class Snapshot(fastnn.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append([w.copy() for w in self.model.get_weights()])

    model.fit(ratings, validation=ratings, epochs=3, verbose=0,
              callbacks=[ModelCheckpoint(str(tmp_path / "ck_{epoch}"), monitor="val_rmse"),
                         Snapshot()])
    for epoch in (1, 2, 3):
        back = AutoRec.load(tmp_path / f"ck_{epoch}")
        for a, b in zip(back.get_weights(), seen[epoch - 1]):
            numpy.testing.assert_array_equal(a, b)
        assert len(back.history.get("val_rmse", [])) == epoch - 1  # the epochs before this one
    with pytest.raises(TypeError, match="AutoRec has no save_weights; use save_weights_only=False"):
        model.fit(ratings, epochs=1, verbose=0, callbacks=[
            ModelCheckpoint(str(tmp_path / "w"), monitor="rmse", save_weights_only=True)])
