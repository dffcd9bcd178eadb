"""Activations and softmax cross-entropy, float32: NumpyOps against Ops.
Run: python -m pytest bench/test_bench_activations.py --benchmark-group-by=group"""
import numpy
import pytest

from fastnn.backend import NumpyOps, Ops

OPS = [NumpyOps(), Ops()]
IDS = ["fastnn", "numpy-reference"]


def data(shape=(256, 4096)):
    rng = numpy.random.default_rng(0)
    return (rng.standard_normal(shape).astype(numpy.float32),
            rng.standard_normal(shape).astype(numpy.float32))


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "relu", "elu", "softmax"])
@pytest.mark.parametrize("ops", OPS, ids=IDS)
def test_activation_forward(benchmark, ops, name):
    x, _ = data()
    benchmark.group = f"{name} forward 256x4096"
    benchmark(ops.activation_forward, name, x, 1.0)


@pytest.mark.parametrize("name", ["sigmoid", "relu", "softmax"])
@pytest.mark.parametrize("ops", OPS, ids=IDS)
def test_activation_backward(benchmark, ops, name):
    x, dy = data()
    y = Ops().activation_forward(name, x)
    benchmark.group = f"{name} backward 256x4096"
    benchmark(ops.activation_backward, name, y, dy)


@pytest.mark.parametrize("ops", OPS, ids=IDS)
def test_softmax_cross_entropy(benchmark, ops):
    logits, _ = data((512, 1000))
    labels = numpy.random.default_rng(1).integers(0, 1000, 512)
    benchmark.group = "softmax cross-entropy 512x1000"
    benchmark(ops.softmax_cross_entropy, logits, labels)
