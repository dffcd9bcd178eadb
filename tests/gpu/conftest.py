"""The GPU tests' fixture: ``gpu`` is the "cupy" backend, or a skip that says
why there is none ("CuPy is not installed: ..." / "no CUDA device: ..."; CI
allows skips naming gpu, cupy or cuda: tests/conftest.py). Tests that need
the GPU carry ``@pytest.mark.gpu`` (``pytest -m gpu`` runs them alone:
bench/gpu_check.sh).

``FASTNN_GPU_TESTS_ON=numpy`` (or ``strict``, ``reference``) runs the GPU
tests with that CPU backend in place of "cupy": a check of the tests' own
code (references, tolerances, call signatures) on a machine without a GPU.
It proves nothing about CupyOps and is never set by CI; the tests that need
CuPy itself still skip."""
import os

import pytest

_REASON = []


def gpu_unavailable_reason():
    """None when the "cupy" backend can run here, else why not (cached)."""
    if not _REASON:
        from fastnn.backend.cupy_ops import BackendUnavailable, import_cupy
        try:
            import_cupy()
            _REASON.append(None)
        except BackendUnavailable as e:
            cause = e.__cause__
            if isinstance(cause, ImportError):
                _REASON.append(f"CuPy is not installed ({cause})")
            else:
                _REASON.append(f"no CUDA device: {e}")
    return _REASON[0]


@pytest.fixture(scope="session")
def gpu():
    from fastnn.backend import get_instance
    stand_in = os.environ.get("FASTNN_GPU_TESTS_ON")
    if stand_in:
        return get_instance(stand_in)
    reason = gpu_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    return get_instance("cupy")
