"""Shared fixtures: every test that takes ``ops`` runs on each CPU backend."""
import numpy
import pytest

import fastnn
from fastnn.backend import use_backend

CPU_BACKENDS = ["numpy", "reference"]


@pytest.fixture(params=CPU_BACKENDS)
def ops(request):
    with use_backend(request.param) as backend:
        yield backend


@pytest.fixture
def rng():
    return numpy.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _seed():
    fastnn.set_seed(0)
    yield
