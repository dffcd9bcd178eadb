"""Models: the functional ``Model`` (a DAG of layer calls) and ``Sequential``,
with Keras's ``compile``/``fit``/``evaluate``/``predict``.

The graph runs its nodes in topological order, keeping each node's backprop
closure; backward walks them in reverse and sums gradients where branches
meet. A node may have several outputs and tensors among its call arguments
(``initial_state``), which get gradients like its inputs; masks made by a
layer (``Embedding(mask_zero=True)``, ``Masking``) travel along the nodes to
the layers and the losses after it. A model may have several outputs, each
with its loss, loss weight and metrics, as in Keras. ``fit`` is a thin loop over batches; everything around it (callbacks,
metrics, progress) lives in its own module.

A model owns its backend (``Model(..., backend="numpy")``, default: the one
active when the model is constructed); its layers compute there and
``model.to(name)`` moves weights, gradients and optimizer state. Host data
(NumPy arrays, lists) is moved to the backend once per ``fit``/``evaluate``/
``predict`` call; arrays of another device backend are refused, naming both.
The loss and the metrics stay on the backend during training: the logs are
fetched from it (one host transfer for all of them) only when something reads
them, which ``fit`` does once per epoch (and once for the validation pass);
the progress bar with ``verbose=1`` reads them at most once per refresh
interval, and a callback that reads the batch logs reads them for that batch.

``fit``/``evaluate``/``predict`` also read batches from a generator or a
``fastnn.utils.Sequence`` (``fastnn/data.py``): each batch is checked and
moved to the backend as it is read, then trains exactly as the same batch cut
from arrays would.
"""
import copy
import math

import numpy

from . import losses as losses_mod
from . import metrics as metrics_mod
from . import optimizers as optimizers_mod
from .backend import backend_of, get_backend, get_instance
from .progress import Progbar
from .training import TrainingLoop, _Logs
from .layers.base import Layer, SymbolicTensor, forward_takes_mask
from .layers.input import Input, InputLayer
from .inputs import (_as_float_array, _as_input_array, _check_batch_size, _check_numeric,
                     _host_array, _keeps_device, _label_probe, _sample_weights)
from .data import BatchSource, check_loader_options, is_batch_source, unpack_batch


def _topological_nodes(inputs, outputs):
    """Nodes needed for ``outputs``, each after the nodes that feed it."""
    order, seen, on_path = [], set(), set()
    input_ids = {id(t) for t in inputs}

    def visit(tensor):
        if id(tensor) in input_ids:
            return
        node = tensor.node
        if node is None:
            raise ValueError(f"graph disconnected: {tensor!r} is not computed from the model "
                             "inputs; pass every Input the outputs depend on")
        if id(node) in seen:
            return
        if id(node) in on_path:
            raise ValueError("the layer graph has a cycle")
        on_path.add(id(node))
        for t in node.all_inputs:
            visit(t)
        on_path.discard(id(node))
        seen.add(id(node))
        order.append(node)

    for t in outputs:
        visit(t)
    return order


def _check_verbose(verbose):
    """evaluate/predict verbosity: 0, 1, 2 or "auto" (= 1)."""
    if verbose == "auto":
        return 1
    if isinstance(verbose, bool) or verbose not in (0, 1, 2):
        raise ValueError(f"verbose must be 0, 1, 2 or 'auto', got {verbose!r}")
    return int(verbose)


class Model:
    """A functional model: ``Model(inputs=x, outputs=y)`` over layer calls."""

    def __init__(self, inputs=None, outputs=None, name=None, backend=None):
        self.name = name or type(self).__name__.lower()
        # Fixed here; the layers move to it when the graph is built.
        self.ops = get_instance(backend) if backend is not None else get_backend()
        self.optimizer = None
        self.loss = None
        self.compiled_metrics = []
        self.stop_training = False
        self.history = None
        self._graph_ready = False
        if inputs is not None or outputs is not None:
            if inputs is None or outputs is None:
                raise ValueError("a functional Model needs both inputs and outputs")
            self._init_graph(inputs, outputs)

    # ------------------------------------------------------------------ graph
    def _init_graph(self, inputs, outputs):
        inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
        for t in inputs + outputs:
            if not isinstance(t, SymbolicTensor):
                raise TypeError(f"Model inputs and outputs must be symbolic tensors from "
                                f"fastnn.Input and layer calls, got {type(t).__name__}")
        for t in inputs:
            if getattr(t, "input_layer", None) is None:
                raise ValueError(f"{t!r} is not a model input; create inputs with fastnn.Input")
        if len({id(t) for t in outputs}) != len(outputs):
            raise ValueError("a tensor is listed twice among the model outputs")
        self.inputs, self.outputs = inputs, outputs
        self._nodes = _topological_nodes(inputs, outputs)
        self._input_layers = [t.input_layer for t in inputs]
        layers = []
        for node in self._nodes:
            if node.layer not in layers:
                layers.append(node.layer)
        self._layers = layers
        input_ids = {id(t) for t in inputs}
        # Which node inputs need a gradient: those computed by a node, not model inputs.
        self._needs_grad = [[id(t) not in input_ids for t in node.inputs] for node in self._nodes]
        # Call-argument tensors that get gradients (masks never do), as (name, list?, needs).
        self._kwarg_grads = []
        for node in self._nodes:
            spec = []
            for key, value in node.tensor_kwargs.items():
                if key == "mask":
                    continue
                many = isinstance(value, list)
                needs = [id(t) not in input_ids for t in (value if many else [value])]
                spec.append((key, many, needs))
            self._kwarg_grads.append(spec)
        self._makes_mask = [any(t.mask is not None for t in node.outputs) for node in self._nodes]
        self.output_names = _output_names(outputs)
        self._graph_ready = True
        self._collect_params()
        for layer in self._input_layers + self._all_layers:
            layer.to(self.ops)

    def to(self, backend):
        """Compute on ``backend`` (a name or an ``Ops``) from now on: weights,
        gradients and optimizer state move there (through the host, once)."""
        ops = get_instance(backend)
        if self._graph_ready:
            for layer in self._input_layers + self._all_layers:
                layer.to(ops)
        if self.optimizer is not None:
            self.optimizer.to(ops)
        for loss in getattr(self, "_losses", None) or []:
            if loss is not None:
                loss.ops = ops
        self.ops = ops
        return self

    def _collect_params(self):
        # Layers held inside layers (composites) train like top-level ones.
        seen, flat = set(), []
        for top in self._layers:
            for layer in top._flatten_layers():
                if id(layer) not in seen:
                    seen.add(id(layer))
                    flat.append(layer)
        self._all_layers = flat
        self._trainable = [(layer, name) for layer in flat for name in layer.trainable_names]
        self._regularized = [(layer, name, reg) for layer in flat
                             for name, reg in layer.regularizers.items()
                             if name in layer.trainable_names]
        self._constrained = [(layer, name, c) for layer in flat
                             for name, c in layer.constraints.items()
                             if name in layer.trainable_names]

    @property
    def layers(self):
        return list(self._layers) if self._graph_ready else []

    @property
    def built(self):
        return self._graph_ready

    def get_layer(self, name=None, index=None):
        if index is not None:
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"no layer named {name!r}; layers: {[l.name for l in self.layers]}")

    def _require_built(self, what):
        if not self._graph_ready:
            raise RuntimeError(f"{what}: the model is not built yet; give the first layer an "
                               "input_shape, start with fastnn.Input(...), call build(input_shape) "
                               "or fit/predict on data first")

    # --------------------------------------------------------------- running
    def _forward(self, xs, training, fused=False):
        """Run the graph. Returns (outputs, tape, activity penalty): the
        outputs as a list in ``self.outputs`` order; their masks (None where
        unmasked) are in ``self._last_masks``."""
        values = {id(t): x for t, x in zip(self.inputs, xs)}
        masks = {}
        tape = []
        penalty = 0.0
        last = len(self._nodes) - 1
        for i, node in enumerate(self._nodes):
            layer = node.layer
            ins = [values[id(t)] for t in node.inputs]
            arg = ins if layer.multi_input else ins[0]
            kwargs, node_training, in_mask = {}, training, None
            if node.tensor_kwargs or node.call_kwargs:
                kwargs = _node_kwargs(node, values)
                node_training = kwargs.pop("training", training)
                in_mask = kwargs.pop("mask", None)
            if in_mask is None and masks:
                in_mask = _input_mask(node, masks)
            if in_mask is not None and forward_takes_mask(layer):
                kwargs["mask"] = in_mask
            if fused and i == last:
                y, backprop = layer.forward(arg, node_training, fused_output=True, **kwargs)
            else:
                y, backprop = layer.forward(arg, node_training, **kwargs)
            ys = y if node.multi_output else (y,)
            reg_grad = None
            if training and layer.activity_regularizer is not None:
                reg_grad = []
                for yk in ys:
                    penalty += layer.activity_regularizer(yk)
                    reg_grad.append(layer.activity_regularizer.gradient(yk))
            for t, yk in zip(node.outputs, ys):
                values[id(t)] = yk
            if self._makes_mask[i]:
                out_mask = layer.compute_mask(arg, in_mask)
                out_masks = out_mask if isinstance(out_mask, list) else [out_mask] * len(ys)
                for t, m in zip(node.outputs, out_masks):
                    masks[id(t)] = m
            tape.append((backprop, reg_grad))
        self._last_masks = [masks.get(id(t)) for t in self.outputs]
        return [values[id(t)] for t in self.outputs], tape, penalty

    def _backward(self, tape, dys):
        """Backward through the graph from ``dys``, one gradient per model
        output (None for an output without a loss)."""
        grads = {}
        for t, d in zip(self.outputs, dys):
            if d is not None:
                grads[id(t)] = d if id(t) not in grads else grads[id(t)] + d
        for i in range(len(self._nodes) - 1, -1, -1):
            node = self._nodes[i]
            backprop, reg_grad = tape[i]
            if node.multi_output:
                g = [grads.pop(id(t), None) for t in node.outputs]
                if reg_grad is not None:
                    g = [r if gk is None else gk + r for gk, r in zip(g, reg_grad)]
                if all(gk is None for gk in g):
                    continue  # this node does not reach the loss
            else:
                g = grads.pop(id(node.outputs[0]), None)
                if reg_grad is not None:
                    g = reg_grad[0] if g is None else g + reg_grad[0]
                if g is None:
                    continue  # this node does not reach the loss
            needs = self._needs_grad[i]
            kwarg_grads = self._kwarg_grads[i]
            if not any(needs) and not kwarg_grads:
                if node.layer.skips_input_grad:
                    backprop(g, need_dx=False)
                else:
                    backprop(g)
                continue
            dx = backprop(g)
            if kwarg_grads:
                dx, dkw = dx
                for key, many, kneeds in kwarg_grads:
                    tensors = node.tensor_kwargs[key] if many else [node.tensor_kwargs[key]]
                    ds = dkw[key] if many else [dkw[key]]
                    for t, d, need in zip(tensors, ds, kneeds):
                        if need and d is not None:
                            k = id(t)
                            grads[k] = d if k not in grads else grads[k] + d
            dxs = dx if node.layer.multi_input else [dx]
            for t, d, need in zip(node.inputs, dxs, needs):
                if need:
                    k = id(t)
                    grads[k] = d if k not in grads else grads[k] + d

    def __call__(self, x, training=False):
        """Eager call on arrays: the model's output for ``x`` (a list for
        several outputs), as arrays of the model's backend whatever ``x`` is.

        As in Keras, where ``model(x)`` returns the backend's tensors and
        ``predict`` NumPy arrays: a call is the step of a custom loop, whose
        results feed further backend computation, so it never pays a host
        transfer (a sync on a device) it did not ask for. ``predict`` (and
        ``model.ops.to_numpy``) give host arrays for host input.
        """
        xs = self._prepare_x(x)
        outs = self._forward(xs, training)[0]
        return outs if len(outs) > 1 else outs[0]

    def build(self, input_shape):
        """Build with a per-sample ``input_shape`` (batch axis excluded)."""
        if not self._graph_ready:
            raise ValueError("a functional Model is built from its inputs and outputs")

    # -------------------------------------------------------- parameter access
    def _params(self, trainable_only=False):
        if trainable_only:
            return [layer.params[name] for layer, name in self._trainable]
        return [p for layer in self._all_layers for p in layer.params.values()]

    @property
    def weights(self):
        return self._params() if self._graph_ready else []

    @property
    def trainable_weights(self):
        return self._params(True) if self._graph_ready else []

    def count_params(self):
        self._require_built("count_params")
        return int(sum(p.size for p in self._params()))

    def get_weights(self):
        """All weights, as a list of NumPy arrays in layer order."""
        self._require_built("get_weights")
        return [numpy.array(self.ops.to_numpy(p), copy=True) for p in self._params()]

    def set_weights(self, weights):
        self._require_built("set_weights")
        params = self._params()
        if len(weights) != len(params):
            raise ValueError(f"model has {len(params)} weight arrays, got {len(weights)}")
        for p, w in zip(params, weights):
            w = numpy.asarray(w)
            if w.shape != p.shape:
                raise ValueError(f"weight shape mismatch: expected {p.shape}, got {w.shape}")
        for p, w in zip(params, weights):
            p[...] = self.ops.asarray(w, dtype=p.dtype)

    # ---------------------------------------------------------------- compile
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None):
        """Choose the optimizer, the loss and the metrics reported by ``fit``.

        With several outputs, as Keras: ``loss`` is one loss for every output,
        a list (one per output) or a dict by output name (an output without a
        loss is not trained on); ``loss_weights`` a list or dict of the
        factors of the outputs' losses in the total; ``metrics`` a list of
        lists or a dict by output name (a flat list applies to every output).
        """
        if loss is None:
            raise ValueError("compile needs a loss, e.g. loss='mse' or "
                             "loss='sparse_categorical_crossentropy'")
        names = self.output_names if self._graph_ready else ["output"]
        losses = [None if l is None else losses_mod.get(l)
                  for l in _spread(loss, names, "loss")]
        if all(l is None for l in losses):
            raise ValueError("compile: no output has a loss")
        weights = [1.0] * len(names) if loss_weights is None else \
            _spread(loss_weights, names, "loss_weights", missing=1.0, spread_one=False)
        for w in weights:
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w):
                raise ValueError(f"loss_weights must be finite numbers, got {loss_weights!r}")
        metric_specs = _metric_specs(metrics, names)
        if len(names) > 1:
            per_output = isinstance(metrics, dict) or (
                isinstance(metrics, (list, tuple)) and metrics
                and all(m is None or isinstance(m, (list, tuple)) for m in metrics))
            for k, (name, l) in enumerate(zip(names, losses)):
                if l is None and metric_specs[k] and not per_output:
                    metric_specs[k] = []  # a flat list measures the outputs that get targets
                elif l is None and metric_specs[k]:
                    # fit/evaluate take no targets for such an output: the metric
                    # would have nothing to compare with.
                    raise ValueError(f"compile: output {name!r} has metrics {metric_specs[k]!r} "
                                     f"but no loss; an output without a loss gets no targets, so "
                                     f"it cannot be measured. Give {name!r} a loss (a "
                                     f"loss_weights entry of 0 keeps it out of training) or drop "
                                     f"its metrics")
        if self._graph_ready:
            self._collect_params()  # as Keras: trainable flags set since the build take effect
        self.optimizer = optimizers_mod.get(optimizer).to(self.ops)
        for l in losses:
            if l is not None:
                l.ops = self.ops
        self._losses = losses
        self._loss_weights = [float(w) for w in weights]
        self.loss = losses[0] if len(names) == 1 else losses
        self._metric_specs = metric_specs
        self._metric_table = self._make_metrics()
        self.compiled_metrics = [m for _, _, m in self._metric_table]
        self.stop_training = False

    def _make_metrics(self):
        """Fresh metrics as (output index, log key, Metric): the key is the
        metric's name, prefixed with its output's name when there are several
        outputs (``out_accuracy``), as Keras names them."""
        several = len(self._losses) > 1
        table = []
        specs = self._metric_specs if several else [self._metric_specs]
        for k, output_specs in enumerate(specs):
            for spec in output_specs:
                m = metrics_mod.get_metric(spec, loss=self._losses[k])
                if any(m is other for _, _, other in table):
                    m = copy.deepcopy(m)  # one Metric object listed for several outputs
                key = f"{self.output_names[k]}_{m.name}" if several else m.name
                table.append((k, key, m))
        return table

    def _require_compiled(self, what):
        if self.loss is None:
            raise RuntimeError(f"{what}: call model.compile(optimizer, loss) first")

    def _fusable(self):
        """Whether the output activation pairs with the loss (softmax + CE ...):
        for one output made by the last node, not consumed by other nodes."""
        if len(self.outputs) != 1 or self._nodes[-1].multi_output:
            return False
        act = self.loss.fused_activation
        last = self._nodes[-1].layer
        return act is not None and getattr(last, "supports_fused_output", False) \
            and last.activation == act

    # ----------------------------------------------------------------- checks
    def _split_inputs(self, x):
        """x as a list of one array per model input. A list or tuple of arrays
        is one array per input; one of plain Python data (numbers, nested
        lists) is the samples of a one-input model, as NumPy would read it. A
        dict is keyed by the inputs' names."""
        if isinstance(x, dict) and self._graph_ready:
            names = [t.name for t in self.inputs]
            unknown = sorted(set(x) - set(names))
            if unknown or len(x) != len(names):
                raise ValueError(f"x as a dict must have one array per model input, keyed by "
                                 f"the input names {names}; got keys {sorted(x)}")
            return [x[name] for name in names]
        if not isinstance(x, (list, tuple)):
            return [x]
        one_input = not self._graph_ready or len(self.inputs) == 1
        if one_input and len(x) and not any(hasattr(e, "shape") for e in x):
            return [x]
        return list(x)

    def _prepare_x(self, x):
        xs = self._split_inputs(x)
        if not self._graph_ready:
            arr = xs[0] if self.ops.is_native(xs[0]) else _host_array(xs[0], "x", self.ops)
            self.build(arr.shape[1:])
        if len(xs) != len(self.inputs):
            raise ValueError(f"model {self.name!r} has {len(self.inputs)} inputs, got {len(xs)} arrays")
        out = []
        for t, a in zip(self.inputs, xs):
            out.append(_as_input_array(a, t, f"input {t.name!r}", self.ops))
        n = {a.shape[0] for a in out}
        if len(n) > 1:
            raise ValueError(f"model inputs have different numbers of samples: {sorted(n)}")
        return out

    def _prepare_y(self, y, n):
        """y as a list of one target array per output (None for an output
        without a loss). Several outputs take a list or a dict by name."""
        if len(self.outputs) == 1:
            ys = [y]
        elif isinstance(y, dict):
            unknown = sorted(set(y) - set(self.output_names))
            if unknown:
                raise ValueError(f"y has keys {unknown} that are not model outputs; the "
                                 f"outputs are {self.output_names}")
            ys = [y.get(name) for name in self.output_names]
        elif isinstance(y, (list, tuple)) and len(y) == len(self.outputs):
            ys = list(y)
        else:
            got = f"a list of {len(y)}" if isinstance(y, (list, tuple)) else type(y).__name__
            raise ValueError(f"model {self.name!r} has {len(self.outputs)} outputs "
                             f"{self.output_names}: pass y as a list of one array per output "
                             f"or a dict by output name, got {got}")
        out = []
        for k, (t, loss, yk) in enumerate(zip(self.outputs, self._losses, ys)):
            if loss is None:
                out.append(None)
                continue
            if yk is None:
                raise ValueError(f"no target for output {self.output_names[k]!r}, which has "
                                 f"a loss")
            out.append(self._prepare_one_y(yk, n, t, loss, k))
        return out

    def _prepare_one_y(self, y, n, t, loss, k):
        ops = self.ops
        out_shape = t.shape
        what = "y" if len(self.outputs) == 1 else f"y[{self.output_names[k]!r}]"
        if isinstance(loss, losses_mod.SparseCategoricalCrossentropy):
            # Labels are checked on the host, once: device labels are fetched
            # for it (one documented transfer per call).
            y = ops.to_numpy(y) if ops.is_native(y) else _host_array(y, what, ops)
            _check_numeric(y, what)
            y = ops.asarray(loss._labels(y, _label_probe(y, out_shape)))
        else:
            y = _as_float_array(y, t.dtype, what, None, ops)
            if y.shape[1:] != out_shape and y.size == y.shape[0] * math.prod(out_shape):
                y = y.reshape((y.shape[0],) + out_shape)
            if y.shape[1:] != out_shape:
                raise ValueError(f"{what} has per-sample shape {y.shape[1:]} but the model "
                                 f"output {t.node.layer.name!r} has shape {out_shape}")
        if y.shape[0] != n:
            raise ValueError(f"x has {n} samples but {what} has {y.shape[0]}; they must match")
        return y

    # ------------------------------------------------------------------ steps
    def _losses_and_grads(self, ys, outs, sample_weight, fused=False):
        """(total loss, per-output losses, output gradients, predictions) of
        one forward pass, each output scored by its loss, under the mask the
        output carries (``self._last_masks``), times its loss weight."""
        total, parts, dys, preds = 0.0, [], [], []
        for loss, weight, y, out, mask in zip(self._losses, self._loss_weights, ys, outs,
                                              self._last_masks):
            if loss is None:
                parts.append(None), dys.append(None), preds.append(out)
                continue
            kw = {} if mask is None else {"mask": mask}
            if fused:
                value, dy, pred = loss.forward_backward_logits(y, out, sample_weight, **kw)
            else:
                (value, dy), pred = loss.forward_backward(y, out, sample_weight, **kw), out
            if weight != 1.0:
                dy = dy * dy.dtype.type(weight)
            total += weight * value
            parts.append(value), dys.append(dy), preds.append(pred)
        return total, parts, dys, preds

    def _loss_values(self, ys, outs, sample_weight):
        """(total loss, per-output losses) without gradients."""
        total, parts = 0.0, []
        for loss, weight, y, out, mask in zip(self._losses, self._loss_weights, ys, outs,
                                              self._last_masks):
            if loss is None:
                parts.append(None)
                continue
            value = loss(y, out, sample_weight, **({} if mask is None else {"mask": mask}))
            total += weight * value
            parts.append(value)
        return total, parts

    def _train_step(self, xs, ys, sample_weight):
        for layer in self._all_layers:  # own grads each: no scan for held layers per step
            for g in layer.grads.values():
                g.fill(0)
        fused = self._fusable()
        outs, tape, penalty = self._forward(xs, True, fused)
        loss, parts, dys, preds = self._losses_and_grads(ys, outs, sample_weight, fused)
        self._backward(tape, dys)
        loss += penalty
        for layer, name, reg in self._regularized:
            p = layer.params[name]
            loss += reg(p)
            layer.grads[name] += reg.gradient(p)
        self.optimizer.apply_gradients(self._params(True),
                                       [layer.grads[name] for layer, name in self._trainable])
        # As Keras: constraints project the updated weights, in place (the
        # optimizer's state and the layers hold these arrays).
        for layer, name, constraint in self._constrained:
            p = layer.params[name]
            p[...] = constraint(p)
        return loss, parts, preds

    def _regularization_loss(self):
        return sum(reg(layer.params[name]) for layer, name, reg in self._regularized)

    def train_on_batch(self, x, y, sample_weight=None, return_dict=False):
        """One gradient step on one batch; returns the loss (and metrics)."""
        self._require_compiled("train_on_batch")
        xs = self._prepare_x(x)
        ys = self._prepare_y(y, xs[0].shape[0])
        sample_weight = self._prepare_sample_weight(sample_weight, ys, xs[0].shape[0])
        loss, parts, preds = self._train_step(xs, ys, sample_weight)
        return self._batch_result(loss, parts, ys, preds, sample_weight, return_dict)

    def test_on_batch(self, x, y, sample_weight=None, return_dict=False):
        self._require_compiled("test_on_batch")
        xs = self._prepare_x(x)
        ys = self._prepare_y(y, xs[0].shape[0])
        sample_weight = self._prepare_sample_weight(sample_weight, ys, xs[0].shape[0])
        preds = self._forward(xs, False)[0]
        loss, parts = self._loss_values(ys, preds, sample_weight)
        loss += self._regularization_loss()
        return self._batch_result(loss, parts, ys, preds, sample_weight, return_dict)

    def _loss_logs(self, loss, parts, table=()):
        """The logs of a loss, its per-output parts and a metric table, as
        ``_Logs``: values stay on the backend until something reads them."""
        logs = {"loss": loss}
        if len(parts) > 1:
            for name, part in zip(self.output_names, parts):
                if part is not None:
                    logs[f"{name}_loss"] = part
        for _, key, m in table:
            logs[key] = m
        return _Logs(self.ops, logs)

    def _batch_result(self, loss, parts, ys, preds, sample_weight, return_dict):
        for k, key, m in self._metric_table:
            m.reset_state()
            m.update_state(*_unmasked(ys[k], preds[k], sample_weight, self._last_masks[k]))
        logs = dict(self._loss_logs(loss, parts, self._metric_table))
        return logs if return_dict else (list(logs.values()) if len(logs) > 1 else logs["loss"])

    def predict_on_batch(self, x):
        xs = self._prepare_x(x)
        keep = _keeps_device(x, self.ops)
        outs = [o if keep else self.ops.to_numpy(o) for o in self._forward(xs, False)[0]]
        return outs if len(outs) > 1 else outs[0]

    # ------------------------------------------------------------------- fit
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, steps_per_epoch=None, validation_steps=None,
            max_queue_size=10, workers=1, use_multiprocessing=False):
        """Train for ``epochs`` passes over the data; returns a ``History``.

        ``x`` is the data as arrays (with ``y``, ``sample_weight``,
        ``batch_size``, default 32), or, as in Keras, a source of batches: a
        ``fastnn.utils.Sequence`` (``__len__``, ``__getitem__``,
        ``on_epoch_end``), a generator, or any iterable, whose batches are
        ``x``, ``(x, y)`` or ``(x, y, sample_weight)`` (several inputs or
        outputs as a tuple/list or a dict by name: ``((x1, x2), y)``). Each
        batch is checked as arrays are, and an error names the batch. With a
        source, ``y``, ``sample_weight``, ``batch_size`` and
        ``validation_split`` are refused (the batches hold them / a stream
        cannot be split), and:

        - an epoch is ``steps_per_epoch`` batches; by default all of a
          Sequence, or a generator until it ends (the progress bar then has
          no total). A generator is read on from epoch to epoch: for several
          epochs, loop forever in it and give ``steps_per_epoch``; one that
          runs out before is an error. An object whose ``__iter__`` starts
          afresh (a dataset object) is read anew each epoch. A list is data,
          never batches: a list of arrays is one array per input.
        - ``shuffle`` visits a Sequence's batches in a new random order each
          epoch (``fastnn.set_seed`` repeats it); a generator's order is its own.
        - ``validation_data`` may be a source too, read for
          ``validation_steps`` batches (default: all) after each epoch.

        Batches are read in this thread, one at a time: ``workers``,
        ``use_multiprocessing`` and ``max_queue_size`` are accepted for Keras
        code and change nothing (a warning says so when they ask for
        workers). ``class_weight`` weighs the training batches only.
        """
        self._require_compiled("fit")
        if not isinstance(epochs, (int, numpy.integer)) or epochs < 0:
            raise ValueError(f"epochs must be a non-negative integer, got {epochs!r}")
        check_loader_options(workers, use_multiprocessing, max_queue_size, "fit")
        if class_weight is not None and len(self._losses) > 1:
            raise ValueError("class_weight is for models with one output; pass sample_weight")
        ops = self.ops
        if is_batch_source(x, ops):
            _refuse_with_source("fit", x, y=y, sample_weight=sample_weight, batch_size=batch_size,
                                validation_split=validation_split)
            train = BatchSource(x, steps_per_epoch, shuffle, "fit", "steps_per_epoch")

            def epoch_batches(epoch):
                return self._source_batches(train, epoch, class_weight=class_weight)
            steps, samples, val_batch_size, val = train.steps, None, 256, None
        else:
            if steps_per_epoch is not None:
                raise ValueError("fit: steps_per_epoch is for a generator or a Sequence; with "
                                 "arrays an epoch is every sample, in batches of batch_size")
            batch_size = 32 if batch_size is None else batch_size
            _check_batch_size(batch_size)
            train = None
            xs, ys, sw, val = self._prepare_fit_arrays(x, y, sample_weight, class_weight,
                                                       validation_split, validation_data)
            samples = xs[0].shape[0]

            def epoch_batches(epoch):
                return _array_batches(xs, ys, sw, batch_size, ops if shuffle else None)
            steps, val_batch_size = math.ceil(samples / batch_size), max(batch_size, 256)
        if is_batch_source(validation_data, ops):
            val_source = BatchSource(validation_data, validation_steps, False,
                                     "fit (validation_data)", "validation_steps")
        elif validation_steps is not None:
            raise ValueError("fit: validation_steps is for validation_data given as a generator "
                             "or a Sequence; array validation data is used whole")
        else:
            val_source = None
            if val is None:
                val = self._prepare_validation(validation_data)

        if verbose == "auto":
            verbose = 1
        loop = TrainingLoop(self, callbacks, epochs=epochs, steps=steps, verbose=verbose,
                            initial_epoch=initial_epoch, samples=samples, batch_size=batch_size)
        several = len(self._losses) > 1  # (an unbuilt model, built by its first batch, has one)
        for epoch in loop.epochs():
            for _, _, m in self._metric_table:
                m.reset_state()
            loss_sum, seen = 0.0, 0
            part_sums = [None if l is None else 0.0 for l in self._losses]
            for step, (xb, yb, swb) in loop.batches_of(epoch_batches(epoch)):
                nb = xb[0].shape[0]
                loss, parts, preds = self._train_step(xb, yb, swb)
                loss_sum += loss * nb
                seen += nb
                if several:
                    for k, part in enumerate(parts):
                        if part is not None:
                            part_sums[k] += part * nb
                for k, key, m in self._metric_table:
                    m.update_state(*_unmasked(yb[k], preds[k], swb, self._last_masks[k]))
                # Read (one transfer) only if a callback or the bar looks at them.
                batch_logs = self._loss_logs(
                    loss_sum / seen, [None if p is None else p / seen for p in part_sums]
                    if several else [], self._metric_table)
                loop.end_batch(step, batch_logs)
            logs = dict(batch_logs)
            if train is not None:
                train.end_epoch()
            if val_source is not None:
                val_logs = self._evaluate_batches(self._source_batches(val_source),
                                                  val_source.steps)
                val_source.end_epoch()
            elif val is not None:
                val_logs = self._evaluate_batches(_array_batches(*val, val_batch_size),
                                                  math.ceil(val[0][0].shape[0] / val_batch_size))
            if val_source is not None or val is not None:
                logs.update({"val_" + k: v for k, v in val_logs.items()})
            loop.end_epoch(epoch, logs)
        return loop.end()

    def _prepare_fit_arrays(self, x, y, sample_weight, class_weight, validation_split,
                            validation_data):
        """fit's arrays checked and on the backend, split for validation:
        ``(xs, ys, sample weights, validation (xs, ys, weights) or None)``."""
        xs = self._prepare_x(x)
        n = xs[0].shape[0]
        if n == 0:
            raise ValueError("fit got empty arrays (0 samples)")
        ys = self._prepare_y(y, n)
        sw = _sample_weights(sample_weight, None, next(a for a in ys if a is not None), n,
                             self.ops)
        val = None
        if validation_data is None and validation_split:
            if not 0 < validation_split < 1:
                raise ValueError(f"validation_split must be in (0, 1), got {validation_split}")
            split = n - int(round(n * validation_split))
            if split <= 0 or split >= n:
                raise ValueError(f"validation_split={validation_split} leaves no training or no "
                                 f"validation samples out of {n}")
            # Already checked and on the backend: no second preparation.
            val = ([a[split:] for a in xs], _take(ys, slice(split, None)),
                   None if sw is None else sw[split:])
            xs, ys = [a[:split] for a in xs], _take(ys, slice(None, split))
            sw = None if sw is None else sw[:split]
            n = split
        if class_weight is not None:
            # As Keras: class_weight weighs the training samples only, never the
            # ones validation_split holds out (their loss stays comparable).
            cwv = _sample_weights(None, class_weight, next(a for a in ys if a is not None), n,
                                  self.ops)
            sw = cwv if sw is None else sw * cwv
        return xs, ys, sw, val

    def _prepare_validation(self, validation_data):
        if validation_data is None:
            return None
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise ValueError("validation_data must be (x_val, y_val), (x_val, y_val, "
                             "sample_weight), a generator or a Sequence")
        vxs = self._prepare_x(validation_data[0])
        vys = self._prepare_y(validation_data[1], vxs[0].shape[0])
        vsw = validation_data[2] if len(validation_data) == 3 else None
        return vxs, vys, self._prepare_sample_weight(vsw, vys, vxs[0].shape[0],
                                                     "validation_data's sample_weight")

    def _prepare_sample_weight(self, sample_weight, ys, n, what="sample_weight"):
        """Per-sample weights checked and moved to the model's backend once,
        not per batch (weights already there stay there: one fetch checks them)."""
        if sample_weight is None:
            return None
        return _sample_weights(sample_weight, None, next(a for a in ys if a is not None), n,
                               self.ops, what)

    def _source_batches(self, source, epoch=None, need_y=True, class_weight=None):
        """The batches of one epoch of a ``BatchSource``, each checked as
        ``fit``'s arrays are: ``(xs, ys, sample weights)`` on the backend
        (``ys`` and the weights None when ``need_y`` is false)."""
        for label, batch in source.epoch(epoch):
            yield self._prepare_batch(label, batch, need_y, class_weight)[:3]

    def _prepare_batch(self, label, batch, need_y, class_weight=None):
        """One batch of a source as ``(xs, ys, sample weights, x as given)``;
        a ``ValueError``/``TypeError`` names the batch (``label``)."""
        try:
            x, y, sw = unpack_batch(batch)
            if x is None:
                raise ValueError("the batch has no x (got None)")
            xs = self._prepare_x(x)
            n = xs[0].shape[0]
            if n == 0:
                raise ValueError("the batch is empty (0 samples)")
            if not need_y:
                return xs, None, None, x
            if y is None:
                raise ValueError(f"the batch holds only x ({type(batch).__name__}); batches "
                                 f"for training and evaluation are (x, y) or (x, y, "
                                 f"sample_weight)")
            ys = self._prepare_y(y, n)
            sw = _sample_weights(sw, class_weight, next(a for a in ys if a is not None), n,
                                 self.ops)
        except (ValueError, TypeError) as e:
            if type(e) not in (ValueError, TypeError):
                raise  # an exception type of its own (a backend's) keeps its type and text
            raise type(e)(f"{label}: {e}") from None
        return xs, ys, sw, x

    # -------------------------------------------------------------- evaluate
    def evaluate(self, x=None, y=None, batch_size=None, verbose=0, sample_weight=None,
                 return_dict=False, steps=None, *, max_queue_size=10, workers=1,
                 use_multiprocessing=False):
        """Loss (and metrics) over ``(x, y)``; a dict with ``return_dict=True``.
        ``x`` may also be a generator or a Sequence of ``(x, y)`` or ``(x, y,
        sample_weight)`` batches (read for ``steps`` batches, default all;
        ``y``, ``sample_weight`` and ``batch_size`` are then refused), as in
        ``fit``. ``verbose``: 0 silent, 1 a progress bar with the running loss
        and metrics (one final line when output is not a terminal), 2 one
        final line; ``"auto"`` is 1."""
        self._require_compiled("evaluate")
        verbose = _check_verbose(verbose)
        check_loader_options(workers, use_multiprocessing, max_queue_size, "evaluate")
        if is_batch_source(x, self.ops):
            _refuse_with_source("evaluate", x, y=y, sample_weight=sample_weight,
                                batch_size=batch_size)
            source = BatchSource(x, steps, False, "evaluate", "steps")
            logs = self._evaluate_batches(self._source_batches(source), source.steps,
                                          verbose=verbose)
            source.end_epoch()
        else:
            if steps is not None:
                raise ValueError("evaluate: steps is for a generator or a Sequence; arrays "
                                 "are evaluated whole, in batches of batch_size")
            batch_size = 32 if batch_size is None else batch_size
            _check_batch_size(batch_size)
            xs = self._prepare_x(x)
            n = xs[0].shape[0]
            ys = self._prepare_y(y, n)
            if n == 0:
                raise ValueError("evaluate got empty arrays (0 samples)")
            sample_weight = self._prepare_sample_weight(sample_weight, ys, n)
            logs = self._evaluate_batches(_array_batches(xs, ys, sample_weight, batch_size),
                                          math.ceil(n / batch_size), verbose=verbose)
        if return_dict:
            return logs
        return list(logs.values()) if len(logs) > 1 else logs["loss"]

    def _evaluate_batches(self, batches, steps, verbose=0):
        """The logs over ``(xs, ys, sample weights)`` batches (``steps`` of
        them, None when unknown), each batch weighing by its samples."""
        table = self._make_metrics()
        bar = Progbar(steps, verbose=verbose, stateful_metrics="all") if verbose else None
        total, weight_total = 0.0, 0.0
        part_totals = [0.0] * len(self.outputs)
        reg = self._regularization_loss()  # the weights do not change while evaluating
        step = 0
        for step, (xb, yb, swb) in enumerate(batches, 1):
            nb = xb[0].shape[0]
            preds = self._forward(xb, False)[0]
            loss, parts = self._loss_values(yb, preds, swb)
            total += loss * nb
            for k, part in enumerate(parts):
                if part is not None:
                    part_totals[k] += part * nb
            weight_total += nb
            for k, _, m in table:
                m.update_state(*_unmasked(yb[k], preds[k], swb, self._last_masks[k]))
            if bar is not None:
                bar.update(step, self._loss_logs(total / weight_total + reg, [], table))
        logs = dict(self._loss_logs(total / weight_total + reg,
                                    [None if l is None else p / weight_total
                                     for l, p in zip(self._losses, part_totals)], table))
        if bar is not None and steps is None:
            bar.update(step, logs, finalize=True)  # a bar without a total ends here
        return logs

    # --------------------------------------------------------------- predict
    def predict(self, x, batch_size=None, verbose=0, steps=None, *, max_queue_size=10,
                workers=1, use_multiprocessing=False):
        """Outputs for ``x`` in batches (nothing is kept for backward): an
        array, or a list of arrays for a model with several outputs.
        ``x`` may also be a generator or a Sequence of batches (``x``, or
        ``(x, y)`` whose ``y`` is not used), read for ``steps`` batches
        (default all), as in ``fit``. ``verbose`` as in ``evaluate`` (a bar
        of the batches done)."""
        verbose = _check_verbose(verbose)
        check_loader_options(workers, use_multiprocessing, max_queue_size, "predict")
        ops = self.ops
        if is_batch_source(x, ops):
            _refuse_with_source("predict", x, batch_size=batch_size)
            source = BatchSource(x, steps, False, "predict", "steps")
            prepared = (self._prepare_batch(label, batch, False)
                        for label, batch in source.epoch())
            batches = ((xs, _keeps_device(xb, ops)) for xs, _, _, xb in prepared)
        else:
            if steps is not None:
                raise ValueError("predict: steps is for a generator or a Sequence; arrays are "
                                 "predicted whole, in batches of batch_size")
            source = None
            batch_size = 32 if batch_size is None else batch_size
            _check_batch_size(batch_size)
            xs = self._prepare_x(x)
            n = xs[0].shape[0]
            steps = math.ceil(n / batch_size) if n else None
            batches = ((xb, True) for xb, _, _ in _array_batches(xs, [], None, batch_size))
        bar = Progbar(steps, verbose=verbose) if verbose and (steps or source) else None
        outs = [[] for _ in self.outputs]
        # Host input gets host output (one transfer each): a source's when every batch was.
        keep, step = source is not None or _keeps_device(x, ops), 0
        for step, (xb, keep_batch) in enumerate(batches, 1):
            keep = keep and keep_batch
            for acc, o in zip(outs, self._forward(xb, False)[0]):
                acc.append(o)
            if bar is not None:
                bar.update(step)
        if source is not None:
            source.end_epoch()
            if bar is not None and source.steps is None:
                bar.update(step, finalize=True)
        result = []
        for acc, t in zip(outs, self.outputs):
            out = ops.xp.concatenate(acc, axis=0) if acc else \
                ops.asarray(numpy.zeros((0,) + t.shape, dtype=t.dtype))
            result.append(out if keep else ops.to_numpy(out))
        return result if len(result) > 1 else result[0]

    # ---------------------------------------------------------------- saving
    def save(self, path, include_optimizer=True):
        """Write architecture, weights and (by default) optimizer state to one
        file, atomically. Load it with ``fastnn.load_model(path)``."""
        from .saving import check_suffix, save_model
        check_suffix(path)
        save_model(self, path, include_optimizer)

    def save_weights(self, path):
        from .saving import check_suffix, save_weights
        self._require_built("save_weights")
        check_suffix(path, "weights")
        save_weights(self, path)

    def load_weights(self, path):
        from .saving import load_weights
        self._require_built("load_weights")
        load_weights(self, path)

    def get_config(self):
        from .saving import model_config
        return model_config(self)

    def to_json(self, **kwargs):
        """The architecture as a JSON string (no weights), as in Keras; rebuild
        it with ``fastnn.models.model_from_json``. ``kwargs`` go to ``json.dumps``."""
        from .saving import model_to_json
        return model_to_json(self, **kwargs)

    # --------------------------------------------------------------- summary
    def summary(self, print_fn=print, line_length=None):
        """Print the input rows, then layers, output shapes and parameter counts,
        as Keras does (a composite layer's count includes the layers it holds;
        a layer with several outputs lists each output's shape). A graph that
        is not a plain chain also gets Keras's "Connected to" column, naming
        each call's inputs as ``layer[node][tensor]``."""
        self._require_built("summary")
        connected = self._branches()
        line_length = line_length or (98 if connected else 65)
        fractions = (0.30, 0.60, 0.70, 1.0) if connected else (0.45, 0.85, 1.0)
        cols = [int(line_length * f) for f in fractions]

        def row(fields):
            line = ""
            for f, end in zip(fields, cols):
                line = (line + " " + str(f))[:end].ljust(end)
            return line.rstrip()

        def shape_text(t):
            return "(None, " + ", ".join(map(str, t.shape)) + ")"

        # "layer[node][tensor]": node counts the calls of one layer in this model.
        names = {id(t): f"{t.input_layer.name}[0][0]" for t in self.inputs}
        calls = {}
        for node in self._nodes:
            k = calls[id(node.layer)] = calls.get(id(node.layer), -1) + 1
            for t in node.outputs:
                names[id(t)] = f"{node.layer.name}[{k}][{t.index}]"

        header = ["Layer (type)", "Output Shape", "Param #"] + (["Connected to"] if connected else [])
        lines = [f'Model: "{self.name}"', "_" * line_length, row(header), "=" * line_length]
        entries = [(f"{t.input_layer.name} (InputLayer)", shape_text(t), "0", [])
                   for t in self.inputs]
        for node in self._nodes:
            layer = node.layer
            shapes = [shape_text(t) for t in node.outputs]
            shape = shapes[0] if len(shapes) == 1 else "[" + ", ".join(shapes) + "]"
            shared = self._nodes.index(node) != [n.layer for n in self._nodes].index(layer)
            count = 0 if shared else layer.count_params()
            sources = [names.get(id(t), "?") for t in node.all_inputs]
            entries.append((f"{layer.name} ({type(layer).__name__})", shape, f"{count:,}", sources))
        for i, (name, shape, count, sources) in enumerate(entries):
            if connected:
                lines.append(row([name, shape, count, sources[0] if sources else ""]))
                lines += [row(["", "", "", source]) for source in sources[1:]]
            else:
                lines.append(row([name, shape, count]))
            if i < len(entries) - 1:
                lines.append("")
        total = self.count_params()
        trainable = int(sum(p.size for p in self._params(True)))
        lines += ["=" * line_length, f"Total params: {total:,}",
                  f"Trainable params: {trainable:,}",
                  f"Non-trainable params: {total - trainable:,}", "_" * line_length]
        print_fn("\n".join(lines))

    def _branches(self):
        """True when the graph is not a chain (several inputs or outputs, a
        layer with several inputs, a tensor used twice): what Keras shows the
        "Connected to" column for."""
        if len(self.inputs) > 1 or len(self.outputs) > 1:
            return True
        if isinstance(self, Sequential):
            return False
        previous = self.inputs[0]
        for node in self._nodes:
            if len(node.all_inputs) != 1 or node.all_inputs[0] is not previous \
                    or len(node.outputs) != 1:
                return True
            previous = node.outputs[0]
        return False


class Sequential(Model):
    """A linear stack of layers: ``Sequential([Dense(256, "relu"), Dense(10)])``.

    The input shape comes from a leading ``fastnn.Input``/``InputLayer``, from
    the first layer's ``input_shape=``, or from the first data it sees.
    """

    def __init__(self, layers=None, name=None, backend=None):
        super().__init__(name=name, backend=backend)
        self._stack = []
        self._input = None
        for layer in layers or []:
            self.add(layer)

    def add(self, layer):
        if isinstance(layer, SymbolicTensor) and getattr(layer, "input_layer", None) is not None:
            if self._stack or self._input is not None:
                raise ValueError("an Input can only be the first element of a Sequential")
            self._input = layer
            return
        if isinstance(layer, InputLayer):
            return self.add(layer.output)
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential takes fastnn layers, got {type(layer).__name__}")
        if layer.multi_input:
            raise ValueError(f"{type(layer).__name__} merges several inputs; use the functional "
                             "Model API for it")
        if not self._stack and self._input is None and layer.input_shape is not None:
            self._input = Input(layer.input_shape, dtype=layer.dtype)
        self._stack.append(layer)
        self._graph_ready = False
        if self._input is not None:
            self.build()

    @property
    def layers(self):
        return list(self._stack)

    def build(self, input_shape=None):
        if self._input is None:
            if input_shape is None:
                raise ValueError("Sequential.build needs the per-sample input shape")
            dtype = self._stack[0].dtype if self._stack else None
            self._input = Input(tuple(input_shape), dtype=dtype)
        if not self._stack:
            raise ValueError("this Sequential model has no layers")
        t = self._input
        for layer in self._stack:
            try:
                t = layer(t)
            except ValueError as e:
                raise ValueError(f"cannot add layer {layer.name!r} to the Sequential model: {e}") from None
        self._init_graph([self._input], [t])


# ------------------------------------------------------------------- helpers
def _node_kwargs(node, values):
    """A node's call arguments with its tensors replaced by their values."""
    kwargs = dict(node.call_kwargs)
    for key, value in node.tensor_kwargs.items():
        if isinstance(value, list):
            kwargs[key] = [values[id(t)] for t in value]
        else:
            kwargs[key] = values[id(value)]
    if "mask" in kwargs:
        kwargs["mask"] = kwargs["mask"] != 0  # a mask given as a model input may be numbers
    return kwargs


def _input_mask(node, masks):
    """The mask(s) a node's inputs carry (None when none does)."""
    if node.layer.multi_input:
        found = [masks.get(id(t)) for t in node.inputs]
        return found if any(m is not None for m in found) else None
    return masks.get(id(node.inputs[0]))


def _output_names(outputs):
    """Keras's output names: the name of the layer making each output; a
    layer's second, third... output gets ``_1``, ``_2``..."""
    names = []
    for t in outputs:
        if t.node is None:
            name = t.name or "input"
        else:
            name = t.node.layer.name + (f"_{t.index}" if t.index else "")
        while name in names:
            name += "_"
        names.append(name)
    return names


def _spread(value, names, what, missing=None, spread_one=True):
    """A compile argument as one value per output: a list (one per output), a
    dict by output name (absent names get ``missing``), or one value for every
    output (``spread_one``)."""
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(names))
        if unknown:
            raise ValueError(f"compile: {what} names {unknown}, which are not outputs of the "
                             f"model; the outputs are {names}")
        return [value.get(name, missing) for name in names]
    if isinstance(value, (list, tuple)):
        if len(value) != len(names):
            raise ValueError(f"compile: {what} is a list of {len(value)} but the model has "
                             f"{len(names)} output(s) {names}")
        return list(value)
    if not spread_one and len(names) > 1:
        raise ValueError(f"compile: {what} must be a list or a dict by output name for a "
                         f"model with {len(names)} outputs, got {value!r}")
    return [value] * len(names)


def _metric_specs(metrics, names):
    """Metric specs: a flat list for one output; for several, one list per
    output (from a list of lists, a dict by output name, or a flat list that
    applies to every output)."""
    if len(names) == 1:
        if isinstance(metrics, dict):
            metrics = _spread(metrics, names, "metrics", missing=[])[0]
        specs = list(metrics or [])
        if specs and isinstance(specs[0], (list, tuple)) and len(specs) == 1:
            specs = list(specs[0])
        return specs
    if metrics is None:
        return [[] for _ in names]
    if isinstance(metrics, dict):
        per = _spread(metrics, names, "metrics", missing=[])
    elif isinstance(metrics, (list, tuple)) and metrics and \
            all(m is None or isinstance(m, (list, tuple)) for m in metrics):
        per = _spread(list(metrics), names, "metrics")
    else:
        per = [list(metrics)] * len(names)
    return [[] if m is None else list(m) if isinstance(m, (list, tuple)) else [m] for m in per]


def _unmasked(y, pred, sample_weight, mask):
    """A metric's (y, pred, sample_weight) over the unmasked steps of a
    masked output, each step a sample: as Keras, a metric of a sequence output
    counts only the steps its mask keeps."""
    if mask is None:
        return y, pred, sample_weight
    if sample_weight is not None:
        xp = (backend_of(mask) or get_backend()).xp
        sw = xp.asarray(sample_weight).reshape((-1,) + (1,) * (mask.ndim - 1))
        sample_weight = xp.broadcast_to(sw, mask.shape)[mask]
    return y[mask], pred[mask], sample_weight


def _take(arrays, idx):
    """Rows ``idx`` of each array in a list (None stays None)."""
    return [None if a is None else a[idx] for a in arrays]


def _array_batches(xs, ys, sample_weight, batch_size, shuffle_ops=None):
    """Batches ``(xs, ys, sample weights)`` of arrays already on the backend,
    in order or, with ``shuffle_ops``, in a permutation it draws when the
    first batch is taken (so at the same point of the seeded stream as a
    loop that drew it before its first step)."""
    n = xs[0].shape[0]
    order = shuffle_ops.permutation(n) if shuffle_ops is not None else None
    for lo in range(0, n, batch_size):
        idx = order[lo:lo + batch_size] if order is not None else slice(lo, lo + batch_size)
        yield ([a[idx] for a in xs], _take(ys, idx),
               None if sample_weight is None else sample_weight[idx])


def _refuse_with_source(caller, x, **given):
    """Keras's refusals when ``x`` is a generator or a Sequence: its batches
    carry the targets, the weights and the batch size, and a stream cannot be
    split for validation."""
    kind = type(x).__name__
    for name, value in given.items():
        if name == "validation_split":
            if value:
                raise ValueError(f"{caller}: validation_split is only for arrays; x is a "
                                 f"{kind}, which cannot be split: pass validation_data (arrays, "
                                 f"a generator or a Sequence)")
        elif value is not None:
            what = ("its batches set the batch size" if name == "batch_size" else
                    f"its batches hold {name} ((x, y) or (x, y, sample_weight))")
            raise ValueError(f"{caller}: {name} must not be given when x is a {kind}: {what}")

