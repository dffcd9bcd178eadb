"""NumpyOps: the CPU backend. Hot methods go to the Cython kernels in fastnn._C;
anything a kernel does not handle (integer or float16 data, mixed dtypes, odd
layouts of in-place outputs) falls back to the plain NumPy ``Ops``, so results
never depend on which path ran. No kernel code and no layer logic here."""
import numpy

from .ops import ACTIVATIONS, FLOAT_DTYPES, Ops
from fastnn._C import activations as _act
from fastnn._C import blas as _blas
from fastnn._C import conv as _conv
from fastnn._C import dense as _dense
from fastnn._C import norm as _norm
from fastnn._C import optim as _optim
from fastnn._C import pool as _pool


from fastnn._C import recurrent as _recurrent


# Forward activations whose NumPy ufuncs (runtime-dispatched AVX2/AVX-512 exp and
# tanh) beat our portable-SSE2 kernels, measured in bench/test_bench_activations.py.
# Their backward passes need no transcendentals and stay on the kernels.
NUMPY_FASTER_FORWARD = frozenset({"tanh", "softmax"})


def _kernel_dtype(*arrays):
    """True when every array (None skipped) is an ndarray of one float32/float64 dtype."""
    dtype = None
    for a in arrays:
        if a is None:
            continue
        if not isinstance(a, numpy.ndarray) or a.dtype not in FLOAT_DTYPES:
            return False
        if dtype is None:
            dtype = a.dtype
        elif a.dtype != dtype:
            return False
    return dtype is not None


def _contiguous(*arrays):
    return all(a is None or a.flags.c_contiguous or a.flags.f_contiguous for a in arrays)


def _same_order(param, *arrays):
    """Flat in-place updates need every state array laid out like ``param``."""
    order = "C" if param.flags.c_contiguous else "F"
    return all(a is None or a.flags[f"{order}_CONTIGUOUS"] for a in arrays)


class NumpyOps(Ops):
    name = "numpy"

    # ------------------------------------------------------------ matrix math
    def gemm(self, a, b, trans_a=False, trans_b=False, out=None, alpha=1.0, beta=0.0):
        if (not _kernel_dtype(a, b, out) or a.ndim != 2 or b.ndim != 2
                or (out is not None and (out.ndim != 2 or not out.flags.c_contiguous
                                         or not out.flags.writeable))):
            return super().gemm(a, b, trans_a, trans_b, out, alpha, beta)
        return _blas.gemm(a, b, trans_a, trans_b, out, alpha, beta)

    # ------------------------------------------------------------ activations
    def activation_forward(self, name, x, alpha=0.0):
        if name in NUMPY_FASTER_FORWARD or name not in ACTIVATIONS or not _kernel_dtype(x):
            return super().activation_forward(name, x, alpha)
        return _act.activation_forward(name, numpy.ascontiguousarray(x), alpha)

    def activation_backward(self, name, y, dy, alpha=0.0):
        if (name not in ACTIVATIONS or not _kernel_dtype(y, dy) or y.shape != dy.shape
                or (name == "softmax" and y.ndim == 0)):
            return super().activation_backward(name, y, dy, alpha)
        return _act.activation_backward(name, numpy.ascontiguousarray(y),
                                        numpy.ascontiguousarray(dy), alpha)

    # softmax (forward) stays on Ops: see NUMPY_FASTER_FORWARD.

    def softmax_backward(self, y, dy):
        if not _kernel_dtype(y, dy) or y.shape != dy.shape or y.ndim == 0:
            return super().softmax_backward(y, dy)
        return _act.softmax_backward(numpy.ascontiguousarray(y), numpy.ascontiguousarray(dy))

    def maxout_forward(self, x, pieces):
        if not _kernel_dtype(x) or x.ndim != 2:
            return super().maxout_forward(x, pieces)
        return _act.maxout_forward(numpy.ascontiguousarray(x), pieces)

    def maxout_backward(self, dy, idx, pieces):
        if not _kernel_dtype(dy) or dy.ndim != 2 or not isinstance(idx, numpy.ndarray) \
                or idx.dtype.kind not in "iu":
            return super().maxout_backward(dy, idx, pieces)
        return _act.maxout_backward(numpy.ascontiguousarray(dy),
                                    numpy.ascontiguousarray(idx, dtype=numpy.int32), pieces)

    # -------------------------------------------------------------- dense layer
    def dense_forward(self, x, W, b, activation="linear", alpha=0.0):
        if activation not in ACTIVATIONS or not _kernel_dtype(x, W, b) or x.ndim != 2 or W.ndim != 2:
            return super().dense_forward(x, W, b, activation, alpha)
        if activation in NUMPY_FASTER_FORWARD:
            z = _dense.dense_forward(x, W, b, "linear")
            return self.activation_forward(activation, z, alpha)
        return _dense.dense_forward(x, W, b, activation, alpha)

    def dense_backward(self, x, W, y, dy, dW, db, activation="linear", alpha=0.0,
                       need_dx=True):
        if (activation not in ACTIVATIONS or not _kernel_dtype(x, W, y, dy, dW, db)
                or x.ndim != 2 or W.ndim != 2
                or not _contiguous(dW) or not dW.flags.writeable
                or (db is not None and (not db.flags.c_contiguous or not db.flags.writeable))):
            return super().dense_backward(x, W, y, dy, dW, db, activation, alpha, need_dx)
        return _dense.dense_backward(x, W, y, dy, dW, db, activation, alpha, need_dx)

    # ------------------------------------------------------------ convolution
    def conv2d_forward(self, x, W, b, strides, pads, dilation=(1, 1), groups=1,
                       activation="linear", alpha=0.0):
        if not _kernel_dtype(x, W, b):
            return super().conv2d_forward(x, W, b, strides, pads, dilation, groups, activation,
                                          alpha)
        if activation in ACTIVATIONS and activation not in NUMPY_FASTER_FORWARD:
            return _conv.conv2d_forward(x, W, b, strides, pads, dilation, groups, activation,
                                        alpha)
        # Keras's further activations (and NumPy's faster tanh/softmax) after the product.
        z = _conv.conv2d_forward(x, W, b, strides, pads, dilation, groups, "linear")
        return self.activation_forward(activation, z, alpha)

    def conv2d_input_grad(self, dz, W, x_shape, strides, pads, dilation=(1, 1), groups=1):
        if not _kernel_dtype(dz, W):
            return super().conv2d_input_grad(dz, W, x_shape, strides, pads, dilation, groups)
        return _conv.conv2d_backward(None, W, None, dz, None, None, strides, pads, dilation,
                                     groups, x_shape=x_shape)

    def conv2d_backward(self, x, W, y, dy, dW, db, strides, pads, dilation=(1, 1), groups=1,
                        activation="linear", alpha=0.0, need_dx=True):
        if (not _kernel_dtype(x, W, y, dy, dW, db)
                or any(a is not None and (not a.flags.c_contiguous or not a.flags.writeable)
                       for a in (dW, db))):
            return super().conv2d_backward(x, W, y, dy, dW, db, strides, pads, dilation,
                                           groups, activation, alpha, need_dx)
        if activation not in ACTIVATIONS:  # the derivative first, then a linear backward
            dy, activation = self.activation_backward(activation, y, dy, alpha), "linear"
        return _conv.conv2d_backward(x, W, y, dy, dW, db, strides, pads, dilation, groups,
                                     activation, alpha, need_dx)

    # --------------------------------------------------------------- embedding
    def embedding_backward(self, indices, dy, dtable):
        # The scatter-add as a sparse product, one-hot(indices)^T @ dy, in
        # SciPy's C loop: numpy.add.at works element by element and is far
        # slower on embedding-sized batches.
        rows = dy.reshape(-1, dtable.shape[1])
        if (not _kernel_dtype(rows, dtable) or not dtable.flags.c_contiguous
                or not dtable.flags.writeable):
            return super().embedding_backward(indices, dy, dtable)
        import scipy.sparse
        idx = indices.reshape(-1)
        n = idx.shape[0]
        onehot_t = scipy.sparse.csc_matrix(
            (numpy.ones(n, dtype=rows.dtype), idx, numpy.arange(n + 1)),
            shape=(dtable.shape[0], n))
        dtable += onehot_t @ rows

    # ------------------------------------------------------------------ losses
    def softmax_cross_entropy(self, logits, labels, label_smoothing=0.0):
        # A fused Cython kernel lost to NumPy's AVX-512 exp on this portable
        # build (bench/test_bench_activations.py) and was deleted, so the math stays on
        # Ops; the label check it lacks is added here (Ops would wrap -1 silently).
        if (isinstance(labels, numpy.ndarray) and labels.ndim == 1 and labels.size
                and labels.dtype.kind in "iu" and getattr(logits, "ndim", 0) == 2):
            c = logits.shape[-1]
            if labels.min() < 0 or labels.max() >= c:
                raise ValueError(
                    f"softmax_cross_entropy: labels must lie in [0, {c}) for logits of "
                    f"shape {logits.shape}; got min {labels.min()}, max {labels.max()}")
        return super().softmax_cross_entropy(logits, labels, label_smoothing)

    # -------------------------------------------------------------- optimizers
    def _flat_ok(self, param, *state):
        return (_kernel_dtype(param, *state) and _contiguous(param, *state)
                and _same_order(param, *state)
                and all(a is None or a.shape == param.shape for a in state))

    def sgd_update(self, param, grad, velocity, lr, momentum=0.0, nesterov=False,
                   weight_decay=0.0):
        if not self._flat_ok(param, grad, velocity if momentum else None):
            return super().sgd_update(param, grad, velocity, lr, momentum, nesterov,
                                      weight_decay)
        _optim.sgd_update(param, grad, velocity, lr, momentum, nesterov, weight_decay)

    def rmsprop_update(self, param, grad, sq, lr, rho=0.9, eps=1e-7, weight_decay=0.0):
        if not self._flat_ok(param, grad, sq):
            return super().rmsprop_update(param, grad, sq, lr, rho, eps, weight_decay)
        _optim.rmsprop_update(param, grad, sq, lr, rho, eps, weight_decay)

    def adagrad_update(self, param, grad, acc, lr, eps=1e-7, weight_decay=0.0):
        if not self._flat_ok(param, grad, acc):
            return super().adagrad_update(param, grad, acc, lr, eps, weight_decay)
        _optim.adagrad_update(param, grad, acc, lr, eps, weight_decay)

    def adam_update(self, param, grad, m, v, lr, beta1, beta2, eps, step,
                    weight_decay=0.0, decoupled=False):
        if not self._flat_ok(param, grad, m, v):
            return super().adam_update(param, grad, m, v, lr, beta1, beta2, eps, step,
                                       weight_decay, decoupled)
        _optim.adam_update(param, grad, m, v, lr, beta1, beta2, eps, step, weight_decay,
                           decoupled)

    # ------------------------------------------------------- sparse products
    def csr_take_rows(self, A, rows):
        sparse = _sparse_ops()
        if isinstance(A, sparse.SparsePattern):  # one compiled loop
            return A.take_rows(rows)
        return super().csr_take_rows(A, rows)

    def spmm(self, A, B, bias=None, activation="linear"):
        if not _kernel_dtype(B, bias):
            return super().spmm(A, B, bias, activation)
        sparse = _sparse_ops()
        A = sparse.as_pattern(A, B.dtype)
        if activation in sparse.FUSED_ACTIVATIONS:  # bias and activation in the kernel's epilogue
            return sparse.spmm(A, B, bias=bias, activation=activation)
        Z = sparse.spmm(A, B)
        if bias is not None:
            Z += bias
        return self.activation_forward(activation, Z)

    def spmm_t(self, A, G, data=None, out=None):
        if not _kernel_dtype(G, data, out):
            return super().spmm_t(A, G, data, out)
        sparse = _sparse_ops()
        return sparse.spmm_t(sparse.as_pattern(A, G.dtype), G, out=out,
                             accumulate=out is not None, data=data)

    def column_sums(self, A, vals, out=None):
        if not _kernel_dtype(vals, out) or vals.ndim != 1:
            return super().column_sums(A, vals, out)
        sparse = _sparse_ops()
        return sparse.column_sums(sparse.as_pattern(A, vals.dtype), vals, out=out)

    def sddmm(self, A, H, Vt, c=None):
        if not _kernel_dtype(H, Vt, c):
            return super().sddmm(A, H, Vt, c)
        sparse = _sparse_ops()
        return sparse.sddmm(sparse.as_pattern(A, H.dtype), H, Vt, c)

    def masked_sq_error(self, pred_vals, target_vals, weights=None):
        if not _kernel_dtype(pred_vals, target_vals, weights) or pred_vals.ndim != 1:
            return super().masked_sq_error(pred_vals, target_vals, weights)
        return _sparse_ops().masked_sq_error(pred_vals, target_vals, weights)

    def autorec_adam_step(self, X, W, b, Vt, c, adam_state, lr, beta1, beta2, eps, step,
                          lam_scale, activation="sigmoid", input_values=None):
        sparse = _sparse_ops()
        # The parameters decide (the kernel checks the moments and layouts
        # itself, with a clear error): a per-batch guard, so a short one.
        if activation not in sparse.FUSED_ACTIVATIONS or not _kernel_dtype(W, b, Vt, c,
                                                                           input_values):
            return super().autorec_adam_step(X, W, b, Vt, c, adam_state, lr, beta1, beta2, eps,
                                             step, lam_scale, activation, input_values)
        return sparse.autorec_adam_step(X, W, b, Vt, c, adam_state, lr, beta1, beta2, eps, step,
                                        lam_scale, activation=activation,
                                        input_values=input_values)

    # ----------------------------------------------------- batch normalization
    def batchnorm_forward(self, x, gamma, beta, epsilon, mean=None, variance=None):
        if not _kernel_dtype(x, gamma, beta, mean, variance) or x.ndim != 2:
            return super().batchnorm_forward(x, gamma, beta, epsilon, mean, variance)
        return _norm.batchnorm_forward(numpy.ascontiguousarray(x), gamma, beta, epsilon,
                                       mean, variance)

    def batchnorm_backward(self, x, dy, gamma, mean, variance, epsilon, dgamma=None,
                           dbeta=None, batch_stats=True, need_dx=True):
        if (not _kernel_dtype(x, dy, gamma, mean, variance, dgamma, dbeta) or x.ndim != 2
                or any(g is not None and (not g.flags.c_contiguous or not g.flags.writeable)
                       for g in (dgamma, dbeta))):
            return super().batchnorm_backward(x, dy, gamma, mean, variance, epsilon, dgamma,
                                              dbeta, batch_stats, need_dx)
        return _norm.batchnorm_backward(numpy.ascontiguousarray(x), numpy.ascontiguousarray(dy),
                                        gamma, mean, variance, epsilon, dgamma, dbeta,
                                        batch_stats, need_dx)

    def batchnorm_forward_strided(self, x, gamma, beta, epsilon, mean=None, variance=None):
        if not _kernel_dtype(x, gamma, beta, mean, variance) or x.ndim != 3:
            return super().batchnorm_forward_strided(x, gamma, beta, epsilon, mean, variance)
        return _norm.batchnorm_forward_strided(numpy.ascontiguousarray(x), gamma, beta,
                                               epsilon, mean, variance)

    def batchnorm_backward_strided(self, x, dy, gamma, mean, variance, epsilon, dgamma=None,
                                   dbeta=None, batch_stats=True, need_dx=True):
        if (not _kernel_dtype(x, dy, gamma, mean, variance, dgamma, dbeta) or x.ndim != 3
                or any(g is not None and (not g.flags.c_contiguous or not g.flags.writeable)
                       for g in (dgamma, dbeta))):
            return super().batchnorm_backward_strided(x, dy, gamma, mean, variance, epsilon,
                                                      dgamma, dbeta, batch_stats, need_dx)
        return _norm.batchnorm_backward_strided(
            numpy.ascontiguousarray(x), numpy.ascontiguousarray(dy), gamma, mean, variance,
            epsilon, dgamma, dbeta, batch_stats, need_dx)

    # ------------------------------------- pooling and depthwise convolution
    def pool2d_forward(self, x, pool_size, strides, padding="valid", mode="max"):
        if not _kernel_dtype(x) or x.ndim != 4 or mode not in ("max", "avg"):
            return super().pool2d_forward(x, pool_size, strides, padding, mode)
        pads = self.window_pads(x.shape[1:3], pool_size, strides, padding)
        return _pool.pool2d_forward(numpy.ascontiguousarray(x), *pool_size, *strides, *pads,
                                    mode=mode)

    def pool2d_backward(self, dy, argmax, x_shape, pool_size, strides, padding="valid",
                        mode="max"):
        if (not _kernel_dtype(dy) or dy.ndim != 4 or mode not in ("max", "avg")
                or (mode == "max" and (not isinstance(argmax, numpy.ndarray)
                                       or argmax.dtype != numpy.int32))):
            return super().pool2d_backward(dy, argmax, x_shape, pool_size, strides, padding,
                                           mode)
        pads = self.window_pads(x_shape[1:3], pool_size, strides, padding)
        return _pool.pool2d_backward(numpy.ascontiguousarray(dy),
                                     None if argmax is None else numpy.ascontiguousarray(argmax),
                                     x_shape, *pool_size, *strides, *pads, mode=mode)

    def depthwise_conv2d_forward(self, x, kernel, bias, strides, padding="valid",
                                 dilation=(1, 1), activation="linear", alpha=0.0):
        if (activation not in _pool.DEPTHWISE_ACTIVATIONS or not _kernel_dtype(x, kernel, bias)
                or x.ndim != 4 or kernel.ndim != 4):
            return super().depthwise_conv2d_forward(x, kernel, bias, strides, padding, dilation,
                                                    activation, alpha)
        pads = self.window_pads(x.shape[1:3], kernel.shape[:2], strides, padding, dilation)
        return _pool.depthwise_conv2d_forward(
            numpy.ascontiguousarray(x), numpy.ascontiguousarray(kernel),
            None if bias is None else numpy.ascontiguousarray(bias), *strides, *dilation, *pads,
            activation=activation, alpha=alpha)

    def depthwise_conv2d_backward(self, x, kernel, y, dy, dkernel, dbias, strides,
                                  padding="valid", dilation=(1, 1), activation="linear",
                                  alpha=0.0, need_dx=True):
        if (activation not in _pool.DEPTHWISE_ACTIVATIONS
                or not _kernel_dtype(x, kernel, y, dy, dkernel, dbias) or x.ndim != 4
                or kernel.ndim != 4 or not dkernel.flags.c_contiguous
                or not dkernel.flags.writeable
                or (dbias is not None and (not dbias.flags.c_contiguous
                                           or not dbias.flags.writeable))):
            return super().depthwise_conv2d_backward(x, kernel, y, dy, dkernel, dbias, strides,
                                                     padding, dilation, activation, alpha,
                                                     need_dx)
        pads = self.window_pads(x.shape[1:3], kernel.shape[:2], strides, padding, dilation)
        c = numpy.ascontiguousarray
        return _pool.depthwise_conv2d_backward(c(x), c(kernel), c(y), c(dy), dkernel, dbias,
                                               *strides, *dilation, *pads,
                                               activation=activation, alpha=alpha,
                                               need_dx=need_dx)
    # -------------------------------------------------------- recurrent layers
    # The cells of csrc/recurrent.pyx: SimpleRNN, LSTM and the GRU in both
    # forms, for the activations they take; other activations stay on Ops.
    # The cache says which ran, so backward takes the same path.
    def rnn_forward(self, cell, xproj, R, h0, c0=None, mask=None, b_rec=None, rec_mask=None,
                    activation="tanh", recurrent_activation="sigmoid", reset_after=True,
                    overwrite_xproj=False):
        if (activation not in _recurrent.CELL_ACTIVATIONS
                or recurrent_activation not in _recurrent.CELL_ACTIVATIONS
                or not _kernel_dtype(xproj, R, h0, c0, b_rec, rec_mask)
                or (mask is not None and not isinstance(mask, numpy.ndarray))):
            return super().rnn_forward(cell, xproj, R, h0, c0, mask, b_rec, rec_mask,
                                       activation, recurrent_activation, reset_after,
                                       overwrite_xproj)
        Y, H, C, A, E = _recurrent.rnn_forward(cell, xproj, R, h0, c0, mask, b_rec, rec_mask,
                                               activation, recurrent_activation,
                                               overwrite_xproj, reset_after)
        cache = {"kernel": (cell, R, H, C, A, E, mask, rec_mask, activation,
                            recurrent_activation, reset_after)}
        return Y, H[-1], None if C is None else C[-1], cache

    def rnn_backward(self, cache, dY, dhT=None, dcT=None, dR=None, db_rec=None):
        if "kernel" not in cache:
            return super().rnn_backward(cache, dY, dhT, dcT, dR, db_rec)
        cell, R, H, C, A, E, mask, rec_mask, act, ract, reset_after = cache["kernel"]
        # The kernel accumulates into C-contiguous gradients; others get a sum.
        dR_k = dR if dR is None or (dR.flags.c_contiguous and dR.flags.writeable) \
            else numpy.zeros(dR.shape, dR.dtype)
        db_k = db_rec if db_rec is None or (db_rec.flags.c_contiguous
                                            and db_rec.flags.writeable) \
            else numpy.zeros(db_rec.shape, db_rec.dtype)
        dX, dh0, dc0 = _recurrent.rnn_backward(cell, R, H, C, A, E, dY, dhT, dcT, mask,
                                               rec_mask, dR_k, db_k, act, ract, reset_after)
        if dR_k is not dR:
            dR += dR_k
        if db_k is not db_rec:
            db_rec += db_k
        return dX, dh0, dc0

    def rnn_backward_input(self, cache, dY, x, W, dW=None, db_in=None, dhT=None, dcT=None,
                           dR=None, db_rec=None, need_dx=True):
        if "kernel" not in cache or not _kernel_dtype(x, W, dW, db_in):
            return super().rnn_backward_input(cache, dY, x, W, dW, db_in, dhT, dcT, dR, db_rec,
                                              need_dx)
        cell, R, H, C, A, E, mask, rec_mask, act, ract, reset_after = cache["kernel"]
        T, N = H.shape[0] - 1, H.shape[1]
        # The kernel accumulates into C-contiguous gradients; others get a sum.
        grads = [g if g is None or (g.flags.c_contiguous and g.flags.writeable)
                 else numpy.zeros(g.shape, g.dtype) for g in (dR, db_rec, dW, db_in)]
        dx, dh0, dc0 = _recurrent.rnn_backward(
            cell, R, H, C, A, E, dY, dhT, dcT, mask, rec_mask, grads[0], grads[1], act, ract,
            reset_after, x=x.reshape(T, N, W.shape[0]) if dW is not None else None, W=W,
            dW=grads[2], db_in=grads[3], need_dx=need_dx)
        for mine, given in zip(grads, (dR, db_rec, dW, db_in)):
            if mine is not given:
                given += mine
        return (None if dx is None else dx.reshape(T * N, W.shape[0])), dh0, dc0


_SPARSE_OPS: list = []


def _sparse_ops():
    """fastnn.recsys.sparse_ops, which wraps the sparse kernels (checks, the
    cached transposed structure); imported on first use, as it imports this
    package."""
    if not _SPARSE_OPS:
        from fastnn.recsys import sparse_ops
        _SPARSE_OPS.append(sparse_ops)
    return _SPARSE_OPS[0]
