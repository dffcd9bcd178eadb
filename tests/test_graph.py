"""The graph protocol: layer calls with several outputs and tensor call
arguments (recorded on the node, with gradients), models with several
outputs (losses, loss weights, metrics, logs, predict, saving), as Keras."""
import numpy
import pytest

import fastnn
from fastnn import layers as L
from fastnn.gradcheck import gradcheck
from fastnn.layers.base import zeros_for_missing
from fastnn.testing import assert_close, run_layer_test

from _recurrence import ToyRNN  # shared with tests/layers/test_bidirectional.py


class SplitShift(L.Layer):
    """Test layer with two outputs and a tensor call argument, shaped like a
    recurrent layer's: ``(x @ W + shift, tanh(x) * scale)``; ``shift=`` is an
    optional tensor (like ``initial_state``) that gets a gradient."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.add_weight("kernel", (input_shape[-1], self.units), "glorot_uniform")
        self.add_weight("scale", (input_shape[-1],), "ones")
        self.built = True

    def compute_output_shape(self, input_shape):
        return [tuple(input_shape[:-1]) + (self.units,), tuple(input_shape)]

    def forward(self, x, training=False, shift=None):
        W, s = self.params["kernel"], self.params["scale"]
        t = numpy.tanh(x)
        y1 = x @ W + (0 if shift is None else shift)
        y2 = t * s
        self.calls = getattr(self, "calls", 0) + 1

        def backprop(dys):
            self.seen = [d is None for d in dys]
            d1, d2 = zeros_for_missing(dys, (y1, y2))
            self.grads["kernel"] += x.T @ d1
            self.grads["scale"] += (d2 * t).sum(axis=0)
            dx = d1 @ W.T + d2 * s * (1 - t * t)
            if shift is None:
                return dx
            return dx, {"shift": d1}

        return (y1, y2), backprop

    def get_config(self):
        return {**super().get_config(), "units": self.units}


L.register_layer(SplitShift)


def _two_output_model(dtype="float64"):
    inp = fastnn.Input((4,), dtype=dtype, name="x")
    h = L.Dense(3, activation="tanh", dtype=dtype, name="h")(inp)
    shift = L.Dense(2, dtype=dtype, name="shift")(inp)
    seq, state = SplitShift(2, dtype=dtype, name="split")(h, shift=shift)
    cls = L.Dense(3, activation="softmax", dtype=dtype, name="cls")(seq)
    reg = L.Dense(1, dtype=dtype, name="reg")(state)
    return fastnn.Model(inp, [cls, reg])


def test_symbolic_call_returns_one_tensor_per_output_and_records_the_call():
    inp = fastnn.Input((4,))
    shift = fastnn.Input((2,))
    layer = SplitShift(2)
    outs = layer(inp, shift=shift, training=True)
    assert isinstance(outs, list) and [o.shape for o in outs] == [(2,), (4,)]
    node = outs[0].node
    assert node is outs[1].node and node.outputs == outs and node.multi_output
    assert [o.index for o in outs] == [0, 1]
    assert node.tensor_kwargs == {"shift": shift} and node.call_kwargs == {"training": True}
    assert node.all_inputs == [inp, shift]


def test_eager_call_returns_a_list_of_outputs(rng):
    layer = SplitShift(2)
    x = rng.standard_normal((3, 4)).astype("float32")
    y1, y2 = layer(x, shift=numpy.ones((3, 2), "float32"))
    numpy.testing.assert_allclose(y1, x @ layer.params["kernel"] + 1, rtol=1e-6)
    assert y2.shape == (3, 4)


def test_call_argument_tensor_gets_its_gradient(rng):
    # Gradient check through a node with two outputs and a tensor argument
    # computed by another node (it must receive a gradient).
    model = _two_output_model()
    model.compile("sgd", ["sparse_categorical_crossentropy", "mse"], loss_weights=[0.7, 2.0])
    x = rng.standard_normal((6, 4))
    y = [rng.integers(0, 3, 6), rng.standard_normal((6, 1))]
    assert gradcheck(model, x, y).ok
    assert any(g != 0 for g in model.get_layer("shift").grads["kernel"].ravel())


def test_output_without_loss_sends_none_and_gets_no_gradient(rng):
    model = _two_output_model()
    model.compile("sgd", {"cls": "sparse_categorical_crossentropy"})
    x = rng.standard_normal((5, 4))
    assert gradcheck(model, x, {"cls": rng.integers(0, 3, 5)}).ok
    split = model.get_layer("split")
    assert split.seen == [False, True]  # the second output's gradient is None
    assert not model.get_layer("reg").grads["kernel"].any()


def test_loss_weights_scale_each_output(rng):
    x = rng.standard_normal((8, 4))
    y = [rng.integers(0, 3, 8), rng.standard_normal((8, 1))]
    fastnn.set_seed(3)
    model = _two_output_model()
    model.compile("sgd", ["sparse_categorical_crossentropy", "mse"], loss_weights=[0.5, 3.0])
    logs = model.test_on_batch(x, y, return_dict=True)
    assert set(logs) == {"loss", "cls_loss", "reg_loss"}
    assert logs["loss"] == pytest.approx(0.5 * logs["cls_loss"] + 3.0 * logs["reg_loss"])
    cls, reg = model.predict(x)
    p = cls[numpy.arange(8), y[0]]
    assert logs["cls_loss"] == pytest.approx(-numpy.log(p).mean())
    assert logs["reg_loss"] == pytest.approx(((reg - y[1]) ** 2).mean())


def test_fit_logs_per_output_names_and_metrics_as_keras(rng):
    x = rng.standard_normal((40, 4)).astype("float32")
    y = {"cls": rng.integers(0, 3, 40), "reg": rng.standard_normal((40, 1))}
    model = _two_output_model("float32")
    model.compile("adam", {"cls": "sparse_categorical_crossentropy", "reg": "mse"},
                  metrics={"cls": ["accuracy"], "reg": ["mae"]})
    history = model.fit(x, y, batch_size=8, epochs=3, verbose=0, validation_split=0.25)
    assert set(history.history) == {
        "loss", "cls_loss", "reg_loss", "cls_accuracy", "reg_mae",
        "val_loss", "val_cls_loss", "val_reg_loss", "val_cls_accuracy", "val_reg_mae"}
    assert history.history["loss"][-1] < history.history["loss"][0]
    logs = model.evaluate(x, [y["cls"], y["reg"]], return_dict=True)
    assert list(logs) == ["loss", "cls_loss", "reg_loss", "cls_accuracy", "reg_mae"]
    cls, reg = model.predict(x)
    assert logs["reg_mae"] == pytest.approx(numpy.abs(reg - y["reg"]).mean(), rel=1e-5)
    assert logs["cls_accuracy"] == pytest.approx((cls.argmax(1) == y["cls"]).mean())
    # A flat metric list applies to every output; a list of lists, one per output.
    model.compile("adam", "mse", metrics=["mae"])
    assert [k for _, k, _ in model._metric_table] == ["cls_mae", "reg_mae"]
    model.compile("adam", "mse", metrics=[["mse"], []])
    assert [k for _, k, _ in model._metric_table] == ["cls_mse"]


def test_predict_returns_one_array_per_output(rng):
    model = _two_output_model("float32")
    x = rng.standard_normal((37, 4)).astype("float32")
    cls, reg = model.predict(x, batch_size=8)
    assert cls.shape == (37, 3) and reg.shape == (37, 1)
    eager = model(x)
    numpy.testing.assert_allclose(eager[1], reg, rtol=1e-5, atol=1e-6)
    assert isinstance(model.predict_on_batch(x), list)


@pytest.mark.parametrize("bad, match", [
    (dict(loss=["mse"]), "list of 1 but the model has 2"),
    (dict(loss={"nope": "mse"}), "not outputs of the model"),
    (dict(loss="mse", loss_weights=2.0), "list or a dict by output name"),
    (dict(loss="mse", loss_weights=[1.0, float("nan")]), "finite numbers"),
    (dict(loss={"cls": None}), "no output has a loss"),
])
def test_bad_compile_arguments_are_named(bad, match):
    with pytest.raises(ValueError, match=match):
        _two_output_model().compile("sgd", **bad)


def test_bad_targets_for_several_outputs(rng):
    model = _two_output_model()
    model.compile("sgd", "mse")
    x = rng.standard_normal((4, 4))
    with pytest.raises(ValueError, match="2 outputs"):
        model.train_on_batch(x, rng.standard_normal((4, 3)))
    with pytest.raises(ValueError, match="not model outputs"):
        model.train_on_batch(x, {"cls": numpy.zeros((4, 3)), "oops": numpy.zeros((4, 1))})
    with pytest.raises(ValueError, match="no target for output 'reg'"):
        model.train_on_batch(x, {"cls": numpy.zeros((4, 3))})


def test_several_outputs_save_and_load(tmp_path, rng):
    model = _two_output_model("float32")
    model.compile("adam", ["sparse_categorical_crossentropy", "mse"], loss_weights=[1.0, 0.5],
                  metrics=[["accuracy"], ["mae"]])
    x = rng.standard_normal((16, 4)).astype("float32")
    y = [rng.integers(0, 3, 16), rng.standard_normal((16, 1))]
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    model.save(tmp_path / "m.fastnn")
    loaded = fastnn.load_model(tmp_path / "m.fastnn")
    for a, b in zip(model.predict(x), loaded.predict(x)):
        numpy.testing.assert_array_equal(a, b)
    assert loaded.output_names == ["cls", "reg"] and loaded._loss_weights == [1.0, 0.5]
    node = loaded.get_layer("split")
    assert model.evaluate(x, y, return_dict=True) == loaded.evaluate(x, y, return_dict=True)
    a = model.train_on_batch(x, y, return_dict=True)
    b = loaded.train_on_batch(x, y, return_dict=True)
    assert a == pytest.approx(b, rel=1e-6)
    assert node is not None


def test_layer_output_used_twice_and_as_model_output_sums_gradients(rng):
    # One output feeds a later layer *and* is a model output: both gradients meet.
    inp = fastnn.Input((4,), dtype="float64")
    a, b = SplitShift(3, dtype="float64")(inp)
    c = L.Dense(2, dtype="float64", name="c")(L.Add(dtype="float64")([b, inp]))
    model = fastnn.Model(inp, [a, c])
    model.compile("sgd", "mse")
    assert gradcheck(model, rng.standard_normal((5, 4)),
                     [rng.standard_normal((5, 3)), rng.standard_normal((5, 2))]).ok


def test_single_output_fused_path_is_still_taken(rng):
    inp = fastnn.Input((4,))
    model = fastnn.Model(inp, L.Dense(3, activation="softmax")(inp))
    model.compile("sgd", "sparse_categorical_crossentropy")
    assert model._fusable()
    model2 = _two_output_model("float32")
    model2.compile("sgd", ["sparse_categorical_crossentropy", "mse"])
    assert not model2._fusable()


def test_summary_lists_each_output_of_a_layer():
    lines = []
    _two_output_model("float32").summary(print_fn=lines.append, line_length=100)
    assert "split (SplitShift)" in lines[0]
    assert "[(None, 2), (None, 3)]" in lines[0]


def test_inputs_by_name_and_a_recorded_training_argument(rng):
    a, b = fastnn.Input((3,), name="a"), fastnn.Input((2,), name="b")
    h = L.Concatenate()([a, b])
    # training=True on the call is recorded on the node: this Dropout is
    # active even at inference (Monte Carlo dropout), as in Keras.
    noisy = L.Dropout(0.5, name="mc")(h, training=True)
    model = fastnn.Model([a, b], [h, noisy])
    assert noisy.node.call_kwargs == {"training": True}
    xa, xb = rng.standard_normal((50, 3)), rng.standard_normal((50, 2))
    clean, dropped = model.predict({"b": xb, "a": xa})
    numpy.testing.assert_allclose(clean, numpy.hstack([xa, xb]), rtol=1e-6)
    assert (dropped == 0).mean() > 0.3
    with pytest.raises(ValueError, match=r"keyed by the input names \['a', 'b'\]"):
        model.predict({"a": xa})


def test_eager_and_symbolic_calls_refuse_bad_arguments():
    inp = fastnn.Input((4,))
    with pytest.raises(TypeError, match="mixes symbolic tensors"):
        SplitShift(2)(inp, shift=[fastnn.Input((2,)), 3])
    with pytest.raises(TypeError, match="mask must be a symbolic tensor"):
        L.Dense(2)(inp, mask=numpy.ones(4, bool))


# ------------------------------------------------- the protocol recurrent layers use
@L.register_layer
class ToyBidirectional(L.Wrapper):
    """What Bidirectional does with the Wrapper machinery: two copies of the
    wrapped layer (the second reading backwards) held as attributes, so both
    are tracked; outputs concatenated."""
    supports_masking = True

    def __init__(self, layer, **kwargs):
        super().__init__(layer, **kwargs)
        config = layer.get_config()
        self.forward_layer = type(layer).from_config({**config, "name": "forward_" + layer.name})
        self.backward_layer = type(layer).from_config(
            {**config, "name": "backward_" + layer.name, "go_backwards": True})

    def build(self, input_shape):
        self.build_sublayer(self.forward_layer, input_shape)
        self.build_sublayer(self.backward_layer, input_shape)
        self.built = True

    def compute_output_shape(self, input_shape):
        shape = self.forward_layer.compute_output_shape(input_shape)
        return shape[:-1] + (2 * shape[-1],)

    def compute_mask(self, inputs, mask=None):
        return None

    def forward(self, x, training=False, mask=None):
        yf, back_f = self.forward_layer.forward(x, training, mask=mask)
        yb, back_b = self.backward_layer.forward(x, training, mask=mask)
        k = yf.shape[-1]

        def backprop(dy):
            return back_f(dy[..., :k]) + back_b(dy[..., k:])

        return numpy.concatenate([yf, yb], axis=-1), backprop


def _lengths_mask(rng, n, steps):
    lengths = rng.integers(1, steps + 1, n)
    return numpy.arange(steps)[None, :] < lengths[:, None]


def test_recurrent_shaped_layer_with_mask_state_and_two_outputs(rng):
    run_layer_test(lambda dt: ToyRNN(3, return_sequences=True, return_state=True, dtype=dt),
                   (4, 5, 2), [(4, 5, 3), (4, 3)], rng,
                   call_kwargs={"mask": _lengths_mask(rng, 4, 5),
                                "initial_state": [rng.standard_normal((4, 3))]})
    # Padded steps leave the state unchanged.
    layer = ToyRNN(3, return_sequences=True, return_state=True, dtype="float64")
    x, mask = rng.standard_normal((2, 5, 2)), numpy.array([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1]], bool)
    seq, state = layer(x, mask=mask)
    assert_close(seq[0, 4], seq[0, 1])
    assert_close(state, seq[:, -1])


def test_a_model_of_the_recurrent_protocol_gradchecks(rng):
    # Masking -> recurrent layer with an initial state computed by another
    # node -> a masked sequence output and a state output, each with its loss.
    n, steps = 6, 5
    x = rng.standard_normal((n, steps, 2))
    mask = _lengths_mask(rng, n, steps)
    x[~mask] = 0.0
    inp = fastnn.Input((steps, 2), dtype="float64")
    ctx = fastnn.Input((4,), dtype="float64")
    h0 = L.Dense(3, dtype="float64", name="h0")(ctx)
    seq, state = ToyRNN(3, return_sequences=True, return_state=True, dtype="float64",
                        name="rnn")(L.Masking(dtype="float64")(inp), initial_state=[h0])
    per_step = L.TimeDistributed(L.Dense(2, dtype="float64"), name="per_step")(seq)
    final = L.Dense(1, dtype="float64", name="final")(state)
    assert per_step.mask is not None and final.mask is None and state.mask is None
    model = fastnn.Model([inp, ctx], [per_step, final])
    model.compile("sgd", ["mse", "mse"], loss_weights=[1.0, 0.3])
    xs = [x, rng.standard_normal((n, 4))]
    ys = [rng.standard_normal((n, steps, 2)), rng.standard_normal((n, 1))]
    assert gradcheck(model, xs, ys).ok
    assert model.get_layer("h0").grads["kernel"].any()
    # The sequence loss ignores the targets at padded steps.
    ys2 = [numpy.where(mask[..., None], ys[0], 50.0), ys[1]]
    assert model.evaluate(xs, ys2, return_dict=True) == \
        pytest.approx(model.evaluate(xs, ys, return_dict=True))


def test_wrapper_machinery_for_a_bidirectional_layer(rng, tmp_path):
    mask = _lengths_mask(rng, 4, 6)
    layer = run_layer_test(lambda dt: ToyBidirectional(ToyRNN(3, dtype=dt)), (4, 6, 2), (4, 6),
                           rng, n_weights=2, call_kwargs={"mask": mask})
    assert layer.count_params() == 2 * 2 * 3
    assert layer.backward_layer.go_backwards and not layer.forward_layer.go_backwards
    emb_in = fastnn.Input((6,), dtype="int64")
    emb = L.Embedding(5, 2, mask_zero=True)(emb_in)
    out = L.Dense(1)(ToyBidirectional(ToyRNN(3, return_sequences=False))(emb))
    model = fastnn.Model(emb_in, out)
    model.compile("adam", "mse")
    idx = rng.integers(0, 5, (8, 6))
    model.fit(idx, rng.standard_normal((8, 1)), epochs=1, verbose=0)
    assert len(model.trainable_weights) == 1 + 2 + 2
    model.save(tmp_path / "bi.fastnn")
    numpy.testing.assert_array_equal(fastnn.load_model(tmp_path / "bi.fastnn").predict(idx),
                                     model.predict(idx))


def test_metrics_on_an_output_without_loss_are_refused_at_compile(rng):
    # Before, compile took them and fit failed on the missing targets with
    # "y_true must be a numeric array, got dtype object".
    for metrics in ({"cls": ["accuracy"], "reg": ["mae"]}, [["accuracy"], ["mae"]]):
        model = _two_output_model("float32")
        with pytest.raises(ValueError, match="output 'reg' has metrics.*'mae'.*but no loss"):
            model.compile("sgd", {"cls": "sparse_categorical_crossentropy"}, metrics=metrics)
    # A flat list applies to the outputs that get targets.
    model = _two_output_model("float32")
    model.compile("sgd", {"cls": "sparse_categorical_crossentropy"}, metrics=["accuracy"])
    x = rng.standard_normal((12, 4)).astype("float32")
    history = model.fit(x, {"cls": rng.integers(0, 3, 12)}, batch_size=4, verbose=0)
    assert set(history.history) == {"loss", "cls_loss", "cls_accuracy"}
