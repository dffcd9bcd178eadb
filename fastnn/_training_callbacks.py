"""The callbacks of fastnn.callbacks that steer training (re-exported there):
``EarlyStopping``, ``ModelCheckpoint``, ``ReduceLROnPlateau``,
``LearningRateScheduler``, ``TerminateOnNaN``, and their helpers (the
monitored value, its direction, the optimizer's learning rate).
"""
import math
import numbers
import os
import warnings

import numpy

from ._callback_base import Callback
from ._types import Any, Callable, Optional, Union

# Names that get larger as the model gets better, for mode="auto".
_HIGHER_IS_BETTER = ("acc", "accuracy", "auc", "precision", "recall", "f1", "f1_score")


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

