"""What of the GPU backend runs without a GPU: the registry, lazy import,
the errors that say why "cupy" is unavailable, the nvcc compile check of the
CUDA code, and CupyOps' own array bookkeeping run over the strict backend's
namespace in place of CuPy.

The stand-in is honest for the methods written only against the array API
(``csr_take_rows``, ``column_sums``, ``masked_sq_error``, ``maxout_backward``,
the transfers): the strict namespace is NumPy behind a wall that refuses host
data, as CuPy's is, so a host array slipping into them fails here as it
would on the GPU. It says nothing about the kernels (ElementwiseKernel,
RawModule, cuSPARSE): tests/gpu/test_cupy_ops.py checks those on a GPU, and
tools/cuda_compile_check.sh compiles them with nvcc.
"""
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import types

import numpy
import pytest
import scipy.sparse

import fastnn
from fastnn import backend as backend_mod
from fastnn.backend import cupy_ops, get_backend, get_instance
from fastnn.backend.cupy_ops import BackendUnavailable, CupyOps, import_cupy
from fastnn.backend.ops import ACTIVATIONS, CSR
from fastnn.backend.strict import StrictArray

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run_python(code, extra_path=()):
    # The fastnn these tests import (an installed copy in CI, the checkout built
    # in place here), run from a neutral folder: from the checkout's root, ``-c``
    # would put its uncompiled sources first on sys.path.
    here = os.path.dirname(os.path.dirname(os.path.abspath(fastnn.__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([here, *extra_path, env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          cwd=tempfile.gettempdir(), timeout=120)


# ------------------------------------------------------------ registry, import
def test_import_fastnn_does_not_import_cupy():
    # A model built and trained on the CPU, the registry listed: still no CuPy.
    r = _run_python(
        "import sys, numpy, fastnn\n"
        "from fastnn import layers, backend\n"
        "assert 'cupy' in backend.available_backends()\n"
        "m = fastnn.Sequential([fastnn.Input((3,)), layers.Dense(2)])\n"
        "m.compile('sgd', 'mse'); m.fit(numpy.ones((4, 3)), numpy.ones((4, 2)), verbose=0)\n"
        "import fastnn.recsys\n"
        "print(sorted(k for k in sys.modules if k.split('.')[0] in ('cupy', 'cupyx')))\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_the_registry_knows_cupy_and_its_alias_gpu():
    names = backend_mod.available_backends()
    assert "cupy" in names and "gpu" in names


@pytest.fixture
def fresh_registry(monkeypatch):
    """The backend registry and CupyOps' singleton as if "cupy" had never been
    asked for (a GPU run may have built it already)."""
    monkeypatch.setattr(cupy_ops, "_SHARED", [])
    monkeypatch.setattr(backend_mod, "_INSTANCES",
                        {k: v for k, v in backend_mod._INSTANCES.items()
                         if k not in ("cupy", "gpu")})


def _no_cupy(monkeypatch):
    # None in sys.modules makes ``import cupy`` raise ImportError.
    for name in ("cupy", "cupyx", "cupyx.scipy", "cupyx.scipy.sparse"):
        monkeypatch.setitem(sys.modules, name, None)


def test_missing_cupy_says_so_and_how_to_install(monkeypatch, fresh_registry):
    _no_cupy(monkeypatch)
    before = get_backend()
    for attempt in (import_cupy, CupyOps, lambda: fastnn.set_backend("cupy"),
                    lambda: get_instance("gpu")):
        with pytest.raises(BackendUnavailable, match=r"needs CuPy, which is not installed.*"
                                                     r'pip install "fastnn\[gpu\]"'):
            attempt()
    assert get_backend() is before  # a failed switch leaves the default alone
    with pytest.raises(BackendUnavailable, match="not installed"):
        with fastnn.use_backend("cupy"):
            pass
    assert get_backend() is before


def test_missing_cupy_fails_at_the_call_that_asks_for_it(monkeypatch, fresh_registry):
    from fastnn import layers
    from fastnn.recsys import AutoRec
    _no_cupy(monkeypatch)
    with pytest.raises(BackendUnavailable, match="CuPy"):
        AutoRec(hidden=3, backend="cupy")
    with pytest.raises(BackendUnavailable, match="CuPy"):
        fastnn.Sequential([fastnn.Input((3,)), layers.Dense(2)], backend="cupy")
    model = fastnn.Sequential([fastnn.Input((3,)), layers.Dense(2)])
    model.compile("sgd", "mse")
    with pytest.raises(BackendUnavailable, match="CuPy"):
        model.to("cupy")
    assert model.ops.name == "numpy"  # the model is left where it was, and works
    model.fit(numpy.ones((4, 3)), numpy.ones((4, 2)), verbose=0)


def _fake_cupy(monkeypatch, get_count):
    """A module named cupy whose CUDA runtime fails as CuPy's does on a
    machine without a device: only what import_cupy reads before the check."""
    cupy = types.ModuleType("cupy")
    cupy.__version__ = "99.0.0"
    cupy.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=get_count))
    cupyx = types.ModuleType("cupyx")
    cupyx.scipy = types.ModuleType("cupyx.scipy")
    cupyx.scipy.sparse = types.ModuleType("cupyx.scipy.sparse")
    for name, mod in (("cupy", cupy), ("cupyx", cupyx), ("cupyx.scipy", cupyx.scipy),
                      ("cupyx.scipy.sparse", cupyx.scipy.sparse)):
        monkeypatch.setitem(sys.modules, name, mod)


class CUDARuntimeError(RuntimeError):
    pass


def test_cupy_without_a_device_names_the_cuda_error(monkeypatch, fresh_registry):
    def fail():
        raise CUDARuntimeError("cudaErrorInsufficientDriver: CUDA driver version is "
                               "insufficient for CUDA runtime version")
    _fake_cupy(monkeypatch, fail)
    with pytest.raises(BackendUnavailable, match=r"found CuPy 99\.0\.0 but no usable CUDA "
                                                 r"device: CUDARuntimeError: cudaErrorInsuff"):
        fastnn.set_backend("cupy")
    _fake_cupy(monkeypatch, lambda: 0)
    with pytest.raises(BackendUnavailable, match=r"no CUDA device \(cupy.cuda.runtime"):
        CupyOps()


def test_the_real_cupy_without_a_device_gives_the_same_error():
    if importlib.util.find_spec("cupy") is None:
        pytest.skip("CuPy is not installed (the fake-CuPy test above covers the message)")
    r = _run_python(
        "from fastnn.backend.cupy_ops import BackendUnavailable, import_cupy\n"
        "try:\n    import_cupy()\nexcept BackendUnavailable as e:\n    print('ERR', e)\n"
        "else:\n    print('DEVICE')\n")
    assert r.returncode == 0, r.stderr
    if r.stdout.startswith("DEVICE"):
        pytest.skip("a CUDA device is present: no no-device message to check (GPU machine)")
    assert "but no usable CUDA device" in r.stdout and "CUDARuntimeError" in r.stdout


# --------------------------------------------------------------- CUDA sources
def test_the_cuda_sources_hold_the_kernels_cupy_ops_calls():
    src = cupy_ops.cuda_source("sparse.cu")
    for name in ("fastnn_sddmm_f32", "fastnn_sddmm_f64"):
        assert f"FASTNN_SDDMM({name}," in src
    assert not any(line.startswith("#include") for line in src.splitlines())  # NVRTC: none


def test_the_fused_kernel_table_covers_forward_backward_and_epilogue():
    acts = {key[1] for key in cupy_ops.ELEMENTWISE if key[0] == "act"}
    assert acts == {key[1] for key in cupy_ops.ELEMENTWISE if key[0] == "actgrad"} \
        == {key[1] for key in cupy_ops.ELEMENTWISE if key[0] == "bias_act"}
    assert acts == set(ACTIVATIONS) - {"softmax"}  # softmax is a row reduction: the reference


def test_nvcc_compiles_every_cuda_kernel_for_sm90():
    if not os.path.isfile(os.path.join(ROOT, "tools", "cuda_compile_check.sh")):
        pytest.skip("tools/ and csrc/ not beside the tests (installed copy): no CUDA sources "
                    "to compile")
    if shutil.which("nvcc") is None:
        pytest.skip("nvcc (the CUDA compiler) is not installed: the CUDA compile check "
                    "tools/cuda_compile_check.sh cannot run")
    r = subprocess.run(["bash", os.path.join(ROOT, "tools", "cuda_compile_check.sh")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ok   csrc/cuda/sparse.cu" in r.stdout
    assert "elementwise.cu (40 PTX" in r.stdout  # 20 kernels x {float, double}


# --------------------------------------------- CupyOps over a stand-in for CuPy
class _StandInNamespace:
    """The strict backend's xp (NumPy behind a wall) with CuPy's one extra
    name that CupyOps uses outside the kernels, ``asnumpy``, as the strict
    backend's counted transfer."""

    def __init__(self, strict):
        self._strict = strict
        self.ndarray = StrictArray

    def asnumpy(self, x):
        return self._strict.to_numpy(x)

    def __getattr__(self, name):
        return getattr(self._strict.xp, name)


@pytest.fixture
def standin():
    strict = get_instance("strict")
    strict.reset_transfers()
    ops = CupyOps(xp=_StandInNamespace(strict))
    return ops, strict


def _csr(rng, n, m, density=0.35, dtype="float32"):
    A = scipy.sparse.random(n, m, density=density, format="csr", random_state=rng,
                            dtype=numpy.float64).astype(dtype)
    A = scipy.sparse.csr_matrix(scipy.sparse.diags((numpy.arange(n) != 2).astype(dtype)) @ A)
    A.eliminate_zeros()  # row 2 empty
    A.sort_indices()
    return A


def test_standin_transfers_are_the_documented_ones(standin):
    ops, strict = standin
    x = numpy.arange(6, dtype=numpy.float32).reshape(2, 3)
    d = ops.asarray(x)
    assert ops.is_native(d) and not ops.is_native(x) and not ops.is_host
    numpy.testing.assert_array_equal(ops.to_numpy(d), x)
    assert ops.fetch([d.sum(), 2, numpy.float32(1.5)]) == [15.0, 2.0, 1.5]
    assert strict.transfers == {"to_device": 1, "to_host": 2}  # fetch: one for its arrays


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_standin_csr_take_rows_gathers_values_on_the_device(standin, rng, dtype):
    ops, strict = standin
    A = _csr(rng, 9, 7, dtype=dtype)
    device = CSR(A.indptr, A.indices, ops.asarray(A.data), A.shape)
    strict.reset_transfers()
    rows = numpy.array([8, 2, 0, 0, 5])  # any order, repeated, the empty row
    got = ops.csr_take_rows(device, rows)
    want = A[rows]
    assert got.shape == want.shape and type(got.data) is StrictArray
    numpy.testing.assert_array_equal(got.indptr, want.indptr)
    numpy.testing.assert_array_equal(got.indices, want.indices)
    assert strict.transfers == {"to_device": 1}  # the positions, once
    numpy.testing.assert_array_equal(ops.to_numpy(got.data), want.data)
    empty = ops.csr_take_rows(device, numpy.zeros(0, dtype=numpy.int64))
    assert empty.shape == (0, 7) and empty.nnz == 0


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_standin_column_sums(standin, rng, dtype):
    ops, _ = standin
    A = _csr(rng, 8, 11, dtype=dtype)
    vals = rng.standard_normal(A.nnz).astype(dtype)
    want = numpy.zeros(11)
    for r in range(8):
        for p in range(A.indptr[r], A.indptr[r + 1]):
            want[A.indices[p]] += vals[p]
    got = ops.column_sums(A, ops.asarray(vals))
    assert got.dtype == dtype
    numpy.testing.assert_allclose(ops.to_numpy(got), want, rtol=1e-6, atol=1e-6)
    out = ops.asarray(numpy.ones(11, dtype=dtype))
    assert ops.column_sums(A, ops.asarray(vals), out=out) is out
    numpy.testing.assert_allclose(ops.to_numpy(out), want + 1, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("weighted", [False, True])
def test_standin_masked_sq_error_stays_on_the_device(standin, rng, weighted):
    ops, strict = standin
    p, t, w = (rng.standard_normal(13).astype("float32") for _ in range(3))
    args = [ops.asarray(a) for a in ((p, t, w) if weighted else (p, t))]
    strict.reset_transfers()
    loss, grad = ops.masked_sq_error(*args)
    assert not strict.transfers  # no sync: the loss is a 0-d device array
    assert type(loss) is StrictArray and loss.shape == () and loss.dtype == numpy.float64
    ww = w.astype(numpy.float64) if weighted else 1.0
    d = p.astype(numpy.float64) - t
    numpy.testing.assert_allclose(ops.fetch([loss])[0], (ww * d * d).sum(), rtol=1e-6)
    assert grad.dtype == numpy.float32
    numpy.testing.assert_allclose(ops.to_numpy(grad), 2 * ww * d, rtol=1e-5, atol=1e-6)


def test_standin_maxout_backward_routes_each_gradient_to_its_winner(standin, rng):
    ops, _ = standin
    n, units, pieces = 3, 4, 3
    idx = rng.integers(0, pieces, (n, units)).astype(numpy.int32)
    dy = rng.standard_normal((n, units)).astype("float32")
    want = numpy.zeros((n, units, pieces), dtype="float32")
    for i in range(n):
        for u in range(units):
            want[i, u, idx[i, u]] = dy[i, u]
    got = ops.maxout_backward(ops.asarray(dy), ops.asarray(idx), pieces)
    numpy.testing.assert_array_equal(ops.to_numpy(got), want.reshape(n, units * pieces))


# ---------------------------------------- AutoRec's backend argument (no GPU)
def test_autorec_backend_argument_places_fit_and_load(tmp_path):
    """``AutoRec(..., backend=)`` and ``AutoRec.load(..., backend=)``, shown on
    the strict backend (a device-like one) while the default stays "numpy":
    the model computes there, equals the reference backend's model bit for
    bit (the strict kernels are the reference math), and loads on either."""
    from fastnn.recsys import AutoRec
    rng = numpy.random.default_rng(0)
    dense = numpy.where(rng.random((20, 15)) < 0.35, rng.integers(1, 6, (20, 15)), 0)
    train = scipy.sparse.csr_matrix(dense.astype(float))
    settings = dict(hidden=4, batch_size=5, lam=0.1, learning_rate=0.02, seed=2)
    models = {}
    for backend in ("strict", "reference"):
        models[backend] = AutoRec(**settings, backend=backend)
        models[backend].fit(train, epochs=3, verbose=0)
    assert get_backend().name == "numpy"
    strict, ref = models["strict"], models["reference"]
    assert strict.ops is get_instance("strict") and type(strict.W) is StrictArray
    assert strict.history == ref.history
    for a, b in zip(strict.get_weights(), ref.get_weights()):
        numpy.testing.assert_array_equal(a, b)
    strict.save(tmp_path / "m.fnn")
    users, items = numpy.arange(20), numpy.arange(20) % 15
    want = strict.predict(users, items)
    for backend in ("numpy", "strict", None):
        loaded = AutoRec.load(tmp_path / "m.fnn", backend=backend)
        assert loaded.ops.name == (backend or "numpy")
        numpy.testing.assert_allclose(loaded.predict(users, items), want, rtol=1e-5, atol=1e-5)
