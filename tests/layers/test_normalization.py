"""BatchNormalization: the layer harness, float64 gradient checks in both
modes and on every kind of axis, inference against the NumPy formula with
the moving statistics, the moving statistics against Keras's definition,
training step by step against PyTorch's BatchNorm2d, frozen layers, summary,
save/load, the strict backend, masks and bad input."""
import io

import numpy
import pytest

import fastnn
from fastnn import layers as L
from fastnn.backend import use_backend
from fastnn.gradcheck import gradcheck
from fastnn.testing import assert_close, run_layer_test


def _formula(x, axes, gamma, beta, mean, var, eps):
    """Normalization over every axis but ``axes`` (full-input axes), in float64."""
    shape = [1] * x.ndim
    for a, d in zip(axes, gamma.shape if gamma is not None else mean.shape):
        shape[a] = d

    def b(v):
        return numpy.asarray(v, numpy.float64).reshape(shape)
    y = (x.astype(numpy.float64) - b(mean)) / numpy.sqrt(b(var) + eps)
    if gamma is not None:
        y = y * b(gamma)
    if beta is not None:
        y = y + b(beta)
    return y


@pytest.mark.parametrize("backend", ["numpy", "reference"])
@pytest.mark.parametrize("axis,shape", [(-1, (4, 3, 5, 6)), (1, (4, 3, 5, 6)), (-1, (7, 5)),
                                        ([1, 2], (3, 4, 5, 2)), (2, (2, 6, 3))])
def test_layer_harness(axis, shape, backend, rng):
    with use_backend(backend):
        layer = run_layer_test(lambda dt: L.BatchNormalization(axis=axis, dtype=dt), shape,
                               shape, rng, n_weights=4)
    assert [n for n in layer.params] == ["gamma", "beta", "moving_mean", "moving_variance"]
    assert layer.trainable_names == ["gamma", "beta"]


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("axis", [-1, 1, [1, 2], -2])
@pytest.mark.parametrize("center,scale", [(True, True), (False, True), (True, False)])
def test_gradcheck_float64(axis, training, center, scale, rng):
    layer = L.BatchNormalization(axis=axis, center=center, scale=scale, dtype="float64")
    x = rng.standard_normal((5, 4, 3, 6)) * 2 + 1     # 60 rows per feature at axis -1
    layer._ensure_built(x.shape[1:])
    for name in ("gamma", "beta"):
        if name in layer.params:
            layer.params[name][...] = rng.standard_normal(layer.params[name].shape)
    layer.forward(x * 1.5 - 0.5, True)   # moving statistics away from 0 / 1
    # rtol 1e-4: with batch statistics the normalized output makes sum(dy * y)
    # nearly flat along a random direction, so its central difference keeps
    # ~1e-8 of rounding against a small derivative.
    assert gradcheck(layer, x, training=training, rtol=1e-4).ok


@pytest.mark.parametrize("axis,shape", [(1, (3, 4, 70)), (1, (70, 3, 2)), (-2, (2, 3, 5, 4))])
def test_gradcheck_strided_layouts(axis, shape, rng):
    # The strided kernels over several summation blocks (70 outer indices of 2
    # values: 3 blocks) and inner runs beyond the 8 float64 lanes, training.
    layer = L.BatchNormalization(axis=axis, dtype="float64")
    x = rng.standard_normal(shape) * 2 + 3
    layer._ensure_built(x.shape[1:])
    layer.params["gamma"][...] = rng.standard_normal(layer.params["gamma"].shape)
    assert gradcheck(layer, x, training=True, rtol=1e-4).ok


def test_channels_first_runs_the_strided_kernels_without_a_transpose(rng, monkeypatch):
    from fastnn.backend import NumpyOps

    def refuse(*args, **kwargs):
        raise AssertionError("the (rows, features) kernels ran: the input was transposed")
    monkeypatch.setattr(NumpyOps, "batchnorm_forward", refuse)
    monkeypatch.setattr(NumpyOps, "batchnorm_backward", refuse)
    with use_backend("numpy"):
        layer = L.BatchNormalization(axis=1)
        x = (rng.standard_normal((4, 3, 5, 6)) * 2 + 1).astype("float32")
        layer._ensure_built(x.shape[1:])
        y, backprop = layer.forward(x, training=True)
        dx = backprop(numpy.ones_like(x))
    mean, var = x.mean((0, 2, 3)), x.var((0, 2, 3))
    assert_close(y, _formula(x, [1], None, None, mean, var, 1e-3).astype("float32"), tol=1e-4)
    assert dx.shape == x.shape


def test_gradcheck_batch_over_sum_rows(rng):
    # More rows than one of the kernel's summation blocks, channels_first.
    layer = L.BatchNormalization(axis=1, dtype="float64")
    x = rng.standard_normal((3, 2, 9, 11)) + 3
    layer._ensure_built(x.shape[1:])
    assert gradcheck(layer, x, training=True, rtol=1e-4).ok


@pytest.mark.parametrize("backend", ["numpy", "reference"])
@pytest.mark.parametrize("axis,shape,axes", [(-1, (8, 5, 7, 16), [3]), (1, (8, 16, 5, 7), [1]),
                                             ([1, 3], (6, 4, 5, 3), [1, 3]),
                                             # the strided kernels: one run of axes not last
                                             (1, (6, 5, 40), [1]), (-2, (3, 4, 6, 5), [2]),
                                             ([1, 2], (3, 4, 5, 6), [1, 2]),
                                             (2, (6, 5, 9), [2])])
def test_inference_equals_formula_with_moving_statistics(axis, shape, axes, backend, rng):
    with use_backend(backend):
        layer = L.BatchNormalization(axis=axis, momentum=0.5)
        x = (rng.standard_normal(shape) * 3 + 2).astype("float32")
        layer(x)
        w = [rng.standard_normal(p.shape).astype("float32") for p in layer.get_weights()]
        w[3] = numpy.abs(w[3]) + 0.1
        layer.set_weights(w)
        y = layer(x)                        # inference: the default
        assert_close(y, _formula(x, axes, *w, 1e-3).astype("float32"))
        # training=True normalizes by the batch's own statistics instead
        y_train = layer(x, training=True)
        red = tuple(a for a in range(x.ndim) if a not in axes)
        mean, var = x.astype(numpy.float64).mean(red), x.astype(numpy.float64).var(red)
        assert_close(y_train, _formula(x, axes, w[0], w[1], mean, var, 1e-3).astype("float32"),
                     tol=1e-4)


@pytest.mark.parametrize("backend", ["numpy", "reference"])
def test_moving_statistics_follow_keras_formula_through_fit(backend, rng):
    """N optimizer steps: moving = momentum * moving + (1 - momentum) * batch
    statistic, with the batch's biased variance; the optimizer never touches
    them (Adam would move them off the formula)."""
    momentum = 0.8
    x = (rng.standard_normal((40, 3, 3, 4)) * [1, 2, 3, 0.5] + [0, 1, -2, 5]).astype("float32")
    y = rng.standard_normal((40, 2)).astype("float32")
    with use_backend(backend):
        fastnn.set_seed(0)
        model = fastnn.Sequential([fastnn.Input((3, 3, 4)), L.BatchNormalization(
            momentum=momentum), L.Flatten(), L.Dense(2)], backend=backend)
        model.compile(fastnn.optimizers.Adam(0.05), "mse")
        model.fit(x, y, batch_size=10, epochs=2, shuffle=False, verbose=0)
    bn = model.layers[0]
    mean, var = numpy.zeros(4), numpy.ones(4)
    for _ in range(2):
        for lo in range(0, 40, 10):
            b = x[lo:lo + 10].reshape(-1, 4).astype(numpy.float64)
            mean = momentum * mean + (1 - momentum) * b.mean(0)
            var = momentum * var + (1 - momentum) * b.var(0)   # biased
    assert_close(bn.get_weights()[2], mean.astype("float32"), tol=1e-5)
    assert_close(bn.get_weights()[3], var.astype("float32"), tol=1e-5)
    # gamma and beta did train
    assert not numpy.allclose(bn.get_weights()[0], 1)
    # predict and evaluate run in inference mode: the moving statistics do not move
    before = bn.get_weights()
    p = model.predict(x)
    model.evaluate(x, y, verbose=0)
    for a, b in zip(before, bn.get_weights()):
        numpy.testing.assert_array_equal(a, b)
    w = before
    dense = model.layers[2].get_weights()
    expected = _formula(x, [3], *w, 1e-3).reshape(40, -1) @ dense[0] + dense[1]
    assert_close(p, expected.astype("float32"), tol=1e-4)


def test_frozen_layer_runs_in_inference_mode(rng):
    layer = L.BatchNormalization()
    x = (rng.standard_normal((16, 5)) * 2 + 3).astype("float32")
    layer(x)
    layer.trainable = False
    before = layer.get_weights()
    y, backprop = layer.forward(x, training=True)
    # Keras 2.1+: a frozen BN normalizes with the moving statistics, does not
    # update them, and gets no gradient.
    assert_close(y, _formula(x, [1], *before, 1e-3).astype("float32"))
    dy = rng.standard_normal(x.shape).astype("float32")
    dx = backprop(dy)
    assert_close(dx, (dy * before[0] / numpy.sqrt(before[3] + 1e-3)).astype("float32"))
    for a, b in zip(before, layer.get_weights()):
        numpy.testing.assert_array_equal(a, b)
    assert not layer.grads["gamma"].any() and not layer.grads["beta"].any()
    assert layer.trainable_weights == []


def test_summary_counts_moving_statistics_as_non_trainable():
    model = fastnn.Sequential([fastnn.Input((6, 6, 8)), L.BatchNormalization(),
                               L.BatchNormalization(center=False, axis=1)])
    out = io.StringIO()
    model.summary(print_fn=lambda s: out.write(s))
    text = out.getvalue()
    assert text.count("batch_normalization") == 2
    assert "Total params: 50" in text            # 4 * 8 + 3 * 6
    assert "Trainable params: 22" in text         # 2 * 8 + 1 * 6
    assert "Non-trainable params: 28" in text     # 2 * 8 + 2 * 6


def test_save_and_load_keep_moving_statistics(tmp_path, rng):
    x = (rng.standard_normal((32, 4, 4, 3)) + 2).astype("float32")
    y = rng.standard_normal((32, 3)).astype("float32")
    fastnn.set_seed(1)
    model = fastnn.Sequential([fastnn.Input((4, 4, 3)), L.BatchNormalization(
        momentum=0.7, epsilon=1e-2, gamma_regularizer="l2", axis=[3]), L.Flatten(), L.Dense(3)])
    model.compile("sgd", "mse")
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    path = tmp_path / "bn.fastnn"
    model.save(path)
    loaded = fastnn.load_model(path)
    bn, bn2 = model.layers[0], loaded.layers[0]
    assert bn2.get_config() == bn.get_config()
    assert bn2.momentum == 0.7 and bn2.epsilon == 1e-2 and bn2.axis == [3]
    assert "moving_mean" in bn2._non_trainable and "moving_variance" in bn2._non_trainable
    for a, b in zip(bn.get_weights(), bn2.get_weights()):
        numpy.testing.assert_array_equal(a, b)
    numpy.testing.assert_array_equal(model.predict(x), loaded.predict(x))
    # Training resumes identically (moving statistics included)
    model.fit(x, y, epochs=1, batch_size=8, verbose=0, shuffle=False)
    loaded.fit(x, y, epochs=1, batch_size=8, verbose=0, shuffle=False)
    for a, b in zip(bn.get_weights(), bn2.get_weights()):
        numpy.testing.assert_allclose(a, b, rtol=1e-6)


def test_trains_on_strict_backend_like_reference(rng):
    x = (rng.standard_normal((24, 3, 3, 2)) * 2 + 1).astype("float32")
    y = rng.standard_normal((24, 2)).astype("float32")
    weights = []
    for backend in ("strict", "reference"):
        fastnn.set_seed(5)
        model = fastnn.Sequential([fastnn.Input((3, 3, 2)), L.BatchNormalization(momentum=0.9),
                                   L.BatchNormalization(axis=1), L.Flatten(), L.Dense(2)],
                                  backend=backend)
        model.compile(fastnn.optimizers.Adam(0.01), "mse")
        model.fit(x, y, epochs=2, batch_size=6, shuffle=False, verbose=0)
        model.predict(x)
        weights.append(model.get_weights())
    for a, b in zip(*weights):
        numpy.testing.assert_array_equal(a, b)
    assert not numpy.allclose(weights[0][2], 0)   # moving_mean moved


def test_mask_passes_through(rng):
    inp = fastnn.Input((5,), dtype="int32")
    emb = L.Embedding(10, 4, mask_zero=True)(inp)
    bn = L.BatchNormalization()(emb)
    assert bn.mask is not None
    out = L.GlobalAveragePooling1D()(bn)
    model = fastnn.Model(inp, out)
    ids = numpy.array([[1, 2, 0, 0, 0], [3, 4, 5, 0, 0]])
    assert model.predict(ids).shape == (2, 4)


# ---------------------------------------------------------------- bad input
def test_bad_arguments():
    for bad in ("1", 1.5, [], [1, 1], True):
        with pytest.raises(ValueError, match="axis"):
            L.BatchNormalization(axis=bad)
    with pytest.raises(ValueError, match="momentum"):
        L.BatchNormalization(momentum=1.5)
    with pytest.raises(ValueError, match="epsilon"):
        L.BatchNormalization(epsilon=0)


def test_bad_input_names_layer_and_shapes(rng):
    layer = L.BatchNormalization(name="bn_here")
    layer(numpy.zeros((2, 4, 4, 8), "float32"))
    with pytest.raises(ValueError, match=r"bn_here.*\(None, None, None, 8\).*\(None, 4, 4, 3\)"):
        layer(numpy.zeros((2, 4, 4, 3), "float32"))
    with pytest.raises(ValueError, match=r"bn_here.*\(None, None, None, 8\).*\(None, 8\)"):
        layer(numpy.zeros((2, 8), "float32"))
    with pytest.raises(ValueError, match=r"bn_here.*\(None, None, None, 8\).*\(2, 4, 3\)"):
        layer.forward(numpy.zeros((2, 4, 3), "float32"))
    with pytest.raises(ValueError, match=r"bn_axis.*axis 3 is out of range.*\(None, 4, 5\)"):
        L.BatchNormalization(axis=3, name="bn_axis")(numpy.zeros((2, 4, 5), "float32"))
    with pytest.raises(ValueError, match=r"batch axis"):
        L.BatchNormalization(axis=0)(numpy.zeros((2, 4, 5), "float32"))
    with pytest.raises(ValueError, match=r"twice"):
        L.BatchNormalization(axis=[1, -2])(numpy.zeros((2, 4, 5), "float32"))
    inp = fastnn.Input((4, 4, 3))
    with pytest.raises(ValueError, match=r"bn_sym.*\(None, None, None, 8\).*\(None, 4, 4, 3\)"):
        layer2 = L.BatchNormalization(name="bn_sym")
        layer2(fastnn.Input((4, 4, 8)))
        layer2(inp)


# ------------------------------------------------------------------ PyTorch
def test_matches_pytorch_batchnorm2d_step_by_step(rng):
    """Training steps of BN -> Flatten -> Dense under SGD beside torch's
    BatchNorm2d (NCHW) -> the same Flatten order -> Linear: outputs, input
    gradients and updated weights agree each step; each library's moving
    statistics follow its own definition (torch: unbiased variance,
    momentum weighting the new value)."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    n, h, w, c, units, lr, keras_momentum = 6, 3, 4, 5, 3, 0.1, 0.9
    fastnn.set_seed(2)
    model = fastnn.Sequential([fastnn.Input((h, w, c), dtype="float64"), L.BatchNormalization(
        momentum=keras_momentum, epsilon=1e-5, dtype="float64"), L.Flatten(dtype="float64"),
        L.Dense(units, dtype="float64")])
    model.compile(fastnn.optimizers.SGD(lr), "mse")
    bn, dense = model.layers[0], model.layers[2]
    bn.set_weights([rng.standard_normal(c), rng.standard_normal(c), numpy.zeros(c),
                    numpy.ones(c)])
    t_bn = torch.nn.BatchNorm2d(c, eps=1e-5, momentum=1 - keras_momentum).double()
    t_lin = torch.nn.Linear(h * w * c, units).double()
    with torch.no_grad():
        t_bn.weight.copy_(torch.from_numpy(bn.get_weights()[0]))
        t_bn.bias.copy_(torch.from_numpy(bn.get_weights()[1]))
        t_lin.weight.copy_(torch.from_numpy(dense.get_weights()[0].T.copy()))
        t_lin.bias.copy_(torch.from_numpy(dense.get_weights()[1]))
    opt = torch.optim.SGD(list(t_bn.parameters()) + list(t_lin.parameters()), lr=lr)
    keras_mean, keras_var = numpy.zeros(c), numpy.ones(c)
    torch_mean, torch_var = numpy.zeros(c), numpy.ones(c)
    for step in range(4):
        x = rng.standard_normal((n, h, w, c)) * (step + 1) + step
        y = rng.standard_normal((n, units))
        # torch, NCHW
        xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).requires_grad_(True)
        t_bn.train()
        out = t_bn(xt)
        out.retain_grad()
        pred = t_lin(out.permute(0, 2, 3, 1).reshape(n, -1))
        loss = torch.nn.functional.mse_loss(pred, torch.from_numpy(y))
        opt.zero_grad()
        loss.backward()
        # fastnn's BN alone on torch's output gradient, before the step moves gamma
        bn.zero_grads()
        bn_y, bn_back = bn.forward(x, training=True)
        numpy.testing.assert_allclose(bn_y, out.detach().numpy().transpose(0, 2, 3, 1),
                                      rtol=1e-10, atol=1e-12)
        dy = numpy.ascontiguousarray(out.grad.numpy().transpose(0, 2, 3, 1))
        numpy.testing.assert_allclose(bn_back(dy), xt.grad.numpy().transpose(0, 2, 3, 1),
                                      rtol=1e-8, atol=1e-12)
        numpy.testing.assert_allclose(bn.grads["gamma"], t_bn.weight.grad.numpy(), rtol=1e-9)
        numpy.testing.assert_allclose(bn.grads["beta"], t_bn.bias.grad.numpy(), rtol=1e-9)
        bn.zero_grads()
        bn.params["moving_mean"][...] = keras_mean     # that forward updated them once
        bn.params["moving_variance"][...] = keras_var
        # then the model's own training step (its loss, its SGD)
        model.train_on_batch(x, y)
        opt.step()
        g, b, mm, mv = bn.get_weights()
        numpy.testing.assert_allclose(g, t_bn.weight.detach().numpy(), rtol=1e-10, atol=1e-12)
        numpy.testing.assert_allclose(b, t_bn.bias.detach().numpy(), rtol=1e-10, atol=1e-12)
        numpy.testing.assert_allclose(dense.get_weights()[0], t_lin.weight.detach().numpy().T,
                                      rtol=1e-10, atol=1e-12)
        # each library's moving statistics against its own definition
        rows = x.reshape(-1, c)
        keras_mean = keras_momentum * keras_mean + (1 - keras_momentum) * rows.mean(0)
        keras_var = keras_momentum * keras_var + (1 - keras_momentum) * rows.var(0)
        torch_mean = (1 - t_bn.momentum) * torch_mean + t_bn.momentum * rows.mean(0)
        torch_var = (1 - t_bn.momentum) * torch_var + t_bn.momentum * rows.var(0, ddof=1)
        numpy.testing.assert_allclose(mm, keras_mean, rtol=1e-12)
        numpy.testing.assert_allclose(mv, keras_var, rtol=1e-12)
        numpy.testing.assert_allclose(t_bn.running_mean.numpy(), torch_mean, rtol=1e-12)
        numpy.testing.assert_allclose(t_bn.running_var.numpy(), torch_var, rtol=1e-12)
        # the same mean; the variances differ by torch's Bessel correction
        numpy.testing.assert_allclose(mm, t_bn.running_mean.numpy(), rtol=1e-12)
        assert not numpy.allclose(mv, t_bn.running_var.numpy(), rtol=1e-6)
