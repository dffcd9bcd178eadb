"""CPU time per call, one thread each, of the batch-norm benchmark case
(bench/test_bench_norm.py, 32x32x32x64 float32, training forward + backward)
held channels_first (NCHW, ``BatchNormalization(axis=1)``): the layer on
fastnn's strided kernels (the features in the middle, read in place), the
same step through the (rows, features) kernels with the transposes the layer
used before (NCHW -> NHWC and back, each way), the channels_last layer on the
same values (axis -1, no transpose: the floor), and PyTorch's BatchNorm2d on
contiguous NCHW in a child process, taking turns.

On a machine shared with other jobs wall-clock ratios swing by several times;
one thread's CPU time (time.process_time) is what other jobs disturb least.

    PYTHONPATH=$PWD python bench/norm_cpu_check.py [--turns 3] [--calls 20]
"""
import os
import sys

import numpy as np

from _turns import cpu_ms, cpu_turns

HERE = os.path.dirname(os.path.abspath(__file__))


def torch_side(calls):
    import torch  # noqa: F401  (first, as in the benchmark child)
    sys.path.insert(0, HERE)
    import _torch_cases as tc
    torch.set_num_threads(1)
    print("torch:nchw batchnorm", *cpu_ms(tc.batchnorm("nchw"), calls), flush=True)


def fastnn_side(calls):
    sys.path.insert(0, HERE)
    import _data
    from fastnn import threads
    from fastnn.backend import NumpyOps
    from fastnn.layers import BatchNormalization
    threads.set_num_threads(1, adapt=False)
    ops = NumpyOps()
    x, gamma, beta, dy = _data.batchnorm_batch()
    eps = _data.BATCHNORM["epsilon"]
    x_nchw = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    dy_nchw = np.ascontiguousarray(dy.transpose(0, 3, 1, 2))

    def layer_step(axis, xs, dys):
        layer = BatchNormalization(axis=axis, epsilon=eps)
        layer._ensure_built(xs.shape[1:])
        layer = layer.to(ops)
        layer.set_weights([gamma, beta] + layer.get_weights()[2:])

        def step():
            _, backprop = layer.forward(xs, training=True)
            backprop(dys)
        return step

    def transposed_step():
        # The layer's former channels_first path: NHWC copies in, NCHW copies out.
        c = x_nchw.shape[1]
        xt = np.ascontiguousarray(x_nchw.transpose(0, 2, 3, 1)).reshape(-1, c)
        y2, mean, var = ops.batchnorm_forward(xt, gamma, beta, eps)
        np.ascontiguousarray(y2.reshape(x.shape).transpose(0, 3, 1, 2))
        dyt = np.ascontiguousarray(dy_nchw.transpose(0, 2, 3, 1)).reshape(-1, c)
        dg, db = np.zeros_like(gamma), np.zeros_like(beta)
        dx2 = ops.batchnorm_backward(xt, dyt, gamma, mean, var, eps, dg, db)
        np.ascontiguousarray(dx2.reshape(x.shape).transpose(0, 3, 1, 2))

    print("fastnn:nchw-strided batchnorm", *cpu_ms(layer_step(1, x_nchw, dy_nchw), calls))
    print("fastnn:nchw-transposed batchnorm", *cpu_ms(transposed_step, calls))
    print("fastnn:nhwc batchnorm", *cpu_ms(layer_step(-1, x, dy), calls), flush=True)


def main():
    cpu_turns(__doc__, __file__, fastnn_side, torch_side, calls=20)


if __name__ == "__main__":
    main()
