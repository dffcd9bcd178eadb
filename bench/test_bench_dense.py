"""Dense layer forward + backward, batch 128, 784 -> 256, ReLU, float32:
NumpyOps (fastnn's Cython kernels), the plain NumPy reference Ops, and
PyTorch (F.linear + relu + autograd). "no dx" is a first layer: fastnn and
the reference skip the input gradient, PyTorch's input does not require grad.

    python -m pytest bench/test_bench_dense.py --benchmark-only
"""
import numpy
import pytest

import _data
from fastnn.backend import NumpyOps, Ops

OPS = {"fastnn": NumpyOps(), "numpy": Ops()}


def forward_backward(ops, x, W, b, dy, dW, db, need_dx):
    y = ops.dense_forward(x, W, b, "relu")
    return ops.dense_backward(x, W, y, dy, dW, db, "relu", need_dx=need_dx)


@pytest.mark.parametrize("way", _data.WAYS)
@pytest.mark.parametrize("need_dx", [True, False], ids=["dx", "no-dx"])
def test_dense_forward_backward(benchmark, request, way, need_dx):
    benchmark.group = f"dense 128x784->256 relu fwd+bwd ({'dx' if need_dx else 'no dx'})"
    if way == "torch":
        return request.getfixturevalue("torch_case")("dense", need_dx=need_dx)
    x, W, b, dy = _data.dense_layer()
    benchmark(forward_backward, OPS[way], x, W, b, dy, numpy.zeros_like(W),
              numpy.zeros_like(b), need_dx)
