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


def dead_unit_state(dead_frac=0.03, width=256):
    """Adam state of a (N / width, width) weight whose first ``dead_frac`` of
    columns (dead ReLU units) get no gradient: their m has decayed to 1e-36, so
    the update's step * m is a denormal. NumPy computes it as one (slow on x86);
    fastnn's kernels run with denormals flushed (csrc/common/fastnn_fpenv.h)."""
    p, g, m, v = arrays(4)
    g *= 1e-3
    m *= 1e-4
    v = numpy.abs(v) * 1e-6
    dead = numpy.zeros((N // width, width), bool)
    dead[:, :int(width * dead_frac)] = True
    g[dead.ravel()] = 0
    m[dead.ravel()] = 1e-36
    return p, g, m, v


@pytest.mark.parametrize("ops", [NumpyOps(), Ops()], ids=["fastnn", "numpy-reference"])
def test_adam_dead_units(benchmark, ops):
    base = dead_unit_state()

    def fresh():  # untimed: every round starts from the same state
        return tuple(a.copy() for a in base) + (1e-3, 0.9, 0.999, 1e-7, 10), {}
    benchmark.group = "adam 1M float32, 3% dead units"
    benchmark.pedantic(ops.adam_update, setup=fresh, rounds=40)


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
