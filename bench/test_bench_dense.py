"""Dense forward + backward, batch 128, 784 -> 256, ReLU, float32: NumpyOps
(Cython kernels) against the plain NumPy reference Ops.
Run: python -m pytest bench/test_bench_dense.py --benchmark-group-by=group"""
import numpy
import pytest

from fastnn.backend import NumpyOps, Ops


def layer(m=128, k=784, n=256):
    rng = numpy.random.default_rng(0)
    x = rng.standard_normal((m, k)).astype(numpy.float32)
    W = (rng.standard_normal((k, n)) * 0.05).astype(numpy.float32)
    b = numpy.zeros(n, numpy.float32)
    dy = rng.standard_normal((m, n)).astype(numpy.float32)
    return x, W, b, dy, numpy.zeros_like(W), numpy.zeros_like(b)


def forward_backward(ops, x, W, b, dy, dW, db, need_dx):
    y = ops.dense_forward(x, W, b, "relu")
    return ops.dense_backward(x, W, y, dy, dW, db, "relu", need_dx=need_dx)


@pytest.mark.parametrize("need_dx", [True, False], ids=["dx", "no-dx"])
@pytest.mark.parametrize("ops", [NumpyOps(), Ops()], ids=["fastnn", "numpy-reference"])
def test_dense_forward_backward(benchmark, ops, need_dx):
    benchmark.group = f"dense 128x784->256 relu fwd+bwd ({'dx' if need_dx else 'no dx'})"
    benchmark(forward_backward, ops, *layer(), need_dx)
