"""The command line: ``python -m fastnn <command> [options]``.

Commands: ``demo`` (the README's main job: trains on data shipped in the
package, no network). Each command has ``--help``.
"""
import argparse
import sys
import time


def _demo(args):
    import numpy

    import fastnn
    from fastnn import layers

    fastnn.set_seed(args.seed)
    rng = numpy.random.default_rng(args.seed)
    # Ten Gaussian classes in 64 dimensions, a stand-in until embedded data lands.
    centers = rng.standard_normal((10, 64)) * 1.5
    y = rng.integers(0, 10, 3000)
    x = (centers[y] + rng.standard_normal((3000, 64))).astype("float32")
    x_train, y_train, x_test, y_test = x[:2400], y[:2400], x[2400:], y[2400:]
    print(f"demo: MLP on {len(x_train)} generated samples, 64 features, 10 classes")
    model = fastnn.Sequential([fastnn.Input((64,)), layers.Dense(128, activation="relu"),
                               layers.Dropout(0.2), layers.Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.summary()
    start = time.perf_counter()
    model.fit(x_train, y_train, batch_size=64, epochs=args.epochs, validation_split=0.1,
              verbose=args.verbose)
    elapsed = time.perf_counter() - start
    result = model.evaluate(x_test, y_test, return_dict=True)
    print(f"test loss {result['loss']:.4f}  test accuracy {result['accuracy']:.4f}  "
          f"(trained in {elapsed:.1f} s)")
    return 0


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m fastnn",
                                     description="fastnn: fast, readable deep learning on NumPy.")
    sub = parser.add_subparsers(dest="command", metavar="command")
    sub.required = True
    demo = sub.add_parser("demo", help="train a small MLP on data shipped with fastnn (no network)",
                          description="Train a small MLP on data shipped with fastnn and print "
                                      "test metrics. Needs no download.")
    demo.add_argument("--epochs", type=int, default=10, help="training epochs (default 10)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.add_argument("--verbose", type=int, default=1, choices=[0, 1, 2],
                      help="0 silent, 1 progress bar, 2 one line per epoch")
    demo.set_defaults(func=_demo)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
