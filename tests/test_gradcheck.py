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


# ---------------------------------------------------------------------------
# Pinned by the mutation check, second round: the call-argument, loss and
# model paths of gradcheck that the tests above let a one-line change through.
def test_the_argument_count_messages_are_exactly_what_to_call(rng):
    from fastnn import losses
    x = rng.standard_normal((2, 3))
    cases = [(lambda: gradcheck(L.Dense(2, dtype="float64"), x, x),
              "gradcheck(layer, x): pass one input (a list of arrays for merge layers)"),
             (lambda: gradcheck(losses.get("mse"), x),
              "gradcheck(loss, y_true, y_pred): pass the targets and the predictions"),
             (lambda: gradcheck(_sequential(rng)[0], x),
              "gradcheck(model, x, y): pass inputs and targets")]
    for call, message in cases:
        with pytest.raises(TypeError) as e:
            call()
        assert str(e.value) == message


def test_a_mask_given_as_a_list_is_passed_through_not_differentiated(rng):
    # Merge layers take one mask per input, as a list: it goes to forward as
    # is and, unlike a list of state arrays, gets no gradient.
    class MaskedAdd(L.Add):
        def forward(self, xs, training=False, mask=None):
            assert isinstance(mask, list) and len(mask) == 2
            keep = (mask[0] & mask[1])[..., None]
            y, _ = super().forward(xs, training)
            return y * keep, lambda dy: [dy * keep, dy * keep]
    a, b = rng.standard_normal((3, 4, 2)), rng.standard_normal((3, 4, 2))
    masks = [rng.random((3, 4)) > 0.3, rng.random((3, 4)) > 0.3]
    result = gradcheck(MaskedAdd(dtype="float64"), [a, b], call_kwargs={"mask": masks})
    assert result.ok and {piece for piece, *_ in result.checks} == {"input 0", "input 1"}


class _Shifted(L.Dense):
    """Dense plus call arguments: ``y = scale * dense(x) + sum(shifts) + offset``;
    backprop returns ``(dx, {"shifts": [...], "offset": ...})``. ``wrong``
    doubles the named argument's gradient."""

    def __init__(self, units, wrong=None, **kwargs):
        super().__init__(units, **kwargs)
        self.wrong = wrong

    def forward(self, x, training=False, shifts=None, offset=None, scale=None):
        if shifts is None or offset is None or scale is None:
            raise ValueError("_Shifted needs shifts=, offset= and scale=")
        y, backprop = super().forward(x, training)

        def back(dy):
            dx = backprop(dy * scale)
            f = {name: 2.0 if name == self.wrong else 1.0 for name in ("shifts", "offset")}
            return dx, {"shifts": [dy * f["shifts"] for _ in shifts], "offset": dy * f["offset"]}
        return scale * y + sum(shifts) + offset, back


def test_array_call_arguments_are_checked_like_inputs(rng):
    x = rng.standard_normal((4, 2))
    kw = {"shifts": [rng.standard_normal((4, 3)), rng.standard_normal((4, 3))],
          "offset": rng.standard_normal((4, 3)), "scale": 1.5}
    result = gradcheck(_Shifted(3, dtype="float64"), x, call_kwargs=kw)
    assert result.ok
    assert {piece for piece, *_ in result.checks} == {
        "input 0", "shifts 0", "shifts 1", "offset", "kernel", "bias"}
    for wrong, piece in (("shifts", "shifts 0"), ("offset", "offset")):
        with pytest.raises(GradcheckError, match=f"  {piece}: numerical"):
            gradcheck(_Shifted(3, wrong=wrong, dtype="float64"), x, call_kwargs=kw)


class _WrongLoss:
    """Mixin: the loss's gradient on probabilities is 1.5 times too large."""

    def forward_backward(self, y_true, y_pred, sample_weight=None, mask=None):
        loss, grad = super().forward_backward(y_true, y_pred, sample_weight, mask)
        return loss, grad * 1.5


def test_a_wrong_loss_gradient_raises_naming_the_loss(rng):
    from fastnn import losses

    class Wrong(_WrongLoss, losses.MeanSquaredError):
        pass
    y, p = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    with pytest.raises(GradcheckError, match="gradient check failed for loss "
                                             "'mean_squared_error':\n  y_pred: numerical"):
        gradcheck(Wrong(), y, p)
    assert not gradcheck(Wrong(), y, p, raise_on_failure=False).ok


def test_a_fused_loss_is_checked_on_probabilities_and_on_logits(rng):
    # The fused check adds to the check of the probabilities' gradient: a wrong
    # gradient there is still caught.
    from fastnn import losses

    class Wrong(losses.CategoricalCrossentropy):
        def _prob_loss(self, y_true, y_pred):  # the probabilities' path only
            loss, grad = super()._prob_loss(y_true, y_pred)
            return loss, grad * 1.5
    y = rng.random((4, 3))
    p = rng.random((4, 3)) + 0.1
    p /= p.sum(1, keepdims=True)
    result = gradcheck(Wrong(), y / y.sum(1, keepdims=True), p, raise_on_failure=False)
    assert not result.ok
    assert {piece for piece, _, _, ok in result.checks if not ok} == {"y_pred"}
    assert {piece for piece, *_ in result.checks} == {"y_pred", "logits (fused)"}


@pytest.mark.parametrize("name,activation", [("binary_crossentropy", "sigmoid"),
                                             ("categorical_crossentropy", "softmax")])
def test_the_fused_check_runs_at_the_logits_of_the_predictions(name, activation, rng):
    # As documented: the logits whose activation gives y_pred.
    from fastnn import losses
    seen = []

    class Spy(type(losses.get(name))):
        def forward_backward_logits(self, y_true, logits, sample_weight=None, mask=None):
            seen.append(numpy.array(logits))
            return super().forward_backward_logits(y_true, logits, sample_weight, mask)
    y = (rng.random((4, 3)) > 0.5).astype(float)
    p = rng.uniform(0.1, 0.9, (4, 3))
    if activation == "softmax":
        p /= p.sum(1, keepdims=True)
    assert gradcheck(Spy(), y, p).ok and len(seen) == 1
    z = seen[0]
    back = 1 / (1 + numpy.exp(-z)) if activation == "sigmoid" else \
        numpy.exp(z) / numpy.exp(z).sum(1, keepdims=True)
    numpy.testing.assert_allclose(back, p, rtol=1e-12)


def test_a_loss_is_checked_under_the_mask_it_is_given(rng):
    # A loss whose masked gradient is wrong (it ignores the mask) but whose
    # plain gradient is right: only a check under the mask can see it.
    from fastnn import losses

    class IgnoresMask(losses.MeanSquaredError):
        def forward_backward(self, y_true, y_pred, sample_weight=None, mask=None):
            return super().forward_backward(y_true, y_pred, sample_weight, None)
    y, p = rng.standard_normal((3, 4, 2)), rng.standard_normal((3, 4, 2))
    mask = numpy.array([[1, 1, 0, 0], [1, 0, 0, 0], [1, 1, 1, 1]], bool)
    assert gradcheck(IgnoresMask(), y, p).ok
    assert gradcheck(losses.MeanSquaredError(), y, p, mask=mask).ok
    with pytest.raises(GradcheckError, match="y_pred"):
        gradcheck(IgnoresMask(), y, p, mask=mask)


def test_an_uncompiled_model_is_refused_naming_gradcheck(rng):
    import fastnn
    inp = fastnn.Input((3,), dtype="float64")
    model = fastnn.Model(inp, L.Dense(2, dtype="float64")(inp))
    with pytest.raises(RuntimeError) as e:
        gradcheck(model, rng.standard_normal((2, 3)), rng.standard_normal((2, 2)))
    assert str(e.value) == "gradcheck: call model.compile(optimizer, loss) first"


def _model(rng, loss="mse", activation="tanh", dropout=0.3, **dense):
    import fastnn
    inp = fastnn.Input((3,), dtype="float64")
    h = L.Dense(4, activation="tanh", dtype="float64", **dense)(inp)
    if dropout:
        h = L.Dropout(dropout, dtype="float64")(h)
    out = L.Dense(3, activation=activation, dtype="float64")(h)
    model = fastnn.Model(inp, out)
    model.compile("sgd", loss)
    return model, rng.standard_normal((6, 3))


def test_a_model_is_checked_in_training_mode_with_its_activity_penalty(rng):
    # Dropout (same draws in every pass) and an activity regularizer act only in
    # training: the numerical side must run in training mode, with the penalty.
    model, x = _model(rng, activity_regularizer="l2")
    result = gradcheck(model, x, rng.standard_normal((6, 3)))
    assert result.ok
    names = {f"{layer.name}/{w}" for layer in model.layers for w in ("kernel", "bias")
             if not isinstance(layer, (L.Dropout, L.InputLayer))}
    assert {piece for piece, *_ in result.checks} == names and len(names) == 4


def test_model_checks_are_reproducible_for_a_seed(rng):
    model, x = _model(rng, dropout=None)  # Dropout's draws move on between calls
    y = rng.standard_normal((6, 3))
    first = gradcheck(model, x, y, seed=7).checks
    assert gradcheck(model, x, y, seed=7).checks == first
    assert gradcheck(model, x, y, seed=8).checks != first


def test_a_model_is_checked_through_the_fused_output_training_uses(rng):
    # softmax + cross-entropy train through the loss's fused logits gradient:
    # a wrong one must fail the model's check (and raise, naming the model).
    from fastnn import losses

    class WrongFused(losses.CategoricalCrossentropy):
        def forward_backward_logits(self, y_true, logits, sample_weight=None, mask=None):
            loss, grad, probs = super().forward_backward_logits(y_true, logits, sample_weight,
                                                                mask)
            return loss, grad * 1.5, probs
    y = numpy.eye(3)[rng.integers(0, 3, 6)]
    model, x = _model(rng, loss=losses.CategoricalCrossentropy(), activation="softmax")
    assert gradcheck(model, x, y).ok
    model, x = _model(rng, loss=WrongFused(), activation="softmax")
    assert model._fusable()
    with pytest.raises(GradcheckError, match=f"gradient check failed for model {model.name!r}"):
        gradcheck(model, x, y)
    assert not gradcheck(model, x, y, raise_on_failure=False).ok


def test_the_defaults_train_mode_two_directions_seed_0(rng):
    x = rng.standard_normal((4, 2))
    assert gradcheck(_training_dependent(rng), x).ok  # training=True by default
    layer = L.Dense(3, activation="tanh", dtype="float64")
    result = gradcheck(layer, x)
    assert [piece for piece, *_ in result.checks] == ["input 0"] * 2 + ["kernel"] * 2 + \
        ["bias"] * 2
    assert result.checks == gradcheck(layer, x, seed=0).checks


def test_a_loss_is_checked_with_the_sample_weights_it_is_given(rng):
    from fastnn import losses

    class IgnoresWeights(losses.MeanSquaredError):
        def forward_backward(self, y_true, y_pred, sample_weight=None, mask=None):
            return super().forward_backward(y_true, y_pred, None, mask)
    y, p = rng.standard_normal((5, 2)), rng.standard_normal((5, 2))
    w = numpy.array([1.0, 0.0, 3.0, 0.5, 2.0])
    assert gradcheck(IgnoresWeights(), y, p).ok
    with pytest.raises(GradcheckError, match="y_pred"):
        gradcheck(IgnoresWeights(), y, p, sample_weight=w)


def test_type_messages_name_the_object_and_the_weight(rng):
    with pytest.raises(TypeError) as e:
        gradcheck(lambda x: x, numpy.zeros(2))
    assert str(e.value) == "gradcheck takes a Layer, a Loss or a compiled Model, got function"
    layer = L.Dense(2, name="d32")  # float32 weights, float64 input
    with pytest.raises(TypeError) as e:
        gradcheck(layer, numpy.zeros((2, 3)))
    assert str(e.value) == ("gradcheck runs in float64, but layer 'd32' weight 'kernel' is "
                            "float32; build layers with dtype='float64' and pass float64 inputs")


def test_a_composite_layer_names_its_sublayers_weights(rng):
    # Two sublayers have a "kernel" each: both are checked, under their own names.
    layer = L.Bidirectional(L.SimpleRNN(2, dtype="float64"), dtype="float64")
    result = gradcheck(layer, rng.standard_normal((2, 3, 2)))
    pieces = {piece for piece, *_ in result.checks}
    sub = [s.name for s in (layer.forward_layer, layer.backward_layer)]
    assert result.ok and {f"{s}/kernel" for s in sub} <= pieces and sub[0] != sub[1]
