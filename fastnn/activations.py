"""Activation functions by name. The arithmetic lives in the backend
(``Ops.activation_forward`` / ``activation_backward``); this module resolves
names and parameters, and offers the functions for direct use on arrays."""
from .backend import get_backend

# name -> default alpha (slope for leaky_relu, scale for elu; unused otherwise)
DEFAULT_ALPHA = {"linear": 0.0, "sigmoid": 0.0, "tanh": 0.0, "relu": 0.0,
                 "leaky_relu": 0.2, "elu": 1.0, "softmax": 0.0}
_ALIASES = {None: "linear", "identity": "linear"}


def get(identifier, alpha=None):
    """``(name, alpha)`` for an activation given as a name ("relu"), None
    (linear), or a ``(name, alpha)`` pair. Unknown names list the valid ones."""
    if isinstance(identifier, (tuple, list)) and len(identifier) == 2:
        identifier, alpha = identifier
    name = _ALIASES.get(identifier, identifier)
    if not isinstance(name, str) or name.lower() not in DEFAULT_ALPHA:
        raise ValueError(f"unknown activation {identifier!r}; valid names are: "
                         + ", ".join(sorted(DEFAULT_ALPHA)) + " (or None for linear)")
    name = name.lower()
    return name, float(DEFAULT_ALPHA[name] if alpha is None else alpha)


def _apply(name, x, alpha=None):
    name, alpha = get(name, alpha)
    return get_backend().activation_forward(name, get_backend().asarray(x), alpha)


def linear(x):
    return _apply("linear", x)


def sigmoid(x):
    return _apply("sigmoid", x)


def tanh(x):
    return _apply("tanh", x)


def relu(x):
    return _apply("relu", x)


def leaky_relu(x, alpha=0.2):
    return _apply("leaky_relu", x, alpha)


def elu(x, alpha=1.0):
    return _apply("elu", x, alpha)


def softmax(x):
    return _apply("softmax", x)


def maxout(x, pieces):
    """Max over consecutive groups of ``pieces`` features: (n, units*pieces) -> (n, units)."""
    x = get_backend().asarray(x)
    if x.ndim != 2 or pieces < 1 or x.shape[1] % pieces:
        raise ValueError(f"maxout needs a 2-D input whose feature count is a multiple of "
                         f"pieces={pieces}, got shape {x.shape}")
    return get_backend().maxout_forward(x, pieces)[0]
