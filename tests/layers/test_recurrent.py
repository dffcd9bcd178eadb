"""SimpleRNN, LSTM and GRU: against a step-by-step NumPy reference written here
(states at every step, masks, go_backwards, initial_state), gradient checks
through time, PyTorch equality for mapped weights, the course's worked
example, config/save/load, stateful layers, the strict backend, bad input."""
import numpy
import pytest

import fastnn
from fastnn import layers as L
from fastnn.backend import use_backend
from fastnn.testing import assert_close, run_layer_test

CELLS = ["SimpleRNN", "LSTM", "GRU"]
N_STATES = {"SimpleRNN": 1, "LSTM": 2, "GRU": 1}


def _sig(v):
    return 1 / (1 + numpy.exp(-v))


def reference(kind, x, W, R, b, states, mask=None, go_backwards=False, reset_after=True):
    """Keras's recurrence written out step by step in NumPy (batch-major):
    returns (outputs (N, T, U) in the order the steps were read, final states)."""
    n, steps, _ = x.shape
    U = R.shape[0]
    h = states[0].copy()
    c = states[1].copy() if kind == "LSTM" else None
    y = numpy.zeros_like(h)
    order = range(steps - 1, -1, -1) if go_backwards else range(steps)
    outs = []
    if b is None:
        b = numpy.zeros((2, 3 * U) if kind == "GRU" and reset_after else R.shape[1], x.dtype)
    for t in order:
        xt = x[:, t]
        if kind == "SimpleRNN":
            h_new = numpy.tanh(xt @ W + b + h @ R)
        elif kind == "LSTM":
            a = xt @ W + b + h @ R
            i, f = _sig(a[:, :U]), _sig(a[:, U:2 * U])
            g, o = numpy.tanh(a[:, 2 * U:3 * U]), _sig(a[:, 3 * U:])
            c_new = f * c + i * g
            h_new = o * numpy.tanh(c_new)
        elif reset_after:
            mx = xt @ W + b[0]
            mi = h @ R + b[1]
            z = _sig(mx[:, :U] + mi[:, :U])
            r = _sig(mx[:, U:2 * U] + mi[:, U:2 * U])
            hh = numpy.tanh(mx[:, 2 * U:] + r * mi[:, 2 * U:])
            h_new = z * h + (1 - z) * hh
        else:
            mx = xt @ W + b
            z = _sig(mx[:, :U] + h @ R[:, :U])
            r = _sig(mx[:, U:2 * U] + h @ R[:, U:2 * U])
            hh = numpy.tanh(mx[:, 2 * U:] + (r * h) @ R[:, 2 * U:])
            h_new = z * h + (1 - z) * hh
        m = numpy.ones((n, 1), bool) if mask is None else mask[:, t, None]
        h = numpy.where(m, h_new, h)
        y = numpy.where(m, h_new, y)
        if kind == "LSTM":
            c = numpy.where(m, c_new, c)
        outs.append(y)
    final = [h, c] if kind == "LSTM" else [h]
    return numpy.stack(outs, axis=1), final


def _make(kind, units, dtype="float64", **kwargs):
    return getattr(L, kind)(units, dtype=dtype, **kwargs)


def _lengths_mask(rng, n, steps, allow_empty=False):
    lengths = rng.integers(0 if allow_empty else 1, steps + 1, n)
    return numpy.arange(steps)[None, :] < lengths[:, None]


def _random_weights(layer, rng):
    layer.set_weights([rng.standard_normal(w.shape) * 0.5 for w in layer.get_weights()])


@pytest.mark.parametrize("backend", ["numpy", "reference"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind,reset_after", [("SimpleRNN", True), ("LSTM", True),
                                              ("GRU", True), ("GRU", False)])
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("shape", [(1, 1, 1), (5, 7, 3), (4, 2, 6)])
def test_cell_matches_the_step_by_step_reference(kind, reset_after, go_backwards, dtype, shape,
                                                  backend, rng):
    n, steps, features = shape
    units = 4 if shape[0] > 1 else 1
    kw = {"reset_after": reset_after} if kind == "GRU" else {}
    with use_backend(backend):
        layer = _make(kind, units, dtype, return_sequences=True, return_state=True,
                      go_backwards=go_backwards, **kw)
        x = rng.standard_normal(shape).astype(dtype)
        layer(x)
        _random_weights(layer, rng)
        mask = _lengths_mask(rng, n, steps, allow_empty=True)
        mask[0, 0] = True  # some sample starts unmasked; others may be padded throughout
        states = [rng.standard_normal((n, units)).astype(dtype)
                  for _ in range(N_STATES[kind])]
        for m in (None, mask):
            outs = layer(x, mask=m, initial_state=states)
            ws = layer.get_weights()
            W, R = ws[0], ws[1]
            b = ws[2] if len(ws) > 2 else None
            seq, final = reference(kind, x.astype("float64"), W, R, b,
                                   [s.astype("float64") for s in states], m, go_backwards,
                                   reset_after)
            tol = 2e-4 if dtype == "float32" else 1e-10
            assert_close(outs[0], seq.astype(dtype), tol=tol)
            for got, want in zip(outs[1:], final):
                assert_close(got, want.astype(dtype), tol=tol)


@pytest.mark.parametrize("kind", CELLS)
def test_masked_steps_keep_the_state_and_repeat_the_output(kind, rng):
    layer = _make(kind, 3, return_sequences=True, return_state=True)
    x = rng.standard_normal((2, 5, 2))
    mask = numpy.array([[1, 1, 0, 0, 1], [0, 1, 1, 1, 1]], bool)
    outs = layer(x, mask=mask)
    seq = outs[0]
    numpy.testing.assert_array_equal(seq[0, 2], seq[0, 1])
    numpy.testing.assert_array_equal(seq[0, 3], seq[0, 1])
    numpy.testing.assert_array_equal(seq[1, 0], numpy.zeros(3))  # before any step: zeros
    numpy.testing.assert_array_equal(outs[1], seq[:, -1])
    # A padded step's input does not matter.
    x2 = x.copy()
    x2[~mask] = 99.0
    for a, b in zip(layer(x2, mask=mask), outs):
        numpy.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("backend", ["numpy", "reference"])
@pytest.mark.parametrize("kind,extra", [("SimpleRNN", {}), ("LSTM", {}), ("GRU", {}),
                                        ("GRU", {"reset_after": False}),
                                        ("LSTM", {"go_backwards": True}),
                                        ("SimpleRNN", {"activation": "relu"}),
                                        ("GRU", {"activation": "softsign",
                                                 "recurrent_activation": "hard_sigmoid"})])
def test_gradients_through_time_with_masks_and_initial_state(kind, extra, backend, rng):
    n, steps, units = 4, 5, 3
    mask = _lengths_mask(rng, n, steps)
    states = [rng.standard_normal((n, units)) for _ in range(N_STATES[kind])]
    shapes = [(n, steps, units)] + [(n, units)] * N_STATES[kind]
    with use_backend(backend):
        run_layer_test(lambda dt: _make(kind, units, dt, return_sequences=True,
                                        return_state=True, **extra),
                       (n, steps, 2), shapes, rng,
                       call_kwargs={"mask": mask, "initial_state": states})
        run_layer_test(lambda dt: _make(kind, units, dt, **extra), (n, steps, 2), (n, units),
                       rng)


@pytest.mark.parametrize("kind", CELLS)
def test_gradcheck_of_last_output_only_and_without_bias(kind, rng):
    run_layer_test(lambda dt: _make(kind, 2, dt, use_bias=False, go_backwards=True),
                   (3, 4, 5), (3, 2), rng, n_weights=2,
                   call_kwargs={"mask": _lengths_mask(rng, 3, 4)})


@pytest.mark.parametrize("kind", CELLS)
def test_dropout_one_mask_per_sequence_training_only(kind, rng):
    # Without recurrent dropout Keras draws one input mask for all gates.
    layer = _make(kind, 4, return_sequences=True, dropout=0.5)
    x = rng.standard_normal((3, 6, 5))
    # Inference: no dropout at all.
    ref = _make(kind, 4, return_sequences=True)
    ref(x)
    layer(x)
    ref.set_weights(layer.get_weights())
    numpy.testing.assert_array_equal(layer(x), ref(x))
    # Training: a feature dropped at one step is dropped at every step.
    y1, back = layer.forward(x, training=True)
    dx = back(numpy.ones_like(y1))
    zero_cols = (dx == 0).all(axis=1)       # (batch, features) dropped for the whole sequence
    assert zero_cols.any() and not zero_cols.all()
    assert ((dx == 0).any(axis=1) == zero_cols).all()
    # And the gradient with dropout (same draws) is right.
    run_layer_test(lambda dt: _make(kind, 3, dt, return_sequences=True, dropout=0.4,
                                    recurrent_dropout=0.4), (3, 4, 2), (3, 4, 3), rng)


def keras_dropout_reference(kind, x, W, R, b, dps, rdp, reset_after=True):
    """Keras 3's cells with dropout as they run it when recurrent_dropout > 0
    (implementation 1, keras/src/layers/rnn/{simple_rnn,lstm,gru}.py): gate
    g's input product reads x_t * dps[g] and its recurrent product
    h_{t-1} * rdp[:, g*U:(g+1)*U]; the GRU resets the dropped-out state
    before its candidate product (reset_after=False) or scales the product
    (True); its final mix z * h_{t-1} + (1 - z) * h~ takes the state itself.
    Returns the outputs (N, T, U)."""
    n, steps, _ = x.shape
    U = R.shape[0]
    G = R.shape[1] // U
    blk = [slice(g * U, (g + 1) * U) for g in range(G)]
    b_in = b[0] if kind == "GRU" and reset_after else b
    b_rec = b[1] if kind == "GRU" and reset_after else numpy.zeros(G * U)
    h = numpy.zeros((n, U))
    c = numpy.zeros((n, U))
    outs = []
    for t in range(steps):
        xs = [(x[:, t] * dps[g]) @ W[:, blk[g]] + b_in[blk[g]] for g in range(G)]
        hs = [h * rdp[:, blk[g]] for g in range(G)]
        if kind == "SimpleRNN":
            h = numpy.tanh(xs[0] + hs[0] @ R)
        elif kind == "LSTM":
            i, f = (_sig(xs[g] + hs[g] @ R[:, blk[g]]) for g in (0, 1))
            cc = numpy.tanh(xs[2] + hs[2] @ R[:, blk[2]])
            o = _sig(xs[3] + hs[3] @ R[:, blk[3]])
            c = f * c + i * cc
            h = o * numpy.tanh(c)
        else:
            z, r = (_sig(xs[g] + hs[g] @ R[:, blk[g]] + b_rec[blk[g]]) for g in (0, 1))
            if reset_after:
                hh = numpy.tanh(xs[2] + r * (hs[2] @ R[:, blk[2]] + b_rec[blk[2]]))
            else:
                hh = numpy.tanh(xs[2] + (r * hs[2]) @ R[:, blk[2]])
            h = z * h + (1 - z) * hh
        outs.append(h)
    return numpy.stack(outs, axis=1)


@pytest.mark.parametrize("kind,reset_after", [("SimpleRNN", True), ("LSTM", True),
                                              ("GRU", True), ("GRU", False)])
@pytest.mark.parametrize("backend", ["numpy", "reference"])
def test_dropout_masks_multiply_where_keras_applies_them(kind, reset_after, backend, rng,
                                                         monkeypatch):
    n, steps, F, U = 3, 5, 4, 3
    G = {"SimpleRNN": 1, "LSTM": 4, "GRU": 3}[kind]
    kw = {"reset_after": reset_after} if kind == "GRU" else {}
    layer = _make(kind, U, return_sequences=True, dropout=0.4, recurrent_dropout=0.3, **kw)
    x = rng.standard_normal((n, steps, F))
    layer(x)
    _random_weights(layer, rng)
    if backend == "reference":
        layer.to(fastnn.backend.Ops())
    # Fixed masks, as the layer draws them: G input masks (one per gate), then
    # the recurrent masks of all gates side by side.
    dps = [(rng.random((n, F)) < 0.6) / 0.6 for _ in range(G)]
    rdp = (rng.random((n, G * U)) < 0.7) / 0.7
    draws = dps + [rdp]
    calls = []

    def fixed(shape, rate):
        m = draws[len(calls) % len(draws)]
        calls.append(shape)
        assert m.shape == shape
        return m
    monkeypatch.setattr(layer, "_dropout_mask", fixed)
    W, R, b = layer.get_weights()
    want = keras_dropout_reference(kind, x, W, R, b, dps, rdp, reset_after)
    y, _ = layer.forward(x, training=True)
    assert_close(y, want, tol=1e-10)
    # Keras's masks, not one shared mask: the same layer with every gate's
    # masks equal to the first gate's differs.
    if G > 1:
        shared = keras_dropout_reference(kind, x, W, R, b, [dps[0]] * G,
                                         numpy.tile(rdp[:, :U], (1, G)), reset_after)
        assert not numpy.allclose(shared, want)
    # The gradients through the fixed masks.
    fastnn.gradcheck(layer, x)


def test_lstm_unit_forget_bias_and_gru_bias_layouts():
    lstm = L.LSTM(3)
    lstm.build((5, 2))
    numpy.testing.assert_array_equal(lstm.params["bias"], [0, 0, 0, 1, 1, 1] + [0] * 6)
    assert lstm.params["kernel"].shape == (2, 12)
    assert lstm.params["recurrent_kernel"].shape == (3, 12)
    assert L.LSTM(3, unit_forget_bias=False)._ensure_built((5, 2)) is None
    gru = L.GRU(3)
    gru.build((5, 2))
    assert gru.params["bias"].shape == (2, 9)
    gru2 = L.GRU(3, reset_after=False)
    gru2.build((5, 2))
    assert gru2.params["bias"].shape == (9,)
    rnn = L.SimpleRNN(4)
    rnn.build((5, 2))
    R = rnn.params["recurrent_kernel"]
    numpy.testing.assert_allclose(R @ R.T, numpy.eye(4), atol=1e-5)  # orthogonal by default
    assert [w for w in rnn.params] == ["kernel", "recurrent_kernel", "bias"]


# --------------------------------------------------------------- the course
U_COURSE = numpy.array([[.6, .8, .4, .8], [.2, .2, .8, .7], [.9, .8, .1, .2]])
W_COURSE = numpy.array([[.1, .5, .1], [.5, .9, .3], [.3, .2, .1]])
V_COURSE = numpy.array([[.9, .8, .3], [.2, .3, .4], [.6, .9, .1], [.5, 0, .3]])


def test_the_course_worked_example():
    rnn = L.SimpleRNN(3, return_sequences=True, dtype="float64")
    dense = L.Dense(4, activation="softmax", dtype="float64")
    model = fastnn.Sequential([fastnn.Input((2, 4), dtype="float64"), rnn, dense])
    model.set_weights([U_COURSE.T, W_COURSE.T, numpy.zeros(3), V_COURSE.T, numpy.zeros(4)])
    x1 = numpy.array([[[1.0, 0, 0, 0]]])
    h1 = rnn(x1)[0, 0]
    numpy.testing.assert_allclose(h1, [0.54, 0.20, 0.72], atol=0.005)
    y1 = dense(rnn(x1))[0, 0]
    numpy.testing.assert_allclose(y1, [0.32, 0.21, 0.24, 0.22], atol=0.005)
    # A second input exercises W: s2 = tanh(U x2 + W s1), y2 = softmax(V s2).
    x = numpy.array([[[1.0, 0, 0, 0], [0, 1.0, 0, 1.0]]])
    s1 = numpy.tanh(U_COURSE @ x[0, 0])
    s2 = numpy.tanh(U_COURSE @ x[0, 1] + W_COURSE @ s1)
    o2 = V_COURSE @ s2
    y2 = numpy.exp(o2) / numpy.exp(o2).sum()
    out = model.predict(x, verbose=0)[0]
    numpy.testing.assert_allclose(out[0], y1, rtol=1e-12)
    numpy.testing.assert_allclose(out[1], y2, rtol=1e-12)


# ----------------------------------------------------------------- PyTorch
def _torch():
    return pytest.importorskip("torch", reason="PyTorch is not installed")


def _to_torch_gates(kind, a):
    """Keras's gate blocks (last axis) in PyTorch's order, transposed to (k*units, ...)."""
    U = a.shape[-1] // {"SimpleRNN": 1, "LSTM": 4, "GRU": 3}[kind]
    blocks = [a[..., k * U:(k + 1) * U] for k in range(a.shape[-1] // U)]
    if kind == "LSTM":      # i f c o -> i f g o
        order = [0, 1, 2, 3]
    elif kind == "GRU":     # z r h -> r z n
        order = [1, 0, 2]
    else:
        order = [0]
    return numpy.concatenate([blocks[k] for k in order], axis=-1)


@pytest.mark.parametrize("backend", ["numpy", "reference"])
@pytest.mark.parametrize("kind", CELLS)
def test_equals_pytorch_forward_and_backward(kind, backend, rng):
    torch = _torch()
    n, steps, features, units = 6, 7, 5, 8
    with use_backend(backend):
        layer = _make(kind, units, "float32", return_sequences=True, return_state=True)
        x = rng.standard_normal((n, steps, features)).astype("float32")
        layer(x)
        _random_weights(layer, rng)
        ws = layer.get_weights()
        mod = {"SimpleRNN": torch.nn.RNN, "LSTM": torch.nn.LSTM, "GRU": torch.nn.GRU}[kind](
            features, units, batch_first=True)
        with torch.no_grad():
            mod.weight_ih_l0.copy_(torch.from_numpy(_to_torch_gates(kind, ws[0]).T.copy()))
            mod.weight_hh_l0.copy_(torch.from_numpy(_to_torch_gates(kind, ws[1]).T.copy()))
            if kind == "GRU":
                mod.bias_ih_l0.copy_(torch.from_numpy(_to_torch_gates(kind, ws[2][0]).copy()))
                mod.bias_hh_l0.copy_(torch.from_numpy(_to_torch_gates(kind, ws[2][1]).copy()))
            else:
                mod.bias_ih_l0.copy_(torch.from_numpy(_to_torch_gates(kind, ws[2]).copy()))
                mod.bias_hh_l0.zero_()
        outs, back = layer.forward(x, training=True)
        dy = rng.standard_normal((n, steps, units)).astype("float32")
        dh = rng.standard_normal((n, units)).astype("float32")
        dx = back([dy, dh] + ([None] if kind == "LSTM" else []))
        xt = torch.from_numpy(x).requires_grad_(True)
        seq, st = mod(xt)
        h_t = st[0][0] if kind == "LSTM" else st[0]
        (seq * torch.from_numpy(dy)).sum().add_((h_t * torch.from_numpy(dh)).sum()).backward()
        assert_close(outs[0], seq.detach().numpy(), tol=1e-4)
        assert_close(outs[1], h_t.detach().numpy(), tol=1e-4)
        if kind == "LSTM":
            assert_close(outs[2], st[1][0].detach().numpy(), tol=1e-4)
        assert_close(dx, xt.grad.numpy(), tol=1e-4)
        assert_close(_to_torch_gates(kind, layer.grads["kernel"]).T,
                     mod.weight_ih_l0.grad.numpy(), tol=1e-4)
        assert_close(_to_torch_gates(kind, layer.grads["recurrent_kernel"]).T,
                     mod.weight_hh_l0.grad.numpy(), tol=1e-4)
        db = layer.grads["bias"]
        assert_close(_to_torch_gates(kind, db[0] if kind == "GRU" else db),
                     mod.bias_ih_l0.grad.numpy(), tol=1e-4)
        if kind == "GRU":
            assert_close(_to_torch_gates(kind, db[1]), mod.bias_hh_l0.grad.numpy(), tol=1e-4)


# ----------------------------------------------------- models, saving, state
@pytest.mark.parametrize("kind", CELLS)
def test_config_round_trip_save_load_and_summary(kind, rng, tmp_path, capsys):
    kw = {"reset_after": False} if kind == "GRU" else {}
    layer = _make(kind, 5, "float32", return_sequences=True, go_backwards=True,
                  kernel_regularizer="l2", recurrent_regularizer="l1", dropout=0.1,
                  recurrent_dropout=0.2, activation="relu", unroll=True, **kw)
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    inp = fastnn.Input((6, 3))
    out = L.Dense(2)(layer(L.Masking()(inp)))
    model = fastnn.Model(inp, out)
    model.compile("adam", "mse")
    x = rng.standard_normal((8, 6, 3)).astype("float32")
    x[:3, 4:] = 0.0
    model.fit(x, rng.standard_normal((8, 6, 2)), epochs=1, batch_size=4, verbose=0)
    assert set(layer.regularizers) == {"kernel", "recurrent_kernel"}
    model.save(tmp_path / "rnn.fastnn")
    loaded = fastnn.load_model(tmp_path / "rnn.fastnn")
    numpy.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    model.summary()
    text = capsys.readouterr().out
    assert kind in text and layer.name in text
    params = 3 * {"SimpleRNN": 1, "LSTM": 4, "GRU": 3}[kind] * 5 * (1 + 3 + 5) // 3
    assert str(layer.count_params()) in text


@pytest.mark.parametrize("kind", CELLS)
def test_stateful_layer_carries_the_state_across_batches(kind, rng):
    layer = _make(kind, 3, stateful=True, return_sequences=True)
    whole = _make(kind, 3, return_sequences=True)
    x = rng.standard_normal((2, 8, 4))
    layer(x[:, :4])
    whole(x)
    layer.reset_states()
    whole.set_weights(layer.get_weights())
    first = layer(x[:, :4])
    second = layer(x[:, 4:])
    numpy.testing.assert_allclose(numpy.concatenate([first, second], axis=1), whole(x),
                                  rtol=1e-12)
    assert len(layer.states) == N_STATES[kind]
    with pytest.raises(ValueError, match=r"stateful .* batches of 2 sequences, got a batch of 3"):
        layer(rng.standard_normal((3, 4, 4)))
    layer.reset_states()
    numpy.testing.assert_allclose(layer(x[:, :4]), first, rtol=1e-12)
    layer.reset_states([numpy.zeros((2, 3))] * N_STATES[kind])
    numpy.testing.assert_allclose(layer(x[:, :4]), first, rtol=1e-12)
    with pytest.raises(ValueError, match="not stateful"):
        whole.reset_states()


@pytest.mark.parametrize("kind", CELLS)
def test_trains_on_the_strict_backend_like_the_reference(kind):
    rng = numpy.random.default_rng(3)
    x = rng.standard_normal((16, 6, 3)).astype("float32")
    x[:4, 3:] = 0.0
    y = rng.standard_normal((16, 2)).astype("float32")
    results = []
    for backend in ("reference", "strict"):
        fastnn.set_seed(5)
        model = fastnn.Sequential([fastnn.Input((6, 3)), L.Masking(),
                                   _make(kind, 4, "float32", return_sequences=True,
                                         dropout=0.2, recurrent_dropout=0.2),
                                   _make(kind, 4, "float32", go_backwards=True),
                                   L.Dense(2)], backend=backend)
        model.compile(fastnn.optimizers.Adam(0.01, clipnorm=1.0), "mse")
        hist = model.fit(x, y, epochs=3, batch_size=8, verbose=0, shuffle=False)
        results.append((hist.history["loss"], model.predict(x, verbose=0)))
    assert results[0][0] == results[1][0]
    numpy.testing.assert_array_equal(results[0][1], results[1][1])
    assert results[0][0][-1] < results[0][0][0]


def test_clipnorm_bounds_an_exploding_rnn_gradient(rng):
    x = rng.standard_normal((4, 30, 2)).astype("float32") * 10
    y = rng.standard_normal((4, 1)).astype("float32") * 100
    for clip in (None, 0.5):
        fastnn.set_seed(1)
        model = fastnn.Sequential([fastnn.Input((30, 2)),
                                   L.SimpleRNN(8, activation="linear",
                                               recurrent_initializer=fastnn.initializers.Orthogonal(1.5)),
                                   L.Dense(1)])
        model.compile(fastnn.optimizers.SGD(0.1, clipnorm=clip), "mse")
        before = [w.copy() for w in model.get_weights()]
        model.train_on_batch(x, y)
        step = max(numpy.linalg.norm(a - b) for a, b in zip(model.get_weights(), before))
        if clip is None:
            assert step > 1.0
        else:
            assert step <= 0.1 * 0.5 * (1 + 1e-5)


# --------------------------------------------------------------- bad input
@pytest.mark.parametrize("kind", CELLS)
def test_bad_input_is_a_clear_value_error(kind, rng):
    layer = _make(kind, 3, name="rec")
    layer(rng.standard_normal((2, 4, 5)))
    with pytest.raises(ValueError, match=r"'rec' expects input of shape \(batch, steps, 5\), "
                                         r"got \((None|2), 5\)"):
        layer(rng.standard_normal((2, 5)))
    with pytest.raises(ValueError, match=r"'rec' expects input of shape \(batch, steps, 5\), "
                                         r"got \((None|2), 4, 6\)"):
        layer(rng.standard_normal((2, 4, 6)))
    with pytest.raises(ValueError, match=r"'rec': mask must have shape \(2, 4\) .* got \(2, 3\)"):
        layer(rng.standard_normal((2, 4, 5)), mask=numpy.ones((2, 3), bool))
    k = N_STATES[kind]
    with pytest.raises(ValueError, match=rf"'rec': initial_state must hold {k} state.* got "
                                         rf"{k + 1}"):
        layer(rng.standard_normal((2, 4, 5)),
              initial_state=[numpy.zeros((2, 3))] * (k + 1))
    with pytest.raises(ValueError, match=r"'rec': initial_state state 'h' must have shape "
                                         r"\(2, 3\), got \(2, 4\)"):
        layer(rng.standard_normal((2, 4, 5)), initial_state=[numpy.zeros((2, 4))] * k)
    with pytest.raises(ValueError, match="at least one time step"):
        layer(numpy.zeros((2, 0, 5)))
    with pytest.raises(ValueError, match=r"expects input of shape \(batch, steps, features\)"):
        _make(kind, 3)(fastnn.Input((5,)))
    with pytest.raises(ValueError, match="units must be a positive integer"):
        _make(kind, 0)
    with pytest.raises(ValueError, match="dropout must be in"):
        _make(kind, 2, dropout=1.0)
    with pytest.raises(ValueError, match="activation 'gelu' is not supported"):
        _make(kind, 2, activation="gelu")


@pytest.mark.parametrize("kind,as_list", [("SimpleRNN", True), ("SimpleRNN", False),
                                           ("GRU", True), ("GRU", False), ("LSTM", True)])
def test_a_model_with_a_computed_initial_state_gradchecks(kind, as_list, rng):
    # The initial state from another node, given as a list or (one state) a
    # tensor; masked input from Masking; a state output with its own loss.
    n, steps = 5, 4
    x = rng.standard_normal((n, steps, 3))
    x[0, 2:] = 0.0
    inp = fastnn.Input((steps, 3), dtype="float64")
    ctx = fastnn.Input((2,), dtype="float64")
    states = [L.Dense(3, dtype="float64", name=f"s{k}")(ctx) for k in range(N_STATES[kind])]
    outs = _make(kind, 3, return_sequences=True, return_state=True, name="rec")(
        L.Masking(dtype="float64")(inp), initial_state=states if as_list else states[0])
    final = L.Dense(1, dtype="float64")(outs[1])
    model = fastnn.Model([inp, ctx], [outs[0], final])
    model.compile("sgd", ["mse", "mse"])
    xs = [x, rng.standard_normal((n, 2))]
    ys = [rng.standard_normal((n, steps, 3)), rng.standard_normal((n, 1))]
    assert fastnn.gradcheck(model, xs, ys).ok
    assert model.get_layer("s0").grads["kernel"].any()


@pytest.mark.parametrize("kind", CELLS)
def test_first_layer_skips_the_input_gradient(kind, rng):
    layer = _make(kind, 3, return_sequences=True)
    x = rng.standard_normal((2, 4, 5)).astype("float64")
    layer(x)
    y, back = layer.forward(x, training=True)
    assert back(numpy.ones_like(y), need_dx=False) is None
    assert layer.grads["kernel"].any()
