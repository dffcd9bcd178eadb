"""fastnn against the NumPy reference (``Ops``) and PyTorch CPU, a process per library.

Every case is timed by interleaved repeats: one process per library, all alive
at once, taking turns (fastnn, NumPy, PyTorch, NumPy, PyTorch, fastnn, ...: a
short block of calls each, see ``serve_case``; bench/_turns.py), so machine
noise hits all alike and each library runs with its own defaults. (In one
process they would share one OpenMP runtime, which reads its settings once:
torch's threads would then wait the way fastnn sets, not torch's own way.) The
table reports median times and the ratios of medians (and of minima, the least
noisy estimate on a shared machine). PyTorch is optional (skipped when not
installed). Every library gets ``--threads`` threads (default 2: OpenBLAS,
OpenMP and PyTorch).

    python bench/compare.py [--repeats 50] [--threads 2] [--only dense] [--markdown FILE]
"""
import argparse
import importlib.util
import os
import platform
import sys
import time


def _threads_from_argv(default=2):
    """--threads must act before NumPy, SciPy and PyTorch start their pools."""
    for i, arg in enumerate(sys.argv):
        if arg == "--threads" and i + 1 < len(sys.argv):
            return int(sys.argv[i + 1])
    return default


THREADS = _threads_from_argv()
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
    os.environ[_var] = str(THREADS)
# The children's environment, taken before fastnn is imported here, so that
# nothing fastnn does in this process can reach the PyTorch child.
CHILD_ENV = dict(os.environ)

import numpy  # noqa: E402

# The PyTorch process (serve_case) loads torch before fastnn: importing fastnn
# sets OpenMP's waiting policy in the environment (fastnn/_C/__init__.py), which
# an OpenMP runtime loaded after it would read. Other processes never load torch.
torch = None
if "--serve" in sys.argv[:-1] and sys.argv[sys.argv.index("--serve") + 1] == "torch":
    import torch
    torch.set_num_threads(THREADS)

# Run from a checkout (built in place) without installing fastnn.
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _turns import serve, take_turns  # noqa: E402

from fastnn._C.blas import gemm  # noqa: E402
from fastnn.backend import NumpyOps, Ops  # noqa: E402

LIBRARIES = ("fastnn", "numpy", "torch")

FAST, REF = NumpyOps(), Ops()


def gemm_case(m, k, n):
    rng = numpy.random.default_rng(0)
    a = rng.standard_normal((m, k)).astype(numpy.float32)
    b = rng.standard_normal((k, n)).astype(numpy.float32)
    out = numpy.empty((m, n), numpy.float32)
    fns = {"fastnn": lambda: gemm(a, b, out=out),
           "numpy": lambda: numpy.matmul(a, b, out=out)}
    if torch is not None:
        ta, tb, tout = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(out)
        fns["torch"] = lambda: torch.matmul(ta, tb, out=tout)
    return fns


def dense_case(need_dx, m=128, k=784, n=256):
    """Forward + backward of a 784->256 ReLU layer. need_dx=False is a first layer:
    fastnn skips dx, PyTorch gets an input that does not require grad."""
    rng = numpy.random.default_rng(0)
    x = rng.standard_normal((m, k)).astype(numpy.float32)
    W = (rng.standard_normal((k, n)) * 0.05).astype(numpy.float32)
    b = numpy.zeros(n, numpy.float32)
    dy = rng.standard_normal((m, n)).astype(numpy.float32)
    dW, db = numpy.zeros_like(W), numpy.zeros_like(b)

    def step(ops):
        y = ops.dense_forward(x, W, b, "relu")
        return ops.dense_backward(x, W, y, dy, dW, db, "relu", need_dx=need_dx)

    # The NumPy reference (Ops) honours need_dx too: same work as fastnn.
    fns = {"fastnn": lambda: step(FAST), "numpy": lambda: step(REF)}
    if torch is not None:
        tx = torch.from_numpy(x).requires_grad_(need_dx)
        tW = torch.from_numpy(W.T.copy()).requires_grad_(True)  # (out, in) as nn.Linear
        tb = torch.from_numpy(b).requires_grad_(True)
        tdy = torch.from_numpy(dy)

        def torch_step():
            y = torch.relu(torch.nn.functional.linear(tx, tW, tb))
            y.backward(tdy)
        fns["torch"] = torch_step
    return fns


def adam_case(n=1 << 20):
    rng = numpy.random.default_rng(0)
    p, g = (rng.standard_normal(n).astype(numpy.float32) for _ in range(2))
    state = {name: [p.copy(), g, numpy.zeros_like(p), numpy.zeros_like(p)] for name in
             ("fastnn", "numpy")}
    counter = {"fastnn": 0, "numpy": 0}

    def step(name, ops):
        counter[name] += 1
        ops.adam_update(*state[name], 1e-3, 0.9, 0.999, 1e-7, counter[name])

    fns = {"fastnn": lambda: step("fastnn", FAST), "numpy": lambda: step("numpy", REF)}
    if torch is not None:
        tp = torch.from_numpy(p.copy()).requires_grad_(True)
        tp.grad = torch.from_numpy(g.copy())
        opt = torch.optim.Adam([tp], lr=1e-3, eps=1e-7)
        fns["torch"] = opt.step
    return fns


CASES = [
    ("gemm 1024x1024x1024", lambda: gemm_case(1024, 1024, 1024)),
    ("gemm 128x784x256", lambda: gemm_case(128, 784, 256)),
    ("dense 128x784->256 relu fwd+bwd, need dx (torch: x requires grad)",
     lambda: dense_case(True)),
    ("dense 128x784->256 relu fwd+bwd, no dx (torch: x no grad)", lambda: dense_case(False)),
    ("adam step, 1M float32 params", adam_case),
]


def serve_case(library, case, block=5, warmup=2, settle=0.3):
    """Child: build case ``case`` (an index into CASES) for ``library`` (torch is
    loaded, first, only in the PyTorch process: see the imports), call it
    ``warmup`` times, say "ready"; then for each turn make one untimed call and
    answer the mean time of ``block`` calls. fastnn (SciPy's OpenBLAS), NumPy
    (its own OpenBLAS) and PyTorch (its own OpenMP pool) each keep idle threads
    spinning for a while after a call (OpenBLAS's for up to about 0.1 s): each
    turn first sleeps ``settle`` seconds, so the previous process's spinners
    have stopped, then the untimed call and the block measure the steady state
    of a loop of calls, as in training. (The dense case with dx, one run of 20
    turns each: 2.02, 2.65 and 3.24 ms a call for fastnn, NumPy and PyTorch with
    no sleep, 1.34, 1.17 and 1.54 ms with 0.3 s.)"""
    fn = CASES[case][1]()[library]
    for _ in range(warmup):
        fn()

    def turn():
        time.sleep(settle)
        fn()
        t0 = time.perf_counter()
        for _ in range(block):
            fn()
        return (time.perf_counter() - t0) / block

    serve(turn, {"ready": True})


def measure(case, libraries, repeats, settle):
    """Per-call times (seconds, ``repeats`` turns each) of case ``case`` for
    each library, one process per library taking turns (bench/_turns.py)."""
    children = {lib: ([sys.executable, os.path.abspath(__file__), "--serve", lib,
                       "--case", str(case), "--threads", str(THREADS), "--settle",
                       str(settle)], CHILD_ENV)
                for lib in libraries}
    _, times, _ = take_turns(children, repeats)
    return {name: numpy.array(t) for name, t in times.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--markdown", help="also write the table to this file")
    parser.add_argument("--threads", type=int, default=2,
                        help="threads for every library (read before imports)")
    parser.add_argument("--append", action="store_true",
                        help="add this run as a new section of the --markdown file")
    parser.add_argument("--only", default="", help="run only cases whose title contains this")
    parser.add_argument("--settle", type=float, default=0.3,
                        help="seconds each turn sleeps first (other processes' spinning "
                             "threads stop meanwhile)")
    parser.add_argument("--serve", choices=LIBRARIES, help=argparse.SUPPRESS)
    parser.add_argument("--case", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        return serve_case(args.serve, args.case, settle=args.settle)
    libraries = list(LIBRARIES)
    if importlib.util.find_spec("torch") is None:
        print("PyTorch not installed (pip install torch==2.13.0): fastnn and NumPy only")
        libraries.remove("torch")
    torch_version = None
    if "torch" in libraries:
        from importlib.metadata import version
        torch_version = version("torch")
    load_before = os.getloadavg()[0]
    rows = []
    header = ("| case | fastnn ms | numpy ref ms | torch ms | fastnn/numpy (median, min) "
              "| fastnn/torch (median, min) |")
    rows.append(header)
    rows.append("|" + "---|" * 6)
    for case, (title, _) in enumerate(CASES):
        if args.only not in title:
            continue
        t = measure(case, libraries, args.repeats, args.settle)
        med = {k: numpy.median(v) * 1e3 for k, v in t.items()}
        low = {k: v.min() * 1e3 for k, v in t.items()}

        def ratio(other):
            if other not in med:
                return "n/a"
            return f"{med['fastnn'] / med[other]:.2f}, {low['fastnn'] / low[other]:.2f}"
        rows.append(f"| {title} | {med['fastnn']:.3f} | {med['numpy']:.3f} | "
                    f"{med['torch']:.3f} | " if "torch" in med else
                    f"| {title} | {med['fastnn']:.3f} | {med['numpy']:.3f} | n/a | ")
        rows[-1] += f"{ratio('numpy')} | {ratio('torch')} |"
        print(rows[-1] if len(rows) > 3 else "\n".join(rows), flush=True)
    env = (f"Python {platform.python_version()}, numpy {numpy.__version__}, "
           f"torch {torch_version or 'not installed'}, {THREADS} threads each, "
           f"{platform.machine()}, {repeats_note(args.repeats)}, load average before/after "
           f"{load_before:.1f}/{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(env)
    if args.markdown:
        with open(args.markdown, "a" if args.append else "w") as f:
            f.write(f"\n## {THREADS} thread(s)\n\n" if args.append else "# Benchmark results\n\n")
            f.write(f"Produced by `python bench/compare.py --repeats {args.repeats} "
                    f"--threads {THREADS}{' --append' if args.append else ''} "
                    f"--markdown {args.markdown}` on "
                    f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.\n\n")
            f.write(env + ".\nTimes are medians of interleaved repeats; ratios < 1 mean "
                    "fastnn is faster. The machine is a shared, noisy 2-core VM, so the "
                    "ratio of minima is the steadier number.\n\n")
            f.write("\n".join(rows) + "\n")
            if not args.append:
                f.write(NOTES)


NOTES = """
Reading the table:

* Dense with dx is three GEMMs of ~51 MFLOP each in every library; the kernels
  fuse bias + activation (forward) and dz + column sums (backward) into one pass
  each, which saves the reference's extra element-wise passes (a few percent of
  the layer). The fair PyTorch comparisons are row by row: `need_dx=True` against
  an input that requires grad, `need_dx=False` (a first layer) against one that
  does not.
* Each library runs in its own process, taking turns with the others: fastnn
  calls SciPy's OpenBLAS, NumPy has its own, PyTorch its own OpenMP pool, each
  with its own defaults for how idle threads wait. The blocks of calls in
  `serve_case` measure the steady state of a loop of calls.
* Other jobs share this VM; when they run, absolute times inflate several-fold
  and the median ratios wander. Prefer the ratio of minima.
"""


def repeats_note(repeats):
    return (f"{repeats} turns per library per case (blocks of 5 calls), a process per "
            f"library")


if __name__ == "__main__":
    sys.exit(main())
