"""Classic Keras 2 code, run with only the imports changed (keras -> fastnn).

Each test holds a snippet as its authors wrote it; the only other changes are
the data (small synthetic arrays of the same shapes instead of MNIST) and the
number of epochs, so the file runs in seconds without a download. If one of
these fails, a Keras user pasting the same code fails too.
"""
import numpy
import pytest


@pytest.fixture
def mnist_like():
    """(x_train, y_train), (x_test, y_test) shaped like flattened MNIST:
    images in [0, 1] whose class decides which pixels are bright."""
    rng = numpy.random.default_rng(0)
    prototypes = rng.random((10, 784)) < 0.2

    def make(n):
        y = rng.integers(0, 10, n)
        x = numpy.clip(prototypes[y] * 0.8 + rng.random((n, 784)) * 0.3, 0, 1)
        return x.astype("float32"), y

    return make(256), make(64)


def test_course_autoencoder_slide(mnist_like, capsys):
    """The course's "Autoencoder example in Keras" slides, lines as on the slides."""
    from fastnn import optimizers
    from fastnn.layers import Dense, Input
    from fastnn.models import Model
    (x_train, _), (x_test, _) = mnist_like

    ## Build Autoencoder model
    # this is our input placeholder
    input_img = Input(shape=(784,))

    # "encoded" is the encoded representation of the input
    encoded = Dense(32,
                    activation='relu')(input_img)

    # "decoded" is the lossy reconstruction of the input
    decoded = Dense(784,
                    activation='sigmoid')(encoded)

    # this model maps an input to its reconstruction
    autoencoder = Model(input_img, decoded)

    ## Show model information
    autoencoder.summary()

    with pytest.warns(DeprecationWarning, match="learning_rate"):  # lr= is Keras 2's spelling
        o_RMSprop = optimizers.RMSprop(lr=0.001,
                                       rho=0.9,
                                       epsilon=None,
                                       decay=0.0)

    ## Set train methodology
    autoencoder.compile(loss='binary_crossentropy',
                        optimizer=o_RMSprop)

    ## Train model with train set.
    history = autoencoder.fit(x=x_train, y=x_train,
                              batch_size=128, epochs=10,
                              shuffle=True,
                              validation_data=(x_test, x_test))

    out = capsys.readouterr().out
    assert "input_layer" in out and "(InputLayer)" in out and "25,120" in out
    assert history.history["val_loss"][-1] < history.history["val_loss"][0]
    assert autoencoder.predict(x_test).shape == (64, 784)


def test_keras_blog_autoencoder_with_encoder_and_decoder(mnist_like):
    """"Building Autoencoders in Keras" (the Keras blog): the simplest one,
    with adadelta, then an encoder and a decoder made from its layers."""
    from fastnn.layers import Dense, Input
    from fastnn.models import Model
    (x_train, _), (x_test, _) = mnist_like

    encoding_dim = 32
    input_img = Input(shape=(784,))
    encoded = Dense(encoding_dim, activation='relu')(input_img)
    decoded = Dense(784, activation='sigmoid')(encoded)
    autoencoder = Model(input_img, decoded)

    encoder = Model(input_img, encoded)
    encoded_input = Input(shape=(encoding_dim,))
    decoder_layer = autoencoder.layers[-1]
    decoder = Model(encoded_input, decoder_layer(encoded_input))

    autoencoder.compile(optimizer='adadelta', loss='binary_crossentropy')
    history = autoencoder.fit(x_train, x_train,
                              epochs=5,
                              batch_size=256,
                              shuffle=True,
                              validation_data=(x_test, x_test),
                              verbose=0)

    encoded_imgs = encoder.predict(x_test)
    decoded_imgs = decoder.predict(encoded_imgs)

    assert history.history["loss"][-1] < history.history["loss"][0]
    assert encoded_imgs.shape == (64, 32)
    numpy.testing.assert_allclose(decoded_imgs, autoencoder.predict(x_test), rtol=1e-5, atol=1e-6)


def test_keras_mnist_mlp(mnist_like, capsys):
    """keras/examples/mnist_mlp.py (Keras 2), from the data preparation on."""
    import fastnn as keras
    from fastnn.layers import Dense, Dropout
    from fastnn.models import Sequential
    from fastnn.optimizers import RMSprop

    batch_size = 128
    num_classes = 10
    epochs = 3
    (x_train, y_train), (x_test, y_test) = mnist_like

    x_train = x_train.reshape(256, 784)  # 60000 and 10000 in the original
    x_test = x_test.reshape(64, 784)
    x_train = x_train.astype('float32')
    x_test = x_test.astype('float32')
    print(x_train.shape[0], 'train samples')
    print(x_test.shape[0], 'test samples')

    # convert class vectors to binary class matrices
    y_train = keras.utils.to_categorical(y_train, num_classes)
    y_test = keras.utils.to_categorical(y_test, num_classes)

    model = Sequential()
    model.add(Dense(512, activation='relu', input_shape=(784,)))
    model.add(Dropout(0.2))
    model.add(Dense(512, activation='relu'))
    model.add(Dropout(0.2))
    model.add(Dense(num_classes, activation='softmax'))

    model.summary()

    model.compile(loss='categorical_crossentropy',
                  optimizer=RMSprop(),
                  metrics=['accuracy'])

    history = model.fit(x_train, y_train,
                        batch_size=batch_size,
                        epochs=epochs,
                        verbose=1,
                        validation_data=(x_test, y_test))
    score = model.evaluate(x_test, y_test, verbose=0)
    print('Test loss:', score[0])
    print('Test accuracy:', score[1])

    out = capsys.readouterr().out
    assert "669,706" in out  # Total params, as Keras prints for this model
    assert score[1] > 0.9 and len(history.history["val_accuracy"]) == 3


def test_keras2_input_dim_sequential(mnist_like):
    """The Keras 2 guide's first Sequential model, with input_dim."""
    from fastnn.layers import Activation, Dense
    from fastnn.models import Sequential
    (data, y), _ = mnist_like
    labels = (y % 2).reshape(-1, 1)

    model = Sequential()
    model.add(Dense(32, input_dim=784))
    model.add(Activation('relu'))
    model.add(Dense(1, activation='sigmoid'))
    model.compile(optimizer='rmsprop',
                  loss='binary_crossentropy',
                  metrics=['accuracy'])
    model.fit(data, labels, epochs=10, batch_size=32, verbose=0)
    assert model.evaluate(data, labels)[1] > 0.9


def test_functional_model_with_two_branches(mnist_like, tmp_path):
    """The functional API: a shared trunk, two branches, merged, then saved
    and reloaded (to_json / model_from_json for the architecture)."""
    from fastnn.layers import Dense, Input, LeakyReLU, concatenate
    from fastnn.models import Model, load_model, model_from_json
    (data, y), _ = mnist_like
    labels = numpy.eye(10, dtype="float32")[y]

    inputs = Input(shape=(784,))
    x = Dense(64, activation='relu')(inputs)
    a = Dense(32, activation=LeakyReLU(0.2))(x)
    b = Dense(32, activation='tanh')(x)
    merged = concatenate([a, b])
    predictions = Dense(10, activation='softmax')(merged)

    model = Model(inputs=inputs, outputs=predictions)
    model.compile(optimizer='rmsprop',
                  loss='categorical_crossentropy',
                  metrics=['accuracy'])
    model.fit(data, labels, epochs=5, verbose=0)  # starts training

    json_string = model.to_json()
    clone = model_from_json(json_string)
    clone.set_weights(model.get_weights())
    numpy.testing.assert_allclose(clone.predict(data), model.predict(data), rtol=1e-5, atol=1e-7)

    model.save(str(tmp_path / 'my_model.fastnn'))
    del model
    model = load_model(str(tmp_path / 'my_model.fastnn'))
    assert model.evaluate(data, labels, verbose=0)[1] > 0.9
    with pytest.raises(ValueError, match=r"'\.fastnn' suffix"):
        model.save(str(tmp_path / 'my_model.h5'))
