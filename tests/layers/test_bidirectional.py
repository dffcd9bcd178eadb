"""Bidirectional: Keras's merge modes, the backward copy reading in reverse and
its sequence output turned back in time, states and initial states split
between the two directions, masks to both, weight names, config and save/load.
Checked on a small linear recurrence (tests/_recurrence.py, computing through
``self.ops.xp``, so it runs on the strict backend too), against the two
directions run by hand, and gradient-checked in float64."""
import numpy
import pytest

import fastnn
from fastnn import layers as L
from fastnn.testing import assert_close, run_layer_test

from _recurrence import LinearRecurrence  # shared with tests/test_graph.py


def _lengths_mask(rng, n, steps):
    lengths = rng.integers(1, steps + 1, n)
    lengths[0] = steps
    return numpy.arange(steps)[None, :] < lengths[:, None]


@pytest.mark.parametrize("merge_mode,width", [("concat", 6), ("sum", 3), ("mul", 3),
                                              ("ave", 3)])
@pytest.mark.parametrize("sequences", [False, True])
def test_merge_modes_gradcheck_with_a_mask(merge_mode, width, sequences, rng):
    n, steps = 4, 5
    shape = (n, steps, width) if sequences else (n, width)
    layer = run_layer_test(
        lambda dt: L.Bidirectional(LinearRecurrence(3, return_sequences=sequences, dtype=dt),
                                   merge_mode=merge_mode),
        (n, steps, 2), shape, rng, n_weights=2,
        call_kwargs={"mask": _lengths_mask(rng, n, steps)})
    assert [w.shape for w in layer.weights] == [(2, 3), (2, 3)]


def test_merge_none_states_and_initial_state_gradcheck(rng):
    n, steps, u = 3, 4, 2
    init = [rng.standard_normal((n, u)) for _ in range(4)]
    run_layer_test(
        lambda dt: L.Bidirectional(LinearRecurrence(u, return_sequences=True, return_state=True,
                                                    dtype=dt), merge_mode=None),
        (n, steps, 3), [(n, steps, u), (n, steps, u)] + [(n, u)] * 4, rng,
        call_kwargs={"mask": _lengths_mask(rng, n, steps), "initial_state": init})


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
def test_equals_the_two_directions_run_by_hand(merge_mode, rng):
    n, steps, u = 3, 6, 4
    x = rng.standard_normal((n, steps, 2))
    mask = _lengths_mask(rng, n, steps)
    init = [rng.standard_normal((n, u)) for _ in range(4)]
    bi = L.Bidirectional(LinearRecurrence(u, return_sequences=True, return_state=True,
                                          dtype="float64"), merge_mode=merge_mode)
    outs = bi(x, mask=mask, initial_state=init)
    fwd = LinearRecurrence(u, return_sequences=True, return_state=True, dtype="float64")
    bwd = LinearRecurrence(u, return_sequences=True, return_state=True, go_backwards=True,
                           dtype="float64")
    fwd._ensure_built(x.shape[1:])
    bwd._ensure_built(x.shape[1:])
    fwd.set_weights(bi.forward_layer.get_weights())
    bwd.set_weights(bi.backward_layer.get_weights())
    yf, hf, sf = fwd(x, mask=mask, initial_state=init[:2])
    yb, hb, sb = bwd(x, mask=mask, initial_state=init[2:])
    yb = yb[:, ::-1]   # back in input order
    merged = {"concat": [numpy.concatenate([yf, yb], -1)], "sum": [yf + yb], "mul": [yf * yb],
              "ave": [(yf + yb) / 2], None: [yf, yb]}[merge_mode]
    expected = merged + [hf, sf, hb, sb]
    assert len(outs) == len(expected)
    for got, want in zip(outs, expected):
        assert_close(got, want)


def test_backward_copy_reads_the_sequence_reversed(rng):
    x = rng.standard_normal((2, 5, 3))
    bi = L.Bidirectional(LinearRecurrence(4, dtype="float64"), merge_mode=None)
    yf, yb = bi(x)
    assert bi.backward_layer.go_backwards and not bi.forward_layer.go_backwards
    # The backward copy on x equals the forward copy's weights on x reversed.
    twin = LinearRecurrence(4, dtype="float64")
    twin._ensure_built((5, 3))
    twin.set_weights(bi.backward_layer.get_weights())
    assert_close(yb, twin(x[:, ::-1].copy()))
    assert not numpy.allclose(yb, twin(x))


def test_padded_steps_do_not_change_the_output(rng):
    # Sample 1 holds 3 real steps then padding; its result equals the same
    # 3 steps alone (the backward direction starts at the last real step).
    x = rng.standard_normal((2, 6, 2))
    mask = numpy.array([[1] * 6, [1, 1, 1, 0, 0, 0]], bool)
    bi = L.Bidirectional(LinearRecurrence(3, dtype="float64"))
    padded = bi(numpy.where(mask[..., None], x, 99.0), mask=mask)
    alone = bi(x[1:, :3])
    assert_close(padded[1], alone[0])


def test_weights_names_config_and_save_load(rng, tmp_path):
    inp = fastnn.Input((7, 2))
    rnn = LinearRecurrence(3, return_sequences=True, name="lin")
    seq = L.Bidirectional(rnn, name="bi")(inp)
    out = L.TimeDistributed(L.Dense(1))(seq)
    model = fastnn.Model(inp, out)
    bi = model.get_layer("bi")
    assert bi.forward_layer.name == "forward_lin" and bi.backward_layer.name == "backward_lin"
    assert [layer.name for layer in bi._flatten_layers(include_self=False)] == \
        ["forward_lin", "backward_lin"]
    assert bi.count_params() == 12
    model.compile("adam", "mse")
    x, y = rng.standard_normal((16, 7, 2)), rng.standard_normal((16, 7, 1))
    before = model.evaluate(x, y)
    model.fit(x, y, epochs=3, verbose=0)
    assert model.evaluate(x, y) < before
    config = bi.get_config()
    assert config["merge_mode"] == "concat" and config["layer"]["config"]["name"] == "lin"
    assert "backward_layer" not in config
    model.save(tmp_path / "bi.fastnn")
    loaded = fastnn.load_model(tmp_path / "bi.fastnn")
    numpy.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.get_layer("bi").backward_layer.name == "backward_lin"


def test_a_given_backward_layer_round_trips(rng):
    fwd = LinearRecurrence(3, name="f")
    bwd = LinearRecurrence(3, go_backwards=True, name="b")
    bi = L.Bidirectional(fwd, backward_layer=bwd, merge_mode="sum")
    assert bi.backward_layer is bwd
    x = rng.standard_normal((2, 4, 5)).astype("float32")
    y = bi(x)
    config = bi.get_config()
    clone = L.Bidirectional.from_config(config)
    assert clone.get_config() == config and clone.backward_layer.name == "b"
    clone._ensure_built((4, 5))
    clone.set_weights(bi.get_weights())
    numpy.testing.assert_array_equal(clone(x), y)


def test_summary_lists_the_wrapper(capsys):
    inp = fastnn.Input((5, 2))
    model = fastnn.Model(inp, L.Bidirectional(LinearRecurrence(3), name="bi")(inp))
    model.summary()
    out = capsys.readouterr().out
    assert "bi (Bidirectional)" in out and "(None, 6)" in out and "12" in out


def test_trains_on_the_strict_backend(rng):
    x = rng.standard_normal((12, 5, 2)).astype("float32")
    y = rng.standard_normal((12, 1)).astype("float32")
    inp = fastnn.Input((5, 2))
    out = L.Dense(1)(L.Bidirectional(LinearRecurrence(3))(inp, mask=None))
    model = fastnn.Model(inp, out, backend="strict")
    model.compile("sgd", "mse")
    history = model.fit(x, y, epochs=3, batch_size=4, verbose=0)
    assert numpy.isfinite(history.history["loss"]).all()


def test_bad_arguments_and_inputs_are_named(rng):
    with pytest.raises(ValueError, match="merge_mode must be one of"):
        L.Bidirectional(LinearRecurrence(3), merge_mode="max")
    with pytest.raises(ValueError, match="wraps a recurrent layer"):
        L.Bidirectional(L.Dense(3))
    with pytest.raises(ValueError, match="must read in the other direction"):
        L.Bidirectional(LinearRecurrence(3), backward_layer=LinearRecurrence(3))
    with pytest.raises(ValueError, match="same return_sequences and return_state"):
        L.Bidirectional(LinearRecurrence(3),
                        backward_layer=LinearRecurrence(3, go_backwards=True,
                                                        return_sequences=True))
    bi = L.Bidirectional(LinearRecurrence(3, return_state=True), name="bi2")
    with pytest.raises(ValueError, match=r"'bi2' needs inputs of shape \(batch, steps, "
                                         r"features\), got \(None, 2\)"):
        bi(numpy.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"'bi2'.*even count; got 3"):
        bi(numpy.zeros((4, 5, 2)), initial_state=[numpy.zeros((4, 3))] * 3)
    with pytest.raises(ValueError, match=r"'bi2' needs inputs of shape"):
        bi(fastnn.Input((5,)))


# ------------------------------------------------------- on the real layers
CELLS = {"simplernn": (L.SimpleRNN, 1), "lstm": (L.LSTM, 2), "gru": (L.GRU, 1)}


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("merge_mode", ["concat", "ave", "mul", None])
def test_real_layers_gradcheck_through_time(cell, merge_mode, rng):
    cls, n_states = CELLS[cell]
    n, steps, u = 3, 4, 2
    outs = [(n, steps, 2 * u)] if merge_mode == "concat" else \
        [(n, steps, u)] * (2 if merge_mode is None else 1)
    init = [rng.standard_normal((n, u)) for _ in range(2 * n_states)]
    run_layer_test(
        lambda dt: L.Bidirectional(cls(u, return_sequences=True, return_state=True, dtype=dt),
                                   merge_mode=merge_mode),
        (n, steps, 3), outs + [(n, u)] * (2 * n_states), rng,
        call_kwargs={"mask": _lengths_mask(rng, n, steps), "initial_state": init})


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_real_layers_equal_two_layers_run_by_hand(cell, rng):
    cls, n_states = CELLS[cell]
    n, steps, u = 4, 7, 5
    x = rng.standard_normal((n, steps, 3)).astype("float32")
    mask = _lengths_mask(rng, n, steps)
    bi = L.Bidirectional(cls(u, return_sequences=True, return_state=True), merge_mode="concat")
    seq, *states = bi(x, mask=mask)
    fwd = cls(u, return_sequences=True, return_state=True)
    bwd = cls(u, return_sequences=True, return_state=True, go_backwards=True)
    for layer, twin in ((fwd, bi.forward_layer), (bwd, bi.backward_layer)):
        layer._ensure_built(x.shape[1:])
        layer.set_weights(twin.get_weights())
    yf, *sf = fwd(x, mask=mask)
    yb, *sb = bwd(x, mask=mask)
    assert_close(seq, numpy.concatenate([yf, yb[:, ::-1]], axis=-1))
    assert len(states) == 2 * n_states
    for got, want in zip(states, sf + sb):
        assert_close(got, want)
    assert [w.shape for w in bi.weights] == [w.shape for w in fwd.weights + bwd.weights]


def test_a_bidirectional_lstm_trains_saves_and_loads(rng, tmp_path):
    idx = rng.integers(0, 9, (32, 8))
    idx[::3, 5:] = 0   # padded tails
    y = (idx[:, 0] > 4).astype("int64")
    inp = fastnn.Input((8,), dtype="int64")
    h = L.Embedding(9, 4, mask_zero=True)(inp)
    h = L.Bidirectional(L.LSTM(6, return_sequences=True), name="bi_seq")(h)
    h = L.Bidirectional(L.GRU(5), merge_mode="sum", name="bi_last")(h)
    model = fastnn.Model(inp, L.Dense(1, activation="sigmoid")(h))
    model.compile("adam", "binary_crossentropy")
    history = model.fit(idx, y, epochs=4, batch_size=8, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    names = [layer.name for layer in model.get_layer("bi_seq")._flatten_layers()]
    assert names[1:] == ["forward_lstm", "backward_lstm"] or \
        all(n.startswith(("forward_lstm", "backward_lstm")) for n in names[1:])
    model.save(tmp_path / "bilstm.fastnn")
    loaded = fastnn.load_model(tmp_path / "bilstm.fastnn")
    numpy.testing.assert_array_equal(loaded.predict(idx), model.predict(idx))


def test_a_bidirectional_gru_trains_on_the_strict_backend(rng):
    x = rng.standard_normal((12, 5, 2)).astype("float32")
    y = rng.standard_normal((12, 1)).astype("float32")
    inp = fastnn.Input((5, 2))
    out = L.Dense(1)(L.Bidirectional(L.GRU(3))(inp))
    model = fastnn.Model(inp, out, backend="strict")
    model.compile("adam", "mse")
    history = model.fit(x, y, epochs=3, batch_size=4, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


# ------------------------------------------------------------------ stateful
@pytest.mark.parametrize("cell", sorted(CELLS))
def test_a_stateful_bidirectional_carries_both_directions_states(cell, rng, tmp_path):
    cls, n_states = CELLS[cell]
    n, steps, u = 3, 5, 4
    xs = [rng.standard_normal((n, steps, 2)) for _ in range(3)]
    bi = L.Bidirectional(cls(u, return_sequences=True, stateful=True, dtype="float64"))
    assert bi.stateful and bi.forward_layer.stateful and bi.backward_layer.stateful
    assert bi.states is None
    # The same weights, stateless, with the states passed by hand.
    plain = L.Bidirectional(cls(u, return_sequences=True, return_state=True, dtype="float64"))
    bi(xs[0])
    plain(xs[0])
    plain.set_weights(bi.get_weights())
    bi.reset_states()
    states = None
    for x in xs:
        got = bi(x)
        want, *states = plain(x) if states is None else plain(x, initial_state=states)
        assert_close(got, want, tol=1e-12)
        assert len(bi.states) == 2 * n_states
        for a, b in zip(bi.states, states):
            assert_close(a, b, tol=1e-12)
    # reset_states: zeros again, as a fresh call; or states given.
    bi.reset_states()
    assert_close(bi(xs[0]), plain(xs[0])[0], tol=1e-12)
    given = [rng.standard_normal((n, u)) for _ in range(2 * n_states)]
    bi.reset_states(given)
    assert_close(bi(xs[1]), plain(xs[1], initial_state=given)[0], tol=1e-12)
    # A batch of another size is refused until the states are reset.
    with pytest.raises(ValueError, match="stateful .* holds states for batches of 3"):
        bi(rng.standard_normal((2, steps, 2)))
    # The flag round-trips through config and save/load.
    model = fastnn.Sequential([fastnn.Input((steps, 2)), bi])
    model.save(tmp_path / "bi.fastnn")
    loaded = fastnn.load_model(tmp_path / "bi.fastnn").layers[-1]
    assert loaded.stateful and loaded.backward_layer.stateful


def test_a_stateful_bidirectional_trains_over_consecutive_batches(rng):
    x = rng.standard_normal((16, 6, 2)).astype("float32")
    y = x[:, :, :1].sum(axis=1)
    model = fastnn.Sequential([fastnn.Input((6, 2)),
                               L.Bidirectional(L.GRU(4, stateful=True), merge_mode="sum"),
                               L.Dense(1)])
    model.compile("adam", "mse")
    history = model.fit(x, y, epochs=4, batch_size=4, shuffle=False, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert model.layers[0].states is not None


def test_stateful_must_match_and_reset_needs_stateful():
    with pytest.raises(ValueError, match=r"backward_layer 'back' must have the same stateful as "
                                         r"the forward layer \(True\), got False"):
        L.Bidirectional(L.LSTM(2, stateful=True),
                        backward_layer=L.LSTM(2, go_backwards=True, name="back"))
    bi = L.Bidirectional(L.LSTM(2, stateful=True),
                         backward_layer=L.LSTM(2, go_backwards=True, stateful=True))
    assert bi.stateful
    plain = L.Bidirectional(L.LSTM(2), name="plain_bi")
    assert not plain.stateful and plain.states is None
    with pytest.raises(ValueError, match="'plain_bi' is not stateful"):
        plain.reset_states()
    with pytest.raises(ValueError, match="even count; got 3"):
        bi.reset_states([numpy.zeros((1, 2))] * 3)
