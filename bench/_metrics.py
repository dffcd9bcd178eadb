"""What the CNN benchmarks record beside their times (issue 16): the work of
one step in GFLOP or the bytes it must move in GB, from which bench/conftest.py
derives each way's GFLOP/s or GB/s at the median, and the peak of the memory
allocated during one step (tracemalloc, which sees NumPy's allocations, so
fastnn's and the NumPy reference's; the PyTorch child's allocator is not
traced). The rates are compared with the "sgemm peak" group
(bench/test_bench_conv.py, compute-bound kernels) and the "memory bandwidth
peak" group (bench/test_bench_norm.py, memory-bound ones) of the same run.

Only arithmetic and measurement here: the inputs are bench/_data.py's."""
import tracemalloc

import _data

F32 = 4  # bytes per float32 element (every CNN case is float32)


def peak_mib(fn):
    """The peak MiB allocated while ``fn()`` runs (what it allocates beyond
    what already exists), rounded to 0.1."""
    tracemalloc.start()
    try:
        fn()
        return round(tracemalloc.get_traced_memory()[1] / 2 ** 20, 1)
    finally:
        tracemalloc.stop()


def traced_first_call(fn, extra_info):
    """``fn`` whose first call (an epoch case's warm-up round) runs under
    tracemalloc and stores its ``peak_mib`` in ``extra_info``; later calls,
    the timed ones, run untraced."""
    done = []

    def call():
        if done:
            return fn()
        done.append(True)
        extra_info["peak_mib"] = peak_mib(fn)
    return call


def depthwise_flops(multiplier=1):
    """Multiply-adds x 2 of the depthwise case's forward, dW and dx (each
    N*H*W*C*M*k*k products; "same" padding counted as if every tap were real)."""
    c = _data.CNN_POOL
    n, s, ch, k = c["batch"], c["size"], c["channels"], c["kernel"]
    return 3 * 2.0 * n * s * s * ch * multiplier * k * k


def depthwise_bytes(multiplier=1):
    """Bytes each array of the depthwise step is read or written at least once:
    forward reads x, writes y; backward reads x and dy, writes dx (the kernel,
    bias and their gradients are small)."""
    c = _data.CNN_POOL
    pixels = c["batch"] * c["size"] ** 2
    x = pixels * c["channels"] * F32
    y = x * multiplier
    return x + y + x + y + x


def maxpool_bytes():
    """The 2x2 stride-2 max pooling step's compulsory traffic: forward reads x
    and writes y and the int32 argmax (a quarter of x each); backward reads dy
    and the argmax and writes dx."""
    c = _data.CNN_POOL
    x = c["batch"] * c["size"] ** 2 * c["channels"] * F32
    return x + x / 4 + x / 4 + x / 4 + x / 4 + x


def batchnorm_bytes():
    """The batch-norm training step's compulsory traffic: forward reads x,
    writes y; backward reads x and dy, writes dx."""
    n, h, w, c = _data.BATCHNORM["shape"]
    return 5.0 * n * h * w * c * F32


def cnn_epoch_flops():
    """Multiply-adds x 2 of one epoch of Keras's MNIST convnet (the convolutions
    and the Dense layer: forward, dW, and dx where a layer below needs it; the
    first convolution needs none), per image times the epoch's images. Pooling,
    dropout, the activations and Adam are a few percent and left out."""
    c = _data.CNN
    h, w, ch = c["image"]
    o1 = (h - 2, w - 2)                       # conv 32 3x3 valid
    p1 = (o1[0] // 2, o1[1] // 2)             # max pool 2
    o2 = (p1[0] - 2, p1[1] - 2)               # conv 64 3x3 valid
    p2 = (o2[0] // 2, o2[1] // 2)             # max pool 2
    conv1 = 2.0 * o1[0] * o1[1] * 9 * ch * 32 * 2           # forward, dW
    conv2 = 2.0 * o2[0] * o2[1] * 9 * 32 * 64 * 3           # forward, dW, dx
    dense = 2.0 * p2[0] * p2[1] * 64 * c["classes"] * 3     # forward, dW, dx
    return (conv1 + conv2 + dense) * c["samples"]
