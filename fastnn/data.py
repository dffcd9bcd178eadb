"""Batches that do not sit in arrays: Keras's ``Sequence`` (``PyDataset``)
and what ``fit``/``evaluate``/``predict`` read from a generator, an iterable
or a Sequence, one epoch at a time. Only the reading and the structure of
the batches is here; their checks (numbers, finite, shapes) are
``fastnn/inputs.py``'s, and the training is ``Model``'s.

Batches are read in the calling thread, in order, when the step needs them:
there are no worker threads or processes, so ``workers``,
``use_multiprocessing`` and ``max_queue_size`` (Keras's loading options) are
accepted and change nothing but a warning (``check_loader_options``).
"""
import itertools
import warnings

import numpy

__all__ = ["Sequence", "PyDataset", "is_batch_source", "unpack_batch", "BatchSource",
           "check_loader_options"]


class Sequence:
    """Keras's ``keras.utils.Sequence`` (``PyDataset`` in Keras 3): batches
    by index, so an epoch can visit them in any order and each is read only
    when needed. Subclass it and define ``__len__`` (the number of batches)
    and ``__getitem__(index)`` (batch ``index``: ``x``, ``(x, y)`` or
    ``(x, y, sample_weight)``); ``on_epoch_end`` (and ``on_epoch_begin``)
    run around each pass, e.g. to reshuffle the samples.

    ``fit(sequence, shuffle=True)`` visits the batches in a new random order
    each epoch (``fastnn.set_seed`` makes it repeatable). Batches are read in
    the calling thread: ``workers``, ``use_multiprocessing`` and
    ``max_queue_size`` are taken as Keras 3's ``PyDataset`` takes them and
    change nothing (a warning says so when they ask for parallel loading).

    Examples
    --------
    >>> import numpy, fastnn
    >>> class Batches(fastnn.utils.Sequence):
    ...     def __init__(self, x, y, batch_size):
    ...         super().__init__()
    ...         self.x, self.y, self.batch_size = x, y, batch_size
    ...     def __len__(self):
    ...         return -(-len(self.x) // self.batch_size)
    ...     def __getitem__(self, i):
    ...         s = slice(i * self.batch_size, (i + 1) * self.batch_size)
    ...         return self.x[s], self.y[s]
    >>> data = Batches(numpy.zeros((10, 3), "float32"), numpy.zeros(10, "int64"), 4)
    >>> len(data), data[2][0].shape
    (3, (2, 3))
    """

    def __init__(self, workers=1, use_multiprocessing=False, max_queue_size=10):
        check_loader_options(workers, use_multiprocessing, max_queue_size,
                             where=type(self).__name__)
        self.workers, self.use_multiprocessing = workers, use_multiprocessing
        self.max_queue_size = max_queue_size

    def __len__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __len__: the number of "
                                  f"batches in one epoch")

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__(index): "
                                  f"batch number index, as x, (x, y) or (x, y, sample_weight)")

    @property
    def num_batches(self):
        """The number of batches (Keras 3's name for ``len``)."""
        return len(self)

    def on_epoch_begin(self):
        """Called before each pass over the batches."""

    def on_epoch_end(self):
        """Called after each pass over the batches."""

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]


PyDataset = Sequence  # Keras 3's name


def check_loader_options(workers, use_multiprocessing, max_queue_size, where="fit"):
    """Keras's parallel-loading options: checked, and a warning when they ask
    for workers, which fastnn does not start (batches load in the calling
    thread, so results never depend on them)."""
    if isinstance(workers, bool) or not isinstance(workers, (int, numpy.integer)):
        raise ValueError(f"{where}: workers must be an integer, got {workers!r}")
    if isinstance(max_queue_size, bool) or not isinstance(max_queue_size, (int, numpy.integer)):
        raise ValueError(f"{where}: max_queue_size must be an integer, got {max_queue_size!r}")
    if workers > 1 or use_multiprocessing:
        warnings.warn(f"{where}: workers={workers}, use_multiprocessing={use_multiprocessing} "
                      f"ignored; fastnn reads batches in the calling thread, one at a time",
                      UserWarning, stacklevel=3)


def is_batch_source(x, ops):
    """Whether ``x`` is a source of batches (a Sequence, a generator, any
    other iterator or iterable) rather than the data itself (arrays, lists
    and tuples of arrays, dicts by input name, anything with a ``shape``)."""
    if isinstance(x, Sequence):
        return True
    if x is None or isinstance(x, (list, tuple, dict, str, bytes, range, numpy.ndarray)) \
            or hasattr(x, "shape") or ops.is_native(x):
        return False
    return hasattr(x, "__getitem__") and hasattr(x, "__len__") or hasattr(x, "__iter__")


def unpack_batch(batch):
    """A batch as ``(x, y, sample_weight)``, by Keras's rule: a tuple (or a
    list) holds ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)``; anything
    else (an array, a dict by input name) is ``x``. Several inputs are
    therefore ``((x1, x2), y)``, never ``(x1, x2, y)``."""
    if isinstance(batch, list):
        batch = tuple(batch)
    if not isinstance(batch, tuple):
        return batch, None, None
    if len(batch) in (1, 2, 3):
        return tuple(batch) + (None,) * (3 - len(batch))
    raise ValueError(f"a batch must be x, (x,), (x, y) or (x, y, sample_weight), got a tuple "
                     f"of {len(batch)}; give several inputs as one tuple or dict: "
                     f"((x1, x2), y)")


class BatchSource:
    """The raw batches of one ``fit``/``evaluate``/``predict`` argument, one
    epoch at a time::

        source = BatchSource(data, steps, shuffle, "fit", "steps_per_epoch")
        for label, batch in source.epoch(epoch):  # label names the batch in errors
            ...
        source.end_epoch()                        # the Sequence's on_epoch_end

    A Sequence gives ``steps`` (default ``len``) batches per epoch, in a new
    random order for each pass over it when ``shuffle``; as Keras 3 does with
    a ``PyDataset``, an epoch of fewer ``steps`` than ``len`` goes on where
    the last one stopped, and a pass that runs out starts the next one (so
    every batch is visited, not only the first ``steps``). An iterable that makes a new iterator each
    time (a dataset object) starts afresh each epoch. A
    generator (or any iterator) is read on across epochs: with ``steps``,
    that many batches per epoch; without, until it ends, which only one
    epoch can do. Running out before ``steps`` batches is an error, as is an
    epoch with no batches. (A list is never a source: a list of arrays is
    the data of several inputs.)
    """

    def __init__(self, data, steps, shuffle, caller, steps_name):
        self.data, self.caller, self.steps_name = data, caller, steps_name
        self.shuffle = bool(shuffle)
        if steps is not None and (isinstance(steps, bool)
                                  or not isinstance(steps, (int, numpy.integer)) or steps < 1):
            raise ValueError(f"{caller}: {steps_name} must be a positive integer or None, got "
                             f"{steps!r}")
        self.is_sequence = isinstance(data, Sequence) or (
            hasattr(data, "__getitem__") and hasattr(data, "__len__"))
        if self.is_sequence:
            n = len(data)
            if n < 1:
                raise ValueError(f"{caller}: the {type(data).__name__} has no batches "
                                 f"(len {n})")
            if steps is not None and steps > n:
                raise ValueError(f"{caller}: {steps_name}={steps} but the "
                                 f"{type(data).__name__} has only {n} batches; leave "
                                 f"{steps_name} out to use them all")
            self.steps = n if steps is None else int(steps)
            self.kind = type(data).__name__
        else:
            self.steps = None if steps is None else int(steps)
            self.fresh = iter(data) is not data  # re-iterable: a new pass per epoch
            self._iterator = None if self.fresh else data
            self.kind = "generator" if not self.fresh else f"iterable ({type(data).__name__})"
        self._passes = 0
        self._order, self._next = None, 0  # a Sequence's current pass and where it is

    def epoch(self, epoch=None):
        """The ``(label, batch)`` pairs of one epoch (``epoch``, counted from
        0, only names it in messages)."""
        if self.is_sequence:
            return self._sequence_epoch(epoch)
        return self._iterator_epoch(epoch)

    def _sequence_epoch(self, epoch):
        data = self.data
        if hasattr(data, "on_epoch_begin"):
            data.on_epoch_begin()
        for step in range(self.steps):
            if self._order is None or self._next >= len(self._order):
                self._order, self._next = self._new_pass(), 0
            index = self._order[self._next]
            self._next += 1
            label = f"{self.caller}: batch {step}{_of_epoch(epoch)} ({self.kind}[{index}])"
            yield label, data[int(index)]

    def _new_pass(self):
        n = len(self.data)
        if n < 1:
            raise ValueError(f"{self.caller}: the {self.kind} has no batches (len {n})")
        if self.shuffle:
            from .random import get_rng
            return get_rng().permutation(n)
        return range(n)

    def _iterator_epoch(self, epoch):
        if self.fresh or self._iterator is None:
            self._iterator = iter(self.data)
        counted = itertools.count() if self.steps is None else range(self.steps)
        for step in counted:
            try:
                batch = next(self._iterator)
            except StopIteration:
                if self.steps is not None:
                    raise ValueError(
                        f"{self.caller}: the {self.kind} ran out after {step} batches of "
                        f"{self.steps_name}={self.steps}{_in_epoch(epoch)}; make it "
                        f"yield batches forever (while True: ...) or lower "
                        f"{self.steps_name}") from None
                if step == 0:
                    again = (f" (a generator is read only once: pass {self.steps_name} and "
                             f"loop forever in it, or give a Sequence or an object whose "
                             f"__iter__ starts afresh)" if not self.fresh and self._passes
                             else "")
                    raise ValueError(f"{self.caller}: the {self.kind} gave no batches"
                                     f"{_in_epoch(epoch)}{again}") from None
                return
            label = f"{self.caller}: batch {step} (from 0){_of_epoch(epoch)} from the {self.kind}"
            yield label, batch

    def end_epoch(self):
        """After a pass: the Sequence's ``on_epoch_end``."""
        self._passes += 1
        if self.is_sequence and hasattr(self.data, "on_epoch_end"):
            self.data.on_epoch_end()


def _of_epoch(epoch):
    return "" if epoch is None else f" of epoch {epoch + 1}"


def _in_epoch(epoch):
    return "" if epoch is None else f" in epoch {epoch + 1}"
