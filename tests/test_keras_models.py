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
