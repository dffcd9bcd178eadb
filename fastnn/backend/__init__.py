"""Array backends and the default-backend switch.

A model owns its backend: ``Model(..., backend=name)`` fixes it when the model
is built, ``model.to(name)`` moves it. ``get_backend()`` returns the default
``Ops`` object, the one new models (and layers built outside a model) take;
``set_backend(name)`` and ``with use_backend(name):`` change it. Backends
register themselves by name: ``"numpy"`` (Cython kernels on the CPU) is the
default, ``"reference"`` is the plain NumPy ``Ops`` used as the ground truth in
tests, ``"strict"`` is the test backend whose arrays refuse implicit host
conversion (strict.py), ``"cupy"`` (alias ``"gpu"``) the GPU (cupy_ops.py:
CuPy is imported only when it is first asked for, and a missing CuPy or CUDA
device raises ``BackendUnavailable`` saying which). ``backend_of(array)`` names the backend an array
belongs to, ``ops_for(*arrays)`` the one that should compute on them.
"""
import contextlib
import threading
from typing import Iterator, Union

import numpy

from .ops import ACTIVATIONS, FLOAT_DTYPES, Ops
from .numpy_ops import NumpyOps
from .strict import StrictOps

_FACTORIES: dict = {"numpy": NumpyOps, "reference": Ops, "strict": StrictOps}


def _cupy_backend():
    # Imported here, at first use: ``import fastnn`` never imports CuPy.
    from .cupy_ops import shared
    return shared()


_FACTORIES["cupy"] = _FACTORIES["gpu"] = _cupy_backend
_INSTANCES: dict = {}
_state = threading.local()


def register_backend(name, factory):
    """Make ``factory()`` (an ``Ops`` subclass) available as ``set_backend(name)``."""
    _FACTORIES[name] = factory
    _INSTANCES.pop(name, None)


def available_backends():
    return sorted(_FACTORIES)


def _instance(name):
    if isinstance(name, Ops):
        return name
    if name not in _FACTORIES:
        raise ValueError(f"unknown backend {name!r}; expected one of {available_backends()}")
    if name not in _INSTANCES:
        _INSTANCES[name] = _FACTORIES[name]()
    return _INSTANCES[name]


def get_instance(name):
    """The ``Ops`` object registered as ``name`` (an ``Ops`` instance passes through)."""
    return _instance(name)


def backend_of(x):
    """The backend in use whose arrays ``x`` is one of, or None. A host NumPy
    array belongs to the default backend when that is a host one, else "numpy"."""
    if isinstance(x, numpy.ndarray):
        ops = get_backend()
        return ops if ops.is_host else _instance("numpy")
    for ops in list(_INSTANCES.values()):
        if not ops.is_host and ops.is_native(x):
            return ops
    return None


def ops_for(*arrays):
    """The backend to compute on ``arrays`` with: that of the first device
    array among them, else the default backend when it is a host one, else
    "numpy". Losses, metrics and regularizers use it, so that they compute where
    their inputs live."""
    for a in arrays:
        if a is None or type(a) is numpy.ndarray:
            continue
        owner = backend_of(a)
        if owner is not None:
            return owner
    ops = get_backend()
    return ops if ops.is_host else _instance("numpy")


def _reseed(seed):
    """``fastnn.set_seed`` calls this: every backend in use reseeds its generator."""
    for ops in list(_INSTANCES.values()):
        ops.seed(seed)


def get_backend() -> Ops:
    """The active backend (an ``Ops`` instance)."""
    ops = getattr(_state, "ops", None)
    if ops is None:
        ops = _state.ops = _instance("numpy")
    return ops


def set_backend(name: Union[str, Ops]) -> Ops:
    """Make ``name`` (or an ``Ops`` instance) the active backend; returns it.

    Parameters
    ----------
    name : str or Ops
        ``"numpy"`` (the Cython kernels, the default), ``"reference"`` (plain
        NumPy), ``"strict"`` (tests), one added with ``register_backend``, or an
        ``Ops``.

    Returns
    -------
    Ops
        The backend now active; models built from now on compute on it.
    """
    _state.ops = _instance(name)
    return _state.ops


@contextlib.contextmanager
def use_backend(name: Union[str, Ops]) -> Iterator[Ops]:
    """``with use_backend("reference"): ...`` makes another backend the default
    inside the block (for the models built there, and standalone calls).

    Parameters
    ----------
    name : str or Ops
        The backend, as for ``set_backend``.
    """
    previous = get_backend()
    set_backend(name)
    try:
        yield _state.ops
    finally:
        _state.ops = previous


__all__ = ["Ops", "NumpyOps", "StrictOps", "ACTIVATIONS", "FLOAT_DTYPES", "get_backend",
           "set_backend", "use_backend", "register_backend", "available_backends",
           "get_instance", "backend_of", "ops_for"]
