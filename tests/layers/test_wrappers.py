"""Composite layers: layers held by layers are tracked (weights, gradients,
regularizers, summary, saving), the user-written residual block, and
TimeDistributed."""
import numpy
import pytest

import fastnn
from fastnn import layers as L
from fastnn.gradcheck import gradcheck
from fastnn.testing import run_layer_test


@L.register_layer
class UserResidualBlock(L.Layer):
    """A user-written composite: x + Dense(Dense(x)), the parts held as
    attributes (tracked automatically) and built in ``build``."""

    def __init__(self, units, l2=0.0, **kwargs):
        super().__init__(**kwargs)
        self.units, self.l2 = units, l2
        self.inner = L.Dense(units, activation="tanh", dtype=self.dtype,
                             kernel_regularizer=fastnn.regularizers.L2(l2) if l2 else None)
        self.outer = L.Dense(units, dtype=self.dtype)
        self.add = L.Add(dtype=self.dtype)

    def build(self, input_shape):
        if input_shape[-1] != self.units:
            raise ValueError(f"UserResidualBlock {self.name!r}: input features {input_shape[-1]} "
                             f"!= units {self.units}")
        shape = self.build_sublayer(self.inner, input_shape)
        shape = self.build_sublayer(self.outer, shape)
        self.build_sublayer(self.add, [tuple(input_shape), shape])
        self.built = True

    def forward(self, x, training=False):
        h, back_inner = self.inner.forward(x, training)
        z, back_outer = self.outer.forward(h, training)
        y, back_add = self.add.forward([x, z], training)

        def backprop(dy):
            dx_skip, dz = back_add(dy)
            return dx_skip + back_inner(back_outer(dz))

        return y, backprop

    def get_config(self):
        return {**super().get_config(), "units": self.units, "l2": self.l2}


class Stack(L.Layer):
    """Composite holding its parts in a list (appended after construction)."""

    def __init__(self, sizes, **kwargs):
        super().__init__(**kwargs)
        self.parts = []
        for n in sizes:
            self.parts.append(L.Dense(n, dtype=self.dtype))

    def build(self, input_shape):
        for part in self.parts:
            input_shape = self.build_sublayer(part, input_shape)
        self.built = True

    def compute_output_shape(self, input_shape):
        return (self.parts[-1].units,)

    def forward(self, x, training=False):
        backs = []
        for part in self.parts:
            x, back = part.forward(x, training)
            backs.append(back)

        def backprop(dy):
            for back in reversed(backs):
                dy = back(dy)
            return dy

        return x, backprop


def test_residual_block_runs_the_layer_harness(rng):
    layer = run_layer_test(lambda dt: UserResidualBlock(5, dtype=dt), (4, 5), (4, 5), rng,
                           n_weights=4)
    assert [w.shape for w in layer.weights] == [(5, 5), (5,), (5, 5), (5,)]
    assert layer.count_params() == 60


def test_held_layers_weights_grads_and_regularizers_are_tracked(rng):
    inp = fastnn.Input((5,), dtype="float64")
    block = UserResidualBlock(5, l2=0.3, dtype="float64")
    out = L.Dense(2, dtype="float64")(block(inp))
    model = fastnn.Model(inp, out)
    model.compile("sgd", "mse")
    # The block's parts' weights are the model's, in the block's order.
    assert model.count_params() == 60 + 12
    assert len(model.trainable_weights) == 6
    assert model.trainable_weights[0] is block.inner.params["kernel"]
    # The inner kernel's L2 term is in the training loss and its gradient.
    x, y = rng.standard_normal((6, 5)), rng.standard_normal((6, 2))
    assert gradcheck(model, x, y).ok
    assert model._regularization_loss() == pytest.approx(
        0.3 * float((block.inner.params["kernel"] ** 2).sum()))
    before = block.outer.get_weights()[0].copy()
    model.fit(x, y, epochs=2, batch_size=3, verbose=0)
    assert not numpy.array_equal(before, block.outer.get_weights()[0])


def test_freezing_a_composite_freezes_its_parts(rng):
    inp = fastnn.Input((5,))
    block = UserResidualBlock(5)
    model = fastnn.Model(inp, L.Dense(1)(block(inp)))
    block.trainable = False
    assert not block.inner.trainable and not block.outer.trainable
    model = fastnn.Model(inp, model.outputs[0])
    assert len(model.trainable_weights) == 2
    before = [w.copy() for w in block.get_weights()]
    model.compile("sgd", "mse")
    model.fit(rng.standard_normal((8, 5)), rng.standard_normal((8, 1)), verbose=0)
    for a, b in zip(before, block.get_weights()):
        numpy.testing.assert_array_equal(a, b)


def test_layers_appended_to_a_list_attribute_are_tracked(rng):
    layer = Stack([4, 3, 2], dtype="float64")
    layer._ensure_built((6,))
    assert len(layer.weights) == 6 and layer.count_params() == 28 + 15 + 8
    assert gradcheck(layer, rng.standard_normal((3, 6))).ok
    layer.set_weights([numpy.zeros(w.shape) for w in layer.get_weights()])
    assert not layer(rng.standard_normal((2, 6))).any()
    with pytest.raises(ValueError, match="has 6 weights, got 1"):
        layer.set_weights([numpy.zeros((6, 4))])


def test_summary_counts_composite_and_shows_several_outputs():
    inp = fastnn.Input((5,))
    model = fastnn.Model(inp, L.Dense(1)(UserResidualBlock(5, name="block")(inp)))
    lines = []
    model.summary(print_fn=lines.append)
    text = lines[0]
    assert "block (UserResidualBlock)" in text and " 60" in text and "Total params: 66" in text


def test_composite_saves_and_loads(tmp_path, rng):
    inp = fastnn.Input((5,))
    model = fastnn.Model(inp, L.Dense(2)(UserResidualBlock(5, l2=0.01)(inp)))
    model.compile("adam", "mse")
    x, y = rng.standard_normal((8, 5)), rng.standard_normal((8, 2))
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "m.fastnn")
    loaded = fastnn.load_model(tmp_path / "m.fastnn")
    numpy.testing.assert_array_equal(model.predict(x), loaded.predict(x))
    assert loaded.train_on_batch(x, y) == pytest.approx(model.train_on_batch(x, y), rel=1e-6)


# ------------------------------------------------------------ TimeDistributed
def test_time_distributed_dense_runs_the_layer_harness(rng):
    layer = run_layer_test(lambda dt: L.TimeDistributed(L.Dense(3, activation="tanh", dtype=dt)),
                           (4, 6, 5), (4, 6, 3), rng, n_weights=2)
    x = rng.standard_normal((2, 6, 5)).astype("float32")
    W, b = layer.get_weights()
    numpy.testing.assert_allclose(layer(x), numpy.tanh(x @ W + b), rtol=1e-5, atol=1e-6)


def test_time_distributed_config_nests_the_wrapped_layer():
    layer = L.TimeDistributed(L.Dense(3, name="inner"), name="td")
    config = layer.get_config()
    assert config["layer"]["class_name"] == "Dense" and config["layer"]["config"]["units"] == 3
    clone = L.TimeDistributed.from_config(config)
    assert clone.layer.name == "inner" and clone.layer.units == 3 and clone.layer is not layer.layer


def test_time_distributed_takes_the_dtype_it_is_given():
    layer = L.TimeDistributed(L.Dense(3), dtype="float64")
    assert layer.layer.dtype == numpy.float64
    built = L.Dense(3)
    built._ensure_built((4,))
    with pytest.raises(ValueError, match="is built in float32"):
        L.TimeDistributed(built, dtype="float64")


def test_time_distributed_needs_a_steps_axis(rng):
    with pytest.raises(ValueError, match="needs inputs of shape"):
        L.TimeDistributed(L.Dense(3))(fastnn.Input((5,)))
    layer = L.TimeDistributed(L.Dense(3))
    layer._ensure_built((2, 5))
    with pytest.raises(ValueError, match="needs inputs of shape"):
        layer.forward(rng.standard_normal((4, 5)).astype("float32"))


def test_time_distributed_in_a_model_trains_and_saves(tmp_path, rng):
    inp = fastnn.Input((7, 4))
    out = L.TimeDistributed(L.Dense(3, activation="softmax"))(inp)
    model = fastnn.Model(inp, out)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    x = rng.standard_normal((20, 7, 4)).astype("float32")
    y = rng.integers(0, 3, (20, 7))
    history = model.fit(x, y, epochs=3, batch_size=5, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    model.save(tmp_path / "td.fastnn")
    numpy.testing.assert_array_equal(fastnn.load_model(tmp_path / "td.fastnn").predict(x),
                                     model.predict(x))


def test_wrapper_refuses_a_non_layer():
    with pytest.raises(TypeError, match="wraps a fastnn layer, got int"):
        L.TimeDistributed(3)


def test_a_frozen_wrapper_freezes_the_wrapped_layer():
    from fastnn import layers as L
    td = L.TimeDistributed(L.Dense(2), trainable=False)
    assert not td.layer.trainable
