"""AutoRec's own training callbacks (a base class of ``AutoRec``): ``fit``'s
``patience`` as EarlyStopping on validation RMSE, ``lr_decay`` as a
ReduceLROnPlateau that records its cuts in ``lr_drops``, or the replay of
another fit's ``lr_drops``, for either fit path (minibatch or L-BFGS)."""
from .. import optimizers as optimizers_mod
from ..callbacks import Callback, EarlyStopping, ReduceLROnPlateau


#: How much validation RMSE must fall to count as a new best (early stopping, lr_decay).
_MIN_IMPROVEMENT = 1e-6


class _RecordedReduceLROnPlateau(ReduceLROnPlateau):
    """ReduceLROnPlateau that also records, in ``model.lr_drops``, the epoch
    counts after which it cut the rate (so that a refit can replay them)."""

    def on_epoch_end(self, epoch, logs=None):
        lr = self.model.optimizer.learning_rate
        super().on_epoch_end(epoch, logs)
        if self.model.optimizer.learning_rate != lr:
            self.model.lr_drops.append(epoch + 1)


class _ReplayLearningRateCuts(Callback):
    """Multiply the learning rate by ``factor`` after each epoch count in
    ``drops`` (another fit's ``lr_drops``); logs the rate each epoch ran at."""

    def __init__(self, factor, drops):
        super().__init__()
        self.factor, self.drops = factor, drops

    def on_epoch_end(self, epoch, logs=None):
        optimizer = self.model.optimizer
        if logs is not None:
            logs["learning_rate"] = optimizer.learning_rate
        if epoch + 1 in self.drops:
            optimizer.learning_rate = optimizer.learning_rate * self.factor
            self.model.lr_drops.append(epoch + 1)


class _FitCallbacks:
    """``AutoRec.fit``'s own callbacks and the checks of its learning-rate settings."""

    def _training_callbacks(self, validation, patience, replay):
        """fit's conveniences as the callbacks Model.fit users would pass:
        ``patience`` is EarlyStopping on validation RMSE restoring the best
        weights, ``lr_decay`` a ReduceLROnPlateau on it (or the replay of given
        ``lr_drops``) that records its cuts in ``self.lr_drops``. They run
        before the user's callbacks, which see their decisions in the logs."""
        own = []
        if validation:
            own.append(EarlyStopping(monitor="val_rmse", min_delta=_MIN_IMPROVEMENT,
                                     patience=patience, restore_best_weights=True))
        if self.lr_decay is not None:
            own.append(_ReplayLearningRateCuts(self.lr_decay, replay) if replay is not None
                       else _RecordedReduceLROnPlateau(
                           monitor="val_rmse", factor=self.lr_decay,
                           patience=self.lr_decay_patience, min_delta=_MIN_IMPROVEMENT))
        return own

    def _check_lr_drops(self, lr_drops, validation):
        """The replayed drop epochs as a set (None: no replay), after checking
        that the learning-rate settings make sense for this fit."""
        if self.lr_decay is not None:
            lr = getattr(self.optimizer_spec, "learning_rate", None)
            if isinstance(lr, optimizers_mod.LearningRateSchedule):
                raise ValueError("lr_decay multiplies a float learning rate, but the "
                                 "optimizer has a learning-rate schedule; use one or the other")
        if lr_drops is None:
            if self.lr_decay is not None and validation is None:
                raise ValueError("lr_decay decides when to cut the learning rate on "
                                 "validation RMSE; give validation, or lr_drops to replay "
                                 "a schedule")
            return None
        if self.lr_decay is None:
            raise ValueError("lr_drops replays cuts by lr_decay, but this AutoRec has "
                             "lr_decay=None")
        drops = [int(e) for e in lr_drops]
        if any(e < 1 or e != d for e, d in zip(drops, lr_drops)):
            raise ValueError(f"lr_drops must be epoch counts (integers >= 1), got "
                             f"{list(lr_drops)!r}")
        return set(drops)
