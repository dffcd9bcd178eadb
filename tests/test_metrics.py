import math

import numpy
import pytest
from hypothesis import given, settings, strategies as st

from fastnn import metrics as M


# -------------------------------------------------------- brute-force references
def ref_prf(y_true, y_pred, average, labels=None, pos_label=1):
    """Per-class loops over the label lists, written from scikit-learn's definitions."""
    y_true, y_pred = list(y_true), list(y_pred)
    if labels is None:
        labels = sorted(set(y_true) | set(y_pred))
    if average == "binary":
        labels = [pos_label]
    stats = []
    for c in labels:
        tp = sum(t == c and p == c for t, p in zip(y_true, y_pred))
        fp = sum(t != c and p == c for t, p in zip(y_true, y_pred))
        fn = sum(t == c and p != c for t, p in zip(y_true, y_pred))
        stats.append((tp, fp, fn))
    def ratios(tp, fp, fn):
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        f = 2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else 0.0
        return p, r, f
    if average == "micro":
        return ratios(*(sum(s[i] for s in stats) for i in range(3)))
    per = [ratios(*s) for s in stats]
    if average in ("binary",):
        return per[0]
    if average == "macro":
        return tuple(sum(x[i] for x in per) / len(per) for i in range(3))
    support = [s[0] + s[2] for s in stats]
    total = sum(support)
    return tuple(sum(x[i] * w for x, w in zip(per, support)) / total if total else 0.0
                 for i in range(3))


labels_strategy = st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)), min_size=1,
                           max_size=40)


@settings(max_examples=80, deadline=None)
@given(pairs=labels_strategy, average=st.sampled_from(["macro", "micro", "weighted"]))
def test_prf_matches_reference(pairs, average):
    t = numpy.array([a for a, _ in pairs])
    p = numpy.array([b for _, b in pairs])
    got = M.precision_recall_f1(t, p, average=average)[:3]
    numpy.testing.assert_allclose(got, ref_prf(t, p, average), atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(pairs=labels_strategy, average=st.sampled_from(["macro", "micro", "weighted"]),
       labels=st.lists(st.integers(0, 5), min_size=1, max_size=4, unique=True))
def test_prf_with_label_subset_matches_reference(pairs, average, labels):
    t = numpy.array([a for a, _ in pairs])
    p = numpy.array([b for _, b in pairs])
    got = M.precision_recall_f1(t, p, average=average, labels=labels)[:3]
    numpy.testing.assert_allclose(got, ref_prf(t, p, average, labels), atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(pairs=st.lists(st.tuples(st.integers(0, 1), st.integers(0, 1)), min_size=1,
                      max_size=30))
def test_binary_prf_matches_reference(pairs):
    t = numpy.array([a for a, _ in pairs])
    p = numpy.array([b for _, b in pairs])
    got = [M.precision(t, p), M.recall(t, p), M.f1_score(t, p)]
    numpy.testing.assert_allclose(got, ref_prf(t, p, "binary"), atol=1e-12)


def test_sklearn_doc_examples():
    # scikit-learn's docstring examples, values checked by hand.
    t, p = [0, 1, 2, 0, 1, 2], [0, 2, 1, 0, 0, 1]
    assert M.precision(t, p, average="macro") == pytest.approx(2 / 9)
    assert M.precision(t, p, average="micro") == pytest.approx(1 / 3)
    assert M.recall(t, p, average="weighted") == pytest.approx(1 / 3)
    assert M.f1_score(t, p, average="macro") == pytest.approx(0.8 / 3)
    numpy.testing.assert_allclose(M.f1_score(t, p, average=None), [0.8, 0, 0])
    numpy.testing.assert_allclose(M.precision(t, p, average=None), [2 / 3, 0, 0])
    assert M.confusion_matrix([2, 0, 2, 2, 0, 1], [0, 0, 2, 2, 0, 2]).tolist() == \
        [[2, 0, 0], [0, 0, 1], [1, 0, 2]]
    assert M.confusion_matrix([0, 1, 0, 1], [1, 1, 1, 0]).ravel().tolist() == [0, 2, 1, 1]


def test_zero_division_is_zero():
    assert M.precision([1, 1], [0, 0]) == 0.0    # nothing predicted positive
    assert M.recall([0, 0], [1, 0]) == 0.0       # no positives
    assert M.f1_score([0, 0], [0, 0]) == 0.0
    assert M.precision([0, 0], [0, 0], zero_division=1.0) == 1.0


def test_binary_average_rejects_multiclass():
    with pytest.raises(ValueError, match="average='binary'.*3 classes"):
        M.precision([0, 1, 2], [0, 1, 2])
    with pytest.raises(ValueError, match="pos_label"):
        M.precision([0, 2], [2, 0])
    with pytest.raises(ValueError, match="average"):
        M.precision([0, 1], [0, 1], average="samples")


def test_prf_accepts_scores_and_probabilities():
    t = numpy.array([0, 1, 1, 0])
    probs = numpy.array([[0.2], [0.8], [0.3], [0.6]])
    assert M.precision(t, probs) == 0.5 and M.recall(t, probs) == 0.5
    scores = numpy.eye(3)[[0, 2, 1]] * 0.7
    assert M.f1_score(numpy.eye(3)[[0, 2, 2]], scores, average="micro") == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="cannot read"):
        M.precision([0, 1], [1.5, 0.2])


def test_confusion_matrix_options():
    t, p = [0, 1, 2, 2], [0, 2, 2, 1]
    cm = M.confusion_matrix(t, p, labels=[2, 0])
    assert cm.tolist() == [[1, 0], [0, 1]]
    n = M.confusion_matrix(t, p, normalize="true")
    numpy.testing.assert_allclose(n.sum(axis=1), 1)
    w = M.confusion_matrix(t, p, sample_weight=[1, 2, 3, 4])
    assert w.dtype == numpy.float64 and w[2, 1] == 4 and w[1, 2] == 2
    assert M.confusion_matrix(t, p, normalize="all").sum() == pytest.approx(1)
    with pytest.raises(ValueError, match="normalize"):
        M.confusion_matrix(t, p, normalize="rows")


def test_non_numeric_input_is_rejected():
    with pytest.raises(ValueError, match="numeric"):
        M.confusion_matrix(["a", "b"], ["b", "b"])


def test_classification_report_matches_sklearn_layout():
    report = M.classification_report([0, 1, 2, 2, 2], [0, 0, 2, 2, 1],
                                     target_names=["class 0", "class 1", "class 2"])
    expected = (
        "              precision    recall  f1-score   support\n"
        "\n"
        "     class 0       0.50      1.00      0.67         1\n"
        "     class 1       0.00      0.00      0.00         1\n"
        "     class 2       1.00      0.67      0.80         3\n"
        "\n"
        "    accuracy                           0.60         5\n"
        "   macro avg       0.50      0.56      0.49         5\n"
        "weighted avg       0.70      0.60      0.61         5\n")
    assert report == expected


def test_classification_report_label_subset_shows_micro_avg():
    report = M.classification_report([0, 1, 2, 2, 2], [0, 0, 2, 2, 1], labels=[0, 1],
                                     digits=3)
    assert "   micro avg      0.333     0.500     0.400         2\n" in report
    with pytest.raises(ValueError, match="target_names"):
        M.classification_report([0, 1], [0, 1], target_names=["a"])


# ---------------------------------------------------------------- accuracies
def test_accuracy_kinds_hand_checked():
    probs = numpy.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.2, 0.6], [0.3, 0.4, 0.3]])
    labels = numpy.array([1, 0, 1, 2])
    assert M.sparse_categorical_accuracy(labels, probs) == 0.5
    assert M.sparse_categorical_accuracy(labels[:, None], probs) == 0.5
    assert M.categorical_accuracy(numpy.eye(3)[labels], probs) == 0.5
    assert M.accuracy(labels, probs) == 0.5
    assert M.accuracy(numpy.eye(3)[labels], probs) == 0.5
    assert M.binary_accuracy([1, 0, 1, 0], [0.6, 0.4, 0.5, 0.2]) == 0.75  # 0.5 is not > 0.5
    assert M.binary_accuracy([[1], [0]], [[0.9], [0.9]]) == 0.5
    assert M.binary_accuracy([1, 0], [0.3, 0.1], threshold=0.2) == 1.0
    assert M.accuracy([1, 2, 3], numpy.array([1, 2, 4])) == pytest.approx(2 / 3)
    assert M.sparse_categorical_accuracy(labels, probs, sample_weight=[1, 1, 0, 0]) == 1.0


def test_top_k_hand_checked_and_ties():
    probs = numpy.array([[0.5, 0.3, 0.2], [0.1, 0.2, 0.7], [0.4, 0.4, 0.2]])
    labels = numpy.array([1, 0, 1])
    assert M.sparse_top_k_categorical_accuracy(labels, probs, k=1) == pytest.approx(1 / 3)
    assert M.sparse_top_k_categorical_accuracy(labels, probs, k=2) == pytest.approx(2 / 3)
    assert M.top_k_categorical_accuracy(numpy.eye(3)[labels], probs, k=3) == 1.0
    with pytest.raises(ValueError, match="labels must be in"):
        M.sparse_top_k_categorical_accuracy([3, 0, 0], probs)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10**6), n=st.integers(1, 20), c=st.integers(2, 7),
       k=st.integers(1, 7))
def test_top_k_matches_sorting_reference(seed, n, c, k):
    rng = numpy.random.default_rng(seed)
    probs = rng.random((n, c))
    labels = rng.integers(0, c, n)
    expected = numpy.mean([labels[i] in numpy.argsort(-probs[i])[:k] for i in range(n)])
    assert M.sparse_top_k_categorical_accuracy(labels, probs, k=k) == pytest.approx(expected)
    assert M.top_k_categorical_accuracy(numpy.eye(c)[labels], probs, k=k) == \
        pytest.approx(expected)


def test_regression_metrics():
    t = numpy.array([[1.0, 2.0], [3.0, 4.0]])
    p = numpy.array([[1.5, 2.0], [2.0, 6.0]])
    assert M.mae(t, p) == pytest.approx((0.5 + 0 + 1 + 2) / 4)
    assert M.mse(t, p) == pytest.approx((0.25 + 0 + 1 + 4) / 4)
    assert M.rmse(t, p) == pytest.approx(math.sqrt(5.25 / 4))
    assert M.mse(t, p, sample_weight=[0, 1]) == pytest.approx(2.5)
    assert isinstance(M.mae(t, p), float)
    with pytest.raises(ValueError, match="samples"):
        M.mse(t, p[:1])


# ------------------------------------------------------------------ streaming
@pytest.mark.parametrize("name, fn, make", [
    ("mae", M.mae, "reg"), ("mse", M.mse, "reg"), ("rmse", M.rmse, "reg"),
    ("sparse_categorical_accuracy", M.sparse_categorical_accuracy, "sparse"),
    ("categorical_accuracy", M.categorical_accuracy, "onehot"),
    ("binary_accuracy", M.binary_accuracy, "binary"),
    ("sparse_top_k_categorical_accuracy", M.sparse_top_k_categorical_accuracy, "sparse"),
])
def test_streaming_equals_whole_epoch(name, fn, make):
    rng = numpy.random.default_rng(0)
    n = 103
    if make == "reg":
        t, p = rng.normal(size=(n, 3)), rng.normal(size=(n, 3))
    elif make == "binary":
        t, p = rng.integers(0, 2, (n, 1)).astype(float), rng.random((n, 1))
    else:
        p = rng.random((n, 8))
        t = rng.integers(0, 8, n)
        if make == "onehot":
            t = numpy.eye(8)[t]
    w = rng.random(n)
    m = M.get_metric(name)
    assert m.name == name
    for lo in range(0, n, 16):  # uneven last batch
        m.update_state(t[lo:lo + 16], p[lo:lo + 16], w[lo:lo + 16])
    assert m.result() == pytest.approx(fn(t, p, sample_weight=w), rel=1e-12)
    m.reset_state()
    assert m.result() == 0.0


@pytest.mark.parametrize("name, average", [("precision", "binary"), ("recall", "binary"),
                                           ("f1", "binary")])
def test_streaming_prf_binary_from_probabilities(name, average):
    rng = numpy.random.default_rng(1)
    t, p = rng.integers(0, 2, (50, 1)), rng.random((50, 1))
    m = M.get_metric(name)
    for lo in range(0, 50, 7):
        m.update_state(t[lo:lo + 7], p[lo:lo + 7])
    fn = {"precision": M.precision, "recall": M.recall, "f1": M.f1_score}[name]
    assert m.result() == pytest.approx(fn(t.ravel(), (p.ravel() > 0.5).astype(int)))


@pytest.mark.parametrize("average", ["macro", "micro", "weighted"])
def test_streaming_prf_multiclass(average):
    rng = numpy.random.default_rng(2)
    t, p = rng.integers(0, 5, 60), rng.random((60, 5))
    for cls, fn in ((M.Precision, M.precision), (M.Recall, M.recall), (M.F1Score, M.f1_score)):
        m = cls(average=average)
        for lo in range(0, 60, 13):
            m.update_state(t[lo:lo + 13], p[lo:lo + 13])
        assert m.result() == pytest.approx(fn(t, p.argmax(1), average=average))
    auto = M.get_metric("f1")
    auto.update_state(t, p)
    assert auto.result() == pytest.approx(M.f1_score(t, p.argmax(1), average="macro"))


def test_accuracy_resolver_uses_loss_then_shapes():
    class Loss:
        name = "binary_crossentropy"
        from_logits = False
    probs = numpy.array([[0.9, 0.2], [0.1, 0.8]])
    multi_label = numpy.array([[1.0, 0.0], [0.0, 0.0]])
    acc = M.get_metric("accuracy", loss=Loss())
    acc.update_state(multi_label, probs)
    assert acc.kind == "binary" and acc.result() == 0.75
    for loss, kind in [("sparse_categorical_crossentropy", "sparse"),
                       ("categorical_crossentropy", "categorical"), ("hinge", "binary")]:
        assert M.get_metric("accuracy", loss=loss).kind == kind
    shaped = M.get_metric("acc", loss="mse")
    assert shaped.name == "acc" and shaped.kind is None
    shaped.update_state(numpy.array([1, 0]), probs)
    assert shaped.kind == "sparse" and shaped.result() == 0.0
    one_col = M.get_metric("accuracy")
    one_col.update_state(numpy.array([[1.0], [0.0]]), numpy.array([[0.7], [0.6]]))
    assert one_col.kind == "binary" and one_col.result() == 0.5
    onehot = M.get_metric("accuracy")
    onehot.update_state(numpy.eye(2), probs)
    assert onehot.kind == "categorical" and onehot.result() == 1.0


def test_accuracy_with_logits_loss_thresholds_at_zero():
    class Loss:
        name = "binary_crossentropy"
        from_logits = True
    acc = M.get_metric("accuracy", loss=Loss())
    acc.update_state(numpy.array([[1.0], [0.0]]), numpy.array([[0.2], [-0.3]]))
    assert acc.result() == 1.0


def test_get_metric_callable_instance_and_unknown():
    def twice_error(y_true, y_pred):
        return 2 * numpy.abs(y_true - y_pred).mean(axis=-1)
    m = M.get_metric(twice_error)
    assert m.name == "twice_error"
    m.update_state(numpy.zeros((2, 2)), numpy.ones((2, 2)))
    m.update_state(numpy.zeros((1, 2)), numpy.zeros((1, 2)))
    assert m.result() == pytest.approx(4 / 3)
    scalar = M.get_metric(lambda t, p: float(numpy.mean(t == p)))
    scalar.update_state(numpy.ones(3), numpy.ones(3))
    scalar.update_state(numpy.ones(1), numpy.zeros(1))
    assert scalar.result() == pytest.approx(0.75)
    inst = M.Precision(average="micro")
    assert M.get_metric(inst) is inst
    with pytest.raises(ValueError, match="unknown metric 'acuracy'.*accuracy.*rmse"):
        M.get_metric("acuracy")
    with pytest.raises(TypeError):
        M.get_metric(3)
    assert "f1_score" in M.metric_names()


def test_metric_call_is_one_batch():
    m = M.get_metric("mae")
    assert m(numpy.zeros(2), numpy.ones(2)) == 1.0
    assert m(numpy.zeros(2), numpy.zeros(2)) == 0.0


def test_streaming_float32_accumulates_in_float64():
    m = M.get_metric("mse")
    t = numpy.zeros((1000, 1), numpy.float32)
    p = numpy.full((1000, 1), 0.1, numpy.float32)
    for _ in range(100):
        m.update_state(t, p)
    assert m.result() == pytest.approx(float(numpy.float32(0.1)) ** 2, rel=1e-12)
