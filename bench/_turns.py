"""Timing by turns across processes, so that every way sees the same machine
load and each library runs with its own defaults (a process has one OpenMP
runtime, which reads its settings once, when it loads: in one process torch
would run with fastnn's).

For bench/compare_autorec.py: one child process per way, all alive at once,
one epoch each per round in rotating order. The protocol: a child prints one
JSON line when it is ready; then it answers each "epoch" line on its stdin with
``{"seconds": s}``; at end of input it prints one last JSON line. ``serve`` is
the child's side, ``take_turns`` the parent's.

For the one-thread CPU-time checks (bench/conv_cpu_check.py,
norm_cpu_check.py, pool_cpu_check.py): ``cpu_ms`` times a call by this
process's CPU time, and ``cpu_turns`` is their whole ``main``: fastnn in the
script's process, then PyTorch in a fresh child running the script again, turn
after turn.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np


def peak_rss_mb():
    """This process's peak resident set so far, MB (on Linux a child inherits
    its parent's peak across exec: keep parents small)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def serve(epoch_seconds, ready):
    """Child: print ``ready`` (a dict), answer each "epoch" line with the
    seconds ``epoch_seconds()`` returns, and print ``{"peak_rss_mb": ...}`` at
    end of input."""
    print(json.dumps(ready), flush=True)
    for line in sys.stdin:
        if line.strip() != "epoch":
            break
        print(json.dumps({"seconds": epoch_seconds()}), flush=True)
    print(json.dumps({"peak_rss_mb": peak_rss_mb()}), flush=True)


def serve_timed(run, ready):
    """Child: ``serve`` with each epoch's seconds the wall time of one ``run()``."""
    def seconds():
        t = time.perf_counter()
        run()
        return time.perf_counter() - t
    serve(seconds, ready)


#: Seconds of quiet before each turn. A runtime's threads keep spinning a while
#: after their work ends (PyTorch's for milliseconds, fastnn's for microseconds:
#: fastnn/_C/__init__.py), on the cores the next way then runs on. With no pause
#: the way that follows torch in the rotation pays for it. With the ways step,
#: autorec, torch, the step way follows torch in two rounds of three; at real
#: ML-100K (101 rounds) it measured 0.021 s against autorec's 0.018 s. With 5 ms
#: both took 0.018 s. With 50 ms (61 rounds) both took 0.024-0.025 s: after that
#: long an idle the cores start the next epoch slowly (round 9 of
#: bench/RESULTS_sparse.md, in git: `git show 40a6039:bench/RESULTS_sparse.md`).
TURN_GAP_S = 0.005


def take_turns(children, rounds, gap=TURN_GAP_S):
    """``children``: ``{name: (argv, env or None)}``, each a ``serve`` child.
    Starts them all (they build and warm up in parallel), waits until all are
    ready, then runs ``rounds`` rounds, each turn after ``gap`` seconds of
    quiet. Returns ``(ready, times, last)``, dicts by name: the ready line, the
    list of epoch seconds, the last line. A child that dies ends the run
    (SystemExit, the others killed)."""
    procs = {name: subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    text=True, bufsize=1, env=env)
             for name, (argv, env) in children.items()}

    def answer(name):
        line = procs[name].stdout.readline()
        if not line:
            for p in procs.values():
                p.kill()
            sys.exit(f"{name}: its process ended early (rc {procs[name].wait()})")
        return json.loads(line)

    names = list(procs)
    ready = {name: answer(name) for name in names}
    times = {name: [] for name in names}
    for r in range(rounds):
        for i in range(len(names)):
            name = names[(r + i) % len(names)]
            time.sleep(gap)
            procs[name].stdin.write("epoch\n")
            times[name].append(answer(name)["seconds"])
    last = {}
    for name in names:
        procs[name].stdin.close()
        last[name] = answer(name)
        procs[name].wait()
    return ready, times, last


def cpu_ms(fn, calls):
    """Minimum and median CPU milliseconds of ``calls`` calls after a warm-up,
    formatted. On a machine shared with other jobs wall-clock ratios swing by
    several times; one thread's CPU time (time.process_time) is what other
    jobs disturb least."""
    fn()
    times = []
    for _ in range(calls):
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    return f"{1e3 * min(times):.2f}", f"{1e3 * float(np.median(times)):.2f}"


def cpu_turns(doc, script, fastnn_side, torch_side, calls):
    """A CPU-time check's ``main``: its command line (``--turns``, default 3;
    ``--calls``, default ``calls``; ``doc``'s first line as the description),
    then ``--turns`` times ``fastnn_side(calls)`` here and ``torch_side(calls)``
    in a child process (``script --side torch``, which lands here too and runs
    just that side), each printing its ``cpu_ms`` lines; the load average
    before and after."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--calls", type=int, default=calls)
    parser.add_argument("--side", choices=["torch"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side == "torch":
        return torch_side(args.calls)
    print(f"load average {os.getloadavg()[0]:.2f}; CPU ms per call, one thread: min median")
    for _ in range(args.turns):
        fastnn_side(args.calls)
        out = subprocess.run([sys.executable, script, "--side", "torch", "--calls",
                              str(args.calls)], capture_output=True, text=True, check=True)
        sys.stdout.write(out.stdout)
    print(f"load average {os.getloadavg()[0]:.2f}")
