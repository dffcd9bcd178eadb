"""Models trained on the GPU match the same models trained on the CPU step
by step, to float32 rounding (bitwise equality is not expected: cuBLAS and
the Cython kernels sum in other orders): an MLP, a small CNN (Conv2D, max
pooling, batch norm), an LSTM/GRU stack and an I-AutoRec. Also the swap
itself: ``model.to("cupy")``, ``with use_backend("cupy")``, ``predict``
returning the array kind it was given, ``save`` on the GPU writing the file
the CPU writes, ``load(..., backend=)`` placing a model on either.

No dropout or noise layers: the GPU draws from its own generator, so those
would differ by design. Every test skips, saying why, without CuPy or a
CUDA device (the ``gpu`` fixture, tests/gpu/conftest.py).
"""
import zipfile

import numpy
import pytest
import scipy.sparse

import fastnn
from fastnn import layers
from fastnn.backend import use_backend

pytestmark = pytest.mark.gpu

RTOL, ATOL = 2e-4, 2e-5  # a few Adam steps of float32 rounding apart


def _mlp(backend):
    return fastnn.Sequential([fastnn.Input((7,)), layers.Dense(32, activation="relu"),
                              layers.Dense(16, activation="tanh"),
                              layers.Dense(3, activation="softmax")], backend=backend)


def _cnn(backend):
    return fastnn.Sequential([fastnn.Input((8, 8, 3)),
                              layers.Conv2D(4, 3, padding="same", activation="relu"),
                              layers.MaxPooling2D(2), layers.BatchNormalization(),
                              layers.Conv2D(5, 2, strides=2, activation="sigmoid"),
                              layers.Flatten(), layers.Dense(3, activation="softmax")],
                             backend=backend)


def _rnn(backend):
    return fastnn.Sequential([fastnn.Input((6, 4)), layers.LSTM(5, return_sequences=True),
                              layers.GRU(3), layers.Dense(3, activation="softmax")],
                             backend=backend)


def _data(shape, n=24, seed=0):
    rng = numpy.random.default_rng(seed)
    x = rng.standard_normal((n,) + shape).astype("float32")
    y = rng.integers(0, 3, n)
    return x, y


def _pair(build, gpu):
    fastnn.set_seed(0)
    cpu_model = build("numpy")
    gpu_model = build(gpu)
    gpu_model.set_weights(cpu_model.get_weights())
    for m in (cpu_model, gpu_model):
        m.compile(fastnn.optimizers.Adam(0.01), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return cpu_model, gpu_model


def _assert_weights_close(a, b):
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        numpy.testing.assert_allclose(wb, wa, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("build,shape", [(_mlp, (7,)), (_cnn, (8, 8, 3)), (_rnn, (6, 4))],
                         ids=["mlp", "cnn", "lstm_gru"])
def test_training_on_the_gpu_matches_the_cpu_step_by_step(gpu, build, shape):
    cpu_model, gpu_model = _pair(build, gpu)
    assert gpu_model.ops is gpu
    x, y = _data(shape)
    for step in range(5):
        xb, yb = x[step * 4:step * 4 + 8], y[step * 4:step * 4 + 8]
        lc = cpu_model.train_on_batch(xb, yb)
        lg = gpu_model.train_on_batch(xb, yb)
        numpy.testing.assert_allclose(lg, lc, rtol=RTOL, atol=ATOL, err_msg=f"step {step}")
        _assert_weights_close(cpu_model, gpu_model)
    # fit (NumPy data moved to the device), evaluate, predict
    hc = cpu_model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    hg = gpu_model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    numpy.testing.assert_allclose(hg.history["loss"], hc.history["loss"], rtol=RTOL, atol=ATOL)
    _assert_weights_close(cpu_model, gpu_model)
    pc = cpu_model.predict(x, verbose=0)
    pg = gpu_model.predict(x, verbose=0)
    assert type(pg) is numpy.ndarray  # NumPy in, NumPy out
    numpy.testing.assert_allclose(pg, pc, rtol=RTOL, atol=ATOL)
    pd = gpu_model.predict(gpu.asarray(x), verbose=0)
    assert gpu.is_native(pd)  # device in, device out
    numpy.testing.assert_allclose(gpu.to_numpy(pd), pc, rtol=RTOL, atol=ATOL)
    ec = cpu_model.evaluate(x, y, verbose=0)
    eg = gpu_model.evaluate(x, y, verbose=0)
    numpy.testing.assert_allclose(eg, ec, rtol=RTOL, atol=ATOL)


def test_model_to_moves_a_trained_model_and_its_optimizer_both_ways(gpu):
    x, y = _data((7,))
    fastnn.set_seed(0)
    model = _mlp("numpy")
    twin = _mlp("numpy")
    twin.set_weights(model.get_weights())
    for m in (model, twin):
        m.compile(fastnn.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
        m.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    model.to(gpu.name)  # by name ("cupy"): the same backend object
    assert model.ops is gpu
    for m in (model, twin):  # Adam's moments moved too: the steps go on alike
        m.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    _assert_weights_close(twin, model)
    model.to("numpy")
    assert all(type(w) is numpy.ndarray for w in model.get_weights())
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)


def test_use_backend_builds_models_on_the_gpu(gpu):
    with use_backend(gpu.name) as ops:
        assert ops is gpu and fastnn.backend.get_backend() is gpu
        model = _mlp(None)
    assert model.ops is gpu and fastnn.backend.get_backend().name == "numpy"


def _zip_members(path):
    with zipfile.ZipFile(path) as z:
        return {name: z.read(name) for name in sorted(z.namelist())}


def test_save_on_the_gpu_writes_the_cpu_file_and_load_places_it_anywhere(gpu, tmp_path):
    cpu_model, gpu_model = _pair(_cnn, gpu)
    cpu_model.save(tmp_path / "cpu.fnn")
    cpu_model.to(gpu.name)  # the same model (same layer names) on the GPU
    cpu_model.save(tmp_path / "gpu.fnn")
    assert _zip_members(tmp_path / "cpu.fnn") == _zip_members(tmp_path / "gpu.fnn")
    x, y = _data((8, 8, 3))
    gpu_model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    gpu_model.save(tmp_path / "trained.fnn")
    want = gpu_model.predict(x, verbose=0)
    for backend in ("numpy", gpu.name):
        loaded = fastnn.load_model(tmp_path / "trained.fnn", backend=backend)
        assert loaded.ops.name == backend
        numpy.testing.assert_allclose(loaded.predict(x, verbose=0), want, rtol=RTOL, atol=ATOL)
        loaded.fit(x, y, batch_size=8, epochs=1, verbose=0)  # optimizer state resumes there


def _ratings(seed=0, n_users=40, n_items=30):
    rng = numpy.random.default_rng(seed)
    values = rng.integers(1, 6, (n_users, n_items)).astype(float)
    observed = rng.random((n_users, n_items))
    train = numpy.where(observed < 0.3, values, 0.0)
    val = numpy.where((observed >= 0.3) & (observed < 0.4), values, 0.0)
    train[3], train[:, 5] = 0, 0  # a user and an item without training ratings
    return scipy.sparse.csr_matrix(train), scipy.sparse.csr_matrix(val)


def test_autorec_on_the_gpu_matches_the_cpu_epoch_by_epoch(gpu, tmp_path):
    from fastnn.recsys import AutoRec
    train, val = _ratings()
    models = {}
    for backend in ("numpy", gpu.name):
        fastnn.set_seed(0)
        m = AutoRec(hidden=8, lam=0.1, learning_rate=0.01, batch_size=7, seed=3,
                    backend=backend)
        m.fit(train, validation=val, epochs=4, patience=10, verbose=0)
        models[backend] = m
    cpu, gpu_model = models["numpy"], models[gpu.name]
    assert gpu_model.ops is gpu
    for key in ("loss", "val_rmse"):
        numpy.testing.assert_allclose(gpu_model.history[key], cpu.history[key], rtol=1e-4)
    for wc, wg in zip(cpu.get_weights(), gpu_model.get_weights()):
        numpy.testing.assert_allclose(wg, wc, rtol=1e-3, atol=1e-4)
    users, items = numpy.arange(40) % 40, numpy.arange(40) % 30
    pc, pg = cpu.predict(users, items), gpu_model.predict(users, items)
    assert type(pg) is numpy.ndarray
    numpy.testing.assert_allclose(pg, pc, rtol=1e-4, atol=1e-4)
    gpu_model.save(tmp_path / "autorec.fnn")
    for backend in ("numpy", gpu.name):
        loaded = AutoRec.load(tmp_path / "autorec.fnn", backend=backend)
        assert loaded.ops.name == backend
        numpy.testing.assert_allclose(loaded.predict(users, items), pg, rtol=1e-5, atol=1e-5)
