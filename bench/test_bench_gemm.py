"""gemm, float32: fastnn (SciPy's BLAS through fastnn._C.blas), numpy.matmul
and torch.matmul, one group per shape.

    python -m pytest bench/test_bench_gemm.py --benchmark-only
"""
import numpy
import pytest

import _data
from fastnn._C.blas import gemm


@pytest.mark.parametrize("way", _data.WAYS)
@pytest.mark.parametrize("shape", _data.GEMM_SHAPES)
def test_gemm(benchmark, request, way, shape):
    benchmark.group = f"gemm {shape}"
    if way == "torch":
        return request.getfixturevalue("torch_case")("gemm", shape=shape)
    a, b, out = _data.gemm_operands(*_data.GEMM_SHAPES[shape])
    if way == "fastnn":
        benchmark(gemm, a, b, False, False, out)
    else:
        benchmark(numpy.matmul, a, b, out=out)
