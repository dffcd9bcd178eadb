"""One training epoch of a 784-256-128-10 MLP (ReLU, softmax, Adam, batch 128)
on 60,000 random MNIST-shaped samples: fastnn against a plain PyTorch CPU loop,
interleaved in one run, as a ratio of median times.

Each library runs in its own process with its own defaults (a process has one
OpenMP runtime, and fastnn sets its waiting policy when it loads: in one
process torch would run with fastnn's). The two processes live side by side
and take turns, an epoch each per repeat, so both see the same machine load
(bench/_turns.py).

    python bench/compare_mlp.py [--repeats 5] [--samples 60000]
"""
import argparse
import importlib.util
import os
import sys

import numpy

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _turns import serve_timed, take_turns  # noqa: E402


def fastnn_epoch(x, y, batch):
    import fastnn
    from fastnn import layers as L
    fastnn.set_seed(0)
    model = fastnn.Sequential([fastnn.Input((784,)), L.Dense(256, activation="relu"),
                               L.Dense(128, activation="relu"), L.Dense(10, activation="softmax")])
    model.compile(fastnn.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")

    def run():
        model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=True)
    return run


def torch_epoch(x, y, batch):
    import torch
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(),
                                torch.nn.Linear(256, 128), torch.nn.ReLU(),
                                torch.nn.Linear(128, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def run():
        perm = torch.randperm(len(xt))
        for i in range(0, len(xt), batch):
            idx = perm[i:i + batch]
            opt.zero_grad()
            loss = loss_fn(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
    return run


def serve_one(args):
    """Child: build one library's epoch, warm it up, say "ready"; then time one
    epoch per "epoch" line on stdin and answer its seconds."""
    if args.serve == "pytorch":
        import torch
        torch.set_num_threads(int(os.environ.get("FASTNN_BENCH_THREADS", "2")))
    rng = numpy.random.default_rng(0)
    x = rng.random((args.samples, 784), dtype=numpy.float32)
    y = rng.integers(0, 10, args.samples)
    run = (fastnn_epoch if args.serve == "fastnn" else torch_epoch)(x, y, args.batch)
    run()  # warm up
    serve_timed(run, {"ready": True})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--samples", type=int, default=60000)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--serve", choices=("fastnn", "pytorch"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve_one(args)
    names = ["fastnn"]
    if importlib.util.find_spec("torch") is not None:
        names.append("pytorch")
    else:
        print("PyTorch not installed (pip install torch==2.13.0): fastnn only")
    _, times, _ = take_turns({n: ([sys.executable, os.path.abspath(__file__), "--serve", n]
                                  + sys.argv[1:], None) for n in names}, args.repeats)
    med = {k: float(numpy.median(v)) for k, v in times.items()}
    for k, v in med.items():
        print(f"{k:8s} epoch: median {v:.3f} s over {args.repeats} (min {min(times[k]):.3f} s)")
    if "pytorch" in med:
        print(f"ratio fastnn / pytorch: {med['fastnn'] / med['pytorch']:.2f}")


if __name__ == "__main__":
    main()
