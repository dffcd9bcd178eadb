"""The layer contract and the symbolic tensors of the functional API.

A layer says *what* it computes; the backend says *how*. Its

    y, backprop = layer.forward(x, training)
    dx = backprop(dy)

returns the output and a closure that accumulates the parameter gradients into
``layer.grads`` and returns the input gradient. Nothing of a call is kept on
the layer, so one layer can be called several times in a graph (shared
weights); its gradients then sum. A closure may accept ``need_dx=False`` (the
layer sets ``skips_input_grad``) to skip the input gradient when nothing needs it.

A layer computes through ``self.ops``: the backend it was built on (the
default backend then), and from the moment a model holds it, the model's
(``Model(..., backend=)``, ``model.to``), which moves its weights there.
"""
import contextlib
import inspect
import itertools
import re
import threading

import numpy

from .. import constraints, initializers, regularizers
from .._types import Any, ArrayIn, Callable, Dict, List, Optional, Sequence, Shape, Tuple, Union
from ..backend import backend_of, get_backend

_uids: dict = {}


def _unique_name(prefix):
    counter = _uids.setdefault(prefix, itertools.count(1))
    n = next(counter)
    return prefix if n == 1 else f"{prefix}_{n - 1}"


def _snake(name):
    """Keras's automatic names: LeakyReLU -> leaky_re_lu, Conv2D -> conv2d."""
    name = re.sub(r"(.)([A-Z][a-z0-9]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


# Loading a model file builds its layers from a description that may be
# crafted: ``weight_budget(nbytes)`` bounds what their weights may allocate
# (the bytes the file's arrays hold), so ``units: 10**12`` is refused at once
# instead of allocating. None: no bound (normal building).
_budget = threading.local()


@contextlib.contextmanager
def weight_budget(nbytes, what="the model file"):
    previous = getattr(_budget, "left", None), getattr(_budget, "what", None)
    _budget.left, _budget.what = int(nbytes), what
    try:
        yield
    finally:
        _budget.left, _budget.what = previous


def _spend_weight_budget(layer, name, shape):
    left = getattr(_budget, "left", None)
    if left is None:
        return
    n = 1
    for d in shape:
        if not isinstance(d, (int, numpy.integer)) or d < 0:
            raise ValueError(f"layer {layer.name!r}: weight {name!r} has a bad shape {shape}")
        n *= int(d)
    nbytes = n * layer.dtype.itemsize
    if nbytes > left:
        raise ValueError(f"layer {layer.name!r} declares a weight {name!r} of shape "
                         f"{tuple(shape)} ({nbytes:,} bytes), more than {_budget.what} holds "
                         f"({left:,} bytes of weights left)")
    _budget.left = left - nbytes


class SymbolicTensor:
    """A placeholder in a functional graph: its shape (batch axis excluded),
    dtype, the node that produces it (None for a model input) and which of
    that node's outputs it is, and its mask (a SymbolicTensor, or None when the
    tensor carries no mask). Made by ``fastnn.Input`` and by layer calls.

    Parameters
    ----------
    shape : tuple of int or None
        The per-sample shape (``None`` for an unknown size).
    dtype : dtype
        Its element type.
    node : Node, optional
        The layer call that produces it (None for a model input).
    name : str, optional
        Its name.
    index : int, default 0
        Which of the node's outputs it is.
    """

    def __init__(self, shape: Sequence[Optional[int]], dtype: Any, node: "Optional[Node]" = None,
                 name: Optional[str] = None, index: int = 0) -> None:
        self.shape = tuple(shape)
        self.dtype = numpy.dtype(dtype)
        self.node = node
        self.name = name
        self.index = index
        self.mask = None
        # A model input's InputLayer (set by Input); None for a layer's output.
        self.input_layer: "Optional[Layer]" = None

    def __repr__(self):
        return f"<SymbolicTensor shape=(None, {', '.join(map(str, self.shape))}) dtype={self.dtype}>"


class Node:
    """One call of a layer on symbolic inputs: the positional input tensors,
    the tensors passed as keyword arguments (``tensor_kwargs``: name -> one
    tensor or a list), the other keyword arguments (``call_kwargs``, e.g.
    ``training``), and every output tensor.

    Parameters
    ----------
    layer : Layer
        The layer called.
    inputs : list of SymbolicTensor
        Its positional inputs.
    tensor_kwargs : dict, optional
        Keyword arguments that are tensors (``initial_state=...``, ``mask``).
    call_kwargs : dict, optional
        Other keyword arguments (``training``).
    """

    def __init__(self, layer: "Layer", inputs: Sequence[SymbolicTensor],
                 tensor_kwargs: Optional[Dict[str, Any]] = None,
                 call_kwargs: Optional[Dict[str, Any]] = None) -> None:
        self.layer = layer
        self.inputs = list(inputs)
        self.tensor_kwargs = dict(tensor_kwargs or {})
        self.call_kwargs = dict(call_kwargs or {})
        self.outputs: List[SymbolicTensor] = []
        self.multi_output = False  # forward returns a tuple of outputs

    @property
    def output(self):
        """The first (usually only) output tensor."""
        return self.outputs[0]

    @property
    def all_inputs(self):
        """Positional inputs, then keyword-argument tensors (masks included)."""
        out = list(self.inputs)
        for value in self.tensor_kwargs.values():
            out.extend(value if isinstance(value, (list, tuple)) else [value])
        return out


def _is_symbolic(x):
    if isinstance(x, (list, tuple)):
        return len(x) > 0 and all(isinstance(t, SymbolicTensor) for t in x)
    return isinstance(x, SymbolicTensor)


def _is_shape_list(shape):
    """A list of shapes (several outputs), as opposed to one shape of ints."""
    return isinstance(shape, list) or (isinstance(shape, tuple) and len(shape) > 0
                                       and all(isinstance(s, (tuple, list)) for s in shape))


_takes_mask: dict = {}


def forward_takes_mask(layer):
    """Whether ``layer.forward`` accepts ``mask=`` (as Keras inspects
    ``call``): a masking-aware layer that does not use the mask itself (Dense,
    Dropout) just passes it on through ``compute_mask``."""
    cls = type(layer)
    if cls not in _takes_mask:
        params = inspect.signature(cls.forward).parameters
        _takes_mask[cls] = "mask" in params or any(
            p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    return _takes_mask[cls]


def zeros_for_missing(dys, ys):
    """Output gradients with each ``None`` (an output that does not reach the
    loss) replaced by zeros shaped like its output: for layers whose backward
    needs every output gradient. Zeros are made only where missing."""
    ops = (backend_of(ys[0]) if ys else None) or get_backend()
    return [ops.zeros(y.shape, dtype=y.dtype) if d is None else d for d, y in zip(dys, ys)]


class Layer:
    """Base class. Subclasses implement ``build`` (create weights with
    ``add_weight``), ``compute_output_shape`` and ``forward``, and extend
    ``get_config`` with their constructor arguments.

    Every layer takes these keyword arguments (the ``**kwargs`` of the
    layers' constructors).

    Parameters
    ----------
    name : str, optional
        The layer's name; default: Keras's automatic name from the class
        (``dense``, ``dense_1``, ``leaky_re_lu``, ...).
    trainable : bool, default True
        Whether training updates its weights.
    dtype : str or dtype, optional
        Its float type for weights and computation (default ``"float32"``).
    input_shape : tuple of int, optional
        The per-sample input shape (batch axis excluded), for a model's first layer.
    activity_regularizer : str, Regularizer or dict, optional
        A penalty on the layer's output, added to the loss.

    Raises
    ------
    TypeError
        If ``dtype`` is not a float type.

    Examples
    --------
    A layer computes eagerly on arrays, or builds a graph on ``fastnn.Input``:

    >>> import numpy, fastnn
    >>> layer = fastnn.layers.Dense(3)
    >>> layer(numpy.ones((2, 4), "float32")).shape
    (2, 3)
    >>> y, backprop = layer.forward(layer.ops.asarray(numpy.ones((2, 4), "float32")), True)
    >>> dx = backprop(numpy.ones((2, 3), "float32"))  # fills layer.grads
    """

    multi_input = False     # True for merge layers, which take a list of inputs
    skips_input_grad = False
    # True when forward(x, training, fused_output=True) can skip the activation so
    # that the loss differentiates activation + loss in one step.
    supports_fused_output = False
    # True when the layer accepts a masked input: its forward gets the mask as
    # mask=... when it takes that argument, and compute_mask passes it on by default.
    supports_masking = False

    def __init__(self, name: Optional[str] = None, trainable: bool = True, dtype: Any = None,
                 input_shape: Optional[Shape] = None, activity_regularizer: Any = None) -> None:
        self.name = name or _unique_name(_snake(type(self).__name__))
        self._trainable = bool(trainable)
        self.dtype = numpy.dtype(dtype or "float32")
        if self.dtype.kind != "f":
            raise TypeError(f"layer {self.name!r}: dtype must be a float type, got {self.dtype}")
        self.input_shape = tuple(input_shape) if input_shape is not None else None
        self.activity_regularizer = regularizers.get(activity_regularizer)
        self.params: Dict[str, Any] = {}  # name -> array (trainable and not), this layer's own
        self.grads: Dict[str, Any] = {}   # name -> array, for trainable params
        self.regularizers: Dict[str, Any] = {}  # name -> Regularizer
        self.constraints: Dict[str, Any] = {}  # name -> Constraint, applied after each update
        self._non_trainable: set = set()
        self._ops: Any = None     # fixed at the first weight, or by the owning model
        self.built = False

    @property
    def trainable(self) -> bool:
        """Whether training updates this layer's weights (setting it sets the
        layers it holds too)."""
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        # As Keras: freezing a layer freezes the layers it holds.
        self._trainable = bool(value)
        for layer in self._sublayers():
            layer.trainable = value

    # ------------------------------------------------------- layers in layers
    def _sublayers(self):
        """The layers this layer holds directly, as attributes or inside
        lists, tuples and dicts held as attributes, in assignment order.
        Scanned on demand (not cached), so reassigning or appending is seen."""
        found, seen = [], {id(self)}
        for value in vars(self).values():
            if isinstance(value, Layer):
                items = [value]
            elif isinstance(value, (list, tuple)):
                items = value
            elif isinstance(value, dict):
                items = value.values()
            else:
                continue
            for item in items:
                if isinstance(item, Layer) and id(item) not in seen:
                    seen.add(id(item))
                    found.append(item)
        return found

    def _flatten_layers(self, include_self=True):
        """This layer (first) and every layer it holds, depth first, once each."""
        out, seen = [], set()

        def visit(layer):
            if id(layer) in seen:
                return
            seen.add(id(layer))
            out.append(layer)
            for sub in layer._sublayers():
                visit(sub)

        visit(self)
        return out if include_self else out[1:]

    def _weight_items(self):
        """(layer, name) of every weight, own first, then held layers'."""
        return [(layer, name) for layer in self._flatten_layers() for name in layer.params]

    @property
    def ops(self):
        """The backend this layer computes on (the default one until it is fixed)."""
        return self._ops if self._ops is not None else get_backend()

    def to(self, ops: Any) -> "Layer":
        """Compute on ``ops`` from now on, moving weights and gradients
        there through the host (the backends' documented transfers).

        Parameters
        ----------
        ops : Ops
            The backend.

        Returns
        -------
        Layer
            The layer itself.
        """
        for store in (self.params, self.grads):
            for name, a in store.items():
                if not ops.is_native(a):
                    owner = backend_of(a) or self.ops
                    store[name] = ops.asarray(owner.to_numpy(a), dtype=a.dtype)
        self._ops = ops
        for layer in self._sublayers():
            layer.to(ops)
        return self

    # ---------------------------------------------------------------- weights
    def add_weight(self, name: str, shape: Sequence[int], initializer: Any = "zeros",
                   regularizer: Any = None, trainable: bool = True,
                   constraint: Any = None) -> Any:
        """Create a weight (in ``build``), with its gradient when trainable.

        Parameters
        ----------
        name : str
            The weight's name (``"kernel"``, ``"bias"``, ...), its key in
            ``params`` and ``grads``.
        shape : tuple of int
            Its shape.
        initializer : str, Initializer or callable, default "zeros"
            How its first values are drawn (fastnn's seeded generator).
        regularizer : str, Regularizer or dict, optional
            A penalty on it, added to the loss.
        trainable : bool, default True
            Whether training updates it (a moving mean is not trained).
        constraint : str, Constraint or dict, optional
            A projection applied to it after each optimizer update
            (``fastnn.constraints``, as Keras's).

        Returns
        -------
        array
            The new weight, on the layer's backend.
        """
        _spend_weight_budget(self, name, shape)
        # Initial values are drawn on the host (fastnn's seeded generator) and
        # moved to the layer's backend once, here.
        if self._ops is None:
            self._ops = get_backend()
        ops = self._ops
        value = initializers.get(initializer)(tuple(shape), self.dtype)
        self.params[name] = ops.asarray(value, dtype=self.dtype)
        if trainable:
            self.grads[name] = ops.zeros(value.shape, dtype=self.dtype)
        else:
            self._non_trainable.add(name)
        reg = regularizers.get(regularizer)
        if reg is not None:
            self.regularizers[name] = reg
        constraint = constraints.get(constraint)
        if constraint is not None:
            self.constraints[name] = constraint
        return self.params[name]

    @property
    def trainable_names(self):
        """Names of this layer's own trainable weights (held layers list theirs)."""
        if not self.trainable:
            return []
        return [n for n in self.params if n not in self._non_trainable]

    @property
    def weights(self) -> List[Any]:
        """Every weight array (own first, then the held layers'), trainable or not."""
        return [layer.params[name] for layer, name in self._weight_items()]

    @property
    def trainable_weights(self) -> List[Any]:
        """The weight arrays that training updates."""
        return [layer.params[name] for layer in self._flatten_layers()
                for name in layer.trainable_names]

    def zero_grads(self) -> None:
        """Set every gradient (own and held layers') to zero."""
        for layer in self._flatten_layers():
            for g in layer.grads.values():
                g.fill(0)

    def count_params(self) -> int:
        """The number of scalars in all weights."""
        return int(sum(p.size for p in self.weights))

    def get_weights(self) -> List[numpy.ndarray]:
        """Copies of every weight as NumPy arrays, in ``weights`` order."""
        return [numpy.array((backend_of(p) or self.ops).to_numpy(p), copy=True)
                for p in self.weights]

    def set_weights(self, weights: Sequence[ArrayIn]) -> None:
        """Overwrite every weight, in ``weights`` order.

        Parameters
        ----------
        weights : list of array_like
            One array per weight, each of its shape.

        Raises
        ------
        ValueError
            If the count or a shape differs (nothing is written then).
        """
        items = self._weight_items()
        if len(weights) != len(items):
            raise ValueError(f"layer {self.name!r} has {len(items)} weights, "
                             f"got {len(weights)}")
        for (layer, name), w in zip(items, weights):
            p = layer.params[name]
            w = numpy.asarray(w)
            if w.shape != p.shape:
                raise ValueError(f"layer {layer.name!r}: weight {name!r} has shape {p.shape}, "
                                 f"got {w.shape}")
        for (layer, name), w in zip(items, weights):
            p = layer.params[name]
            p[...] = layer.ops.asarray(w, dtype=p.dtype)

    # ------------------------------------------------------------------ shapes
    def build(self, input_shape: Any) -> None:
        """Create the weights for inputs of ``input_shape`` (called once, by
        the first call).

        Parameters
        ----------
        input_shape : tuple
            The per-sample input shape (batch axis excluded); a list of them
            for layers taking several inputs.
        """
        self.built = True

    def compute_output_shape(self, input_shape: Any) -> Any:
        """The per-sample output shape for a per-sample ``input_shape``.

        Parameters
        ----------
        input_shape : tuple
            The per-sample input shape (batch axis excluded); a list of them
            for layers taking several inputs.

        Returns
        -------
        tuple or list of tuple
            One shape, or one per output for layers with several outputs.
        """
        return input_shape

    def _ensure_built(self, input_shape):
        if not self.built:
            self.build(input_shape)
            self.built = True
        else:
            self.check_input_shape(input_shape)

    def build_sublayer(self, layer: "Layer", input_shape: Shape) -> Any:
        """Build a layer this layer holds for per-sample ``input_shape`` (a
        composite layer's ``build`` calls this for each part, in order) and
        return the part's output shape.

        Parameters
        ----------
        layer : Layer
            The part.
        input_shape : tuple
            Its per-sample input shape.

        Returns
        -------
        tuple
            Its per-sample output shape.
        """
        layer._ensure_built(input_shape)
        return layer.compute_output_shape(input_shape)

    def check_input_shape(self, input_shape: Any) -> None:
        """Raise if a built layer cannot take inputs of ``input_shape`` (called
        again, e.g. when shared). Layers with weights override this.

        Parameters
        ----------
        input_shape : tuple
            The per-sample input shape.

        Raises
        ------
        ValueError
            Naming the layer, the shape received and the shape expected.
        """

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        """The mask of this layer's output, from its input and the input's mask
        (None: no mask). By default a layer that supports masking passes its
        input's mask on and any other layer drops it. A layer with several
        outputs may return a list, one mask per output. While a graph is
        built, ``inputs`` and ``mask`` are SymbolicTensors and only whether the
        result is None matters (return a SymbolicTensor for a mask you make).

        Parameters
        ----------
        inputs : array or SymbolicTensor
            The layer's input (a list for layers taking several).
        mask : array or SymbolicTensor, optional
            The input's mask, ``(batch, steps)`` booleans.

        Returns
        -------
        mask or None
        """
        return mask if self.supports_masking else None

    # ----------------------------------------------------------------- calling
    def forward(self, x: Any, training: bool = False) -> Tuple[Any, Callable[..., Any]]:
        """Compute the output and the closure that back-propagates through it.

        Parameters
        ----------
        x : array
            A batch on the layer's backend (a list of arrays for layers
            taking several inputs).
        training : bool, default False
            Training mode (dropout, batch statistics, ...).

        Returns
        -------
        y : array
            The output (a tuple of arrays for layers with several outputs).
        backprop : callable
            ``backprop(dy)`` adds the parameter gradients into ``grads`` and
            returns the input gradient ``dx``.
        """
        raise NotImplementedError

    def __call__(self, inputs: Any, training: Optional[bool] = None, mask: Any = None,
                 **kwargs: Any) -> Any:
        """On symbolic tensors, add this layer to a functional graph (returns
        a SymbolicTensor, or a list of them for several outputs); on arrays,
        compute the output eagerly (inference unless ``training``). Keyword
        arguments (``initial_state=...``) go to ``forward``."""
        if _is_symbolic(inputs):
            return self._symbolic_call(inputs, training, mask, kwargs)
        ops = self.ops
        if self.multi_input:
            xs = [ops.asarray(x, dtype=self.dtype) for x in inputs]
            self._ensure_built([x.shape[1:] for x in xs])
            arg = xs
        else:
            arg = self._eager_input(inputs)
            self._ensure_built(arg.shape[1:])
        if mask is not None and forward_takes_mask(self):
            kwargs["mask"] = mask
        y = self.forward(arg, bool(training), **kwargs)[0]
        return list(y) if isinstance(y, tuple) else y

    def _eager_input(self, x):
        """The array ``forward`` gets in an eager call (layers taking integer
        indices override this to keep them integers)."""
        return self.ops.asarray(x, dtype=self.dtype)

    def _symbolic_call(self, inputs, training, mask, kwargs):
        tensors = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        if not self.multi_input and len(tensors) != 1:
            raise ValueError(f"layer {self.name!r} takes one input, got {len(tensors)}")
        tensor_kwargs, call_kwargs = {}, {}
        for key, value in kwargs.items():
            if value is None:
                continue
            if _is_symbolic(value):
                tensor_kwargs[key] = list(value) if isinstance(value, (list, tuple)) else value
            elif isinstance(value, SymbolicTensor) or (
                    isinstance(value, (list, tuple)) and any(isinstance(v, SymbolicTensor)
                                                             for v in value)):
                raise TypeError(f"layer {self.name!r}: argument {key!r} mixes symbolic tensors "
                                "and other values")
            else:
                call_kwargs[key] = value
        if training is not None:
            call_kwargs["training"] = bool(training)
        # The mask: one passed explicitly, else the one the inputs carry.
        if mask is not None:
            if not isinstance(mask, SymbolicTensor):
                raise TypeError(f"layer {self.name!r}: in a functional graph, mask must be a "
                                f"symbolic tensor, got {type(mask).__name__}")
            tensor_kwargs["mask"] = mask
            in_mask = mask
        else:
            masks = [t.mask for t in tensors]
            in_mask = (masks if any(m is not None for m in masks) else None) \
                if self.multi_input else masks[0]
        if in_mask is not None and not self.supports_masking:
            carrier = next(t for t in tensors if t.mask is not None) if mask is None else None
            source = (f"the output of layer {carrier.node.layer.name!r}"
                      if carrier is not None and carrier.node is not None else "its input")
            raise ValueError(f"layer {self.name!r} ({type(self).__name__}) does not support "
                             f"masking, but {source} carries a mask (from Embedding(mask_zero="
                             "True) or Masking); put a layer that consumes the mask (e.g. "
                             "GlobalAveragePooling1D or a recurrent layer) before it")
        shapes = [t.shape for t in tensors] if self.multi_input else tensors[0].shape
        self._ensure_built(shapes)
        node = Node(self, tensors, tensor_kwargs, call_kwargs)
        out_shape = self.compute_output_shape(shapes)
        node.multi_output = _is_shape_list(out_shape)
        out_shapes = list(out_shape) if node.multi_output else [out_shape]
        node.outputs = [SymbolicTensor(s, self.dtype, node, index=k)
                        for k, s in enumerate(out_shapes)]
        out_mask = self.compute_mask(inputs if self.multi_input else tensors[0], in_mask)
        if out_mask is not None:
            out_masks = list(out_mask) if isinstance(out_mask, list) else \
                [out_mask] * len(node.outputs)
            for t, m in zip(node.outputs, out_masks):
                t.mask = m
        return list(node.outputs) if node.multi_output else node.outputs[0]

    # ---------------------------------------------------------------- config
    def get_config(self) -> Dict[str, Any]:
        """The constructor arguments that rebuild this layer (``from_config``), JSON-able."""
        config = {"name": self.name, "trainable": self.trainable, "dtype": self.dtype.name}
        if self.input_shape is not None:
            config["input_shape"] = list(self.input_shape)
        if self.activity_regularizer is not None:
            from .._registry import serialize
            config["activity_regularizer"] = serialize(self.activity_regularizer)
        return config

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "Layer":
        """A new layer (fresh weights) from ``get_config()``'s dict.

        Parameters
        ----------
        config : dict
            What ``get_config`` returned.
        """
        return cls(**config)

    def _check_input(self, x, expected_last=None):
        """Validate dtype and (optionally) the feature axis of an input batch."""
        self.ops.check_native(x, f"input of layer {self.name!r}")
        if x.dtype != self.dtype:
            raise TypeError(f"layer {self.name!r} computes in {self.dtype} but got input of "
                            f"dtype {x.dtype}; cast the input (models cast for you)")
        if expected_last is not None and (x.ndim < 2 or x.shape[-1] != expected_last):
            raise ValueError(f"layer {self.name!r} expects input of shape (batch, ..., "
                             f"{expected_last}), got {tuple(x.shape)}")

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r}>"
