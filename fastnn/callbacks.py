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
import math
import numbers
import os
import sys
import warnings

import numpy

from .progress import Progbar, is_dynamic_stream
from ._types import Any, Callable, Optional, Union

__all__ = ["Callback", "CallbackList", "History", "ProgbarLogger", "EarlyStopping",
           "ModelCheckpoint", "ReduceLROnPlateau", "LearningRateScheduler", "TerminateOnNaN",
           "CSVLogger", "LambdaCallback"]

_HOOKS = (
    "on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end",
    "on_train_batch_begin", "on_train_batch_end", "on_test_begin", "on_test_end",
    "on_test_batch_begin", "on_test_batch_end", "on_predict_begin", "on_predict_end",
    "on_predict_batch_begin", "on_predict_batch_end",
)
# Names that get larger as the model gets better, for mode="auto".
_HIGHER_IS_BETTER = ("acc", "accuracy", "auc", "precision", "recall", "f1", "f1_score")


class Callback:
    """Base class: every hook does nothing; override the ones you need.

    ``self.model`` and ``self.params`` (``epochs``, ``steps``, ``verbose`` …)
    are set by ``fit`` before ``on_train_begin``.
    """

    def __init__(self):
        self.model: Any = None  # the Model being trained, set by fit
        self.params = {}

    def set_model(self, model):
        """Attach the model being trained (``fit`` calls this).

        Parameters
        ----------
        model : Model
            The model; ``self.model`` from now on.
        """
        self.model = model

    def set_params(self, params):
        """Set ``self.params`` (``epochs``, ``steps``, ``verbose``, ...).

        Parameters
        ----------
        params : dict
            The run's settings.
        """
        self.params = dict(params or {})

    def on_train_begin(self, logs=None):
        """Called once before training.

        Parameters
        ----------
        logs : dict, optional
            Empty (Keras passes None or {}).
        """
        pass

    def on_train_end(self, logs=None):
        """Called once after training.

        Parameters
        ----------
        logs : dict, optional
            The last epoch's logs.
        """
        pass

    def on_epoch_begin(self, epoch, logs=None):
        """Called at the start of each epoch.

        Parameters
        ----------
        epoch : int
            The epoch index, from 0.
        logs : dict, optional
            Empty.
        """
        pass

    def on_epoch_end(self, epoch, logs=None):
        """Called at the end of each epoch; set ``self.model.stop_training = True`` to stop.

        Parameters
        ----------
        epoch : int
            The epoch index, from 0.
        logs : dict, optional
            The epoch's ``loss`` and metrics, and ``val_`` ones with validation.
        """
        pass

    def on_batch_begin(self, batch, logs=None):
        """Keras 2 name; ``on_train_batch_begin`` calls it by default.

        Parameters
        ----------
        batch : int
            The batch index within the epoch.
        logs : dict, optional
            Empty.
        """

    def on_batch_end(self, batch, logs=None):
        """Keras 2 name; ``on_train_batch_end`` calls it by default.

        Parameters
        ----------
        batch : int
            The batch index within the epoch.
        logs : dict, optional
            The batch's ``loss`` and metrics.
        """

    def on_train_batch_begin(self, batch, logs=None):
        """Called before each training batch.

        Parameters
        ----------
        batch : int
            The batch index within the epoch, from 0.
        logs : dict, optional
            Empty.
        """
        self.on_batch_begin(batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        """Called after each training batch.

        Parameters
        ----------
        batch : int
            The batch index within the epoch, from 0.
        logs : dict, optional
            The batch's ``loss`` and metrics (reading them fetches them from the backend).
        """
        self.on_batch_end(batch, logs)

    def on_test_begin(self, logs=None):
        """Called before an evaluation.

        Keras's hook, kept so that Keras callbacks run; fastnn's
        ``evaluate``/``predict`` do not call it yet.

        Parameters
        ----------
        logs : dict, optional
            Empty.
        """
        pass

    def on_test_end(self, logs=None):
        """Called after an evaluation.

        Keras's hook, kept so that Keras callbacks run; fastnn's
        ``evaluate``/``predict`` do not call it yet.

        Parameters
        ----------
        logs : dict, optional
            Its ``loss`` and metrics.
        """
        pass

    def on_test_batch_begin(self, batch, logs=None):
        """Called before each evaluation batch.

        Keras's hook, kept so that Keras callbacks run; fastnn's
        ``evaluate``/``predict`` do not call it yet.

        Parameters
        ----------
        batch : int
            The batch index within the evaluation, from 0.
        logs : dict, optional
            Empty.
        """
        pass

    def on_test_batch_end(self, batch, logs=None):
        """Called after each evaluation batch.

        Keras's hook, kept so that Keras callbacks run; fastnn's
        ``evaluate``/``predict`` do not call it yet.

        Parameters
        ----------
        batch : int
            The batch index within the evaluation, from 0.
        logs : dict, optional
            The batch's ``loss`` and metrics.
        """
        pass

    def on_predict_begin(self, logs=None):
        """Called before ``predict``.

        Keras's hook, kept so that Keras callbacks run; fastnn's
        ``evaluate``/``predict`` do not call it yet.

        Parameters
        ----------
        logs : dict, optional
            Empty.
        """
        pass

    def on_predict_end(self, logs=None):
        """Called after ``predict``.

        Keras's hook, kept so that Keras callbacks run; fastnn's
        ``evaluate``/``predict`` do not call it yet.

        Parameters
        ----------
        logs : dict, optional
            Empty.
        """
        pass

    def on_predict_batch_begin(self, batch, logs=None):
        """Called before each ``predict`` batch.

        Keras's hook, kept so that Keras callbacks run; fastnn's
        ``evaluate``/``predict`` do not call it yet.

        Parameters
        ----------
        batch : int
            The batch index within the prediction, from 0.
        logs : dict, optional
            Empty.
        """
        pass

    def on_predict_batch_end(self, batch, logs=None):
        """Called after each ``predict`` batch.

        Keras's hook, kept so that Keras callbacks run; fastnn's
        ``evaluate``/``predict`` do not call it yet.

        Parameters
        ----------
        batch : int
            The batch index within the prediction, from 0.
        logs : dict, optional
            Empty.
        """
        pass


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


# ------------------------------------------------------------------- helpers
def _copy_weights(weights):
    return [numpy.array(w, copy=True) for w in weights]


def _better_is_higher(monitor, mode, owner):
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"{owner}: mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode != "auto":
        return mode == "max"
    name = monitor[4:] if monitor.startswith("val_") else monitor
    return name in _HIGHER_IS_BETTER or name.endswith(("_accuracy", "_acc"))


def _monitored(logs, monitor, owner):
    """``logs[monitor]`` as a float, or None with a warning when it is missing."""
    logs = logs or {}
    value = logs.get(monitor)
    if value is None:
        warnings.warn(f"{owner} is conditioned on {monitor!r}, which is not in the logs; "
                      f"available: {', '.join(sorted(logs)) or 'none'}. (Validation "
                      f"entries such as 'val_loss' need validation_data or "
                      f"validation_split in fit.)", RuntimeWarning, stacklevel=3)
        return None
    return float(value)


def _learning_rate(model, owner):
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not hasattr(optimizer, "learning_rate"):
        raise AttributeError(f"{owner} needs model.optimizer.learning_rate; compile the "
                             f"model first")
    lr = optimizer.learning_rate
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real):
        raise TypeError(f"{owner} reads and sets optimizer.learning_rate, but it is "
                        f"{type(lr).__name__}, not a float; give the optimizer a float "
                        f"learning rate to use {owner}")
    return float(lr)


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


# ------------------------------------------------------------- EarlyStopping
class EarlyStopping(Callback):
    """Stop training when ``monitor`` has stopped improving (Keras semantics).

    An epoch improves when the value beats the best so far by more than
    ``min_delta``. After ``patience`` epochs in a row without improvement,
    ``model.stop_training`` is set. With ``baseline``, the wait is only reset
    by values that also beat the baseline. Epochs before ``start_from_epoch``
    are ignored. With ``restore_best_weights``, the weights of the best epoch
    are put back when training ends.

    Parameters
    ----------
    monitor : str, default "val_loss"
        The log entry to watch.
    min_delta : float, default 0.0
        The least change that counts as an improvement.
    patience : int, default 0
        Epochs without improvement before stopping.
    verbose : int, default 0
        1: print a line when stopping.
    mode : {"auto", "min", "max"}, default "auto"
        Whether lower or higher is better ("auto": higher for accuracies and
        the like, lower otherwise).
    baseline : float, optional
        A value the monitored quantity must beat.
    restore_best_weights : bool, default False
        Put the best epoch's weights back at the end.
    start_from_epoch : int, default 0
        Epochs to ignore at the start (warm-up).

    Examples
    --------
    >>> stop = EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)
    >>> model.fit(x, y, validation_split=0.1, epochs=100, callbacks=[stop])
    """

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0.0, patience: int = 0,
                 verbose: int = 0, mode: str = "auto", baseline: Optional[float] = None,
                 restore_best_weights: bool = False, start_from_epoch: int = 0) -> None:
        super().__init__()
        if patience < 0 or start_from_epoch < 0:
            raise ValueError("patience and start_from_epoch must be >= 0")
        self.monitor, self.patience, self.verbose = monitor, patience, verbose
        self.baseline, self.restore_best_weights = baseline, restore_best_weights
        self.start_from_epoch, self.mode = start_from_epoch, mode
        self.higher_is_better = _better_is_higher(monitor, mode, "EarlyStopping")
        self.min_delta = abs(min_delta) if self.higher_is_better else -abs(min_delta)
        self._reset()

    def _reset(self):
        self.wait = 0
        self.stopped_epoch = 0
        self.best = -math.inf if self.higher_is_better else math.inf
        self.best_weights = None
        self.best_epoch = 0

    def _is_improvement(self, value, reference):
        if reference is None:
            return True
        if self.higher_is_better:
            return value - self.min_delta > reference
        return value - self.min_delta < reference

    def on_train_begin(self, logs=None):
        self._reset()

    def on_epoch_end(self, epoch, logs=None):
        current = _monitored(logs, self.monitor, "EarlyStopping")
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            # Keep some weights even if no epoch ever beats the baseline.
            self.best_weights = _copy_weights(self.model.get_weights())
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = _copy_weights(self.model.get_weights())
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(f"Restoring model weights from the end of the best epoch: "
                      f"{self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


# ----------------------------------------------------------- ModelCheckpoint
class ModelCheckpoint(Callback):
    """Save the model (or its weights) after each epoch, or every ``save_freq`` batches.

    ``filepath`` may hold format fields filled from ``epoch`` (1-based) and the
    logs, e.g. ``"ckpt/model-{epoch:02d}-{val_loss:.4f}.npz"``. With
    ``save_best_only``, a save happens only when ``monitor`` improves on the
    best seen (or on ``initial_value_threshold``).

    Parameters
    ----------
    filepath : str or os.PathLike
        Where to save; may hold format fields (above).
    monitor : str, default "val_loss"
        The log entry ``save_best_only`` watches.
    verbose : int, default 0
        1: print a line at each save.
    save_best_only : bool, default False
        Save only when ``monitor`` improves.
    save_weights_only : bool, default False
        ``model.save_weights`` instead of ``model.save``.
    mode : {"auto", "min", "max"}, default "auto"
        Whether lower or higher is better.
    save_freq : "epoch" or int, default "epoch"
        Save after each epoch, or after every that many batches.
    initial_value_threshold : float, optional
        The value to beat for the first save with ``save_best_only``.
    """

    def __init__(self, filepath: Any, monitor: str = "val_loss", verbose: int = 0,
                 save_best_only: bool = False, save_weights_only: bool = False,
                 mode: str = "auto", save_freq: Union[str, int] = "epoch",
                 initial_value_threshold: Optional[float] = None) -> None:
        super().__init__()
        if save_freq != "epoch" and (isinstance(save_freq, bool)
                                     or not isinstance(save_freq, int) or save_freq < 1):
            raise ValueError(f"save_freq must be 'epoch' or a positive number of batches, "
                             f"got {save_freq!r}")
        self.filepath = os.fspath(filepath)
        self.monitor, self.verbose = monitor, verbose
        self.save_best_only, self.save_weights_only = save_best_only, save_weights_only
        self.save_freq: Any = save_freq  # "epoch" or a number of batches
        self.higher_is_better = _better_is_higher(monitor, mode, "ModelCheckpoint")
        if initial_value_threshold is not None:
            self.best = float(initial_value_threshold)
        else:
            self.best = -math.inf if self.higher_is_better else math.inf
        self._batches_seen = 0
        self._epoch = 0

    def _path(self, epoch, logs):
        try:
            return self.filepath.format(epoch=epoch + 1, **(logs or {}))
        except (KeyError, IndexError, ValueError) as exc:
            raise KeyError(f"ModelCheckpoint cannot fill filepath {self.filepath!r} "
                           f"({type(exc).__name__}: {exc}); fields can be 'epoch' and the "
                           f"log keys {sorted(logs or {})}") from None

    def _save(self, epoch, logs):
        logs = logs or {}
        if self.save_best_only:
            current = _monitored(logs, self.monitor, "ModelCheckpoint")
            if current is None:
                return
            improved = current > self.best if self.higher_is_better else current < self.best
            if not improved:
                if self.verbose > 0:
                    print(f"Epoch {epoch + 1}: {self.monitor} did not improve from "
                          f"{self.best:.5f}")
                return
            if self.verbose > 0:
                print(f"Epoch {epoch + 1}: {self.monitor} improved from {self.best:.5f} to "
                      f"{current:.5f}, saving model")
            self.best = current
        path = self._path(epoch, logs)
        folder = os.path.dirname(path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        if self.save_weights_only:
            if not hasattr(self.model, "save_weights"):
                raise TypeError(f"ModelCheckpoint(save_weights_only=True): "
                                f"{type(self.model).__name__} has no save_weights; use "
                                f"save_weights_only=False to save the whole model")
            self.model.save_weights(path)
        else:
            self.model.save(path)
        if self.verbose > 0 and not self.save_best_only:
            print(f"Epoch {epoch + 1}: saving model to {path}")

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq != "epoch":
            self._batches_seen += 1
            if self._batches_seen % self.save_freq == 0:
                self._save(self._epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save(epoch, logs)


# --------------------------------------------------------- ReduceLROnPlateau
class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by ``factor`` when ``monitor`` stops improving.

    After ``patience`` epochs without an improvement larger than ``min_delta``
    the rate becomes ``max(lr * factor, min_lr)``; then ``cooldown`` epochs
    pass before waiting starts again. Adds ``learning_rate`` to the epoch logs.

    Parameters
    ----------
    monitor : str, default "val_loss"
        The log entry to watch.
    factor : float, default 0.1
        In (0, 1): the rate's multiplier.
    patience : int, default 10
        Epochs without improvement before reducing.
    verbose : int, default 0
        1: print a line at each reduction.
    mode : {"auto", "min", "max"}, default "auto"
        Whether lower or higher is better.
    min_delta : float, default 1e-4
        The least change that counts as an improvement.
    cooldown : int, default 0
        Epochs to wait after a reduction before counting again.
    min_lr : float, default 0.0
        The lowest rate.
    """

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10,
                 verbose: int = 0, mode: str = "auto", min_delta: float = 1e-4,
                 cooldown: int = 0, min_lr: float = 0.0) -> None:
        super().__init__()
        if not 0.0 < factor < 1.0:
            raise ValueError(f"ReduceLROnPlateau: factor must be in (0, 1), got {factor}")
        if patience < 0 or cooldown < 0 or min_lr < 0:
            raise ValueError("ReduceLROnPlateau: patience, cooldown and min_lr must be >= 0")
        self.monitor, self.factor, self.patience, self.verbose = monitor, factor, patience, verbose
        self.min_delta, self.cooldown, self.min_lr = abs(min_delta), cooldown, min_lr
        self.higher_is_better = _better_is_higher(monitor, mode, "ReduceLROnPlateau")
        self._reset()

    def _reset(self):
        self.best = -math.inf if self.higher_is_better else math.inf
        self.wait = 0
        self.cooldown_counter = 0

    def _improved(self, value):
        if self.higher_is_better:
            return value > self.best + self.min_delta
        return value < self.best - self.min_delta

    def in_cooldown(self):
        """Whether the cooldown after a reduction is still running."""
        return self.cooldown_counter > 0

    def on_train_begin(self, logs=None):
        self._reset()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = _learning_rate(self.model, "ReduceLROnPlateau")
        current = _monitored(logs, self.monitor, "ReduceLROnPlateau")
        if current is None:
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improved(current):
            self.best = current
            self.wait = 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience:
                old_lr = _learning_rate(self.model, "ReduceLROnPlateau")
                if old_lr > self.min_lr:
                    new_lr = max(old_lr * self.factor, self.min_lr)
                    self.model.optimizer.learning_rate = new_lr
                    if self.verbose > 0:
                        print(f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning "
                              f"rate to {new_lr:.4g}.")
                    self.cooldown_counter = self.cooldown
                    self.wait = 0


# ----------------------------------------------------- LearningRateScheduler
class LearningRateScheduler(Callback):
    """Set the learning rate at the start of each epoch to ``schedule(epoch, lr)``.

    ``epoch`` counts from 0; ``lr`` is the current rate. A one-argument
    ``schedule(epoch)`` also works. Adds ``learning_rate`` to the epoch logs.

    Parameters
    ----------
    schedule : callable
        ``schedule(epoch, lr) -> new_lr`` (or ``schedule(epoch)``).
    verbose : int, default 0
        1: print the rate each epoch.
    """

    def __init__(self, schedule: Callable[..., float], verbose: int = 0) -> None:
        super().__init__()
        if not callable(schedule):
            raise TypeError(f"schedule must be a function schedule(epoch, lr), got "
                            f"{schedule!r}")
        self.schedule, self.verbose = schedule, verbose

    def _call_schedule(self, epoch, lr):
        try:
            return self.schedule(epoch, lr)
        except TypeError as exc:
            try:
                return self.schedule(epoch)
            except TypeError:
                raise exc from None

    def on_epoch_begin(self, epoch, logs=None):
        lr = _learning_rate(self.model, "LearningRateScheduler")
        new_lr = self._call_schedule(epoch, lr)
        if isinstance(new_lr, bool) or not isinstance(new_lr, (int, float, numpy.number)) \
                or not math.isfinite(new_lr) or new_lr < 0:
            raise ValueError(f"LearningRateScheduler: schedule({epoch}, {lr}) returned "
                             f"{new_lr!r}; it must return a finite float >= 0")
        self.model.optimizer.learning_rate = float(new_lr)
        if self.verbose > 0:
            print(f"Epoch {epoch + 1}: LearningRateScheduler setting learning rate to "
                  f"{float(new_lr):.4g}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = _learning_rate(self.model, "LearningRateScheduler")


# ------------------------------------------------------------ TerminateOnNaN
class TerminateOnNaN(Callback):
    """Stop training as soon as a batch loss is NaN or infinite."""

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            print(f"Batch {batch}: invalid loss {float(loss)}, terminating training")
            self.model.stop_training = True


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
