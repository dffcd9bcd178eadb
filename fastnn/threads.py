"""How many threads fastnn's kernels use: the one policy, shared by every
compiled kernel module (its C half is csrc/common/threads.h), and the public
``set_num_threads`` / ``get_num_threads``. Nothing else lives here.

- A loop runs on at most ``get_num_threads()`` threads (default: the CPUs this
  process may run on, or ``OMP_NUM_THREADS`` if the user set it), on one
  below a work threshold, and on fewer while other processes keep our CPUs
  busy (sampled from /proc/stat every 0.2 s): a team whose members the
  scheduler preempts stalls at every barrier.
- SciPy's BLAS is held at one thread while fastnn calls it; fastnn splits a
  large product into slices over its own threads instead. One pool, so BLAS
  threads and OpenMP threads never compete for the same cores, whichever
  OpenMP runtime (torch's, say) was loaded first and however it waits.
- In a child made by ``fork()`` every kernel runs on one thread: the parent's
  OpenMP pool does not exist there and libgomp would hang waiting for it
  (PyTorch does the same).

The state is one ctypes struct whose layout matches ``fastnn_thread_state``;
each kernel module points at it when it is imported (``_attach``).
"""
import ctypes
import os

__all__ = ["set_num_threads", "get_num_threads", "threads_now"]


class _State(ctypes.Structure):
    # Keep in step with fastnn_thread_state in csrc/common/threads.h.
    _fields_ = [("size", ctypes.c_longlong), ("last_wall_ns", ctypes.c_longlong),
                ("last_self_ns", ctypes.c_longlong), ("last_busy_ticks", ctypes.c_longlong),
                ("blas_set", ctypes.c_void_p), ("blas_get", ctypes.c_void_p),
                ("cap", ctypes.c_int), ("adapt", ctypes.c_int), ("forked", ctypes.c_int),
                ("now", ctypes.c_int), ("sampling", ctypes.c_int), ("pad_", ctypes.c_int)]


def _cpus():
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _default_cap():
    # An explicit OMP_NUM_THREADS is the user's word on threads; kept as the cap
    # so that it still limits fastnn now that loops pass their own num_threads.
    env = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if env.isdigit() and int(env) >= 1:
        return int(env)
    return _cpus()


_state = _State(size=ctypes.sizeof(_State), adapt=1)
_state.cap = _state.now = _default_cap()
_attached: list = []


def _find_blas():
    """(set, get) function addresses of the OpenBLAS that SciPy's cython_blas
    calls (the one fastnn's GEMMs use), or (None, None): found the way
    threadpoolctl finds it, among the libraries mapped into this process."""
    try:
        with open("/proc/self/maps") as f:
            paths = sorted({line.split(None, 5)[5].strip() for line in f
                            if "openblas" in line.lower() and len(line.split(None, 5)) == 6})
    except OSError:
        return None, None
    for prefix in ("scipy_openblas_", "openblas_"):  # SciPy's wheel, then a system OpenBLAS
        for path in paths:
            if "64_" in os.path.basename(path):
                continue  # NumPy's 64-bit-index copy: not the one cython_blas calls
            try:
                lib = ctypes.CDLL(path, mode=os.RTLD_NOLOAD | getattr(os, "RTLD_LAZY", 1))
                set_fn = getattr(lib, prefix + "set_num_threads")
                get_fn = getattr(lib, prefix + "get_num_threads")
            except (OSError, AttributeError):
                continue
            return (ctypes.cast(set_fn, ctypes.c_void_p).value,
                    ctypes.cast(get_fn, ctypes.c_void_p).value)
    return None, None


def _attach(attach_module):
    """Point one kernel module at the state (called from its import,
    csrc/common/threads.pxi). SciPy's BLAS is loaded by then: the kernels
    cimport it."""
    if _state.blas_set is None:
        _state.blas_set, _state.blas_get = _find_blas()
    attach_module(ctypes.addressof(_state), ctypes.sizeof(_State))
    _attached.append(attach_module)


def set_num_threads(n: int, adapt: bool = True) -> None:
    """Let fastnn's kernels use at most ``n`` threads (an integer >= 1).
    With ``adapt`` (the default) they use fewer while other processes keep
    this process's CPUs busy; ``adapt=False`` always uses ``n`` for loops
    above the work threshold. In a forked child it stays 1.

    Parameters
    ----------
    n : int
        The most threads a kernel uses (>= 1).
    adapt : bool, default True
        Use fewer while other processes keep this process's CPUs busy.

    Raises
    ------
    TypeError
        If ``n`` is not an integer.
    ValueError
        If ``n`` < 1.
    """
    if isinstance(n, bool) or not hasattr(n, "__index__"):
        raise TypeError(f"set_num_threads: n must be an integer >= 1, got {n!r}")
    n = int(n.__index__())
    if n < 1:
        raise ValueError(f"set_num_threads: n must be an integer >= 1, got {n}")
    _state.adapt = 1 if adapt else 0
    _state.cap = n
    _state.now = n
    _state.last_wall_ns = 0  # re-sample from scratch under the new cap


def get_num_threads() -> int:
    """The most threads a fastnn kernel uses (1 in a forked child)."""
    return 1 if _state.forked else _state.cap


def threads_now():
    """The threads a large loop gets right now: ``get_num_threads()``, or fewer
    while other processes keep the CPUs busy (the last 0.2 s sample)."""
    return 1 if _state.forked else max(1, min(_state.now, _state.cap))


def _after_fork_in_child():
    _state.forked = 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
