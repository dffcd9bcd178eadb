"""Shared fixtures: every test that takes ``ops`` runs on each CPU backend;
one that takes ``model_ops`` also on the strict backend (fastnn/backend/strict.py),
whose arrays refuse implicit host conversion: model-level tests, which hand
in and get back host NumPy, must pass there unchanged."""
import numpy
import pytest

import fastnn
from fastnn.backend import use_backend

CPU_BACKENDS = ["numpy", "reference"]


@pytest.fixture(params=CPU_BACKENDS)
def ops(request):
    with use_backend(request.param) as backend:
        yield backend


MODEL_BACKENDS = CPU_BACKENDS + ["strict"]


@pytest.fixture(params=MODEL_BACKENDS)
def model_ops(request):
    with use_backend(request.param) as backend:
        yield backend


@pytest.fixture
def rng():
    return numpy.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _seed():
    fastnn.set_seed(0)
    yield
