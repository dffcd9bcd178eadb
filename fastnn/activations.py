"""Activation functions by name. The arithmetic lives in the backend
(``Ops.activation_forward`` / ``activation_backward``); this module resolves
what a layer's ``activation=`` may be (a name, one of this module's functions,
an activation layer such as ``LeakyReLU(0.2)``, or a function registered with
its derivative), and offers the functions for direct use on arrays."""
from .backend import get_backend
from .backend.ops import INPUT_GRAD_ACTIVATIONS
from ._types import Any, ArrayIn, Callable, Optional, Tuple

# name -> default alpha (slope for leaky_relu, scale for elu; unused otherwise)
DEFAULT_ALPHA = {"linear": 0.0, "sigmoid": 0.0, "tanh": 0.0, "relu": 0.0,
                 "leaky_relu": 0.2, "elu": 1.0, "softmax": 0.0, "selu": 0.0,
                 "softplus": 0.0, "softsign": 0.0, "hard_sigmoid": 0.0, "gelu": 0.0,
                 "silu": 0.0, "mish": 0.0}
_ALIASES = {None: "linear", "identity": "linear", "swish": "silu"}
# name -> (forward, derivative): element-wise activations registered by users.
_CUSTOM: dict = {}


def register(name: str, forward: Callable[[Any], Any],
             derivative: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Make an element-wise activation usable as ``activation=name`` (or as
    ``activation=forward``), in layers and in saved models.

    ``forward(x)`` returns the activation of an array; ``derivative(x)``
    returns its element-wise derivative at ``x``, which backpropagation
    multiplies by the incoming gradient. Both get and return arrays of the
    active backend (use ``fastnn.get_backend().xp`` for the array module).
    Register again before ``load_model`` in a new process, as for custom layers.

    Parameters
    ----------
    name : str
        The new name (not a built-in one).
    forward : callable
        ``forward(x)``: the activation of an array.
    derivative : callable
        ``derivative(x)``: its element-wise derivative at ``x``.

    Returns
    -------
    callable
        ``forward``.

    Examples
    --------
    >>> register("double", lambda x: 2 * x, lambda x: 2 + 0 * x)
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"activation name must be a non-empty string, got {name!r}")
    key = name.lower()
    if key in DEFAULT_ALPHA or key in _ALIASES:
        raise ValueError(f"{name!r} is a built-in activation; register under another name")
    if not callable(forward) or not callable(derivative):
        raise TypeError("register(name, forward, derivative) needs two callables on arrays")
    _CUSTOM[key] = (forward, derivative)
    return forward


def get(identifier: Any, alpha: Optional[float] = None) -> Tuple[str, float]:
    """``(name, alpha)`` for an activation given as a name ("relu"), None
    (linear), a ``(name, alpha)`` pair, a function of this module
    (``fastnn.activations.relu``) or a registered one, or an activation layer
    (``LeakyReLU(0.2)``: its name and parameter). Anything else is an error
    that says what is accepted.

    Parameters
    ----------
    identifier : str, callable, tuple, Layer or None
        The activation, in any of the forms above.
    alpha : float, optional
        Its parameter (leaky_relu's slope, elu's scale); default: the activation's own.

    Returns
    -------
    tuple
        ``(name, alpha)``.

    Raises
    ------
    ValueError
        If the activation is unknown, or a callable has no known derivative.
    """
    from .layers.core import Activation
    if isinstance(identifier, (tuple, list)) and len(identifier) == 2:
        identifier, alpha = identifier
    if isinstance(identifier, Activation):
        return identifier.activation, identifier.alpha
    if callable(identifier) and not isinstance(identifier, str):
        name = _function_name(identifier)
        if name is None:
            what = getattr(identifier, "__name__", type(identifier).__name__)
            raise ValueError(
                f"activation {what!r} is a function fastnn does not know the derivative of, "
                f"so it cannot train with it. Use a name ({', '.join(sorted(DEFAULT_ALPHA))}), "
                f"a function of fastnn.activations, an activation layer such as "
                f"LeakyReLU(0.2), or register yours first: "
                f"fastnn.activations.register('my_act', forward, derivative)")
        identifier = name
    name = _ALIASES.get(identifier, identifier)
    if isinstance(name, str) and name.lower() in _CUSTOM:
        return name.lower(), 0.0
    if not isinstance(name, str) or name.lower() not in DEFAULT_ALPHA:
        raise ValueError(f"unknown activation {identifier!r}; valid names are: "
                         + ", ".join(sorted(set(DEFAULT_ALPHA) | set(_CUSTOM) | {"swish"}))
                         + " (or None for linear)")
    name = _ALIASES.get(name.lower(), name.lower())
    return name, float(DEFAULT_ALPHA[name] if alpha is None else alpha)


def _function_name(fn):
    for name, f in _FUNCTIONS.items():
        if f is fn:
            return name
    for name, (f, _) in _CUSTOM.items():
        if f is fn:
            return name
    return None


def needs_input(name: str) -> bool:
    """True when the derivative of ``name`` needs the activation's input (the
    layer then keeps it for backward), not only its output.

    Parameters
    ----------
    name : str
        An activation name from ``get``.

    Returns
    -------
    bool
    """
    return name in INPUT_GRAD_ACTIVATIONS or name in _CUSTOM


def forward(name, x, alpha=0.0, ops=None):
    """The activation ``name`` (from ``get``) of ``x`` on ``ops``.

    Parameters
    ----------
    name : str
        An activation name from ``get``.
    x : array
        The input.
    alpha : float, default 0.0
        The activation's parameter.
    ops : Ops, optional
        The backend (default: the active one).

    Returns
    -------
    array
    """
    ops = ops or get_backend()
    if name in _CUSTOM:
        return ops.asarray(_CUSTOM[name][0](x), dtype=x.dtype)
    return ops.activation_forward(name, x, alpha)


def backward(name, x, y, dy, alpha=0.0, ops=None):
    """Gradient w.r.t. the input ``x`` of ``y = forward(name, x)``.

    Parameters
    ----------
    name : str
        An activation name from ``get``.
    x : array
        The forward input.
    y : array
        The forward output.
    dy : array
        The gradient with respect to ``y``.
    alpha : float, default 0.0
        The activation's parameter.
    ops : Ops, optional
        The backend (default: the active one).

    Returns
    -------
    array
        The gradient with respect to ``x``.
    """
    ops = ops or get_backend()
    if name in _CUSTOM:
        return dy * ops.asarray(_CUSTOM[name][1](x), dtype=dy.dtype)
    return ops.activation_backward_from_input(name, x, y, dy, alpha)


def _apply(name, x, alpha=None):
    name, alpha = get(name, alpha)
    return forward(name, get_backend().asarray(x), alpha)


def linear(x: ArrayIn) -> Any:
    """The identity, ``x``.

    Parameters
    ----------
    x : array_like
        The input (any shape; softmax works on the last axis).

    Returns
    -------
    array
        The activation of ``x``, on the active backend.
    """
    return _apply("linear", x)


def sigmoid(x: ArrayIn) -> Any:
    """``1 / (1 + exp(-x))``.

    Parameters
    ----------
    x : array_like
        The input (any shape; softmax works on the last axis).

    Returns
    -------
    array
        The activation of ``x``, on the active backend.
    """
    return _apply("sigmoid", x)


def tanh(x: ArrayIn) -> Any:
    """The hyperbolic tangent.

    Parameters
    ----------
    x : array_like
        The input (any shape; softmax works on the last axis).

    Returns
    -------
    array
        The activation of ``x``, on the active backend.
    """
    return _apply("tanh", x)


def relu(x: ArrayIn) -> Any:
    """``max(x, 0)``.

    Parameters
    ----------
    x : array_like
        The input (any shape; softmax works on the last axis).

    Returns
    -------
    array
        The activation of ``x``, on the active backend.
    """
    return _apply("relu", x)


def leaky_relu(x: ArrayIn, alpha: float = 0.2) -> Any:
    """``x`` for ``x >= 0``, ``alpha * x`` below.

    Parameters
    ----------
    x : array_like
        The input (any shape; softmax works on the last axis).
    alpha : float, default 0.2
        The slope for ``x < 0``.

    Returns
    -------
    array
        The activation of ``x``, on the active backend.
    """
    return _apply("leaky_relu", x, alpha)


def elu(x: ArrayIn, alpha: float = 1.0) -> Any:
    """``x`` for ``x > 0``, ``alpha * (exp(x) - 1)`` below.

    Parameters
    ----------
    x : array_like
        The input (any shape; softmax works on the last axis).
    alpha : float, default 1.0
        The scale of the negative part.

    Returns
    -------
    array
        The activation of ``x``, on the active backend.
    """
    return _apply("elu", x, alpha)


def softmax(x: ArrayIn) -> Any:
    """``exp(x) / sum(exp(x))`` over the last axis.

    Parameters
    ----------
    x : array_like
        The input (any shape; softmax works on the last axis).

    Returns
    -------
    array
        The activation of ``x``, on the active backend.
    """
    return _apply("softmax", x)


def selu(x: ArrayIn) -> Any:
    """Scaled ELU (Klambauer et al. 2017) with Keras's constants.

    Parameters
    ----------
    x : array_like
        The input (any shape; softmax works on the last axis).

    Returns
    -------
    array
        The activation of ``x``, on the active backend.
    """
    return _apply("selu", x)


def softplus(x: ArrayIn) -> Any:
    """``log(1 + exp(x))``, without overflow.

    Parameters
    ----------
    x : array_like
        The input (any shape; softmax works on the last axis).

    Returns
    -------
    array
        The activation of ``x``, on the active backend.
    """
    return _apply("softplus", x)


def softsign(x: ArrayIn) -> Any:
    """``x / (1 + |x|)``.

    Parameters
    ----------
    x : array_like
        The input (any shape; softmax works on the last axis).

    Returns
    -------
    array
        The activation of ``x``, on the active backend.
    """
    return _apply("softsign", x)


def hard_sigmoid(x: ArrayIn) -> Any:
    """``clip(x / 6 + 0.5, 0, 1)`` (Keras 3's and PyTorch's definition; Keras 2
    used a slope of 0.2).

    Parameters
    ----------
    x : array_like
        The input (any shape; softmax works on the last axis).

    Returns
    -------
    array
        The activation of ``x``, on the active backend.
    """
    return _apply("hard_sigmoid", x)


def gelu(x: ArrayIn) -> Any:
    """Exact GELU, ``x * Phi(x)`` (Hendrycks & Gimpel), as Keras's default.

    Parameters
    ----------
    x : array_like
        The input (any shape; softmax works on the last axis).

    Returns
    -------
    array
        The activation of ``x``, on the active backend.
    """
    return _apply("gelu", x)


def silu(x: ArrayIn) -> Any:
    """SiLU / swish, ``x * sigmoid(x)``.

    Parameters
    ----------
    x : array_like
        The input (any shape; softmax works on the last axis).

    Returns
    -------
    array
        The activation of ``x``, on the active backend.
    """
    return _apply("silu", x)


swish = silu


def mish(x: ArrayIn) -> Any:
    """``x * tanh(softplus(x))`` (Misra 2019).

    Parameters
    ----------
    x : array_like
        The input (any shape; softmax works on the last axis).

    Returns
    -------
    array
        The activation of ``x``, on the active backend.
    """
    return _apply("mish", x)


def maxout(x: ArrayIn, pieces: int) -> Any:
    """Max over consecutive groups of ``pieces`` features: (n, units*pieces) -> (n, units).

    Parameters
    ----------
    x : array_like
        ``(n, units * pieces)``.
    pieces : int
        Features per group.

    Returns
    -------
    array
        ``(n, units)``.
    """
    x = get_backend().asarray(x)
    if x.ndim != 2 or pieces < 1 or x.shape[1] % pieces:
        raise ValueError(f"maxout needs a 2-D input whose feature count is a multiple of "
                         f"pieces={pieces}, got shape {x.shape}")
    return get_backend().maxout_forward(x, pieces)[0]


# The functions above, as ``activation=`` values: each maps to its name, so a
# layer built with one saves and loads like one built with the name.
_FUNCTIONS = {"linear": linear, "sigmoid": sigmoid, "tanh": tanh, "relu": relu,
              "leaky_relu": leaky_relu, "elu": elu, "softmax": softmax, "selu": selu,
              "softplus": softplus, "softsign": softsign, "hard_sigmoid": hard_sigmoid,
              "gelu": gelu, "silu": silu, "mish": mish}
