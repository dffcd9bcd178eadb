import numpy
import pytest

import fastnn
from fastnn import layers as L
from fastnn import regularizers
from fastnn.gradcheck import gradcheck


def _blobs(rng, n=300, d=10, k=3):
    centers = rng.standard_normal((k, d)) * 3
    y = rng.integers(0, k, n)
    x = centers[y] + rng.standard_normal((n, d))
    return x.astype("float32"), y


def test_functional_dag_with_shared_layer_and_residual_gradcheck(ops, rng):
    inp = fastnn.Input((5,), dtype="float64")
    shared = L.Dense(5, activation="tanh", dtype="float64", kernel_regularizer="l2")
    h1 = shared(inp)
    h2 = shared(h1)                      # the same weights, called twice
    h = L.Add(dtype="float64")([h1, h2, inp])  # residual: gradients meet here
    c = L.Concatenate(dtype="float64")([h, L.Dense(2, activation="elu", dtype="float64")(inp)])
    out = L.Dense(3, activation="softmax", dtype="float64")(L.Dropout(0.2, dtype="float64")(c))
    model = fastnn.Model(inp, out)
    model.compile("sgd", "sparse_categorical_crossentropy")
    x = rng.standard_normal((7, 5))
    y = rng.integers(0, 3, 7)
    assert gradcheck(model, x, y).ok
    assert len(model.layers) == 6  # dense, add, dense_1, concatenate, dropout, dense_2: shared once
    assert model.count_params() == (5 * 5 + 5) + (5 * 2 + 2) + (7 * 3 + 3)


def test_activity_regularizer_reaches_model_gradients(rng):
    inp = fastnn.Input((4,), dtype="float64")
    h = L.Dense(6, activation="sigmoid", dtype="float64",
                activity_regularizer=regularizers.KLSparsity(0.1, 2.0))(inp)
    model = fastnn.Model(inp, L.Dense(4, dtype="float64")(h))
    model.compile("sgd", "mse")
    assert gradcheck(model, rng.standard_normal((9, 4)), rng.standard_normal((9, 4))).ok


@pytest.mark.parametrize("loss,act", [("categorical_crossentropy", "softmax"),
                                      ("binary_crossentropy", "sigmoid")])
def test_fused_output_gives_same_gradients_as_unfused(loss, act, rng):
    x = rng.standard_normal((6, 4))
    y = numpy.eye(3)[rng.integers(0, 3, 6)]
    grads = []
    for fuse in (True, False):
        fastnn.set_seed(1)
        inp = fastnn.Input((4,), dtype="float64")
        model = fastnn.Model(inp, L.Dense(3, activation=act, dtype="float64")(inp))
        model.compile("sgd", loss)
        model._fusable = (lambda: fuse)
        assert gradcheck(model, x, y).ok
        grads.append([g.copy() for g in model.layers[0].grads.values()])
    for a, b in zip(*grads):
        numpy.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("build", ["input", "input_shape", "data"])
def test_sequential_builds_and_learns(build, model_ops, rng):
    x, y = _blobs(rng)
    first = {"input": [fastnn.Input((10,))], "input_shape": [], "data": []}[build]
    kw = {"input_shape": (10,)} if build == "input_shape" else {}
    model = fastnn.Sequential(first + [L.Dense(16, activation="relu", **kw),
                                       L.Dense(3, activation="softmax")])
    model.compile(fastnn.optimizers.Adam(0.01), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x, y, batch_size=32, epochs=15, verbose=0, validation_split=0.2)
    assert history.history["loss"][-1] < history.history["loss"][0] * 0.5
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    result = model.evaluate(x, y, return_dict=True)
    assert result["accuracy"] > 0.9
    probs = model.predict(x, batch_size=50)
    assert probs.shape == (300, 3)
    numpy.testing.assert_allclose(probs.sum(1), 1, rtol=1e-5)
    assert (probs.argmax(1) == y).mean() == pytest.approx(result["accuracy"])


def test_summary(capsys):
    model = fastnn.Sequential([fastnn.Input((784,)), L.Dense(256, activation="relu", name="h"),
                               L.Dense(10, name="out")])
    model.summary()
    text = capsys.readouterr().out
    assert "h (Dense)" in text and "(None, 256)" in text and "200,960" in text
    assert "Total params: 203,530" in text and "Non-trainable params: 0" in text


def test_train_test_predict_on_batch(rng):
    x, y = _blobs(rng, n=64)
    model = fastnn.Sequential([L.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    loss, acc = model.train_on_batch(x, y)
    assert numpy.isfinite(loss) and 0 <= acc <= 1
    logs = model.test_on_batch(x, y, return_dict=True)
    assert set(logs) == {"loss", "accuracy"}
    assert model.predict_on_batch(x).shape == (64, 3)


def test_nested_python_lists_are_one_input_lists_of_arrays_are_several(rng):
    x, y = _blobs(rng, n=32)
    model = fastnn.Sequential([L.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x.tolist(), y.tolist(), epochs=1, verbose=0)  # builds from the list
    numpy.testing.assert_allclose(model.predict(x[:5].tolist()), model.predict(x[:5]),
                                  rtol=1e-6)
    a, b = fastnn.Input((2,)), fastnn.Input((3,))
    two = fastnn.Model(inputs=[a, b], outputs=L.Dense(1)(L.Concatenate()([a, b])))
    xa, xb = numpy.ones((4, 2), "float32"), numpy.ones((4, 3), "float32")
    assert two.predict([xa, xb]).shape == (4, 1)
    with pytest.raises(ValueError, match="has 2 inputs, got 1 arrays"):
        two.predict([xa])


def test_weights_round_trip(rng):
    a = fastnn.Sequential([fastnn.Input((4,)), L.Dense(3), L.Dense(2)])
    b = fastnn.Sequential([fastnn.Input((4,)), L.Dense(3), L.Dense(2)])
    b.set_weights(a.get_weights())
    x = rng.standard_normal((5, 4)).astype("float32")
    numpy.testing.assert_array_equal(a.predict(x), b.predict(x))
    with pytest.raises(ValueError, match="4 weight arrays, got 1"):
        b.set_weights(a.get_weights()[:1])


def test_same_seed_gives_bit_identical_training(rng):
    x, y = _blobs(rng)

    def train():
        fastnn.set_seed(42)
        model = fastnn.Sequential([fastnn.Input((10,)), L.Dense(32, activation="relu"),
                                   L.Dropout(0.3), L.Dense(3, activation="softmax")])
        model.compile("adam", "sparse_categorical_crossentropy")
        model.fit(x, y, batch_size=16, epochs=3, verbose=0)
        return model.get_weights()

    for a, b in zip(train(), train()):
        numpy.testing.assert_array_equal(a, b)


def test_sample_and_class_weight(rng):
    x, y = _blobs(rng, n=60)
    model = fastnn.Sequential([fastnn.Input((10,)), L.Dense(3, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    w0 = model.get_weights()
    model.fit(x, y, epochs=1, verbose=0, shuffle=False, sample_weight=numpy.zeros(60))
    for a, b in zip(w0, model.get_weights()):
        numpy.testing.assert_array_equal(a, b)  # zero weight: no update
    model.fit(x, y, epochs=1, verbose=0, class_weight={0: 1.0, 1: 2.0, 2: 0.5})
    assert not numpy.array_equal(w0[0], model.get_weights()[0])


def test_class_weight_does_not_weigh_the_validation_split(rng):
    # As Keras: the held-out samples are scored unweighted (before, their
    # val_loss carried the class weights of the training samples).
    x, y = _blobs(rng, n=80)
    model = fastnn.Sequential([fastnn.Input((10,)), L.Dense(3, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    sw = numpy.linspace(0.5, 1.5, 80)
    history = model.fit(x, y, epochs=1, verbose=0, validation_split=0.25, sample_weight=sw,
                        class_weight={0: 5.0, 1: 0.1, 2: 1.0})
    plain = model.evaluate(x[60:], y[60:], sample_weight=sw[60:], return_dict=True)
    assert history.history["val_loss"][0] == pytest.approx(plain["loss"], rel=1e-6)
    # ... while the training samples are weighted: zero weight for every class, no update.
    w0 = model.get_weights()
    model.fit(x, y, epochs=1, verbose=0, validation_split=0.25,
              class_weight={0: 0.0, 1: 0.0, 2: 0.0})
    for a, b in zip(w0, model.get_weights()):
        numpy.testing.assert_array_equal(a, b)


class TestBadInput:
    def setup_method(self):
        self.model = fastnn.Sequential([fastnn.Input((4,)), L.Dense(3, activation="softmax",
                                                                    name="out")])
        self.model.compile("adam", "sparse_categorical_crossentropy")
        self.x = numpy.random.default_rng(0).standard_normal((10, 4)).astype("float32")
        self.y = numpy.arange(10) % 3

    def test_length_mismatch(self):
        with pytest.raises(ValueError, match="10 samples but y has 9"):
            self.model.fit(self.x, self.y[:9], verbose=0)

    def test_nan_before_training(self):
        x = self.x.copy()
        x[3, 1] = numpy.nan
        w0 = self.model.get_weights()
        with pytest.raises(ValueError, match="1 NaN or infinite"):
            self.model.fit(x, self.y, verbose=0)
        numpy.testing.assert_array_equal(w0[0], self.model.get_weights()[0])

    def test_wrong_feature_shape(self):
        with pytest.raises(ValueError, match=r"samples of shape \(4,\).*\(10, 5\)"):
            self.model.fit(numpy.zeros((10, 5)), self.y, verbose=0)

    def test_labels_out_of_range(self):
        with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
            self.model.fit(self.x, self.y + 1, verbose=0)

    def test_wrong_target_shape(self):
        model = fastnn.Sequential([fastnn.Input((4,)), L.Dense(3, name="out")])
        model.compile("adam", "mse")
        with pytest.raises(ValueError, match=r"per-sample shape \(2,\).*'out'.*\(3,\)"):
            model.fit(self.x, numpy.zeros((10, 2)), verbose=0)

    def test_empty_and_non_numeric(self):
        with pytest.raises(ValueError, match="empty"):
            self.model.fit(self.x[:0], self.y[:0], verbose=0)
        with pytest.raises(TypeError, match="must hold numbers"):
            self.model.fit(numpy.array([["a"] * 4] * 10), self.y, verbose=0)

    def test_not_compiled_and_unknown_names(self):
        model = fastnn.Sequential([L.Dense(2)])
        with pytest.raises(RuntimeError, match="compile"):
            model.fit(self.x, self.y)
        with pytest.raises(ValueError, match="valid names are"):
            model.compile("adamx", "mse")

    def test_integer_input_is_cast(self):
        xi = (self.x * 10).astype("int32")
        before = self.model.get_weights()
        fastnn.set_seed(3)
        self.model.fit(xi, self.y, epochs=2, verbose=0)
        from_int = self.model.get_weights()
        self.model.set_weights(before)
        self.model.optimizer = type(self.model.optimizer)()
        fastnn.set_seed(3)
        self.model.fit(xi.astype("float32"), self.y, epochs=2, verbose=0)
        assert any((a != b).any() for a, b in zip(before, from_int))  # it trained
        for a, b in zip(from_int, self.model.get_weights()):
            numpy.testing.assert_array_equal(a, b)  # exactly as the float32 cast

    def test_disconnected_graph(self):
        a, b = fastnn.Input((2,)), fastnn.Input((2,))
        with pytest.raises(ValueError, match="disconnected"):
            fastnn.Model(a, L.Add()([a, b]))


def _compiled_classifier(rng):
    x, y = _blobs(rng, n=100)
    # with a weight penalty, so the bar's loss must include it as the result does
    model = fastnn.Sequential([fastnn.Input((10,)),
                               L.Dense(3, activation="softmax", kernel_regularizer="l2")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model, x, y


@pytest.mark.parametrize("verbose", [1, 2, "auto"])
def test_evaluate_and_predict_show_progress_when_verbose(verbose, rng, capsys):
    model, x, y = _compiled_classifier(rng)
    logs = model.evaluate(x, y, batch_size=32, verbose=verbose, return_dict=True)
    out = capsys.readouterr().out
    # captured output is not a terminal: one final line with the final values
    assert out.count("\n") == 1 and out.startswith("4/4 ")
    assert f"loss: {logs['loss']:.4f}" in out and f"accuracy: {logs['accuracy']:.4f}" in out
    assert model.evaluate(x, y, verbose=0) == pytest.approx([logs["loss"], logs["accuracy"]])
    assert capsys.readouterr().out == ""
    pred = model.predict(x, batch_size=40, verbose=verbose)
    out = capsys.readouterr().out
    assert pred.shape == (100, 3) and out.startswith("3/3 ") and out.count("\n") == 1
    numpy.testing.assert_array_equal(pred, model.predict(x, batch_size=40))


@pytest.mark.parametrize("bad", [3, -1, True, "yes"])
def test_evaluate_and_predict_reject_bad_verbose(bad, rng):
    model, x, y = _compiled_classifier(rng)
    with pytest.raises(ValueError, match="verbose must be 0, 1, 2 or 'auto'"):
        model.evaluate(x, y, verbose=bad)
    with pytest.raises(ValueError, match="verbose must be 0, 1, 2 or 'auto'"):
        model.predict(x, verbose=bad)


class TestArgumentChecks:
    """Arguments that once gave a silently wrong answer now raise, naming the argument."""

    def setup_method(self):
        self.model = fastnn.Sequential([fastnn.Input((4,)), L.Dense(3, activation="softmax")])
        self.model.compile("adam", "sparse_categorical_crossentropy")
        self.x = numpy.random.default_rng(0).standard_normal((10, 4)).astype("float32")
        self.y = numpy.arange(10) % 3

    @pytest.mark.parametrize("bs", [0, -1, 2.5, True, "32"])
    def test_bad_batch_size_in_predict_evaluate_fit(self, bs):
        for call in (lambda: self.model.predict(self.x, batch_size=bs),
                     lambda: self.model.evaluate(self.x, self.y, batch_size=bs),
                     lambda: self.model.fit(self.x, self.y, batch_size=bs, verbose=0)):
            with pytest.raises(ValueError, match="batch_size must be a positive integer"):
                call()

    def test_batch_size_none_is_keras_default_of_32(self):
        # Keras's default is None (32 for arrays; a generator's batches set their own).
        x = numpy.random.default_rng(1).standard_normal((70, 4)).astype("float32")
        y = numpy.arange(70) % 3
        seen = []
        probe = fastnn.callbacks.LambdaCallback(
            on_train_batch_end=lambda batch, logs: seen.append(batch))
        self.model.fit(x, y, batch_size=None, verbose=0, callbacks=[probe])
        assert seen == [0, 1, 2]  # 32 + 32 + 6
        assert self.model.evaluate(x, y, batch_size=None) == self.model.evaluate(x, y)

    @pytest.mark.parametrize("sw,message", [
        (numpy.ones(9), r"shape \(10,\)"), (2.0, "1-D array of 10 weights"),
        (numpy.ones((10, 1)), "1-D array"), (-numpy.ones(10), "1 negative|10 negative"),
        (numpy.r_[numpy.nan, numpy.ones(9)], "1 NaN")])
    def test_bad_sample_weight_in_evaluate_and_validation(self, sw, message):
        with pytest.raises(ValueError, match="sample_weight"):
            self.model.evaluate(self.x, self.y, sample_weight=sw)
        with pytest.raises(ValueError, match="validation_data's sample_weight"):
            self.model.fit(self.x, self.y, validation_data=(self.x, self.y, sw), verbose=0)
        with pytest.raises(ValueError, match=message):
            self.model.evaluate(self.x, self.y, sample_weight=sw)

    def test_evaluate_sample_weight_weights_the_loss(self):
        # Keras's rule: the mean over the samples of weight * loss, in batches.
        sw = numpy.linspace(0, 2, 10)
        p = self.model.predict(self.x).astype(numpy.float64)
        per_sample = -numpy.log(p[numpy.arange(10), self.y])
        got = self.model.evaluate(self.x, self.y, sample_weight=sw, batch_size=4)
        numpy.testing.assert_allclose(got, (sw * per_sample).mean(), rtol=1e-5)

    @pytest.mark.parametrize("cw,message", [
        ({-1: 5.0}, "class indices"), ({"a": 1.0}, "class indices"), ({True: 2.0}, "class indices"),
        ({0: numpy.nan}, "finite"), ({0: -1.0}, "non-negative"), ([1.0, 2.0], "dict")])
    def test_bad_class_weight(self, cw, message):
        with pytest.raises((ValueError, TypeError), match=message):
            self.model.fit(self.x, self.y, class_weight=cw, verbose=0)

    def test_class_weight_with_regression_targets(self):
        model = fastnn.Sequential([fastnn.Input((4,)), L.Dense(1)])
        model.compile("sgd", "mse")
        with pytest.raises(ValueError, match="class_weight needs class labels"):
            model.fit(self.x, self.x[:, 0] * 0.37, class_weight={0: 2.0}, verbose=0)

    def test_class_weight_weights_the_class_not_the_last(self):
        # class_weight={2: 0} must zero class 2's samples, and only those.
        a = fastnn.Sequential([fastnn.Input((4,)), L.Dense(3, activation="softmax")])
        a.compile("sgd", "sparse_categorical_crossentropy")
        b = fastnn.Sequential([fastnn.Input((4,)), L.Dense(3, activation="softmax")])
        b.compile("sgd", "sparse_categorical_crossentropy")
        b.set_weights(a.get_weights())
        a.fit(self.x, self.y, class_weight={2: 0.0}, shuffle=False, batch_size=10, verbose=0)
        b.fit(self.x, self.y, sample_weight=(self.y != 2).astype(float), shuffle=False,
              batch_size=10, verbose=0)
        for wa, wb in zip(a.get_weights(), b.get_weights()):
            numpy.testing.assert_array_equal(wa, wb)


def test_freezing_after_the_build_takes_effect_at_compile():
    d1 = L.Dense(3, kernel_regularizer="l2")
    model = fastnn.Sequential([fastnn.Input((4,)), d1, L.Dense(1)])
    d1.trainable = False  # after the build, before compile: as Keras
    model.compile("adam", "mse")
    before = d1.get_weights()
    model.fit(numpy.ones((8, 4), "float32"), numpy.ones((8, 1), "float32"), verbose=0)
    for a, b in zip(before, d1.get_weights()):
        numpy.testing.assert_array_equal(a, b)
    assert len(model.trainable_weights) == 2
