"""Fixtures for the kernel tests."""
import numpy
import pytest

from fastnn.backend import NumpyOps, Ops


@pytest.fixture
def rng():
    return numpy.random.default_rng(1234)


@pytest.fixture(scope="session")
def ops():
    return NumpyOps()


@pytest.fixture(scope="session")
def ref():
    return Ops()
