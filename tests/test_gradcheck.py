import numpy
import pytest

from fastnn import layers as L
from fastnn.gradcheck import GradcheckError, gradcheck


class WrongGradient(L.Dense):
    """A Dense layer whose backprop forgets the activation derivative."""

    def forward(self, x, training=False):
        y, backprop = super().forward(x, training)
        W = self.params["kernel"]

        def wrong(dy):
            backprop(dy)
            return dy @ W.T
        return y, wrong


def test_detects_wrong_input_gradient(rng):
    layer = WrongGradient(3, activation="tanh", dtype="float64")
    with pytest.raises(GradcheckError, match="input 0: numerical"):
        gradcheck(layer, rng.standard_normal((4, 5)))
    result = gradcheck(layer, rng.standard_normal((4, 5)), raise_on_failure=False)
    assert not result.ok and result.max_error > 1e-3


def test_detects_wrong_parameter_gradient(rng):
    layer = L.Dense(3, dtype="float64")
    original = layer.forward

    def forward(x, training=False, **kw):
        y, backprop = original(x, training, **kw)

        def doubled(dy, need_dx=True):
            dx = backprop(dy, need_dx)
            layer.grads["bias"] *= 2
            return dx
        return y, doubled

    layer.forward = forward
    with pytest.raises(GradcheckError, match="bias"):
        gradcheck(layer, rng.standard_normal((4, 5)))


def test_requires_float64(rng):
    with pytest.raises(TypeError, match="float64"):
        gradcheck(L.Dense(3), rng.standard_normal((2, 2)).astype("float32"))
    with pytest.raises(TypeError, match="Layer, a Loss or a compiled Model"):
        gradcheck(lambda x: x, numpy.zeros(2))


@pytest.mark.parametrize("scale,caught", [(1 + 1e-3, True), (1 - 1e-3, True), (1.0, False)])
def test_default_tolerance_catches_a_relative_error_of_1e_3(rng, scale, caught):
    # Pins gradcheck's own default tolerance: loosening rtol to 0.1 must fail here.
    layer = L.Dense(4, activation="tanh", dtype="float64")
    original = layer.forward

    def forward(x, training=False, **kw):
        y, backprop = original(x, training, **kw)

        def scaled(dy, need_dx=True):
            dx = backprop(dy, need_dx)
            return None if dx is None else dx * scale
        return y, scaled
    layer.forward = forward
    result = gradcheck(layer, rng.standard_normal((5, 3)), raise_on_failure=False)
    assert result.ok is not caught


# Pinned by the mutation check (tools/mutation_check.py): each test below fails
# under a one-line change of gradcheck that the tests above let through.
def _training_dependent(rng):
    """Dense whose backprop is right only in training mode (inference scales y by 3
    but backprop does not know it)."""
    layer = L.Dense(3, dtype="float64")
    original = layer.forward

    def forward(x, training=False, **kw):
        y, backprop = original(x, training, **kw)
        return (y if training else 3 * y), backprop
    layer.forward = forward
    return layer


def test_the_training_flag_reaches_the_layer(rng):
    x = rng.standard_normal((4, 2))
    assert gradcheck(_training_dependent(rng), x, training=True).ok
    assert not gradcheck(_training_dependent(rng), x, training=False,
                         raise_on_failure=False).ok


def test_call_kwargs_reach_the_layer(rng):
    layer = L.Dense(3, dtype="float64")
    original = layer.forward

    def forward(x, training=False, scale=None, **kw):
        y, backprop = original(x, training, **kw)
        if scale is None:  # without the kwarg the output is off but backprop is not
            y = 2 * y
        return y, backprop
    layer.forward = forward
    assert gradcheck(layer, rng.standard_normal((4, 2)), call_kwargs={"scale": 1.0}).ok


def test_same_seed_same_directions_other_seed_others(rng):
    layer = L.Dense(3, activation="tanh", dtype="float64")
    x = rng.standard_normal((4, 2))
    first = gradcheck(layer, x, seed=5).checks
    assert gradcheck(layer, x, seed=5).checks == first
    assert gradcheck(layer, x, seed=6).checks != first


def test_an_exactly_zero_gradient_passes_a_zero_tolerance(rng):
    # Every pre-activation far below 0: ReLU's output and all gradients are 0,
    # numerically and analytically; |0 - 0| <= 0 must pass.
    layer = L.Dense(3, activation="relu", bias_initializer="zeros", dtype="float64")
    layer._ensure_built((2,))
    layer.params["bias"][...] = -100.0
    assert gradcheck(layer, rng.standard_normal((4, 2)), atol=0.0).ok


def test_the_failure_message_lists_each_failing_piece_on_its_own_line(rng):
    layer = WrongGradient(3, activation="tanh", dtype="float64")
    with pytest.raises(GradcheckError) as e:
        gradcheck(layer, rng.standard_normal((4, 5)), n_directions=2)
    lines = str(e.value).splitlines()
    assert lines[0].startswith("gradient check failed for layer")
    assert len(lines) >= 3 and all(l.startswith("  input 0: numerical") for l in lines[1:3])


def test_float64_message_says_how_to_fix_it():
    with pytest.raises(TypeError, match="build layers with dtype='float64' and pass float64"):
        gradcheck(L.Dense(3), numpy.zeros((2, 2), "float32"))


# ---------------------------------------------------------------------------
# Pinned by the mutation check (tools/mutation_check.py): each test below fails
# under a one-line change to fastnn/gradcheck.py that the suite used to pass.
def _sequential(rng, reg=None, dtype="float64"):
    import fastnn
    inp = fastnn.Input((3,), dtype=dtype)
    out = L.Dense(2, activation="tanh", kernel_regularizer=reg, dtype=dtype)(inp)
    model = fastnn.Model(inp, out)
    model.compile("sgd", "mse")
    return model, rng.standard_normal((5, 3)).astype(dtype), rng.standard_normal((5, 2))


def test_wrong_argument_counts_are_type_errors_that_say_what_to_pass(rng):
    from fastnn import losses
    x = rng.standard_normal((2, 3))
    with pytest.raises(TypeError, match=r"gradcheck\(layer, x\): pass one input"):
        gradcheck(L.Dense(2, dtype="float64"), x, x)
    with pytest.raises(TypeError, match=r"gradcheck\(loss, y_true, y_pred\): pass the targets"):
        gradcheck(losses.get("mse"), x)
    model, x, _ = _sequential(rng)
    with pytest.raises(TypeError, match=r"gradcheck\(model, x, y\): pass inputs and targets"):
        gradcheck(model, x)


def test_float64_messages_name_what_is_not_float64(rng):
    from fastnn import losses
    with pytest.raises(TypeError, match="the layer input 'input 0' is float32"):
        gradcheck(L.Dense(2, dtype="float64"), numpy.zeros((2, 3), "float32"))
    with pytest.raises(TypeError, match="the prediction 'y_pred' is float32"):
        gradcheck(losses.get("mse"), numpy.zeros((2, 3)), numpy.zeros((2, 3), "float32"))
    model, x, y = _sequential(rng, dtype="float32")
    with pytest.raises(TypeError, match="model weight 'dense.*/kernel' is float32"):
        gradcheck(model, x, y)


def test_a_regularized_model_passes_its_own_gradient_check(rng):
    # The penalty's gradient is added to the data term's (not instead of it).
    model, x, y = _sequential(rng, reg="l2")
    assert gradcheck(model, x, y).ok


def test_merge_layers_check_every_input(rng):
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    assert len({piece for piece, *_ in gradcheck(L.Concatenate(dtype="float64"), [a, b]).checks}
               & {"input 0", "input 1"}) == 2

    class SwappedInputs(L.Concatenate):
        def forward(self, xs, training=False):
            y, backprop = super().forward(xs, training)
            return y, lambda dy: backprop(dy)[::-1]  # each input gets the other's gradient
    with pytest.raises(GradcheckError, match="input 0"):
        gradcheck(SwappedInputs(dtype="float64"), [a, b])


def test_a_gradient_with_its_entries_permuted_is_caught(rng):
    # The same sum in another order: a direction of all-equal entries could not
    # tell; random directions must.
    class Permuted(L.Dense):
        def forward(self, x, training=False):
            y, backprop = super().forward(x, training)
            return y, lambda dy: backprop(dy)[:, ::-1]
    with pytest.raises(GradcheckError, match="input 0"):
        gradcheck(Permuted(3, dtype="float64"), rng.standard_normal((4, 5)))


def test_loss_checks_are_reproducible_for_a_seed(rng):
    from fastnn import losses
    y = rng.random((4, 3))
    p = rng.random((4, 3)) * 0.8 + 0.1
    for name in ("mse", "binary_crossentropy"):
        first = gradcheck(losses.get(name), y, p, seed=3).checks
        assert gradcheck(losses.get(name), y, p, seed=3).checks == first
        assert gradcheck(losses.get(name), y, p, seed=4).checks != first
