"""Timing by turns across processes, for bench/compare_autorec.py: one child
process per way, all alive at once, one epoch each per round in rotating order.
Every way sees the same machine load, and each library runs with its own
defaults (a process has one OpenMP runtime, which reads its settings once, when
it loads: in one process torch would run with fastnn's).

The protocol: a child prints one JSON line when it is ready; then it answers
each "epoch" line on its stdin with ``{"seconds": s}``; at end of input it
prints one last JSON line. ``serve`` is the child's side, ``take_turns`` the
parent's.
"""
import json
import resource
import subprocess
import sys
import time


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
