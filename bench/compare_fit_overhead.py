"""What the progress bar and callbacks add to a training epoch: the MNIST-shaped
MLP (784-256-128-10, batch 128, Adam) on 60,000 random samples, one epoch
silent (verbose=0, no callbacks) against one with a live progress bar (drawn
to a terminal-like stream) plus History, EarlyStopping, CSVLogger and
ReduceLROnPlateau, interleaved, as a ratio of medians.

    python bench/compare_fit_overhead.py [--repeats 5]
"""
import argparse
import io
import os
import tempfile
import time

import numpy

import fastnn
from fastnn import callbacks as C
from fastnn import layers as L


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--samples", type=int, default=60000)
    args = parser.parse_args()
    os.environ.pop("CI", None)  # measure the live (redrawing) bar
    rng = numpy.random.default_rng(0)
    x = rng.random((args.samples, 784), dtype=numpy.float32)
    y = rng.integers(0, 10, args.samples)
    fastnn.set_seed(0)
    model = fastnn.Sequential([fastnn.Input((784,)), L.Dense(256, activation="relu"),
                               L.Dense(128, activation="relu"), L.Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    tmp = tempfile.mkdtemp()

    def silent():
        model.fit(x, y, batch_size=128, epochs=1, verbose=0)

    def with_callbacks():
        cbs = [C.ProgbarLogger(verbose=1, stream=_Terminal()),
               C.EarlyStopping(monitor="loss", patience=5),
               C.CSVLogger(os.path.join(tmp, "log.csv")),
               C.ReduceLROnPlateau(monitor="loss", patience=5)]
        model.fit(x, y, batch_size=128, epochs=1, verbose=0, callbacks=cbs)

    runs = {"silent": silent, "progress+callbacks": with_callbacks}
    for run in runs.values():
        run()
    times = {k: [] for k in runs}
    for _ in range(args.repeats):
        for name, run in runs.items():
            t = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - t)
    med = {k: float(numpy.median(v)) for k, v in times.items()}
    for k, v in med.items():
        print(f"{k:20s} epoch: median {v:.3f} s over {args.repeats}")
    print(f"overhead: {100 * (med['progress+callbacks'] / med['silent'] - 1):+.1f}%")


if __name__ == "__main__":
    main()
