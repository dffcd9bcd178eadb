"""Helpers shared by the kernel tests: array layouts and dtype-aware closeness.
(Named kernel_helpers, not conftest, so it cannot clash with other test folders.)"""
import numpy

DTYPES = [numpy.float32, numpy.float64]
LAYOUTS = ["C", "F", "strided"]


def make(rng, shape, dtype, layout="C", scale=1.0):
    """A random array of ``shape`` laid out C-contiguous, F-contiguous or strided."""
    if layout == "strided":
        big = rng.standard_normal(shape[:-1] + (shape[-1] * 2,)) * scale
        a = big.astype(dtype)[..., ::2]
        assert not a.flags.c_contiguous or a.size <= 1
        return a
    a = (rng.standard_normal(shape) * scale).astype(dtype)
    return numpy.asfortranarray(a) if layout == "F" else a


def assert_close(actual, expected, dtype=None, tol=None):
    """Max error relative to the reference's magnitude: float32 ~1e-5, float64 ~1e-12."""
    actual = numpy.asarray(actual)
    expected = numpy.asarray(expected)
    dtype = numpy.dtype(dtype or expected.dtype)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert actual.dtype == dtype, (actual.dtype, dtype)
    if tol is None:
        tol = 2e-5 if dtype == numpy.float32 else 1e-12
    if expected.size == 0:
        return
    scale = max(1.0, float(numpy.abs(expected.astype(numpy.float64)).max()))
    err = float(numpy.abs(actual.astype(numpy.float64) - expected.astype(numpy.float64)).max())
    assert err <= tol * scale, f"max error {err:.3g} > {tol:.1g} * {scale:.3g}"
