"""AutoRec's minibatch path (a base class of ``AutoRec``): one epoch after
another over shuffled batches of samples, each batch one step of the fused
Adam kernel (``sparse_ops.autorec_adam_step``) where it applies, else the
layer-by-layer step with the model's optimizer."""
import math

import numpy

from .. import optimizers as optimizers_mod
from ..random import get_rng
from ..training import _Logs
from . import sparse_ops


class _MinibatchFit:
    """``AutoRec.fit``'s minibatch run."""

    def _fit_minibatch(self, X, val, loop):
        if self.optimizer is None:
            spec = self.optimizer_spec
            # A name gets this model's learning rate; an instance is used as given.
            self.optimizer = type(optimizers_mod.get(spec))(learning_rate=self.learning_rate) \
                if isinstance(spec, str) else optimizers_mod.get(spec)
        n = X.shape[0]
        params = [p for _, p, _, _ in self._params()]
        grads = [g for _, _, g, _ in self._params()]
        fused = self._fused_adam_applies()
        if not fused and not self.ops.is_host:
            raise self._host_only("the layer-by-layer step (deeper stacks, other "
                                  "optimizers)")
        # The fused step slices batches off one pattern (a compiled copy per batch).
        pattern = self._train_pattern if fused else None
        # Batch logs stay on a device backend until a callback reads them.
        batch_logs = dict if self.ops.is_host else (lambda v: _Logs(self.ops, v))
        for epoch in loop.epochs():
            order = get_rng().permutation(n)
            data_sum, reg_sum, count = 0.0, 0.0, 0
            for step in loop.batches():
                lo = step * self.batch_size
                rows = numpy.sort(order[lo:lo + self.batch_size])
                Xb = self.ops.csr_take_rows(pattern, rows) if fused else X[rows]
                if fused:
                    data_loss, reg = self._fused_step(Xb, len(rows) / n, params)
                else:
                    self._zero_grads()
                    data_loss, reg = self._loss_and_grads(Xb, n, len(rows) / n)
                    self.optimizer.apply_gradients(params, grads)
                data_sum += data_loss
                reg_sum += reg
                count += Xb.nnz
                loop.end_batch(step, batch_logs({"loss": (data_sum + reg_sum) / max(count, 1)}))
            data_sum, reg_sum = self.ops.fetch([data_sum, reg_sum])  # one transfer an epoch
            logs = {"loss": (data_sum + reg_sum) / max(count, 1),
                    "rmse": math.sqrt(data_sum / max(count, 1))}
            loop.end_epoch(epoch, self._with_validation(logs, val))

    def _fused_adam_applies(self):
        """Whether one fused kernel can do the whole step (forward, backward, L2
        and Adam; ``sparse_ops.autorec_adam_step``, exact): one hidden layer,
        plain Adam without clipping or weight decay, a kernel-fused activation."""
        opt = self.optimizer
        return (not self.middle and type(opt) is optimizers_mod.Adam and not opt.weight_decay
                and opt.clipvalue is None and opt.clipnorm is None
                and opt.global_clipnorm is None
                and self.activation in sparse_ops.FUSED_ACTIVATIONS)

    def _fused_step(self, X, weight_frac, params):
        """The minibatch step in one kernel, on the optimizer's own moments (so
        switching between this and the layer-by-layer path loses nothing)."""
        opt = self.optimizer
        if not opt.built:
            opt.build(params)
        lr, step = opt.next_step()
        state = {name: (slots["m"], slots["v"]) for name, slots in
                 zip(("W", "b", "Vt", "c"), map(opt.slots, range(4)))}
        input_values = None
        if self.input_dropout:  # the same draws as _loss_and_grads makes, on the backend
            keep = self.ops.random_uniform(X.nnz, "float64") >= self.input_dropout
            input_values = X.data * keep / self.dtype.type(1 - self.input_dropout)
        return self.ops.autorec_adam_step(
            X, self.W, self.b, self.Vt, self.c, state, lr, opt.beta_1, opt.beta_2, opt.epsilon,
            step, self.lam * weight_frac, activation=self.activation,
            input_values=input_values)
