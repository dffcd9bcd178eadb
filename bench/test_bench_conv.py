"""Conv2D forward + backward, float32, "same" padding, stride 1, bias + ReLU:
NumpyOps (fastnn's kernels, fastnn._C.conv: Winograd F(2x2, 3x3) for the 3x3
case, im2col + GEMM otherwise; way "fastnn:im2col" forces im2col), the plain NumPy
reference Ops, and PyTorch (F.conv2d + relu + autograd, NCHW). Cases
(bench/_data.py CONV_CASES): issue 16's 3x3 layer on 32x32x32x64 -> 64
filters, and a 5x5 first layer on 32x32x3 images -> 32 filters (no input
gradient: fastnn skips dx, PyTorch's input does not require grad).

Each benchmark records in extra_info the GFLOP per step (``gflop``: forward,
dW and dx GEMMs of the direct convolution: for the Winograd path an effective
rate, it does 2.25x fewer multiplies) and the achieved GFLOP/s at the median (the PyTorch way's
from bench/conftest.py), and the fastnn/numpy ones the peak of the memory
allocated during one step (``peak_mib``, tracemalloc, which sees NumPy's
allocations: bench/_metrics.py). The "sgemm peak" group times fastnn's GEMM on
large squares: the machine's reachable float32 rate, for the fraction.

    python -m pytest bench/test_bench_conv.py --benchmark-only
"""
import numpy
import pytest

import _data
from _metrics import peak_mib
from fastnn._C import conv
from fastnn._C.blas import gemm
from fastnn.backend import NumpyOps, Ops

OPS = {"fastnn": NumpyOps(), "numpy": Ops()}
PEAK_SIZE = 2048


def forward_backward(ops, x, W, b, dy, dW, db, pads, need_dx):
    args = ((1, 1), pads, (1, 1), 1)
    y = ops.conv2d_forward(x, W, b, *args, "relu")
    return ops.conv2d_backward(x, W, y, dy, dW, db, *args, "relu", need_dx=need_dx)


@pytest.mark.parametrize("way", list(_data.WAYS) + ["fastnn:im2col"])
@pytest.mark.parametrize("case", _data.CONV_CASES)
def test_conv2d_forward_backward(benchmark, request, monkeypatch, way, case):
    need_dx = not case.endswith("first")
    if way == "fastnn:im2col":
        # The 3x3 case takes conv.pyx's Winograd path; this way times the
        # im2col + GEMM one beside it (the 5x5 case has no other path).
        if not case.startswith("3x3"):
            pytest.skip("only a 3x3 convolution has a Winograd path to compare")
        monkeypatch.setattr(conv, "WINOGRAD", False)
    benchmark.group = f"conv2d {case} relu fwd+bwd ({'dx' if need_dx else 'no dx'})"
    gflop = _data.conv_flops(case, need_dx) / 1e9
    benchmark.extra_info["gflop"] = gflop
    if way == "torch":
        return request.getfixturevalue("torch_case")("conv2d", case=case, need_dx=need_dx)
    x, W, b, dy = _data.conv_layer(case)
    k = W.shape[0]
    pads = (k // 2,) * 4
    args = (OPS[way.split(":")[0]], x, W, b, dy, numpy.zeros_like(W), numpy.zeros_like(b), pads, need_dx)
    benchmark.extra_info["peak_mib"] = peak_mib(lambda: forward_backward(*args))
    benchmark(forward_backward, *args)
    if benchmark.stats is not None:
        benchmark.extra_info["gflops_per_s"] = round(gflop / benchmark.stats.stats.median, 1)


@pytest.mark.parametrize("way", ["fastnn"])
def test_sgemm_peak(benchmark, way):
    """fastnn's GEMM on 2048^3 float32: the rate the convolution's fraction is of."""
    benchmark.group = f"sgemm peak {PEAK_SIZE}^3"
    a, b, out = _data.gemm_operands(PEAK_SIZE, PEAK_SIZE, PEAK_SIZE)
    benchmark(gemm, a, b, False, False, out)
    if benchmark.stats is not None:
        benchmark.extra_info["gflops_per_s"] = round(
            2 * PEAK_SIZE ** 3 / 1e9 / benchmark.stats.stats.median, 1)
