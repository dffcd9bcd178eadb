"""The issue's quality targets on real MNIST and Fashion-MNIST (marked slow;
skipped with the fetch command when the data is absent), and the recipes'
model shapes; the convolutional recipes also train a step on every model
backend (the strict one included)."""
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
HAVE_FASHION = os.path.exists(os.path.join(default_data_dir("fashion"),
                                           "t10k-labels-idx1-ubyte.gz"))
needs_fashion = pytest.mark.skipif(not HAVE_FASHION, reason=(
    f"Fashion-MNIST not found in {default_data_dir('fashion')}; fetch it with "
    "`bash ../shared/data/fetch.sh --fashion` (or set FASTNN_DATA)"))


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


def test_images_scale_and_add_the_channel_axis():
    x = numpy.array([[[0, 255], [51, 102]]], dtype=numpy.uint8)
    out = recipes.images(x)
    assert out.shape == (1, 2, 2, 1) and out.dtype == numpy.float32
    numpy.testing.assert_allclose(out[0, :, :, 0], [[0, 1], [0.2, 0.4]], rtol=1e-6)


CNN_SHAPES = {
    # builder, input shape, output shape, layer classes that must appear
    "mnist_convnet": (recipes.mnist_convnet, (28, 28, 1), (10,),
                      {"Conv2D", "MaxPooling2D", "Flatten", "Dropout", "Dense"}),
    "residual_separable_net": (recipes.residual_separable_net, (28, 28, 1), (10,),
                               {"SeparableConv2D", "BatchNormalization", "Add",
                                "GlobalAveragePooling2D"}),
    "conv_autoencoder": (recipes.conv_autoencoder, (28, 28, 1), (28, 28, 1),
                         {"GaussianNoise", "Conv2D", "MaxPooling2D", "Conv2DTranspose"}),
    "digits_convnet": (recipes.digits_convnet, (8, 8, 1), (10,), {"Conv2D", "MaxPooling2D"}),
}


@pytest.mark.parametrize("name", CNN_SHAPES)
def test_cnn_recipes_train_a_step_on_every_backend(name, model_ops):
    build, in_shape, out_shape, classes = CNN_SHAPES[name]
    model = build()
    assert classes <= {l.__class__.__name__ for l in model.layers}
    assert tuple(model.outputs[0].shape) == out_shape
    rng = numpy.random.default_rng(0)
    x = rng.random((4,) + in_shape, dtype=numpy.float32)
    y = x if out_shape == in_shape else rng.integers(0, 10, 4)
    before = [w.copy() for w in model.get_weights()]
    for _ in range(2):
        loss = model.train_on_batch(x, y, return_dict=True)["loss"]
        assert numpy.isfinite(loss)
    after = model.get_weights()
    assert len(after) == len(before)
    # Every weight moves: trainable ones by Adam, batch norm's moving statistics
    # by the training forward pass.
    assert all(not numpy.array_equal(a, b) for a, b in zip(before, after))
    pred = model.predict(x)
    assert pred.shape == (4,) + out_shape and numpy.isfinite(pred).all()


def test_residual_net_has_a_projection_shortcut_per_width_change():
    model = recipes.residual_separable_net(widths=(16, 16, 24), stem=16)
    names = [l.name for l in model.layers]
    assert "block1_project" not in names and "block2_project" not in names
    assert "block3_project" in names
    assert sum(l.__class__.__name__ == "Add" for l in model.layers) == 3


def test_train_cnn_rejects_the_autoencoder_kind():
    with pytest.raises(ValueError, match="unknown classifier kind 'autoencoder'"):
        recipes.train_cnn(None, kind="autoencoder")


@pytest.mark.slow
@needs_mnist
def test_mnist_convnet_reaches_99_2_percent_in_12_epochs():
    result = recipes.train_cnn(load_mnist(), kind="mnist", epochs=12, verbose=0, seed=0)
    assert result["test_accuracy"] >= 0.992, result["test_accuracy"]


def test_train_cnn_takes_the_kinds_defaults_unless_given():
    # Fashion-MNIST's kind: 16 epochs on images shifted by up to a pixel; a caller's
    # own epochs and builder arguments win. A slice of 16 images keeps it quick.
    rng = numpy.random.default_rng(0)
    x = rng.integers(0, 256, (16, 28, 28), dtype=numpy.uint8)
    y = rng.integers(0, 10, 16)
    data = ((x, y), (x[:4], y[:4]))
    assert recipes.CNN_DEFAULTS["fashion"] == (16, {"translation": 0.04})
    result = recipes.train_cnn(data, kind="fashion", batch_size=16, verbose=0)
    assert len(result["history"].history["loss"]) == 16
    translate = result["model"].get_layer("translate")
    assert (translate.height_factor, translate.width_factor) == (0.04, 0.04)
    result = recipes.train_cnn(data, kind="fashion", epochs=1, batch_size=16, verbose=0,
                               translation=0.0)
    assert len(result["history"].history["loss"]) == 1
    assert "translate" not in [layer.name for layer in result["model"].layers]


@pytest.mark.slow
@needs_fashion
def test_fashion_residual_net_accuracy():
    """Issue 16's target, 92.5%, with the fashion kind's defaults (16 epochs,
    shifts of up to one pixel; about 11 minutes on two cores): seeds 0 and 1
    measure 92.66% and 92.67%. Without the shifts, 12 epochs gave 92.47%,
    92.11% and 91.81% (seeds 0-2)."""
    from fastnn.datasets import load_fashion_mnist
    result = recipes.train_cnn(load_fashion_mnist(), kind="fashion", verbose=0, seed=0)
    assert result["test_accuracy"] >= 0.925, result["test_accuracy"]


@pytest.mark.slow
@needs_mnist
def test_denoising_conv_autoencoder_bce():
    (x_train, _), (x_test, _) = load_mnist()
    result = recipes.train_conv_autoencoder(((x_train, None), (x_test, None)), epochs=5,
                                            verbose=0, seed=0)
    assert result["test_bce"] <= 0.11, result["test_bce"]
    # Far better than handing back the noisy input (clipped into (0, 1)).
    clean, noisy = recipes.images(x_test), numpy.clip(result["noisy"], 1e-7, 1 - 1e-7)
    as_is = float(-numpy.mean(clean * numpy.log(noisy) + (1 - clean) * numpy.log1p(-noisy)))
    assert result["test_bce"] < as_is / 2, (result["test_bce"], as_is)


def test_residual_net_flip_option_adds_random_flip_first():
    model = recipes.residual_separable_net(widths=(8,), stem=4, flip=True)
    names = [layer.name for layer in model.layers]
    flip = model.layers[names.index("flip")]
    assert type(flip).__name__ == "RandomFlip" and flip.mode == "horizontal"
    assert names.index("flip") < names.index("stem")
    assert "flip" not in [layer.name for layer in recipes.residual_separable_net().layers]
    x = numpy.random.default_rng(0).random((4, 28, 28, 1)).astype("float32")
    model.fit(x, numpy.arange(4), epochs=1, batch_size=4, verbose=0)
    assert numpy.isfinite(model.evaluate(x, numpy.arange(4), verbose=0)[0])


def test_residual_net_translation_and_weight_decay_options():
    model = recipes.residual_separable_net(widths=(8,), stem=4, translation=0.1,
                                           weight_decay=0.05)
    names = [layer.name for layer in model.layers]
    shift = model.layers[names.index("translate")]
    assert type(shift).__name__ == "RandomTranslation" and shift.height_factor == 0.1
    assert shift.fill_mode == "constant" and shift.interpolation == "nearest"
    assert names.index("translate") < names.index("stem")
    assert type(model.optimizer).__name__ == "AdamW" and model.optimizer.weight_decay == 0.05
    plain = recipes.residual_separable_net(widths=(8,), stem=4)
    assert "translate" not in [layer.name for layer in plain.layers]
    assert type(plain.optimizer).__name__ == "Adam"
    x = numpy.random.default_rng(0).random((4, 28, 28, 1)).astype("float32")
    model.fit(x, numpy.arange(4), epochs=1, batch_size=4, verbose=0)
    assert numpy.isfinite(model.evaluate(x, numpy.arange(4), verbose=0)[0])


def test_residual_net_label_smoothing_option():
    from fastnn import losses
    model = recipes.residual_separable_net(widths=(8,), stem=4, label_smoothing=0.1)
    assert type(model.loss) is losses.SparseCategoricalCrossentropy
    assert model.loss.label_smoothing == 0.1
    assert recipes.residual_separable_net(widths=(8,), stem=4).loss.label_smoothing == 0.0
    x = numpy.random.default_rng(0).random((4, 28, 28, 1)).astype("float32")
    model.fit(x, numpy.arange(4), epochs=1, batch_size=4, verbose=0)
    assert numpy.isfinite(model.evaluate(x, numpy.arange(4), verbose=0)[0])
