"""Optimizer steps over 1M float32 parameters: NumpyOps (fused kernels) against Ops.
Run: python -m pytest bench/test_bench_optim.py --benchmark-group-by=group"""
import numpy
import pytest

from fastnn.backend import NumpyOps, Ops

N = 1 << 20


def arrays(k):
    rng = numpy.random.default_rng(0)
    return [rng.standard_normal(N).astype(numpy.float32) for _ in range(k)]


@pytest.mark.parametrize("ops", [NumpyOps(), Ops()], ids=["fastnn", "numpy-reference"])
def test_adam(benchmark, ops):
    p, g, m, v = arrays(4)
    v = numpy.abs(v)
    benchmark.group = "adam 1M float32"
    benchmark(ops.adam_update, p, g, m, v, 1e-3, 0.9, 0.999, 1e-7, 10)


@pytest.mark.parametrize("ops", [NumpyOps(), Ops()], ids=["fastnn", "numpy-reference"])
def test_sgd_momentum(benchmark, ops):
    p, g, vel = arrays(3)
    benchmark.group = "sgd nesterov 1M float32"
    benchmark(ops.sgd_update, p, g, vel, 1e-3, 0.9, True, 1e-4)


@pytest.mark.parametrize("ops", [NumpyOps(), Ops()], ids=["fastnn", "numpy-reference"])
def test_rmsprop(benchmark, ops):
    p, g, sq = arrays(3)
    sq = numpy.abs(sq)
    benchmark.group = "rmsprop 1M float32"
    benchmark(ops.rmsprop_update, p, g, sq, 1e-3)
