"""Optimizer steps over 1M float32 parameters: NumpyOps (fastnn's fused
kernels), the plain NumPy reference Ops, and torch.optim (one parameter
tensor, its default single-tensor CPU step) with the same hyperparameters.

    python -m pytest bench/test_bench_optim.py --benchmark-only
"""
import numpy
import pytest

import _data
from fastnn.backend import NumpyOps, Ops

OPS = {"fastnn": NumpyOps(), "numpy": Ops()}


def arrays():
    """param, grad, a first-moment-like state and a non-negative second moment."""
    p, g, m, v = _data.optim_arrays(4)
    return p, g, m, numpy.abs(v)


#: step -> (group, the step given ops and arrays()). The names are also the
#: PyTorch cases (bench/_torch_cases.py).
STEPS = {
    "adam": ("adam 1M float32", lambda ops, p, g, m, v: ops.adam_update(
        p, g, m, v, 1e-3, 0.9, 0.999, 1e-7, 10)),
    "adamw": ("adamw 1M float32 (decoupled weight decay 1e-2)",
              lambda ops, p, g, m, v: ops.adam_update(
                  p, g, m, v, 1e-3, 0.9, 0.999, 1e-7, 10, 1e-2, decoupled=True)),
    "sgd_nesterov": ("sgd nesterov 1M float32", lambda ops, p, g, m, v: ops.sgd_update(
        p, g, m, 1e-3, 0.9, True, 1e-4)),
    "rmsprop": ("rmsprop 1M float32", lambda ops, p, g, m, v: ops.rmsprop_update(
        p, g, v, 1e-3)),
    "adagrad": ("adagrad 1M float32", lambda ops, p, g, m, v: ops.adagrad_update(
        p, g, v, 1e-3)),
}


@pytest.mark.parametrize("way", _data.WAYS)
@pytest.mark.parametrize("step", STEPS)
def test_optimizer_step(benchmark, request, way, step):
    group, call = STEPS[step]
    benchmark.group = group
    if way == "torch":
        return request.getfixturevalue("torch_case")(step)
    benchmark(call, OPS[way], *arrays())


@pytest.mark.parametrize("way", _data.WAYS)
def test_adam_dead_units(benchmark, request, way):
    """One step from the same state each round (copied, untimed): 3% of the
    units dead, their Adam steps denormal (see _data.dead_unit_state)."""
    benchmark.group = "adam 1M float32, 3% dead units"
    if way == "torch":
        return request.getfixturevalue("torch_case")("adam_dead_units")
    base = _data.dead_unit_state()

    def fresh():
        return tuple(a.copy() for a in base) + (1e-3, 0.9, 0.999, 1e-7, 10), {}
    benchmark.pedantic(OPS[way].adam_update, setup=fresh, rounds=40)
