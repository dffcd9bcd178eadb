"""CPU time per call, one thread each, of the depthwise and max-pooling
benchmark cases (bench/test_bench_pool.py), and of the depthwise case with
depth_multiplier 2 (``depthwise_conv_m2``: 128 output channels): fastnn in
this process, PyTorch (channels_last and contiguous NCHW) in a child process,
taking turns.

On a machine shared with other jobs the wall-clock suite's ratios swing by
several times; a single thread's CPU time (time.process_time) is what other
jobs disturb least, so this compares the work each library does per call.

    PYTHONPATH=$PWD python bench/pool_cpu_check.py [--turns 3] [--calls 30]
"""
import os
import sys

import numpy as np

from _turns import cpu_ms, cpu_turns

HERE = os.path.dirname(os.path.abspath(__file__))


def torch_depthwise_m2(memory_format):
    """The depthwise case with depth_multiplier 2 as PyTorch's conv2d(groups=C)
    with 2C output channels (output c*2 + m from input c, as fastnn's)."""
    import torch
    import torch.nn.functional as F
    import _data
    import _torch_cases as tc
    x, k, b, dy = _data.depthwise_case(multiplier=2)
    kh, kw, c, m = k.shape
    tx = tc._nchw(x, memory_format).requires_grad_(True)
    tk = tc.t(k.transpose(2, 3, 0, 1).reshape(c * m, 1, kh, kw), True)
    tb, tdy = tc.t(b, True), tc._nchw(dy, memory_format)

    def step():
        tx.grad = tk.grad = tb.grad = None
        F.conv2d(tx, tk, tb, padding="same", groups=c).backward(tdy)
    assert torch.get_num_threads() == 1
    return step


def torch_side(calls):
    import torch  # noqa: F401  (first, as in the benchmark child)
    sys.path.insert(0, HERE)
    import _torch_cases as tc
    torch.set_num_threads(1)
    for fmt in ("channels_last", "nchw"):
        for case in ("depthwise_conv", "max_pool"):
            print(f"torch:{fmt}", case, *cpu_ms(getattr(tc, case)(fmt), calls), flush=True)
        print(f"torch:{fmt}", "depthwise_conv_m2", *cpu_ms(torch_depthwise_m2(fmt), calls),
              flush=True)


def fastnn_side(calls):
    sys.path.insert(0, HERE)
    import _data
    import test_bench_pool as b
    from fastnn import threads
    threads.set_num_threads(1, adapt=False)
    ops = b.OPS["fastnn"]
    x, k, bias, dy = _data.depthwise_case()
    dk, db = np.zeros_like(k), np.zeros_like(bias)
    xp, dyp = _data.maxpool_case()
    print("fastnn depthwise_conv", *cpu_ms(lambda: b.depthwise_step(ops, x, k, bias, dy, dk, db),
                                         calls))
    print("fastnn max_pool", *cpu_ms(lambda: b.maxpool_step(ops, xp, dyp), calls))
    x2, k2, b2, dy2 = _data.depthwise_case(multiplier=2)
    dk2, db2 = np.zeros_like(k2), np.zeros_like(b2)
    print("fastnn depthwise_conv_m2",
          *cpu_ms(lambda: b.depthwise_step(ops, x2, k2, b2, dy2, dk2, db2), calls))


def main():
    cpu_turns(__doc__, __file__, fastnn_side, torch_side, calls=30)


if __name__ == "__main__":
    main()
