import numpy
import pytest

from fastnn import losses
from fastnn.gradcheck import gradcheck

N, C = 6, 4


def _targets(name, rng):
    if name.startswith("sparse"):
        return rng.integers(0, C, size=N)
    if name in ("categorical_crossentropy", "kl_divergence"):
        t = rng.random((N, C)) + 0.1
        return t / t.sum(1, keepdims=True)
    if name in ("binary_crossentropy", "hinge", "squared_hinge"):
        return (rng.random((N, C)) > 0.5).astype(float)
    if name == "mean_squared_logarithmic_error":
        return rng.uniform(0, 3, (N, C))
    return rng.standard_normal((N, C))


def _predictions(name, rng, from_logits=False):
    if from_logits:
        return rng.standard_normal((N, C)) * 3
    if name in ("categorical_crossentropy", "sparse_categorical_crossentropy", "kl_divergence"):
        p = rng.random((N, C)) + 0.05
        return p / p.sum(1, keepdims=True)
    if name == "binary_crossentropy":
        return rng.uniform(0.05, 0.95, (N, C))
    if name == "mean_squared_logarithmic_error":
        return rng.uniform(0.1, 3, (N, C))
    return rng.standard_normal((N, C))


NAMES = ["mean_squared_error", "mean_absolute_error", "mean_squared_logarithmic_error",
         "binary_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy",
         "hinge", "squared_hinge", "kl_divergence"]


def _reference(name, y, p):
    """Plain formulas, Keras semantics (mean over the batch)."""
    eps = 1e-7
    if name == "mean_squared_error":
        return ((p - y) ** 2).mean()
    if name == "mean_absolute_error":
        return numpy.abs(p - y).mean()
    if name == "mean_squared_logarithmic_error":
        return ((numpy.log1p(p) - numpy.log1p(y)) ** 2).mean()
    if name == "binary_crossentropy":
        return -(y * numpy.log(p) + (1 - y) * numpy.log(1 - p)).mean()
    if name == "categorical_crossentropy":
        return -(y * numpy.log(p)).sum(1).mean()
    if name == "sparse_categorical_crossentropy":
        return -numpy.log(p[numpy.arange(len(y)), y]).mean()
    if name == "hinge":
        return numpy.maximum(0, 1 - (2 * y - 1) * p).mean()
    if name == "squared_hinge":
        return (numpy.maximum(0, 1 - (2 * y - 1) * p) ** 2).mean()
    if name == "kl_divergence":
        return (y * numpy.log(y / numpy.clip(p, eps, 1))).sum(1).mean()


@pytest.mark.parametrize("name", NAMES)
def test_loss_value_matches_reference(name, ops, rng):
    y, p = _targets(name, rng), _predictions(name, rng)
    assert losses.get(name)(y, p) == pytest.approx(_reference(name, y, p), rel=1e-10)


@pytest.mark.parametrize("name", NAMES)
def test_loss_gradient(name, ops, rng):
    y, p = _targets(name, rng), _predictions(name, rng)
    if name in ("hinge", "squared_hinge", "mean_absolute_error"):
        p = p + 0.01  # keep away from kinks
    assert gradcheck(losses.get(name), y, p).ok


@pytest.mark.parametrize("cls", [losses.BinaryCrossentropy, losses.CategoricalCrossentropy,
                                 losses.SparseCategoricalCrossentropy])
def test_from_logits_and_fused_paths(cls, ops, rng):
    name = cls.name
    y = _targets(name, rng)
    z = _predictions(name, rng, from_logits=True)
    loss = cls(from_logits=True)
    assert gradcheck(loss, y, z).ok
    probs = ops.activation_forward("sigmoid" if name == "binary_crossentropy" else "softmax", z)
    assert loss(y, z) == pytest.approx(cls()(y, probs), rel=1e-6)
    result = gradcheck(cls(), y, _predictions(name, rng))
    assert result.ok and any(piece == "logits (fused)" for piece, *_ in result.checks)


def test_cross_entropy_from_huge_logits_is_finite(ops):
    z = numpy.array([[1e4, -1e4, 0.0], [-5e3, 5e3, 5e3]])
    loss, grad = losses.SparseCategoricalCrossentropy(from_logits=True).forward_backward(
        numpy.array([0, 1]), z)
    assert numpy.isfinite(loss) and numpy.isfinite(grad).all()
    assert loss == pytest.approx(numpy.log(2) / 2, rel=1e-9)


def test_sample_weight(ops, rng):
    y, p = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    w = numpy.array([1.0, 0.0, 2.0, 1.0, 0.5])
    expected = (((p - y) ** 2).mean(1) * w).mean()
    assert losses.get("mse")(y, p, sample_weight=w) == pytest.approx(expected)
    assert gradcheck(losses.get("mse"), y, p, sample_weight=w).ok


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="valid names are:.*mse"):
        losses.get("mean_sqaured_error")


def test_bad_labels_and_shapes(ops):
    p = numpy.full((3, 4), 0.25)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\)"):
        losses.get("sparse_categorical_crossentropy")(numpy.array([0, 4, 1]), p)
    with pytest.raises(ValueError, match="labels have shape"):
        losses.get("sparse_categorical_crossentropy")(numpy.array([0, 1]), p)
    with pytest.raises(ValueError, match=r"y_true has shape \(3, 3\).*\(3, 4\)"):
        losses.get("mse")(numpy.zeros((3, 3)), p)
