"""A/B of two builds of one kernel module in ONE process: the layer (or
convolution) step of a benchmark case, timed with the module NumpyOps uses
now (the build in the tree: "new") and with another build of the same module
loaded from a file ("old"), in alternating rounds, the order flipping each
round. On a shared or time-sliced machine, where the same build's wall times
move by up to 2x within minutes (bench/RESULTS.md, "This machine's noise"),
both builds then see the same phases: the ratio holds where two separate runs
would not.

Keep the old build before rebuilding, then compare:

    cp fastnn/_C/recurrent.cpython-311-x86_64-linux-gnu.so /tmp/old.so
    ... edit, rebuild (FASTNN_ONLY=recurrent python setup.py build_ext --inplace) ...
    PYTHONPATH=$PWD python bench/ab_build.py /tmp/old.so LSTM [--threads 2] [--rounds 12]

Cases: SimpleRNN, GRU, LSTM (bench/test_bench_rnn.py's layer fwd+bwd: the
recurrent module) and conv3x3, conv5x5 (bench/test_bench_conv.py's step: the
conv module). Prints the medians of each build's calls and new / old.
"""
import argparse
import importlib.util
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _data  # noqa: E402

CONV = {"conv3x3": "3x3 32x32x64->64", "conv5x5": "5x5 32x32x3->32 first"}
RNN = ("SimpleRNN", "GRU", "LSTM")


def load_build(path, module):
    """The extension at ``path`` as a second copy of fastnn._C.``module``."""
    spec = importlib.util.spec_from_file_location(f"ab_old_build.{module}", path)
    if spec is None:
        raise SystemExit(f"ab_build: cannot load {path!r} as a Python extension")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def rnn_step(kind):
    from fastnn import layers as L
    from fastnn.backend import NumpyOps
    x, dy, W, R, b = _data.rnn_cell(kind)
    layer = getattr(L, kind)(_data.RNN_CELL["units"], return_sequences=True)
    layer._ensure_built(x.shape[1:])
    layer.to(NumpyOps())
    layer.set_weights([W, R, b])

    def step():
        y, backprop = layer.forward(x, training=True)
        backprop(dy)
    return step


def conv_step(case):
    import numpy
    from fastnn.backend import NumpyOps
    ops = NumpyOps()
    x, W, b, dy = _data.conv_layer(case)
    pads = (W.shape[0] // 2,) * 4
    need_dx = not case.endswith("first")
    dW, db = numpy.zeros_like(W), numpy.zeros_like(b)

    def step():
        y = ops.conv2d_forward(x, W, b, (1, 1), pads, (1, 1), 1, "relu")
        ops.conv2d_backward(x, W, y, dy, dW, db, (1, 1), pads, (1, 1), 1, "relu",
                            need_dx=need_dx)
    return step


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("old", help="the other build's .so of the case's module")
    p.add_argument("case", choices=RNN + tuple(CONV))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=12)
    p.add_argument("--calls", type=int, default=8, help="timed calls per round and build")
    args = p.parse_args(argv)
    import fastnn.backend.numpy_ops as nops
    import fastnn.threads
    fastnn.threads.set_num_threads(args.threads, adapt=False)
    attr, module = ("_recurrent", "recurrent") if args.case in RNN else ("_conv", "conv")
    builds = {"new": getattr(nops, attr), "old": load_build(args.old, module)}
    step = rnn_step(args.case) if args.case in RNN else conv_step(CONV[args.case])
    times = {"new": [], "old": []}
    try:
        for r in range(args.rounds):
            for name in (("old", "new") if r % 2 else ("new", "old")):
                setattr(nops, attr, builds[name])
                step()   # warm-up after the swap
                for _ in range(args.calls):
                    t0 = time.perf_counter()
                    step()
                    times[name].append(time.perf_counter() - t0)
    finally:
        setattr(nops, attr, builds["new"])
    old, new = (statistics.median(times[k]) * 1e3 for k in ("old", "new"))
    print(f"{args.case}, {args.threads} thread(s), {args.rounds} rounds x {args.calls} calls: "
          f"old {old:.2f} ms, new {new:.2f} ms (medians), new / old {new / old:.3f}")


if __name__ == "__main__":
    main()
