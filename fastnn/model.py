"""Models: the functional ``Model`` (a DAG of layer calls) and ``Sequential``,
with Keras's ``compile``/``fit``/``evaluate``/``predict``.

The graph runs its nodes in topological order, keeping each node's backprop
closure; backward walks them in reverse and sums gradients where branches
meet. ``fit`` is a thin loop over batches; everything around it (callbacks,
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
"""
import math
from collections.abc import MutableMapping

import numpy

from . import losses as losses_mod
from . import metrics as metrics_mod
from . import optimizers as optimizers_mod
from .backend import backend_of, get_backend, get_instance
from .callbacks import CallbackList, History, ProgbarLogger
from .progress import Progbar
from .layers.base import Layer, SymbolicTensor
from .layers.input import Input, InputLayer


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
        for t in node.inputs:
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
        if len(outputs) != 1:
            raise ValueError(f"fastnn models have one output for now, got {len(outputs)}")
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
        self._graph_ready = True
        self._collect_params()
        for layer in self._input_layers + self._layers:
            layer.to(self.ops)

    def to(self, backend):
        """Compute on ``backend`` (a name or an ``Ops``) from now on: weights,
        gradients and optimizer state move there (through the host, once)."""
        ops = get_instance(backend)
        if self._graph_ready:
            for layer in self._input_layers + self._layers:
                layer.to(ops)
        if self.optimizer is not None:
            self.optimizer.to(ops)
        if self.loss is not None:
            self.loss.ops = ops
        self.ops = ops
        return self

    def _collect_params(self):
        self._trainable = [(layer, name) for layer in self._layers for name in layer.trainable_names]
        self._regularized = [(layer, name, reg) for layer in self._layers
                             for name, reg in layer.regularizers.items()
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
        """Run the graph. Returns (output, tape, activity penalty)."""
        values = {id(t): x for t, x in zip(self.inputs, xs)}
        tape = []
        penalty = 0.0
        last = len(self._nodes) - 1
        for i, node in enumerate(self._nodes):
            layer = node.layer
            ins = [values[id(t)] for t in node.inputs]
            arg = ins if layer.multi_input else ins[0]
            if fused and i == last:
                y, backprop = layer.forward(arg, training, fused_output=True)
            else:
                y, backprop = layer.forward(arg, training)
            reg_grad = None
            if training and layer.activity_regularizer is not None:
                penalty += layer.activity_regularizer(y)
                reg_grad = layer.activity_regularizer.gradient(y)
            values[id(node.output)] = y
            tape.append((backprop, reg_grad))
        return values[id(self.outputs[0])], tape, penalty

    def _backward(self, tape, dy):
        grads = {id(self.outputs[0]): dy}
        for i in range(len(self._nodes) - 1, -1, -1):
            node = self._nodes[i]
            backprop, reg_grad = tape[i]
            g = grads.pop(id(node.output), None)
            if reg_grad is not None:
                g = reg_grad if g is None else g + reg_grad
            if g is None:
                continue  # this node does not reach the loss
            needs = self._needs_grad[i]
            if not any(needs):
                if node.layer.skips_input_grad:
                    backprop(g, need_dx=False)
                else:
                    backprop(g)
                continue
            dx = backprop(g)
            dxs = dx if node.layer.multi_input else [dx]
            for t, d, need in zip(node.inputs, dxs, needs):
                if need:
                    k = id(t)
                    grads[k] = d if k not in grads else grads[k] + d

    def __call__(self, x, training=False):
        """Eager call on arrays: the model's output for ``x``."""
        xs = self._prepare_x(x)
        return self._forward(xs, training)[0]

    def build(self, input_shape):
        """Build with a per-sample ``input_shape`` (batch axis excluded)."""
        if not self._graph_ready:
            raise ValueError("a functional Model is built from its inputs and outputs")

    # -------------------------------------------------------- parameter access
    def _params(self, trainable_only=False):
        if trainable_only:
            return [layer.params[name] for layer, name in self._trainable]
        return [p for layer in self._layers for p in layer.params.values()]

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
    def compile(self, optimizer="rmsprop", loss=None, metrics=None):
        """Choose the optimizer, the loss and the metrics reported by ``fit``."""
        if loss is None:
            raise ValueError("compile needs a loss, e.g. loss='mse' or "
                             "loss='sparse_categorical_crossentropy'")
        self.optimizer = optimizers_mod.get(optimizer).to(self.ops)
        self.loss = losses_mod.get(loss)
        self.loss.ops = self.ops
        self._metric_specs = list(metrics or [])
        self.compiled_metrics = [metrics_mod.get_metric(m, loss=self.loss)
                                 for m in self._metric_specs]
        self.stop_training = False

    def _require_compiled(self, what):
        if self.loss is None:
            raise RuntimeError(f"{what}: call model.compile(optimizer, loss) first")

    def _fusable(self):
        """Whether the output activation pairs with the loss (softmax + CE ...)."""
        act = self.loss.fused_activation
        last = self._nodes[-1].layer
        return act is not None and getattr(last, "supports_fused_output", False) \
            and last.activation == act

    # ----------------------------------------------------------------- checks
    def _split_inputs(self, x):
        """x as a list of one array per model input. A list or tuple of arrays
        is one array per input; one of plain Python data (numbers, nested
        lists) is the samples of a one-input model, as NumPy would read it."""
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
            out.append(_as_float_array(a, t.dtype, f"input {t.name!r}", t.shape, self.ops))
        n = {a.shape[0] for a in out}
        if len(n) > 1:
            raise ValueError(f"model inputs have different numbers of samples: {sorted(n)}")
        return out

    def _prepare_y(self, y, n):
        ops = self.ops
        out_shape = self.outputs[0].shape
        if isinstance(self.loss, losses_mod.SparseCategoricalCrossentropy):
            # Labels are checked on the host, once: device labels are fetched
            # for it (one documented transfer per call).
            y = ops.to_numpy(y) if ops.is_native(y) else _host_array(y, "y", ops)
            _check_numeric(y, "y")
            y = ops.asarray(self.loss._labels(y, _label_probe(y, out_shape)))
        else:
            y = _as_float_array(y, self.outputs[0].dtype, "y", None, ops)
            if y.shape[1:] != out_shape and y.size == y.shape[0] * math.prod(out_shape):
                y = y.reshape((y.shape[0],) + out_shape)
            if y.shape[1:] != out_shape:
                raise ValueError(f"y has per-sample shape {y.shape[1:]} but the model output "
                                 f"{self._nodes[-1].layer.name!r} has shape {out_shape}")
        if y.shape[0] != n:
            raise ValueError(f"x has {n} samples but y has {y.shape[0]}; they must match")
        return y

    # ------------------------------------------------------------------ steps
    def _train_step(self, xs, y, sample_weight):
        for layer in self._layers:
            layer.zero_grads()
        fused = self._fusable()
        out, tape, penalty = self._forward(xs, True, fused)
        if fused:
            loss, dy, pred = self.loss.forward_backward_logits(y, out, sample_weight)
        else:
            loss, dy = self.loss.forward_backward(y, out, sample_weight)
            pred = out
        self._backward(tape, dy)
        loss += penalty
        for layer, name, reg in self._regularized:
            p = layer.params[name]
            loss += reg(p)
            layer.grads[name] += reg.gradient(p)
        self.optimizer.apply_gradients(self._params(True),
                                       [layer.grads[name] for layer, name in self._trainable])
        return loss, pred

    def _regularization_loss(self):
        return sum(reg(layer.params[name]) for layer, name, reg in self._regularized)

    def train_on_batch(self, x, y, sample_weight=None, return_dict=False):
        """One gradient step on one batch; returns the loss (and metrics)."""
        self._require_compiled("train_on_batch")
        xs = self._prepare_x(x)
        y = self._prepare_y(y, xs[0].shape[0])
        sample_weight = self._prepare_sample_weight(sample_weight, xs[0].shape[0])
        loss, pred = self._train_step(xs, y, sample_weight)
        return self._batch_result(loss, y, pred, sample_weight, return_dict)

    def test_on_batch(self, x, y, sample_weight=None, return_dict=False):
        self._require_compiled("test_on_batch")
        xs = self._prepare_x(x)
        y = self._prepare_y(y, xs[0].shape[0])
        sample_weight = self._prepare_sample_weight(sample_weight, xs[0].shape[0])
        pred = self._forward(xs, False)[0]
        loss = self.loss(y, pred, sample_weight) + self._regularization_loss()
        return self._batch_result(loss, y, pred, sample_weight, return_dict)

    def _batch_result(self, loss, y, pred, sample_weight, return_dict):
        logs = {"loss": loss}
        for m in self.compiled_metrics:
            m.reset_state()
            m.update_state(y, pred, sample_weight)
            logs[m.name] = m
        logs = dict(_Logs(self.ops, logs))
        return logs if return_dict else (list(logs.values()) if len(logs) > 1 else logs["loss"])

    def predict_on_batch(self, x):
        xs = self._prepare_x(x)
        out = self._forward(xs, False)[0]
        return out if _keeps_device(x, self.ops) else self.ops.to_numpy(out)

    # ------------------------------------------------------------------- fit
    def fit(self, x=None, y=None, batch_size=32, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0):
        """Train for ``epochs`` passes over ``(x, y)``; returns a ``History``."""
        self._require_compiled("fit")
        if not isinstance(batch_size, (int, numpy.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if not isinstance(epochs, (int, numpy.integer)) or epochs < 0:
            raise ValueError(f"epochs must be a non-negative integer, got {epochs!r}")
        xs = self._prepare_x(x)
        n = xs[0].shape[0]
        if n == 0:
            raise ValueError("fit got empty arrays (0 samples)")
        y = self._prepare_y(y, n)
        sw = _sample_weights(sample_weight, class_weight, y, n, self.ops)
        if validation_data is None and validation_split:
            if not 0 < validation_split < 1:
                raise ValueError(f"validation_split must be in (0, 1), got {validation_split}")
            split = n - int(round(n * validation_split))
            if split <= 0 or split >= n:
                raise ValueError(f"validation_split={validation_split} leaves no training or no "
                                 f"validation samples out of {n}")
            # Already checked and on the backend: no second preparation.
            val = ([a[split:] for a in xs], y[split:], None if sw is None else sw[split:])
            xs, y, sw = [a[:split] for a in xs], y[:split], None if sw is None else sw[:split]
            n = split
        else:
            val = self._prepare_validation(validation_data)

        history = History()
        cb_list = list(callbacks or [])
        if verbose == "auto":
            verbose = 1
        steps = math.ceil(n / batch_size)
        progbar = [ProgbarLogger()] if verbose else []
        cbs = CallbackList(cb_list + progbar + [history], model=self, params={
            "verbose": verbose, "epochs": epochs, "steps": steps, "samples": n,
            "batch_size": batch_size})
        self.history = history
        self.stop_training = False
        ops = self.ops
        cbs.on_train_begin({})
        logs = {}
        for epoch in range(initial_epoch, epochs):
            if self.stop_training:
                break
            cbs.on_epoch_begin(epoch, {})
            for m in self.compiled_metrics:
                m.reset_state()
            order = ops.permutation(n) if shuffle else None
            loss_sum, seen = 0.0, 0
            for step in range(steps):
                lo, hi = step * batch_size, min(n, (step + 1) * batch_size)
                cbs.on_train_batch_begin(step, {})
                idx = order[lo:hi] if order is not None else slice(lo, hi)
                xb = [a[idx] for a in xs]
                yb = y[idx]
                swb = None if sw is None else sw[idx]
                loss, pred = self._train_step(xb, yb, swb)
                loss_sum += loss * (hi - lo)
                seen += hi - lo
                for m in self.compiled_metrics:
                    m.update_state(yb, pred, swb)
                # Read (one transfer) only if a callback or the bar looks at them.
                batch_logs = _Logs(ops, {"loss": loss_sum / seen,
                                         **{m.name: m for m in self.compiled_metrics}})
                cbs.on_train_batch_end(step, batch_logs)
                if self.stop_training:
                    break
            logs = dict(batch_logs)
            if val is not None:
                val_logs = self._evaluate_arrays(*val, batch_size=max(batch_size, 256))
                logs.update({"val_" + k: v for k, v in val_logs.items()})
            cbs.on_epoch_end(epoch, logs)
        cbs.on_train_end(logs)
        return history

    def _prepare_validation(self, validation_data):
        if validation_data is None:
            return None
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise ValueError("validation_data must be (x_val, y_val) or (x_val, y_val, sample_weight)")
        vxs = self._prepare_x(validation_data[0])
        vy = self._prepare_y(validation_data[1], vxs[0].shape[0])
        vsw = validation_data[2] if len(validation_data) == 3 else None
        return vxs, vy, self._prepare_sample_weight(vsw, vxs[0].shape[0])

    def _prepare_sample_weight(self, sample_weight, n):
        """Per-sample weights on the model's backend (moved once, not per batch)."""
        if sample_weight is None or self.ops.is_native(sample_weight):
            return sample_weight
        sw = numpy.asarray(sample_weight)
        if sw.ndim != 1 or sw.shape[0] != n:
            raise ValueError(f"sample_weight must have shape ({n},), got {sw.shape}")
        return self.ops.asarray(sw, dtype=sw.dtype if sw.dtype.kind == "f" else "float64")

    # -------------------------------------------------------------- evaluate
    def evaluate(self, x=None, y=None, batch_size=32, verbose=0, sample_weight=None,
                 return_dict=False):
        """Loss (and metrics) over ``(x, y)``; a dict with ``return_dict=True``.
        ``verbose``: 0 silent, 1 a progress bar with the running loss and
        metrics (one final line when output is not a terminal), 2 one final
        line; ``"auto"`` is 1."""
        self._require_compiled("evaluate")
        verbose = _check_verbose(verbose)
        xs = self._prepare_x(x)
        y = self._prepare_y(y, xs[0].shape[0])
        if xs[0].shape[0] == 0:
            raise ValueError("evaluate got empty arrays (0 samples)")
        sample_weight = self._prepare_sample_weight(sample_weight, xs[0].shape[0])
        logs = self._evaluate_arrays(xs, y, sample_weight, batch_size=batch_size,
                                     verbose=verbose)
        if return_dict:
            return logs
        return list(logs.values()) if len(logs) > 1 else logs["loss"]

    def _evaluate_arrays(self, xs, y, sample_weight=None, batch_size=256, verbose=0):
        n = xs[0].shape[0]
        metrics = [metrics_mod.get_metric(spec, loss=self.loss) for spec in self._metric_specs]
        bar = Progbar(math.ceil(n / batch_size), verbose=verbose,
                      stateful_metrics="all") if verbose else None
        total, weight_total = 0.0, 0.0
        reg = self._regularization_loss()  # the weights do not change while evaluating
        for step, lo in enumerate(range(0, n, batch_size)):
            hi = min(n, lo + batch_size)
            pred = self._forward([a[lo:hi] for a in xs], False)[0]
            swb = None if sample_weight is None else sample_weight[lo:hi]
            total += self.loss(y[lo:hi], pred, swb) * (hi - lo)
            weight_total += hi - lo
            for m in metrics:
                m.update_state(y[lo:hi], pred, swb)
            if bar is not None:
                bar.update(step + 1, _Logs(self.ops, {"loss": total / weight_total + reg,
                                                      **{m.name: m for m in metrics}}))
        return dict(_Logs(self.ops, {"loss": total / weight_total + reg,
                                     **{m.name: m for m in metrics}}))

    # --------------------------------------------------------------- predict
    def predict(self, x, batch_size=32, verbose=0):
        """Outputs for ``x`` in batches (nothing is kept for backward).
        ``verbose`` as in ``evaluate`` (a bar of the batches done)."""
        verbose = _check_verbose(verbose)
        xs = self._prepare_x(x)
        n = xs[0].shape[0]
        bar = Progbar(math.ceil(n / batch_size), verbose=verbose) if verbose and n else None
        outs = []
        for step, lo in enumerate(range(0, n, batch_size)):
            outs.append(self._forward([a[lo:lo + batch_size] for a in xs], False)[0])
            if bar is not None:
                bar.update(step + 1)
        ops = self.ops
        if not outs:
            empty = numpy.zeros((0,) + self.outputs[0].shape, dtype=self.outputs[0].dtype)
            return ops.asarray(empty) if _keeps_device(x, ops) else empty
        out = ops.xp.concatenate(outs, axis=0)
        # Host input gets host output (one transfer); device input stays there.
        return out if _keeps_device(x, ops) else ops.to_numpy(out)

    # ---------------------------------------------------------------- saving
    def save(self, path, include_optimizer=True):
        """Write architecture, weights and (by default) optimizer state to one
        file, atomically. Load it with ``fastnn.load_model(path)``."""
        from .saving import save_model
        save_model(self, path, include_optimizer)

    def save_weights(self, path):
        from .saving import save_weights
        self._require_built("save_weights")
        save_weights(self, path)

    def load_weights(self, path):
        from .saving import load_weights
        self._require_built("load_weights")
        load_weights(self, path)

    def get_config(self):
        from .saving import model_config
        return model_config(self)

    # --------------------------------------------------------------- summary
    def summary(self, print_fn=print, line_length=65):
        """Print layers, output shapes and parameter counts, as Keras does."""
        self._require_built("summary")
        cols = [int(line_length * f) for f in (0.45, 0.85, 1.0)]

        def row(fields):
            line = ""
            for f, end in zip(fields, cols):
                line = (line + " " + str(f))[:end].ljust(end)
            return line.rstrip()

        lines = [f'Model: "{self.name}"', "_" * line_length,
                 row(["Layer (type)", "Output Shape", "Param #"]), "=" * line_length]
        for i, node in enumerate(self._nodes):
            layer = node.layer
            shape = "(None, " + ", ".join(map(str, node.output.shape)) + ")"
            shared = self._nodes.index(node) != [n.layer for n in self._nodes].index(layer)
            count = 0 if shared else layer.count_params()
            lines.append(row([f"{layer.name} ({type(layer).__name__})", shape, f"{count:,}"]))
            if i < len(self._nodes) - 1:
                lines.append("")
        total = self.count_params()
        trainable = int(sum(p.size for p in self._params(True)))
        lines += ["=" * line_length, f"Total params: {total:,}",
                  f"Trainable params: {trainable:,}",
                  f"Non-trainable params: {total - trainable:,}", "_" * line_length]
        print_fn("\n".join(lines))


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
class _Logs(MutableMapping):
    """Training logs whose values may still be on the backend: losses as
    scalars there, metrics as ``Metric`` objects. Reading any of them fetches
    all of them (each metric's result as of that moment) in one host
    transfer. Entries a callback sets are kept as given."""

    def __init__(self, ops, values):
        self._ops, self._values, self._host = ops, dict(values), None

    def _fetch(self):
        if self._host is None:
            values = [v.result() if isinstance(v, metrics_mod.Metric) else v
                      for v in self._values.values()]
            self._host = dict(zip(self._values, self._ops.fetch(values)))
        return self._host

    def __getitem__(self, key):
        if key not in self._values:
            raise KeyError(key)
        return self._fetch()[key]

    def __setitem__(self, key, value):
        self._fetch()[key] = value
        self._values[key] = value

    def __delitem__(self, key):
        del self._values[key]
        if self._host is not None:
            del self._host[key]

    def __iter__(self):
        return iter(self._values)

    def __len__(self):
        return len(self._values)

    def __repr__(self):
        return repr(self._fetch())


def _keeps_device(x, ops):
    """Whether outputs for input ``x`` stay on the device: only when the input
    was already an array of this (device) backend."""
    if ops.is_host:
        return False
    xs = x if isinstance(x, (list, tuple)) else [x]
    return any(ops.is_native(a) for a in xs)


def _host_array(a, what, ops):
    """``a`` (NumPy data, or something NumPy can read) as a host NumPy array;
    an array of another device backend is refused, naming both backends."""
    if isinstance(a, numpy.ndarray):
        return a
    owner = backend_of(a)
    if owner is not None:
        ops.check_native(a, what)
    try:
        arr = numpy.asarray(a)
    except TypeError:  # a device array that refuses implicit host conversion
        ops.check_native(a, what)
        raise
    if arr.dtype == object and not isinstance(a, (list, tuple)):
        ops.check_native(a, what)  # an array type of a library fastnn does not run on
    return arr


def _check_numeric(a, what):
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{what} must hold numbers, got dtype {a.dtype}")


def _as_float_array(a, dtype, what, shape, ops):
    """Validate and cast one input array: numeric, finite, the right shape.
    Integer and other float types are cast to the model's dtype (documented).
    Host data is checked on the host, then moved to ``ops`` once."""
    on_device = ops.is_native(a) and not ops.is_host
    if not ops.is_native(a):
        a = _host_array(a, what, ops)
    _check_numeric(a, what)
    if a.ndim == 0:
        raise ValueError(f"{what} must have a batch axis, got a scalar")
    if shape is not None and tuple(a.shape[1:]) != tuple(shape):
        raise ValueError(f"{what} expects samples of shape {tuple(shape)} (array shape "
                         f"(n, {', '.join(map(str, shape))})), got array of shape {tuple(a.shape)}")
    if on_device:
        a = ops.asarray(a, dtype=dtype)
        finite = bool(ops.to_numpy(ops.xp.isfinite(a).all())) if a.size else True  # one fetch
    else:
        a = numpy.asarray(a, dtype=dtype)
        finite = a.dtype.kind != "f" or not a.size or bool(numpy.isfinite(a).all())
    if not finite:
        bad = int(ops.to_numpy((~ops.xp.isfinite(a)).sum()) if on_device
                  else (~numpy.isfinite(a)).sum())
        raise ValueError(f"{what} contains {bad} NaN or infinite value(s); clean the data first")
    return a if on_device else ops.asarray(a, dtype=dtype)


def _label_probe(y, out_shape):
    """A stand-in prediction of the right shape (no memory) for label validation."""
    return numpy.broadcast_to(numpy.float32(0), (y.shape[0],) + tuple(out_shape))


def _sample_weights(sample_weight, class_weight, y, n, ops):
    sw = None
    if sample_weight is not None:
        sw = numpy.asarray(sample_weight, dtype=numpy.float64)
        if sw.shape != (n,):
            raise ValueError(f"sample_weight must have shape ({n},), got {sw.shape}")
        if not numpy.isfinite(sw).all() or (sw < 0).any():
            raise ValueError("sample_weight must be finite and non-negative")
    if class_weight is not None:
        yn = ops.to_numpy(y)
        labels = yn.argmax(axis=-1) if yn.ndim > 1 and yn.shape[-1] > 1 else yn.reshape(n)
        labels = labels.astype(numpy.int64)
        cw = numpy.ones(int(labels.max()) + 1 if n else 0)
        for k, w in class_weight.items():
            if int(k) < len(cw):
                cw[int(k)] = float(w)
        cwv = cw[labels]
        sw = cwv if sw is None else sw * cwv
    return None if sw is None else ops.asarray(sw, dtype=y.dtype if y.dtype.kind == "f" else "float32")
