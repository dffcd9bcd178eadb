import csv
import io
import math
import os

import numpy
import pytest

from fastnn import callbacks as C


class FakeOptimizer:
    def __init__(self, learning_rate=0.1):
        self.learning_rate = learning_rate


class FakeModel:
    """The model interface callbacks rely on, and nothing else."""

    def __init__(self, lr=0.1):
        self.stop_training = False
        self.weights = [numpy.zeros((2, 2)), numpy.zeros(2)]
        self.optimizer = FakeOptimizer(lr)
        self.saved = []

    def get_weights(self):
        return self.weights  # references on purpose: callbacks must copy

    def set_weights(self, weights):
        for w, new in zip(self.weights, weights):
            w[...] = new

    def save(self, path):
        self.saved.append(("model", path))
        open(path, "w").close()

    def save_weights(self, path):
        self.saved.append(("weights", path))
        open(path, "w").close()


def run_epochs(callbacks, epoch_logs, model=None, steps=2, batch_logs=None):
    """A minimal fit loop calling hooks in Keras's order; stops on stop_training."""
    model = model or FakeModel()
    cbs = C.CallbackList(callbacks, model=model,
                         params={"epochs": len(epoch_logs), "steps": steps, "verbose": 1})
    cbs.on_train_begin({})
    ran = 0
    for epoch, logs in enumerate(epoch_logs):
        if model.stop_training:
            break
        cbs.on_epoch_begin(epoch, {})
        for step in range(steps):
            cbs.on_train_batch_begin(step, {})
            model.weights[0] += 1  # "training" changes the weights in place
            cbs.on_train_batch_end(step, dict(batch_logs[epoch] if batch_logs else logs))
            if model.stop_training:
                break
        cbs.on_test_begin({})
        cbs.on_test_end({})
        cbs.on_epoch_end(epoch, dict(logs))
        ran += 1
    cbs.on_train_end({})
    return model, ran


class Recorder(C.Callback):
    def __init__(self):
        super().__init__()
        self.calls = []

    def _rec(name):
        def hook(self, *args):
            self.calls.append((name,) + tuple(a for a in args[:-1]))
        return hook

    for _name in C._HOOKS:
        locals()[_name] = _rec(_name)
    del _name


def test_hook_order():
    rec = Recorder()
    run_epochs([rec], [{"loss": 1.0}, {"loss": 0.5}], steps=2)
    expected = [("on_train_begin",)]
    for e in range(2):
        expected += [("on_epoch_begin", e)]
        for b in range(2):
            expected += [("on_train_batch_begin", b), ("on_train_batch_end", b)]
        expected += [("on_test_begin",), ("on_test_end",), ("on_epoch_end", e)]
    expected += [("on_train_end",)]
    assert rec.calls == expected
    assert rec.params["epochs"] == 2 and rec.model is not None


def test_callback_list_add_and_type_check():
    cbs = C.CallbackList([], add_history=True, add_progbar=True)
    assert [type(c) for c in cbs] == [C.ProgbarLogger, C.History]
    h = C.History()
    assert list(C.CallbackList([h], add_history=True)) == [h]
    with pytest.raises(TypeError, match="Callback"):
        C.CallbackList([lambda: None])
    model = FakeModel()
    cbs = C.CallbackList([], model=model, params={"epochs": 3})
    late = C.History()
    cbs.append(late)
    assert late.model is model and late.params == {"epochs": 3}


def test_keras2_batch_hooks_still_called():
    seen = []

    class Old(C.Callback):
        def on_batch_end(self, batch, logs=None):
            seen.append(batch)
    run_epochs([Old()], [{"loss": 1.0}], steps=3)
    assert seen == [0, 1, 2]


def test_history():
    h = C.History()
    model, _ = run_epochs([h], [{"loss": 1.0, "val_loss": 2.0}, {"loss": 0.5, "val_loss": 1.5}])
    assert h.epoch == [0, 1]
    assert h.history == {"loss": [1.0, 0.5], "val_loss": [2.0, 1.5]}
    assert model.history is h


def test_history_plot_without_matplotlib(monkeypatch):
    import builtins
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError("no matplotlib")
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    h = C.History()
    h.history = {"loss": [1.0]}
    with pytest.raises(ImportError, match="pip install matplotlib"):
        h.plot()


def test_history_plot_png(tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib is optional; pip install matplotlib "
                        "to test History.plot")
    h = C.History()
    run_epochs([h], [{"loss": 1.0 / (e + 1), "accuracy": e / 5, "val_loss": 1.2 / (e + 1),
                      "val_accuracy": e / 6} for e in range(5)])
    fig = h.plot(tmp_path / "curves.png")
    assert [ax.get_title() for ax in fig.axes] == ["loss", "accuracy"]
    assert len(fig.axes[0].lines) == 2
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="not in the history"):
        h.plot(metrics=["f1"])
    with pytest.raises(ValueError, match="empty"):
        C.History().plot()


# ----------------------------------------------------------------- progress
def test_progbar_logger_non_tty_one_line_per_epoch():
    out = io.StringIO()
    logger = C.ProgbarLogger(stream=out)
    logs = [{"loss": 0.5, "accuracy": 0.75, "val_loss": 0.6, "val_accuracy": 0.7},
            {"loss": 0.25, "accuracy": 0.875, "val_loss": 0.4, "val_accuracy": 0.8}]
    batch_logs = [{"loss": 0.5, "accuracy": 0.75}, {"loss": 0.25, "accuracy": 0.875}]
    run_epochs([logger], logs, steps=5, batch_logs=batch_logs)
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue() and len(lines) == 2
    assert lines[0].startswith("Epoch 1/2 - 5/5 - ")
    assert lines[0].endswith("- loss: 0.5000 - accuracy: 0.7500 - val_loss: 0.6000 - "
                             "val_accuracy: 0.7000")
    assert "loss: 0.2500" in lines[1]


def test_progbar_logger_dynamic(monkeypatch):
    monkeypatch.delenv("CI", raising=False)

    class Tty(io.StringIO):
        def isatty(self):
            return True
    out = Tty()
    run_epochs([C.ProgbarLogger(stream=out, interval=0)], [{"loss": 1.0, "val_loss": 2.0}],
               steps=3)
    text = out.getvalue()
    assert text.startswith("Epoch 1/1\n\r1/3 [")
    assert text.rstrip("\n").split("\r")[-1].startswith("3/3 [======")
    assert "val_loss: 2.0000" in text.split("\r")[-1]


def test_progbar_logger_verbose_0_silent():
    out = io.StringIO()
    run_epochs([C.ProgbarLogger(verbose=0, stream=out)], [{"loss": 1.0}])
    assert out.getvalue() == ""


# ------------------------------------------------------------ EarlyStopping
def val_losses(*values):
    return [{"loss": 1.0, "val_loss": v} for v in values]


def test_early_stopping_patience():
    es = C.EarlyStopping(patience=2)
    model, ran = run_epochs([es], val_losses(1.0, 0.9, 0.95, 0.93, 0.5, 0.4))
    assert ran == 4 and model.stop_training and es.stopped_epoch == 3
    assert es.best == 0.9 and es.best_epoch == 1


def test_early_stopping_patience_zero_and_min_delta():
    _, ran = run_epochs([C.EarlyStopping(patience=0)], val_losses(1.0, 1.1, 0.5))
    assert ran == 2
    # improvements smaller than min_delta do not count
    _, ran = run_epochs([C.EarlyStopping(patience=1, min_delta=0.1)],
                        val_losses(1.0, 0.95, 0.92, 0.5))
    assert ran == 2


def test_early_stopping_restores_best_weights():
    es = C.EarlyStopping(patience=1, restore_best_weights=True)
    model, ran = run_epochs([es], val_losses(1.0, 0.5, 0.7, 0.8), steps=1)
    # weights[0] is incremented once per batch: after epoch 1 it was 2
    assert ran == 3
    numpy.testing.assert_array_equal(model.weights[0], 2.0)


def test_early_stopping_restores_even_without_stopping():
    es = C.EarlyStopping(patience=5, restore_best_weights=True)
    model, ran = run_epochs([es], val_losses(1.0, 0.5, 0.7), steps=1)
    assert ran == 3 and not model.stop_training
    numpy.testing.assert_array_equal(model.weights[0], 2.0)


def test_early_stopping_mode_max_auto_and_baseline():
    es = C.EarlyStopping(monitor="val_accuracy", patience=1)
    assert es.higher_is_better
    logs = [{"val_accuracy": a} for a in (0.5, 0.6, 0.55, 0.58)]
    _, ran = run_epochs([es], logs)
    assert ran == 3 and es.best == 0.6
    assert C.EarlyStopping(monitor="loss", mode="max").higher_is_better
    assert not C.EarlyStopping(monitor="val_mae").higher_is_better
    # with a baseline, a first best that does not beat it does not reset the wait
    _, ran = run_epochs([C.EarlyStopping(patience=2)], val_losses(0.9, 0.95, 0.97, 0.99))
    assert ran == 3
    _, ran = run_epochs([C.EarlyStopping(patience=2, baseline=0.5)],
                        val_losses(0.9, 0.95, 0.97, 0.99))
    assert ran == 2
    with pytest.raises(ValueError, match="mode"):
        C.EarlyStopping(mode="lowest")


def test_early_stopping_start_from_epoch():
    es = C.EarlyStopping(patience=0, start_from_epoch=2)
    _, ran = run_epochs([es], val_losses(1.0, 2.0, 3.0, 4.0, 5.0))
    assert ran == 4  # epochs 0,1 ignored; epoch 2 sets best, epoch 3 stops


def test_early_stopping_nan_is_not_an_improvement():
    es = C.EarlyStopping(patience=1)
    _, ran = run_epochs([es], val_losses(1.0, float("nan"), 0.1))
    assert ran == 2 and es.best == 1.0


def test_missing_monitor_warns_not_crashes():
    with pytest.warns(RuntimeWarning, match="'val_loss'.*available: loss"):
        _, ran = run_epochs([C.EarlyStopping()], [{"loss": 1.0}, {"loss": 2.0}])
    assert ran == 2
    model = FakeModel()
    with pytest.warns(RuntimeWarning, match="val_loss"):
        run_epochs([C.ReduceLROnPlateau(patience=0)], [{"loss": 1.0}] * 3, model=model)
    assert model.optimizer.learning_rate == 0.1
    with pytest.warns(RuntimeWarning, match="val_loss"):
        run_epochs([C.ModelCheckpoint("never.npz", save_best_only=True)], [{"loss": 1.0}])
    assert not os.path.exists("never.npz")


# ----------------------------------------------------------- ModelCheckpoint
def test_checkpoint_every_epoch_with_format(tmp_path):
    path = str(tmp_path / "ckpt" / "m-{epoch:02d}-{val_loss:.4f}.npz")
    model, _ = run_epochs([C.ModelCheckpoint(path)], val_losses(0.5, 0.25))
    assert model.saved == [("model", str(tmp_path / "ckpt" / "m-01-0.5000.npz")),
                           ("model", str(tmp_path / "ckpt" / "m-02-0.2500.npz"))]


def test_checkpoint_best_only_weights(tmp_path):
    path = str(tmp_path / "w-{epoch}.npz")
    cb = C.ModelCheckpoint(path, save_best_only=True, save_weights_only=True)
    model, _ = run_epochs([cb], val_losses(1.0, 1.2, 0.8, 0.9))
    assert [p for _, p in model.saved] == [str(tmp_path / "w-1.npz"), str(tmp_path / "w-3.npz")]
    assert {kind for kind, _ in model.saved} == {"weights"}
    cb = C.ModelCheckpoint(path, monitor="val_accuracy", save_best_only=True,
                           initial_value_threshold=0.7)
    model, _ = run_epochs([cb], [{"val_accuracy": a} for a in (0.6, 0.8, 0.75)])
    assert [p for _, p in model.saved] == [str(tmp_path / "w-2.npz")]


def test_checkpoint_bad_format_field(tmp_path):
    cb = C.ModelCheckpoint(str(tmp_path / "{val_acc:.2f}.npz"))
    with pytest.raises(KeyError, match="val_acc.*log keys"):
        run_epochs([cb], val_losses(1.0))


def test_checkpoint_save_freq_batches(tmp_path):
    cb = C.ModelCheckpoint(str(tmp_path / "b-{epoch}.npz"), save_freq=3)
    model, _ = run_epochs([cb], val_losses(1.0, 1.0), steps=2)  # 4 batches
    assert len(model.saved) == 1 and model.saved[0][1].endswith("b-2.npz")
    with pytest.raises(ValueError, match="save_freq"):
        C.ModelCheckpoint("x", save_freq=0)


# --------------------------------------------------------- ReduceLROnPlateau
def test_reduce_lr_patience_cooldown_min_lr():
    model = FakeModel(lr=1.0)
    cb = C.ReduceLROnPlateau(factor=0.5, patience=2, cooldown=1, min_lr=0.2, min_delta=0)
    lrs = []
    logs = val_losses(1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
    track = C.LambdaCallback(on_epoch_end=lambda e, l: lrs.append(model.optimizer.learning_rate))
    run_epochs([cb, track], logs, model=model)
    # As Keras: epoch 0 sets the best; 1, 2 wait -> reduce at 2 and start a cooldown of 1;
    # epoch 3 ends the cooldown and counts as the first wait; reduce at 4; clip to
    # min_lr at 6; at min_lr nothing more happens.
    assert lrs == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 0.2, 0.2, 0.2, 0.2]
    model = FakeModel(lr=1.0)
    lrs.clear()
    no_cooldown = C.ReduceLROnPlateau(factor=0.5, patience=2, min_delta=0)
    run_epochs([no_cooldown, track], logs[:6], model=model)
    assert lrs == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    model = FakeModel(lr=1.0)
    lrs.clear()
    cooldown_2 = C.ReduceLROnPlateau(factor=0.5, patience=2, cooldown=2, min_delta=0)
    run_epochs([cooldown_2, track], logs[:6], model=model)
    assert lrs == [1.0, 1.0, 0.5, 0.5, 0.5, 0.25]


def test_reduce_lr_improvement_resets_and_logs_lr():
    model = FakeModel(lr=0.1)
    cb = C.ReduceLROnPlateau(patience=1, factor=0.1)
    logs = {"val_loss": 1.0}
    cb.set_model(model)
    cb.on_train_begin()
    for v in (1.0, 0.5, 0.4):
        logs = {"val_loss": v}
        cb.on_epoch_end(0, logs)
    assert model.optimizer.learning_rate == 0.1 and logs["learning_rate"] == 0.1
    cb.on_epoch_end(0, {"val_loss": 0.39999})  # within min_delta: no improvement
    assert model.optimizer.learning_rate == pytest.approx(0.01)
    cb = C.ReduceLROnPlateau(monitor="val_accuracy", patience=0)
    assert cb.higher_is_better
    with pytest.raises(ValueError, match="factor"):
        C.ReduceLROnPlateau(factor=1.0)


# ---------------------------------------------------- LearningRateScheduler
def test_scheduler_sets_lr_each_epoch():
    model = FakeModel(lr=1.0)
    seen = []
    cb = C.LearningRateScheduler(lambda epoch, lr: lr * 0.5 if epoch > 0 else lr)
    track = C.LambdaCallback(on_epoch_begin=lambda e, l: seen.append(
        model.optimizer.learning_rate))
    h = C.History()
    run_epochs([cb, track, h], [{"loss": 1.0}] * 3, model=model)
    assert seen == [1.0, 0.5, 0.25]
    assert h.history["learning_rate"] == [1.0, 0.5, 0.25]


def test_scheduler_one_argument_and_bad_values():
    model = FakeModel()
    run_epochs([C.LearningRateScheduler(lambda epoch: 0.01 * (epoch + 1))], [{}] * 2,
               model=model)
    assert model.optimizer.learning_rate == pytest.approx(0.02)
    with pytest.raises(ValueError, match="finite float"):
        run_epochs([C.LearningRateScheduler(lambda e, lr: "fast")], [{}])
    with pytest.raises(ValueError, match="finite float"):
        run_epochs([C.LearningRateScheduler(lambda e, lr: math.nan)], [{}])
    with pytest.raises(TypeError):
        C.LearningRateScheduler(0.1)


# ------------------------------------------------------------ TerminateOnNaN
def test_terminate_on_nan(capsys):
    batch_logs = [{"loss": 1.0}, {"loss": float("nan")}, {"loss": 1.0}]
    model, ran = run_epochs([C.TerminateOnNaN()], [{"loss": 1.0}] * 3, steps=2,
                            batch_logs=batch_logs)
    assert model.stop_training and ran == 2
    assert "invalid loss" in capsys.readouterr().out
    model, ran = run_epochs([C.TerminateOnNaN()], [{"loss": 1.0}] * 2,
                            batch_logs=[{"loss": math.inf}] * 2)
    assert ran == 1


# ----------------------------------------------------------------- CSVLogger
def read_rows(path, sep=","):
    with open(path, newline="") as f:
        return list(csv.reader(f, delimiter=sep))


def test_csv_logger_rows(tmp_path):
    path = tmp_path / "log.csv"
    logs = [{"loss": 0.5, "val_loss": 0.75, "accuracy": 0.25},
            {"loss": 0.25, "accuracy": 0.5}]
    run_epochs([C.CSVLogger(path)], logs)
    assert read_rows(path) == [["epoch", "accuracy", "loss", "val_loss"],
                               ["0", "0.25", "0.5", "0.75"],
                               ["1", "0.5", "0.25", "NA"]]


def test_csv_logger_append_and_separator(tmp_path):
    path = tmp_path / "log.tsv"
    run_epochs([C.CSVLogger(path, separator="\t")], [{"loss": 1.0}])
    run_epochs([C.CSVLogger(path, separator="\t", append=True)], [{"loss": 2.0}])
    assert read_rows(path, "\t") == [["epoch", "loss"], ["0", "1.0"], ["0", "2.0"]]
    run_epochs([C.CSVLogger(path, separator="\t")], [{"loss": 3.0}])  # overwrite
    assert read_rows(path, "\t") == [["epoch", "loss"], ["0", "3.0"]]
    fresh = tmp_path / "sub" / "new.csv"
    run_epochs([C.CSVLogger(fresh, append=True)], [{"loss": numpy.float32(0.5)}])
    assert read_rows(fresh) == [["epoch", "loss"], ["0", "0.5"]]


# ------------------------------------------------------------ LambdaCallback
def test_lambda_callback():
    events = []
    cb = C.LambdaCallback(on_train_begin=lambda logs: events.append("begin"),
                          on_epoch_end=lambda epoch, logs: events.append(("epoch", epoch)),
                          on_train_batch_end=lambda batch, logs: events.append(batch),
                          on_train_end=lambda logs: events.append("end"))
    run_epochs([cb], [{"loss": 1.0}] * 2, steps=1)
    assert events == ["begin", 0, ("epoch", 0), 0, ("epoch", 1), "end"]
    with pytest.raises(ValueError, match="unknown hooks"):
        C.LambdaCallback(on_epoch_finish=print)


def test_learning_rate_schedule_object_is_a_clear_error():
    class Schedule:
        def __call__(self, step):
            return 0.1
    model = FakeModel()
    model.optimizer.learning_rate = Schedule()
    with pytest.raises(TypeError, match="not a float"):
        run_epochs([C.ReduceLROnPlateau()], val_losses(1.0), model=model)
