import numpy
import pytest

from fastnn import losses
from fastnn.backend.strict import StrictArray
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


# ---------------------------------------------------------------------------
# Pinned by the mutation check (tools/mutation_check.py): each test below fails
# under one-line changes of fastnn/losses.py that the tests above let through.
def _case(name, rng, shape=(N, C)):
    """Targets and predictions of ``shape`` (classes last) for the loss ``name``."""
    if name.startswith("sparse"):
        return rng.integers(0, shape[-1], shape[:-1]), _norm(rng.random(shape) + 0.05)
    if name in ("categorical_crossentropy", "kl_divergence"):
        return _norm(rng.random(shape) + 0.1), _norm(rng.random(shape) + 0.05)
    if name == "binary_crossentropy":
        return (rng.random(shape) > 0.5).astype(float), rng.uniform(0.05, 0.95, shape)
    if name == "mean_squared_logarithmic_error":
        return rng.uniform(0, 3, shape), rng.uniform(0.1, 3, shape)
    if name in ("hinge", "squared_hinge"):
        return (rng.random(shape) > 0.5).astype(float), rng.standard_normal(shape) + 0.01
    return rng.standard_normal(shape), rng.standard_normal(shape)


def _norm(p):
    return p / p.sum(-1, keepdims=True)


@pytest.mark.parametrize("name", NAMES)
def test_every_loss_computes_on_the_strict_backend_as_on_the_host(name, rng):
    # Losses compute through their arrays' backend only (a GPU's arrays refuse
    # host NumPy): value and gradient, weighted, masked and fused, equal the host's.
    from fastnn.backend import get_instance
    strict = get_instance("strict")
    loss = losses.get(name)
    y, p = _case(name, rng, (3, 4, C))
    w = rng.random(3) + 0.5
    mask = numpy.array([[1, 1, 0, 0], [1, 0, 1, 0], [1, 1, 1, 1]], bool)
    dev = [strict.asarray(a) for a in (y, p, w, mask)]
    for kw, dkw in (({}, {}), ({"sample_weight": w}, {"sample_weight": dev[2]}),
                    ({"sample_weight": w, "mask": mask},
                     {"sample_weight": dev[2], "mask": dev[3]})):
        value, grad = loss.forward_backward(y, p, **kw)
        assert type(value) is float and type(loss(y, p, **kw)) is float
        dvalue, dgrad = loss.forward_backward(dev[0], dev[1], **dkw)
        assert isinstance(dvalue, StrictArray) and isinstance(dgrad, StrictArray)
        assert float(strict.to_numpy(dvalue)) == pytest.approx(value, rel=1e-12)
        numpy.testing.assert_allclose(strict.to_numpy(dgrad), grad, rtol=1e-12, atol=1e-15)
        assert isinstance(loss(dev[0], dev[1], **dkw), StrictArray)
        if loss.fused_activation is not None:
            z = rng.standard_normal(p.shape)
            hv, hg, hp = loss.forward_backward_logits(y, z, **kw)
            dv, dg, dp = loss.forward_backward_logits(dev[0], strict.asarray(z), **dkw)
            assert float(strict.to_numpy(dv)) == pytest.approx(hv, rel=1e-12)
            numpy.testing.assert_allclose(strict.to_numpy(dg), hg, rtol=1e-12, atol=1e-15)
            numpy.testing.assert_allclose(strict.to_numpy(dp), hp, rtol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_float32_predictions_give_float32_gradients_and_float64_sums(name, ops, rng):
    # Targets of another dtype (float64, integers) follow the predictions'.
    y, p = _case(name, rng, (4096, 1) if not name.endswith("crossentropy") and
                 name != "kl_divergence" else (4096, 2))
    p32 = p.astype(numpy.float32)
    w = rng.random(len(p)).astype(numpy.float32)
    loss = losses.get(name)
    for kw in ({}, {"sample_weight": w}):
        value, grad = loss.forward_backward(y, p32, **kw)
        assert grad.dtype == numpy.float32, (name, kw, grad.dtype)
        # The mean of float32 per-sample losses is summed in float64: equal to
        # the float64 sum of the same float32 values (a float32 sum is ~1e-7 off).
        per = loss.per_sample(*loss._prepare(y, p32))
        assert per.dtype == numpy.float32
        wsum = (per * (w if kw else 1)).astype(numpy.float64).sum()
        assert value == pytest.approx(wsum / len(per), rel=1e-12)


def test_a_float32_masked_loss_sums_in_float64_and_keeps_float32_gradients(rng):
    y, p = rng.standard_normal((64, 64, 1)), rng.standard_normal((64, 64, 1)).astype("float32")
    mask = rng.random((64, 64)) > 0.2
    loss = losses.MeanSquaredError()
    value, grad = loss.forward_backward(y, p, sample_weight=numpy.ones(64, "float32"),
                                        mask=mask)
    assert grad.dtype == numpy.float32
    per = ((p - y.astype("float32")) ** 2)[..., 0]
    assert value == pytest.approx(per[mask].astype(numpy.float64).sum() / mask.sum(), rel=1e-12)


def test_one_unmasked_step_is_the_loss_of_that_step(rng):
    y, p = rng.standard_normal((2, 3, 2)), rng.standard_normal((2, 3, 2))
    mask = numpy.zeros((2, 3), bool)
    mask[1, 2] = True
    value, grad = losses.MeanSquaredError().forward_backward(y, p, mask=mask)
    assert value == pytest.approx(((p[1, 2] - y[1, 2]) ** 2).mean(), rel=1e-12)
    expected = numpy.zeros_like(p)
    expected[1, 2] = (p[1, 2] - y[1, 2])  # d/dp of the mean of 2 squares
    numpy.testing.assert_allclose(grad, expected, rtol=1e-12)


def test_a_per_sample_mask_averages_over_the_kept_samples(rng):
    y, p = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    keep = numpy.array([True, False, True, True, False])
    value = losses.MeanSquaredError()(y, p, mask=keep)
    assert value == pytest.approx(((p - y) ** 2).mean(1)[keep].mean(), rel=1e-12)


def test_an_empty_batch_and_bad_sample_weights_are_named(ops):
    mse = losses.MeanSquaredError()
    with pytest.raises(ValueError) as e:
        mse(numpy.zeros((0, 3)), numpy.zeros((0, 3)))
    assert str(e.value) == "cannot compute a loss over an empty batch"
    y = numpy.zeros((4, 3))
    for w, got in ((numpy.ones(3), "(3,)"), (numpy.ones((4, 1)), "(4, 1)"),
                   (numpy.ones((4, 3)), "(4, 3)")):
        for call in (mse, mse.forward_backward):
            with pytest.raises(ValueError) as e:
                call(y, y, sample_weight=w)
            assert str(e.value) == f"sample_weight must have shape (4,), got {got}"


def test_targets_of_n_values_fit_outputs_of_shape_n_by_1(ops, rng):
    y, p = rng.standard_normal(5), rng.standard_normal((5, 1))
    for name in ("mse", "mae", "binary_crossentropy"):
        pp = 1 / (1 + numpy.exp(-p)) if name == "binary_crossentropy" else p
        yy = (y > 0).astype(float) if name == "binary_crossentropy" else y
        assert losses.get(name)(yy, pp) == pytest.approx(losses.get(name)(yy[:, None], pp),
                                                         rel=1e-15)
    with pytest.raises(ValueError) as e:
        losses.get("mse")(numpy.zeros((5, 2)), numpy.zeros((5, 3)))
    assert str(e.value).startswith("mean_squared_error: y_true has shape (5, 2) but y_pred")


def test_msle_gradient_is_zero_where_the_prediction_is_clipped(ops):
    y = numpy.array([[1.0, 2.0, 0.5]])
    p = numpy.array([[0.0, -3.0, 1.0]])  # the first two are clipped to EPSILON
    value, grad = losses.MeanSquaredLogarithmicError().forward_backward(y, p)
    d = numpy.log1p(numpy.maximum(p, 1e-7)) - numpy.log1p(y)
    assert value == pytest.approx((d ** 2).mean(), rel=1e-12)
    numpy.testing.assert_allclose(grad, [[0.0, 0.0, 2 * d[0, 2] / 2.0 / 3]], rtol=1e-12)


@pytest.mark.parametrize("name", ["hinge", "squared_hinge"])
def test_hinge_losses_take_signed_and_real_valued_labels(name, ops, rng):
    # Labels with a negative value are used as they are (no {0, 1} mapping).
    p = rng.standard_normal((6, 3))
    for y in (numpy.where(rng.random((6, 3)) > 0.5, 1.0, -1.0),
              rng.uniform(-2, 2, (6, 3))):
        margin = numpy.maximum(0, 1 - y * p)
        expected = margin if name == "hinge" else margin ** 2
        assert losses.get(name)(y, p) == pytest.approx(expected.mean(), rel=1e-12)
        assert gradcheck(losses.get(name), y, p + 1e-3).ok


def test_binary_crossentropy_of_certain_predictions_is_clipped_not_infinite(ops):
    # Keras clips probabilities to [eps, 1 - eps]: a prediction of exactly 0 or 1
    # costs -log(eps) when wrong and about eps when right.
    y = numpy.array([[0.0, 1.0, 1.0, 0.0]])
    p = numpy.array([[0.0, 1.0, 0.0, 1.0]])
    eps = 1e-7
    q = numpy.clip(p, eps, 1 - eps)
    expected = -(y * numpy.log(q) + (1 - y) * numpy.log(1 - q)).mean()
    value, grad = losses.BinaryCrossentropy().forward_backward(y, p)
    assert numpy.isfinite(value) and value == pytest.approx(expected, rel=1e-9)
    assert numpy.isfinite(grad).all()


def test_sparse_labels_of_shape_n_by_1_and_integral_floats_are_labels(ops, rng):
    loss = losses.SparseCategoricalCrossentropy()
    for shape in ((6, 4), (3, 5, 4)):
        labels = rng.integers(0, 4, shape[:-1])
        p = _norm(rng.random(shape) + 0.1)
        expected = loss.forward_backward(labels, p)
        for same in (labels[..., None], labels.astype(float), labels[..., None].astype(float)):
            value, grad = loss.forward_backward(same, p)
            assert value == expected[0]
            numpy.testing.assert_array_equal(grad, expected[1])
    p = numpy.full((3, 4), 0.25)
    with pytest.raises(ValueError) as e:
        loss(numpy.array([0, 1]), p)
    assert str(e.value) == ("sparse_categorical_crossentropy: labels have shape (2,) but "
                            "predictions have shape (3, 4); expected labels of shape (3,) (one "
                            "integer class per sample)")
    with pytest.raises(ValueError, match="got non-integer values"):
        loss(numpy.array([0.0, 1.5, 2.0]), p)
    with pytest.raises(TypeError, match="labels must be integers, got dtype <U1"):
        loss(numpy.array(["a", "b", "c"]), p)


def test_sparse_labels_one_hot_in_the_predictions_dtype(ops, rng):
    p = _norm(rng.random((5, 3)) + 0.1).astype(numpy.float32)
    labels = rng.integers(0, 3, 5)
    value, grad = losses.SparseCategoricalCrossentropy().forward_backward(labels, p)
    assert grad.dtype == numpy.float32
    q = p.astype(numpy.float64)
    assert value == pytest.approx(-numpy.log(q[numpy.arange(5), labels]).mean(), rel=1e-6)


def test_kl_divergence_clips_both_sides_to_eps_and_1(ops):
    # Keras: y and p both clipped to [eps, 1]; no gradient where p is clipped.
    eps = 1e-7
    y = numpy.array([[0.0, 0.5, 1.5], [0.3, 0.3, 0.4]])
    p = numpy.array([[0.2, 0.0, 1.5], [0.5, 0.25, 0.25]])
    yc, pc = numpy.clip(y, eps, 1), numpy.clip(p, eps, 1)
    value, grad = losses.KLDivergence().forward_backward(y, p)
    assert value == pytest.approx((yc * numpy.log(yc / pc)).sum(1).mean(), rel=1e-12)
    expected = -yc / pc * ((p >= eps) & (p <= 1)) / 2  # d/dp of the batch mean
    numpy.testing.assert_allclose(grad, expected, rtol=1e-12)
    assert grad[0, 1] == 0 and grad[0, 2] == 0


def test_kl_divergence_sums_over_the_class_axis_of_a_sequence(ops, rng):
    y, p = _norm(rng.random((2, 3, 4)) + 0.1), _norm(rng.random((2, 3, 4)) + 0.1)
    expected = (y * numpy.log(y / p)).sum(-1).mean()
    assert losses.KLDivergence()(y, p) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("cls,method,n", [
    (losses.BinaryCrossentropy, "activation_forward", 2),  # the gradient, the probabilities
    (losses.CategoricalCrossentropy, "softmax_cross_entropy", 1)])
def test_the_fused_path_computes_on_the_models_backend(cls, method, n, rng):
    # Host arrays fit two backends: a loss owned by a model (loss.ops) must use
    # the model's, in the fused step too, not the default one.
    from fastnn.backend.ops import Ops
    calls = []

    class Spy(Ops):
        pass
    spy = Spy()
    original = getattr(spy, method)
    setattr(spy, method, lambda *a, **k: calls.append(method) or original(*a, **k))
    loss = cls()
    loss.ops = spy
    y = numpy.eye(3)[rng.integers(0, 3, 4)]
    loss.forward_backward_logits(y, rng.standard_normal((4, 3)))
    assert calls == [method] * n


def test_sample_weights_of_another_dtype_keep_float32_gradients(ops, rng):
    y, p = rng.standard_normal((5, 3)), rng.standard_normal((5, 3)).astype(numpy.float32)
    for w in (numpy.arange(5.0), [1, 2, 3, 4, 5]):
        value, grad = losses.MeanSquaredError().forward_backward(y, p, sample_weight=w)
        assert grad.dtype == numpy.float32
        per = ((p - y.astype(numpy.float32)) ** 2).mean(1).astype(numpy.float64)
        assert value == pytest.approx((per * numpy.asarray(w)).sum() / 5, rel=1e-6)


def test_sparse_labels_against_a_sequence_of_predictions(ops, rng):
    # (batch, steps, classes) predictions: 3 steps, 5 classes.
    loss = losses.SparseCategoricalCrossentropy()
    p = _norm(rng.random((2, 3, 5)) + 0.1)
    labels = numpy.array([[4, 0, 3], [2, 4, 1]])
    expected = -numpy.log(numpy.take_along_axis(p, labels[..., None], -1)).mean()
    assert loss(labels, p) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError) as e:
        loss(numpy.array([[5, 0, 0], [0, 0, 0]]), p)
    assert str(e.value) == ("sparse_categorical_crossentropy: labels must lie in [0, 5) for 5 "
                            "classes, got values in [0, 5]")
    with pytest.raises(ValueError) as e:
        loss(numpy.zeros((2, 4), int), p)
    assert str(e.value).endswith("expected labels of shape (2, 3) (one integer class per "
                                 "sample)")
    with pytest.raises(ValueError) as e:
        loss(numpy.array([[0.5, 0, 0], [0, 0, 0]]), p)
    assert str(e.value) == ("sparse_categorical_crossentropy: labels must be integer class "
                            "indices, got non-integer values")


def test_categorical_crossentropy_renormalises_and_clips_probabilities(ops, rng):
    # Keras: p / sum(p) over the class axis, clipped to [eps, 1 - eps]; on a
    # sequence (batch, steps, classes) too.
    eps = 1e-7
    y = _norm(rng.random((2, 3, 4)) + 0.1)
    p = rng.random((2, 3, 4)) * 3 + 0.1  # rows sum to about 6, not 1
    p[0, 0] = [0.0, 0.0, 2.0, 0.0]      # certain: q = [0, 0, 1, 0] before clipping
    loss = losses.CategoricalCrossentropy()
    value, grad = loss.forward_backward(y, p)
    s = p.sum(-1, keepdims=True)
    q = numpy.clip(p / s, eps, 1 - eps)
    assert numpy.isfinite(value)
    assert value == pytest.approx(-(y * numpy.log(q)).sum(-1).mean(), rel=1e-12)
    expected = (-y / (q * s) + y.sum(-1, keepdims=True) / s) / 6  # over 6 samples x steps
    numpy.testing.assert_allclose(grad, expected, rtol=1e-12)
    z = rng.random((5, 4)) * 3 + 0.1
    assert gradcheck(loss, _norm(rng.random((5, 4))), z).ok


def test_host_targets_with_device_predictions(rng):
    # Targets may come from the host: they follow the predictions to the device.
    from fastnn.backend import get_instance
    strict = get_instance("strict")
    for name in ("mse", "categorical_crossentropy", "sparse_categorical_crossentropy"):
        y, p = _case(losses.get(name).name, rng)
        host = losses.get(name)(y, p)
        dev = losses.get(name)(y, strict.asarray(p))
        assert float(strict.to_numpy(dev)) == pytest.approx(host, rel=1e-12)


def test_categorical_crossentropy_messages_name_the_loss(ops):
    loss = losses.CategoricalCrossentropy()
    with pytest.raises(ValueError) as e:
        loss(numpy.zeros(3), numpy.full(3, 1 / 3))
    assert str(e.value) == ("categorical_crossentropy: y_pred must have a class axis (batch, "
                            "classes), got shape (3,)")
    with pytest.raises(ValueError) as e:
        loss(numpy.zeros((2, 3)), numpy.full((2, 4), 0.25))
    assert str(e.value).startswith("categorical_crossentropy: y_true has shape (2, 3)")


def test_get_names_what_it_could_not_resolve():
    with pytest.raises(ValueError) as e:
        losses.get("mean_sqaured_error")
    assert str(e.value).startswith("unknown loss 'mean_sqaured_error'; valid names are: ")
    with pytest.raises(ValueError, match=r"^unknown loss class 'Nope'; valid classes are: "):
        losses.get({"class_name": "Nope", "config": {}})
    with pytest.raises(TypeError) as e:
        losses.get(42)
    assert str(e.value) == "loss must be a name or a fastnn.losses.Loss, got 42"
    loss = losses.CategoricalCrossentropy(from_logits=True)
    assert losses.get(loss) is loss
    clone = losses.get({"class_name": "CategoricalCrossentropy", "config": loss.get_config()})
    assert type(clone) is losses.CategoricalCrossentropy and clone.from_logits


# ------------------------------------------------------------ label smoothing
def _log_softmax(z):
    z = z.astype(numpy.float64)
    z = z - z.max(-1, keepdims=True)
    return z - numpy.log(numpy.exp(z).sum(-1, keepdims=True))


def _smoothed(labels, k, s):
    """One-hot rows of integer ``labels`` (or soft rows as given) pulled to uniform."""
    t = numpy.eye(k)[labels] if labels.dtype.kind in "iu" else labels.astype(numpy.float64)
    return t * (1 - s) + s / k


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (5, 3), (2, 3, 4)])
@pytest.mark.parametrize("sparse", [True, False])
def test_label_smoothing_matches_the_numpy_formula(sparse, shape, dtype, ops, rng):
    # Keras: targets y * (1 - s) + s / classes, on logits and probabilities;
    # the sparse loss smooths its one-hot rows by the same formula.
    k, s = shape[-1], 0.2
    z = (rng.standard_normal(shape) * 3).astype(dtype)
    labels = rng.integers(0, k, shape[:-1])
    y = labels if sparse else _norm(rng.random(shape) + 0.1)
    t = _smoothed(labels if sparse else y, k, s)
    cls = losses.SparseCategoricalCrossentropy if sparse else losses.CategoricalCrossentropy
    tol = 1e-5 if dtype == "float32" else 1e-12
    n = int(numpy.prod(shape[:-1]))
    logp = _log_softmax(z)
    value, grad = cls(from_logits=True, label_smoothing=s).forward_backward(y, z)
    assert value == pytest.approx(-(t * logp).sum(-1).mean(), rel=tol)
    assert grad.dtype == z.dtype
    numpy.testing.assert_allclose(grad, (numpy.exp(logp) * t.sum(-1, keepdims=True) - t) / n,
                                  rtol=tol * 10, atol=tol / 10)
    # Probabilities: renormalized and clipped as without smoothing.
    p = numpy.exp(logp).astype(dtype)
    value, grad = cls(label_smoothing=s).forward_backward(y, p)
    # Clipped in the predictions' dtype: 1 - 1e-7 rounds to 1 - 2**-23 in float32.
    q = numpy.clip(p / p.sum(-1, keepdims=True), 1e-7, 1 - 1e-7).astype(numpy.float64)
    assert value == pytest.approx(-(t * numpy.log(q)).sum(-1).mean(), rel=tol * 10)
    assert grad.dtype == p.dtype
    # The fused softmax step a model takes: smoothed too.
    value, grad, probs = cls(label_smoothing=s).forward_backward_logits(y, z)
    assert value == pytest.approx(-(t * logp).sum(-1).mean(), rel=tol)
    numpy.testing.assert_allclose(grad, (numpy.exp(logp) * t.sum(-1, keepdims=True) - t) / n,
                                  rtol=tol * 10, atol=tol / 10)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(1, 1), (5, 3), (2, 3, 4)])
def test_binary_label_smoothing_matches_the_numpy_formula(shape, dtype, ops, rng):
    # Keras: targets y * (1 - s) + s / 2, on logits, on probabilities and in
    # the fused sigmoid step a model takes; s = 0 is the plain loss exactly.
    s = 0.2
    z = (rng.standard_normal(shape) * 3).astype(dtype)
    y = (rng.random(shape) > 0.5).astype(dtype)
    t = y.astype(numpy.float64) * (1 - s) + s / 2
    z64 = z.astype(numpy.float64)
    p64 = 1 / (1 + numpy.exp(-z64))
    n = numpy.prod(shape[:-1]) * shape[-1]
    want = (-(t * numpy.log(p64) + (1 - t) * numpy.log1p(-p64))).mean()
    tol = 1e-5 if dtype == "float32" else 1e-12
    value, grad = losses.BinaryCrossentropy(from_logits=True, label_smoothing=s) \
        .forward_backward(y, z)
    assert value == pytest.approx(want, rel=tol)
    assert grad.dtype == z.dtype
    numpy.testing.assert_allclose(grad, (p64 - t) / n, rtol=tol * 10, atol=tol / 10)
    value, grad, probs = losses.BinaryCrossentropy(label_smoothing=s) \
        .forward_backward_logits(y, z)
    assert value == pytest.approx(want, rel=tol)
    numpy.testing.assert_allclose(grad, (p64 - t) / n, rtol=tol * 10, atol=tol / 10)
    # Probabilities (clipped as without smoothing).
    p = numpy.clip(p64, 0.05, 0.95).astype(dtype)
    q = p.astype(numpy.float64)
    value, _ = losses.BinaryCrossentropy(label_smoothing=s).forward_backward(y, p)
    assert value == pytest.approx((-(t * numpy.log(q) + (1 - t) * numpy.log1p(-q))).mean(),
                                  rel=tol * 10)
    for a, b in zip(losses.BinaryCrossentropy().forward_backward(y, z),
                    losses.BinaryCrossentropy(label_smoothing=0.0).forward_backward(y, z)):
        numpy.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_cross_entropy_op_smooths_without_one_hot_rows(dtype, ops, rng):
    # The backend op itself (the models' hot path), integer labels and soft
    # targets, against the formula; s = 0 is the unsmoothed loss exactly.
    z = (rng.standard_normal((9, 5)) * 2).astype(dtype)
    labels = rng.integers(0, 5, 9)
    soft = _norm(rng.random((9, 5)) + 0.1).astype(dtype)
    logp = _log_softmax(z)
    tol = 1e-5 if dtype == "float32" else 1e-12
    for y in (labels, soft):
        for s in (0.0, 0.1, 1.0):
            t = _smoothed(y, 5, s)
            loss, grad = ops.softmax_cross_entropy(z.copy(), y, s)
            assert loss.dtype == grad.dtype == z.dtype
            numpy.testing.assert_allclose(loss, -(t * logp).sum(-1), rtol=tol)
            numpy.testing.assert_allclose(grad, numpy.exp(logp) * t.sum(-1, keepdims=True) - t,
                                          rtol=tol * 10, atol=tol)
        plain = ops.softmax_cross_entropy(z.copy(), y)
        for a, b in zip(plain, ops.softmax_cross_entropy(z.copy(), y, 0.0)):
            numpy.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("cls", [losses.CategoricalCrossentropy,
                                 losses.SparseCategoricalCrossentropy,
                                 losses.BinaryCrossentropy])
@pytest.mark.parametrize("from_logits", [True, False])
def test_label_smoothing_gradients(cls, from_logits, ops, rng):
    # float64 finite differences; from probabilities gradcheck also checks the
    # fused softmax path at the logits.
    y = _targets(cls.name, rng)
    p = _predictions(cls.name, rng, from_logits=from_logits)
    result = gradcheck(cls(from_logits=from_logits, label_smoothing=0.15), y, p)
    assert result.ok
    if not from_logits:
        assert any(piece == "logits (fused)" for piece, *_ in result.checks)


def test_label_smoothing_matches_pytorch_cross_entropy(rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    z = rng.standard_normal((16, 10)) * 3
    labels = rng.integers(0, 10, 16)
    soft = _norm(rng.random((16, 10)) + 0.1)
    for s in (0.05, 0.1, 0.3):
        for loss, y, ty in ((losses.SparseCategoricalCrossentropy, labels,
                             torch.tensor(labels)),
                            (losses.CategoricalCrossentropy, soft, torch.tensor(soft))):
            tz = torch.tensor(z, requires_grad=True)
            expected = F.cross_entropy(tz, ty, label_smoothing=s)
            expected.backward()
            value, grad = loss(from_logits=True, label_smoothing=s).forward_backward(y, z)
            assert value == pytest.approx(expected.item(), rel=1e-12)
            numpy.testing.assert_allclose(grad, tz.grad.numpy(), rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("cls", [losses.CategoricalCrossentropy,
                                 losses.SparseCategoricalCrossentropy,
                                 losses.BinaryCrossentropy])
def test_label_smoothing_config_and_bad_values(cls):
    loss = cls(from_logits=True, label_smoothing=0.1)
    assert loss.get_config() == {"from_logits": True, "label_smoothing": 0.1}
    clone = losses.get({"class_name": cls.__name__, "config": loss.get_config()})
    assert type(clone) is cls and clone.label_smoothing == 0.1 and clone.from_logits
    # A config saved before the argument existed still loads, unsmoothed.
    assert losses.get({"class_name": cls.__name__,
                       "config": {"from_logits": False}}).label_smoothing == 0.0
    for bad in (-0.1, 1.5, float("nan"), float("inf")):
        with pytest.raises(ValueError) as e:
            cls(label_smoothing=bad)
        assert str(e.value) == f"{cls.name}: label_smoothing must lie in [0, 1], got {bad!r}"
    with pytest.raises(ValueError) as e:
        cls(label_smoothing="a lot")
    assert str(e.value) == (f"{cls.name}: label_smoothing must be a number in [0, 1], "
                            "got 'a lot'")


def test_a_model_trains_with_label_smoothing_on_the_strict_backend_and_saves_it(tmp_path):
    # The fused softmax step under smoothing computes through the model's ops
    # only: on the strict backend as on the reference one; the smoothing
    # survives save/load with the compiled loss.
    import fastnn
    from fastnn import layers
    rng = numpy.random.default_rng(0)
    x = rng.standard_normal((64, 6)).astype("float32")
    y = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0)
    histories, models = {}, {}
    for backend in ("reference", "strict"):
        fastnn.set_seed(1)
        model = fastnn.Sequential([fastnn.Input((6,)), layers.Dense(8, activation="relu"),
                                   layers.Dense(3, activation="softmax")], backend=backend)
        model.compile(fastnn.optimizers.Adam(0.05),
                      losses.SparseCategoricalCrossentropy(label_smoothing=0.2))
        histories[backend] = model.fit(x, y, batch_size=16, epochs=5, verbose=0).history["loss"]
        models[backend] = model
    numpy.testing.assert_allclose(histories["strict"], histories["reference"], rtol=1e-6)
    assert histories["reference"][-1] < histories["reference"][0]
    # evaluate reports the smoothed loss of the predictions, as Keras does.
    model = models["reference"]
    probs = model.predict(x, verbose=0).astype(numpy.float64)
    smoothed = model.evaluate(x, y, verbose=0, return_dict=True)["loss"]
    t = _smoothed(y, 3, 0.2)
    assert smoothed == pytest.approx(-(t * numpy.log(probs)).sum(-1).mean(), rel=1e-5)
    assert abs(smoothed - losses.SparseCategoricalCrossentropy()(y, probs)) > 1e-2
    fastnn.saving.save_model(model, tmp_path / "smoothed.fnn")
    loaded = fastnn.load_model(tmp_path / "smoothed.fnn")
    assert type(loaded.loss) is losses.SparseCategoricalCrossentropy
    assert loaded.loss.label_smoothing == 0.2
    assert loaded.evaluate(x, y, verbose=0, return_dict=True)["loss"] == pytest.approx(smoothed)
