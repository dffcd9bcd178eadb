"""The kernel fuzzer's machinery: hostile arguments, the crash guard, the comparison.

Every public kernel of ``fastnn._C`` is held to one property: on any arguments,
the call either returns what a NumPy reference *written in the test* gives, or
raises ValueError/TypeError; clean arguments must give the reference's result;
arguments that can never be right (a wrong dtype or ndim, indices out of range,
a read-only output) must raise, naming the argument. A segfault or a hang fails
the test instead of killing pytest: each kernel's whole hypothesis run happens
in a forked child (``fuzz`` fixture), which writes the example it is on to a
file first, so the parent can name the case that crashed.

Adding a kernel (conv, pool, norm, recurrent, GPU...) is one function in a
``tests/fuzz/test_fuzz_*.py`` file, registered in that file's ``CASES`` table::

    def case_my_kernel(draw, g):
        dt = g.dtype(draw)
        x = g.values(draw, (n, k), dt)           # clean float64-exact values
        X = g.arg(draw, "x", x)                   # maybe a hostile variant of it
        want = <NumPy float64 reference of x>     # written here, not Ops'
        return g.case(lambda: my_kernel(X), want, dt)

``g.arg`` may hand the kernel a non-contiguous, reversed, Fortran, read-only,
wrong-dtype, wrong-ndim or list version of the array, and records how the call
may react (``g.hazard`` adds kernel-specific ones: out of range, overlap).
Examples per kernel: 200, or the profile's ``max_examples`` when larger
(``pytest tests/fuzz --hypothesis-profile=long``: 10,000 each, see tests/README.md).
"""
import os
import select
import signal
import tempfile
import time
import traceback

import numpy
import pytest
from hypothesis import HealthCheck, Phase, given, settings, strategies as st

FLOATS = (numpy.dtype(numpy.float32), numpy.dtype(numpy.float64))
INDEX = (numpy.dtype(numpy.int32), numpy.dtype(numpy.int64))
# Relative tolerance of a float32 / float64 result against the float64 reference,
# times the magnitude the result is summed from (``scale``).
RTOL = {numpy.dtype(numpy.float32): 2e-5, numpy.dtype(numpy.float64): 1e-12}

MUST = "must raise"   # no correct answer exists: the call has to raise
MAY = "may raise"     # the kernel may copy/convert (then be right) or refuse


class Hazards:
    """What a case did to the arguments (name -> MUST/MAY and a description)."""

    def __init__(self):
        self.items = []

    def add(self, name, kind, what):
        self.items.append((name, kind, what))

    @property
    def must(self):
        return [h for h in self.items if h[1] == MUST]


class Case:
    def __init__(self, call, want, dtype, scale, hazards, compare_nonfinite):
        self.call, self.want, self.dtype, self.scale = call, want, dtype, scale
        self.hazards = hazards
        self.compare_nonfinite = compare_nonfinite


class Gen:
    """Draws the pieces of a case; one per example (it collects the hazards)."""

    MUST, MAY = MUST, MAY

    def __init__(self):
        self.h = Hazards()
        self.log = []  # what each argument was: the crash report names the case
        self.float_args = {}  # name -> the float dtype the kernel was handed

    # ------------------------------------------------------------- values
    def dtype(self, draw):
        return draw(st.sampled_from(FLOATS))

    def index_dtype(self, draw):
        return draw(st.sampled_from(INDEX))

    def dim(self, draw, lo=0, hi=9):
        # Zero-size and one-element axes come up often: they are the edge cases.
        return draw(st.one_of(st.sampled_from([0, 1, 2]), st.integers(lo, hi)))

    def values(self, draw, shape, dtype, lo=-2.0, hi=2.0, special=True):
        """Random values exactly representable in ``dtype``, as a ``dtype`` array;
        sometimes with NaN and +-inf sprinkled in (``special``)."""
        rng = numpy.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        a = rng.uniform(lo, hi, shape).astype(dtype)
        if special and a.size and draw(st.integers(0, 7)) == 0:
            k = draw(st.integers(1, a.size))
            pos = rng.integers(0, a.size, k)
            a.reshape(-1)[pos] = rng.choice(numpy.array([numpy.nan, numpy.inf, -numpy.inf],
                                                        dtype), k)
        return a

    # ---------------------------------------------------------- arguments
    def arg(self, draw, name, a, out=False, allow=("C", "F", "strided", "reversed", "readonly",
                                                   "list", "dtype", "ndim")):
        """``a`` as handed to the kernel: itself most of the time, else a hostile
        variant holding the same values. For an ``out`` (written) argument every
        variant must be refused except ones the kernel could write through."""
        kind = draw(st.sampled_from(("C",) * 8 + tuple(allow)))
        self.log.append(f"{name}: {kind} {getattr(a, 'dtype', '')}{getattr(a, 'shape', '')}")
        v = self._variant(draw, name, a, out, kind)
        if isinstance(v, numpy.ndarray) and v.dtype.kind == "f":
            self.float_args[name] = v.dtype
        return v

    def _variant(self, draw, name, a, out, kind):
        if kind == "C":
            return a
        if kind == "F":
            if a.ndim < 2 or a.flags.f_contiguous:
                return a
            self.h.add(name, MAY, "Fortran order")
            return numpy.asfortranarray(a)
        if kind == "strided":
            if a.ndim == 0:
                return a
            big = numpy.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
            v = big[..., ::2]
            v[...] = a
            self.h.add(name, MAY, "strided")
            return v
        if kind == "reversed":
            if a.ndim == 0:
                return a
            buf = numpy.empty_like(a)
            v = buf[::-1]
            v[...] = a
            if not v.flags.c_contiguous:
                self.h.add(name, MAY, "negative strides")
            return v
        if kind == "readonly":
            v = a.copy()
            v.flags.writeable = False
            self.h.add(name, MUST if out else MAY, "read-only")
            return v
        if kind == "list":
            self.h.add(name, MUST if out else MAY, "a list")
            return a.tolist()
        if kind == "dtype":
            other = {"f": numpy.float32 if a.dtype == numpy.float64 else numpy.float64,
                     "i": numpy.int16 if a.dtype.itemsize > 2 else numpy.int64}[a.dtype.kind]
            other = draw(st.sampled_from([other, numpy.float16, numpy.complex64, numpy.uint8]))
            self.h.add(name, MUST, f"dtype {numpy.dtype(other)}")
            return a.astype(other)
        if kind == "ndim":
            self.h.add(name, MUST, "one more axis")
            return a[None]
        raise AssertionError(kind)

    def hazard(self, name, kind, what):
        self.h.add(name, kind, what)

    def case(self, call, want, dtype, scale=1.0, compare_nonfinite=True):
        """``want``: the expected result (an array or a tuple of arrays/floats),
        ``scale``: the magnitude each element is summed from (tolerance)."""
        dtypes = set(self.float_args.values())
        swaps = [h for h in self.h.items if h[2] in ("dtype float32", "dtype float64")]
        if swaps and len(dtypes) == 1 and dtypes <= set(FLOATS):
            # Every float operand was swapped to the other float type: a
            # consistent call in that type, not a mix.
            self.h.items = [h for h in self.h.items if h not in swaps]
            dtype = dtypes.pop()
        return Case(call, want, numpy.dtype(dtype), scale, self.h, compare_nonfinite)


# -------------------------------------------------------------- comparison
def assert_matches(got, want, dtype, scale=1.0, compare_nonfinite=True, where="result"):
    if isinstance(want, tuple):
        assert isinstance(got, (tuple, list)) and len(got) == len(want), (where, got)
        sc = scale if isinstance(scale, tuple) else (scale,) * len(want)
        for i, (g_, w_, s_) in enumerate(zip(got, want, sc)):
            assert_matches(g_, w_, dtype, s_, compare_nonfinite, f"{where}[{i}]")
        return
    if want is None:
        assert got is None, (where, got)
        return
    want = numpy.asarray(want)
    assert isinstance(got, (numpy.ndarray, float, int)), (where, type(got))
    got_a = numpy.asarray(got)
    assert got_a.shape == want.shape, f"{where}: shape {got_a.shape}, expected {want.shape}"
    if isinstance(got, numpy.ndarray) and want.dtype.kind == "f":
        assert got.dtype == dtype, f"{where}: dtype {got.dtype}, expected {dtype}"
    if want.dtype.kind in "iub":
        numpy.testing.assert_array_equal(got_a, want, err_msg=where)
        return
    g64 = got_a.astype(numpy.float64)
    w64 = want.astype(numpy.float64)
    fin_w = numpy.isfinite(w64)
    fin_g = numpy.isfinite(g64)
    if compare_nonfinite:
        bad = fin_w != fin_g
        assert not bad.any(), (f"{where}: finite/non-finite differ at {numpy.argwhere(bad)[:5]}"
                               f": got {g64[bad][:5]}, expected {w64[bad][:5]}")
        both = fin_w
    else:
        both = fin_w & fin_g
    scale = numpy.broadcast_to(numpy.asarray(scale, numpy.float64), w64.shape)
    # Where the scale itself overflowed, the comparison says nothing useful.
    both = both & numpy.isfinite(scale)
    rtol = RTOL[numpy.dtype(dtype)]
    err = numpy.abs(g64 - w64)
    tol = rtol * (numpy.abs(w64) + scale) + numpy.finfo(dtype).tiny * 4
    bad = both & ~(err <= tol)
    assert not bad.any(), (f"{where}: {bad.sum()} of {bad.size} elements off, e.g. at "
                           f"{numpy.argwhere(bad)[:3].tolist()}: got {g64[bad][:3]}, "
                           f"expected {w64[bad][:3]} (tolerance {tol[bad][:3]})")


def check_case(case):
    """The property, for one drawn case."""
    must = case.hazards.must
    try:
        got = case.call()
    except (ValueError, TypeError) as e:
        if not case.hazards.items:
            raise AssertionError(f"clean arguments were refused: {e!r}") from e
        if len(case.hazards.items) == 1:
            # The one thing wrong must be named as the caller wrote it.
            name = case.hazards.items[0][0]
            assert name in str(e), f"the message does not name {name!r}: {e!r}"
        return
    assert not must, f"accepted {must}; expected a ValueError or TypeError"
    assert_matches(got, case.want, case.dtype, case.scale, case.compare_nonfinite)


# ------------------------------------------------------------ crash guard
def examples():
    """200 per kernel, or the profile's max_examples when it asks for more."""
    return max(200, settings().max_examples)


def run_in_child(fn, timeout):
    """Run ``fn()`` in a forked child; raise AssertionError with its traceback,
    or naming the signal that killed it (and the case it was on), or on a hang.
    The forked child runs fastnn's kernels on one thread (fastnn/threads.py)."""
    fd, progress = tempfile.mkstemp(prefix="fastnn-fuzz-")
    os.close(fd)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        os.close(r)
        code = 0
        try:
            os.environ["FASTNN_FUZZ_PROGRESS"] = progress
            fn()
            msg = b""
        except BaseException:
            msg = traceback.format_exc().encode()
            code = 1
        try:
            while msg:
                msg = msg[os.write(w, msg):]
        finally:
            os._exit(code)
    os.close(w)
    chunks, deadline = [], time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([r], [], [], left)[0]:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                raise AssertionError(f"no result after {timeout} s (a hang?); last case: "
                                     f"{_read(progress)}")
            chunk = os.read(r, 65536)
            if not chunk:
                break
            chunks.append(chunk)
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(r)
    last = _read(progress)
    os.unlink(progress)
    if os.WIFSIGNALED(status):
        raise AssertionError(f"the kernel crashed: killed by signal "
                             f"{signal.Signals(os.WTERMSIG(status)).name} on case: {last}")
    if os.WEXITSTATUS(status) != 0:
        raise AssertionError("the property failed in the child:\n"
                             + b"".join(chunks).decode(errors="replace"))


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return "?"


def fuzz_kernel(case_fn, n_examples=None):
    """The hypothesis run of one case function (called in the child)."""
    progress = os.environ.get("FASTNN_FUZZ_PROGRESS")

    @settings(max_examples=n_examples or examples(), deadline=None, database=None,
              derandomize=settings().derandomize, suppress_health_check=list(HealthCheck),
              phases=[Phase.explicit, Phase.generate, Phase.shrink])
    @given(st.data())
    def prop(data):
        g = Gen()
        case = case_fn(data.draw, g)
        if progress:
            # Written before the call: if it segfaults, the parent reads this.
            with open(progress, "w") as f:
                f.write(f"{case_fn.__name__}: {'; '.join(g.log)}; hazards {case.hazards.items}")
        check_case(case)

    prop()


@pytest.fixture
def fuzz():
    """``fuzz(case_fn)``: the property over ``case_fn``'s cases, crash-guarded."""
    def run(case_fn):
        n = examples()
        run_in_child(lambda: fuzz_kernel(case_fn, n), timeout=max(120, n * 0.2))
    return run
