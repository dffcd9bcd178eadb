"""The issue's quality targets on real MNIST (marked slow; skipped with the
fetch command when the data is absent), and the recipes' model shapes."""
import os

import numpy
import pytest

from fastnn import recipes
from fastnn.datasets import load_mnist
from fastnn.datasets.mnist import default_data_dir

HAVE_MNIST = os.path.exists(os.path.join(default_data_dir("mnist"), "t10k-labels-idx1-ubyte.gz"))
needs_mnist = pytest.mark.skipif(not HAVE_MNIST, reason=(
    f"MNIST not found in {default_data_dir('mnist')}; fetch it with "
    "`bash ../shared/data/fetch.sh` (or set FASTNN_DATA)"))


@pytest.mark.parametrize("kind", recipes.AUTOENCODER_KINDS)
def test_autoencoder_shapes(kind):
    model = recipes.autoencoder(kind)
    assert model.outputs[0].shape == (784,)
    assert model.get_layer("code").units == 32
    x = numpy.random.default_rng(0).random((3, 784), dtype=numpy.float32)
    y = model.predict(x)
    assert y.shape == (3, 784) and (y > 0).all() and (y < 1).all()


def test_unknown_autoencoder_kind():
    with pytest.raises(ValueError, match="expected one of"):
        recipes.autoencoder("variational")


@pytest.mark.slow
@needs_mnist
def test_mnist_mlp_reaches_98_percent_in_10_epochs():
    result = recipes.train_mnist_mlp(load_mnist(), epochs=10, verbose=0, seed=0)
    assert result["test_accuracy"] >= 0.98, result["test_accuracy"]


@pytest.mark.slow
@needs_mnist
def test_dense_autoencoder_bce_below_0_10():
    (x_train, y_train), (x_test, y_test) = load_mnist()
    result = recipes.train_autoencoder(((x_train, None), (x_test, None)), kind="dense",
                                       epochs=20, verbose=0, seed=0)
    assert result["test_bce"] <= 0.10, result["test_bce"]
