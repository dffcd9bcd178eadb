"""Activations (forward, and backward from the output) and the softmax
cross-entropy loss with its gradient, float32: NumpyOps (fastnn's kernels),
the plain NumPy reference Ops, and PyTorch (the same ops; backward through
the aten kernels autograd calls; cross-entropy forward + autograd backward).

    python -m pytest bench/test_bench_activations.py --benchmark-only
"""
import pytest

import _data
from fastnn.backend import NumpyOps, Ops

OPS = {"fastnn": NumpyOps(), "numpy": Ops()}


@pytest.mark.parametrize("way", _data.WAYS)
@pytest.mark.parametrize("name", ["sigmoid", "tanh", "relu", "elu", "softmax"])
def test_activation_forward(benchmark, request, way, name):
    benchmark.group = f"{name} forward 256x4096"
    if way == "torch":
        return request.getfixturevalue("torch_case")("activation_forward", name=name)
    x, _ = _data.activation_input()
    benchmark(OPS[way].activation_forward, name, x, 1.0)


@pytest.mark.parametrize("way", _data.WAYS)
@pytest.mark.parametrize("name", ["sigmoid", "relu", "softmax"])
def test_activation_backward(benchmark, request, way, name):
    benchmark.group = f"{name} backward 256x4096"
    if way == "torch":
        return request.getfixturevalue("torch_case")("activation_backward", name=name)
    x, dy = _data.activation_input()
    y = Ops().activation_forward(name, x)
    benchmark(OPS[way].activation_backward, name, y, dy)


@pytest.mark.parametrize("way", _data.WAYS)
def test_softmax_cross_entropy(benchmark, request, way):
    benchmark.group = "softmax cross-entropy + gradient 512x1000"
    if way == "torch":
        return request.getfixturevalue("torch_case")("softmax_cross_entropy")
    logits, labels = _data.classification_batch()
    benchmark(OPS[way].softmax_cross_entropy, logits, labels)
