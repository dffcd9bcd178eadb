"""Masks: Masking and GlobalAveragePooling1D against NumPy references, masks
flowing along the graph (Embedding(mask_zero) / Masking -> consumers), layers
that cannot take a mask refusing it, and losses under a mask (Keras's rule:
masked steps contribute nothing, the mean is over unmasked steps)."""
import numpy
import pytest

import fastnn
from fastnn import layers as L
from fastnn import losses
from fastnn.gradcheck import gradcheck
from fastnn.testing import assert_close, run_layer_test


def _padded(rng, n=5, steps=6, features=3):
    x = rng.standard_normal((n, steps, features))
    lengths = rng.integers(1, steps + 1, n)
    lengths[0] = steps
    mask = numpy.arange(steps)[None, :] < lengths[:, None]
    x[~mask] = 0.0
    return x, mask


# ---------------------------------------------------------------- Masking
def test_masking_runs_the_layer_harness(rng):
    # Random inputs have no padded step: a padded step is a kink (any change
    # unmasks it), so its gradient is checked exactly below instead.
    run_layer_test(lambda dt: L.Masking(dtype=dt), (5, 6, 3), (5, 6, 3), rng)
    x, mask = _padded(rng)
    y, backprop = L.Masking(dtype="float64").forward(x)
    dy = rng.standard_normal(x.shape)
    numpy.testing.assert_array_equal(backprop(dy), dy * mask[..., None])


def test_masking_mask_and_output_match_numpy(rng):
    x, mask = _padded(rng)
    x[1, 0, :] = 0.0        # an all-zero step inside the sequence is masked too (as Keras)
    x[2, 1, 0] = 0.0        # one zero feature is not enough
    layer = L.Masking()
    expected = (x != 0).any(axis=-1)
    numpy.testing.assert_array_equal(layer.compute_mask(x.astype("float32")), expected)
    numpy.testing.assert_array_equal(layer(x), (x * expected[..., None]).astype("float32"))
    layer7 = L.Masking(mask_value=7.0)
    x7 = numpy.where(mask[..., None], x, 7.0)
    numpy.testing.assert_array_equal(layer7.compute_mask(x7.astype("float32")), mask)


# ---------------------------------------------------- GlobalAveragePooling1D
def test_global_average_pooling_runs_the_layer_harness(rng):
    run_layer_test(lambda dt: L.GlobalAveragePooling1D(dtype=dt), (4, 7, 3), (4, 3), rng)
    _, mask = _padded(rng, 4, 7, 3)
    run_layer_test(lambda dt: L.GlobalAveragePooling1D(dtype=dt), (4, 7, 3), (4, 3), rng,
                   call_kwargs={"mask": mask})


def test_global_average_pooling_honours_the_mask(rng):
    x, mask = _padded(rng)
    x = x + 5.0  # padded steps hold values that would change a plain mean
    mask[3] = False  # a sample with every step masked gives zeros
    layer = L.GlobalAveragePooling1D(dtype="float64")
    y = layer(x, mask=mask)
    for i in range(x.shape[0]):
        expected = x[i][mask[i]].mean(axis=0) if mask[i].any() else numpy.zeros(3)
        assert_close(y[i], expected)
    assert_close(layer(x), x.mean(axis=1))
    assert layer(fastnn.Input((6, 3))).shape == (3,)
    assert L.GlobalAveragePooling1D(keepdims=True)(fastnn.Input((6, 3))).shape == (1, 3)
    with pytest.raises(ValueError, match=r"mask of shape \(5, 5\)"):
        layer(x, mask=mask[:, :5])


# ------------------------------------------------------------- graph flow
def test_embedding_mask_reaches_the_pooling_layer_in_a_model(rng):
    idx = numpy.array([[4, 2, 0, 0], [1, 0, 0, 0], [3, 3, 3, 1]])
    inp = fastnn.Input((4,), dtype="int64")
    emb = L.Embedding(6, 3, mask_zero=True)
    seq = L.Dense(3, activation="tanh")(emb(inp))        # Dense passes the mask on
    pooled = L.GlobalAveragePooling1D()(seq)
    model = fastnn.Model(inp, pooled)
    assert seq.mask is not None and pooled.mask is None
    E = emb.get_weights()[0]
    W, b = model.layers[1].get_weights()
    h = numpy.tanh(E[idx] @ W + b)
    m = idx != 0
    expected = (h * m[..., None]).sum(1) / m.sum(1, keepdims=True)
    numpy.testing.assert_allclose(model.predict(idx), expected, rtol=1e-5, atol=1e-6)
    # Changing what sits at padded positions does not change the output.
    idx2 = idx.copy()
    E2 = E.copy()
    E2[0] = 100.0
    emb.set_weights([E2])
    numpy.testing.assert_allclose(model.predict(idx2), expected, rtol=1e-5, atol=1e-6)


def test_masking_layer_mask_reaches_the_pooling_layer(rng):
    x, mask = _padded(rng)
    inp = fastnn.Input(x.shape[1:], dtype="float64")
    out = L.GlobalAveragePooling1D(dtype="float64")(L.Masking(dtype="float64")(inp))
    model = fastnn.Model(inp, out)
    y = model.predict(x)
    expected = numpy.stack([x[i][mask[i]].mean(axis=0) for i in range(len(x))])
    assert_close(y, expected)


def test_layer_without_masking_support_refuses_a_masked_input():
    inp = fastnn.Input((4,), dtype="int64")
    seq = L.Embedding(6, 3, mask_zero=True, name="emb")(inp)
    with pytest.raises(ValueError, match=r"'flatten_x' \(Flatten\) does not support masking.*"
                                         r"'emb' carries a mask"):
        L.Flatten(name="flatten_x")(seq)


def test_explicit_mask_argument_from_a_model_input(rng):
    x, mask = _padded(rng)
    inp = fastnn.Input(x.shape[1:], dtype="float64")
    m = fastnn.Input(mask.shape[1:], dtype="float64")
    out = L.GlobalAveragePooling1D(dtype="float64")(inp, mask=m)
    model = fastnn.Model([inp, m], out)
    expected = numpy.stack([x[i][mask[i]].mean(axis=0) for i in range(len(x))])
    assert_close(model.predict([x, mask.astype("float64")]), expected)


# ------------------------------------------------------------------ losses
@pytest.mark.parametrize("name", ["mse", "mae", "categorical_crossentropy",
                                  "sparse_categorical_crossentropy", "binary_crossentropy"])
def test_masked_loss_matches_numpy_and_gradchecks(name, rng):
    n, steps, c = 4, 5, 3
    _, mask = _padded(rng, n, steps, c)
    sw = rng.uniform(0.5, 2.0, n)
    loss = losses.get(name)
    if name == "sparse_categorical_crossentropy":
        y = rng.integers(0, c, (n, steps))
    elif name in ("categorical_crossentropy",):
        y = numpy.eye(c)[rng.integers(0, c, (n, steps))]
    else:
        y = rng.uniform(0, 1, (n, steps, c))
    logits = rng.standard_normal((n, steps, c))
    p = numpy.exp(logits) / numpy.exp(logits).sum(-1, keepdims=True) if "categorical" in name \
        else 1 / (1 + numpy.exp(-logits))
    # Reference: the per-step loss of each unmasked step, weighted, over the count.
    flat_mask = mask.reshape(-1)
    per_step = numpy.array([loss(y.reshape((n * steps,) + y.shape[2:])[i:i + 1],
                                 p.reshape(n * steps, c)[i:i + 1]) for i in range(n * steps)])
    w = numpy.repeat(sw, steps)
    expected = (per_step * w * flat_mask).sum() / flat_mask.sum()
    assert loss(y, p, sw, mask=mask) == pytest.approx(expected, rel=1e-10)
    assert loss(y, p, mask=mask) == pytest.approx(
        (per_step * flat_mask).sum() / flat_mask.sum(), rel=1e-10)
    assert gradcheck(loss, y, p, sample_weight=sw, mask=mask).ok


def test_all_masked_loss_is_zero_with_zero_gradient(rng):
    y, p = rng.standard_normal((2, 3, 1)), rng.standard_normal((2, 3, 1))
    value, grad = losses.MeanSquaredError().forward_backward(y, p, mask=numpy.zeros((2, 3), bool))
    assert value == 0.0 and not grad.any()


def test_bad_mask_shape_is_named(rng):
    y = rng.standard_normal((2, 3, 4))
    with pytest.raises(ValueError, match=r"mask has shape \(2, 4\)"):
        losses.MeanSquaredError()(y, y, mask=numpy.ones((2, 4), bool))


def test_model_loss_honours_the_output_mask(rng):
    # Embedding(mask_zero) -> per-step softmax: padded steps neither count in
    # the loss nor send gradients; the fused softmax path gives the same.
    idx = numpy.array([[4, 2, 0, 0], [1, 0, 0, 0], [3, 3, 3, 1]])
    y = rng.integers(0, 3, idx.shape)
    inp = fastnn.Input((4,), dtype="int64")
    out = L.Dense(3, activation="softmax", dtype="float64")(
        L.Embedding(6, 5, mask_zero=True, dtype="float64")(inp))
    model = fastnn.Model(inp, out)
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    assert model._fusable() and model.outputs[0].mask is not None
    assert gradcheck(model, idx, y).ok
    p = model.predict(idx)
    m = idx != 0
    nll = -numpy.log(numpy.take_along_axis(p, y[..., None], -1)[..., 0])
    expected = (nll * m).sum() / m.sum()
    assert model.evaluate(idx, y, return_dict=True)["loss"] == pytest.approx(expected, rel=1e-9)
    # Targets at padded steps are irrelevant.
    y2 = numpy.where(m, y, (y + 1) % 3)
    assert model.evaluate(idx, y2, return_dict=True)["loss"] == pytest.approx(expected, rel=1e-9)
    first = model.train_on_batch(idx, y, return_dict=True)["loss"]
    model2 = fastnn.Model(inp, out)
    model2.compile("sgd", "sparse_categorical_crossentropy")
    model2._fusable = lambda: False
    assert gradcheck(model2, idx, y).ok
    assert first == pytest.approx(expected, rel=1e-9)


def test_metrics_count_only_unmasked_steps(rng):
    idx = numpy.array([[4, 2, 0, 0], [1, 0, 0, 0], [3, 3, 3, 1]])
    y = rng.integers(0, 3, idx.shape)
    inp = fastnn.Input((4,), dtype="int64")
    out = L.Dense(3, activation="softmax")(L.Embedding(6, 5, mask_zero=True)(inp))
    model = fastnn.Model(inp, out)
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    m = idx != 0
    hit = model.predict(idx).argmax(-1) == y
    expected = hit[m].mean()
    assert expected != hit.mean()  # the padded steps would change it
    assert model.evaluate(idx, y, return_dict=True)["accuracy"] == pytest.approx(expected)
    sw = numpy.array([1.0, 3.0, 0.5])
    w = numpy.broadcast_to(sw[:, None], m.shape)[m]
    logs = model.test_on_batch(idx, y, sample_weight=sw, return_dict=True)
    assert logs["accuracy"] == pytest.approx((hit[m] * w).sum() / w.sum())
    history = model.fit(idx, y, epochs=1, batch_size=3, shuffle=False, verbose=0)
    assert 0 <= history.history["accuracy"][0] <= 1


def test_merge_layers_and_their_masks(rng):
    idx = numpy.array([[4, 2, 0, 0], [1, 0, 0, 0]])
    inp = fastnn.Input((4,), dtype="int64")
    other = fastnn.Input((4, 3))
    emb = L.Embedding(6, 3, mask_zero=True)(inp)
    summed = L.Add()([emb, L.Dense(3)(emb)])        # a residual step keeps the mask
    joined = L.Concatenate()([summed, other])       # one masked, one not: the mask stays
    assert summed.mask is not None and joined.mask is not None
    model = fastnn.Model([inp, other], L.GlobalAveragePooling1D()(joined))
    x2 = rng.standard_normal((2, 4, 3)).astype("float32")
    y = model.predict([idx, x2])
    numpy.testing.assert_allclose(y[1, 3:], x2[1, 0], rtol=1e-6)  # only step 0 of sample 1
    merge = L.Add()
    a, b = numpy.array([[True, True, False]]), numpy.array([[True, False, False]])
    numpy.testing.assert_array_equal(merge.compute_mask([None, None], [a, b]), a & b)
    assert merge.compute_mask([None, None], [None, None]) is None
    with pytest.raises(ValueError, match="along axis 1"):
        L.Concatenate(axis=1)([emb, emb])


def test_masked_model_saves_and_loads_with_its_mask(tmp_path, rng):
    idx = numpy.array([[4, 2, 0, 0], [1, 0, 0, 0], [3, 3, 3, 1]])
    y = rng.integers(0, 3, idx.shape)
    inp = fastnn.Input((4,), dtype="int64")
    model = fastnn.Model(inp, L.TimeDistributed(L.Dense(3, activation="softmax"))(
        L.Embedding(6, 5, mask_zero=True)(inp)))
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(idx, y, epochs=2, verbose=0)
    model.save(tmp_path / "masked.fastnn")
    loaded = fastnn.load_model(tmp_path / "masked.fastnn")
    assert loaded.outputs[0].mask is not None and loaded.inputs[0].dtype == numpy.int64
    numpy.testing.assert_array_equal(loaded.predict(idx), model.predict(idx))
    assert loaded.evaluate(idx, y, return_dict=True) == model.evaluate(idx, y, return_dict=True)
