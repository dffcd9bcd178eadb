"""One training epoch of the README's MLP, 784-256-128-10 (ReLU, softmax
cross-entropy, Adam 1e-3, batch 128, shuffled) on 60,000 random MNIST-shaped
samples: fastnn's Sequential.fit, the same network written in plain NumPy
(the three GEMMs per layer, the loss, NumPy Adam), and a plain PyTorch loop.
"fastnn:callbacks" is the same fit with a live progress bar (drawn to a
terminal-like stream) and History, EarlyStopping, CSVLogger and
ReduceLROnPlateau: its time over "fastnn"'s is what they cost an epoch.
One warm-up epoch, then FASTNN_BENCH_EPOCHS (3) timed epochs each way.

    python -m pytest bench/test_bench_mlp.py --benchmark-only
"""
import io
import os

import numpy as np
import pytest

import _data
import fastnn
from _epochs import fit_epoch
from fastnn import callbacks as C
from fastnn import layers as L
from fastnn.backend import Ops


class Terminal(io.StringIO):
    def isatty(self):
        return True


def fastnn_epoch(x, y, logdir=None):
    """A fit of one epoch; with ``logdir``, with the progress bar and callbacks
    (CSVLogger writing there)."""
    m = _data.MLP
    fastnn.set_seed(0)
    model = fastnn.Sequential([fastnn.Input((m["sizes"][0],)),
                               L.Dense(m["sizes"][1], activation="relu"),
                               L.Dense(m["sizes"][2], activation="relu"),
                               L.Dense(m["sizes"][3], activation="softmax")])
    model.compile(fastnn.optimizers.Adam(m["lr"]), "sparse_categorical_crossentropy")

    def callbacks():
        return [C.ProgbarLogger(verbose=1, stream=Terminal()),
                C.EarlyStopping(monitor="loss", patience=5),
                C.CSVLogger(os.path.join(logdir, "log.csv")),
                C.ReduceLROnPlateau(monitor="loss", patience=5)]
    return fit_epoch(model, x, y, m["batch"], None if logdir is None else callbacks)


def numpy_epoch(x, y):
    """The MLP as a NumPy user writes it: Glorot-uniform weights, ReLU, a
    stable softmax cross-entropy (mean over the batch), backprop by hand, Adam
    (the reference Ops.adam_update, plain NumPy)."""
    m, ops = _data.MLP, Ops()
    rng = np.random.default_rng(0)
    sizes = m["sizes"]
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        s = np.sqrt(6 / (fan_in + fan_out))
        params += [rng.uniform(-s, s, (fan_in, fan_out)).astype(np.float32),
                   np.zeros(fan_out, np.float32)]
    moments = [(np.zeros_like(p), np.zeros_like(p)) for p in params]
    step = [0]

    def epoch():
        order = rng.permutation(len(x))
        total = 0.0
        for i in range(0, len(x), m["batch"]):
            idx = order[i:i + m["batch"]]
            xb, yb = x[idx], y[idx]
            W1, b1, W2, b2, W3, b3 = params
            h1 = np.maximum(xb @ W1 + b1, 0)
            h2 = np.maximum(h1 @ W2 + b2, 0)
            z = h2 @ W3 + b3
            z -= z.max(axis=1, keepdims=True)
            p = np.exp(z)
            p /= p.sum(axis=1, keepdims=True)
            rows = np.arange(len(yb))
            total += float(-np.log(p[rows, yb] + 1e-12).mean())
            dz = p
            dz[rows, yb] -= 1
            dz /= len(yb)
            dh2 = (dz @ W3.T) * (h2 > 0)
            dh1 = (dh2 @ W2.T) * (h1 > 0)
            grads = [xb.T @ dh1, dh1.sum(0), h1.T @ dh2, dh2.sum(0), h2.T @ dz, dz.sum(0)]
            step[0] += 1
            for q, g, (mq, vq) in zip(params, grads, moments):
                ops.adam_update(q, g, mq, vq, m["lr"], 0.9, 0.999, 1e-7, step[0])
        return total
    return epoch


@pytest.fixture(scope="module")
def mnist_shaped():
    return _data.mnist_shaped()


@pytest.mark.parametrize("way", ["fastnn", "fastnn:callbacks", "numpy", "torch"])
def test_mlp_epoch(benchmark, request, mnist_shaped, way, tmp_path, monkeypatch):
    benchmark.group = "MLP 784-256-128-10 epoch, 60k MNIST-shaped samples, batch 128, Adam"
    if way == "torch":
        return request.getfixturevalue("torch_case")("mlp_epoch", epochs=True)
    if way == "numpy":
        epoch = numpy_epoch(*mnist_shaped)
    else:
        monkeypatch.delenv("CI", raising=False)  # the live, redrawing bar
        epoch = fastnn_epoch(*mnist_shaped, logdir=tmp_path if way != "fastnn" else None)
    request.getfixturevalue("epoch_case")(epoch)
