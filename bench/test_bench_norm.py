"""BatchNormalization training forward + backward (batch statistics, the
moving-statistics update, dx, dgamma, dbeta) on a 32x32x32x64 NHWC float32
batch: the layer on NumpyOps (fastnn's Cython kernels) and on the plain NumPy
reference Ops, beside PyTorch's BatchNorm2d in the channels_last memory format
(way "torch": the same NHWC bytes) and in plain NCHW (way "torch-nchw", kept
in the JSON, not in the ratio table).

Batch norm is memory-bound (a few operations per element), so each way
records the bytes one step must move (bench/_metrics.py: x, y, x, dy, dx once
each) and bench/conftest.py its GB/s at the median; the "memory bandwidth
peak" group is what they compare to: one thread copying 256 MiB (read plus
write counted, as STREAM's copy does). The fastnn and numpy ways also record
one step's peak allocated MiB.

    python -m pytest bench/test_bench_norm.py --benchmark-only
"""
import numpy
import pytest

import _data
import _metrics
from fastnn.backend import NumpyOps, Ops
from fastnn.layers import BatchNormalization

OPS = {"fastnn": NumpyOps(), "numpy": Ops()}


def _layer(ops, x):
    layer = BatchNormalization(epsilon=_data.BATCHNORM["epsilon"])
    layer._ensure_built(x.shape[1:])
    return layer.to(ops)


def forward_backward(layer, x, dy):
    y, backprop = layer.forward(x, training=True)
    return backprop(dy)


@pytest.mark.parametrize("way", _data.WAYS + ("torch-nchw",))
def test_batchnorm_forward_backward(benchmark, request, way):
    benchmark.group = "batchnorm 32x32x32x64 NHWC train fwd+bwd"
    benchmark.extra_info["gbytes"] = _metrics.batchnorm_bytes() / 1e9
    if way.startswith("torch"):
        return request.getfixturevalue("torch_case")(
            "batchnorm", memory_format="nchw" if way == "torch-nchw" else "channels_last")
    x, gamma, beta, dy = _data.batchnorm_batch()
    layer = _layer(OPS[way], x)
    layer.set_weights([gamma, beta] + layer.get_weights()[2:])
    benchmark.extra_info["peak_mib"] = _metrics.peak_mib(lambda: forward_backward(layer, x, dy))
    benchmark(forward_backward, layer, x, dy)


#: Bytes per array of the bandwidth reference: far beyond any cache.
BANDWIDTH_BYTES = 256 * 2 ** 20


@pytest.mark.parametrize("way", ["fastnn"])
def test_memory_bandwidth_peak(benchmark, way):
    """numpy.copyto of 256 MiB float32, one thread: the rate the memory-bound
    cases' GB/s are a fraction of (2 x 256 MiB moved per call)."""
    benchmark.group = "memory bandwidth peak, copy 256 MiB"
    src = numpy.ones(BANDWIDTH_BYTES // 4, numpy.float32)
    dst = numpy.empty_like(src)
    benchmark.extra_info["gbytes"] = 2 * BANDWIDTH_BYTES / 1e9
    benchmark(numpy.copyto, dst, src)
