"""CPU time per call, one thread each, of Conv2D forward + backward (float32,
bias + ReLU, dx and dW): issue 16's benchmark case (bench/_data.py CONV_CASES,
32x32x32x64 -> 64 filters, 3x3, "same") and the Keras MNIST convnet's second
convolution (batch 128, 13x13x32 -> 64 filters, 3x3, "valid"): fastnn's
im2col + GEMM path (``fastnn._C.conv.WINOGRAD = False``), its Winograd
F(2x2, 3x3) path (True), and PyTorch's F.conv2d + relu + autograd on NCHW in a
child process, taking turns.

On a machine shared with other jobs wall-clock ratios swing by several times;
one thread's CPU time (time.process_time) is what other jobs disturb least.

    PYTHONPATH=$PWD python bench/conv_cpu_check.py [--turns 3] [--calls 10]
"""
import os
import sys

import numpy as np

from _turns import cpu_ms, cpu_turns

HERE = os.path.dirname(os.path.abspath(__file__))


def cases():
    """name -> (x NHWC, W (3, 3, C, F), b, dy, pad): float32, seeded."""
    sys.path.insert(0, HERE)
    import _data
    x, W, b, dy = _data.conv_layer("3x3 32x32x64->64")
    out = {"3x3 32x32x64->64 same": (x, W, b, dy, 1)}
    rng = np.random.default_rng(1)
    s = 1 / np.sqrt(9 * 32)
    out["mnist conv2 128x13x13x32->64 valid"] = (
        rng.standard_normal((128, 13, 13, 32)).astype(np.float32),
        rng.uniform(-s, s, (3, 3, 32, 64)).astype(np.float32),
        (0.1 * rng.standard_normal(64)).astype(np.float32),
        rng.standard_normal((128, 11, 11, 64)).astype(np.float32), 0)
    return out


def torch_side(calls):
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(1)
    for name, (x, W, b, dy, pad) in cases().items():
        tx = torch.tensor(x.transpose(0, 3, 1, 2)).contiguous().requires_grad_(True)
        tW = torch.tensor(W.transpose(3, 2, 0, 1)).contiguous().requires_grad_(True)
        tb = torch.tensor(b).requires_grad_(True)
        tdy = torch.tensor(dy.transpose(0, 3, 1, 2)).contiguous()

        def step():
            y = torch.relu(F.conv2d(tx, tW, tb, padding=pad))
            y.backward(tdy)
            tx.grad = tW.grad = tb.grad = None
        print(f"torch      {name}", *cpu_ms(step, calls), flush=True)


def fastnn_side(calls):
    from fastnn import threads
    from fastnn._C import conv
    from fastnn.backend import NumpyOps
    threads.set_num_threads(1, adapt=False)
    ops = NumpyOps()
    for name, (x, W, b, dy, pad) in cases().items():
        args = ((1, 1), (pad,) * 4, (1, 1), 1)
        dW, db = np.zeros_like(W), np.zeros_like(b)

        def step():
            y = ops.conv2d_forward(x, W, b, *args, "relu")
            ops.conv2d_backward(x, W, y, dy, dW, db, *args, "relu", need_dx=True)
        for mode, label in ((False, "im2col  "), (True, "winograd")):
            conv.WINOGRAD = mode
            try:
                print(f"fastnn:{label} {name}", *cpu_ms(step, calls), flush=True)
            finally:
                conv.WINOGRAD = "auto"


def main():
    cpu_turns(__doc__, __file__, fastnn_side, torch_side, calls=10)


if __name__ == "__main__":
    main()
