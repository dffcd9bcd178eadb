"""Wall time per call of the depthwise benchmark case's phases (forward; the
backward's dW/db alone, need_dx=False; the whole backward) on one thread and
on two, taking turns, and each phase's two-thread scaling (1-thread time /
2-thread time; 2.0 is perfect). A scaling ratio compares fastnn with itself,
so it is less sensitive to the machine's load than a cross-library ratio;
still, report the load it prints. (CPU time is no help here: Linux adds a
second thread's CPU time to the process's at scheduler ticks, so a 1 ms call's
reads miss it.) Last, the step under the adaptive thread policy the benchmark
suite runs with, and in how many calls it had both threads. ``--loops general``
turns off the three-tap row loops (kernel width 3, stride 1 along the width,
M = 1), which the benchmark case takes, to time the general ones.

    PYTHONPATH=$PWD python bench/dw_phase_check.py [--turns 5] [--calls 20] [--loops general]
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _data  # noqa: E402
from fastnn import threads  # noqa: E402
from fastnn._C import pool  # noqa: E402
from fastnn.backend import NumpyOps  # noqa: E402


def best_ms(fn, calls):
    """Minimum and median wall ms of ``calls`` calls after a warm-up."""
    fn()
    wall = []
    for _ in range(calls):
        t = time.perf_counter()
        fn()
        wall.append(time.perf_counter() - t)
    return 1e3 * min(wall), 1e3 * float(np.median(wall))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--multiplier", type=int, default=1)
    parser.add_argument("--loops", choices=("three-tap", "general"), default="three-tap")
    args = parser.parse_args()
    pool.set_depthwise_three_tap(args.loops == "three-tap")
    ops = NumpyOps()
    x, k, b, dy = _data.depthwise_case(args.multiplier)
    dk, db = np.zeros_like(k), np.zeros_like(b)
    y = ops.depthwise_conv2d_forward(x, k, b, (1, 1), "same")
    phases = {
        "forward": lambda: ops.depthwise_conv2d_forward(x, k, b, (1, 1), "same"),
        "backward dW only": lambda: ops.depthwise_conv2d_backward(
            x, k, y, dy, dk, db, (1, 1), "same", need_dx=False),
        "backward": lambda: ops.depthwise_conv2d_backward(x, k, y, dy, dk, db, (1, 1), "same"),
    }
    phases["step"] = lambda: (phases["forward"](), phases["backward"]())
    best = {(p, n): [] for p in phases for n in (1, 2)}
    print(f"{args.loops} loops; load average {os.getloadavg()[0]:.2f}; wall ms per call: the turns' best "
          "minimum (median of their medians)")
    for _ in range(args.turns):
        for n in (1, 2):
            threads.set_num_threads(n, adapt=False)
            for name, fn in phases.items():
                best[(name, n)].append(best_ms(fn, args.calls))
    # The benchmark suite runs with the adaptive policy (set_num_threads(2) with adapt):
    # the step's times there, and how often the policy gave it both threads.
    threads.set_num_threads(2)
    adaptive, counts = [], []
    for _ in range(args.turns * args.calls):
        t = time.perf_counter()
        phases["step"]()
        adaptive.append(time.perf_counter() - t)
        counts.append(threads.threads_now())
    for name in phases:
        one = min(m for m, _ in best[(name, 1)])
        two = min(m for m, _ in best[(name, 2)])
        med1 = float(np.median([m for _, m in best[(name, 1)]]))
        med2 = float(np.median([m for _, m in best[(name, 2)]]))
        print(f"{name:18s} 1 thread {one:7.3f} ({med1:7.3f})  2 threads {two:7.3f} "
              f"({med2:7.3f})  scaling {one / two:.2f} ({med1 / med2:.2f})")
    print(f"step, adaptive policy: {1e3 * min(adaptive):.3f} ({1e3 * np.median(adaptive):.3f}) "
          f"ms, both threads in {counts.count(2)} of {len(counts)} calls")
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
