"""Keras's import paths (fastnn.models, fastnn.utils), model.to_json /
model_from_json, and model files under Keras's names (.h5, .keras) refused."""
import json

import numpy
import pytest

import fastnn
from fastnn.layers import Concatenate, Dense, Input
from fastnn.models import Model, Sequential, load_model, model_from_json


def test_keras_import_paths():
    import fastnn.callbacks
    import fastnn.layers
    import fastnn.losses
    import fastnn.optimizers
    import fastnn.utils
    assert fastnn.models.Model is fastnn.Model and fastnn.models.Sequential is fastnn.Sequential
    assert load_model is fastnn.load_model
    assert fastnn.utils.to_categorical([0, 2]).tolist() == [[1, 0, 0], [0, 0, 1]]
    assert hasattr(fastnn.callbacks, "EarlyStopping") and hasattr(fastnn.losses, "get")


def _graph():
    a = Input(shape=(4,))
    left = Dense(3, activation="relu")(a)
    right = Dense(2, activation="tanh")(a)
    return Model(a, Dense(1, activation="sigmoid")(Concatenate()([left, right])))


@pytest.mark.parametrize("make", [_graph, lambda: Sequential([Input(shape=(4,)), Dense(3),
                                                              Dense(2, activation="softmax")])])
def test_to_json_round_trip(make, rng):
    model = make()
    text = model.to_json()
    assert json.loads(text)["model"]["class_name"] == type(model).__name__
    clone = model_from_json(text)
    assert type(clone) is type(model)
    assert [type(l).__name__ for l in clone.layers] == [type(l).__name__ for l in model.layers]
    assert [w.shape for w in clone.get_weights()] == [w.shape for w in model.get_weights()]
    clone.set_weights(model.get_weights())
    x = rng.random((5, 4)).astype("float32")
    numpy.testing.assert_allclose(clone.predict(x), model.predict(x), rtol=1e-6)
    assert clone.to_json() == text


@pytest.mark.parametrize("text,match", [("{not json", "not JSON"),
                                        ('{"class_name": "Model"}', "format"),
                                        ('{"format": "fastnn-model", "version": 99, "model": {}}',
                                         "version 99"),
                                        ('{"format": "fastnn-model", "version": 1, "model": {}}',
                                         "malformed")])
def test_model_from_json_bad_input(text, match):
    with pytest.raises(ValueError, match=match):
        model_from_json(text)


@pytest.mark.parametrize("name", ["m.h5", "m.keras", "M.HDF5", "w.weights.h5"])
def test_keras_suffixes_are_refused_naming_the_supported_one(name, tmp_path):
    model = _graph()
    with pytest.raises(ValueError, match=r"fastnn does not write Keras's .* '\.fastnn' suffix"):
        model.save(tmp_path / name)
    with pytest.raises(ValueError, match="cannot save the weights"):
        model.save_weights(str(tmp_path / name))
    assert list(tmp_path.iterdir()) == []  # nothing written under the Keras name


def test_fastnn_suffix_saves_and_loads(tmp_path):
    model = _graph()
    model.save(tmp_path / "m.fastnn")
    assert type(load_model(tmp_path / "m.fastnn")) is Model


def test_dense_input_dim_is_keras2_input_shape(rng):
    model = Sequential()
    model.add(Dense(5, activation="relu", input_dim=3))
    model.add(Dense(2))
    assert model.predict(rng.random((4, 3)).astype("float32")).shape == (4, 2)
    assert model.layers[0].params["kernel"].shape == (3, 5)
    with pytest.raises(ValueError, match="both input_dim=3 and input_shape"):
        Dense(2, input_dim=3, input_shape=(3,))
    with pytest.raises(ValueError, match="input_dim must be a positive integer"):
        Dense(2, input_dim=0)


def test_keras_automatic_names():
    from fastnn.layers import GlobalAveragePooling1D, LeakyReLU, ReLU
    from fastnn.layers.base import _snake
    assert [_snake(c.__name__) for c in (LeakyReLU, ReLU, GlobalAveragePooling1D, Dense)] == \
        ["leaky_re_lu", "re_lu", "global_average_pooling1d", "dense"]
    assert LeakyReLU().name.startswith("leaky_re_lu")


def _summary(model):
    lines = []
    model.summary(print_fn=lines.append)
    return lines[0].splitlines()


def test_summary_has_the_input_row_and_no_connected_column_for_a_chain():
    inp = Input(shape=(784,), name="img")
    model = Model(inp, Dense(784, activation="sigmoid", name="dec")(
        Dense(32, activation="relu", name="enc")(inp)))
    lines = _summary(model)
    assert "Connected to" not in lines[2]
    rows = [l for l in lines[4:] if "(" in l]
    assert rows[0].split() == ["img", "(InputLayer)", "(None,", "784)", "0"]
    assert rows[1].split()[:2] == ["enc", "(Dense)"] and rows[1].endswith("25,120")
    seq = Sequential([Input(shape=(4,), name="x_in"), Dense(2, name="d")])
    assert any(l.split()[:2] == ["x_in", "(InputLayer)"] for l in _summary(seq))


def test_summary_of_a_graph_has_connected_to():
    a = Input(shape=(4,), name="a")
    shared = Dense(4, name="shared")
    h = shared(shared(a))
    left, right = Dense(3, name="left")(h), Dense(2, name="right")(a)
    model = Model(a, Concatenate(name="cat")([left, right]))
    lines = _summary(model)
    assert lines[2].split()[-2:] == ["Connected", "to"]
    row = {l.split()[0]: l for l in lines if l.strip() and l.split()[0] in
           ("a", "shared", "left", "right", "cat")}
    assert row["right"].rstrip().endswith("a[0][0]")
    assert row["left"].rstrip().endswith("shared[1][0]")  # the second call of shared
    cat = lines.index(row["cat"])
    assert row["cat"].rstrip().endswith("left[0][0]") and lines[cat + 1].strip() == "right[0][0]"
    assert len(lines[1]) == 98


def test_functional_merge_forms(rng):
    from fastnn.layers import add, concatenate
    a, b = Input(shape=(3,)), Input(shape=(3,))
    model = Model([a, b], [add([a, b]), concatenate([a, b], axis=-1, name="joined")])
    xa, xb = rng.random((4, 3)).astype("float32"), rng.random((4, 3)).astype("float32")
    s, c = model.predict([xa, xb])
    numpy.testing.assert_allclose(s, xa + xb, rtol=1e-6)
    numpy.testing.assert_array_equal(c, numpy.hstack([xa, xb]))
    assert model.get_layer("joined").axis == -1
