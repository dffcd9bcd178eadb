"""fit/evaluate/predict on batches that are not arrays (fastnn/data.py):
a Sequence and a generator train exactly as arrays cut into the same
batches do; each misuse gets an error that names the batch or the argument."""
import io
import math
import warnings

import numpy
import pytest

import fastnn
from fastnn import callbacks as C
from fastnn import layers as L
from fastnn.backend import get_instance
from fastnn.backend.strict import StrictArray
from fastnn.utils import PyDataset, Sequence


def _data(n=70, seed=0):
    rng = numpy.random.default_rng(seed)
    x = rng.standard_normal((n, 6)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int64") + (x[:, 2] > 0.8)
    return x, y


def _model(backend=None, seed=3):
    fastnn.set_seed(seed)
    model = fastnn.Sequential([fastnn.Input((6,)), L.Dense(8, activation="relu"),
                               L.Dropout(0.2), L.Dense(3, activation="softmax")],
                              backend=backend)
    model.compile(fastnn.optimizers.Adam(0.01), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


class Batches(Sequence):
    """Arrays cut into batches in order; records the indices it is asked for."""

    def __init__(self, *arrays, batch_size=16):
        super().__init__()
        self.arrays, self.batch_size = arrays, batch_size
        self.asked, self.epochs_ended = [], 0

    def __len__(self):
        return math.ceil(len(self.arrays[0]) / self.batch_size)

    def __getitem__(self, i):
        self.asked.append(i)
        s = slice(i * self.batch_size, (i + 1) * self.batch_size)
        batch = tuple(a[s] for a in self.arrays)
        return batch if len(batch) > 1 else batch[0]

    def on_epoch_end(self):
        self.epochs_ended += 1


def _forever(*arrays, batch_size=16):
    n = len(arrays[0])
    while True:
        for lo in range(0, n, batch_size):
            yield tuple(a[lo:lo + batch_size] for a in arrays)


def _same_weights(a, b):
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        numpy.testing.assert_array_equal(wa, wb)


# --------------------------------------------------------- as arrays do
@pytest.mark.parametrize("backend", ["numpy", "strict"])
def test_a_sequence_trains_as_the_same_batches_of_arrays(backend):
    x, y = _data()
    xv, yv = _data(30, seed=1)
    w = numpy.linspace(0.5, 1.5, 70).astype("float32")
    cw = {0: 1.0, 1: 2.0, 2: 0.5}
    by_arrays = _model(backend)
    h_arrays = by_arrays.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0,
                             sample_weight=w, class_weight=cw, validation_data=(xv, yv))
    by_sequence = _model(backend)
    train, val = Batches(x, y, w), Batches(xv, yv, batch_size=256)
    h_sequence = by_sequence.fit(train, epochs=3, shuffle=False, verbose=0, class_weight=cw,
                                 validation_data=val)
    _same_weights(by_arrays, by_sequence)
    assert h_sequence.history == h_arrays.history
    assert set(h_sequence.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert train.asked == [0, 1, 2, 3, 4] * 3 and train.epochs_ended == 3
    assert val.epochs_ended == 3  # as Keras: after each validation pass too
    if backend == "strict":
        assert isinstance(by_sequence.weights[0], StrictArray)
    # evaluate and predict read the same batches as the arrays
    assert by_sequence.evaluate(Batches(x, y, w), return_dict=True) == \
        by_arrays.evaluate(x, y, batch_size=16, sample_weight=w, return_dict=True)
    numpy.testing.assert_array_equal(by_sequence.predict(Batches(x)), by_arrays.predict(x))


def test_a_generator_with_steps_per_epoch_trains_as_arrays():
    x, y = _data()
    by_arrays = _model()
    h_arrays = by_arrays.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0,
                             validation_split=0.0)
    by_generator = _model()
    h_generator = by_generator.fit(_forever(x, y), steps_per_epoch=5, epochs=2, verbose=0)
    _same_weights(by_arrays, by_generator)
    assert h_generator.history == h_arrays.history
    assert h_generator.params["steps"] == 5
    # evaluate/predict read `steps` batches of an endless generator
    assert by_generator.evaluate(_forever(x, y), steps=5) == \
        by_arrays.evaluate(x, y, batch_size=16)
    numpy.testing.assert_array_equal(by_generator.predict(_forever(x, y), steps=5),
                                     by_arrays.predict(x))


def test_several_inputs_and_outputs_by_name_in_each_batch():
    def build():
        fastnn.set_seed(2)
        a, b = fastnn.Input((3,), name="a"), fastnn.Input((2,), name="b")
        h = L.Dense(5, activation="tanh")(L.Concatenate()([a, b]))
        model = fastnn.Model([a, b], [L.Dense(3, activation="softmax", name="cls")(h),
                                      L.Dense(1, name="reg")(h)])
        model.compile("adam", {"cls": "sparse_categorical_crossentropy", "reg": "mse"},
                      metrics={"cls": ["accuracy"], "reg": ["mae"]})
        return model

    rng = numpy.random.default_rng(4)
    xa, xb = rng.standard_normal((30, 3)), rng.standard_normal((30, 2))
    yc, yr = rng.integers(0, 3, 30), rng.standard_normal((30, 1))
    by_arrays = build()
    h_arrays = by_arrays.fit({"a": xa, "b": xb}, {"cls": yc, "reg": yr}, batch_size=8,
                             shuffle=False, epochs=2, verbose=0)

    def batches():
        for lo in range(0, 30, 8):
            s = slice(lo, lo + 8)
            yield {"a": xa[s], "b": xb[s]}, [yc[s], yr[s]]  # y as a list: also Keras's

    class Fresh:  # an iterable that starts afresh each epoch
        def __iter__(self):
            return batches()

    by_batches = build()
    h_batches = by_batches.fit(Fresh(), epochs=2, verbose=0)
    _same_weights(by_arrays, by_batches)
    assert h_batches.history == h_arrays.history
    assert "reg_mae" in h_batches.history
    cls, reg = by_batches.predict(((xa[lo:lo + 8], xb[lo:lo + 8]),) for lo in range(0, 30, 8))
    assert cls.shape == (30, 3) and reg.shape == (30, 1)


def test_shuffle_visits_a_sequences_batches_in_a_new_seeded_order_each_epoch():
    x, y = _data()
    orders = []
    for _ in range(2):
        seq = Batches(x, y)
        model = _model()
        fastnn.set_seed(9)
        model.fit(seq, epochs=3, verbose=0)  # shuffle=True: Keras's default
        orders.append(seq.asked)
    assert orders[0] == orders[1]  # repeatable under fastnn.set_seed
    epochs = [orders[0][i:i + 5] for i in range(0, 15, 5)]
    assert all(sorted(e) == [0, 1, 2, 3, 4] for e in epochs)
    assert len({tuple(e) for e in epochs}) > 1  # not one fixed order


def test_steps_per_epoch_goes_on_through_a_sequence_as_keras():
    # Keras 3 keeps a PyDataset's iterator from epoch to epoch when
    # steps_per_epoch is given: each epoch goes on where the last stopped, and
    # a pass that runs out starts the next, so every batch is trained on.
    x, y = _data()
    seq, val = Batches(x, y), Batches(x, y)
    model = _model()
    history = model.fit(seq, steps_per_epoch=2, epochs=3, shuffle=False, verbose=0,
                        validation_data=val, validation_steps=3)
    assert seq.asked == [0, 1, 2, 3, 4, 0] and history.params["steps"] == 2
    assert seq.epochs_ended == 3  # on_epoch_end after each fit epoch, as Keras
    assert val.asked == [0, 1, 2, 3, 4, 0, 1, 2, 3]  # never shuffled, also goes on
    last = numpy.r_[16:64]  # the third validation: batches 1, 2, 3
    assert history.history["val_loss"][-1] == pytest.approx(
        model.evaluate(x[last], y[last], batch_size=16)[0], rel=1e-6)
    # The same training as those batches of arrays, one at a time, in that order.
    by_arrays = _model()
    for i in [0, 1, 2, 3, 4, 0]:
        s = slice(i * 16, (i + 1) * 16)
        by_arrays.fit(x[s], y[s], batch_size=16, shuffle=False, verbose=0)
    _same_weights(model, by_arrays)


def test_steps_per_epoch_shuffles_each_pass_through_a_sequence():
    x, y = _data()
    seq = Batches(x, y)
    fastnn.set_seed(5)
    _model().fit(seq, steps_per_epoch=3, epochs=5, shuffle=True, verbose=0)
    passes = [seq.asked[i:i + 5] for i in range(0, 15, 5)]
    assert all(sorted(p) == [0, 1, 2, 3, 4] for p in passes)  # each batch once per pass
    assert len({tuple(p) for p in passes}) > 1


def test_an_unbuilt_sequential_builds_from_the_first_batch():
    x, y = _data()
    model = fastnn.Sequential([L.Dense(4, activation="relu"), L.Dense(3, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.fit(Batches(x, y), verbose=0)
    assert model.built and model.predict(Batches(x)).shape == (70, 3)


# ------------------------------------------------- callbacks and progress
class Recorder(C.Callback):
    def __init__(self):
        super().__init__()
        self.events = []

    def on_epoch_begin(self, epoch, logs=None):
        self.events.append(("epoch_begin", epoch))

    def on_train_batch_begin(self, batch, logs=None):
        self.events.append(("batch_begin", batch))

    def on_train_batch_end(self, batch, logs=None):
        self.events.append(("batch_end", batch, sorted(logs)))

    def on_epoch_end(self, epoch, logs=None):
        self.events.append(("epoch_end", epoch, sorted(logs)))


def test_callbacks_see_the_same_hooks_and_logs_as_with_arrays():
    x, y = _data()
    rec_arrays, rec_gen = Recorder(), Recorder()
    _model().fit(x, y, batch_size=16, epochs=3, initial_epoch=1, verbose=0,
                 validation_data=(x, y), callbacks=[rec_arrays])

    def one_pass():  # a generator without steps: one epoch per generator
        yield from ((x[lo:lo + 16], y[lo:lo + 16]) for lo in range(0, 70, 16))

    class Fresh:  # an iterable that starts afresh each epoch, of unknown length
        def __iter__(self):
            return one_pass()

    history = _model().fit(Fresh(), epochs=3, initial_epoch=1, verbose=0,
                           validation_data=Fresh(), validation_steps=5,
                           callbacks=[rec_gen])
    assert rec_gen.events == rec_arrays.events
    assert history.epoch == [1, 2] and history.params["steps"] is None


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_the_bar_knows_a_generators_length_after_the_first_epoch(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    x, y = _data()

    class Fresh:  # starts afresh each epoch; its length is not known beforehand
        def __iter__(self):
            return ((x[lo:lo + 16], y[lo:lo + 16]) for lo in range(0, 70, 16))

    out = _Tty()
    # interval=0: every step is drawn, so each epoch's first step shows its total
    _model().fit(Fresh(), epochs=3, verbose=0,
                 callbacks=[C.ProgbarLogger(verbose=1, stream=out, interval=0)])
    epochs = out.getvalue().split("Epoch ")[1:]
    assert len(epochs) == 3
    assert "1/Unknown" in epochs[0] and "5/5 [" not in epochs[0].split("\n")[1][:-1]
    for text in epochs[1:]:
        assert "Unknown" not in text and "1/5 [" in text and "5/5 [====" in text


def test_stop_training_reads_no_further_batch():
    x, y = _data()
    seq = Batches(x, y)
    stopper = C.LambdaCallback(on_train_batch_end=lambda batch, logs: setattr(
        model, "stop_training", batch == 1))
    model = _model()
    history = model.fit(seq, epochs=4, shuffle=False, verbose=0, callbacks=[stopper])
    assert seq.asked == [0, 1] and len(history.epoch) == 1 and seq.epochs_ended == 1


def test_progress_bar_of_a_generator_of_unknown_length(capsys):
    x, y = _data()
    batches = ((x[lo:lo + 16], y[lo:lo + 16]) for lo in range(0, 70, 16))
    _model().fit(batches, verbose=1)
    out = capsys.readouterr().out
    assert out.startswith("Epoch 1/1 - 5/5 - ") and "loss:" in out and "accuracy:" in out
    bar = fastnn.progress.Progbar(None, stream=io.StringIO(), dynamic=True)
    bar.update(3)
    assert "3/Unknown" in bar.stream.getvalue()
    _model().evaluate((b for b in [(x, y)]), verbose=2)
    assert capsys.readouterr().out.startswith("1/1 - ")


# ------------------------------------------------------------------ errors
def test_a_generator_that_runs_out_before_steps_per_epoch():
    x, y = _data()
    batches = ((x[lo:lo + 16], y[lo:lo + 16]) for lo in range(0, 70, 16))
    with pytest.raises(ValueError, match=r"fit: the generator ran out after 5 batches of "
                                         r"steps_per_epoch=6 in epoch 1.*while True"):
        _model().fit(batches, steps_per_epoch=6, verbose=0)
    batches = ((x[lo:lo + 16], y[lo:lo + 16]) for lo in range(0, 70, 16))
    with pytest.raises(ValueError, match=r"gave no batches in epoch 2 \(a generator is read "
                                         r"only once: pass steps_per_epoch"):
        _model().fit(batches, epochs=2, verbose=0)
    with pytest.raises(ValueError, match=r"fit: the generator gave no batches in epoch 1$"):
        _model().fit(iter([]), verbose=0)
    once = ((x[lo:lo + 16], y[lo:lo + 16]) for lo in range(0, 70, 16))
    with pytest.raises(ValueError, match=r"fit \(validation_data\): the generator gave no "
                                         r"batches \(a generator is read only once: pass "
                                         r"validation_steps"):
        _model().fit(_forever(x, y), steps_per_epoch=2, epochs=2, validation_data=once,
                     verbose=0)


@pytest.mark.parametrize("batch, error, match", [
    ((numpy.zeros((4, 6)), numpy.zeros(4), numpy.ones(4), 1), ValueError,
     r"batch 1 \(from 0\) of epoch 1 from the generator: a batch must be x, \(x,\), \(x, y\) "
     r"or \(x, y, sample_weight\), got a tuple of 4"),
    (numpy.zeros((4, 6)), ValueError, r"batch 1 .*holds only x \(ndarray\)"),
    ((numpy.full((4, 6), numpy.nan), numpy.zeros(4)), ValueError,
     r"batch 1 .*contains 24 NaN or infinite"),
    ((numpy.zeros((4, 5)), numpy.zeros(4)), ValueError,
     r"batch 1 .*samples of shape \(6,\).*\(4, 5\)"),
    ((numpy.array([["a"] * 6] * 4), numpy.zeros(4)), TypeError, r"batch 1 .*must hold numbers"),
    ((numpy.zeros((4, 6)), numpy.zeros(3)), ValueError, r"batch 1 .*4 samples but y has 3"),
    ((numpy.zeros((4, 6)), numpy.zeros(4), -numpy.ones(4)), ValueError,
     r"batch 1 .*sample_weight must be finite and non-negative"),
    ((numpy.zeros((0, 6)), numpy.zeros(0)), ValueError, r"batch 1 .*empty"),
    ((None, numpy.zeros(4)), ValueError, r"batch 1 .*no x"),
])
def test_a_bad_batch_is_named_before_it_trains(batch, error, match):
    x, y = _data(4)
    model = _model()
    w0 = model.get_weights()

    def batches():
        yield x, y
        yield batch

    with pytest.raises(error, match=match):
        model.fit(batches(), verbose=0)
    # The good first batch trained; a Sequence names the index it read.
    assert any((a != b).any() for a, b in zip(w0, model.get_weights()))

    class Two(Sequence):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            return (x, y) if i == 0 else batch

    with pytest.raises(error, match=r"batch 1 of epoch 1 \(Two\[1\]\)"):
        _model().fit(Two(), shuffle=False, verbose=0)
    with pytest.raises(error, match=r"evaluate: batch 1 \(Two\[1\]\)"):
        model.evaluate(Two())


@pytest.mark.parametrize("kwargs, match", [
    (dict(batch_size=16), "fit: batch_size must not be given when x is a Batches: its "
                          "batches set the batch size"),
    (dict(y=numpy.zeros(70)), r"y must not be given when x is a Batches: its batches hold y"),
    (dict(sample_weight=numpy.ones(70)), "sample_weight must not be given"),
    (dict(validation_split=0.2), "validation_split is only for arrays; x is a Batches, which "
                                 "cannot be split: pass validation_data"),
    (dict(steps_per_epoch=6), r"steps_per_epoch=6 but the Batches has only 5 batches"),
    (dict(steps_per_epoch=0), "steps_per_epoch must be a positive integer"),
    (dict(validation_data=(numpy.zeros((3, 6)), numpy.zeros(3)), validation_steps=2),
     "validation_steps is for validation_data given as a generator"),
    (dict(workers="2"), "workers must be an integer"),
])
def test_arguments_that_do_not_go_with_a_sequence_are_refused(kwargs, match):
    x, y = _data()
    with pytest.raises(ValueError, match=match):
        _model().fit(Batches(x, y), verbose=0, **kwargs)


def test_arguments_that_need_a_source_are_refused_with_arrays():
    x, y = _data()
    model = _model()
    with pytest.raises(ValueError, match="fit: steps_per_epoch is for a generator or a Sequence"):
        model.fit(x, y, steps_per_epoch=3, verbose=0)
    with pytest.raises(ValueError, match="evaluate: steps is for a generator"):
        model.evaluate(x, y, steps=3)
    with pytest.raises(ValueError, match="predict: steps is for a generator"):
        model.predict(x, steps=3)
    with pytest.raises(ValueError, match="evaluate: batch_size must not be given"):
        model.evaluate(Batches(x, y), batch_size=8)
    with pytest.raises(ValueError, match="predict: batch_size must not be given"):
        model.predict(Batches(x), batch_size=8)
    with pytest.raises(ValueError, match="validation_data must be .*a generator or a Sequence"):
        model.fit(x, y, validation_data=(x,), verbose=0)


def test_a_sequence_without_len_or_getitem_says_what_to_define():
    class Half(Sequence):
        def __len__(self):
            return 1

    with pytest.raises(NotImplementedError, match=r"Half must define __getitem__\(index\)"):
        _model().fit(Half(), verbose=0)
    with pytest.raises(NotImplementedError, match="Sequence must define __len__"):
        len(Sequence())
    with pytest.raises(ValueError, match="has no batches"):
        _model().fit(Batches(numpy.zeros((0, 6)), numpy.zeros(0)), verbose=0)


def test_workers_are_accepted_and_change_nothing_but_a_warning():
    x, y = _data()
    quiet = _model()
    quiet.fit(Batches(x, y), epochs=2, verbose=0)
    with pytest.warns(UserWarning, match="workers=4, use_multiprocessing=True ignored"):
        busy = _model()
        busy.fit(Batches(x, y), epochs=2, verbose=0, workers=4, use_multiprocessing=True)
    _same_weights(quiet, busy)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _model().fit(Batches(x, y), verbose=0, workers=1, use_multiprocessing=False,
                     max_queue_size=10)
    with pytest.warns(UserWarning, match="Loaded: workers=2"):
        class Loaded(Batches):
            def __init__(self, *arrays):
                Sequence.__init__(self, workers=2)
                self.arrays, self.batch_size, self.asked, self.epochs_ended = arrays, 16, [], 0
        Loaded(x, y)


def test_predict_keeps_device_batches_on_the_device():
    strict = get_instance("strict")
    x, _ = _data(20)
    model = _model("strict")
    host = model.predict(Batches(x, batch_size=8))
    assert type(host) is numpy.ndarray
    device = model.predict((strict.asarray(x[lo:lo + 8]),) for lo in (0, 8, 16))
    assert isinstance(device, StrictArray)
    numpy.testing.assert_array_equal(strict.to_numpy(device), host)


# ------------------------------------------------------- the Keras way
def test_keras_docs_sequence_and_generator_snippets_run_as_written():
    # keras.utils.PyDataset's docstring example, with only the imports changed
    # (the image files are arrays here).
    from fastnn.layers import Dense
    from fastnn.models import Sequential
    from fastnn.utils import PyDataset as KerasPyDataset

    assert KerasPyDataset is PyDataset is Sequence

    class CIFAR10PyDataset(KerasPyDataset):

        def __init__(self, x_set, y_set, batch_size, **kwargs):
            super().__init__(**kwargs)
            self.x, self.y = x_set, y_set
            self.batch_size = batch_size

        def __len__(self):
            # Return number of batches.
            return math.ceil(len(self.x) / self.batch_size)

        def __getitem__(self, idx):
            # Return x, y for batch idx.
            low = idx * self.batch_size
            # Cap upper bound at array length; the last batch may be smaller
            # if the total number of items is not a multiple of batch size.
            high = min(low + self.batch_size, len(self.x))
            batch_x = self.x[low:high]
            batch_y = self.y[low:high]

            return numpy.array(batch_x), numpy.array(batch_y)

    x, y = _data(100)
    model = Sequential([Dense(16, activation="relu", input_shape=(6,)),
                        Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    train = CIFAR10PyDataset(x[:80], y[:80], batch_size=16, workers=1,
                             use_multiprocessing=False)
    history = model.fit(train, epochs=3, validation_data=CIFAR10PyDataset(x[80:], y[80:], 16),
                        verbose=0)
    assert len(history.history["val_accuracy"]) == 3

    # Keras 2's fit_generator pattern, now spelled fit(generator, steps_per_epoch=...).
    def generate_arrays(x, y, batch_size):
        while True:
            for i in range(0, len(x), batch_size):
                yield (x[i:i + batch_size], y[i:i + batch_size])

    model.fit(generate_arrays(x, y, 32), steps_per_epoch=4, epochs=2, verbose=0,
              max_queue_size=10, workers=1, use_multiprocessing=False)
    loss, acc = model.evaluate(generate_arrays(x, y, 32), steps=4)
    assert 0 <= acc <= 1 and numpy.isfinite(loss)
