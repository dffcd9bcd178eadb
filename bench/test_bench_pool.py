"""DepthwiseConv2D 3x3 ("same", bias, linear) and MaxPooling2D 2x2 forward +
backward on a batch of 32 images of 32x32x64, float32: NumpyOps (fastnn's
direct kernels in csrc/pool.pyx), the plain NumPy reference Ops, and PyTorch
(``conv2d(groups=64)`` and ``max_pool2d`` + autograd in its child process,
on tensors stored channels_last: fastnn's layout, and PyTorch's faster one
for these two on this CPU; its contiguous NCHW is the case's
``memory_format="nchw"``).

Each records its work (bench/_metrics.py): the depthwise step its GFLOP
(forward, dW, dx) and the bytes it must move, max pooling only its bytes
(comparisons, no arithmetic: memory-bound); bench/conftest.py turns them into
GFLOP/s and GB/s at the median for every way, to set beside the run's
"sgemm peak" (test_bench_conv.py) and "memory bandwidth peak"
(test_bench_norm.py). The fastnn and numpy ways also record one step's peak
allocated MiB.

    python -m pytest bench/test_bench_pool.py --benchmark-only
"""
import numpy
import pytest

import _data
import _metrics
from fastnn.backend import NumpyOps, Ops

OPS = {"fastnn": NumpyOps(), "numpy": Ops()}


def depthwise_step(ops, x, k, b, dy, dk, db):
    y = ops.depthwise_conv2d_forward(x, k, b, (1, 1), "same")
    return ops.depthwise_conv2d_backward(x, k, y, dy, dk, db, (1, 1), "same")


def maxpool_step(ops, x, dy):
    y, argmax = ops.pool2d_forward(x, (2, 2), (2, 2), "valid", "max")
    return ops.pool2d_backward(dy, argmax, x.shape, (2, 2), (2, 2), "valid", "max")


@pytest.mark.parametrize("way", _data.WAYS)
def test_depthwise_conv_forward_backward(benchmark, request, way):
    benchmark.group = "depthwise conv 3x3 32x32x32x64 fwd+bwd"
    benchmark.extra_info.update(gflop=_metrics.depthwise_flops() / 1e9,
                                gbytes=_metrics.depthwise_bytes() / 1e9)
    if way == "torch":
        return request.getfixturevalue("torch_case")("depthwise_conv")
    x, k, b, dy = _data.depthwise_case()
    args = (OPS[way], x, k, b, dy, numpy.zeros_like(k), numpy.zeros_like(b))
    benchmark.extra_info["peak_mib"] = _metrics.peak_mib(lambda: depthwise_step(*args))
    benchmark(depthwise_step, *args)


@pytest.mark.parametrize("way", _data.WAYS)
def test_max_pool_forward_backward(benchmark, request, way):
    benchmark.group = "max pool 2x2 32x32x32x64 fwd+bwd"
    benchmark.extra_info["gbytes"] = _metrics.maxpool_bytes() / 1e9
    if way == "torch":
        return request.getfixturevalue("torch_case")("max_pool")
    x, dy = _data.maxpool_case()
    benchmark.extra_info["peak_mib"] = _metrics.peak_mib(lambda: maxpool_step(OPS[way], x, dy))
    benchmark(maxpool_step, OPS[way], x, dy)
