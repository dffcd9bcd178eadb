"""BatchNormalization training forward + backward (batch statistics, the
moving-statistics update, dx, dgamma, dbeta) on a 32x32x32x64 NHWC float32
batch: the layer on NumpyOps (fastnn's Cython kernels) and on the plain NumPy
reference Ops, beside PyTorch's BatchNorm2d in the channels_last memory format
(way "torch": the same NHWC bytes) and in plain NCHW (way "torch-nchw", kept
in the JSON, not in the ratio table).

    python -m pytest bench/test_bench_norm.py --benchmark-only
"""
import pytest

import _data
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
    if way.startswith("torch"):
        return request.getfixturevalue("torch_case")(
            "batchnorm", memory_format="nchw" if way == "torch-nchw" else "channels_last")
    x, gamma, beta, dy = _data.batchnorm_batch()
    layer = _layer(OPS[way], x)
    layer.set_weights([gamma, beta] + layer.get_weights()[2:])
    benchmark(forward_backward, layer, x, dy)
