"""AutoRec on the strict test backend (arrays that refuse implicit host
conversion, as a GPU's do): the backend's own sparse products, a full fit with
validation, early stopping, dropout and callbacks, predict, evaluate,
recommend, save and load, with host transfers only where documented.

Strict versus "reference" is compared bit for bit: the strict backend's sparse
kernels are the reference math run on the same NumPy arrays in the same order,
and both draw from fastnn's one seeded generator, so nothing may differ. The
"numpy" backend's Cython kernels sum in another order (float32), so a model
moved there is compared to float32 rounding.
"""
import numpy
import pytest
import scipy.sparse

import fastnn
from fastnn import callbacks
from fastnn.backend import get_instance, use_backend
from fastnn.backend.ops import CSR, Ops
from fastnn.backend.strict import StrictArray
from fastnn.recsys import AutoRec
from fastnn.recsys import sparse_ops


@pytest.fixture
def strict():
    ops = get_instance("strict")
    ops.reset_transfers()
    return ops


def _ratings(seed=0, n_users=23, n_items=31):
    """Train and validation users x items matrices with awkward corners: a
    user and an item without any training rating (cold), an empty last row."""
    rng = numpy.random.default_rng(seed)
    values = rng.integers(1, 6, (n_users, n_items)).astype(float)
    observed = rng.random((n_users, n_items))
    train = numpy.where(observed < 0.3, values, 0.0)
    val = numpy.where((observed >= 0.3) & (observed < 0.4), values, 0.0)
    train[3], train[:, 5], train[-1], val[-1] = 0, 0, 0, 0
    return scipy.sparse.csr_matrix(train), scipy.sparse.csr_matrix(val)


def _csr(rng, n, m, density=0.3, dtype="float32", empty_row=None):
    A = scipy.sparse.random(n, m, density=density, format="csr", random_state=rng,
                            dtype=numpy.float64).astype(dtype)
    if empty_row is not None:
        keep = numpy.ones(n, dtype=dtype)
        keep[empty_row] = 0
        A = scipy.sparse.csr_matrix(scipy.sparse.diags(keep) @ A)
        A.eliminate_zeros()
    A.sort_indices()
    return A


# ------------------------------------------------------------ sparse kernels
def test_strict_csr_take_rows_matches_scipy_and_the_compiled_slice(strict, rng):
    A = _csr(rng, 9, 6, empty_row=4)  # an empty row in the middle
    rows = numpy.array([8, 4, 0, 0, 2])  # any order, repeated, an empty one
    want = A[rows]
    device = CSR(A.indptr, A.indices, strict.asarray(A.data), A.shape)
    strict.reset_transfers()
    for got in (strict.csr_take_rows(device, rows), Ops().csr_take_rows(A, rows),
                sparse_ops.as_pattern(A).take_rows(rows)):
        data = strict.to_numpy(got.data) if type(got.data) is StrictArray else got.data
        assert got.shape == want.shape
        numpy.testing.assert_array_equal(got.indptr, want.indptr)
        numpy.testing.assert_array_equal(got.indices, want.indices)
        numpy.testing.assert_array_equal(data, want.data)
    assert strict.transfers == {"to_host": 1}  # the test's own fetch: the slice is none
    empty = strict.csr_take_rows(device, numpy.zeros(0, dtype=numpy.int64))
    assert empty.shape == (0, 6) and empty.nnz == 0 and list(empty.indptr) == [0]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_strict_sparse_products_equal_the_reference_bit_for_bit(strict, rng, dtype):
    n, m, k = 7, 5, 3
    A = _csr(rng, n, m, dtype=dtype, empty_row=2)
    B = rng.standard_normal((m, k)).astype(dtype)
    G = rng.standard_normal((n, k)).astype(dtype)
    bias, c = rng.standard_normal(k).astype(dtype), rng.standard_normal(m).astype(dtype)
    vals = rng.standard_normal(A.nnz).astype(dtype)
    up = strict.asarray
    dA = CSR(A.indptr, A.indices, up(A.data), A.shape)
    ref = Ops()
    strict.reset_transfers()
    got = {
        "spmm": strict.spmm(dA, up(B), up(bias), "sigmoid"),
        "spmm_t": strict.spmm_t(dA, up(G), data=up(vals), out=up(numpy.ones((m, k), dtype))),
        "column_sums": strict.column_sums(dA, up(vals)),
        "sddmm": strict.sddmm(dA, up(G), up(B), up(c)),
    }
    loss, grad = strict.masked_sq_error(up(vals), dA.data, up(numpy.abs(vals)))
    want = {
        "spmm": ref.spmm(A, B, bias, "sigmoid"),
        "spmm_t": ref.spmm_t(A, G, data=vals, out=numpy.ones((m, k), dtype)),
        "column_sums": ref.column_sums(A, vals),
        "sddmm": ref.sddmm(A, G, B, c),
    }
    want_loss, want_grad = ref.masked_sq_error(vals, A.data, numpy.abs(vals))
    assert strict.transfers == {"to_device": 11}  # the test's uploads: the products move nothing
    for name in want:
        assert type(got[name]) is StrictArray, name
        numpy.testing.assert_array_equal(strict.to_numpy(got[name]), want[name], err_msg=name)
    assert type(loss) is StrictArray and loss.shape == ()  # the loss stays on the device
    assert strict.fetch([loss]) == [want_loss]
    numpy.testing.assert_array_equal(strict.to_numpy(grad), want_grad)


def test_strict_fused_adam_step_equals_the_reference_and_updates_in_place(strict, rng):
    n, m, k = 6, 9, 4
    X = _csr(rng, n, m, density=0.4)
    host = {"W": rng.standard_normal((m, k)).astype("float32"),
            "b": rng.standard_normal(k).astype("float32"),
            "Vt": rng.standard_normal((m, k)).astype("float32"),
            "c": rng.standard_normal(m).astype("float32")}
    moments = {name: (numpy.zeros_like(p), numpy.zeros_like(p)) for name, p in host.items()}
    device = {name: strict.asarray(p) for name, p in host.items()}
    dev_moments = {name: (strict.asarray(mv[0]), strict.asarray(mv[1]))
                   for name, mv in moments.items()}
    dX = CSR(X.indptr, X.indices, strict.asarray(X.data), X.shape)
    drop = strict.asarray(X.data * (rng.random(X.nnz) > 0.3))
    strict.reset_transfers()
    for step in (1, 2):
        got = strict.autorec_adam_step(dX, device["W"], device["b"], device["Vt"], device["c"],
                                       dev_moments, 0.01, 0.9, 0.999, 1e-7, step, 0.3,
                                       input_values=drop)
        want = Ops().autorec_adam_step(X, host["W"], host["b"], host["Vt"], host["c"], moments,
                                       0.01, 0.9, 0.999, 1e-7, step, 0.3,
                                       input_values=strict.to_numpy(drop))
        assert all(type(v) is StrictArray for v in got)
        assert strict.fetch(got) == [float(v) for v in want]
    for name in host:
        numpy.testing.assert_array_equal(strict.to_numpy(device[name]), host[name])
        numpy.testing.assert_array_equal(strict.to_numpy(dev_moments[name][1]), moments[name][1])


def test_strict_sparse_products_refuse_host_values(strict, rng):
    A = _csr(rng, 4, 3)
    B = strict.asarray(rng.standard_normal((3, 2)).astype("float32"))
    with pytest.raises(TypeError, match="strict"):
        strict.spmm(A, B)  # A's values are host NumPy: an implicit upload
    with pytest.raises(TypeError, match="strict"):
        strict.csr_take_rows(A, [0, 1])


# ------------------------------------------------------------------ AutoRec
def _fit(backend, train, val, epochs=6, **kwargs):
    settings = dict(hidden=7, batch_size=4, lam=0.5, learning_rate=0.02, input_dropout=0.2,
                    lr_decay=0.5, lr_decay_patience=1, seed=5)
    settings.update(kwargs)
    seen = []
    reader = callbacks.LambdaCallback(on_epoch_end=lambda e, logs: seen.append(dict(logs)))
    with use_backend(backend):
        model = AutoRec(**settings)
        history = model.fit(train, validation=val, epochs=epochs, patience=2, verbose=0,
                            callbacks=[reader])
    return model, history, seen


def _pairs(shape):
    users, items = numpy.meshgrid(numpy.arange(shape[0]), numpy.arange(shape[1]), indexing="ij")
    return users.ravel(), items.ravel()


def test_autorec_fit_on_strict_equals_the_reference_bit_for_bit(strict):
    train, val = _ratings()
    model, history, seen = _fit("strict", train, val)
    ref, ref_history, ref_seen = _fit("reference", train, val)
    assert model.ops is strict and ref.ops.name == "reference"
    assert history == ref_history and seen == ref_seen
    assert all(isinstance(v, float) for v in seen[-1].values())
    assert model.best_epoch == ref.best_epoch and model.lr_drops == ref.lr_drops
    assert len(history["loss"]) == 6 and history["val_rmse"][-1] < history["val_rmse"][0]
    for w, r in zip(model.get_weights(), ref.get_weights()):
        numpy.testing.assert_array_equal(w, r)
    users, items = _pairs(model.shape)
    numpy.testing.assert_array_equal(model.predict(users, items), ref.predict(users, items))
    assert model.evaluate(val) == ref.evaluate(val)
    for a, b in zip(model.recommend(numpy.arange(model.shape[0]), k=4),
                    ref.recommend(numpy.arange(model.shape[0]), k=4)):
        numpy.testing.assert_array_equal(a, b)
    numpy.testing.assert_array_equal(model.score_matrix([1, 0, 3]), ref.score_matrix([1, 0, 3]))


def test_autorec_fit_on_strict_is_the_numpy_fit_to_float32_rounding(strict):
    train, val = _ratings(1)
    model, history, _ = _fit("strict", train, val, epochs=3)
    fast, fast_history, _ = _fit("numpy", train, val, epochs=3)
    numpy.testing.assert_allclose(history["loss"], fast_history["loss"], rtol=1e-4)
    users, items = _pairs(model.shape)
    numpy.testing.assert_allclose(model.predict(users, items), fast.predict(users, items),
                                  rtol=1e-4, atol=1e-4)


def test_autorec_host_transfers_per_epoch_do_not_grow_with_the_batches(strict, monkeypatch):
    train, val = _ratings(2)
    epochs = 4

    def transfers(batch_size, validation):
        calls, restores = [], []
        get_weights, set_weights = AutoRec.get_weights, AutoRec.set_weights
        monkeypatch.setattr(AutoRec, "get_weights",
                            lambda self: calls.append(1) or get_weights(self))
        monkeypatch.setattr(AutoRec, "set_weights",
                            lambda self, w: restores.append(1) or set_weights(self, w))
        with use_backend("strict"):
            model = AutoRec(hidden=5, batch_size=batch_size, input_dropout=0.1, seed=1)
            strict.reset_transfers()
            model.fit(train, validation=validation, epochs=epochs, patience=epochs, verbose=0)
        n_batches = -(-train.shape[1] // batch_size)  # items are I-AutoRec's samples
        return dict(strict.transfers), len(calls), len(restores), n_batches

    for validation in (None, val):
        few, many = transfers(16, validation), transfers(3, validation)
        assert many[3] >= 5 * few[3]
        # Up: W and Vt (drawn on the host by the seeded generator) and the
        # training values, once a fit, and the best weights (4 arrays) if
        # EarlyStopping restores them. Down: the epoch's loss sums (one
        # fetch), the validation predictions (one), and EarlyStopping's best
        # weights (4 arrays each time it keeps them).
        for got, saves, restores, _ in (few, many):
            if validation is None:
                assert got == {"to_device": 3, "to_host": epochs} and saves == restores == 0
            else:
                assert saves >= 1 and restores <= 1
                assert got == {"to_device": 3 + 4 * restores, "to_host": 2 * epochs + 4 * saves}


def test_autorec_predict_fetches_once_and_recommend_once_per_block(strict):
    train, val = _ratings(3)
    model, _, _ = _fit("strict", train, val, epochs=2)
    users, items = _pairs(model.shape)
    strict.reset_transfers()
    pred = model.predict(users, items)
    assert strict.transfers == {"to_host": 1} and pred.dtype == numpy.float64
    strict.reset_transfers()
    model.evaluate(val)
    assert strict.transfers == {"to_host": 1}
    strict.reset_transfers()
    model.recommend(numpy.arange(model.shape[0]), k=3)
    # the item codes stay on the device; the user indices go up, the scores come down
    assert strict.transfers == {"to_device": 1, "to_host": 1}


def test_autorec_saved_on_strict_loads_on_numpy_and_reference(strict, tmp_path):
    train, val = _ratings(4)
    model, _, _ = _fit("strict", train, val, epochs=3)
    path = tmp_path / "autorec.fnn"
    model.save(path)
    users, items = _pairs(model.shape)
    want = model.predict(users, items)
    with use_backend("reference"):
        ref = AutoRec.load(path)
    with use_backend("strict"):
        again = AutoRec.load(path)
    fast = AutoRec.load(path)  # the default backend
    assert fast.ops.name == "numpy" and again.ops is strict
    numpy.testing.assert_array_equal(ref.predict(users, items), want)
    numpy.testing.assert_array_equal(again.predict(users, items), want)
    numpy.testing.assert_allclose(fast.predict(users, items), want, rtol=1e-5, atol=1e-5)
    for w, r in zip(fast.get_weights(), model.get_weights()):
        numpy.testing.assert_array_equal(w, r)
    # training resumes on the strict backend from the saved optimizer state
    with use_backend("reference"):
        ref.fit(train, validation=val, epochs=2, verbose=0)
    again.fit(train, validation=val, epochs=2, verbose=0)
    for w, r in zip(again.get_weights(), ref.get_weights()):
        numpy.testing.assert_array_equal(w, r)


@pytest.mark.parametrize("settings, what", [
    (dict(optimizer="lbfgs"), "lbfgs"),
    (dict(hidden=(6, 3, 6)), "layer-by-layer"),
    (dict(optimizer="sgd"), "layer-by-layer"),
])
def test_autorec_features_that_compute_on_the_host_are_refused_on_strict(strict, settings,
                                                                         what):
    train, _ = _ratings()
    with use_backend("strict"):
        model = AutoRec(**{"hidden": 5, **settings})
        with pytest.raises(ValueError, match=what) as info:
            model.fit(train, epochs=1, verbose=0)
    assert "'numpy' backend" in str(info.value)


def test_autorec_fit_on_strict_with_user_variant_equals_the_reference(strict):
    train, val = _ratings(6)
    model, history, _ = _fit("strict", train, val, epochs=3, variant="user")
    ref, ref_history, _ = _fit("reference", train, val, epochs=3, variant="user")
    assert history == ref_history
    users, items = _pairs(model.shape)
    numpy.testing.assert_array_equal(model.predict(users, items), ref.predict(users, items))
    for a, b in zip(model.recommend([0, 3, 4], k=2), ref.recommend([0, 3, 4], k=2)):
        numpy.testing.assert_array_equal(a, b)
