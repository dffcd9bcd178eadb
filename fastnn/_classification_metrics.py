"""The label-based classification metrics of fastnn.metrics (re-exported
there): confusion counts, ``confusion_matrix``, precision / recall / F1 with
scikit-learn's averages, and ``classification_report``; the streaming
``Precision``/``Recall``/``F1Score`` of metrics.py count through them.
"""
import numpy

from ._metric_inputs import _to_numpy, _weights


# ------------------------------------------------- labels and confusion counts
def _as_labels(y, what, threshold=0.5):
    """Class labels from labels, one-hot rows, class scores or binary probabilities.

    Integer/bool arrays are labels (a trailing axis of 1 dropped); float arrays
    with several columns are scores (argmax); a single float column holds
    labels when every value is a whole number, otherwise probabilities
    thresholded at ``threshold``.
    """
    y = _to_numpy(y, what)
    if y.ndim > 1 and y.shape[-1] == 1:
        y = y[..., 0]
    if y.ndim == 2:
        return y.argmax(-1)
    if y.ndim != 1:
        raise ValueError(f"{what}: expected labels (N,) or scores (N, classes), got shape "
                         f"{y.shape}")
    if numpy.issubdtype(y.dtype, numpy.integer) or y.dtype == numpy.bool_:
        return y.astype(numpy.int64)
    if numpy.isnan(y).any():
        raise ValueError(f"{what} contains NaN")
    whole = numpy.all(y == numpy.round(y))
    if whole:
        return y.astype(numpy.int64)
    if y.min() >= 0 and y.max() <= 1:
        return (y > threshold).astype(numpy.int64)
    raise ValueError(f"{what}: cannot read 1-D float values outside [0, 1] that are not "
                     f"whole numbers as labels or probabilities")


def _confusion(t, p, labels, w):
    """Weighted confusion counts (rows: true, columns: predicted) over sorted ``labels``.

    Every label in ``t`` and ``p`` must be in ``labels``.
    """
    k = len(labels)
    cm = numpy.zeros((k, k), dtype=numpy.float64)
    numpy.add.at(cm, (numpy.searchsorted(labels, t), numpy.searchsorted(labels, p)), w)
    return cm


def _labelled_confusion(y_true, y_pred, labels=None, sample_weight=None, threshold=0.5):
    """Confusion counts over every label seen or asked for, and where ``labels`` sit in it.

    Returns ``(cm, full, selected, present)``: ``cm`` over the sorted ``full``
    label set, ``selected`` the indices of the requested labels (default: all
    present ones) in the requested order, ``present`` the labels in the data.
    Samples whose labels were not requested still count in the row and column
    totals, as scikit-learn's precision/recall count them.
    """
    t, p = _as_labels(y_true, "y_true", threshold), _as_labels(y_pred, "y_pred", threshold)
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.shape[0]} labels but y_pred has {p.shape[0]}")
    present = numpy.union1d(t, p)
    if labels is None:
        labels = present
    else:
        labels = numpy.asarray(labels)
        if labels.ndim != 1 or labels.size == 0:
            raise ValueError(f"labels must be a non-empty 1-D list, got {labels.tolist()}")
        if len(numpy.unique(labels)) != len(labels):
            raise ValueError(f"labels has duplicates: {labels.tolist()}")
    full = numpy.union1d(present, labels)
    cm = _confusion(t, p, full, _weights(sample_weight, t.shape[0]))
    return cm, full, numpy.searchsorted(full, labels), present


def confusion_matrix(y_true, y_pred, labels=None, sample_weight=None, normalize=None):
    """Confusion matrix ``C[i, j]`` = samples of true class ``labels[i]`` predicted as ``labels[j]``.

    As scikit-learn: rows are true labels, columns predictions; ``labels``
    defaults to the sorted union of both label sets; ``normalize`` is None,
    "true" (rows sum to 1), "pred" (columns) or "all". Counts are int64 unless
    weights or normalization make them fractional. Scores and one-hot rows
    are turned into labels by argmax, single probability columns by 0.5.

    Parameters
    ----------
    y_true : array_like
        Labels (or one-hot rows).
    y_pred : array_like
        Labels, class scores or probabilities.
    labels : sequence, optional
        The labels, in row/column order.
    sample_weight : array_like, optional
        One weight per sample.
    normalize : {None, "true", "pred", "all"}, optional
        How to normalize the counts.

    Returns
    -------
    ndarray
    """
    if normalize not in (None, "true", "pred", "all"):
        raise ValueError(f"normalize must be None, 'true', 'pred' or 'all', got {normalize!r}")
    cm, _, selected, _ = _labelled_confusion(y_true, y_pred, labels, sample_weight)
    cm = cm[numpy.ix_(selected, selected)]
    if normalize is None:
        return cm.astype(numpy.int64) if sample_weight is None else cm
    with numpy.errstate(invalid="ignore", divide="ignore"):
        if normalize == "true":
            cm = cm / cm.sum(axis=1, keepdims=True)
        elif normalize == "pred":
            cm = cm / cm.sum(axis=0, keepdims=True)
        else:
            cm = cm / cm.sum()
    return numpy.nan_to_num(cm)


def _divide(num, den, zero_division):
    num, den = numpy.asarray(num, float), numpy.asarray(den, float)
    out = numpy.full(num.shape, float(zero_division))
    numpy.divide(num, den, out=out, where=den != 0)
    return out


_AVERAGES = ("binary", "micro", "macro", "weighted", None)


def _prf_from_confusion(cm, full, selected, present, average, pos_label, zero_division):
    """Precision, recall, F1 and support from confusion counts, scikit-learn's way.

    ``cm`` is over the label set ``full``; averages run over ``full[selected]``.
    """
    if average not in _AVERAGES:
        raise ValueError(f"average must be one of {_AVERAGES}, got {average!r}")
    tp = numpy.diag(cm)
    pred_count, true_count = cm.sum(axis=0), cm.sum(axis=1)
    if average != "binary":
        tp, pred_count, true_count = tp[selected], pred_count[selected], true_count[selected]
    if average == "binary":
        if len(present) > 2:
            raise ValueError(f"average='binary' but the targets have {len(present)} classes "
                             f"{present.tolist()}; choose average='macro', 'micro' or "
                             f"'weighted'")
        if pos_label not in present and len(present) >= 2:
            raise ValueError(f"pos_label={pos_label!r} is not a valid label; labels are "
                             f"{present.tolist()}")
        idx = numpy.flatnonzero(full == pos_label)
        if idx.size == 0:
            return 0.0 + zero_division, 0.0 + zero_division, 0.0 + zero_division, 0.0
        i = idx[0]
        tp, pred_count, true_count = tp[i:i + 1], pred_count[i:i + 1], true_count[i:i + 1]
    elif average == "micro":
        tp, pred_count, true_count = tp.sum(keepdims=True), pred_count.sum(
            keepdims=True), true_count.sum(keepdims=True)
    p = _divide(tp, pred_count, zero_division)
    r = _divide(tp, true_count, zero_division)
    f = _divide(2 * tp, pred_count + true_count, zero_division)
    if average is None:
        return p, r, f, true_count
    if average == "weighted":
        total = true_count.sum()
        if total == 0:
            return (float(zero_division),) * 3 + (0.0,)
        return (float(p @ true_count / total), float(r @ true_count / total),
                float(f @ true_count / total), float(total))
    if average == "macro":
        return float(p.mean()), float(r.mean()), float(f.mean()), float(true_count.sum())
    return float(p[0]), float(r[0]), float(f[0]), float(true_count.sum())


def precision_recall_f1(y_true, y_pred, average="binary", labels=None, pos_label=1,
                        sample_weight=None, zero_division=0.0, threshold=0.5):
    """Precision, recall, F1 and support, with scikit-learn's averaging rules.

    ``average``: "binary" (only ``pos_label``; error for more than two
    classes), "micro" (global counts), "macro" (unweighted mean over labels),
    "weighted" (mean weighted by support) or None (per-label arrays, in the
    order of ``labels``, default the sorted union of labels). A ratio with a
    zero denominator is ``zero_division`` (default 0), as in scikit-learn.

    Parameters
    ----------
    y_true : array_like
        Labels (or one-hot rows / 0-1 targets).
    y_pred : array_like
        Labels, class scores (argmax) or probabilities (``threshold``).
    average : {"binary", "micro", "macro", "weighted", None}, default "binary"
        How per-label values combine (see ``precision_recall_f1``).
    labels : sequence, optional
        The labels to include (default: the sorted union of both label sets).
    pos_label : int, default 1
        The positive label for ``average="binary"``.
    sample_weight : array_like, optional
        One weight per sample.
    zero_division : float, default 0.0
        The value of a ratio with a zero denominator.
    threshold : float, default 0.5
        A single probability column above it counts as 1.

    Returns
    -------
    tuple
        ``(precision, recall, f1, support)``: floats, or per-label arrays with ``average=None``.
    """
    cm, full, selected, present = _labelled_confusion(y_true, y_pred, labels, sample_weight,
                                                      threshold)
    return _prf_from_confusion(cm, full, selected, present, average, pos_label, zero_division)


def precision(y_true, y_pred, average="binary", labels=None, pos_label=1, sample_weight=None,
              zero_division=0.0, threshold=0.5):
    """Precision tp / (tp + fp); see ``precision_recall_f1`` for the arguments.

    Parameters
    ----------
    y_true : array_like
        Labels (or one-hot rows / 0-1 targets).
    y_pred : array_like
        Labels, class scores (argmax) or probabilities (``threshold``).
    average : {"binary", "micro", "macro", "weighted", None}, default "binary"
        How per-label values combine (see ``precision_recall_f1``).
    labels : sequence, optional
        The labels to include (default: the sorted union of both label sets).
    pos_label : int, default 1
        The positive label for ``average="binary"``.
    sample_weight : array_like, optional
        One weight per sample.
    zero_division : float, default 0.0
        The value of a ratio with a zero denominator.
    threshold : float, default 0.5
        A single probability column above it counts as 1.

    Returns
    -------
    float or ndarray
    """
    return precision_recall_f1(y_true, y_pred, average, labels, pos_label, sample_weight,
                               zero_division, threshold)[0]


def recall(y_true, y_pred, average="binary", labels=None, pos_label=1, sample_weight=None,
           zero_division=0.0, threshold=0.5):
    """Recall tp / (tp + fn); see ``precision_recall_f1`` for the arguments.

    Parameters
    ----------
    y_true : array_like
        Labels (or one-hot rows / 0-1 targets).
    y_pred : array_like
        Labels, class scores (argmax) or probabilities (``threshold``).
    average : {"binary", "micro", "macro", "weighted", None}, default "binary"
        How per-label values combine (see ``precision_recall_f1``).
    labels : sequence, optional
        The labels to include (default: the sorted union of both label sets).
    pos_label : int, default 1
        The positive label for ``average="binary"``.
    sample_weight : array_like, optional
        One weight per sample.
    zero_division : float, default 0.0
        The value of a ratio with a zero denominator.
    threshold : float, default 0.5
        A single probability column above it counts as 1.

    Returns
    -------
    float or ndarray
    """
    return precision_recall_f1(y_true, y_pred, average, labels, pos_label, sample_weight,
                               zero_division, threshold)[1]


def f1_score(y_true, y_pred, average="binary", labels=None, pos_label=1, sample_weight=None,
             zero_division=0.0, threshold=0.5):
    """F1 = 2 tp / (2 tp + fp + fn); see ``precision_recall_f1`` for the arguments.

    Parameters
    ----------
    y_true : array_like
        Labels (or one-hot rows / 0-1 targets).
    y_pred : array_like
        Labels, class scores (argmax) or probabilities (``threshold``).
    average : {"binary", "micro", "macro", "weighted", None}, default "binary"
        How per-label values combine (see ``precision_recall_f1``).
    labels : sequence, optional
        The labels to include (default: the sorted union of both label sets).
    pos_label : int, default 1
        The positive label for ``average="binary"``.
    sample_weight : array_like, optional
        One weight per sample.
    zero_division : float, default 0.0
        The value of a ratio with a zero denominator.
    threshold : float, default 0.5
        A single probability column above it counts as 1.

    Returns
    -------
    float or ndarray
    """
    return precision_recall_f1(y_true, y_pred, average, labels, pos_label, sample_weight,
                               zero_division, threshold)[2]


precision_score, recall_score = precision, recall


def _format_support(s):
    return str(int(round(s))) if float(s).is_integer() else f"{s:.{1}f}"


def classification_report(y_true, y_pred, labels=None, target_names=None, digits=2,
                          sample_weight=None, zero_division=0.0):
    """Text report of per-class precision, recall, F1 and support, as scikit-learn's.

    The last lines hold accuracy (or micro average when ``labels`` leave some
    classes out), the macro average and the support-weighted average.

    Parameters
    ----------
    y_true : array_like
        Labels (or one-hot rows).
    y_pred : array_like
        Labels, class scores or probabilities.
    labels : sequence, optional
        The labels to report.
    target_names : list of str, optional
        Display names, one per label.
    digits : int, default 2
        Decimals shown.
    sample_weight : array_like, optional
        One weight per sample.
    zero_division : float, default 0.0
        The value of a ratio with a zero denominator.

    Returns
    -------
    str
    """
    cm, full, selected, present = _labelled_confusion(y_true, y_pred, labels, sample_weight)
    labels = full[selected]
    p, r, f, s = _prf_from_confusion(cm, full, selected, present, None, 1, zero_division)
    if target_names is None:
        target_names = [str(label) for label in labels]
    elif len(target_names) != len(labels):
        raise ValueError(f"{len(target_names)} target_names for {len(labels)} labels "
                         f"{labels.tolist()}")
    headers = ["precision", "recall", "f1-score", "support"]
    width = max(max(len(name) for name in target_names), len("weighted avg"), digits)
    head_fmt = "{:>{width}s} " + " {:>9}" * len(headers)
    row_fmt = "{:>{width}s} " + " {:>9.{digits}f}" * 3 + " {:>9}\n"
    report = head_fmt.format("", *headers, width=width) + "\n\n"
    for i, name in enumerate(target_names):
        report += row_fmt.format(name, p[i], r[i], f[i], _format_support(s[i]), width=width,
                                 digits=digits)
    report += "\n"
    micro_is_accuracy = set(present.tolist()) <= set(numpy.asarray(labels).tolist())
    for average in ("micro", "macro", "weighted"):
        ap, ar, af, asupport = _prf_from_confusion(cm, full, selected, present, average, 1,
                                                   zero_division)
        if average == "micro" and micro_is_accuracy:
            acc_fmt = "{:>{width}s} " + " {:>9}" * 2 + " {:>9.{digits}f}" + " {:>9}\n"
            report += acc_fmt.format("accuracy", "", "", af, _format_support(asupport),
                                     width=width, digits=digits)
        else:
            report += row_fmt.format(f"{average} avg", ap, ar, af, _format_support(asupport),
                                     width=width, digits=digits)
    return report
