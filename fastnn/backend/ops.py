"""The array-backend contract: ``Ops``, a plain NumPy implementation of every
operation a layer, loss or optimizer needs, and the sparse products of the
recommenders (SpMM, transposed SpMM, SDDMM, masked loss, AutoRec's fused Adam
step).

Subclasses override only the hot methods: ``NumpyOps`` (numpy_ops.py) routes
them to the Cython kernels in ``fastnn._C``; a CuPy backend overrides them with
CUDA. Layers never call NumPy for heavy work directly, they call ``ops``.
This module must hold no layer logic and no Cython imports.

Conventions
-----------
* Element-wise activation derivatives are computed from the *output* ``y``
  (sigmoid, tanh, relu, leaky_relu, elu, linear, softmax, and selu, softplus,
  softsign, hard_sigmoid), so a layer keeps only its output for backward. gelu,
  silu and mish are not invertible from their output: their derivative needs
  the input (``activation_backward_from_input``; ``INPUT_GRAD_ACTIVATIONS``).
* ``*_backward`` methods that produce parameter gradients *accumulate* into the
  arrays they are given (``dW += ...``), so a layer used twice in a graph sums
  its gradients.
* Optimizer updates modify ``param`` and the state arrays in place.
"""
import numpy

from .conv_ref import ConvRefMixin
from .norm_ref import NormRefMixin
from .recurrent_ref import RecurrentRefMixin

# The activations every backend (and the Cython kernels' enum) implements.
ACTIVATIONS = ("linear", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "softmax")
# Keras's further activations, in plain NumPy here (no kernel): the layers
# fall back to these methods for them.
EXTRA_ACTIVATIONS = ("selu", "softplus", "softsign", "hard_sigmoid", "gelu", "silu", "mish")
INPUT_GRAD_ACTIVATIONS = ("gelu", "silu", "mish")
# SELU's constants (Klambauer et al. 2017), as Keras.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
FLOAT_DTYPES = (numpy.dtype(numpy.float32), numpy.dtype(numpy.float64))


class CSR:
    """A CSR matrix as the sparse products take it: the structure (``indptr``,
    ``indices``, host NumPy integer arrays) on the host, where a device backend
    uploads it as a CuPy one would, and the values (``data``) on the backend.
    Rows' column indices sorted. A plain container: no checks, no methods."""

    __slots__ = ("indptr", "indices", "data", "shape")

    def __init__(self, indptr, indices, data, shape):
        self.indptr, self.indices, self.data = indptr, indices, data
        self.shape = (int(shape[0]), int(shape[1]))

    @property
    def nnz(self):
        return self.indices.shape[0]

    @property
    def dtype(self):
        return self.data.dtype


class Ops(ConvRefMixin, NormRefMixin, RecurrentRefMixin):
    """Plain NumPy reference implementation. Correct for every dtype and layout.

    The convolution/pooling, batch-normalization and recurrent methods live in
    the mixins of conv_ref.py, norm_ref.py and recurrent_ref.py."""

    name = "reference"
    xp = numpy

    # ------------------------------------------------------------------ arrays
    # The documented host crossings: ``asarray`` (host data to this backend)
    # and ``to_numpy`` (this backend's array to a host NumPy array). Nothing
    # else in fastnn may move data between host and device; on a device
    # backend each call is a copy and ``to_numpy`` a sync.
    is_host = True             # arrays live in host memory (NumPy's ndarray)
    array_type: type = numpy.ndarray

    def asarray(self, x, dtype=None):
        return self.xp.asarray(x, dtype=dtype)

    def to_numpy(self, x):
        return numpy.asarray(x)

    def fetch(self, values):
        """Host floats for a list of scalars (Python numbers or 0-d arrays of
        this backend), with one transfer for all the arrays among them."""
        out = list(values)
        on_device = [i for i, v in enumerate(out)
                     if not isinstance(v, (int, float, numpy.generic, numpy.ndarray))]
        if on_device:
            xp = self.xp
            host = self.to_numpy(xp.stack([xp.asarray(out[i], dtype=xp.float64).reshape(())
                                           for i in on_device]))
            for i, v in zip(on_device, host):
                out[i] = v
        return [float(v) for v in out]

    def is_native(self, x):
        """True when ``x`` is an array this backend computes on."""
        return isinstance(x, self.array_type)

    def check_native(self, x, what="array"):
        if not self.is_native(x):
            from . import backend_of
            owner = backend_of(x)
            where = f" (an array of backend {owner.name!r})" if owner is not None else ""
            raise TypeError(
                f"{what} is a {type(x).__module__}.{type(x).__name__}{where}, but it is used "
                f"on backend {self.name!r}, which computes on "
                f"{self.array_type.__module__}.{self.array_type.__name__}; move it with "
                f"ops.asarray(ops_of_its_backend.to_numpy(array)) or model.to(...)")
        return x

    # ----------------------------------------------------------------- random
    # Draws come from fastnn's seeded generator (``fastnn.set_seed``). A device
    # backend overrides these three with its own generator and ``seed``, which
    # ``set_seed`` calls on every backend in use.
    def seed(self, seed):
        """Reseed this backend's own generator (host backends share fastnn's)."""

    def random_uniform(self, shape, dtype="float32"):
        """Uniform [0, 1) draws from fastnn's seeded generator (``set_seed``)."""
        from ..random import get_rng
        return self.xp.asarray(get_rng().random(shape, dtype=numpy.dtype(dtype).type))

    def random_normal(self, shape, dtype="float32"):
        from ..random import get_rng
        return self.xp.asarray(get_rng().standard_normal(shape, dtype=numpy.dtype(dtype).type))

    def permutation(self, n):
        """A random permutation of ``range(n)`` (fit's shuffling), as an array of this backend."""
        from ..random import get_rng
        return self.xp.asarray(get_rng().permutation(n))

    def zeros(self, shape, dtype="float32"):
        return self.xp.zeros(shape, dtype=dtype)

    def empty(self, shape, dtype="float32"):
        return self.xp.empty(shape, dtype=dtype)

    # ------------------------------------------------------------ matrix math
    def gemm(self, a, b, trans_a=False, trans_b=False, out=None, alpha=1.0, beta=0.0):
        """``out = alpha * op(a) @ op(b) + beta * out`` (``op`` = optional transpose)."""
        a = a.T if trans_a else a
        b = b.T if trans_b else b
        r = a @ b
        if alpha != 1.0:
            r *= alpha
        if out is None:
            return r
        if beta == 0.0:
            out[...] = r
        else:
            out *= beta
            out += r
        return out

    # ------------------------------------------------------------ activations
    def activation_forward(self, name, x, alpha=0.0):
        xp = self.xp
        if name == "linear":
            return x.copy()
        if name == "sigmoid":
            # Stable for large |x|: exp of a non-positive number only.
            e = xp.exp(-xp.abs(x))
            return xp.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)
        if name == "tanh":
            return xp.tanh(x)
        if name == "relu":
            return xp.maximum(x, 0)
        if name == "leaky_relu":
            return xp.where(x > 0, x, x * x.dtype.type(alpha))
        if name == "elu":
            return xp.where(x > 0, x, x.dtype.type(alpha) * xp.expm1(xp.minimum(x, 0)))
        if name == "softmax":
            return self.softmax(x)
        if name in EXTRA_ACTIVATIONS:
            return self._extra_forward(name, x)
        raise ValueError(f"unknown activation {name!r}; expected one of "
                         f"{ACTIVATIONS + EXTRA_ACTIVATIONS}")

    def activation_backward(self, name, y, dy, alpha=0.0):
        """Gradient w.r.t. the activation's input, from its output ``y``."""
        xp = self.xp
        if name == "linear":
            return dy.copy()
        if name == "sigmoid":
            return dy * y * (1 - y)
        if name == "tanh":
            return dy * (1 - y * y)
        if name == "relu":
            return xp.where(y > 0, dy, 0).astype(dy.dtype, copy=False)
        if name == "leaky_relu":
            return xp.where(y > 0, dy, dy * dy.dtype.type(alpha))
        if name == "elu":
            return xp.where(y > 0, dy, dy * (y + y.dtype.type(alpha)))
        if name == "softmax":
            return self.softmax_backward(y, dy)
        if name in INPUT_GRAD_ACTIVATIONS:
            raise ValueError(f"the derivative of {name} needs its input, not only its output; "
                             f"use activation_backward_from_input")
        if name in EXTRA_ACTIVATIONS:
            return self._extra_backward_from_output(name, y, dy)
        raise ValueError(f"unknown activation {name!r}; expected one of "
                         f"{ACTIVATIONS + EXTRA_ACTIVATIONS}")

    def activation_backward_from_input(self, name, x, y, dy, alpha=0.0):
        """Gradient w.r.t. the activation's input ``x`` (``y`` its output): for
        every activation, including those whose derivative needs ``x``."""
        if name not in INPUT_GRAD_ACTIVATIONS:
            return self.activation_backward(name, y, dy, alpha)
        xp = self.xp
        if name == "gelu":
            # d/dx x Phi(x) = Phi(x) + x phi(x)
            cdf = 0.5 * (1 + self._erf(x / x.dtype.type(numpy.sqrt(2))))
            pdf = xp.exp(-0.5 * x * x) / x.dtype.type(numpy.sqrt(2 * numpy.pi))
            return dy * (cdf + x * pdf)
        s = self.activation_forward("sigmoid", x)
        if name == "silu":
            return dy * (s * (1 + x * (1 - s)))
        t = xp.tanh(self._extra_forward("softplus", x))  # mish
        return dy * (t + x * (1 - t * t) * s)

    def _erf(self, x):
        import scipy.special
        return scipy.special.erf(x)

    def _extra_forward(self, name, x):
        xp, one = self.xp, x.dtype.type(1)
        if name == "selu":
            return x.dtype.type(SELU_SCALE) * xp.where(
                x > 0, x, x.dtype.type(SELU_ALPHA) * xp.expm1(xp.minimum(x, 0)))
        if name == "softplus":
            # log(1 + e^x) without overflow: max(x, 0) + log1p(e^-|x|)
            return xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))
        if name == "softsign":
            return x / (one + xp.abs(x))
        if name == "hard_sigmoid":
            # Keras 3's (and PyTorch's) definition: relu6(x + 3) / 6.
            return xp.clip(x / x.dtype.type(6) + x.dtype.type(0.5), 0, 1)
        if name == "gelu":
            return x * x.dtype.type(0.5) * (one + self._erf(x / x.dtype.type(numpy.sqrt(2))))
        if name == "silu":
            return x * self.activation_forward("sigmoid", x)
        if name == "mish":
            return x * xp.tanh(self._extra_forward("softplus", x))
        raise ValueError(f"unknown activation {name!r}")

    def _extra_backward_from_output(self, name, y, dy):
        xp = self.xp
        if name == "selu":
            # x > 0 exactly where y > 0; below, dy/dx = scale*alpha*e^x = y + scale*alpha.
            return xp.where(y > 0, dy * y.dtype.type(SELU_SCALE),
                            dy * (y + y.dtype.type(SELU_SCALE * SELU_ALPHA)))
        if name == "softplus":
            return dy * -xp.expm1(-y)  # sigmoid(x) = 1 - e^-y
        if name == "softsign":
            return dy * (1 - xp.abs(y)) ** 2  # 1 / (1 + |x|)^2
        if name == "hard_sigmoid":
            return xp.where((y > 0) & (y < 1), dy / dy.dtype.type(6), 0).astype(dy.dtype, copy=False)
        raise ValueError(f"unknown activation {name!r}")

    def softmax(self, x):
        """Row-wise softmax over the last axis, stable for large logits."""
        z = x - x.max(axis=-1, keepdims=True)
        e = self.xp.exp(z)
        return e / e.sum(axis=-1, keepdims=True)

    def softmax_backward(self, y, dy):
        return y * (dy - (dy * y).sum(axis=-1, keepdims=True))

    def maxout_forward(self, x, pieces):
        """``x`` (n, units*pieces) -> (max over each group of ``pieces``, argmax)."""
        n, f = x.shape
        g = x.reshape(n, f // pieces, pieces)
        idx = g.argmax(axis=-1)
        y = self.xp.take_along_axis(g, idx[..., None], axis=-1)[..., 0]
        return y, idx.astype(self.xp.int32)

    def maxout_backward(self, dy, idx, pieces):
        n, units = dy.shape
        dx = self.xp.zeros((n, units, pieces), dtype=dy.dtype)
        self.xp.put_along_axis(dx, idx[..., None].astype(self.xp.intp), dy[..., None], axis=-1)
        return dx.reshape(n, units * pieces)

    # -------------------------------------------------------------- dense layer
    def dense_forward(self, x, W, b, activation="linear", alpha=0.0):
        """``act(x @ W + b)``; ``b`` may be None."""
        z = x @ W
        if b is not None:
            z += b
        if activation == "linear":
            return z
        return self.activation_forward(activation, z, alpha)

    def dense_backward(self, x, W, y, dy, dW, db, activation="linear", alpha=0.0,
                       need_dx=True):
        """Accumulate ``dW += x.T @ dz``, ``db += dz.sum(0)``; return ``dx = dz @ W.T``
        (or None when ``need_dx`` is false), with ``dz = dy * act'(y)``."""
        dz = dy if activation == "linear" else self.activation_backward(activation, y, dy, alpha)
        dW += x.T @ dz
        if db is not None:
            db += dz.sum(axis=0)
        return dz @ W.T if need_dx else None

    # ------------------------------------------------------------------ losses
    def embedding_backward(self, indices, dy, dtable):
        """Accumulate the rows of ``dy`` (..., dim) into the rows ``indices``
        (...) of ``dtable`` (vocabulary, dim); repeated indices sum."""
        self.xp.add.at(dtable, indices.reshape(-1), dy.reshape(-1, dtable.shape[1]))

    def softmax_cross_entropy(self, logits, labels, label_smoothing=0.0):
        """Per-sample cross-entropy of softmax(logits) against integer ``labels``
        (shape (n,)) or target distributions (shape like ``logits``), and the
        gradient of the per-sample losses w.r.t. the logits (unscaled).
        ``label_smoothing=s`` trains against ``t * (1 - s) + s / classes``
        (``t`` the one-hot labels or the targets); integer labels are never
        expanded to one-hot rows: the uniform part adds ``-s * mean(log p)``
        to the loss and ``-s / classes`` to the gradient."""
        xp = self.xp
        c = logits.shape[-1]
        if label_smoothing and labels.ndim != 1:
            labels = labels * (1 - label_smoothing) + label_smoothing / c
        z = logits - logits.max(axis=-1, keepdims=True)
        logsumexp = xp.log(xp.exp(z).sum(axis=-1, keepdims=True))
        logp = z - logsumexp
        p = xp.exp(logp)
        if labels.ndim == 1:
            # Range checked on the host only: a device backend trusts the
            # labels the model validated once per fit (a check here would sync).
            if self.is_host and labels.size and (int(labels.min()) < 0
                                                 or int(labels.max()) >= c):
                raise ValueError(f"softmax_cross_entropy: labels must lie in [0, {c}), got "
                                 f"values in [{int(labels.min())}, {int(labels.max())}]")
            rows = xp.arange(logits.shape[0])
            loss = -logp[rows, labels]
            grad = p
            if label_smoothing:
                loss = (1 - label_smoothing) * loss - label_smoothing * logp.mean(axis=-1)
                grad -= label_smoothing / c
            grad[rows, labels] -= 1 - label_smoothing
        else:
            loss = -(labels * logp).sum(axis=-1)
            grad = p * labels.sum(axis=-1, keepdims=True) - labels
        return loss, grad

    # -------------------------------------------------------------- optimizers
    def sgd_update(self, param, grad, velocity, lr, momentum=0.0, nesterov=False,
                   weight_decay=0.0):
        g = grad + weight_decay * param if weight_decay else grad
        if momentum:
            velocity *= momentum
            velocity -= lr * g
            if nesterov:
                param += momentum * velocity - lr * g
            else:
                param += velocity
        else:
            param -= lr * g

    def rmsprop_update(self, param, grad, sq, lr, rho=0.9, eps=1e-7, weight_decay=0.0):
        g = grad + weight_decay * param if weight_decay else grad
        sq *= rho
        sq += (1 - rho) * g * g
        param -= lr * g / (self.xp.sqrt(sq) + eps)

    def adagrad_update(self, param, grad, acc, lr, eps=1e-7, weight_decay=0.0):
        g = grad + weight_decay * param if weight_decay else grad
        acc += g * g
        param -= lr * g / (self.xp.sqrt(acc) + eps)

    def adam_update(self, param, grad, m, v, lr, beta1, beta2, eps, step,
                    weight_decay=0.0, decoupled=False):
        """One Adam step (``step`` counts from 1). ``decoupled`` gives AdamW:
        ``param -= lr * weight_decay * param`` apart from the adaptive step;
        otherwise ``weight_decay`` is L2 added to the gradient."""
        g = grad
        if weight_decay and not decoupled:
            g = grad + weight_decay * param
        m *= beta1
        m += (1 - beta1) * g
        v *= beta2
        v += (1 - beta2) * g * g
        c1 = 1 - beta1 ** step
        c2 = 1 - beta2 ** step
        if weight_decay and decoupled:
            param -= lr * weight_decay * param
        param -= (lr / c1) * m / (self.xp.sqrt(v / c2) + eps)

    def sum_of_squares(self, arrays):
        """float64 sum of squares over several arrays (for global-norm clipping),
        as a 0-d float64 array of this backend (no host sync)."""
        total = None
        for a in arrays:
            s = (a.astype(numpy.float64) ** 2).sum()
            total = s if total is None else total + s
        return self.xp.zeros((), dtype=numpy.float64) if total is None else self.xp.asarray(total)

    # ------------------------------------------------------- sparse products
    # A sparse matrix here is CSR: anything with ``indptr``, ``indices``,
    # ``data`` and ``shape`` (a scipy.sparse.csr_matrix, or the recommenders'
    # fastnn.recsys.sparse_ops.SparsePattern), each row's columns sorted.
    # "At A's stored positions" means a length-nnz array in A's CSR order.
    def _csr(self, A, data=None):
        import scipy.sparse
        return scipy.sparse.csr_matrix((A.data if data is None else data, A.indices, A.indptr),
                                       shape=A.shape)

    def csr_take_rows(self, A, rows):
        """Rows ``rows`` (host integers in ``[0, n_rows)``, any order) of CSR
        ``A`` as a ``CSR`` (or A's own type): the per-batch slice of a training
        loop. The structure is computed on the host; the values are gathered
        on the backend (no host transfer)."""
        rows = numpy.asarray(rows, dtype=numpy.int64)
        starts = A.indptr[rows].astype(numpy.int64)
        counts = A.indptr[rows + 1] - starts
        indptr = numpy.zeros(rows.size + 1, dtype=numpy.int64)
        numpy.cumsum(counts, out=indptr[1:])
        # Position in A of each stored entry of the slice, in the slice's CSR order.
        pos = numpy.repeat(starts - indptr[:-1], counts) + numpy.arange(indptr[-1])
        return CSR(indptr.astype(A.indptr.dtype, copy=False), A.indices[pos], A.data[pos],
                   (rows.size, A.shape[1]))

    def spmm(self, A, B, bias=None, activation="linear"):
        """``act(A @ B + bias)`` for sparse ``A`` (n x m) and dense ``B``
        (m x k) -> (n x k): a dense layer on a sparse input (``bias`` (k,) or
        None)."""
        Z = self.xp.asarray(self._csr(A) @ B, dtype=B.dtype)
        if bias is not None:
            Z += bias
        return Z if activation == "linear" else self.activation_forward(activation, Z)

    def spmm_t(self, A, G, data=None, out=None):
        """``A.T @ G`` for sparse ``A`` (n x m), dense ``G`` (n x k) -> (m x k);
        ``data`` (length nnz) replaces A's values, keeping its pattern. With
        ``out``, the product is added to it (a gradient accumulating)."""
        r = self.xp.asarray(self._csr(A, data).T @ G, dtype=G.dtype)
        if out is None:
            return r
        out += r
        return out

    def column_sums(self, A, vals, out=None):
        """Per-column sums of ``vals`` at A's stored positions (summed in
        float64), e.g. an SDDMM's bias gradient; added to ``out`` when given."""
        sums = numpy.bincount(A.indices, weights=vals, minlength=A.shape[1])
        if out is None:
            return sums.astype(vals.dtype)
        out += sums.astype(out.dtype)
        return out

    def sddmm(self, A, H, Vt, c=None):
        """``H @ Vt.T + c`` (``H`` n x k, ``Vt`` m x k, ``c`` (m,)) at A's
        stored positions: the decoder read only where the loss looks."""
        rows = numpy.repeat(numpy.arange(A.shape[0]), numpy.diff(A.indptr))
        vals = (H[rows] * Vt[A.indices]).sum(axis=1)
        if c is not None:
            vals += c[A.indices]
        return vals.astype(H.dtype, copy=False)

    def masked_sq_error(self, pred_vals, target_vals, weights=None):
        """``(loss, grad_vals)`` over observed entries only: ``loss = sum w *
        (pred - target)**2`` (a float, summed in float64), ``grad_vals = 2 w
        (pred - target)`` in the predictions' dtype."""
        diff = pred_vals - target_vals
        wdiff = diff if weights is None else weights * diff
        loss = float((wdiff.astype(numpy.float64) * diff).sum())
        return loss, (2 * wdiff).astype(pred_vals.dtype, copy=False)

    def autorec_adam_step(self, X, W, b, Vt, c, adam_state, lr, beta1, beta2, eps, step,
                          lam_scale, activation="sigmoid", input_values=None):
        """One exact training step of a one-hidden-layer AutoRec with L2 and
        Adam (``fastnn.recsys.sparse_ops.autorec_adam_step`` has the full
        contract): ``X`` the batch (its values are the targets; the encoder
        reads ``input_values`` at the same positions, default X's values),
        ``W``/``Vt`` (n_out x k), ``b`` (k,), ``c`` (n_out,), updated in place
        with the moments ``adam_state = {"W": (m, v), "b": ..., "Vt": ...,
        "c": ...}``. Returns ``(data_loss, reg_loss)`` before the step, with
        ``reg_loss = lam_scale/2 * (|W|^2 + |Vt|^2)``."""
        inputs = X if input_values is None else self._csr(X, input_values)
        H = self.activation_forward(activation, self.spmm(inputs, W) + b)
        vals = self.sddmm(X, H, Vt, c)
        data_loss, g = self.masked_sq_error(vals, X.data.astype(vals.dtype, copy=False))
        G = self._csr(X, g)
        dVt = self.xp.asarray(G.T @ H, dtype=H.dtype)
        dc = self.xp.asarray(G.sum(axis=0), dtype=H.dtype).reshape(-1)
        dZ = self.activation_backward(activation, H, self.xp.asarray(G @ Vt, dtype=H.dtype))
        dW = self.spmm_t(inputs, dZ)
        db = dZ.sum(axis=0)
        reg = 0.5 * float(lam_scale) * (self.sum_of_squares([W]) + self.sum_of_squares([Vt]))
        scale = W.dtype.type(lam_scale)
        dW += scale * W
        dVt += scale * Vt
        for name, p, grad in (("W", W, dW), ("b", b, db), ("Vt", Vt, dVt), ("c", c, dc)):
            m, v = adam_state[name]
            self.adam_update(p, grad, m, v, lr, beta1, beta2, eps, step)
        return data_loss, reg

    # ------------------------------------------- more optimizers (Keras's set)
    def adadelta_update(self, param, grad, acc_grad, acc_delta, lr, rho=0.95, eps=1e-7,
                        weight_decay=0.0):
        """One Adadelta step (Zeiler 2012, as Keras): the step is the gradient
        scaled by RMS(past steps) / RMS(past gradients), times ``lr``."""
        xp = self.xp
        g = grad + weight_decay * param if weight_decay else grad
        acc_grad *= rho
        acc_grad += (1 - rho) * g * g
        delta = xp.sqrt(acc_delta + eps) / xp.sqrt(acc_grad + eps) * g
        acc_delta *= rho
        acc_delta += (1 - rho) * delta * delta
        param -= lr * delta

    def adamax_update(self, param, grad, m, u, lr, beta1, beta2, eps, step, weight_decay=0.0):
        """One Adamax step (Kingma & Ba, section 7): Adam with the infinity norm,
        ``u = max(beta2 * u, |g|)``; ``step`` counts from 1."""
        xp = self.xp
        g = grad + weight_decay * param if weight_decay else grad
        m *= beta1
        m += (1 - beta1) * g
        xp.maximum(u * beta2, xp.abs(g), out=u)
        param -= (lr / (1 - beta1 ** step)) * m / (u + eps)

    def nadam_update(self, param, grad, m, v, lr, beta1, beta2, eps, step, mu_t, mu_next,
                     mu_product, weight_decay=0.0):
        """One Nadam step (Dozat 2016, as Keras): Adam with Nesterov momentum.
        ``mu_t``/``mu_next`` are the momentum schedule at ``step`` and
        ``step + 1``; ``mu_product`` is the product of ``mu`` over steps 1..step."""
        g = grad + weight_decay * param if weight_decay else grad
        m *= beta1
        m += (1 - beta1) * g
        v *= beta2
        v += (1 - beta2) * g * g
        m_hat = (mu_next / (1 - mu_product * mu_next)) * m + ((1 - mu_t) / (1 - mu_product)) * g
        v_hat = v / (1 - beta2 ** step)
        param -= lr * m_hat / (self.xp.sqrt(v_hat) + eps)

