"""gemm: fastnn (SciPy's BLAS through fastnn._C.blas) against numpy.matmul.
Run: python -m pytest bench/test_bench_gemm.py --benchmark-group-by=group"""
import numpy
import pytest

from fastnn._C.blas import gemm

SHAPES = {"1024^3": (1024, 1024, 1024), "128x784x256": (128, 784, 256)}


def operands(m, k, n):
    rng = numpy.random.default_rng(0)
    a = rng.standard_normal((m, k)).astype(numpy.float32)
    b = rng.standard_normal((k, n)).astype(numpy.float32)
    return a, b, numpy.empty((m, n), numpy.float32)


@pytest.mark.parametrize("shape", SHAPES)
def test_gemm_fastnn(benchmark, shape):
    a, b, out = operands(*SHAPES[shape])
    benchmark.group = f"gemm {shape}"
    benchmark(gemm, a, b, False, False, out)


@pytest.mark.parametrize("shape", SHAPES)
def test_gemm_numpy(benchmark, shape):
    a, b, out = operands(*SHAPES[shape])
    benchmark.group = f"gemm {shape}"
    benchmark(numpy.matmul, a, b, out=out)
