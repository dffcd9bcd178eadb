"""Autoencoders on MNIST: the single-layer one (784-32-784), a stacked one, a
denoising one (Gaussian input noise) and a sparse one (KL sparsity penalty),
each reporting its test reconstruction error.

    bash ../shared/data/fetch.sh            # once: MNIST into ~/.cache/fastnn-data
    python examples/mnist_autoencoders.py [--kind dense|stacked|denoising|sparse|all]
                                          [--epochs 20] [--plot out/]

Ideas to push further (the "boosting" list): deeper stacks (--hidden 256 128),
other losses (--loss mse), optimizers and activations (--activation elu),
stronger input noise (--noise 0.5), more sparsity (--sparsity 0.02).
With matplotlib and --plot, writes training curves and a grid of original
(top) against reconstructed (bottom) digits for each kind.
"""
import argparse
import os

import numpy

from fastnn import recipes
from fastnn.datasets import load_mnist


def plot_reconstructions(originals, reconstructions, path, n=10):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, n, figsize=(n, 2.2))
    for i in range(n):
        for row, images in enumerate((originals, reconstructions)):
            ax = axes[row, i]
            ax.imshow(images[i].reshape(28, 28), cmap="gray", vmin=0, vmax=1)
            ax.axis("off")
    fig.suptitle("original (top) / reconstructed (bottom)")
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Autoencoders on MNIST")
    parser.add_argument("--data", default=None, help="folder with the MNIST .gz files")
    parser.add_argument("--kind", default="all", choices=list(recipes.AUTOENCODER_KINDS) + ["all"])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--code", type=int, default=32, help="code (bottleneck) size")
    parser.add_argument("--hidden", type=int, nargs="*", default=[128, 64],
                        help="encoder hidden sizes for stacked/denoising")
    parser.add_argument("--activation", default="relu")
    parser.add_argument("--loss", default="binary_crossentropy")
    parser.add_argument("--noise", type=float, default=0.3, help="denoising: input noise stddev")
    parser.add_argument("--sparsity", type=float, default=0.05, help="sparse: target activation")
    parser.add_argument("--limit", type=int, default=None, help="use only N training images")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--plot", default=None, help="folder for PNG plots (needs matplotlib)")
    parser.add_argument("--verbose", type=int, default=2, choices=[0, 1, 2])
    args = parser.parse_args(argv)

    (x_train, y_train), (x_test, y_test) = load_mnist(args.data)
    if args.limit:
        x_train, x_test = x_train[:args.limit], x_test[:max(1, args.limit // 6)]
    kinds = recipes.AUTOENCODER_KINDS if args.kind == "all" else [args.kind]
    results = {}
    for kind in kinds:
        code = args.code * 4 if kind == "sparse" else args.code
        result = recipes.train_autoencoder(
            ((x_train, None), (x_test, None)), kind=kind, epochs=args.epochs,
            batch_size=args.batch_size,
            verbose=args.verbose, code=code, hidden=tuple(args.hidden),
            activation=args.activation, loss=args.loss, noise=args.noise, sparsity=args.sparsity)
        results[kind] = result
        print(f"{kind:10s} test per-pixel BCE {result['test_bce']:.4f}  MSE {result['test_mse']:.4f}"
              f"  ({result['train_seconds']:.1f} s)")
        if args.plot:
            os.makedirs(args.plot, exist_ok=True)
            result["history"].plot(os.path.join(args.plot, f"{kind}_history.png"))
            plot_reconstructions(recipes.pixels(x_test), result["reconstruction"],
                                 os.path.join(args.plot, f"{kind}_reconstructions.png"))
    if args.plot:
        print(f"wrote plots to {args.plot}")
    return results


if __name__ == "__main__":
    numpy.set_printoptions(precision=4)
    main()
