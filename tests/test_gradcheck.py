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
