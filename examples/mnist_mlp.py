"""MLP classifier on MNIST: 784-256-128-10, ReLU, softmax, Adam, batch 128.

    bash ../shared/data/fetch.sh            # once: MNIST into ~/.cache/fastnn-data
    python examples/mnist_mlp.py [--data DIR] [--epochs 10] [--plot out/]

Prints the test accuracy (about 98.3% after 10 epochs) and, with matplotlib
installed and --plot given, writes the training curves as a PNG.
"""
import argparse
import os

from fastnn import recipes
from fastnn.callbacks import EarlyStopping
from fastnn.datasets import load_mnist


def main(argv=None):
    parser = argparse.ArgumentParser(description="MLP classifier on MNIST")
    parser.add_argument("--data", default=None, help="folder with the MNIST .gz files "
                        "(default: $FASTNN_DATA/mnist or ~/.cache/fastnn-data/mnist)")
    parser.add_argument("--kind", default="mnist", choices=["mnist", "fashion"])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N training "
                        "and N/6 test images (quick runs)")
    parser.add_argument("--plot", default=None, help="folder for PNG plots (needs matplotlib)")
    parser.add_argument("--verbose", type=int, default=1, choices=[0, 1, 2])
    args = parser.parse_args(argv)

    (x_train, y_train), (x_test, y_test) = load_mnist(args.data, kind=args.kind)
    if args.limit:
        x_train, y_train = x_train[:args.limit], y_train[:args.limit]
        x_test, y_test = x_test[:max(1, args.limit // 6)], y_test[:max(1, args.limit // 6)]
    result = recipes.train_mnist_mlp(((x_train, y_train), (x_test, y_test)), epochs=args.epochs,
                                     verbose=args.verbose,
                                     callbacks=[EarlyStopping(monitor="loss", patience=3)])
    print(f"test accuracy {result['test_accuracy']:.4f}  test loss {result['test_loss']:.4f}  "
          f"({result['train_seconds']:.1f} s training)")
    if args.plot:
        os.makedirs(args.plot, exist_ok=True)
        path = os.path.join(args.plot, "mnist_mlp_history.png")
        result["history"].plot(path)
        print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
