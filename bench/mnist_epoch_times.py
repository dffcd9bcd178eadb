"""Seconds per epoch of the MNIST MLP (``fastnn.recipes.mnist_mlp``: 784-256-128-10,
ReLU, Adam, batch 128) on real MNIST, and the share of its Adam m that is
denormal after each epoch.

Dead ReLU units and blank pixels give weights a zero gradient; their Adam m
then decays through the denormals, which x86 computes several times slower.
fastnn's optimizer kernels flush them (csrc/common/fastnn_fpenv.h). A build without
that showed later epochs slower than the first ones (bench/RESULTS_dense.md);
with it the ratio "later / first two" stays near 1.

    python bench/mnist_epoch_times.py [--epochs 5] [--data DIR]
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--data", default=None, help="folder with the MNIST IDX .gz files")
    args = ap.parse_args()
    if args.epochs < 3:
        ap.error("--epochs must be at least 3 (two first epochs and a later one)")
    import fastnn
    from fastnn import recipes
    from fastnn.datasets import load_mnist
    (x, y), _ = load_mnist(args.data)
    x = x.reshape(len(x), -1).astype(np.float32) / 255
    fastnn.set_seed(0)
    model = recipes.mnist_mlp()
    tiny = np.finfo(np.float32).tiny
    times = []
    for epoch in range(args.epochs):
        t = time.perf_counter()
        model.fit(x, y, epochs=1, batch_size=128, verbose=0)
        times.append(time.perf_counter() - t)
        ms = [np.asarray(s["m"]) for s in model.optimizer._state]
        denormal = sum(int(np.count_nonzero((m != 0) & (np.abs(m) < tiny))) for m in ms)
        share = denormal / sum(m.size for m in ms)
        print(f"epoch {epoch + 1}: {times[-1]:.3f} s, Adam m denormal: {share:.4%}", flush=True)
    print(f"later epochs / first two (medians): "
          f"{np.median(times[2:]) / np.median(times[:2]):.2f}")


if __name__ == "__main__":
    main()
