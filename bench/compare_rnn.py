"""The recurrent cells' fwd+bwd (bench/test_bench_rnn.py's case: batch 64, 50
steps, 32 -> 128 units, every step's output, float32) timed by turns in two
child processes, fastnn and PyTorch, each alive for the whole run, on ONE
thread each and by the process's CPU time (time.process_time), not wall time:
on a loaded machine (other processes time-slicing the cores) wall times of
multithreaded libraries measure the load; one thread's CPU time still
measures the work. Each round runs every cell in both processes, alternating
which goes first.

    PYTHONPATH=$PWD python bench/compare_rnn.py [ROUNDS]
"""
import os
import statistics
import subprocess
import sys

BENCH = os.path.dirname(os.path.abspath(__file__))
KINDS = ("SimpleRNN", "GRU", "LSTM")
CHILD = r'''
import os, sys, time
sys.path.insert(0, sys.argv[2])
way = sys.argv[1]
kinds = ("SimpleRNN", "GRU", "LSTM")
if way == "torch":
    import _torch_cases  # imports torch first
    _torch_cases.torch.set_num_threads(1)
    fns = {k: _torch_cases.rnn_cell(k) for k in kinds}
else:
    import fastnn
    fastnn.set_num_threads(1)
    import test_bench_rnn as B
    from fastnn.backend import NumpyOps
    fns = {}
    for k in kinds:
        layer, x, dy = B.make_layer(k, NumpyOps())
        fns[k] = (lambda l=layer, x=x, dy=dy: B.forward_backward(l, x, dy))
for f in fns.values():
    f()
print("ready", flush=True)
for line in sys.stdin:
    k, n = line.split()
    t = time.process_time()
    for _ in range(int(n)):
        fns[k]()
    print((time.process_time() - t) / int(n), flush=True)
'''


def main(rounds=10, calls=3):
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    ways = ("fastnn", "torch")
    procs = {w: subprocess.Popen([sys.executable, "-c", CHILD, w, BENCH], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True, env=env) for w in ways}
    for p in procs.values():
        assert p.stdout.readline().strip() == "ready"
    times = {(w, k): [] for w in ways for k in KINDS}
    for r in range(rounds):
        for k in KINDS:
            for w in (ways if r % 2 == 0 else ways[::-1]):
                procs[w].stdin.write(f"{k} {calls}\n")
                procs[w].stdin.flush()
                times[(w, k)].append(float(procs[w].stdout.readline()))
    for p in procs.values():
        p.stdin.close()
        p.wait()
    print(f"load average before/after: see uptime; {rounds} rounds x {calls} calls, "
          "CPU ms per fwd+bwd, one thread each")
    for k in KINDS:
        f, t = times[("fastnn", k)], times[("torch", k)]
        print(f"{k:10s} fastnn {statistics.median(f) * 1e3:7.2f} (min {min(f) * 1e3:7.2f})  "
              f"torch {statistics.median(t) * 1e3:7.2f} (min {min(t) * 1e3:7.2f})  "
              f"fastnn/torch {statistics.median(f) / statistics.median(t):.2f} "
              f"(min {min(f) / min(t):.2f})")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
