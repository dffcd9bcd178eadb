"""Data utilities for NumPy arrays: splitting, scaling, one-hot labels, batching.

Plain NumPy, no model code. Scalers follow scikit-learn's fit/transform
contract: fit on the training split only, then transform every split.
"""
import numbers

import numpy

from ._types import Any, ArrayIn, Iterator, List, Optional, Tuple, Union

__all__ = ["train_test_split", "StandardScaler", "MinMaxScaler", "to_categorical",
           "one_hot", "batch_iterator"]


def _num_samples(a, what):
    if not hasattr(a, "shape") or len(a.shape) == 0:
        raise ValueError(f"{what} must be an array with at least one dimension, got "
                         f"{type(a).__name__}")
    return a.shape[0]


def _check_aligned(arrays):
    if not arrays:
        raise ValueError("at least one array is required")
    arrays = [a if hasattr(a, "shape") else numpy.asarray(a) for a in arrays]
    lengths = [_num_samples(a, f"array {i}") for i, a in enumerate(arrays)]
    if len(set(lengths)) > 1:
        raise ValueError(f"arrays have different numbers of samples: {lengths}; "
                         f"they must all have the same first dimension")
    return arrays, lengths[0]


def _resolve_test_count(test_size, n):
    if isinstance(test_size, bool) or not isinstance(test_size, numbers.Real):
        raise ValueError(f"test_size must be a float in (0, 1) or an int in [1, n), "
                         f"got {test_size!r}")
    if isinstance(test_size, numbers.Integral):
        n_test = int(test_size)
        if not 1 <= n_test < n:
            raise ValueError(f"test_size={n_test} must be between 1 and n_samples - 1 "
                             f"= {n - 1}")
        return n_test
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size={test_size} as a fraction must be in (0, 1)")
    n_test = int(numpy.ceil(test_size * n))
    if not 1 <= n_test < n:
        raise ValueError(f"test_size={test_size} of {n} samples leaves an empty train or "
                         f"test set")
    return n_test


def _stratified_test_indices(labels, n_test, rng):
    """Pick ``n_test`` indices so each class keeps its share (largest remainders)."""
    classes, y_idx, counts = numpy.unique(labels, return_inverse=True, return_counts=True)
    if counts.min() < 2:
        bad = classes[counts.argmin()].item()
        raise ValueError(f"stratify: class {bad!r} has only {counts.min()} sample; every "
                         f"class needs at least 2 to appear in both splits")
    n = len(labels)
    if n_test < len(classes) or n - n_test < len(classes):
        raise ValueError(f"stratify: test size {n_test} and train size {n - n_test} must "
                         f"each be at least the number of classes ({len(classes)})")
    exact = counts * n_test / n
    per_class = numpy.floor(exact).astype(int)
    remainder = n_test - per_class.sum()
    # Break remainder ties at random so no class is favoured by its label order.
    order = numpy.lexsort((rng.random(len(classes)), -(exact - per_class)))
    per_class[order[:remainder]] += 1
    test = []
    for c, k in enumerate(per_class):
        members = numpy.flatnonzero(y_idx == c)
        test.append(rng.choice(members, size=k, replace=False))
    return numpy.concatenate(test)


def train_test_split(*arrays: ArrayIn, test_size: Union[float, int] = 0.25,
                     seed: Optional[int] = None, shuffle: bool = True,
                     stratify: Optional[ArrayIn] = None) -> List[Any]:
    """Split arrays into train and test parts, aligned along the first axis.

    Returns ``a_train, a_test, b_train, b_test, ...`` (scikit-learn's order).
    ``test_size`` is a fraction in (0, 1) (rounded up) or a sample count.
    ``stratify`` (labels of length n) keeps each class's proportion in both
    parts; it needs ``shuffle=True``. Same ``seed``, same split.

    Parameters
    ----------
    *arrays : array_like
        Arrays with the same first-axis length.
    test_size : float or int, default 0.25
        A fraction in (0, 1) or a number of samples.
    seed : int, optional
        Seeds the shuffle.
    shuffle : bool, default True
        Shuffle before splitting.
    stratify : array_like, optional
        Class labels whose proportions both parts keep.

    Returns
    -------
    list of ndarray

    Examples
    --------
    >>> x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, seed=0)
    """
    arrays, n = _check_aligned(arrays)
    n_test = _resolve_test_count(test_size, n)
    rng = numpy.random.default_rng(seed)
    if stratify is not None:
        if not shuffle:
            raise ValueError("stratify needs shuffle=True")
        labels = numpy.asarray(stratify)
        if labels.shape[:1] != (n,):
            raise ValueError(f"stratify has {labels.shape[0] if labels.ndim else 0} labels "
                             f"for {n} samples")
        if labels.ndim > 1:  # one-hot labels: stratify by row
            labels = numpy.unique(labels.reshape(n, -1), axis=0, return_inverse=True)[1]
        test_idx = _stratified_test_indices(labels.ravel(), n_test, rng)
        is_test = numpy.zeros(n, dtype=bool)
        is_test[test_idx] = True
        train_idx = rng.permutation(numpy.flatnonzero(~is_test))
        test_idx = rng.permutation(test_idx)
    elif shuffle:
        perm = rng.permutation(n)
        train_idx, test_idx = perm[n_test:], perm[:n_test]
    else:
        train_idx, test_idx = numpy.arange(n - n_test), numpy.arange(n - n_test, n)
    out = []
    for a in arrays:
        out += [a[train_idx], a[test_idx]]
    return out


def _check_features(x, what):
    x = numpy.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"{what}: expected a 2-D array (samples, features), got shape "
                         f"{x.shape}; reshape with x.reshape(len(x), -1)")
    if not numpy.issubdtype(x.dtype, numpy.number) or numpy.issubdtype(x.dtype,
                                                                          numpy.complexfloating):
        raise ValueError(f"{what}: expected real numbers, got dtype {x.dtype}")
    if numpy.isnan(x).any() or numpy.isinf(x).any():
        rows = numpy.flatnonzero(~numpy.isfinite(x).all(axis=1))
        raise ValueError(f"{what}: input contains NaN or infinity (rows {rows[:5].tolist()}"
                         f"{' ...' if len(rows) > 5 else ''}); clean or impute it first")
    return x


def _out_dtype(x):
    return x.dtype if numpy.issubdtype(x.dtype, numpy.floating) else numpy.float64


class _Scaler:
    """Shared fit/transform plumbing; subclasses set ``_fit_stats``."""

    def _require_fitted(self, what):
        if not hasattr(self, "n_features_in_"):
            raise RuntimeError(f"{type(self).__name__}.{what}: call fit(x_train) first")

    def _check_width(self, x, what):
        if x.shape[1] != self.n_features_in_:
            raise ValueError(f"{type(self).__name__}.{what}: x has {x.shape[1]} features, "
                             f"the scaler was fitted on {self.n_features_in_}")

    def fit(self, x):
        """Learn the per-feature statistics from ``x``; returns ``self``.

        Parameters
        ----------
        x : array_like
            ``(n_samples, n_features)``, finite.
        """
        x = _check_features(x, f"{type(self).__name__}.fit")
        if x.shape[0] == 0:
            raise ValueError(f"{type(self).__name__}.fit: x has no samples")
        self.n_features_in_ = x.shape[1]
        self._fit_stats(x.astype(numpy.float64))
        return self

    def fit_transform(self, x):
        """``fit(x)`` then ``transform(x)``.

        Parameters
        ----------
        x : array_like
            ``(n_samples, n_features)``, finite.
        """
        return self.fit(x).transform(x)

    def transform(self, x):
        """Scale ``x`` with the fitted statistics.

        Parameters
        ----------
        x : array_like
            ``(n_samples, n_features)``, finite.
        """
        self._require_fitted("transform")
        x = _check_features(x, f"{type(self).__name__}.transform")
        self._check_width(x, "transform")
        return ((x - self._shift) * self._scale).astype(_out_dtype(x))

    def inverse_transform(self, x):
        """Undo ``transform``.

        Parameters
        ----------
        x : array_like
            ``(n_samples, n_features)``, finite.
        """
        self._require_fitted("inverse_transform")
        x = _check_features(x, f"{type(self).__name__}.inverse_transform")
        self._check_width(x, "inverse_transform")
        return (x / self._scale + self._shift).astype(_out_dtype(x))


class StandardScaler(_Scaler):
    """Scale each feature to zero mean and unit variance (population std).

    Constant features get scale 1 (they become 0), never a division by zero.
    Attributes after ``fit``: ``mean_``, ``scale_``, ``n_features_in_``.

    Parameters
    ----------
    with_mean : bool, default True
        Subtract the mean.
    with_std : bool, default True
        Divide by the standard deviation.
    """

    def __init__(self, with_mean=True, with_std=True):
        self.with_mean, self.with_std = with_mean, with_std

    def _fit_stats(self, x):
        self.mean_ = x.mean(axis=0)
        std = x.std(axis=0)
        self.scale_ = numpy.where(std > 10 * numpy.finfo(numpy.float64).eps
                                  * numpy.maximum(numpy.abs(self.mean_), 1.0), std, 1.0)
        self._shift = self.mean_ if self.with_mean else numpy.zeros_like(self.mean_)
        self._scale = 1.0 / self.scale_ if self.with_std else numpy.ones_like(self.scale_)


class MinMaxScaler(_Scaler):
    """Scale each feature linearly so the training min/max map to ``feature_range``.

    Constant features map to the lower end of the range.
    Attributes after ``fit``: ``data_min_``, ``data_max_``, ``n_features_in_``.

    Parameters
    ----------
    feature_range : tuple of float, default (0.0, 1.0)
        ``(min, max)`` of the scaled training data.
    """

    def __init__(self, feature_range=(0.0, 1.0)):
        lo, hi = feature_range
        if not lo < hi:
            raise ValueError(f"feature_range must be (min, max) with min < max, got "
                             f"{feature_range!r}")
        self.feature_range = (float(lo), float(hi))

    def _fit_stats(self, x):
        lo, hi = self.feature_range
        self.data_min_, self.data_max_ = x.min(axis=0), x.max(axis=0)
        span = self.data_max_ - self.data_min_
        span = numpy.where(span > 0, span, 1.0)
        # transform is (x - shift) * scale; shift folds in the range's lower end.
        self._scale = (hi - lo) / span
        self._shift = self.data_min_ - lo / self._scale


def to_categorical(y: ArrayIn, num_classes: Optional[int] = None,
                   dtype: Any = "float32") -> Any:
    """One-hot encode integer labels: shape ``y.shape + (num_classes,)``.

    Like ``keras.utils.to_categorical``: a trailing axis of size 1 is dropped
    first, ``num_classes`` defaults to ``max(y) + 1``.

    Parameters
    ----------
    y : array_like of int
        Class labels.
    num_classes : int, optional
        The number of classes (default ``max(y) + 1``).
    dtype : str or dtype, default "float32"
        The output type.

    Returns
    -------
    ndarray

    Examples
    --------
    >>> to_categorical([0, 2], num_classes=3)
    array([[1., 0., 0.],
           [0., 0., 1.]], dtype=float32)
    """
    y = numpy.asarray(y)
    if y.size and not numpy.issubdtype(y.dtype, numpy.integer):
        if not numpy.issubdtype(y.dtype, numpy.number) or not numpy.all(y == numpy.round(y)):
            raise ValueError(f"to_categorical needs integer class labels, got dtype {y.dtype} "
                             f"with non-integer values")
    y = y.astype(numpy.int64)
    if y.ndim > 1 and y.shape[-1] == 1:
        y = y[..., 0]
    if y.size and y.min() < 0:
        raise ValueError(f"to_categorical: labels must be >= 0, got {int(y.min())}")
    if num_classes is None:
        num_classes = int(y.max()) + 1 if y.size else 0
    elif y.size and y.max() >= num_classes:
        raise ValueError(f"to_categorical: label {int(y.max())} >= num_classes={num_classes}")
    out = numpy.zeros(y.shape + (num_classes,), dtype=dtype)
    numpy.put_along_axis(out, y[..., None], 1, axis=-1)
    return out


one_hot = to_categorical


def batch_iterator(*arrays: ArrayIn, batch_size: int = 32, shuffle: bool = False,
                   seed: Optional[int] = None) -> Iterator[Any]:
    """Yield aligned batches ``(a[idx], b[idx], ...)``; the last partial batch is kept.

    With one array, yields the batch itself rather than a 1-tuple.

    Parameters
    ----------
    *arrays : array_like
        Arrays with the same first-axis length.
    batch_size : int, default 32
        Samples per batch.
    shuffle : bool, default False
        Visit the samples in a random order.
    seed : int, optional
        Seeds the order.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) \
            or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    arrays, n = _check_aligned(arrays)
    order = numpy.random.default_rng(seed).permutation(n) if shuffle else None
    return _batches(arrays, n, batch_size, order)  # arguments checked now, not at first next()


def _batches(arrays, n, batch_size, order):
    for lo in range(0, n, batch_size):
        idx = order[lo:lo + batch_size] if order is not None else slice(lo, lo + batch_size)
        batch = tuple(a[idx] for a in arrays)
        yield batch[0] if len(batch) == 1 else batch
