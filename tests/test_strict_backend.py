"""Models own their backend, and nothing outside the backend touches host NumPy.

The strict backend's arrays refuse implicit host conversion (as a GPU's do)
and count the documented transfers; a model that trains, validates, saves and
predicts on it gives the reference backend's results bit for bit, and syncs
with the host a bounded number of times per epoch, whatever the batch count.
"""
import io
import os

import numpy
import pytest

import fastnn
from fastnn import callbacks, layers, regularizers
from fastnn.backend import get_instance, use_backend
from fastnn.backend.strict import HostTransferError, StrictArray


@pytest.fixture
def strict():
    ops = get_instance("strict")
    ops.reset_transfers()
    return ops


def _data(n=96, seed=0):
    rng = numpy.random.default_rng(seed)
    x = rng.standard_normal((n, 7)).astype("float32")
    y = (x[:, :3].sum(1) > 0).astype(int) + (x[:, 3] > 0.5)
    return x, y


def _model(backend, seed=3):
    fastnn.set_seed(seed)
    model = fastnn.Sequential([
        fastnn.Input((7,)),
        layers.Dense(9, activation="relu", kernel_regularizer=regularizers.L2(0.01),
                     bias_regularizer=regularizers.L1(0.01)),
        layers.GaussianNoise(0.1),
        layers.Dropout(0.25),
        layers.Dense(5, activation="sigmoid",
                     activity_regularizer=regularizers.KLSparsity(0.2, 0.1)),
        layers.Dense(3, activation="softmax")], backend=backend)
    model.compile(fastnn.optimizers.Adam(0.01, clipnorm=0.5), "sparse_categorical_crossentropy",
                  metrics=["accuracy", "sparse_top_k_categorical_accuracy", "precision"])
    return model


def _fit(model, tmp_path, epochs=4, **kwargs):
    x, y = _data()
    cbs = [callbacks.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True),
           callbacks.ModelCheckpoint(os.fspath(tmp_path / "ckpt.fnn"), save_best_only=True),
           callbacks.ReduceLROnPlateau(monitor="val_loss", patience=1, factor=0.5),
           callbacks.TerminateOnNaN()]
    return model.fit(x, y, batch_size=10, epochs=epochs, verbose=0, callbacks=cbs, **kwargs)


# ------------------------------------------------------------------ the array
def test_strict_array_refuses_implicit_host_conversion(strict):
    a = strict.asarray(numpy.arange(6, dtype="float32").reshape(2, 3))
    s = a.sum()
    for convert in (numpy.asarray, float, int, bool, lambda v: v.item(),
                    lambda v: v.tolist(), lambda v: numpy.float64(0) + numpy.array(v),
                    lambda v: list(range(3))[v]):
        with pytest.raises(HostTransferError, match="ops.to_numpy"):
            convert(s)
    with pytest.raises(TypeError, match=r"numpy\.ndarray.*backend 'numpy'.*StrictArray.*'strict'"):
        a + numpy.ones(3, dtype="float32")
    with pytest.raises(TypeError, match=r"numpy\.ndarray.*StrictArray"):
        numpy.ones(3, dtype="float32") * a
    with pytest.raises(TypeError, match=r"numpy\.ndarray.*StrictArray"):
        strict.xp.maximum(a, numpy.zeros(3))
    with pytest.raises(AttributeError, match="owns the generator"):
        strict.xp.random
    assert "data" not in repr(a) and "0." not in repr(a)


def test_strict_array_computes_like_numpy_and_counts_transfers(strict, rng):
    host = rng.standard_normal((4, 5))
    a = strict.asarray(host)
    b = strict.xp.exp(a) @ a.T + 1
    b[strict.xp.arange(2), 1] -= 2
    b *= 3
    expected = (numpy.exp(host) @ host.T + 1)
    expected[numpy.arange(2), 1] -= 2
    expected *= 3
    assert isinstance(b, StrictArray)
    numpy.testing.assert_array_equal(strict.to_numpy(b), expected)
    assert strict.fetch([b.max(), 2.5, a.sum()]) == [expected.max(), 2.5, host.sum()]
    # asarray, to_numpy, and one to_numpy for the two device scalars of fetch:
    assert strict.transfers == {"to_device": 1, "to_host": 2}


# ----------------------------------------------------------- training on it
def test_fit_evaluate_predict_save_load_match_the_reference_bit_for_bit(strict, tmp_path):
    x, y = _data()
    xv, yv = _data(40, seed=1)
    results = {}
    for name in ("reference", "strict"):
        model = _model(name)
        assert all(p.__class__ is (StrictArray if name == "strict" else numpy.ndarray)
                   for p in model.weights)
        os.makedirs(tmp_path / name)
        hist = _fit(model, tmp_path / name, validation_data=(xv, yv, numpy.linspace(0.5, 1.5, 40)))
        hist_split = _fit(model, tmp_path / name, epochs=2, validation_split=0.25)
        ev = model.evaluate(x, y, return_dict=True, sample_weight=numpy.linspace(1, 2, 96))
        pred = model.predict(x, batch_size=17)
        assert type(pred) is numpy.ndarray
        model.save(tmp_path / f"{name}.fnn")
        results[name] = (hist.history, hist_split.history, ev, pred, model.get_weights())
    ref, got = results["reference"], results["strict"]
    assert got[0] == ref[0] and got[1] == ref[1] and got[2] == ref[2]
    assert set(ref[0]) >= {"loss", "accuracy", "precision", "val_loss", "val_precision",
                           "learning_rate"}
    numpy.testing.assert_array_equal(got[3], ref[3])
    for a, b in zip(got[4], ref[4]):
        numpy.testing.assert_array_equal(a, b)

    # The strict model's file loads on any backend, and training resumes identically.
    loaded = {b: fastnn.load_model(tmp_path / "strict.fnn", backend=b)
              for b in ("strict", "reference")}
    assert isinstance(loaded["strict"].weights[0], StrictArray)
    for b, model in loaded.items():
        numpy.testing.assert_array_equal(model.predict(x), ref[3])
        fastnn.set_seed(11)
        model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    for a, b in zip(loaded["strict"].get_weights(), loaded["reference"].get_weights()):
        numpy.testing.assert_array_equal(a, b)


def test_train_and_test_on_batch_and_other_losses_on_strict(strict):
    x, _ = _data(30)
    target = numpy.stack([x[:, 0], x[:, 1] > 0], axis=1).astype("float32")
    for name in ("reference", "strict"):
        fastnn.set_seed(1)
        model = fastnn.Sequential([fastnn.Input((7,)), layers.Dense(4, activation="tanh"),
                                   layers.Maxout(2), layers.Dense(2)], backend=name)
        model.compile(fastnn.optimizers.SGD(0.05, momentum=0.9, global_clipnorm=1.0),
                      "hinge", metrics=["mae", "rmse", "binary_accuracy"])
        r1 = model.train_on_batch(x, target, return_dict=True)
        r2 = model.test_on_batch(x, target, sample_weight=numpy.ones(30), return_dict=True)
        if name == "reference":
            expected = (r1, r2)
    assert (r1, r2) == expected and all(isinstance(v, float) for v in r1.values())


def test_predict_keeps_device_input_on_the_device(strict):
    x, _ = _data(12)
    model = _model("strict")
    out = model.predict(strict.asarray(x))
    assert isinstance(out, StrictArray)
    numpy.testing.assert_array_equal(strict.to_numpy(out), model.predict(x))


# ------------------------------------------------------------------- moving
def test_model_to_moves_weights_grads_and_optimizer_state_round_trip(tmp_path):
    x, y = _data()
    moved = _model("reference")
    moved.fit(x, y, batch_size=16, epochs=1, verbose=0)
    moved.to("strict")
    assert moved.ops.name == "strict"
    for layer in moved.layers:
        assert all(isinstance(a, StrictArray) for a in list(layer.params.values())
                   + list(layer.grads.values()))
    assert all(isinstance(a, StrictArray) for s in moved.optimizer._state for a in s.values())
    moved.fit(x, y, batch_size=16, epochs=1, verbose=0)
    moved.to("numpy").to("reference")
    assert type(moved.weights[0]) is numpy.ndarray
    moved.fit(x, y, batch_size=16, epochs=1, verbose=0)

    fastnn.set_seed(3)
    staying = _model("reference")
    assert [l.ops.name for l in staying.layers] == ["reference"] * len(staying.layers)
    for _ in range(3):
        staying.fit(x, y, batch_size=16, epochs=1, verbose=0)
    for a, b in zip(moved.get_weights(), staying.get_weights()):
        numpy.testing.assert_array_equal(a, b)
    assert moved.optimizer.iterations == staying.optimizer.iterations


def test_model_backend_is_fixed_at_construction_not_by_the_default():
    with use_backend("strict"):
        model = fastnn.Sequential([fastnn.Input((3,)), layers.Dense(2)])
    assert model.ops.name == "strict" and isinstance(model.weights[0], StrictArray)
    # The default changed back, the model did not.
    assert fastnn.get_backend().name == "numpy"
    model.compile("sgd", "mse")
    model.fit(numpy.ones((4, 3)), numpy.zeros((4, 2)), verbose=0)
    assert isinstance(model.weights[0], StrictArray)
    # Layers built outside any model follow the model that takes them.
    x = fastnn.Input((3,))
    dense = layers.Dense(2)
    y = dense(x)
    assert type(dense.params["kernel"]) is numpy.ndarray
    fastnn.Model(x, y, backend="strict")
    assert dense.ops.name == "strict" and isinstance(dense.params["kernel"], StrictArray)


def test_mixing_two_backends_raises_naming_both(strict):
    x, _ = _data(8)
    numpy_model = _model("numpy")
    with pytest.raises(TypeError, match=r"StrictArray \(an array of backend 'strict'\).*"
                                        r"backend 'numpy'.*numpy\.ndarray"):
        numpy_model.predict(strict.asarray(x))
    strict_model = _model("strict")
    dense = strict_model.layers[0]
    with pytest.raises(TypeError, match=r"numpy\.ndarray.*backend 'strict'.*StrictArray"):
        dense.forward(x)
    with pytest.raises(ValueError, match="unknown backend 'tpu'.*strict"):
        strict_model.to("tpu")


# --------------------------------------------------------------- host syncs
class _Terminal(io.StringIO):
    def isatty(self):
        return True


def _transfers_of_fit(strict, n, tmp_path, verbose=0, **kwargs):
    x, y = _data(n)
    model = _model("strict")
    strict.reset_transfers()
    # A live bar that redraws at most once an hour: it draws each epoch's first batch.
    cbs = [callbacks.ProgbarLogger(verbose=1, stream=_Terminal(), interval=3600)] \
        if verbose else []
    model.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=cbs,
              validation_split=0.25, **kwargs)
    return dict(strict.transfers)


def test_host_syncs_per_epoch_do_not_grow_with_the_number_of_batches(strict, tmp_path,
                                                                     monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    few = _transfers_of_fit(strict, 40, tmp_path)        # 4 batches an epoch
    many = _transfers_of_fit(strict, 400, tmp_path)      # 38 batches an epoch
    assert few == many
    # x and y up once; per epoch: the batch logs at its end, the validation
    # logs, and two labels fetches for precision's counts (train and val).
    assert few["to_device"] == 2
    assert few["to_host"] <= 3 * 6
    # A live progress bar reads the logs when it redraws, not every batch:
    # here once an epoch (its first draw), over 3 epochs.
    with_bar = _transfers_of_fit(strict, 400, tmp_path, verbose=1)
    assert with_bar == {**many, "to_host": many["to_host"] + 3 * 3}


def test_a_callback_reading_batch_logs_costs_one_sync_per_batch(strict):
    x, y = _data(40)
    model = _model("strict")
    seen = []
    reader = callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: seen.append(dict(logs)))
    strict.reset_transfers()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[reader])
    # 5 batches: one fetch of all scalars each (+ precision's two label fetches)
    assert len(seen) == 5 and all(isinstance(v, float) for v in seen[-1].values())
    assert strict.transfers["to_host"] == 5 * 3



def test_a_callback_may_add_entries_to_the_batch_logs(strict):
    x, y = _data(16)
    model = _model("strict")
    seen = []

    def mark(batch, logs):
        logs["batch_seen"] = batch
        seen.append(dict(logs))
        del logs["batch_seen"]
        assert "batch_seen" not in logs

    model.fit(x, y, batch_size=8, epochs=1, verbose=0,
              callbacks=[callbacks.LambdaCallback(on_train_batch_end=mark)])
    assert [s["batch_seen"] for s in seen] == [0, 1] and isinstance(seen[0]["loss"], float)


@pytest.mark.parametrize("make", [
    lambda: fastnn.optimizers.SGD(0.1, momentum=0.9, nesterov=True, clipvalue=0.3),
    lambda: fastnn.optimizers.RMSprop(0.01, weight_decay=0.01, clipnorm=0.5),
    lambda: fastnn.optimizers.Adagrad(0.05, global_clipnorm=0.7),
    lambda: fastnn.optimizers.AdamW(0.01)])
def test_optimizers_update_on_the_device_as_on_the_host(make, strict, rng):
    params = [rng.standard_normal((3, 4)).astype("float32"), rng.standard_normal(4)]
    grads = [[rng.standard_normal(p.shape).astype(p.dtype) for p in params] for _ in range(3)]
    device, opt_device = [strict.asarray(p) for p in params], make()
    strict.reset_transfers()
    with use_backend("reference"):  # the host side computes as strict does
        opt_host, host = make(), [p.copy() for p in params]
        for g in grads:
            opt_host.apply_gradients(host, g)
    for g in grads:
        opt_device.apply_gradients(device, [strict.asarray(a) for a in g])
    assert strict.transfers == {"to_device": 6}  # the gradients only: no sync
    for h, d in zip(host, device):
        numpy.testing.assert_array_equal(strict.to_numpy(d), h)
    state = opt_device.get_state()
    assert all(type(a) is numpy.ndarray for a in state["arrays"].values())


@pytest.mark.parametrize("act", ["gelu", "silu", "selu", "softplus", "softsign", "hard_sigmoid",
                                 "mish"])
def test_keras_activations_train_on_strict_like_reference(act):
    """The activations without a Cython kernel compute through the ops too
    (gelu's erf is the backend's own special function)."""
    from fastnn import layers as L
    x = numpy.random.default_rng(0).standard_normal((24, 5)).astype("float32")
    y = numpy.random.default_rng(1).standard_normal((24, 1)).astype("float32")
    weights = []
    for backend in ("reference", "strict"):
        fastnn.set_seed(0)
        m = fastnn.Sequential([fastnn.Input((5,)), L.Dense(4, activation=act), L.Dense(1)],
                              backend=backend)
        m.compile("adam", "mse")
        m.fit(x, y, epochs=2, batch_size=8, verbose=0)
        weights.append(m.get_weights())
    for a, b in zip(*weights):
        numpy.testing.assert_array_equal(a, b)


def test_masked_embedding_model_trains_on_strict_like_reference():
    """A masked loss and Embedding's scatter-add run on the backend (no host
    sync per batch); an all-masked sample contributes nothing."""
    from fastnn import layers as L
    x = numpy.array([[1, 2, 3, 0, 0, 0], [4, 5, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0],
                     [7, 8, 9, 1, 2, 3]])
    y = numpy.random.default_rng(0).standard_normal((4, 6, 2)).astype("float32")
    runs = []
    for backend in ("reference", "strict"):
        fastnn.set_seed(0)
        inp = fastnn.Input((6,), dtype="int64")
        out = L.TimeDistributed(L.Dense(2))(L.Embedding(10, 4, mask_zero=True)(inp))
        m = fastnn.Model(inp, out, backend=backend)
        m.compile("adam", "mse")
        h = m.fit(x, y, epochs=3, batch_size=2, verbose=0)
        runs.append((m.get_weights(), h.history["loss"], m.evaluate(x, y)))
    for a, b in zip(runs[0][0], runs[1][0]):
        numpy.testing.assert_array_equal(a, b)
    assert runs[0][1:] == runs[1][1:]


def test_integer_inputs_given_as_host_floats_on_strict():
    from fastnn import layers as L
    inp = fastnn.Input((3,), dtype="int64")
    m = fastnn.Model(inp, L.GlobalAveragePooling1D()(L.Embedding(5, 2)(inp)), backend="strict")
    assert m.predict(numpy.array([[1., 2., 0.], [3., 0., 0.]])).shape == (2, 2)
    with pytest.raises(ValueError, match="non-integer"):
        m.predict(numpy.array([[1.5, 2., 0.]]))


def test_fit_takes_sample_weight_on_the_device_without_moving_it(strict):
    # Before, fit read the weights with numpy.ndim/asarray: a HostTransferError.
    x, y = _data(40)
    host_w = numpy.linspace(0.2, 2.0, 40).astype("float32")
    results = []
    for weight in (host_w, strict.asarray(host_w)):
        model = _model("strict")
        fastnn.set_seed(5)
        model.fit(x, y, batch_size=8, epochs=2, verbose=0, sample_weight=weight,
                  class_weight={0: 1.0, 1: 0.5, 2: 2.0}, validation_split=0.2)
        results.append(model.get_weights())
    for a, b in zip(*results):
        numpy.testing.assert_array_equal(a, b)
    model = _model("strict")
    with pytest.raises(ValueError, match=r"sample_weight must have shape \(40,\).*\(39,\)"):
        model.fit(x, y, verbose=0, sample_weight=strict.asarray(host_w[:39]))
    with pytest.raises(ValueError, match="finite and non-negative"):
        model.fit(x, y, verbose=0, sample_weight=strict.asarray(-host_w))


def test_calling_a_model_returns_backend_arrays_as_keras_does(strict):
    # Decided: model(x) is the step of a custom loop and returns the backend's
    # arrays for host input too (Keras returns its backend's tensors);
    # predict gives host arrays for host input.
    x, _ = _data(12)
    model = _model("strict")
    out = model(x)
    assert isinstance(out, StrictArray)
    numpy.testing.assert_array_equal(strict.to_numpy(out), model.predict(x))
    assert isinstance(model.predict(x), numpy.ndarray)


def test_evaluate_and_train_on_batch_check_device_sample_weight_too(strict):
    x, y = _data(20)
    model = _model("strict")
    w = numpy.linspace(0.5, 1.5, 20)
    assert model.evaluate(x, y, sample_weight=strict.asarray(w)) == \
        model.evaluate(x, y, sample_weight=w)
    for call in (lambda sw: model.evaluate(x, y, sample_weight=sw),
                 lambda sw: model.test_on_batch(x, y, sample_weight=sw),
                 lambda sw: model.fit(x, y, verbose=0, validation_data=(x, y, sw))):
        with pytest.raises(ValueError, match=r"must have shape \(20,\).*\(19,\)"):
            call(strict.asarray(w[:19]))
        with pytest.raises(ValueError, match="finite and non-negative"):
            call(strict.asarray(-w))
