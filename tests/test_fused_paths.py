"""The fused kernels are the paths actually taken, checked by counting kernel
entries (not by timing, which a loaded machine turns into noise): a Dense
layer's activation runs inside the dense kernel (forward and backward), no
separate activation pass, and the optimizers' updates run in their fused
kernels. Moving the ReLU out of the fused kernel into a NumPy pass, or the
Adam step back onto the NumPy reference, fails here."""
import collections

import numpy
import pytest

import fastnn
from fastnn import layers as L
from fastnn.backend import numpy_ops
from fastnn.backend.ops import Ops


@pytest.fixture
def calls(monkeypatch):
    """Counts of (kernel, activation) entries into the compiled kernels and of
    the NumPy reference's activation and optimizer methods."""
    seen = collections.Counter()

    def spy(module, name, key=lambda *a, **k: None):
        real = getattr(module, name)

        def wrapper(*args, **kwargs):
            seen[(name, key(*args, **kwargs))] += 1
            return real(*args, **kwargs)
        monkeypatch.setattr(module, name, wrapper)

    spy(numpy_ops._dense, "dense_forward", lambda x, W, b=None, act="linear", *a, **k: act)
    spy(numpy_ops._dense, "dense_backward",
        lambda x, W, y, dy, dW, db, act="linear", *a, **k: act)
    spy(numpy_ops._act, "activation_forward", lambda name, *a, **k: name)
    spy(numpy_ops._act, "activation_backward", lambda name, *a, **k: name)
    for name in ("activation_forward", "activation_backward", "adam_update", "sgd_update",
                 "rmsprop_update"):
        spy(Ops, name, lambda self, *a, **k: "reference")
    for name in ("adam_update", "sgd_update", "rmsprop_update"):
        spy(numpy_ops._optim, name)
    return seen


@pytest.mark.parametrize("act", ["relu", "sigmoid", "leaky_relu", "elu"])
def test_dense_activation_runs_inside_the_dense_kernel(calls, act, rng):
    model = fastnn.Sequential([fastnn.Input((6,)), L.Dense(5, activation=act),
                               L.Dense(3)], backend="numpy")
    model.compile("adam", "mse")
    x = rng.standard_normal((16, 6)).astype("float32")
    y = rng.standard_normal((16, 3)).astype("float32")
    model.train_on_batch(x, y)
    assert calls[("dense_forward", act)] == 1
    assert calls[("dense_backward", act)] == 1
    # No separate activation pass, on the kernels or on the reference.
    assert not [k for k in calls if k[0].startswith("activation_")], dict(calls)
    # Two kernels and two biases: four fused Adam steps, none on the reference.
    assert calls[("adam_update", None)] == 4
    assert calls[("adam_update", "reference")] == 0


@pytest.mark.parametrize("optimizer,kernel", [("sgd", "sgd_update"),
                                              ("rmsprop", "rmsprop_update")])
def test_optimizer_updates_run_in_their_kernels(calls, optimizer, kernel, rng):
    model = fastnn.Sequential([fastnn.Input((4,)), L.Dense(2)], backend="numpy")
    model.compile(optimizer, "mse")
    model.train_on_batch(rng.standard_normal((8, 4)), rng.standard_normal((8, 2)))
    assert calls[(kernel, None)] == 2
    assert calls[(kernel, "reference")] == 0


def test_the_spies_see_a_forced_reference_path(calls, rng, monkeypatch):
    # The counting itself can fail: with the kernel route disabled, the
    # reference's activation pass is what runs and is seen.
    monkeypatch.setattr(numpy_ops, "ACTIVATIONS", ())
    model = fastnn.Sequential([fastnn.Input((6,)), L.Dense(5, activation="relu")],
                              backend="numpy")
    model.compile("sgd", "mse")
    model.train_on_batch(rng.standard_normal((4, 6)).astype("float32"),
                         numpy.zeros((4, 5), "float32"))
    assert calls[("activation_forward", "reference")] >= 1
    assert calls[("dense_forward", "relu")] == 0
