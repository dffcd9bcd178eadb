"""Weight constraints (fastnn.constraints): each against Keras's formula written
here in NumPy, looked up by name and config, applied after every optimizer
update (as Keras does) for every layer that takes them, through config, save
and load, and on the strict backend."""
import numpy
import pytest

import fastnn
from fastnn import constraints, layers
from fastnn.backend import get_instance

EPS = 1e-7  # Keras's backend epsilon


def ref_max_norm(w, max_value, axis):
    n = numpy.sqrt(numpy.sum(w.astype(numpy.float64) ** 2, axis=axis, keepdims=True))
    return w * (numpy.clip(n, 0, max_value) / (EPS + n))


def ref_unit_norm(w, axis):
    return w / (EPS + numpy.sqrt(numpy.sum(w.astype(numpy.float64) ** 2, axis=axis,
                                           keepdims=True)))


def ref_min_max_norm(w, lo, hi, rate, axis):
    n = numpy.sqrt(numpy.sum(w.astype(numpy.float64) ** 2, axis=axis, keepdims=True))
    return w * ((rate * numpy.clip(n, lo, hi) + (1 - rate) * n) / (EPS + n))


CASES = [  # constraint, its NumPy formula
    (constraints.MaxNorm(1.5), lambda w: ref_max_norm(w, 1.5, 0)),
    (constraints.MaxNorm(0.7, axis=[0, 1, 2]), lambda w: ref_max_norm(w, 0.7, (0, 1, 2))),
    (constraints.MaxNorm(2.0, axis=-1), lambda w: ref_max_norm(w, 2.0, -1)),
    (constraints.UnitNorm(), lambda w: ref_unit_norm(w, 0)),
    (constraints.UnitNorm(axis=(1, 3)), lambda w: ref_unit_norm(w, (1, 3))),
    (constraints.MinMaxNorm(0.5, 1.2), lambda w: ref_min_max_norm(w, 0.5, 1.2, 1.0, 0)),
    (constraints.MinMaxNorm(1.0, 3.0, rate=0.25, axis=[0, 1]),
     lambda w: ref_min_max_norm(w, 1.0, 3.0, 0.25, (0, 1))),
    (constraints.NonNeg(), lambda w: numpy.where(w >= 0, w, 0)),
]


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_constraint_equals_keras_formula(case, dtype):
    constraint, ref = CASES[case]
    rng = numpy.random.default_rng(case)
    # Slices with norms below, inside and above every range; a zero slice.
    w = (rng.standard_normal((3, 2, 5, 4)) * rng.uniform(0.05, 2, (1, 1, 1, 4))).astype(dtype)
    w[:, :, :, 0] = 0
    out = constraint(w)
    assert out.dtype == dtype and out.shape == w.shape
    numpy.testing.assert_allclose(out, ref(w.astype(numpy.float64)),
                                  rtol=1e-5 if dtype == numpy.float32 else 1e-12, atol=1e-7)
    assert numpy.all(numpy.isfinite(out))


def test_max_norm_leaves_short_columns_and_shortens_long_ones():
    w = numpy.array([[3.0, 0.3], [4.0, 0.4]])
    out = constraints.MaxNorm(2.0)(w)
    numpy.testing.assert_allclose(numpy.linalg.norm(out, axis=0), [2.0, 0.5], rtol=1e-6)
    numpy.testing.assert_allclose(out[:, 1], w[:, 1], rtol=1e-6)


@pytest.mark.parametrize("name,cls", [("max_norm", constraints.MaxNorm),
                                      ("MaxNorm", constraints.MaxNorm),
                                      ("non_neg", constraints.NonNeg),
                                      ("unit_norm", constraints.UnitNorm),
                                      ("min_max_norm", constraints.MinMaxNorm)])
def test_get_by_name_and_config(name, cls):
    c = constraints.get(name)
    assert type(c) is cls
    again = constraints.get({"class_name": cls.__name__, "config": c.get_config()})
    assert type(again) is cls and again.get_config() == c.get_config()
    assert constraints.get(None) is None and constraints.get(c) is c


def test_bad_constraints_raise():
    with pytest.raises(ValueError, match="unknown constraint 'max_nrom'"):
        constraints.get("max_nrom")
    with pytest.raises(TypeError, match="Constraint"):
        constraints.get(3)
    with pytest.raises(ValueError, match="max_value"):
        constraints.MaxNorm(0)
    with pytest.raises(ValueError, match="min_value"):
        constraints.MinMaxNorm(2.0, 1.0)
    with pytest.raises(ValueError, match="rate"):
        constraints.MinMaxNorm(rate=1.5)
    with pytest.raises(ValueError, match="axis"):
        constraints.UnitNorm(axis="rows")
    with pytest.raises(ValueError, match=r"axis 2 is out of range .* \(3, 4\)"):
        constraints.MaxNorm(axis=2)(numpy.ones((3, 4)))
    with pytest.raises(ValueError, match="unknown constraint"):
        layers.Dense(3, kernel_constraint="positive")


# ------------------------------------------------------------ in the layers
def _layer_cases():
    c = constraints
    return [  # layer, input shape, {weight: constraint}
        (lambda: layers.Dense(5, kernel_constraint=c.MaxNorm(0.3),
                              bias_constraint=c.NonNeg()), (6,),
         {"kernel": c.MaxNorm(0.3), "bias": c.NonNeg()}),
        (lambda: layers.Conv2D(4, 3, padding="same",
                               kernel_constraint=c.MaxNorm(0.4, axis=[0, 1, 2]),
                               bias_constraint="non_neg"), (6, 5, 3),
         {"kernel": c.MaxNorm(0.4, axis=[0, 1, 2]), "bias": c.NonNeg()}),
        (lambda: layers.Conv1D(3, 2, kernel_constraint=c.UnitNorm(axis=[0, 1])), (7, 2),
         {"kernel": c.UnitNorm(axis=[0, 1])}),
        (lambda: layers.Conv2DTranspose(2, 3, strides=2, kernel_constraint=c.NonNeg(),
                                        bias_constraint=c.NonNeg()), (3, 4, 2),
         {"kernel": c.NonNeg(), "bias": c.NonNeg()}),
        (lambda: layers.DepthwiseConv2D(3, depth_multiplier=2,
                                        depthwise_constraint=c.MinMaxNorm(0.2, 0.5, axis=[0, 1]),
                                        bias_constraint=c.NonNeg()), (5, 6, 3),
         {"kernel": c.MinMaxNorm(0.2, 0.5, axis=[0, 1]), "bias": c.NonNeg()}),
        (lambda: layers.SeparableConv2D(4, 3, padding="same",
                                        depthwise_constraint=c.NonNeg(),
                                        pointwise_constraint=c.MaxNorm(0.5, axis=[0, 1, 2]),
                                        bias_constraint=c.NonNeg()), (5, 5, 2),
         {"depthwise_kernel": c.NonNeg(), "pointwise_kernel": c.MaxNorm(0.5, axis=[0, 1, 2]),
          "bias": c.NonNeg()}),
        (lambda: layers.BatchNormalization(gamma_constraint=c.NonNeg(),
                                           beta_constraint=c.MaxNorm(0.1)), (4, 3),
         {"gamma": c.NonNeg(), "beta": c.MaxNorm(0.1)}),
    ]


def _one_step(layer_fn, shape, seed, backend=None, lr=0.5):
    fastnn.set_seed(seed)
    model = fastnn.Sequential([fastnn.Input(shape), layer_fn(), layers.Flatten(),
                               layers.Dense(2)], backend=backend)
    model.compile(fastnn.optimizers.SGD(lr), "mse")
    rng = numpy.random.default_rng(seed)
    x = rng.standard_normal((8,) + shape).astype("float32")
    y = rng.standard_normal((8, 2)).astype("float32") * 10
    return model, x, y


@pytest.mark.parametrize("case", range(7))
def test_layers_apply_their_constraints_after_each_update(case):
    layer_fn, shape, expected = _layer_cases()[case]
    # The same step without the constraints, then Keras's formula on its result,
    # equals the step with them: the constraint projects the updated weights.
    model, x, y = _one_step(layer_fn, shape, seed=case)
    layer = model.layers[0]
    assert set(layer.constraints) == set(expected)
    bare, _, _ = _one_step(lambda: _without_constraints(layer_fn), shape, seed=case)
    before = {n: numpy.array(p) for n, p in layer.params.items()}
    model.train_on_batch(x, y)
    bare.train_on_batch(x, y)
    for name, constraint in expected.items():
        got = layer.params[name]
        want = constraint(bare.layers[0].params[name])
        numpy.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7, err_msg=name)
        assert not numpy.allclose(got, before[name]), f"{name} did not train"
    # Weights without a constraint train exactly as without any.
    for name in layer.params:
        if name not in expected:
            numpy.testing.assert_array_equal(layer.params[name], bare.layers[0].params[name])


def _without_constraints(layer_fn):
    layer = layer_fn()
    config = layer.get_config()
    for key in list(config):
        if key.endswith("_constraint"):
            config[key] = None
    config.pop("name")
    return type(layer).from_config(config)


@pytest.mark.parametrize("case", range(7))
def test_constraints_survive_config_and_save_load(case, tmp_path):
    layer_fn, shape, expected = _layer_cases()[case]
    layer = layer_fn()
    config = layer.get_config()
    config.pop("name")
    again = type(layer).from_config(config)
    assert again.get_config() == {**config, "name": again.name}
    model, x, y = _one_step(layer_fn, shape, seed=case)
    model.train_on_batch(x, y)
    path = tmp_path / "m.fnn"
    model.save(str(path))
    loaded = fastnn.load_model(str(path))
    got = loaded.layers[0].constraints
    assert {n: (type(c), c.get_config()) for n, c in got.items()} == \
        {n: (type(c), c.get_config()) for n, c in expected.items()}
    # The loaded model keeps training under them, as the original does.
    model.train_on_batch(x, y)
    loaded.train_on_batch(x, y)
    for name in expected:
        numpy.testing.assert_allclose(loaded.layers[0].params[name],
                                      model.layers[0].params[name], rtol=1e-6, atol=1e-7)


def test_embedding_constraint():
    fastnn.set_seed(0)
    model = fastnn.Sequential([fastnn.Input((3,)),
                               layers.Embedding(10, 4, embeddings_constraint="unit_norm"),
                               layers.Flatten(), layers.Dense(1)])
    model.compile(fastnn.optimizers.SGD(0.5), "mse")
    assert model.layers[0].get_config()["embeddings_constraint"] == \
        {"class_name": "UnitNorm", "config": {"axis": 0}}
    model.train_on_batch(numpy.array([[1, 2, 3], [4, 5, 1]]), numpy.ones((2, 1)))
    table = model.layers[0].params["embeddings"]
    # axis=0, as Keras: each of the 4 columns over the 10 rows has norm one.
    numpy.testing.assert_allclose(numpy.linalg.norm(table, axis=0), 1.0, rtol=1e-5)


def test_constraints_train_on_the_strict_backend():
    strict = get_instance("strict")
    layer_fn, shape, expected = _layer_cases()[5]  # SeparableConv2D: three constraints
    # The strict backend computes as the reference one, bit for bit.
    ref, x, y = _one_step(layer_fn, shape, seed=1, backend="reference")
    dev, _, _ = _one_step(layer_fn, shape, seed=1, backend="strict")
    for _ in range(2):
        ref.train_on_batch(x, y)
        dev.train_on_batch(x, y)
    for name in expected:
        numpy.testing.assert_array_equal(strict.to_numpy(dev.layers[0].params[name]),
                                         ref.layers[0].params[name])
    assert (strict.to_numpy(dev.layers[0].params["depthwise_kernel"]) >= 0).all()
