"""AutoRec's training runs through the one training loop (fastnn.training):
its ``patience`` and ``lr_decay`` conveniences are EarlyStopping and
ReduceLROnPlateau, and user callbacks behave as they do with Model.fit."""
import csv

import numpy
import pytest

from fastnn.callbacks import (CSVLogger, EarlyStopping, LambdaCallback, ModelCheckpoint,
                              ReduceLROnPlateau)
from fastnn.recsys import Ratings, validation_split
from fastnn.recsys.autorec import AutoRec

# Settings that overfit the training part within a few epochs, so that
# validation RMSE turns up and early stopping does stop early.
_OVERFITTING = {"adam": dict(hidden=20, lam=0.0, learning_rate=3e-2, batch_size=8, seed=0),
                "lbfgs": dict(hidden=20, lam=0.0, optimizer="lbfgs", dtype="float64", seed=0)}


def _split(seed=0):
    rng = numpy.random.default_rng(seed)
    mask = rng.random((40, 30)) < 0.4
    u, i = numpy.nonzero(mask)
    ratings = Ratings.from_triples(u, i, rng.integers(1, 6, u.size).astype(float),
                                   rating_range=(1, 5))
    return validation_split(ratings, 0.2, seed=0)


def _best_epoch(val_rmse, min_delta=1e-6):
    """The documented rule: the last epoch count whose validation RMSE beat
    every earlier one by more than min_delta."""
    best, best_epoch = numpy.inf, 0
    for e, v in enumerate(val_rmse, start=1):
        if v < best - min_delta:
            best, best_epoch = v, e
    return best_epoch


def _weights_each_epoch(snapshots):
    """A callback keeping a copy of the model's weights at every epoch's end."""
    def keep(epoch, logs):
        snapshots.append(keep.model.get_weights())
    callback = LambdaCallback(on_epoch_end=keep)
    original = callback.set_model

    def set_model(model):
        keep.model = model
        original(model)
    callback.set_model = set_model
    return callback


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_early_stopping_stops_patience_epochs_after_the_best_and_restores_it(optimizer):
    part, val = _split()
    model = AutoRec(**_OVERFITTING[optimizer])
    snapshots = []
    history = model.fit(part, validation=val, epochs=60, patience=3, verbose=0,
                        callbacks=[_weights_each_epoch(snapshots)])
    ran = len(history["val_rmse"])
    best = _best_epoch(history["val_rmse"])
    assert ran < 60                                   # it did stop early ...
    assert ran == best + 3                            # ... exactly `patience` epochs late
    assert model.best_epoch == best
    assert len(snapshots) == ran
    for restored, at_best, at_end in zip(model.get_weights(), snapshots[best - 1],
                                         snapshots[-1]):
        numpy.testing.assert_array_equal(restored, at_best)
    assert any(not numpy.array_equal(a, b) for a, b in zip(snapshots[best - 1], snapshots[-1]))
    assert model.evaluate(val)[0] == pytest.approx(history["val_rmse"][best - 1], rel=1e-9)


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_patience_is_early_stopping_restoring_the_best_weights(optimizer):
    """fit(patience=3) and a user's EarlyStopping(restore_best_weights=True)
    on val_rmse train identically."""
    part, val = _split()
    own = AutoRec(**_OVERFITTING[optimizer])
    h_own = own.fit(part, validation=val, epochs=60, patience=3, verbose=0)
    user = AutoRec(**_OVERFITTING[optimizer])
    stopper = EarlyStopping(monitor="val_rmse", min_delta=1e-6, patience=3,
                            restore_best_weights=True)
    h_user = user.fit(part, validation=val, epochs=60, patience=1000, verbose=0,
                      callbacks=[stopper])
    assert h_user == h_own
    assert stopper.stopped_epoch + 1 == len(h_own["val_rmse"])
    for a, b in zip(own.get_weights(), user.get_weights()):
        numpy.testing.assert_array_equal(a, b)


def test_lr_decay_is_reduce_lr_on_plateau():
    """lr_decay=0.5, lr_decay_patience=2 and a user's ReduceLROnPlateau with the
    same settings cut the rate at the same epochs and train identically."""
    part, val = _split()
    kw = dict(hidden=8, lam=0.1, learning_rate=3e-2, batch_size=8, seed=0)
    own = AutoRec(lr_decay=0.5, lr_decay_patience=2, **kw)
    h_own = own.fit(part, validation=val, epochs=25, patience=12, verbose=0)
    user = AutoRec(**kw)
    h_user = user.fit(part, validation=val, epochs=25, patience=12, verbose=0,
                      callbacks=[ReduceLROnPlateau(monitor="val_rmse", factor=0.5, patience=2,
                                                   min_delta=1e-6)])
    assert len(own.lr_drops) >= 2 and user.lr_drops == []   # only lr_decay records them
    assert h_user == h_own
    assert own.optimizer.learning_rate == user.optimizer.learning_rate == 3e-2 * 0.5 ** len(
        own.lr_drops)
    for a, b in zip(own.get_weights(), user.get_weights()):
        numpy.testing.assert_array_equal(a, b)


def test_model_checkpoint_and_csv_logger(tmp_path):
    part, val = _split()
    model = AutoRec(**_OVERFITTING["adam"])
    snapshots = []
    path = tmp_path / "ckpt" / "best.autorec"
    log = tmp_path / "log.csv"
    history = model.fit(part, validation=val, epochs=60, patience=3, verbose=0, callbacks=[
        ModelCheckpoint(path, monitor="val_rmse", save_best_only=True),
        CSVLogger(log), _weights_each_epoch(snapshots)])
    best = _best_epoch(history["val_rmse"], min_delta=0)
    saved = AutoRec.load(path)
    for a, b in zip(saved.get_weights(), snapshots[best - 1]):
        numpy.testing.assert_array_equal(a, b)
    # written mid-fit, before History (last, as in Model.fit) logged the best epoch
    assert saved.history["val_rmse"] == history["val_rmse"][:best - 1]
    with open(log, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == list(range(len(history["loss"])))
    assert sorted(rows[0]) == ["epoch", "loss", "rmse", "val_mae", "val_rmse"]
    numpy.testing.assert_allclose([float(r["val_rmse"]) for r in rows], history["val_rmse"],
                                  rtol=1e-12)


def test_a_callback_can_stop_training_mid_epoch():
    """As in Model.fit, stop_training set in a batch ends the epoch after it."""
    part, _ = _split()
    model = AutoRec(hidden=6, batch_size=4, seed=0)
    batches = []

    def on_batch_end(batch, logs):
        batches.append(batch)
        if batch == 1:
            stopper.model.stop_training = True
    stopper = LambdaCallback(on_train_batch_end=on_batch_end)
    history = model.fit(part, epochs=5, verbose=0, callbacks=[stopper])
    assert batches == [0, 1] and len(history["loss"]) == 1
