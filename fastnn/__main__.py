"""The command line: ``python -m fastnn <command> [options]``.

Commands: ``demo`` (the README's main job: trains on data shipped in the
package, no network), ``mnist`` (the MLP on real MNIST), ``autoencoder``
(MNIST autoencoders). Each command has ``--help``.
"""
import argparse
import sys
import time


def _demo(args):
    import fastnn
    from fastnn import layers
    from fastnn.datasets import load_digits

    fastnn.set_seed(args.seed)
    (x_train, y_train), (x_test, y_test) = load_digits(return_split=True, seed=args.seed)
    print(f"demo: MLP on the embedded UCI handwritten digits (8x8, CC BY 4.0): "
          f"{len(x_train)} training and {len(x_test)} test images, 10 classes")
    model = fastnn.Sequential([fastnn.Input((64,)), layers.Dense(128, activation="relu"),
                               layers.Dropout(0.2), layers.Dense(64, activation="relu"),
                               layers.Dense(10, activation="softmax")], name="digits_mlp")
    model.compile(fastnn.optimizers.Adam(3e-3), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.summary()
    start = time.perf_counter()
    model.fit(x_train, y_train, batch_size=32, epochs=args.epochs, validation_split=0.1,
              verbose=args.verbose)
    elapsed = time.perf_counter() - start
    result = model.evaluate(x_test, y_test, return_dict=True)
    print(f"test loss {result['loss']:.4f}  test accuracy {result['accuracy']:.4f}  "
          f"(trained in {elapsed:.1f} s)")
    return 0


def _mnist(args):
    from fastnn import recipes
    from fastnn.datasets import load_mnist

    data = load_mnist(args.data, kind=args.kind)
    if args.limit:
        (xt, yt), (xs, ys) = data
        data = (xt[:args.limit], yt[:args.limit]), (xs[:max(1, args.limit // 6)], ys[:max(1, args.limit // 6)])
    print(f"{args.kind}: {len(data[0][0])} training and {len(data[1][0])} test images; "
          f"MLP 784-{'-'.join(map(str, args.hidden))}-10, Adam, batch {args.batch_size}")
    result = recipes.train_mnist_mlp(data, epochs=args.epochs, batch_size=args.batch_size,
                                     verbose=args.verbose, seed=args.seed,
                                     hidden=tuple(args.hidden), learning_rate=args.lr)
    print(f"test accuracy {result['test_accuracy']:.4f}  test loss {result['test_loss']:.4f}  "
          f"({result['train_seconds']:.1f} s training)")
    if args.save:
        result["model"].save(args.save)
        print(f"saved the model to {args.save}")
    return 0


def _autoencoder(args):
    from fastnn import recipes
    from fastnn.datasets import load_mnist

    (xt, yt), (xs, ys) = load_mnist(args.data)
    if args.limit:
        xt, xs = xt[:args.limit], xs[:max(1, args.limit // 6)]
    result = recipes.train_autoencoder(((xt, None), (xs, None)), kind=args.kind,
                                       epochs=args.epochs, verbose=args.verbose, seed=args.seed,
                                       code=args.code)
    print(f"{args.kind} autoencoder: test per-pixel binary cross-entropy {result['test_bce']:.4f}, "
          f"MSE {result['test_mse']:.4f} ({result['train_seconds']:.1f} s training)")
    return 0


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m fastnn",
                                     description="fastnn: fast, readable deep learning on NumPy.")
    sub = parser.add_subparsers(dest="command", metavar="command")
    sub.required = True
    demo = sub.add_parser("demo", help="train a small MLP on data shipped with fastnn (no network)",
                          description="Train a small MLP on data shipped with fastnn and print "
                                      "test metrics. Needs no download.")
    demo.add_argument("--epochs", type=int, default=30, help="training epochs (default 30)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.add_argument("--verbose", type=int, default=1, choices=[0, 1, 2],
                      help="0 silent, 1 progress bar, 2 one line per epoch")
    demo.set_defaults(func=_demo)

    data_help = ("folder with the MNIST IDX .gz files (default: $FASTNN_DATA/mnist or "
                 "~/.cache/fastnn-data/mnist; fetch them with ../shared/data/fetch.sh)")
    mnist = sub.add_parser("mnist", help="train the 784-256-128-10 MLP on MNIST",
                           description="Train an MLP classifier on MNIST (or Fashion-MNIST) "
                                       "and print its test accuracy.")
    mnist.add_argument("--data", default=None, help=data_help)
    mnist.add_argument("--kind", default="mnist", choices=["mnist", "fashion"])
    mnist.add_argument("--epochs", type=int, default=10, help="training epochs (default 10)")
    mnist.add_argument("--batch-size", type=int, default=128)
    mnist.add_argument("--hidden", type=int, nargs="+", default=[256, 128],
                       help="hidden layer sizes (default 256 128)")
    mnist.add_argument("--lr", type=float, default=1e-3, help="initial Adam learning rate "
                       "(cosine-decayed to zero)")
    mnist.add_argument("--limit", type=int, default=None, help="use only N training images")
    mnist.add_argument("--seed", type=int, default=0)
    mnist.add_argument("--save", default=None, help="save the trained model to this file")
    mnist.add_argument("--verbose", type=int, default=1, choices=[0, 1, 2])
    mnist.set_defaults(func=_mnist)

    ae = sub.add_parser("autoencoder", help="train an autoencoder on MNIST",
                        description="Train a dense, stacked, denoising or sparse autoencoder on "
                                    "MNIST and print the test reconstruction error.")
    ae.add_argument("--data", default=None, help=data_help)
    ae.add_argument("--kind", default="dense", choices=["dense", "stacked", "denoising", "sparse"])
    ae.add_argument("--epochs", type=int, default=20)
    ae.add_argument("--code", type=int, default=32, help="code size (default 32)")
    ae.add_argument("--limit", type=int, default=None, help="use only N training images")
    ae.add_argument("--seed", type=int, default=0)
    ae.add_argument("--verbose", type=int, default=1, choices=[0, 1, 2])
    ae.set_defaults(func=_autoencoder)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
