"""One training epoch of Keras's MNIST convnet (Conv 32 3x3 relu, MaxPool 2,
Conv 64 3x3 relu, MaxPool 2, Flatten, Dropout 0.5, Dense 10 softmax; Adam
1e-3, batch 128, shuffled) on 60,000 random MNIST-shaped 28x28x1 images:
fastnn's Sequential.fit (fastnn.recipes.mnist_convnet, channels last) and a
plain PyTorch loop (bench/_torch_cases.py cnn_epoch, NCHW). No NumPy way: a
convolution in plain NumPy is not what anyone would train with. One warm-up
epoch, then FASTNN_BENCH_EPOCHS (3) timed epochs each way.

Each way records the epoch's GFLOP (bench/_metrics.py: the convolutions'
and the Dense layer's products) and, through bench/conftest.py, its GFLOP/s
at the median, to set beside the "sgemm peak" group; fastnn's warm-up epoch
runs under tracemalloc and records the epoch's peak allocated MiB.

    python -m pytest bench/test_bench_cnn.py --benchmark-only
"""
import pytest

import _data
import _metrics
import fastnn
from _epochs import fit_epoch
from fastnn import recipes


def fastnn_epoch(x, y):
    c = _data.CNN
    fastnn.set_seed(0)
    model = recipes.mnist_convnet(input_shape=c["image"], n_classes=c["classes"],
                                  learning_rate=c["lr"])
    return fit_epoch(model, x, y, c["batch"])


@pytest.fixture(scope="module")
def mnist_images():
    return _data.mnist_images()


@pytest.mark.parametrize("way", ["fastnn", "torch"])
def test_cnn_epoch(benchmark, request, mnist_images, way):
    benchmark.group = "MNIST convnet epoch, 60k 28x28x1 images, batch 128, Adam"
    benchmark.extra_info["gflop"] = _metrics.cnn_epoch_flops() / 1e9
    if way == "torch":
        return request.getfixturevalue("torch_case")("cnn_epoch", epochs=True)
    epoch = _metrics.traced_first_call(fastnn_epoch(*mnist_images), benchmark.extra_info)
    request.getfixturevalue("epoch_case")(epoch)
