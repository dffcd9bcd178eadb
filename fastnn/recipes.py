"""Ready-made models and training runs that the command line, the examples and
the tests share: the MNIST MLP classifier and the MNIST autoencoders (stacked,
denoising, sparse). Each builder returns an uncompiled or compiled model; each
``train_*`` function returns a dict of results. Data loading stays outside.
"""
import time

import numpy

from . import layers as L
from . import optimizers, regularizers
from .model import Sequential
from .layers import Input


def mnist_mlp(hidden=(256, 128), activation="relu", dropout=0.0, n_inputs=784, n_classes=10,
              learning_rate=1e-3):
    """The 784-256-128-10 classifier: ReLU hidden layers, softmax output, Adam
    (``learning_rate`` may be a schedule)."""
    stack = [Input((n_inputs,))]
    for units in hidden:
        stack.append(L.Dense(units, activation=activation))
        if dropout:
            stack.append(L.Dropout(dropout))
    stack.append(L.Dense(n_classes, activation="softmax"))
    model = Sequential(stack, name="mnist_mlp")
    model.compile(optimizers.Adam(learning_rate), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


AUTOENCODER_KINDS = ("dense", "stacked", "denoising", "sparse")


def autoencoder(kind="dense", n_inputs=784, code=32, hidden=(128, 64), activation="relu",
                noise=0.3, sparsity=0.05, sparsity_weight=0.1, loss="binary_crossentropy",
                learning_rate=1e-3):
    """An MNIST autoencoder with a sigmoid output on pixels scaled to [0, 1].

    * ``dense``: 784-code-784, the Keras blog's single-layer autoencoder;
    * ``stacked``: 784-128-64-code-64-128-784 (``hidden`` sets the stack);
    * ``denoising``: the stacked one trained on inputs corrupted with Gaussian
      noise of standard deviation ``noise`` (clean targets);
    * ``sparse``: a wider sigmoid code with a KL sparsity penalty driving each
      code unit's mean activation to ``sparsity``.
    """
    if kind not in AUTOENCODER_KINDS:
        raise ValueError(f"unknown autoencoder kind {kind!r}; expected one of {AUTOENCODER_KINDS}")
    stack = [Input((n_inputs,))]
    if kind == "denoising":
        stack.append(L.GaussianNoise(noise))
    encoder = list(hidden) if kind in ("stacked", "denoising") else []
    for units in encoder:
        stack.append(L.Dense(units, activation=activation))
    if kind == "sparse":
        stack.append(L.Dense(code, activation="sigmoid", name="code",
                             activity_regularizer=regularizers.KLSparsity(sparsity, sparsity_weight)))
    else:
        stack.append(L.Dense(code, activation=activation, name="code"))
    for units in reversed(encoder):
        stack.append(L.Dense(units, activation=activation))
    stack.append(L.Dense(n_inputs, activation="sigmoid", name="reconstruction"))
    model = Sequential(stack, name=f"{kind}_autoencoder")
    model.compile(optimizers.Adam(learning_rate), loss, metrics=["mse"])
    return model


def pixels(images):
    """uint8 images (n, 28, 28) -> float32 rows (n, 784) in [0, 1]."""
    images = numpy.asarray(images)
    return (images.reshape(len(images), -1) / numpy.float32(255)).astype(numpy.float32)


def train_mnist_mlp(data, epochs=10, batch_size=128, verbose=1, callbacks=None, seed=0,
                    learning_rate=1e-3, cosine_decay=True, **model_kwargs):
    """Train the MLP on ``data = ((x_train, y_train), (x_test, y_test))`` (uint8
    images); returns the model, its history and test loss/accuracy. By default
    the learning rate follows a cosine decay to zero over the run."""
    import math

    from .random import set_seed
    (x_train, y_train), (x_test, y_test) = data
    set_seed(seed)
    if cosine_decay:
        steps = epochs * math.ceil(len(x_train) / batch_size)
        learning_rate = optimizers.CosineDecay(learning_rate, max(1, steps))
    model = mnist_mlp(learning_rate=learning_rate, **model_kwargs)
    start = time.perf_counter()
    history = model.fit(pixels(x_train), y_train, batch_size=batch_size, epochs=epochs,
                        verbose=verbose, callbacks=callbacks)
    seconds = time.perf_counter() - start
    result = model.evaluate(pixels(x_test), y_test, batch_size=1024, return_dict=True)
    return {"model": model, "history": history, "test_loss": result["loss"],
            "test_accuracy": result["accuracy"], "train_seconds": seconds}


def train_autoencoder(data, kind="dense", epochs=20, batch_size=256, verbose=1, callbacks=None,
                      seed=0, **model_kwargs):
    """Train an autoencoder on the MNIST images; returns the model, its history
    and the test per-pixel binary cross-entropy and MSE of the reconstruction."""
    from .losses import BinaryCrossentropy
    from .random import set_seed
    (x_train, _), (x_test, _) = data
    set_seed(seed)
    model = autoencoder(kind, **model_kwargs)
    train, test = pixels(x_train), pixels(x_test)
    start = time.perf_counter()
    history = model.fit(train, train, batch_size=batch_size, epochs=epochs, verbose=verbose,
                        validation_data=(test, test), callbacks=callbacks)
    seconds = time.perf_counter() - start
    recon = model.predict(test, batch_size=1024)
    return {"model": model, "history": history, "reconstruction": recon,
            "test_bce": BinaryCrossentropy()(test, recon),
            "test_mse": float(numpy.mean((recon - test) ** 2, dtype=numpy.float64)),
            "train_seconds": seconds}
