"""The one training loop: epochs and batches with callbacks in Keras's order,
shared by ``Model.fit`` and ``fastnn.recsys.AutoRec.fit``.

A model supplies what an epoch computes (its train steps, its validation
logs); the loop supplies everything around them: the History it returns, the
progress bar, every callback hook in Keras's order, and ``model.stop_training``.
It holds no early-stopping or learning-rate logic of its own: that is the
callbacks' work (``EarlyStopping``, ``ReduceLROnPlateau`` ...), the same for
every model.
"""
from collections.abc import MutableMapping

from . import metrics as metrics_mod
from .callbacks import CallbackList, History, ProgbarLogger

__all__ = ["TrainingLoop"]


class TrainingLoop:
    """Drives ``callbacks`` (plus a ``ProgbarLogger`` when ``verbose``, and a
    ``History``, in Keras's order) around a model's own train steps::

        loop = TrainingLoop(model, callbacks, epochs=10, steps=100, verbose=1)
        for epoch in loop.epochs():          # on_train_begin, on_epoch_begin
            for step in loop.batches():      # on_train_batch_begin
                logs = ...one train step...
                loop.end_batch(step, logs)   # on_train_batch_end
            # or, over batches of unknown number (steps=None), read before their hook:
            # for step, batch in loop.batches_of(iterable): ...
            loop.end_epoch(epoch, logs)      # on_epoch_end (logs with val_ entries)
        history = loop.end()                 # on_train_end; returns the History

    ``epochs()`` stops when ``model.stop_training`` is set (by EarlyStopping,
    TerminateOnNaN ...), ``batches()`` after the batch that set it. A solver
    that owns its iteration (scipy's L-BFGS calls back once per iteration)
    advances ``epochs()`` by hand with ``next`` from its callback.

    ``model`` needs only what callbacks use (``stop_training``, ``history``,
    ``get_weights``/``set_weights``, ``optimizer``, ``save``). Extra keyword
    ``params`` (``samples``, ``batch_size``) reach the callbacks' ``params``.
    """

    def __init__(self, model, callbacks=None, *, epochs, steps, verbose=1, initial_epoch=0,
                 **params):
        self.model = model
        self.n_epochs, self.steps, self.initial_epoch = epochs, steps, initial_epoch
        self.history = History()
        progbar = [ProgbarLogger()] if verbose else []
        self.callbacks = CallbackList(list(callbacks or []) + progbar + [self.history],
                                      model=model, params={"verbose": verbose, "epochs": epochs,
                                                           "steps": steps, **params})
        self.logs = {}

    def epochs(self):
        """The epoch numbers to train, each after ``on_epoch_begin``; the first
        after ``on_train_begin``."""
        self.model.history = self.history  # mid-fit (e.g. a checkpoint) sees this fit's epochs
        self.model.stop_training = False
        self.callbacks.on_train_begin({})
        for epoch in range(self.initial_epoch, self.n_epochs):
            if self.model.stop_training:
                return
            self.callbacks.on_epoch_begin(epoch, {})
            yield epoch

    def batches(self):
        """The step numbers of one epoch, each after ``on_train_batch_begin``."""
        for step in range(self.steps):
            self.callbacks.on_train_batch_begin(step, {})
            yield step
            if self.model.stop_training:
                return

    def batches_of(self, batches):
        """``(step, batch)`` for each batch of an iterable (a generator's,
        whose length may be unknown: ``steps=None``), each after
        ``on_train_batch_begin``; the batch is read before that hook, so an
        epoch that runs out of data calls no hook for a batch it never had."""
        for step, batch in enumerate(batches):
            self.callbacks.on_train_batch_begin(step, {})
            yield step, batch
            if self.model.stop_training:
                return

    def end_batch(self, step, logs):
        self.callbacks.on_train_batch_end(step, logs)

    def end_epoch(self, epoch, logs):
        self.logs = logs
        self.callbacks.on_epoch_end(epoch, logs)

    def end(self):
        """``on_train_end`` with the last epoch's logs; returns the History."""
        self.callbacks.on_train_end(self.logs)
        return self.history


class _Logs(MutableMapping):
    """Training logs whose values may still be on the backend: losses as
    scalars there, metrics as ``Metric`` objects. Reading any of them fetches
    all of them (each metric's result as of that moment) in one host
    transfer. Entries a callback sets are kept as given."""

    def __init__(self, ops, values):
        self._ops, self._values, self._host = ops, dict(values), None

    def _fetch(self):
        if self._host is None:
            values = [v.result() if isinstance(v, metrics_mod.Metric) else v
                      for v in self._values.values()]
            self._host = dict(zip(self._values, self._ops.fetch(values)))
        return self._host

    def __getitem__(self, key):
        if key not in self._values:
            raise KeyError(key)
        return self._fetch()[key]

    def __setitem__(self, key, value):
        self._fetch()[key] = value
        self._values[key] = value

    def __delitem__(self, key):
        del self._values[key]
        if self._host is not None:
            del self._host[key]

    def __iter__(self):
        return iter(self._values)

    def __len__(self):
        return len(self._values)

    def __repr__(self):
        return repr(self._fetch())
