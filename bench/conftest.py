"""The benchmark suite's machinery: the PyTorch child process, the ratio table
printed at the end of a run, and the CPU and load recorded with the results.

Every benchmark test is parametrized by ``way``: "fastnn" (or "fastnn:VARIANT"),
"numpy" (the plain NumPy reference) and "torch" (PyTorch CPU), and sets
``benchmark.group`` to the hot path it times, so each group holds one hot
path done every way and pytest-benchmark's tables, ``--benchmark-compare``
and ``--benchmark-histogram`` line the ways up side by side.

PyTorch runs in one child process for the whole session (bench/_torch_cases.py),
never in this one: fastnn's and PyTorch's OpenMP/BLAS pools would otherwise
share a process and fight. The child times each case as pytest-benchmark
would (per-call seconds of each round, calls per round calibrated the same
way) and the ``torch_case`` fixture hands those times to ``benchmark.pedantic``
through a clock that replays them. So a "torch" benchmark's statistics are the
child's measured per-call times, saved and compared (``--benchmark-save``,
``--benchmark-compare``) like any other: a comparison across runs compares
like with like. ``extra_info["timed_in"]`` says so in the saved JSON.

    python -m pytest bench/ --benchmark-only                 # everything, several minutes
    python -m pytest bench/test_bench_dense.py --benchmark-only
    python -m pytest bench/ --benchmark-disable              # each case once (smoke test)
    FASTNN_BENCH_EPOCHS=5 python -m pytest bench/test_bench_autorec.py --benchmark-only
    FASTNN_BENCH_MARKDOWN=ratios.md python -m pytest bench/ --benchmark-only  # + Markdown

FASTNN_BENCH_EPOCHS: timed epochs of the epoch-sized cases (default 3);
FASTNN_BENCH_TORCH_THREADS: PyTorch's threads (default one per CPU).

A new hot path (convolution, a recurrent layer) gets a bench/test_bench_NAME.py
whose tests take ``way`` from _data.WAYS and set ``benchmark.group``, its
inputs in bench/_data.py (so both processes build the same arrays) and its
PyTorch version in bench/_torch_cases.py's CASES.

Run from the repository root with the built checkout on the path
(``PYTHONPATH=$PWD``) or with fastnn installed.
"""
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))  # the test files import _data
from _data import EPOCHS  # noqa: E402

# The PyTorch child's environment, taken before any test file imports fastnn:
# fastnn's import sets OpenMP variables in os.environ (fastnn/_C/__init__.py)
# that an OpenMP runtime loaded after it, such as torch's, would obey.
CHILD_ENV = dict(os.environ)

#: Seconds of quiet after a PyTorch case: its idle threads spin a few
#: milliseconds on the cores the next fastnn case runs on.
TORCH_SETTLE_S = 0.05


def cpu_model():
    """The CPU's model name (lscpu's "Model name", from /proc/cpuinfo)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average():
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


class TorchChild:
    """The one PyTorch process of a session, started on first use."""

    def __init__(self):
        self.proc = None
        self.info = None

    def start(self):
        self.proc = subprocess.Popen(
            [sys.executable, str(BENCH / "_torch_cases.py"), "--serve"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True, bufsize=1, env=CHILD_ENV)
        self.info = self._answer()

    def _answer(self):
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the PyTorch benchmark process ended (rc {self.proc.wait()}); "
                               f"its error is above")
        return json.loads(line)

    def run(self, request):
        if self.proc is None:
            self.start()
        self.proc.stdin.write(json.dumps(request) + "\n")
        answer = self._answer()
        time.sleep(TORCH_SETTLE_S)
        if "error" in answer:
            raise RuntimeError(f"PyTorch case {request['case']} failed:\n{answer['error']}")
        return answer

    def close(self):
        if self.proc is not None:
            self.proc.stdin.close()
            self.proc.wait(timeout=60)


def torch_installed():
    import importlib.util
    return importlib.util.find_spec("torch") is not None


@pytest.fixture(scope="session")
def torch_child():
    if not torch_installed():
        pytest.skip("PyTorch not installed (pip install torch==2.13.0 for the torch cases)")
    child = TorchChild()
    yield child
    child.close()


class ReplayClock:
    """A clock for pytest-benchmark that advances by the next measured time each
    time ``advance`` (the benchmarked call) runs: pedantic's rounds then record
    exactly the times the PyTorch child measured."""

    def __init__(self, times):
        self.times, self.now = iter(times), 0.0

    def __call__(self):
        return self.now

    def advance(self):
        self.now += next(self.times)

    def __repr__(self):  # the saved JSON's options.timer
        return "ReplayClock (times measured outside this process, replayed)"


@pytest.fixture
def torch_case(benchmark, torch_child, request):
    """``torch_case(name, epochs=False, **params)``: time PyTorch case ``name``
    (bench/_torch_cases.py) in the child and record its per-call times as this
    benchmark's rounds. ``epochs``: one warm-up, then FASTNN_BENCH_EPOCHS
    rounds of one call (as ``epoch_case``); else calibrated like
    ``benchmark(fn)``."""
    opt = request.config.getoption

    def run(name, /, epochs=False, **params):
        mode = "once" if benchmark.disabled else "epochs" if epochs else "calls"
        answer = torch_child.run(dict(
            case=name, params=params, mode=mode, rounds=EPOCHS,
            min_rounds=int(opt("benchmark_min_rounds")),
            max_time=float(opt("benchmark_max_time")),
            min_time=float(opt("benchmark_min_time"))))
        benchmark.extra_info.update(
            timed_in="PyTorch child process (bench/_torch_cases.py): per-call seconds of "
                     "each round, replayed", torch=torch_child.info["torch"],
            torch_threads=torch_child.info["threads"], calls_per_round=answer["iterations"])
        clock = ReplayClock(answer["times"])
        benchmark._timer = clock  # pytest-benchmark times rounds with this clock
        # (Disabled, pedantic makes the one call: the benchmark counts as used.)
        benchmark.pedantic(clock.advance, rounds=len(answer["times"]), iterations=1)
    return run


@pytest.fixture
def epoch_case(benchmark):
    """``epoch_case(fn)``: benchmark an epoch-sized call: one warm-up round, then
    FASTNN_BENCH_EPOCHS rounds of one call (the same as the torch child's
    "epochs" mode)."""
    def run(fn):
        benchmark.pedantic(fn, rounds=EPOCHS, warmup_rounds=1, iterations=1)
    return run


@pytest.fixture
def replay_case(benchmark):
    """``replay_case(times)``: record seconds measured elsewhere (an epoch timed
    inside ``fit`` by a callback) as this benchmark's rounds."""
    def run(times):
        clock = ReplayClock(times)
        benchmark._timer = clock
        benchmark.pedantic(clock.advance, rounds=len(times), iterations=1)
    return run


# ------------------------------------------------------------ the ratio table
_RESULTS = []  # (group, way, median s, min s) of each benchmark run
_RATES = []    # (group, way, GFLOP/s, GB/s, peak MiB) of each benchmark that records them


@pytest.fixture(autouse=True)
def _record_way(request):
    """Tags each benchmark with its way and the load when it started, and keeps
    its median and minimum for the ratio table."""
    if "benchmark" not in request.fixturenames:
        yield
        return
    benchmark = request.getfixturevalue("benchmark")
    way = request.node.callspec.params.get("way") if hasattr(request.node, "callspec") else None
    benchmark.extra_info.update(way=way, load_average=load_average())
    yield
    stats = getattr(benchmark, "stats", None)
    if way and stats is not None and benchmark.group:
        _RESULTS.append((benchmark.group, way, stats.stats.median, stats.stats.min))
        rates = record_rates(benchmark.extra_info, stats.stats.median)
        if rates is not None:
            _RATES.append((benchmark.group, way) + rates)


def record_rates(info, median):
    """From a step's work in ``info`` (``gflop``, ``gbytes``: bench/_metrics.py),
    its rates at the ``median`` seconds, set in ``info`` (the saved JSON's
    extra_info) where the test has not set them: ``gflops_per_s``,
    ``gbytes_per_s``. Returns (GFLOP/s, GB/s, peak MiB), None for what was not
    recorded, or None when the benchmark records none of them."""
    for work, rate in (("gflop", "gflops_per_s"), ("gbytes", "gbytes_per_s")):
        if work in info and rate not in info and median > 0:
            info[rate] = round(info[work] / median, 2)
    rates = (info.get("gflops_per_s"), info.get("gbytes_per_s"), info.get("peak_mib"))
    return None if rates == (None, None, None) else rates


def rate_table(rates):
    """Lines of the rates table: per benchmark way, GFLOP/s, GB/s and the peak
    MiB of one step ("-": not recorded; a peak only for the ways traced in
    this process), beside the "sgemm peak" and "memory bandwidth peak" rows."""
    def cell(v, width):
        return f"{'-':>{width}s}" if v is None else f"{v:>{width}.1f}"
    lines = [f"{'group':58s} {'way':18s} {'GFLOP/s':>9s} {'GB/s':>9s} {'peak MiB':>9s}"]
    for group, way, gflops, gbytes, peak in rates:
        lines.append(f"{group[:58]:58s} {way[:18]:18s} {cell(gflops, 9)} {cell(gbytes, 9)} "
                     f"{cell(peak, 9)}")
    return lines


def markdown_rate_table(rates):
    """The rates table as Markdown rows, written below the ratio table."""
    rows = ["| hot path | way | GFLOP/s | GB/s | peak MiB |", "|---|---|---|---|---|"]
    for group, way, *values in rates:
        cells = ["-" if v is None else f"{v:.1f}" for v in values]
        rows.append(f"| {group} | {way} | " + " | ".join(cells) + " |")
    return rows


def ratio_table(results):
    """Lines of the fastnn / reference table: per group and fastnn way, the
    median times and the ratios of medians (and of minima) to NumPy and PyTorch."""
    groups = {}
    for group, way, med, low in results:
        groups.setdefault(group, {})[way] = (med, low)
    lines = [f"{'group':58s} {'way':18s} {'fastnn ms':>10s} {'numpy ms':>10s} "
             f"{'torch ms':>10s} {'/numpy med (min)':>17s} {'/torch med (min)':>17s}"]

    def ratio(fast, ref):
        if ref is None:
            return f"{'n/a':>17s}"
        return f"{fast[0] / ref[0]:>9.3f} ({fast[1] / ref[1]:.3f})"

    def ms(t):
        return f"{t[0] * 1e3:>10.3f}" if t else f"{'-':>10s}"

    for group, ways in groups.items():
        numpy_t, torch_t = ways.get("numpy"), ways.get("torch")
        for way, fast in ways.items():
            if way.startswith("fastnn"):
                lines.append(f"{group[:58]:58s} {way[:18]:18s} {ms(fast)} {ms(numpy_t)} "
                             f"{ms(torch_t)} {ratio(fast, numpy_t)} {ratio(fast, torch_t)}")
    return lines


def markdown_table(results):
    """The ratio table as Markdown rows (for bench/RESULTS.md)."""
    groups = {}
    for group, way, med, low in results:
        groups.setdefault(group, {})[way] = (med, low)
    rows = ["| hot path | fastnn way | fastnn ms | / NumPy: median (min) "
            "| / PyTorch: median (min) |", "|---|---|---|---|---|"]
    for group, ways in groups.items():
        for way, fast in ways.items():
            if not way.startswith("fastnn"):
                continue
            cells = []
            for ref in ("numpy", "torch"):
                r = ways.get(ref)
                cells.append(f"{fast[0] / r[0]:.2f} ({fast[1] / r[1]:.2f})" if r else "n/a")
            ms = fast[0] * 1e3
            ms = f"{ms:.4g}" if ms < 1000 else f"{ms:.0f}"
            rows.append(f"| {group} | {way} | {ms} | {cells[0]} | {cells[1]} |")
    return rows


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter):
    if not _RESULTS:
        return
    tr = terminalreporter
    tr.section("fastnn / reference (ratios < 1: fastnn faster)")
    tr.write_line(f"CPU: {cpu_model()}, {os.cpu_count()} CPUs, load average now "
                  f"{load_average()}; medians of each benchmark's rounds")
    for line in ratio_table(_RESULTS):
        tr.write_line(line)
    if _RATES:
        tr.write_line("rates at the median and one step's peak memory (bench/_metrics.py):")
        for line in rate_table(_RATES):
            tr.write_line(line)
    path = os.environ.get("FASTNN_BENCH_MARKDOWN")
    if path:  # the same table in Markdown, for bench/RESULTS.md
        rows = markdown_table(_RESULTS)
        if _RATES:
            rows += [""] + markdown_rate_table(_RATES)
        Path(path).write_text("\n".join(rows) + "\n")
        tr.write_line(f"Markdown table written to {path}")


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info.update(cpu_model=cpu_model(), cpu_count=os.cpu_count(),
                        load_average=load_average(),  # when the results are saved
                        torch_threads=os.environ.get("FASTNN_BENCH_TORCH_THREADS")
                        or os.cpu_count())
