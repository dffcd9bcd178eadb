"""Keras's "simple MNIST convnet", written as in Keras: two 3x3 convolutions
with max pooling, dropout, a softmax classifier; Adam, batch 128.

    bash ../shared/data/fetch.sh            # once: MNIST into ~/.cache/fastnn-data
    python examples/mnist_cnn.py [--data DIR] [--epochs 12] [--plot out/]

Trains on all 60,000 training images with the learning rate cosine-decayed to
zero (Keras's example holds out 10% for validation and keeps it constant) and
prints the test accuracy: at least 99.2% after 12 epochs
(tests/test_recipes.py checks it on the real data). ``fastnn cnn`` runs the
same network (fastnn.recipes.mnist_convnet).
"""
import argparse
import math
import os

import numpy as np

import fastnn
from fastnn import layers
from fastnn.datasets import load_mnist


def main(argv=None):
    parser = argparse.ArgumentParser(description="Keras's MNIST convnet")
    parser.add_argument("--data", default=None, help="folder with the MNIST .gz files "
                        "(default: $FASTNN_DATA/mnist or ~/.cache/fastnn-data/mnist)")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N training "
                        "and N/6 test images (quick runs)")
    parser.add_argument("--plot", default=None, help="folder for PNG plots (needs matplotlib)")
    parser.add_argument("--verbose", type=int, default=1, choices=[0, 1, 2])
    args = parser.parse_args(argv)

    num_classes, input_shape, batch_size = 10, (28, 28, 1), 128
    (x_train, y_train), (x_test, y_test) = load_mnist(args.data)
    if args.limit:
        x_train, y_train = x_train[:args.limit], y_train[:args.limit]
        x_test, y_test = x_test[:max(1, args.limit // 6)], y_test[:max(1, args.limit // 6)]
    # Scale images to the [0, 1] range; make sure images have shape (28, 28, 1).
    x_train = np.expand_dims(x_train.astype("float32") / 255, -1)
    x_test = np.expand_dims(x_test.astype("float32") / 255, -1)

    fastnn.set_seed(0)
    model = fastnn.Sequential([
        fastnn.Input(shape=input_shape),
        layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Flatten(),
        layers.Dropout(0.5),
        layers.Dense(num_classes, activation="softmax"),
    ])
    if args.verbose:
        model.summary()
    steps = args.epochs * math.ceil(len(x_train) / batch_size)
    model.compile(loss="sparse_categorical_crossentropy",
                  optimizer=fastnn.optimizers.Adam(fastnn.optimizers.CosineDecay(3e-3, steps)),
                  metrics=["accuracy"])
    history = model.fit(x_train, y_train, batch_size=batch_size, epochs=args.epochs,
                        verbose=args.verbose)
    loss, accuracy = model.evaluate(x_test, y_test, batch_size=1000)
    print(f"test accuracy {accuracy:.4f}  test loss {loss:.4f}")
    if args.plot:
        os.makedirs(args.plot, exist_ok=True)
        path = os.path.join(args.plot, "mnist_cnn_history.png")
        history.plot(path)
        print(f"wrote {path}")
    return {"model": model, "history": history, "test_accuracy": accuracy, "test_loss": loss}


if __name__ == "__main__":
    main()
