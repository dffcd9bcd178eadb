"""Does fastnn's speed depend on what else holds the machine? A driver that
times the MNIST-shaped MLP half-epoch (784-256-128-10, ReLU, softmax, Adam,
batch 128, 30,000 random samples) and an I-AutoRec epoch on ML-100K-sized
synthetic ratings (943 x 1682, 100,000 ratings, hidden 500) in these cases:

- ``clean``: fastnn alone in a fresh process;
- ``torch-first``: ``import torch`` before ``import fastnn`` (torch's wheel
  brings its own libgomp, loaded first);
- ``busy`` variants: the same beside one other process that spins on a core
  (``python -c 'while True: pass'``), with fastnn's own thread policy and
  with thread counts set by hand, to find the best hand setting;
- ``threads=N`` / ``threads=N!`` / ``blas1``: hand-set counts
  (``fastnn.set_num_threads(N)``, ``!``: with ``adapt=False``; or SciPy's
  OpenBLAS pinned to one thread with ``OPENBLAS_NUM_THREADS=1``).

``--roots before,after`` times two fastnn trees (e.g. a build of the previous
commit and this checkout) case by case in the same rounds; ratios are then
also given against the first tree.

Every measurement runs in its own subprocess (a process has one OpenMP
runtime), cases interleaved round by round so that they share the machine's
load; each subprocess warms up, then reports the best and median of a few
timed runs. Ratios are of medians over rounds.

    python bench/threads_check.py [--rounds 5] [--work mlp,autorec] [--no-busy]
        [--roots /work/baseline,.]
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# name: (environment to add, torch first, fastnn.set_num_threads argument or None)
CASES = {
    "clean": ({}, False, None),
    "torch-first": ({}, True, None),
    "threads=1": ({}, False, "1"),
    "threads=2!": ({}, False, "2!"),
    "blas1": ({"OPENBLAS_NUM_THREADS": "1"}, False, None),
    "omp1+blas1": ({"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}, False, None),
}
BUSY_CASES = ["clean", "torch-first", "threads=1", "threads=2!", "blas1", "omp1+blas1"]
IDLE_CASES = ["clean", "torch-first"]


def mlp_run():
    import fastnn
    from _epochs import fit_epoch  # (this script's folder is on sys.path)
    from fastnn import layers as L
    rng = numpy.random.default_rng(0)
    x = rng.random((30000, 784), dtype=numpy.float32)
    y = rng.integers(0, 10, len(x))
    fastnn.set_seed(0)
    model = fastnn.Sequential([fastnn.Input((784,)), L.Dense(256, activation="relu"),
                               L.Dense(128, activation="relu"),
                               L.Dense(10, activation="softmax")])
    model.compile(fastnn.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    return fit_epoch(model, x, y, 128)


def autorec_run():
    from fastnn.recsys import AutoRec, synthetic_ratings
    ratings = synthetic_ratings(n_users=943, n_items=1682, density=100000 / (943 * 1682),
                                seed=0)
    model = AutoRec(hidden=500, lam=1.0, seed=0)
    return lambda: model.fit(ratings, epochs=1, verbose=0)


def serve(work, torch_first, threads, timed):
    if torch_first:
        import torch  # noqa: F401  (only loaded, never run: its libgomp is in the process)
    import fastnn
    if threads is not None:
        if not hasattr(fastnn, "set_num_threads"):  # a tree from before the policy
            print(json.dumps({"best": float("nan"), "median": float("nan")}))
            return
        fastnn.set_num_threads(int(threads.rstrip("!")), adapt=not threads.endswith("!"))
    run = {"mlp": mlp_run, "autorec": autorec_run}[work]()
    run()  # warm up
    times = []
    for _ in range(timed):
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    print(json.dumps({"best": min(times), "median": float(numpy.median(times))}))


def one(root, work, case, timed):
    env_add, torch_first, threads = CASES[case]
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.update(env_add)
    cmd = [sys.executable, os.path.abspath(__file__), "--serve", work, "--timed", str(timed)]
    if torch_first:
        cmd.append("--torch-first")
    if threads is not None:
        cmd += ["--threads", threads]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=HERE)
    if out.returncode != 0:
        raise RuntimeError(f"{work}/{case} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])["median"]


def measure(roots, works, cases, rounds, timed, label):
    keys = [(r, w, c) for w in works for c in cases for r in roots]
    times = {k: [] for k in keys}
    for i in range(rounds):
        for k in keys:
            times[k].append(one(*k, timed))
        print(f"  {label} round {i + 1}/{rounds} done (load {os.getloadavg()[0]:.2f})",
              file=sys.stderr)
    med = {k: float(numpy.median(v)) for k, v in times.items()}
    print(f"\n{label} (median of {rounds} rounds, each the median of {timed} timed runs):")
    for r in roots:
        for w in works:
            base = med[r, w, cases[0]]
            for c in cases:
                t = med[r, w, c]
                vs_first = f"   x{t / med[roots[0], w, c]:5.2f} vs {roots[0]}" if r != roots[0] \
                    else ""
                print(f"  {r:>14s} {w:8s} {c:12s} {t:7.3f} s   x{t / base:5.2f} vs {cases[0]}"
                      f"{vs_first}   (all: {', '.join(f'{x:.3f}' for x in times[r, w, c])})")
    return med


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--timed", type=int, default=3, help="timed runs per subprocess")
    ap.add_argument("--work", default="mlp,autorec")
    ap.add_argument("--no-busy", action="store_true", help="skip the cases beside a busy process")
    ap.add_argument("--no-idle", action="store_true", help="skip the cases without it")
    ap.add_argument("--roots", default=ROOT,
                    help="comma-separated fastnn trees to time (default: this checkout), "
                         "e.g. a build of the previous commit first for a before/after")
    ap.add_argument("--serve", choices=("mlp", "autorec"), help=argparse.SUPPRESS)
    ap.add_argument("--torch-first", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--threads", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        return serve(args.serve, args.torch_first, args.threads, args.timed)
    works = args.work.split(",")
    roots = [os.path.abspath(r) for r in args.roots.split(",")]
    print(f"CPUs: {os.cpu_count()}, load at start: {os.getloadavg()}")
    if not args.no_idle:
        measure(roots, works, IDLE_CASES, args.rounds, args.timed, "no other busy process")
    if not args.no_busy:
        hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            time.sleep(0.5)
            measure(roots, ["mlp"], BUSY_CASES, args.rounds, args.timed,
                    "beside one busy process (python -c 'while True: pass')")
        finally:
            hog.kill()
            hog.wait()
    print(f"load at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
