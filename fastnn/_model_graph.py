"""``Model``'s graph machinery (a base class of ``Model``, model.py): the node
list built from the inputs and outputs, the parameters collected from the
layers, the forward and backward passes over the nodes, and the per-batch
loss, gradient and metric steps that ``train_on_batch``, ``fit``,
``evaluate`` and ``predict`` share.
"""
import copy

from . import metrics as metrics_mod
from .training import _Logs
from .layers.base import SymbolicTensor, forward_takes_mask
from .data import _unmasked
from .graph import _input_mask, _node_kwargs, _output_names, _topological_nodes


class _ModelGraph:
    """``Model``'s side of running the graph (a base class of ``Model``): the
    forward and backward passes over its nodes and one batch's losses,
    gradients and logs."""

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

    # -------------------------------------------------------- parameter access
    def _params(self, trainable_only=False):
        if trainable_only:
            return [layer.params[name] for layer, name in self._trainable]
        return [p for layer in self._all_layers for p in layer.params.values()]

    # ---------------------------------------------------------------- compile
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
