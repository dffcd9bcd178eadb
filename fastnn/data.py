"""Batches that do not sit in arrays: Keras's ``Sequence`` (``PyDataset``)
and what ``fit``/``evaluate``/``predict`` read from a generator, an iterable
or a Sequence, one epoch at a time, and ``Model``'s side of it
(``_ModelBatches``: each batch checked and moved to the backend, the
evaluation pass over batches; arrays cut into batches). The checks
themselves (numbers, finite, shapes) are ``fastnn/inputs.py``'s, and the
training step is ``Model``'s.

Batches are read in the calling thread, in order, when the step needs them:
there are no worker threads or processes, so ``workers``,
``use_multiprocessing`` and ``max_queue_size`` (Keras's loading options) are
accepted and change nothing but a warning (``check_loader_options``).
"""
import itertools
import warnings

import numpy

from ._types import Any, Iterator
from .backend import backend_of, get_backend
from .inputs import _sample_weights, _take
from .progress import Progbar

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

    Parameters
    ----------
    workers : int, default 1
        Accepted (Keras 3's ``PyDataset``); a value above 1 warns.
    use_multiprocessing : bool, default False
        Accepted; True warns.
    max_queue_size : int, default 10
        Accepted.

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

    def __init__(self, workers: int = 1, use_multiprocessing: bool = False,
                 max_queue_size: int = 10) -> None:
        check_loader_options(workers, use_multiprocessing, max_queue_size,
                             where=type(self).__name__)
        self.workers, self.use_multiprocessing = workers, use_multiprocessing
        self.max_queue_size = max_queue_size

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must define __len__: the number of "
                                  f"batches in one epoch")

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__(index): "
                                  f"batch number index, as x, (x, y) or (x, y, sample_weight)")

    @property
    def num_batches(self) -> int:
        """The number of batches (Keras 3's name for ``len``)."""
        return len(self)

    def on_epoch_begin(self) -> None:
        """Called before each pass over the batches."""

    def on_epoch_end(self) -> None:
        """Called after each pass over the batches."""

    def __iter__(self) -> Iterator[Any]:
        for i in range(len(self)):
            yield self[i]


PyDataset = Sequence  # Keras 3's name


def check_loader_options(workers, use_multiprocessing, max_queue_size, where="fit"):
    """Keras's parallel-loading options: checked, and a warning when they ask
    for workers, which fastnn does not start (batches load in the calling
    thread, so results never depend on them).

    Parameters
    ----------
    workers : int
        Keras's number of loading workers.
    use_multiprocessing : bool
        Keras's process-based loading flag.
    max_queue_size : int
        Keras's queue length.
    where : str, default "fit"
        The caller, as messages name it.

    Raises
    ------
    ValueError
        If ``workers`` or ``max_queue_size`` is not an integer.
    """
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
    and tuples of arrays, dicts by input name, anything with a ``shape``).

    Parameters
    ----------
    x : object
        What was passed as ``x``.
    ops : Ops
        The model's backend (its arrays are data).

    Returns
    -------
    bool
    """
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
    therefore ``((x1, x2), y)``, never ``(x1, x2, y)``.

    Parameters
    ----------
    batch : object
        One batch of a source.

    Returns
    -------
    tuple
        ``(x, y, sample_weight)``; missing parts are None.

    Raises
    ------
    ValueError
        If a tuple has more than three parts.
    """
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

    Parameters
    ----------
    data : Sequence, iterable or iterator
        The source.
    steps : int, optional
        Batches per epoch (default: all of a Sequence; a generator until it ends).
    shuffle : bool
        Visit a Sequence's batches in a new random order each pass over it (each
        epoch when an epoch is the whole Sequence).
    caller : str
        ``"fit"``, ``"evaluate"`` or ``"predict"``, as messages name it.
    steps_name : str
        The name of the ``steps`` argument, as messages name it.
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
        """The ``(label, batch)`` pairs of one epoch.

        Parameters
        ----------
        epoch : int, optional
            Counted from 0; only names the epoch in messages.
        """
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


class _ModelBatches:
    """``Model``'s side of reading batches (a base class of ``Model``): each
    batch of a source checked as ``fit``'s arrays are, and the evaluation
    pass over batches that ``evaluate`` and ``fit``'s validation share."""

    def _source_batches(self, source, epoch=None, need_y=True, class_weight=None):
        """The batches of one epoch of a ``BatchSource``, each checked as
        ``fit``'s arrays are: ``(xs, ys, sample weights)`` on the backend
        (``ys`` and the weights None when ``need_y`` is false)."""
        for label, batch in source.epoch(epoch):
            yield self._prepare_batch(label, batch, need_y, class_weight)[:3]

    def _prepare_batch(self, label, batch, need_y, class_weight=None):
        """One batch of a source as ``(xs, ys, sample weights, x as given)``;
        a ``ValueError``/``TypeError`` names the batch (``label``)."""
        try:
            x, y, sw = unpack_batch(batch)
            if x is None:
                raise ValueError("the batch has no x (got None)")
            xs = self._prepare_x(x)
            n = xs[0].shape[0]
            if n == 0:
                raise ValueError("the batch is empty (0 samples)")
            if not need_y:
                return xs, None, None, x
            if y is None:
                raise ValueError(f"the batch holds only x ({type(batch).__name__}); batches "
                                 f"for training and evaluation are (x, y) or (x, y, "
                                 f"sample_weight)")
            ys = self._prepare_y(y, n)
            sw = _sample_weights(sw, class_weight, next(a for a in ys if a is not None), n,
                                 self.ops)
        except (ValueError, TypeError) as e:
            if type(e) not in (ValueError, TypeError):
                raise  # an exception type of its own (a backend's) keeps its type and text
            raise type(e)(f"{label}: {e}") from None
        return xs, ys, sw, x

    def _evaluate_batches(self, batches, steps, verbose=0):
        """The logs over ``(xs, ys, sample weights)`` batches (``steps`` of
        them, None when unknown), each batch weighing by its samples."""
        table = self._make_metrics()
        bar = Progbar(steps, verbose=verbose, stateful_metrics="all") if verbose else None
        total, weight_total = 0.0, 0.0
        part_totals = [0.0] * len(self.outputs)
        reg = self._regularization_loss()  # the weights do not change while evaluating
        step = 0
        for step, (xb, yb, swb) in enumerate(batches, 1):
            nb = xb[0].shape[0]
            preds = self._forward(xb, False)[0]
            loss, parts = self._loss_values(yb, preds, swb)
            total += loss * nb
            for k, part in enumerate(parts):
                if part is not None:
                    part_totals[k] += part * nb
            weight_total += nb
            for k, _, m in table:
                m.update_state(*_unmasked(yb[k], preds[k], swb, self._last_masks[k]))
            if bar is not None:
                bar.update(step, self._loss_logs(total / weight_total + reg, [], table))
        logs = dict(self._loss_logs(total / weight_total + reg,
                                    [None if l is None else p / weight_total
                                     for l, p in zip(self._losses, part_totals)], table))
        if bar is not None and steps is None:
            bar.update(step, logs, finalize=True)  # a bar without a total ends here
        return logs


def _unmasked(y, pred, sample_weight, mask):
    """A metric's (y, pred, sample_weight) over the unmasked steps of a
    masked output, each step a sample: as Keras, a metric of a sequence output
    counts only the steps its mask keeps."""
    if mask is None:
        return y, pred, sample_weight
    if sample_weight is not None:
        xp = (backend_of(mask) or get_backend()).xp
        sw = xp.asarray(sample_weight).reshape((-1,) + (1,) * (mask.ndim - 1))
        sample_weight = xp.broadcast_to(sw, mask.shape)[mask]
    return y[mask], pred[mask], sample_weight



def _array_batches(xs, ys, sample_weight, batch_size, shuffle_ops=None):
    """Batches ``(xs, ys, sample weights)`` of arrays already on the backend,
    in order or, with ``shuffle_ops``, in a permutation it draws when the
    first batch is taken (so at the same point of the seeded stream as a
    loop that drew it before its first step)."""
    n = xs[0].shape[0]
    order = shuffle_ops.permutation(n) if shuffle_ops is not None else None
    for lo in range(0, n, batch_size):
        idx = order[lo:lo + batch_size] if order is not None else slice(lo, lo + batch_size)
        yield ([a[idx] for a in xs], _take(ys, idx),
               None if sample_weight is None else sample_weight[idx])


def _refuse_with_source(caller, x, **given):
    """Keras's refusals when ``x`` is a generator or a Sequence: its batches
    carry the targets, the weights and the batch size, and a stream cannot be
    split for validation."""
    kind = type(x).__name__
    for name, value in given.items():
        if name == "validation_split":
            if value:
                raise ValueError(f"{caller}: validation_split is only for arrays; x is a "
                                 f"{kind}, which cannot be split: pass validation_data (arrays, "
                                 f"a generator or a Sequence)")
        elif value is not None:
            what = ("its batches set the batch size" if name == "batch_size" else
                    f"its batches hold {name} ((x, y) or (x, y, sample_weight))")
            raise ValueError(f"{caller}: {name} must not be given when x is a {kind}: {what}")
