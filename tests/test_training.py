"""The one training loop (fastnn.training.TrainingLoop), on a stub model: the
hook order, stop_training in a batch and at an epoch's end, batches of an
iterable of unknown length, and a solver that advances the epochs itself (as
AutoRec's L-BFGS does)."""
from fastnn.callbacks import Callback
from fastnn.training import TrainingLoop


class _Stub:
    stop_training = False
    history = None


class _Recorder(Callback):
    def __init__(self, stop_at=None):
        super().__init__()
        self.calls, self.stop_at = [], stop_at

    def on_train_begin(self, logs=None):
        self.calls.append("train_begin")

    def on_epoch_begin(self, epoch, logs=None):
        self.calls.append(f"epoch_begin {epoch}")

    def on_train_batch_begin(self, batch, logs=None):
        self.calls.append(f"batch_begin {batch}")

    def on_train_batch_end(self, batch, logs=None):
        self.calls.append(f"batch_end {batch} {logs['loss']}")
        if self.stop_at == ("batch", batch):
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        self.calls.append(f"epoch_end {epoch} {logs['loss']}")
        if self.stop_at == ("epoch", epoch):
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        self.calls.append(f"train_end {logs}")


def _run(recorder, epochs=3, steps=2, initial_epoch=0):
    model = _Stub()
    model.stop_training = True          # a previous fit's flag is cleared
    loop = TrainingLoop(model, [recorder], epochs=epochs, steps=steps, verbose=0,
                        initial_epoch=initial_epoch, samples=5)
    for epoch in loop.epochs():
        for step in loop.batches():
            loop.end_batch(step, {"loss": 10 * epoch + step})
        loop.end_epoch(epoch, {"loss": epoch})
    history = loop.end()
    assert model.history is history and recorder.params["samples"] == 5
    return history


def test_hooks_in_keras_order():
    rec = _Recorder()
    history = _run(rec, epochs=2, steps=2)
    assert rec.calls == ["train_begin",
                         "epoch_begin 0", "batch_begin 0", "batch_end 0 0", "batch_begin 1",
                         "batch_end 1 1", "epoch_end 0 0",
                         "epoch_begin 1", "batch_begin 0", "batch_end 0 10", "batch_begin 1",
                         "batch_end 1 11", "epoch_end 1 1",
                         "train_end {'loss': 1}"]
    assert history.history == {"loss": [0, 1]} and history.epoch == [0, 1]


def test_stop_training_ends_the_epoch_after_its_batch_and_the_fit_after_its_epoch():
    rec = _Recorder(stop_at=("batch", 0))
    history = _run(rec)
    assert rec.calls == ["train_begin", "epoch_begin 0", "batch_begin 0", "batch_end 0 0",
                         "epoch_end 0 0", "train_end {'loss': 0}"]
    rec = _Recorder(stop_at=("epoch", 1))
    history = _run(rec, epochs=5, steps=1)
    assert history.epoch == [0, 1] and rec.calls[-1] == "train_end {'loss': 1}"


def test_initial_epoch_and_no_epochs():
    assert _run(_Recorder(), epochs=3, initial_epoch=2).epoch == [2]
    rec = _Recorder()
    assert _run(rec, epochs=0).epoch == [] and rec.calls == ["train_begin", "train_end {}"]


def test_a_solver_can_advance_the_epochs_from_its_own_callback():
    model, rec = _Stub(), _Recorder(stop_at=("epoch", 1))
    loop = TrainingLoop(model, [rec], epochs=10, steps=1, verbose=0)
    epochs = loop.epochs()
    state = {"epoch": next(epochs)}

    def solver_callback(x):                  # what scipy calls once per iteration
        loop.end_epoch(state["epoch"], {"loss": x})
        state["epoch"] = next(epochs, None)
        return state["epoch"] is None        # True: the solver stops

    iterations = 0
    while not solver_callback(iterations):
        iterations += 1
    loop.end()
    assert iterations == 1 and loop.history.history == {"loss": [0, 1]}


def test_batches_of_an_iterable_of_unknown_length_reads_each_batch_before_its_hook():
    rec = _Recorder(stop_at=("batch", 1))
    model = _Stub()
    loop = TrainingLoop(model, [rec], epochs=2, steps=None, verbose=0)
    read = []

    def batches():
        for b in ("a", "b", "c"):
            read.append(b)
            yield b

    for epoch in loop.epochs():
        for step, batch in loop.batches_of(batches()):
            rec.calls.append(f"got {batch}")
            loop.end_batch(step, {"loss": step})
        loop.end_epoch(epoch, {"loss": epoch})
    loop.end()
    assert rec.params["steps"] is None and read == ["a", "b"]  # "c" is never read
    assert rec.calls == ["train_begin", "epoch_begin 0", "batch_begin 0", "got a",
                         "batch_end 0 0", "batch_begin 1", "got b", "batch_end 1 1",
                         "epoch_end 0 0", "train_end {'loss': 0}"]
    rec, model.stop_training = _Recorder(), False
    loop = TrainingLoop(model, [rec], epochs=1, steps=None, verbose=0)
    for epoch in loop.epochs():
        for step, batch in loop.batches_of(iter([])):
            loop.end_batch(step, {"loss": 0})
    assert "batch_begin 0" not in rec.calls  # no hook for a batch that never came
