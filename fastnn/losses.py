"""Losses (Keras names and semantics) with their gradients.

A loss maps ``(y_true, y_pred)`` to per-sample losses; ``__call__`` returns
their (optionally sample-weighted) mean over the batch, and ``forward_backward``
also returns ``d loss / d y_pred``. Losses that pair with an output activation
(softmax + categorical cross-entropy, sigmoid + binary cross-entropy) expose
``fused_activation`` and ``forward_backward_logits``: the model then skips the
activation's backward and differentiates the pair in one stable step.

Every loss takes ``mask=`` (the mask a model output carries, e.g. padded time
steps after ``Embedding(mask_zero=True)``): masked steps contribute nothing and
the loss is the mean over the unmasked steps, Keras's averaging rule
(``sum(step loss * sample weight * mask) / sum(mask)``).

A loss computes on the backend its arrays belong to (``ops_for``). On host
arrays the mean loss is a Python float; on a device backend it is a 0-d
array there, so that training never waits on the device for it: the model
fetches it with the other logs, once per logging interval.
"""
import numpy

from ._registry import Configurable, lookup
from ._types import Any
from .backend import ops_for

EPSILON = 1e-7


def _check_pair(y_true, y_pred, name):
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{name}: y_true has shape {y_true.shape} but y_pred has shape "
                         f"{y_pred.shape}; they must match")


def _check_batch(y_pred):
    # Before any reshape to (batch, -1), which cannot size an empty batch's -1.
    if y_pred.ndim and y_pred.shape[0] == 0:
        raise ValueError("cannot compute a loss over an empty batch")


def _weighted_mean(per_sample, sample_weight):
    """Mean over the batch of ``per_sample`` (n, ...), weighted per sample."""
    if sample_weight is None:
        return _host_float(per_sample.sum(dtype=numpy.float64)) / per_sample.size
    w = _sample_weight(sample_weight, per_sample)
    return _host_float((per_sample * w).sum(dtype=numpy.float64)) / per_sample.size


def _host_float(total):
    """A host NumPy scalar as a Python float; a device scalar stays where it is."""
    return float(total) if isinstance(total, (numpy.generic, numpy.ndarray)) else total


def _sample_weight(sample_weight, like):
    xp = ops_for(like).xp
    w = xp.asarray(sample_weight, dtype=like.dtype)
    if w.ndim != 1 or w.shape[0] != like.shape[0]:
        raise ValueError(f"sample_weight must have shape ({like.shape[0]},), got {w.shape}")
    return w.reshape((-1,) + (1,) * (like.ndim - 1))


class Loss(Configurable):
    """Base class. Subclasses implement ``elementwise`` (value and gradient of
    each output element; the per-sample loss is the mean over the sample's
    elements) or override ``per_sample``/``gradient`` directly.

    Calling a loss, ``loss(y_true, y_pred, sample_weight=None, mask=None)``,
    returns the (weighted) mean loss over the batch.

    Examples
    --------
    >>> from fastnn.losses import MeanSquaredError
    >>> MeanSquaredError()(numpy.zeros((2, 3)), numpy.ones((2, 3)))
    1.0
    """

    name = "loss"
    fused_activation = None
    ops: Any = None  # the owning model's backend, set by Model.compile / Model.to

    def _ops_for(self, *arrays):
        """The backend to compute on: the model's when the arrays are its own
        (host NumPy arrays fit two backends), else the arrays' (``ops_for``)."""
        if self.ops is not None and self.ops.is_native(arrays[0]):
            return self.ops
        return ops_for(*arrays)

    def __call__(self, y_true, y_pred, sample_weight=None, mask=None):
        y_true, y_pred = self._prepare(y_true, y_pred)
        _check_batch(y_pred)
        if mask is not None:
            return self._masked(y_true, y_pred, sample_weight, mask)[0]
        return _weighted_mean(self.per_sample(y_true, y_pred), sample_weight)

    def _masked(self, y_true, y_pred, sample_weight, mask):
        """(loss, d loss / d y_pred) under ``mask``, whose shape is the
        leading axes of the loss values (batch, steps): each step's loss is
        the mean of its values, weighted by mask * sample weight, summed, and
        divided by the number of unmasked steps (0 when all are masked)."""
        xp = self._ops_for(y_pred).xp
        values, grad = self._loss_and_grad(y_true, y_pred)
        mask = xp.asarray(mask)
        if mask.shape != values.shape[:mask.ndim] or mask.ndim < 1:
            raise ValueError(f"{self.name}: the mask has shape {tuple(mask.shape)} but the loss "
                             f"values have shape {tuple(values.shape)}; expected a mask of shape "
                             f"(batch, steps) matching their leading axes")
        steps = values.reshape(mask.shape + (-1,))
        per_step = steps.mean(axis=-1)
        weight = mask.astype(grad.dtype)
        if sample_weight is not None:
            weight = weight * _sample_weight(sample_weight, weight)
        # On the backend, without a host sync: with every step masked the
        # weights are all 0, so dividing by max(valid, 1) gives loss 0, grad 0.
        ops = self._ops_for(y_pred)
        denom = xp.maximum(mask.sum(dtype=numpy.float64), 1.0)
        loss = (per_step * weight).sum(dtype=numpy.float64) / denom
        scale = weight * (1.0 / (denom * steps.shape[-1])).astype(grad.dtype)
        scale = scale.reshape(scale.shape + (1,) * (grad.ndim - scale.ndim))
        return (float(loss) if ops.is_host else loss), grad * scale

    def _prepare(self, y_true, y_pred):
        xp = self._ops_for(y_pred, y_true).xp
        y_pred = xp.asarray(y_pred)
        y_true = xp.asarray(y_true, dtype=y_pred.dtype)
        if y_true.shape != y_pred.shape and y_true.size == y_pred.size:
            y_true = y_true.reshape(y_pred.shape)  # e.g. (n,) targets against (n, 1) outputs
        _check_pair(y_true, y_pred, self.name)
        return y_true, y_pred

    def elementwise(self, y_true, y_pred):
        """(values, d values / d y_pred), both shaped like ``y_pred``: the
        per-sample loss is the mean of the sample's values.

        Parameters
        ----------
        y_true : array
            The targets, shaped like ``y_pred``.
        y_pred : array
            The predictions, batch axis first.
        """
        raise NotImplementedError

    def _loss_and_grad(self, y_true, y_pred):
        """(loss values, gradient): the values have the batch axis first and the
        per-sample loss is their mean over the other axes; the gradient is
        d(sum of values)/d y_pred. Elementwise losses by default; losses that
        reduce a class axis override this."""
        return self.elementwise(y_true, y_pred)

    def per_sample(self, y_true, y_pred):
        """The loss of each sample, shape ``(batch,)``.

        Parameters
        ----------
        y_true : array
            The targets, shaped like ``y_pred``.
        y_pred : array
            The predictions, batch axis first.
        """
        values, _ = self._loss_and_grad(y_true, y_pred)
        return values.reshape(values.shape[0], -1).mean(axis=1)

    def forward_backward(self, y_true, y_pred, sample_weight=None, mask=None):
        """(mean loss as a float, d mean loss / d y_pred).

        Parameters
        ----------
        y_true : array
            The targets, shaped like ``y_pred``.
        y_pred : array
            The predictions, batch axis first.
        sample_weight : array, optional
            One weight per sample.
        mask : array, optional
            ``(batch, steps)`` booleans: the steps that count (a sequence output).
        """
        y_true, y_pred = self._prepare(y_true, y_pred)
        _check_batch(y_pred)
        if mask is not None:
            return self._masked(y_true, y_pred, sample_weight, mask)
        values, grad = self._loss_and_grad(y_true, y_pred)
        per_sample = values.reshape(values.shape[0], -1).mean(axis=1)
        scale = grad.dtype.type(1.0 / values.size)
        if sample_weight is None:
            return _weighted_mean(per_sample, None), grad * scale
        w = _sample_weight(sample_weight, grad)
        return _weighted_mean(per_sample, sample_weight), grad * (w * scale)


class MeanSquaredError(Loss):
    """``(y_pred - y_true) ** 2``, averaged (Keras's ``"mse"``)."""
    name = "mean_squared_error"

    def elementwise(self, y_true, y_pred):
        d = y_pred - y_true
        return d * d, 2 * d


class MeanAbsoluteError(Loss):
    """``|y_pred - y_true|``, averaged (Keras's ``"mae"``)."""
    name = "mean_absolute_error"

    def elementwise(self, y_true, y_pred):
        d = y_pred - y_true
        xp = self._ops_for(d).xp
        return xp.abs(d), xp.sign(d)


class MeanSquaredLogarithmicError(Loss):
    """``(log(1 + max(p, eps)) - log(1 + max(y, eps)))**2``, as in Keras."""
    name = "mean_squared_logarithmic_error"

    def elementwise(self, y_true, y_pred):
        xp = self._ops_for(y_pred).xp
        p = xp.maximum(y_pred, EPSILON)
        d = xp.log1p(p) - xp.log1p(xp.maximum(y_true, EPSILON))
        grad = 2 * d / (1 + p) * (y_pred > EPSILON)
        return d * d, grad.astype(y_pred.dtype, copy=False)


class Hinge(Loss):
    """``max(0, 1 - y * p)``; labels in {0, 1} are mapped to {-1, 1} as Keras does."""
    name = "hinge"

    def _signed(self, y_true):
        if not y_true.size:
            return y_true
        # Chosen on the device (no sync): {0, 1} labels when none is negative.
        return self._ops_for(y_true).xp.where(y_true.min() >= 0, 2 * y_true - 1, y_true)

    def elementwise(self, y_true, y_pred):
        y = self._signed(y_true)
        margin = 1 - y * y_pred
        active = margin > 0
        return margin * active, (-y * active).astype(y_pred.dtype, copy=False)


class SquaredHinge(Hinge):
    """``max(0, 1 - y * p) ** 2``; labels in {0, 1} are mapped to {-1, 1}."""
    name = "squared_hinge"

    def elementwise(self, y_true, y_pred):
        y = self._signed(y_true)
        margin = self._ops_for(y_pred).xp.maximum(1 - y * y_pred, 0)
        return margin * margin, -2 * y * margin


class BinaryCrossentropy(Loss):
    """Binary cross-entropy on probabilities (clipped to [eps, 1 - eps]) or,
    with ``from_logits=True``, on logits (stable for any logit).

    Parameters
    ----------
    from_logits : bool, default False
        ``y_pred`` holds logits, not probabilities.
    label_smoothing : float in [0, 1], default 0
        Keras's: the targets become ``y_true * (1 - s) + s / 2``, on
        probabilities and on logits alike (the reported loss is the smoothed one).
    """
    name = "binary_crossentropy"
    _config_keys = ("from_logits", "label_smoothing")

    def __init__(self, from_logits=False, label_smoothing=0.0):
        self.from_logits = bool(from_logits)
        self.label_smoothing = _check_label_smoothing(label_smoothing, self.name)
        self.fused_activation = None if from_logits else "sigmoid"

    def elementwise(self, y_true, y_pred):
        ops = self._ops_for(y_pred)
        xp = ops.xp
        if self.label_smoothing:
            y_true = y_true * (1 - self.label_smoothing) + 0.5 * self.label_smoothing
        if self.from_logits:
            z = y_pred
            values = xp.maximum(z, 0) - z * y_true + xp.log1p(xp.exp(-xp.abs(z)))
            return values, ops.activation_forward("sigmoid", z) - y_true
        p = xp.clip(y_pred, EPSILON, 1 - EPSILON)
        values = -(y_true * xp.log(p) + (1 - y_true) * xp.log(1 - p))
        return values, (p - y_true) / (p * (1 - p))

    def forward_backward_logits(self, y_true, logits, sample_weight=None, mask=None):
        """(loss, d loss / d logits, sigmoid(logits)) for a fused sigmoid output.

        Parameters
        ----------
        y_true : array
            The targets.
        logits : array
            The output before its activation.
        sample_weight : array, optional
            One weight per sample.
        mask : array, optional
            ``(batch, steps)`` booleans: the steps that count.
        """
        y_true, logits = self._prepare(y_true, logits)
        fused = BinaryCrossentropy(from_logits=True, label_smoothing=self.label_smoothing)
        fused.ops = self.ops
        loss, grad = fused.forward_backward(y_true, logits, sample_weight, mask)
        return loss, grad, self._ops_for(logits).activation_forward("sigmoid", logits)


def _check_label_smoothing(value, name):
    # "not 0 <= s <= 1" also refuses NaN, which every comparison fails.
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: label_smoothing must be a number in [0, 1], "
                         f"got {value!r}") from None
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name}: label_smoothing must lie in [0, 1], got {value!r}")
    return value


class CategoricalCrossentropy(Loss):
    """Cross-entropy against one-hot (or soft) targets, on probabilities (which
    are renormalized and clipped, as in Keras) or on logits. Classes lie on the
    last axis; the per-sample loss sums over it.

    Parameters
    ----------
    from_logits : bool, default False
        ``y_pred`` holds logits, not probabilities.
    label_smoothing : float in [0, 1], default 0
        Keras's: the targets become ``y_true * (1 - s) + s / classes``, on
        probabilities and on logits alike (the reported loss is the smoothed one).
    """
    name = "categorical_crossentropy"
    _config_keys = ("from_logits", "label_smoothing")
    sparse = False

    def __init__(self, from_logits=False, label_smoothing=0.0):
        self.from_logits = bool(from_logits)
        self.label_smoothing = _check_label_smoothing(label_smoothing, self.name)
        self.fused_activation = None if from_logits else "softmax"

    def _prepare(self, y_true, y_pred):
        xp = self._ops_for(y_pred, y_true).xp
        y_pred = xp.asarray(y_pred)
        if y_pred.ndim < 2:
            raise ValueError(f"{self.name}: y_pred must have a class axis (batch, classes), "
                             f"got shape {y_pred.shape}")
        if self.sparse:
            return self._labels(y_true, y_pred), y_pred
        y_true = xp.asarray(y_true, dtype=y_pred.dtype)
        _check_pair(y_true, y_pred, self.name)
        return y_true, y_pred

    def _flat(self, y_true, y_pred):
        c = y_pred.shape[-1]
        yt = y_true.reshape(-1) if self.sparse else y_true.reshape(-1, c)
        return yt, y_pred.reshape(-1, c)

    def _logits_loss(self, y_true, logits):
        yt, z = self._flat(y_true, logits)
        ops = self._ops_for(z)
        # Smoothing stays inside the op: sparse labels never become one-hot rows.
        loss, grad = ops.softmax_cross_entropy(ops.xp.ascontiguousarray(z), yt,
                                               self.label_smoothing)
        return loss.reshape(logits.shape[:-1]), grad.reshape(logits.shape)

    def _loss_and_grad(self, y_true, y_pred):
        return (self._logits_loss if self.from_logits else self._prob_loss)(y_true, y_pred)

    def _prob_loss(self, y_true, y_pred):
        xp = self._ops_for(y_pred).xp
        yt, p = self._flat(y_true, y_pred)
        if self.sparse:
            yt = self._one_hot(yt, p)
        if self.label_smoothing:
            yt = yt * (1 - self.label_smoothing) + self.label_smoothing / p.shape[-1]
        s = p.sum(axis=-1, keepdims=True)
        q = xp.clip(p / s, EPSILON, 1 - EPSILON)
        loss = -(yt * xp.log(q)).sum(axis=-1)
        # d/dp of -sum y log(p / sum p) = -y / p + sum(y) / sum(p)
        grad = -yt / (q * s) + yt.sum(axis=-1, keepdims=True) / s
        return loss.reshape(y_pred.shape[:-1]), grad.reshape(y_pred.shape)

    def _one_hot(self, labels, like):
        xp = self._ops_for(like).xp
        oh = xp.zeros(like.shape, dtype=like.dtype)
        oh[xp.arange(labels.shape[0]), labels] = 1
        return oh

    def forward_backward_logits(self, y_true, logits, sample_weight=None, mask=None):
        """(loss, d loss / d logits, softmax(logits)) for a fused softmax output.

        Parameters
        ----------
        y_true : array
            The targets.
        logits : array
            The output before its activation.
        sample_weight : array, optional
            One weight per sample.
        mask : array, optional
            ``(batch, steps)`` booleans: the steps that count.
        """
        fused = type(self)(from_logits=True, label_smoothing=self.label_smoothing)
        fused.ops = self.ops
        loss, grad = fused.forward_backward(y_true, logits, sample_weight, mask)
        return loss, grad, self._ops_for(logits).softmax(logits)


class SparseCategoricalCrossentropy(CategoricalCrossentropy):
    """Categorical cross-entropy against integer class labels of shape (n,) or (n, 1).

    Parameters
    ----------
    from_logits : bool, default False
        ``y_pred`` holds logits, not probabilities.
    label_smoothing : float in [0, 1], default 0
        Trains against ``one_hot(y_true) * (1 - s) + s / classes``, the formula
        of ``CategoricalCrossentropy`` and of PyTorch's ``CrossEntropyLoss``
        with class indices (Keras 3's sparse loss has no such argument).
    """
    name = "sparse_categorical_crossentropy"
    sparse = True

    def _labels(self, y_true, y_pred):
        ops = self._ops_for(y_true, y_pred)
        xp = ops.xp
        y = xp.asarray(y_true)
        if y.ndim == y_pred.ndim and y.shape[-1] == 1:
            y = y[..., 0]
        if y.shape != y_pred.shape[:-1]:
            raise ValueError(f"{self.name}: labels have shape {tuple(xp.asarray(y_true).shape)} "
                             f"but predictions have shape {y_pred.shape}; expected labels of "
                             f"shape {y_pred.shape[:-1]} (one integer class per sample)")
        # Values are checked on the host only: device labels were checked once
        # when the model took them (Model._prepare_y), and a check here would
        # sync every batch.
        if y.dtype.kind == "f":
            if ops.is_host and y.size and not bool(xp.all(y == xp.round(y))):
                raise ValueError(f"{self.name}: labels must be integer class indices, "
                                 "got non-integer values")
        elif y.dtype.kind not in "iub":
            raise TypeError(f"{self.name}: labels must be integers, got dtype {y.dtype}")
        y = y.astype(xp.int64)
        c = y_pred.shape[-1]
        if ops.is_host and y.size and (int(y.min()) < 0 or int(y.max()) >= c):
            raise ValueError(f"{self.name}: labels must lie in [0, {c}) for {c} classes, got "
                             f"values in [{int(y.min())}, {int(y.max())}]")
        return y


class KLDivergence(Loss):
    """``sum(y * log(y / p))`` over the last axis, both clipped to [eps, 1]."""
    name = "kl_divergence"

    def _loss_and_grad(self, y_true, y_pred):
        xp = self._ops_for(y_pred).xp
        y = xp.clip(y_true, EPSILON, 1)
        p = xp.clip(y_pred, EPSILON, 1)
        values = (y * xp.log(y / p)).sum(axis=-1)
        grad = -y / p * ((y_pred >= EPSILON) & (y_pred <= 1))
        return values, grad.astype(y_pred.dtype, copy=False)


_TABLE = {
    "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError, "mean_absolute_error": MeanAbsoluteError,
    "msle": MeanSquaredLogarithmicError,
    "mean_squared_logarithmic_error": MeanSquaredLogarithmicError,
    "binary_crossentropy": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "hinge": Hinge, "squared_hinge": SquaredHinge,
    "kl_divergence": KLDivergence, "kld": KLDivergence, "kullback_leibler_divergence": KLDivergence,
}


def get(identifier: Any) -> Loss:
    """A loss from a Keras name ("mse", "sparse_categorical_crossentropy"), a
    ``Loss`` instance, or a config dict.

    Parameters
    ----------
    identifier : str, Loss or dict
        A Keras name (``"mse"``, ``"mae"``, ``"msle"``, ``"hinge"``,
        ``"binary_crossentropy"``, ``"categorical_crossentropy"``,
        ``"sparse_categorical_crossentropy"``, ``"kld"``, ...), an instance
        (returned as is) or ``{"class_name", "config"}``.

    Returns
    -------
    Loss

    Raises
    ------
    ValueError
        If the name is unknown (the message lists the valid ones).
    """
    loss = lookup(_TABLE, identifier, "loss")
    if not isinstance(loss, Loss):
        raise TypeError(f"loss must be a name or a fastnn.losses.Loss, got {loss!r}")
    return loss
