"""AutoRec's layer-by-layer path (a base class of ``AutoRec``): the sparse
encoder, any ``Dense`` layers of a deeper stack, and the sparse decoder run
one after the other, each with its own backprop, for the steps the fused
Adam kernel does not cover (deeper stacks, other optimizers, L-BFGS) and for
the hidden codes that prediction reads. Host NumPy only off the fused path
(``AutoRec`` refuses it on a device backend)."""
import numpy
import scipy.sparse

from ..random import get_rng
from . import sparse_ops


class _LayerwiseStep:
    """The forward and backward passes of ``AutoRec``, layer by layer."""

    def _encode(self, X, training=False):
        """Hidden codes for the CSR sample rows ``X``; returns (H, backprops)
        (None unless ``training``)."""
        if not training:  # inference: the backend's SpMM alone, no backprop closures
            H = self.ops.spmm(X, self.W, self.b, self.activation)
            for layer in self.middle:
                H = layer.forward(H, False)[0]
            return H, None
        H, enc_back = sparse_ops.sparse_dense_forward(X, self.W, self.b, self.activation,
                                                      self.dW if training else None,
                                                      self.db if training else None,
                                                      ops=self.ops)
        backs = [enc_back]
        for layer in self.middle:
            H, back = layer.forward(H, training)
            backs.append(back)
        return H, backs

    def _loss_and_grads(self, X, n_total, weight_frac):
        """Objective on batch ``X`` (its data = targets) and gradients
        accumulated into the grad arrays. ``weight_frac`` scales the L2 term so
        that one epoch's batches add up to the full objective."""
        X_in = X
        if self.input_dropout:
            keep = get_rng().random(X.nnz) >= self.input_dropout
            X_in = scipy.sparse.csr_matrix(
                (X.data * keep / self.dtype.type(1 - self.input_dropout), X.indices, X.indptr),
                shape=X.shape)
        H, backs = self._encode(X_in, training=True)
        vals, dec_back = sparse_ops.sampled_dense_forward(X, H, self.Vt, self.c, self.dVt, self.dc,
                                                          ops=self.ops)
        data_loss, dvals = self.ops.masked_sq_error(vals, X.data)
        dH = dec_back(dvals)
        for layer_back in reversed(backs[1:]):
            dH = layer_back(dH)
        backs[0](dH)
        reg = 0.0
        if self.lam:
            scale = self.lam * weight_frac
            for _, p, g, is_weight in self._params():
                if is_weight:
                    reg += 0.5 * scale * float(numpy.square(p, dtype=numpy.float64).sum())
                    g += p.dtype.type(scale) * p
        return data_loss, reg

    def _zero_grads(self):
        for _, _, g, _ in self._params():
            g.fill(0)
