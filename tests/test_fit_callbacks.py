"""Callbacks driven by a real ``Model.fit`` (their unit tests use a fake model)."""
import pytest

import fastnn
from fastnn import callbacks as C
from fastnn import layers as L


def _model(lr=0.01):
    model = fastnn.Sequential([fastnn.Input((5,)), L.Dense(8, activation="relu"),
                               L.Dense(2, activation="softmax")])
    model.compile(fastnn.optimizers.Adam(lr), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def _data(rng, n=120):
    x = rng.standard_normal((n, 5)).astype("float32")
    return x, (x[:, 0] > 0).astype("int64")


class Recorder(C.Callback):
    def __init__(self):
        super().__init__()
        self.events = []

    def on_train_begin(self, logs=None):
        self.events.append("train_begin")

    def on_epoch_begin(self, epoch, logs=None):
        self.events.append(f"epoch_begin {epoch}")

    def on_train_batch_begin(self, batch, logs=None):
        self.events.append(f"batch_begin {batch}")

    def on_train_batch_end(self, batch, logs=None):
        self.events.append(f"batch_end {batch}")

    def on_epoch_end(self, epoch, logs=None):
        self.events.append(f"epoch_end {epoch} {sorted(logs)}")

    def on_train_end(self, logs=None):
        self.events.append("train_end")


def test_hook_order(rng):
    x, y = _data(rng, n=50)
    rec = Recorder()
    _model().fit(x, y, batch_size=25, epochs=2, verbose=0, callbacks=[rec],
                 validation_data=(x, y))
    logs = "['accuracy', 'loss', 'val_accuracy', 'val_loss']"
    assert rec.events == ["train_begin", "epoch_begin 0", "batch_begin 0", "batch_end 0",
                          "batch_begin 1", "batch_end 1", f"epoch_end 0 {logs}",
                          "epoch_begin 1", "batch_begin 0", "batch_end 0", "batch_begin 1",
                          "batch_end 1", f"epoch_end 1 {logs}", "train_end"]


def test_early_stopping_restores_best(rng):
    x, y = _data(rng)
    model = _model(lr=0.05)
    stopper = C.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    # Validation labels flipped: val_loss rises as the model learns, so it stops early.
    history = model.fit(x, y, epochs=30, verbose=0, validation_data=(x, 1 - y),
                        callbacks=[stopper])
    assert len(history.history["loss"]) < 30
    best = min(history.history["val_loss"])
    assert model.evaluate(x, 1 - y, return_dict=True)["loss"] == pytest.approx(best, rel=1e-5)


def test_checkpoint_and_plateau(rng, tmp_path):
    x, y = _data(rng)
    model = _model()
    path = tmp_path / "best.fastnn"
    plateau = C.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=0, min_delta=10.0)
    model.fit(x, y, epochs=3, verbose=0, validation_data=(x, y),
              callbacks=[C.ModelCheckpoint(str(path), save_best_only=True), plateau])
    # epoch 1 sets the best loss; epochs 2 and 3 miss min_delta and halve the rate
    assert model.optimizer.learning_rate == pytest.approx(0.01 * 0.5 ** 2)
    loaded = fastnn.load_model(path)
    assert loaded.predict(x).shape == (120, 2)


def test_terminate_on_nan(rng):
    x, y = _data(rng)
    model = _model(lr=1e30)
    x = x * 1e30
    history = model.fit(x, y, epochs=5, verbose=0, callbacks=[C.TerminateOnNaN()])
    assert len(history.history.get("loss", [])) <= 1


def test_progress_bar_output(rng, capsys):
    x, y = _data(rng)
    _model().fit(x, y, epochs=2, batch_size=40, verbose=2)
    out = capsys.readouterr().out
    assert "Epoch 1/2" in out and "Epoch 2/2" in out and "loss:" in out and "accuracy:" in out
