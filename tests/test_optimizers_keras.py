"""Keras 2's optimizer arguments (lr, decay, epsilon=None) and the optimizers
added for Keras users (Adadelta, Adamax): each update against a NumPy formula
written here, and each optimizer through a model's fit."""
import warnings

import numpy
import pytest

import fastnn
from fastnn import optimizers
from fastnn.layers import Dense, Input
from fastnn.models import Model

ALL = [optimizers.SGD, optimizers.RMSprop, optimizers.Adagrad, optimizers.Adadelta,
       optimizers.Adam, optimizers.AdamW, optimizers.Adamax, optimizers.Nadam]


@pytest.mark.parametrize("cls", ALL)
def test_lr_is_learning_rate_with_a_warning_naming_it(cls):
    with pytest.warns(DeprecationWarning, match="learning_rate=0.125"):
        opt = cls(lr=0.125)
    assert opt.learning_rate == 0.125
    assert cls(**{k: v for k, v in opt.get_config().items()}).learning_rate == 0.125


def test_no_warning_without_lr():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        optimizers.RMSprop(learning_rate=0.001, rho=0.9, epsilon=None, decay=0.0)


@pytest.mark.parametrize("cls", [optimizers.RMSprop, optimizers.Adagrad, optimizers.Adadelta,
                                 optimizers.Adam, optimizers.Adamax])
def test_epsilon_none_is_keras_fuzz_factor(cls):
    assert cls(epsilon=None).epsilon == 1e-7
    assert cls().epsilon == 1e-7
    with pytest.raises(ValueError, match="epsilon must be > 0"):
        cls(epsilon=0.0)


def test_the_course_rmsprop_line():
    with pytest.warns(DeprecationWarning):
        opt = optimizers.RMSprop(lr=0.001, rho=0.9, epsilon=None, decay=0.0)
    assert (opt.learning_rate, opt.rho, opt.epsilon, opt.decay) == (0.001, 0.9, 1e-7, 0.0)


def test_time_based_decay_matches_keras2_formula(ops, rng):
    # Keras 2: lr_t = lr / (1 + decay * iterations), iterations before the update.
    lr, decay = 0.1, 0.5
    p = rng.standard_normal(6)
    ref = p.copy()
    opt = optimizers.SGD(learning_rate=lr, decay=decay)
    for t in range(5):
        g = rng.standard_normal(6)
        opt.apply_gradients([p], [g])
        ref = ref - lr / (1 + decay * t) * g
    numpy.testing.assert_allclose(p, ref, rtol=1e-12)
    assert opt.current_learning_rate == pytest.approx(lr / (1 + decay * 5))
    restored = optimizers.get({"class_name": "SGD", "config": opt.get_config()})
    assert restored.decay == decay


def test_decay_bad_values():
    with pytest.raises(ValueError, match="decay must be >= 0"):
        optimizers.Adam(decay=-1)
    with pytest.raises(ValueError, match="constant learning rate"):
        optimizers.Adam(learning_rate=optimizers.schedules.ExponentialDecay(0.1, 10, 0.5),
                        decay=0.1)


def test_adadelta_matches_formula(ops, rng):
    lr, rho, eps = 1.0, 0.95, 1e-7
    p = rng.standard_normal((3, 4))
    ref, ag, ad = p.copy(), numpy.zeros((3, 4)), numpy.zeros((3, 4))
    opt = optimizers.Adadelta()
    for _ in range(4):
        g = rng.standard_normal((3, 4))
        opt.apply_gradients([p], [g])
        ag = rho * ag + (1 - rho) * g ** 2
        step = numpy.sqrt(ad + eps) / numpy.sqrt(ag + eps) * g
        ad = rho * ad + (1 - rho) * step ** 2
        ref = ref - lr * step
    numpy.testing.assert_allclose(p, ref, rtol=1e-12)


def test_adamax_matches_formula(ops, rng):
    lr, b1, b2, eps = 0.002, 0.9, 0.999, 1e-7
    p = rng.standard_normal(9)
    ref, m, u = p.copy(), numpy.zeros(9), numpy.zeros(9)
    opt = optimizers.Adamax()
    for t in range(1, 6):
        g = rng.standard_normal(9)
        opt.apply_gradients([p], [g])
        m = b1 * m + (1 - b1) * g
        u = numpy.maximum(b2 * u, numpy.abs(g))
        ref = ref - lr / (1 - b1 ** t) * m / (u + eps)
    numpy.testing.assert_allclose(p, ref, rtol=1e-12)


@pytest.mark.parametrize("name", ["adadelta", "adamax", "nadam"])
def test_new_optimizers_train_a_model_and_save(name, tmp_path, rng):
    x = rng.random((64, 5)).astype("float32")
    y = (x @ rng.standard_normal((5, 1)) > 0).astype("float32")
    inp = Input(shape=(5,))
    model = Model(inp, Dense(1, activation="sigmoid")(Dense(8, activation="tanh")(inp)))
    model.compile(optimizer=name, loss="binary_crossentropy")
    hist = model.fit(x, y, batch_size=16, epochs=15, verbose=0)
    assert hist.history["loss"][-1] < hist.history["loss"][0]
    model.save(tmp_path / "m.fastnn")
    loaded = fastnn.load_model(tmp_path / "m.fastnn")
    assert type(loaded.optimizer) is type(model.optimizer)
    a, b = model.fit(x, y, epochs=1, verbose=0, shuffle=False), \
        loaded.fit(x, y, epochs=1, verbose=0, shuffle=False)
    assert a.history["loss"] == pytest.approx(b.history["loss"], rel=1e-6)


def test_nadam_matches_keras_formula(ops, rng):
    lr, b1, b2, eps = 0.001, 0.9, 0.999, 1e-7
    p = rng.standard_normal((2, 5))
    ref, m, v, prod = p.copy(), numpy.zeros((2, 5)), numpy.zeros((2, 5)), 1.0
    opt = optimizers.Nadam()
    for t in range(1, 7):
        g = rng.standard_normal((2, 5))
        opt.apply_gradients([p], [g])
        u_t, u_next = b1 * (1 - 0.5 * 0.96 ** (0.004 * t)), b1 * (1 - 0.5 * 0.96 ** (0.004 * (t + 1)))
        prod *= u_t
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat = u_next * m / (1 - prod * u_next) + (1 - u_t) * g / (1 - prod)
        ref = ref - lr * m_hat / (numpy.sqrt(v / (1 - b2 ** t)) + eps)
    numpy.testing.assert_allclose(p, ref, rtol=1e-12)


def test_nadam_restored_continues_exactly(rng):
    p, g = rng.standard_normal(4), [rng.standard_normal(4) for _ in range(6)]
    a = optimizers.Nadam()
    for gi in g[:3]:
        a.apply_gradients([p], [gi])
    b, q = optimizers.Nadam(), p.copy()
    b.set_state(a.get_state(), [q])
    for gi in g[3:]:
        a.apply_gradients([p], [gi])
        b.apply_gradients([q], [gi])
    numpy.testing.assert_array_equal(p, q)


def test_keras2_adam_line():
    with pytest.warns(DeprecationWarning):
        opt = optimizers.Adam(lr=0.001, beta_1=0.9, beta_2=0.999, epsilon=None, decay=0.0,
                              amsgrad=False)
    assert opt.epsilon == 1e-7
    with pytest.raises(ValueError, match="amsgrad=True is not implemented"):
        optimizers.Adam(amsgrad=True)
