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
import itertools
import re

import numpy

from .. import initializers, regularizers
from ..backend import backend_of, get_backend

_uids = {}


def _unique_name(prefix):
    counter = _uids.setdefault(prefix, itertools.count(1))
    n = next(counter)
    return prefix if n == 1 else f"{prefix}_{n - 1}"


def _snake(name):
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class SymbolicTensor:
    """A placeholder in a functional graph: its shape (batch axis excluded),
    dtype, and the node that produces it (None for a model input)."""

    def __init__(self, shape, dtype, node=None, name=None):
        self.shape = tuple(shape)
        self.dtype = numpy.dtype(dtype)
        self.node = node
        self.name = name

    def __repr__(self):
        return f"<SymbolicTensor shape=(None, {', '.join(map(str, self.shape))}) dtype={self.dtype}>"


class Node:
    """One call of a layer on symbolic inputs."""

    def __init__(self, layer, inputs):
        self.layer = layer
        self.inputs = list(inputs)
        self.output = None


def _is_symbolic(x):
    if isinstance(x, (list, tuple)):
        return len(x) > 0 and all(isinstance(t, SymbolicTensor) for t in x)
    return isinstance(x, SymbolicTensor)


class Layer:
    """Base class. Subclasses implement ``build`` (create weights with
    ``add_weight``), ``compute_output_shape`` and ``forward``, and extend
    ``get_config`` with their constructor arguments."""

    multi_input = False     # True for merge layers, which take a list of inputs
    skips_input_grad = False
    # True when forward(x, training, fused_output=True) can skip the activation so
    # that the loss differentiates activation + loss in one step.
    supports_fused_output = False

    def __init__(self, name=None, trainable=True, dtype=None, input_shape=None,
                 activity_regularizer=None):
        self.name = name or _unique_name(_snake(type(self).__name__))
        self.trainable = bool(trainable)
        self.dtype = numpy.dtype(dtype or "float32")
        if self.dtype.kind != "f":
            raise TypeError(f"layer {self.name!r}: dtype must be a float type, got {self.dtype}")
        self.input_shape = tuple(input_shape) if input_shape is not None else None
        self.activity_regularizer = regularizers.get(activity_regularizer)
        self.params = {}          # name -> array (trainable and not)
        self.grads = {}           # name -> array, for trainable params
        self.regularizers = {}    # name -> Regularizer
        self._non_trainable = set()
        self._ops = None          # fixed at the first weight, or by the owning model
        self.built = False

    @property
    def ops(self):
        """The backend this layer computes on (the default one until it is fixed)."""
        return self._ops if self._ops is not None else get_backend()

    def to(self, ops):
        """Compute on ``ops`` (an ``Ops``) from now on, moving weights and gradients
        there through the host (the backends' documented transfers)."""
        for store in (self.params, self.grads):
            for name, a in store.items():
                if not ops.is_native(a):
                    owner = backend_of(a) or self.ops
                    store[name] = ops.asarray(owner.to_numpy(a), dtype=a.dtype)
        self._ops = ops
        return self

    # ---------------------------------------------------------------- weights
    def add_weight(self, name, shape, initializer="zeros", regularizer=None, trainable=True):
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
        return self.params[name]

    @property
    def trainable_names(self):
        if not self.trainable:
            return []
        return [n for n in self.params if n not in self._non_trainable]

    @property
    def weights(self):
        return list(self.params.values())

    def zero_grads(self):
        for g in self.grads.values():
            g.fill(0)

    def count_params(self):
        return int(sum(p.size for p in self.params.values()))

    def get_weights(self):
        return [numpy.array(self.ops.to_numpy(p), copy=True) for p in self.params.values()]

    def set_weights(self, weights):
        if len(weights) != len(self.params):
            raise ValueError(f"layer {self.name!r} has {len(self.params)} weights, "
                             f"got {len(weights)}")
        for (name, p), w in zip(self.params.items(), weights):
            w = numpy.asarray(w)
            if w.shape != p.shape:
                raise ValueError(f"layer {self.name!r}: weight {name!r} has shape {p.shape}, "
                                 f"got {w.shape}")
            p[...] = self.ops.asarray(w, dtype=p.dtype)

    # ------------------------------------------------------------------ shapes
    def build(self, input_shape):
        self.built = True

    def compute_output_shape(self, input_shape):
        return input_shape

    def _ensure_built(self, input_shape):
        if not self.built:
            self.build(input_shape)
            self.built = True
        else:
            self.check_input_shape(input_shape)

    def check_input_shape(self, input_shape):
        """Raise if a built layer cannot take inputs of ``input_shape`` (called
        again, e.g. when shared). Layers with weights override this."""

    # ----------------------------------------------------------------- calling
    def forward(self, x, training=False):
        raise NotImplementedError

    def __call__(self, inputs, training=False):
        """On symbolic tensors, add this layer to a functional graph; on arrays,
        compute the output eagerly (inference unless ``training``)."""
        if _is_symbolic(inputs):
            tensors = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
            if not self.multi_input and len(tensors) != 1:
                raise ValueError(f"layer {self.name!r} takes one input, got {len(tensors)}")
            shapes = [t.shape for t in tensors] if self.multi_input else tensors[0].shape
            self._ensure_built(shapes)
            node = Node(self, tensors)
            node.output = SymbolicTensor(self.compute_output_shape(shapes), self.dtype, node)
            return node.output
        ops = self.ops
        if self.multi_input:
            xs = [ops.asarray(x, dtype=self.dtype) for x in inputs]
            self._ensure_built([x.shape[1:] for x in xs])
            return self.forward(xs, training)[0]
        x = ops.asarray(inputs, dtype=self.dtype)
        self._ensure_built(x.shape[1:])
        return self.forward(x, training)[0]

    # ---------------------------------------------------------------- config
    def get_config(self):
        config = {"name": self.name, "trainable": self.trainable, "dtype": self.dtype.name}
        if self.input_shape is not None:
            config["input_shape"] = list(self.input_shape)
        if self.activity_regularizer is not None:
            from .._registry import serialize
            config["activity_regularizer"] = serialize(self.activity_regularizer)
        return config

    @classmethod
    def from_config(cls, config):
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
