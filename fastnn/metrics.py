"""Metrics on NumPy arrays: plain functions and streaming ``Metric`` objects for ``fit``.

Functions take ``(y_true, y_pred)`` arrays and return a Python float (or a
NumPy array for per-class results). ``get_metric(name)`` returns a ``Metric``
that accumulates float64 sums and counts over batches, so its epoch value is
the metric over the whole epoch, not a mean of batch values. Metrics never
touch model internals; they see arrays only.

On arrays of a device backend (``fastnn.backend``), the streaming metrics
keep their sums on that device, so ``update_state`` never waits on it, and
``result()`` is a 0-d array there (``fit`` fetches it with the other logs);
precision/recall/F1 keep the batches' labels on the device and count them on
the host when their result is asked for (one transfer per field per read).
The plain functions return host floats (one documented transfer).
"""
import math

import numpy

from ._classification_metrics import (_AVERAGES, _as_labels, _prf_from_confusion,
                                      classification_report, confusion_matrix, f1_score,
                                      precision, precision_recall_f1, precision_score, recall,
                                      recall_score)
from ._metric_inputs import (_device_ops, _pair, _per_sample, _sparse_labels, _to_numpy,
                             _weighted_mean, _weights, _xp)
from ._types import Any, ArrayIn, Optional

__all__ = [
    "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy", "accuracy",
    "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy",
    "precision", "recall", "f1_score", "precision_recall_f1", "precision_score",
    "recall_score", "confusion_matrix", "classification_report",
    "mean_absolute_error", "mean_squared_error", "root_mean_squared_error", "mae", "mse",
    "rmse", "Metric", "MeanMetricWrapper", "Accuracy", "Precision", "Recall", "F1Score",
    "RootMeanSquaredError", "get_metric", "metric_names",
]


# ------------------------------------------------------------ per-sample cores
def _binary_accuracy_values(y_true, y_pred, threshold=0.5):
    if y_true.shape != y_pred.shape:
        if y_true.size != y_pred.size:
            raise ValueError(f"binary accuracy: y_true shape {y_true.shape} does not match "
                             f"y_pred shape {y_pred.shape}")
        y_true = y_true.reshape(y_pred.shape)
    return _per_sample(y_true == (y_pred > threshold))


def _categorical_accuracy_values(y_true, y_pred):
    if y_true.shape != y_pred.shape:
        raise ValueError(f"categorical accuracy needs one-hot y_true shaped like y_pred "
                         f"{y_pred.shape}, got {y_true.shape}; use sparse_categorical_accuracy "
                         f"for integer labels")
    return _per_sample(y_true.argmax(-1) == y_pred.argmax(-1))


def _sparse_categorical_accuracy_values(y_true, y_pred):
    y_true = _sparse_labels(y_true, y_pred)
    return _per_sample(y_pred.argmax(-1) == y_true)


def _in_top_k(y_pred, labels, k):
    """True where the label's score is among the k largest (ties count as in, as TF)."""
    labels = labels.astype(numpy.int64)
    n_classes = y_pred.shape[-1]
    xp = _xp(y_pred, labels)
    # Checked on the host only: on a device it would sync every batch.
    if xp is numpy and labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"labels must be in [0, {n_classes}), got range "
                         f"[{labels.min()}, {labels.max()}]")
    score = xp.take_along_axis(y_pred, labels[..., None], axis=-1)
    return (y_pred > score).sum(axis=-1) < k


def _top_k_values(y_true, y_pred, k=5):
    if y_true.shape != y_pred.shape:
        raise ValueError(f"top-k categorical accuracy needs one-hot y_true shaped like "
                         f"y_pred {y_pred.shape}, got {y_true.shape}")
    return _per_sample(_in_top_k(y_pred, y_true.argmax(-1), k))


def _sparse_top_k_values(y_true, y_pred, k=5):
    return _per_sample(_in_top_k(y_pred, _sparse_labels(y_true, y_pred), k))


def _accuracy_kind(y_true, y_pred):
    """Keras's choice for "accuracy" from shapes when the loss does not decide it."""
    if y_pred.ndim == 1 or y_pred.shape[-1] == 1:
        return "binary"
    if y_true.ndim < y_pred.ndim or y_true.shape[-1] == 1:
        return "sparse"
    return "categorical"


_ACCURACY_CORES = {"binary": _binary_accuracy_values,
                   "categorical": _categorical_accuracy_values,
                   "sparse": _sparse_categorical_accuracy_values}


def _error_values(y_true, y_pred, power):
    if y_true.shape != y_pred.shape:
        if y_true.size != y_pred.size:
            raise ValueError(f"y_true shape {y_true.shape} does not match y_pred shape "
                             f"{y_pred.shape}")
        y_true = y_true.reshape(y_pred.shape)
    diff = y_pred.astype(numpy.float64) - y_true.astype(numpy.float64)
    return _per_sample(_xp(diff).abs(diff) if power == 1 else diff * diff)


# -------------------------------------------------------- standalone functions
def binary_accuracy(y_true: ArrayIn, y_pred: ArrayIn, threshold: float = 0.5,
                    sample_weight: Optional[ArrayIn] = None) -> float:
    """Fraction of entries where ``y_pred > threshold`` equals ``y_true`` (0/1).

    Parameters
    ----------
    y_true : array_like
        0/1 targets.
    y_pred : array_like
        Probabilities (or scores) of the same shape.
    threshold : float, default 0.5
        A prediction above it counts as 1.
    sample_weight : array_like, optional
        One weight per sample.

    Returns
    -------
    float
    """
    y_true, y_pred = _pair(y_true, y_pred)
    return _weighted_mean(_binary_accuracy_values(y_true, y_pred, threshold), sample_weight)


def categorical_accuracy(y_true: ArrayIn, y_pred: ArrayIn,
                         sample_weight: Optional[ArrayIn] = None) -> float:
    """Fraction of samples whose argmax matches the one-hot (or probability) ``y_true``.

    Parameters
    ----------
    y_true : array_like
        One-hot (or probability) targets, (n, classes).
    y_pred : array_like
        Class scores, (n, classes).
    sample_weight : array_like, optional
        One weight per sample.

    Returns
    -------
    float
    """
    y_true, y_pred = _pair(y_true, y_pred)
    return _weighted_mean(_categorical_accuracy_values(y_true, y_pred), sample_weight)


def sparse_categorical_accuracy(y_true: ArrayIn, y_pred: ArrayIn,
                                sample_weight: Optional[ArrayIn] = None) -> float:
    """Fraction of samples whose argmax equals the integer label ``y_true``.

    Parameters
    ----------
    y_true : array_like
        Integer labels, (n,) or (n, 1).
    y_pred : array_like
        Class scores, (n, classes).
    sample_weight : array_like, optional
        One weight per sample.

    Returns
    -------
    float
    """
    y_true, y_pred = _pair(y_true, y_pred)
    return _weighted_mean(_sparse_categorical_accuracy_values(y_true, y_pred), sample_weight)


def accuracy(y_true: ArrayIn, y_pred: ArrayIn, sample_weight: Optional[ArrayIn] = None,
             threshold: float = 0.5) -> float:
    """Accuracy of any of three kinds, chosen from the shapes as Keras does.

    ``y_pred`` with one column (or 1-D) → binary accuracy; integer labels
    against class scores → sparse categorical; equal shapes → categorical.
    When both are 1-D label arrays of integers, the fraction of equal labels.

    Parameters
    ----------
    y_true : array_like
        Targets (labels, one-hot rows or 0/1).
    y_pred : array_like
        Predictions (scores, probabilities or labels).
    sample_weight : array_like, optional
        One weight per sample.
    threshold : float, default 0.5
        For binary accuracy: a prediction above it counts as 1.

    Returns
    -------
    float

    Examples
    --------
    >>> accuracy([0, 2, 1], [[0.9, 0.1, 0.0], [0.2, 0.2, 0.6], [0.5, 0.4, 0.1]])
    0.6666666666666666
    """
    y_true, y_pred = _pair(y_true, y_pred)
    if y_pred.ndim == 1 and numpy.issubdtype(y_pred.dtype, numpy.integer):
        return _weighted_mean(_per_sample(y_true.reshape(y_pred.shape) == y_pred),
                              sample_weight)
    kind = _accuracy_kind(y_true, y_pred)
    if kind == "binary":
        return binary_accuracy(y_true, y_pred, threshold, sample_weight)
    return _weighted_mean(_ACCURACY_CORES[kind](y_true, y_pred), sample_weight)


def top_k_categorical_accuracy(y_true: ArrayIn, y_pred: ArrayIn, k: int = 5,
                               sample_weight: Optional[ArrayIn] = None) -> float:
    """Fraction of samples whose one-hot class is among the ``k`` highest scores.

    Parameters
    ----------
    y_true : array_like
        One-hot targets, (n, classes).
    y_pred : array_like
        Class scores, (n, classes).
    k : int, default 5
        How many top scores count.
    sample_weight : array_like, optional
        One weight per sample.

    Returns
    -------
    float
    """
    y_true, y_pred = _pair(y_true, y_pred)
    return _weighted_mean(_top_k_values(y_true, y_pred, k), sample_weight)


def sparse_top_k_categorical_accuracy(y_true: ArrayIn, y_pred: ArrayIn, k: int = 5,
                                      sample_weight: Optional[ArrayIn] = None) -> float:
    """Fraction of samples whose integer label is among the ``k`` highest scores.

    Parameters
    ----------
    y_true : array_like
        Integer labels, (n,) or (n, 1).
    y_pred : array_like
        Class scores, (n, classes).
    k : int, default 5
        How many top scores count.
    sample_weight : array_like, optional
        One weight per sample.

    Returns
    -------
    float
    """
    y_true, y_pred = _pair(y_true, y_pred)
    return _weighted_mean(_sparse_top_k_values(y_true, y_pred, k), sample_weight)


def mean_absolute_error(y_true: ArrayIn, y_pred: ArrayIn,
                        sample_weight: Optional[ArrayIn] = None) -> float:
    """Mean of ``|y_pred - y_true|`` over all entries (per sample, then
    weighted over samples).

    Parameters
    ----------
    y_true : array_like
        Targets.
    y_pred : array_like
        Predictions of the same shape.
    sample_weight : array_like, optional
        One weight per sample.

    Returns
    -------
    float
    """
    y_true, y_pred = _pair(y_true, y_pred)
    return _weighted_mean(_error_values(y_true, y_pred, 1), sample_weight)


def mean_squared_error(y_true: ArrayIn, y_pred: ArrayIn,
                       sample_weight: Optional[ArrayIn] = None) -> float:
    """Mean of ``(y_pred - y_true) ** 2`` over all entries (per sample, then
    weighted over samples).

    Parameters
    ----------
    y_true : array_like
        Targets.
    y_pred : array_like
        Predictions of the same shape.
    sample_weight : array_like, optional
        One weight per sample.

    Returns
    -------
    float
    """
    y_true, y_pred = _pair(y_true, y_pred)
    return _weighted_mean(_error_values(y_true, y_pred, 2), sample_weight)


def root_mean_squared_error(y_true: ArrayIn, y_pred: ArrayIn,
                            sample_weight: Optional[ArrayIn] = None) -> float:
    """Square root of the mean squared error over all samples (not a mean of roots).

    Parameters
    ----------
    y_true : array_like
        Targets.
    y_pred : array_like
        Predictions of the same shape.
    sample_weight : array_like, optional
        One weight per sample.

    Returns
    -------
    float
    """
    return math.sqrt(mean_squared_error(y_true, y_pred, sample_weight))


mae, mse, rmse = mean_absolute_error, mean_squared_error, root_mean_squared_error


# ------------------------------------------------------------ streaming metrics
class Metric:
    """A metric accumulated over batches: ``update_state`` … ``result`` … ``reset_state``.

    Subclasses keep float64 sums (or counts) so ``result()`` is exact over
    everything seen since the last reset.
    """

    name = "metric"

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Add one batch to the accumulated state.

        Parameters
        ----------
        y_true : array_like
            The batch's targets.
        y_pred : array_like
            Its predictions.
        sample_weight : array_like, optional
            One weight per sample.
        """
        raise NotImplementedError

    def result(self):
        """The metric over everything seen since the last reset (a float, or a
        0-d array on a device backend)."""
        raise NotImplementedError

    def reset_state(self):
        """Forget everything seen (``fit`` calls this at each epoch's start)."""
        raise NotImplementedError

    def __call__(self, y_true, y_pred, sample_weight=None):
        """Result over one batch alone (state is reset first), as a float."""
        self.reset_state()
        self.update_state(y_true, y_pred, sample_weight)
        return self.result()

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r}>"


class MeanMetricWrapper(Metric):
    """Weighted mean of a per-sample function ``fn(y_true, y_pred, **kwargs)``.

    ``fn`` may return one value per sample or a single batch value; a batch
    value counts as many times as the batch has samples.

    Parameters
    ----------
    fn : callable
        ``fn(y_true, y_pred, **kwargs)``: per-sample values or one batch value.
    name : str, optional
        The key in the logs (default: ``fn.__name__``).
    **kwargs
        Passed to ``fn``.
    """

    def __init__(self, fn, name=None, **kwargs):
        self.fn, self.kwargs = fn, kwargs
        self.name = name or getattr(fn, "__name__", "metric")
        self.reset_state()

    def reset_state(self):
        self.total, self.count = 0.0, 0.0

    def _values(self, y_true, y_pred):
        return self.fn(y_true, y_pred, **self.kwargs)

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred = _pair(y_true, y_pred)
        ops = _device_ops(y_true, y_pred)
        if ops is not None:
            self._update_on_device(ops, y_true, y_pred, sample_weight)
            return
        values = _to_numpy(self._values(y_true, y_pred), f"metric {self.name!r}")
        w = _weights(sample_weight, y_true.shape[0])
        values = values.astype(numpy.float64)
        if values.ndim == 0:
            self.total += float(values) * float(w.sum())
        else:
            self.total += float(_per_sample(values) @ w)
        self.count += float(w.sum())

    def _update_on_device(self, ops, y_true, y_pred, sample_weight):
        """The sums stay 0-d float64 arrays on the device: no sync per batch."""
        values = ops.xp.asarray(self._values(y_true, y_pred)).astype(numpy.float64)
        w = _weights(sample_weight, y_true.shape[0], ops)
        if values.ndim == 0:
            self.total = self.total + values * w.sum()
        else:
            self.total = self.total + _per_sample(values) @ w
        self.count = self.count + w.sum()

    def result(self):
        if isinstance(self.count, float):
            return self.total / self.count if self.count else 0.0
        # On the device: 0 when nothing was weighed (the total is 0 then too).
        return self.total / _xp(self.count).maximum(self.count, numpy.finfo(numpy.float64).tiny)


class Accuracy(MeanMetricWrapper):
    """Accuracy for ``fit``: ``kind`` is "binary", "categorical", "sparse" or None.

    None picks the kind from the loss (a name or an object with ``.name``) when
    that decides it, otherwise from the first batch's shapes, as Keras does.

    Parameters
    ----------
    kind : {None, "binary", "categorical", "sparse"}, optional
        The accuracy kind (None: decided as above).
    loss : str or Loss, optional
        The model's loss, to decide the kind from.
    name : str, default "accuracy"
        The key in the logs.
    threshold : float, optional
        Binary accuracy's threshold (default 0.5, or 0 for a loss on logits).
    """

    def __init__(self, kind=None, loss=None, name="accuracy", threshold=None):
        if kind not in (None, "binary", "categorical", "sparse"):
            raise ValueError(f"kind must be None, 'binary', 'categorical' or 'sparse', "
                             f"got {kind!r}")
        loss_name = getattr(loss, "name", loss) if loss is not None else ""
        loss_name = loss_name if isinstance(loss_name, str) else ""
        if kind is None:
            if "sparse_categorical" in loss_name:
                kind = "sparse"
            elif "categorical" in loss_name or loss_name.startswith("kl"):
                kind = "categorical"
            elif "binary" in loss_name or "hinge" in loss_name:
                kind = "binary"
        if threshold is None:
            # Binary cross-entropy on logits: p > 0.5 is logit > 0.
            threshold = 0.0 if getattr(loss, "from_logits", False) is True else 0.5
        self.kind, self.threshold = kind, threshold
        super().__init__(None, name=name)

    def _values(self, y_true, y_pred):
        kind = self.kind or _accuracy_kind(y_true, y_pred)
        self.kind = kind
        if kind == "binary":
            return _binary_accuracy_values(y_true, y_pred, self.threshold)
        return _ACCURACY_CORES[kind](y_true, y_pred)


class RootMeanSquaredError(MeanMetricWrapper):
    """Square root of the mean squared error over everything seen.

    Parameters
    ----------
    name : str, default "rmse"
        The key in the logs.
    """

    def __init__(self, name="rmse"):
        super().__init__(_error_values, name=name, power=2)

    def result(self):
        mean = super().result()
        return math.sqrt(mean) if isinstance(mean, float) else _xp(mean).sqrt(mean)


class _ConfusionMetric(Metric):
    """Precision/recall/F1 streamed through weighted confusion counts.

    Labels must be non-negative integers (class scores are argmaxed, single
    probabilities thresholded); the matrix grows as new labels appear.
    ``average="auto"`` means "binary" while labels stay in {0, 1}, else "macro".
    """

    _index: "int | None" = None

    def __init__(self, name, average="auto", pos_label=1, zero_division=0.0, threshold=0.5):
        if average != "auto" and average not in _AVERAGES[:-1]:
            raise ValueError(f"average must be 'auto', 'binary', 'micro', 'macro' or "
                             f"'weighted', got {average!r}")
        self.name, self.average, self.pos_label = name, average, pos_label
        self.zero_division, self.threshold = zero_division, threshold
        self.reset_state()

    def reset_state(self):
        self.confusion = numpy.zeros((2, 2), dtype=numpy.float64)
        self._seen = numpy.zeros(2, dtype=bool)
        self._pending = []  # batches of device arrays, counted when the result is read

    def update_state(self, y_true, y_pred, sample_weight=None):
        if _device_ops(y_true, y_pred, sample_weight) is not None:
            self._pending.append((y_true, y_pred, sample_weight))
            return
        self._count(y_true, y_pred, sample_weight)

    def _flush(self):
        """Count the pending device batches: one transfer per field for all of them."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        ops = _device_ops(*pending[0][:2])
        xp = ops.xp
        fields = []
        for k in range(2):
            fields.append(ops.to_numpy(xp.concatenate([b[k] for b in pending], axis=0)))
        w = None
        if any(b[2] is not None for b in pending):
            w = ops.to_numpy(xp.concatenate([
                xp.ones(b[0].shape[0], dtype=numpy.float64) if b[2] is None
                else xp.asarray(b[2]).astype(numpy.float64).reshape(-1) for b in pending]))
        self._count(fields[0], fields[1], w)

    def _count(self, y_true, y_pred, sample_weight):
        t = _as_labels(y_true, "y_true", self.threshold)
        p = _as_labels(y_pred, "y_pred", self.threshold)
        if t.shape != p.shape:
            raise ValueError(f"y_true has {t.shape[0]} labels but y_pred has {p.shape[0]}")
        if t.size == 0:
            return
        if min(t.min(), p.min()) < 0:
            raise ValueError(f"{self.name}: labels must be non-negative integers")
        k = int(max(t.max(), p.max())) + 1
        if k > len(self.confusion):
            grown = numpy.zeros((k, k))
            old = len(self.confusion)
            grown[:old, :old] = self.confusion
            self.confusion = grown
            self._seen = numpy.concatenate([self._seen, numpy.zeros(k - old, dtype=bool)])
        numpy.add.at(self.confusion, (t, p), _weights(sample_weight, t.shape[0]))
        self._seen[t] = True
        self._seen[p] = True

    def result(self):
        self._flush()
        present = numpy.flatnonzero(self._seen)
        average = self.average
        if average == "auto":
            average = "binary" if present.size == 0 or present.max() <= 1 else "macro"
        full = numpy.arange(len(self.confusion))
        return _prf_from_confusion(self.confusion, full, present, present, average,
                                   self.pos_label, self.zero_division)[self._index]


class Precision(_ConfusionMetric):
    """Streaming precision, tp / (tp + fp), over weighted confusion counts.

    Parameters
    ----------
    name : str, default "precision"
        The key in the logs.
    **kwargs
        ``average`` ("auto": "binary" while labels stay in {0, 1}, else
        "macro"; or "binary", "micro", "macro", "weighted"), ``pos_label``
        (default 1), ``zero_division`` (default 0.0), ``threshold`` (default 0.5).
    """
    _index = 0

    def __init__(self, name="precision", **kwargs):
        super().__init__(name, **kwargs)


class Recall(_ConfusionMetric):
    """Streaming recall, tp / (tp + fn), over weighted confusion counts.

    Parameters
    ----------
    name : str, default "recall"
        The key in the logs.
    **kwargs
        ``average`` ("auto": "binary" while labels stay in {0, 1}, else
        "macro"; or "binary", "micro", "macro", "weighted"), ``pos_label``
        (default 1), ``zero_division`` (default 0.0), ``threshold`` (default 0.5).
    """
    _index = 1

    def __init__(self, name="recall", **kwargs):
        super().__init__(name, **kwargs)


class F1Score(_ConfusionMetric):
    """Streaming F1, 2 tp / (2 tp + fp + fn), over weighted confusion counts.

    Parameters
    ----------
    name : str, default "f1"
        The key in the logs.
    **kwargs
        ``average`` ("auto": "binary" while labels stay in {0, 1}, else
        "macro"; or "binary", "micro", "macro", "weighted"), ``pos_label``
        (default 1), ``zero_division`` (default 0.0), ``threshold`` (default 0.5).
    """
    _index = 2

    def __init__(self, name="f1", **kwargs):
        super().__init__(name, **kwargs)


def _factory(fn, **kwargs):
    return lambda name, loss: MeanMetricWrapper(fn, name=name, **kwargs)


_REGISTRY = {
    "accuracy": lambda name, loss: Accuracy(loss=loss, name=name),
    "binary_accuracy": lambda name, loss: Accuracy("binary", loss=loss, name=name),
    "categorical_accuracy": lambda name, loss: Accuracy("categorical", name=name),
    "sparse_categorical_accuracy": lambda name, loss: Accuracy("sparse", name=name),
    "top_k_categorical_accuracy": _factory(_top_k_values, k=5),
    "sparse_top_k_categorical_accuracy": _factory(_sparse_top_k_values, k=5),
    "precision": lambda name, loss: Precision(name=name),
    "recall": lambda name, loss: Recall(name=name),
    "f1": lambda name, loss: F1Score(name=name),
    "mean_absolute_error": _factory(_error_values, power=1),
    "mean_squared_error": _factory(_error_values, power=2),
    "root_mean_squared_error": lambda name, loss: RootMeanSquaredError(name=name),
}
_ALIASES = {"acc": "accuracy", "f1_score": "f1", "mae": "mean_absolute_error",
            "mse": "mean_squared_error", "rmse": "root_mean_squared_error"}


def metric_names():
    """Every name ``get_metric`` accepts (aliases included), sorted."""
    return sorted(set(_REGISTRY) | set(_ALIASES))


def get_metric(metric: Any, loss: Any = None) -> "Metric":
    """A streaming ``Metric`` from a name, a ``Metric`` or a function ``f(y_true, y_pred)``.

    ``loss`` (a name or a loss object with ``.name``) lets "accuracy" pick
    binary, categorical or sparse categorical accuracy. The metric's ``name``
    (its key in the logs) is the name it was asked for, e.g. "acc" stays "acc".

    Parameters
    ----------
    metric : str, Metric or callable
        A name (``"accuracy"``, ``"mae"``, ``"precision"``, ...), a metric
        (returned as is) or a function ``f(y_true, y_pred)`` (its weighted
        mean over samples).
    loss : str or Loss, optional
        The model's loss.

    Returns
    -------
    Metric

    Raises
    ------
    ValueError
        If the name is unknown (the message lists the valid ones).
    """
    if isinstance(metric, Metric):
        return metric
    if isinstance(metric, str):
        key = _ALIASES.get(metric, metric)
        if key not in _REGISTRY:
            raise ValueError(f"unknown metric {metric!r}; valid names are "
                             f"{', '.join(metric_names())}, or pass a function "
                             f"f(y_true, y_pred) or a fastnn.metrics.Metric")
        return _REGISTRY[key](metric, loss)
    if callable(metric):
        return MeanMetricWrapper(metric)
    raise TypeError(f"a metric must be a name, a function or a Metric, got {metric!r}")
