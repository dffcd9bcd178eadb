"""Keras-style callbacks: hooks that ``Model.fit`` calls around epochs and batches.

Hook order, as in Keras: ``on_train_begin`` → for each epoch ``on_epoch_begin``
→ for each batch ``on_train_batch_begin`` / ``on_train_batch_end`` → (validation:
``on_test_begin`` … ``on_test_end``) → ``on_epoch_end`` (logs include the
``val_`` entries) → ``on_train_end``. Setting ``model.stop_training = True``
ends training after the current batch/epoch.

Callbacks use only this model interface: ``stop_training``, ``get_weights()``,
``set_weights(list)``, ``save(path)``, ``save_weights(path)`` and
``optimizer.learning_rate`` (a float). Nothing here knows how models compute.

Epoch logs hold Python floats. ``fit``'s batch logs are a mapping whose values
may still be on the model's backend (a GPU): they are fetched, all at once,
when a callback reads one, so a callback that reads every batch's logs (as
``TerminateOnNaN`` does) makes training wait on the device once per batch.
"""
import csv
import os
import sys

import numpy

from ._callback_base import _HOOKS, Callback
from ._training_callbacks import (EarlyStopping, LearningRateScheduler, ModelCheckpoint,
                                  ReduceLROnPlateau, TerminateOnNaN)
from .progress import Progbar, is_dynamic_stream
from ._types import Any, Optional

__all__ = ["Callback", "CallbackList", "History", "ProgbarLogger", "EarlyStopping",
           "ModelCheckpoint", "ReduceLROnPlateau", "LearningRateScheduler", "TerminateOnNaN",
           "CSVLogger", "LambdaCallback"]

class CallbackList(Callback):
    """Calls each hook on every callback in order.

    ``add_history`` / ``add_progbar`` append a ``History`` / ``ProgbarLogger``
    unless one is already in the list (Keras puts the progress bar before
    History so that History records what the bar shows).

    Parameters
    ----------
    callbacks : list of Callback, optional
        The callbacks, called in this order.
    model : Model, optional
        Set on every callback.
    params : dict, optional
        Set on every callback.
    add_history : bool, default False
        Append a ``History`` unless one is there.
    add_progbar : bool, default False
        Append a ``ProgbarLogger`` unless one is there.
    """

    def __init__(self, callbacks=None, model=None, params=None, add_history=False,
                 add_progbar=False):
        super().__init__()
        self.callbacks = list(callbacks or [])
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks must be fastnn.callbacks.Callback instances, "
                                f"got {cb!r}")
        if add_progbar and not any(isinstance(c, ProgbarLogger) for c in self.callbacks):
            self.callbacks.append(ProgbarLogger())
        if add_history and not any(isinstance(c, History) for c in self.callbacks):
            self.callbacks.append(History())
        if model is not None:
            self.set_model(model)
        if params is not None:
            self.set_params(params)

    def __iter__(self):
        return iter(self.callbacks)

    def __len__(self):
        return len(self.callbacks)

    def append(self, callback):
        """Add ``callback`` at the end (it gets the list's model and params).

        Parameters
        ----------
        callback : Callback
            The callback to add.
        """
        self.callbacks.append(callback)
        if self.model is not None:
            callback.set_model(self.model)
        if self.params:
            callback.set_params(self.params)

    def set_model(self, model):
        super().set_model(model)
        for cb in self.callbacks:
            cb.set_model(model)

    def set_params(self, params):
        super().set_params(params)
        for cb in self.callbacks:
            cb.set_params(params)

    def _call(self, hook, *args):
        for cb in self.callbacks:
            getattr(cb, hook)(*args)

    def on_train_begin(self, logs=None):
        self._call("on_train_begin", logs)

    def on_train_end(self, logs=None):
        self._call("on_train_end", logs)

    def on_epoch_begin(self, epoch, logs=None):
        self._call("on_epoch_begin", epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._call("on_epoch_end", epoch, logs)

    def on_train_batch_begin(self, batch, logs=None):
        self._call("on_train_batch_begin", batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        self._call("on_train_batch_end", batch, logs)

    def on_test_begin(self, logs=None):
        self._call("on_test_begin", logs)

    def on_test_end(self, logs=None):
        self._call("on_test_end", logs)

    def on_test_batch_begin(self, batch, logs=None):
        self._call("on_test_batch_begin", batch, logs)

    def on_test_batch_end(self, batch, logs=None):
        self._call("on_test_batch_end", batch, logs)

    def on_predict_begin(self, logs=None):
        self._call("on_predict_begin", logs)

    def on_predict_end(self, logs=None):
        self._call("on_predict_end", logs)

    def on_predict_batch_begin(self, batch, logs=None):
        self._call("on_predict_batch_begin", batch, logs)

    def on_predict_batch_end(self, batch, logs=None):
        self._call("on_predict_batch_end", batch, logs)


# ------------------------------------------------------------------- History
class History(Callback):
    """Records epoch logs: ``history["loss"][i]`` is the loss after epoch ``epoch[i]``.

    ``fit`` returns this object.
    """

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)
        if self.model is not None:
            try:
                self.model.history = self
            except AttributeError:
                pass

    def plot(self, path: Any = None, metrics: Optional[list] = None,
             figsize: Optional[tuple] = None) -> Any:
        """Plot each metric's training and validation curves; save a PNG to ``path``.

        Needs matplotlib, an optional dependency.

        Parameters
        ----------
        path : str or os.PathLike, optional
            Where to save the PNG (default: not saved).
        metrics : list of str, optional
            The names to plot (default: every logged name without the
            ``val_`` prefix); each gets its validation curve beside it.
        figsize : tuple of float, optional
            The figure size in inches.

        Returns
        -------
        matplotlib.figure.Figure
            The figure (it displays itself in Jupyter).

        Raises
        ------
        ImportError
            If matplotlib is not installed.
        ValueError
            If the history is empty or a name was not logged.
        """
        try:
            from matplotlib.figure import Figure
        except ImportError:
            raise ImportError("History.plot needs matplotlib, which fastnn does not install "
                              "by default: pip install matplotlib (or pip install "
                              "'fastnn[plot]')") from None
        if not self.history:
            raise ValueError("History is empty: nothing to plot (train for an epoch first)")
        names = metrics or [k for k in self.history if not k.startswith("val_")
                            or k[4:] not in self.history]
        missing = [n for n in names if n not in self.history]
        if missing:
            raise ValueError(f"not in the history: {missing}; logged: {sorted(self.history)}")
        fig = Figure(figsize=figsize or (5 * len(names), 3.5))
        epochs = [e + 1 for e in self.epoch] or None
        for i, name in enumerate(names):
            ax = fig.add_subplot(1, len(names), i + 1)
            for key, label in ((name, "train"), ("val_" + name, "validation")):
                if key in self.history:
                    values = self.history[key]
                    x = epochs if epochs and len(epochs) == len(values) else \
                        range(1, len(values) + 1)
                    ax.plot(list(x), values, marker="o" if len(values) < 30 else None,
                            label=label)
            ax.set_title(name)
            ax.set_xlabel("epoch")
            ax.legend()
            ax.grid(True, alpha=0.3)
        fig.tight_layout()
        if path is not None:
            fig.savefig(os.fspath(path), dpi=100)
        return fig


# ------------------------------------------------------------- ProgbarLogger
class ProgbarLogger(Callback):
    """Shows training progress: a live bar on a terminal, one line per epoch otherwise.

    ``verbose`` (default: ``params["verbose"]`` from ``fit``): 0 silent,
    1 progress bar (one line per epoch when output is not a terminal or ``CI``
    is set), 2 one line per epoch.

    Parameters
    ----------
    verbose : {0, 1, 2}, optional
        As above; default: ``fit``'s ``verbose``.
    stream : file-like, optional
        Where to write (default ``sys.stdout``).
    interval : float, default 0.05
        The fewest seconds between two redraws of the bar.
    """

    def __init__(self, verbose=None, stream=None, interval=0.05):
        super().__init__()
        self._verbose, self.stream, self.interval = verbose, stream, interval
        self.progbar = None
        self._seen = 0
        self._learned = None  # the steps an epoch of unknown length turned out to have

    @property
    def verbose(self):
        """The verbosity in effect: the one given, else ``fit``'s."""
        if self._verbose is not None:
            return self._verbose
        verbose = self.params.get("verbose", 1)
        return 1 if verbose == "auto" else int(verbose)

    def on_train_begin(self, logs=None):
        self._learned = None

    def on_epoch_begin(self, epoch, logs=None):
        if not self.verbose:
            return
        stream = self.stream if self.stream is not None else sys.stdout
        epochs = self.params.get("epochs")
        header = f"Epoch {epoch + 1}/{epochs}" if epochs else f"Epoch {epoch + 1}"
        dynamic = self.verbose == 1 and is_dynamic_stream(stream)
        if dynamic:
            stream.write(header + "\n")
        # A generator's length, unknown at first, is known after one epoch (as Keras).
        steps = self.params.get("steps")
        self.progbar = Progbar(steps if steps is not None else self._learned, verbose=self.verbose,
                               interval=self.interval, stateful_metrics="all",
                               stream=stream, dynamic=dynamic, prefix=header)
        self._seen = 0

    def on_train_batch_end(self, batch, logs=None):
        if self.progbar is not None:
            self._seen = batch + 1
            # The logs as given: the bar reads them only when it redraws.
            self.progbar.update(self._seen, logs if logs is not None else {}, finalize=False)

    def on_epoch_end(self, epoch, logs=None):
        if self.progbar is not None:
            if self.progbar.target is None and not getattr(self.model, "stop_training", False):
                self._learned = self._seen
            self.progbar.update(self._seen, dict(logs or {}), finalize=True)
            self.progbar = None


# ----------------------------------------------------------------- CSVLogger
class CSVLogger(Callback):
    """Write one CSV row per epoch: ``epoch`` (from 0) then the log values.

    Columns are the sorted keys of the first epoch's logs; a value missing
    later is written as ``NA``. With ``append=True`` rows are added to an
    existing file and the header is not repeated.

    Parameters
    ----------
    filename : str or os.PathLike
        The CSV file (its folder is created).
    separator : str, default ","
        The field separator.
    append : bool, default False
        Add to an existing file instead of overwriting it.
    """

    def __init__(self, filename: Any, separator: str = ",", append: bool = False) -> None:
        super().__init__()
        self.filename, self.sep, self.append = os.fspath(filename), separator, append
        self.keys: Optional[list] = None
        self._file: Any = None
        self._writer: Any = None
        self._write_header = True

    def on_train_begin(self, logs=None):
        self._write_header = True
        if self.append and os.path.exists(self.filename):
            with open(self.filename, encoding="utf-8") as f:
                self._write_header = not f.read(1)
            self._read_existing_keys()
        folder = os.path.dirname(self.filename)
        if folder:
            os.makedirs(folder, exist_ok=True)
        self._file = open(self.filename, "a" if self.append else "w", newline="",
                          encoding="utf-8")
        self._writer = None
        if self._write_header:
            self.keys = None

    def _read_existing_keys(self):
        with open(self.filename, newline="", encoding="utf-8") as f:
            header = next(csv.reader(f, delimiter=self.sep), None)
        if header and header[0] == "epoch":
            self.keys = header[1:]

    @staticmethod
    def _format(value):
        if isinstance(value, str):
            return value
        array = numpy.asarray(value)
        if array.ndim == 0:
            return value.item() if isinstance(value, numpy.generic) else value
        return f"[{', '.join(str(v) for v in array.ravel())}]"

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
        if self._writer is None:
            self._writer = csv.DictWriter(self._file, fieldnames=["epoch"] + self.keys,
                                          delimiter=self.sep, extrasaction="ignore")
            if self._write_header:
                self._writer.writeheader()
        row = {"epoch": epoch}
        row.update({k: self._format(logs[k]) if k in logs else "NA" for k in self.keys})
        self._writer.writerow(row)
        self._file.flush()

    def on_train_end(self, logs=None):
        if self._file is not None:
            self._file.close()
        self._file = self._writer = None


# ------------------------------------------------------------ LambdaCallback
class LambdaCallback(Callback):
    """A callback made from functions, e.g. ``LambdaCallback(on_epoch_end=lambda e, logs: ...)``.

    Any hook name is accepted as a keyword (``on_train_begin``,
    ``on_epoch_end``, ``on_train_batch_end``, ``on_batch_end`` …); the
    functions get the hook's arguments (``epoch``/``batch`` and ``logs``).

    Parameters
    ----------
    **hooks : callable
        Functions by hook name.

    Raises
    ------
    ValueError
        If a name is not a hook.
    """

    def __init__(self, **hooks):
        super().__init__()
        allowed = set(_HOOKS) | {"on_batch_begin", "on_batch_end"}
        unknown = sorted(set(hooks) - allowed)
        if unknown:
            raise ValueError(f"LambdaCallback: unknown hooks {unknown}; valid: "
                             f"{sorted(allowed)}")
        for name, fn in hooks.items():
            if fn is not None:
                if not callable(fn):
                    raise TypeError(f"LambdaCallback: {name} must be callable, got {fn!r}")
                setattr(self, name, fn)
