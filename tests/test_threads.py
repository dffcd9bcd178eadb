"""The thread policy (fastnn/threads.py + csrc/common/threads.h): its
decisions, that every kernel module follows the same one, that results do not
depend on the thread count, that SciPy's BLAS is left as the user set it, and
that a child made by fork() runs kernels instead of hanging (each fork case
runs in its own process group under a timeout, so a hang fails the test)."""
import ctypes
import glob
import importlib
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

import numpy
import pytest

import fastnn
from fastnn import threads
from fastnn.testing import assert_close

# The fastnn under test (an installed copy in CI, a checkout built in place
# locally), never the test file's checkout: child processes import the same one.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(fastnn.__file__)))
KERNEL_DIR = os.path.join(ROOT, "fastnn", "_C")
# Children run from a neutral folder: from the repository root, `python -c`
# would import the uncompiled sources there.
NEUTRAL_CWD = tempfile.gettempdir()
MODULES = sorted({os.path.basename(p).split(".")[0]
                  for p in glob.glob(os.path.join(KERNEL_DIR, "*.so"))
                  + glob.glob(os.path.join(KERNEL_DIR, "*.pyd"))})
MIN_WORK = 262144.0  # FASTNN_PARALLEL_MIN_WORK in csrc/common/threads.h


@pytest.fixture(autouse=True)
def restore_policy():
    cap, adapt = threads.get_num_threads(), threads._state.adapt
    yield
    threads.set_num_threads(cap, adapt=bool(adapt))


def _modules():
    return [importlib.import_module("fastnn._C." + name) for name in MODULES]


# ------------------------------------------------------------------ decisions
def test_every_kernel_module_takes_the_one_policy():
    # A kernel file without `include "common/threads.pxi"` would keep its own
    # thread count (and ignore set_num_threads and fork): fail here instead.
    assert MODULES, "no compiled kernel modules found"
    missing = [m.__name__ for m in _modules() if not hasattr(m, "_threads_for")]
    assert not missing, f"kernel modules outside the thread policy: {missing}"


@pytest.mark.parametrize("n", [1, 2, 3])
def test_every_module_decides_alike(n):
    threads.set_num_threads(n, adapt=False)
    for mod in _modules():
        assert mod._threads_for(MIN_WORK - 1) == 1, mod.__name__  # below the threshold
        assert mod._threads_for(MIN_WORK) == n, mod.__name__
        assert mod._threads_for(1e12) == n, mod.__name__


def test_set_and_get_num_threads():
    threads.set_num_threads(3)
    assert fastnn.get_num_threads() == 3
    assert 1 <= threads.threads_now() <= 3
    fastnn.set_num_threads(1)
    assert fastnn.get_num_threads() == 1 and threads.threads_now() == 1
    assert fastnn.set_num_threads is threads.set_num_threads


@pytest.mark.parametrize("bad", [0, -2])
def test_set_num_threads_refuses_fewer_than_one(bad):
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        fastnn.set_num_threads(bad)


@pytest.mark.parametrize("bad", [1.5, "2", None, True])
def test_set_num_threads_refuses_non_integers(bad):
    with pytest.raises(TypeError, match="n must be an integer >= 1"):
        fastnn.set_num_threads(bad)


def test_numpy_integers_are_accepted():
    fastnn.set_num_threads(numpy.int64(2))
    assert fastnn.get_num_threads() == 2


def test_the_default_is_the_cpus_we_may_use_or_omp_num_threads():
    code = "import fastnn; print(fastnn.get_num_threads())"
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=NEUTRAL_CWD,
                         capture_output=True,
                         text=True, check=True, timeout=120)
    assert int(out.stdout) == len(os.sched_getaffinity(0))
    env["OMP_NUM_THREADS"] = "1"
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=NEUTRAL_CWD,
                         capture_output=True,
                         text=True, check=True, timeout=120)
    assert int(out.stdout) == 1


def test_the_environment_is_left_alone():
    # The old policy wrote OMP_WAIT_POLICY/GOMP_SPINCOUNT, which an OpenMP
    # runtime loaded first (torch's) never reads.
    code = ("import os, fastnn, fastnn._C.sparse; "
            "print(os.environ.get('OMP_WAIT_POLICY'), os.environ.get('GOMP_SPINCOUNT'))")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=NEUTRAL_CWD,
                         capture_output=True,
                         text=True, check=True, timeout=120)
    assert out.stdout.split() == ["None", "None"]


def test_busy_cpus_bring_the_count_down():
    # One spinning process per CPU we may use: others keep every CPU busy, so
    # the adaptive policy must come down to one thread within a few samples.
    from fastnn._C import sparse
    ncpu = len(os.sched_getaffinity(0))
    if ncpu < 2:
        pytest.skip("one CPU: nothing to come down from")
    threads.set_num_threads(ncpu, adapt=True)
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(ncpu)]
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and threads.threads_now() > 1:
            sparse._threads_for(1e12)  # the kernels' own call samples the load
            time.sleep(0.05)
        assert threads.threads_now() == 1
        assert sparse._threads_for(1e12) == 1
    finally:
        for h in hogs:
            h.kill()
            h.wait()


def test_without_adapt_the_count_stays_put_under_load():
    from fastnn._C import dense
    threads.set_num_threads(2, adapt=False)
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        t = time.monotonic()
        while time.monotonic() - t < 0.6:
            assert dense._threads_for(1e12) == 2
            time.sleep(0.05)
    finally:
        hog.kill()
        hog.wait()


# ------------------------------------------------- same results, 1 or 2 threads
def _both(fn):
    """fn() with one thread and with two (forced), as a pair of results."""
    threads.set_num_threads(1)
    one = fn()
    threads.set_num_threads(2, adapt=False)
    two = fn()
    return one, two


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("m,k,n,ta,tb", [(300, 257, 129, False, False), (37, 513, 700, False, True),
                                         (515, 300, 33, True, False), (200, 200, 200, True, True),
                                         (1, 4096, 1000, False, False)])
def test_gemm_slices_match_numpy_and_one_thread(dtype, m, k, n, ta, tb):
    # Large enough to be sliced (m * n * k above the threshold); the slicing
    # runs along C's longer side, so the shapes cover both sides and every flag.
    from fastnn._C import blas
    rng = numpy.random.default_rng(0)
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    c0 = rng.standard_normal((m, n)).astype(dtype)
    expected = 0.5 * ((a.T if ta else a).astype(numpy.float64) @ (b.T if tb else b)) + 2.0 * c0
    one, two = _both(lambda: blas.gemm(a, b, trans_a=ta, trans_b=tb, out=c0.copy(), alpha=0.5,
                                       beta=2.0))
    assert_close(two, expected.astype(dtype), tol=1e-4 if dtype == numpy.float32 else 1e-12)
    assert_close(two, one, tol=1e-5 if dtype == numpy.float32 else 1e-13)


def test_dense_kernels_match_with_one_and_two_threads():
    from fastnn._C import dense
    rng = numpy.random.default_rng(1)
    x = rng.standard_normal((1031, 300)).astype(numpy.float32)
    W = rng.standard_normal((300, 517)).astype(numpy.float32) * 0.1
    b = rng.standard_normal(517).astype(numpy.float32)
    dy = rng.standard_normal((1031, 517)).astype(numpy.float32)

    def run():
        y = dense.dense_forward(x, W, b, activation="relu")
        dW, db = numpy.zeros_like(W), numpy.zeros_like(b)
        dx = dense.dense_backward(x, W, y, dy, dW, db, activation="relu")
        return y, dW, db, dx
    one, two = _both(run)
    z = x.astype(numpy.float64) @ W + b
    assert_close(two[0], numpy.maximum(z, 0).astype(numpy.float32), tol=1e-4)
    for p, q in zip(one, two):
        assert_close(q, p, tol=1e-5)
    numpy.testing.assert_array_equal(one[2], two[2])  # db: fixed summation order


def test_adam_and_activations_are_identical_with_one_and_two_threads():
    from fastnn._C import activations, optim
    rng = numpy.random.default_rng(2)
    g = rng.standard_normal(300007).astype(numpy.float32)

    def run():
        p = numpy.linspace(-1, 1, g.size, dtype=numpy.float32)
        m, v = numpy.zeros_like(p), numpy.zeros_like(p)
        for step in (1, 2, 3):
            optim.adam_update(p, g, m, v, 1e-3, 0.9, 0.999, 1e-7, step)
        s = activations.softmax(g[:280000].reshape(-1, 7))
        t = activations.activation_forward("tanh", g)
        return p, m, v, s, t
    for p, q in zip(*_both(run)):
        numpy.testing.assert_array_equal(p, q)


def test_autorec_fit_is_identical_with_one_and_two_threads():
    from fastnn.recsys import AutoRec, synthetic_ratings
    r = synthetic_ratings(n_users=400, n_items=600, density=0.08, seed=3)

    def run():
        model = AutoRec(hidden=64, seed=0)
        hist = model.fit(r, epochs=2, verbose=0)
        return numpy.array(hist["loss"]), model.predict([0, 5, 9], [1, 2, 3])
    for p, q in zip(*_both(run)):
        numpy.testing.assert_array_equal(p, q)


# ---------------------------------------------------------------------- BLAS
def test_the_users_blas_setting_is_restored_after_each_call():
    from fastnn._C import blas
    if threads._state.blas_get is None:
        pytest.skip("SciPy's OpenBLAS not found in this process (another BLAS)")
    get = ctypes.CFUNCTYPE(ctypes.c_int)(threads._state.blas_get)
    set_ = ctypes.CFUNCTYPE(None, ctypes.c_int)(threads._state.blas_set)
    before = get()
    try:
        set_(3)
        a = numpy.ones((300, 300), numpy.float32)
        threads.set_num_threads(2, adapt=False)
        blas.gemm(a, a)
        assert get() == 3
        threads.set_num_threads(1)
        blas.gemm(a, a)
        assert get() == 3
    finally:
        set_(before)


# ---------------------------------------------------------------------- fork
FORK_PRELUDE = """
import os, sys, numpy
import fastnn
from fastnn import layers as L, threads
from fastnn.recsys import AutoRec, synthetic_ratings
threads.set_num_threads(2, adapt=False)  # the parent's OpenMP pool exists and is busy
r = synthetic_ratings(n_users=300, n_items=500, density=0.1, seed=0)
rec = AutoRec(hidden=64, seed=0)
rec.fit(r, epochs=1, verbose=0)
x = numpy.random.default_rng(0).random((4096, 300), dtype=numpy.float32)
net = fastnn.Sequential([fastnn.Input((300,)), L.Dense(512, activation="relu"),
                         L.Dense(10, activation="softmax")])
net.compile("adam", "sparse_categorical_crossentropy")
expected = net.predict(x, batch_size=4096)

def child_work(_=None):
    rec.fit(r, epochs=1, verbose=0)
    top = rec.recommend([0, 1, 2], 5)
    y = net.predict(x, batch_size=4096)
    assert numpy.allclose(y, expected, rtol=1e-4, atol=1e-6)
    return threads.get_num_threads(), len(top) > 0
"""


def _run_with_timeout(body, timeout=150):
    """Run the script in its own process group; kill the group on timeout."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-c", FORK_PRELUDE + textwrap.dedent(body)],
                            env=env, cwd=NEUTRAL_CWD, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"hung: no answer within {timeout} s (a forked child waiting on the "
                    "parent's OpenMP pool)")
    assert proc.returncode == 0, err
    return out.strip().splitlines()[-1]


def test_os_fork_child_runs_kernels_single_threaded():
    last = _run_with_timeout("""
        rfd, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.write(wfd, repr(child_work()).encode())
                code = 0
            except BaseException as e:
                os.write(wfd, repr(e).encode())
                code = 1
            os._exit(code)
        os.close(wfd)
        msg = os.read(rfd, 4096).decode()
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, msg
        print(msg, threads.get_num_threads())  # the parent keeps its threads
    """)
    assert last == "(1, True) 2"


def test_multiprocessing_pool_children_run_kernels():
    last = _run_with_timeout("""
        import multiprocessing
        with multiprocessing.get_context("fork").Pool(2) as pool:
            print(pool.map_async(child_work, range(2)).get(timeout=180))
    """)
    assert last == "[(1, True), (1, True)]"
