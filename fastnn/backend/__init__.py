"""Array backends and the active-backend switch.

``get_backend()`` returns the active ``Ops`` object; ``set_backend(name)`` and
``with use_backend(name):`` change it. Backends register themselves by name;
``"numpy"`` (Cython kernels on the CPU) is the default, ``"reference"`` is the
plain NumPy ``Ops`` used as the ground truth in tests.
"""
import contextlib
import threading

from .ops import ACTIVATIONS, FLOAT_DTYPES, Ops
from .numpy_ops import NumpyOps

_FACTORIES = {"numpy": NumpyOps, "reference": Ops}
_INSTANCES = {}
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


def get_backend():
    """The active backend (an ``Ops`` instance)."""
    ops = getattr(_state, "ops", None)
    if ops is None:
        ops = _state.ops = _instance("numpy")
    return ops


def set_backend(name):
    """Make ``name`` (or an ``Ops`` instance) the active backend; returns it."""
    _state.ops = _instance(name)
    return _state.ops


@contextlib.contextmanager
def use_backend(name):
    """``with use_backend("reference"): ...`` runs the block on another backend."""
    previous = get_backend()
    set_backend(name)
    try:
        yield _state.ops
    finally:
        _state.ops = previous


__all__ = ["Ops", "NumpyOps", "ACTIVATIONS", "FLOAT_DTYPES", "get_backend", "set_backend",
           "use_backend", "register_backend", "available_backends"]
