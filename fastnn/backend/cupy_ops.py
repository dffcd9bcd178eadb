"""The GPU backend: ``CupyOps``, the ``Ops`` contract on CuPy arrays.

Registered as ``"cupy"`` (alias ``"gpu"``): ``fastnn.set_backend("cupy")``,
``with fastnn.use_backend("cupy"):``, ``model.to("cupy")``,
``AutoRec(..., backend="cupy")``. Importing fastnn never imports CuPy: this
module is imported, and CuPy with it, when the backend is first asked for;
without CuPy or without a usable CUDA device that request raises
``BackendUnavailable`` saying which and how to install.

What runs where. The reference ``Ops`` is written against ``self.xp``, so most
of it runs here unchanged with ``xp = cupy``: dense products are ``a @ b``
(cuBLAS), convolution the reference's per-tap ``einsum`` (cuBLAS), pooling,
batch norm and the recurrent cells CuPy element-wise code. This class
overrides only where CuPy has a better tool or the reference reaches for host
NumPy/SciPy:

* the dense layer's bias + activation epilogue, the element-wise activations
  and their derivatives, and the Adam and momentum-SGD updates are one
  ``cupy.ElementwiseKernel`` each (one pass instead of four to ten);
* the sparse products: SpMM and transposed SpMM through
  ``cupyx.scipy.sparse.csr_matrix`` (cuSPARSE), column sums by
  ``cupy.bincount``, SDDMM by the CUDA kernel in ``csrc/cuda/sparse.cu``
  (RawModule, compiled by NVRTC at first use), the masked loss with its sum
  left on the device (no sync), and AutoRec's fused step from those pieces
  with the CSR structure uploaded once per step;
* scatter-adds (``embedding_backward``, ``maxout_backward``) with
  ``cupyx.scatter_add`` / fancy indexing, gelu's erf from
  ``cupyx.scipy.special``;
* random draws from a ``cupy.random.RandomState`` the backend owns (seeded by
  ``fastnn.set_seed``), so draws differ from the CPU backends' (compare
  models without dropout/noise, or set weights explicitly).

Host transfers are the documented ones only: ``asarray`` (host to device),
``to_numpy``/``fetch`` (device to host: the logs once per logging interval,
``predict`` results). A sparse operand's structure (``indptr``/``indices``)
is host NumPy by the ``CSR`` convention and is uploaded per call.
"""
import os

import numpy

from .ops import CSR, Ops

INSTALL_HINT = ('pip install "fastnn[gpu]" for CUDA 12, "fastnn[gpu-cuda13]" for CUDA 13 '
                '(README, "GPU")')


class BackendUnavailable(RuntimeError):
    """The requested backend cannot run here (its library or device is missing)."""


def import_cupy():
    """``(cupy, cupyx)``, after checking that a CUDA device is usable; else
    ``BackendUnavailable`` saying which of the two is missing and why."""
    try:
        import cupy
        import cupyx
        import cupyx.scipy.sparse  # noqa: F401  (SpMM; part of every CuPy wheel)
    except ImportError as e:
        raise BackendUnavailable(
            f"the 'cupy' backend needs CuPy, which is not installed ({type(e).__name__}: "
            f"{e}); install it with {INSTALL_HINT}") from e
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # CUDARuntimeError: no driver, driver too old, no device
        raise BackendUnavailable(
            f"the 'cupy' backend found CuPy {cupy.__version__} but no usable CUDA device: "
            f"{type(e).__name__}: {e}. Check the NVIDIA driver (nvidia-smi) and that the "
            f"CuPy wheel matches its CUDA version: {INSTALL_HINT}") from e
    if count < 1:
        raise BackendUnavailable(
            f"the 'cupy' backend found CuPy {cupy.__version__} but no CUDA device "
            f"(cupy.cuda.runtime.getDeviceCount() == 0)")
    return cupy, cupyx


# ------------------------------------------------------------- CUDA sources
_CUDA_DIRS = (
    # An installed wheel keeps the sources beside the compiled kernels.
    os.path.join(os.path.dirname(os.path.dirname(__file__)), "_C", "cuda"),
    # A checkout (the in-place build): csrc/cuda at the repository root.
    os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                 "csrc", "cuda"),
)


def cuda_source(name):
    """The text of ``csrc/cuda/<name>``, from the package or the checkout."""
    for d in _CUDA_DIRS:
        path = os.path.join(d, name)
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                return f.read()
    raise FileNotFoundError(f"CUDA source {name!r} not found in {list(_CUDA_DIRS)}")


# CUDA C expressions of the element-wise activations: forward from the input
# ``s``, derivative from the output ``y`` times ``dy`` (Ops' conventions;
# ``alpha`` is leaky_relu's slope and elu's scale). Softmax is a row
# reduction and the other Keras activations are rare: the reference does them.
_FORWARD = {
    "linear": "s",
    "sigmoid": "(s >= (T)0 ? (T)1 / ((T)1 + exp(-s)) : exp(s) / ((T)1 + exp(s)))",
    "tanh": "tanh(s)",
    "relu": "(s > (T)0 ? s : (T)0)",
    "leaky_relu": "(s > (T)0 ? s : s * (T)alpha)",
    "elu": "(s > (T)0 ? s : (T)alpha * expm1(s))",
}
_BACKWARD = {
    "linear": "dy",
    "sigmoid": "dy * y * ((T)1 - y)",
    "tanh": "dy * ((T)1 - y * y)",
    "relu": "(y > (T)0 ? dy : (T)0)",
    "leaky_relu": "(y > (T)0 ? dy : dy * (T)alpha)",
    "elu": "(y > (T)0 ? dy : dy * (y + (T)alpha))",
}


# Every fused kernel: key -> (in_params, out_params, body) of a
# cupy.ElementwiseKernel. A table, so that tools/cuda_compile_check.sh can
# compile each body with nvcc (as CuPy would, for float and double) without a GPU.
ELEMENTWISE: dict = {}
for _name in _FORWARD:
    ELEMENTWISE[("act", _name)] = ("T s, float64 alpha", "T y", f"y = {_FORWARD[_name]};")
    ELEMENTWISE[("actgrad", _name)] = ("T y, T dy, float64 alpha", "T dz",
                                       f"dz = {_BACKWARD[_name]};")
    # The dense epilogue, in place in the product: s = act(s + bias).
    ELEMENTWISE[("bias_act", _name)] = ("T b, float64 alpha", "T s",
                                        f"s = s + b; s = {_FORWARD[_name]};")
ELEMENTWISE[("adam",)] = (
    "T g, float64 lr_c1, float64 b1, float64 b2, float64 eps, float64 inv_c2, "
    "float64 wd, float64 dlr",
    "T p, T m, T v",
    # The reference's order of operations, in T: coupled L2 into the gradient
    # (wd is 0 otherwise), the moments, AdamW's decay (dlr = lr * decay, else
    # 0), the step.
    "T gg = g + (T)wd * p;"
    " m = (T)b1 * m + (T)(1 - b1) * gg;"
    " v = (T)b2 * v + (T)(1 - b2) * gg * gg;"
    " p = p - (T)dlr * p;"
    " p = p - (T)lr_c1 * m / (sqrt(v * (T)inv_c2) + (T)eps);")
ELEMENTWISE[("sgd_momentum",)] = (
    "T g, float64 lr, float64 mom, float64 wd, int32 nesterov", "T p, T vel",
    "T gg = g + (T)wd * p;"
    " vel = (T)mom * vel - (T)lr * gg;"
    " p = nesterov ? p + ((T)mom * vel - (T)lr * gg) : p + vel;")


def _is_number(x):
    return isinstance(x, (int, float, numpy.integer, numpy.floating)) and not isinstance(x, bool)


class CupyOps(Ops):
    """``Ops`` on CuPy arrays (see the module docstring for what is overridden).

    ``CupyOps()`` imports CuPy and checks for a device. ``CupyOps(xp=module)``
    skips both and computes with ``module`` in place of ``cupy``: the tests
    run the methods written only against the array API (the sparse
    bookkeeping, the masked loss, the transfers) on the strict backend's
    namespace on a machine without a GPU. The kernels (ElementwiseKernel,
    RawModule, cuSPARSE) need the real CuPy."""

    name = "cupy"
    is_host = False

    def __init__(self, xp=None, cupyx=None):
        if xp is None:
            xp, cupyx = import_cupy()
        self.xp = xp
        self._cupyx = cupyx
        self.array_type = xp.ndarray
        self._kernels = {}
        self._module = None
        self._rng = None
        self.seed(0)

    # ------------------------------------------------------------------ arrays
    def asarray(self, x, dtype=None):
        return self.xp.asarray(x, dtype=dtype)

    def to_numpy(self, x):
        if isinstance(x, self.array_type):
            return self.xp.asnumpy(x)
        return numpy.asarray(x)

    # ----------------------------------------------------------------- random
    def seed(self, seed):
        random = getattr(self.xp, "random", None)
        if random is not None and hasattr(random, "RandomState"):
            self._rng = random.RandomState(int(seed) % (2 ** 32) if seed is not None else None)

    def random_uniform(self, shape, dtype="float32"):
        return self._rng.random_sample(shape, dtype=numpy.dtype(dtype))

    def random_normal(self, shape, dtype="float32"):
        return self._rng.standard_normal(shape, dtype=numpy.dtype(dtype))

    def permutation(self, n):
        return self._rng.permutation(int(n))

    # ----------------------------------------------------------------- kernels
    def _elementwise(self, *key):
        """The ``cupy.ElementwiseKernel`` ``ELEMENTWISE[key]`` (built once;
        CuPy compiles it at its first call, per dtype)."""
        k = self._kernels.get(key)
        if k is None:
            in_params, out_params, body = ELEMENTWISE[key]
            k = self._kernels[key] = self.xp.ElementwiseKernel(
                in_params, out_params, body, "fastnn_" + "_".join(key))
        return k

    def _raw(self, name):
        """A kernel of csrc/cuda/sparse.cu (the module compiled once, at first use)."""
        if self._module is None:
            self._module = self.xp.RawModule(code=cuda_source("sparse.cu"))
        return self._module.get_function(name)

    @staticmethod
    def _fusable(*arrays):
        """Arrays a fused kernel takes: float32/float64 CuPy arrays of one dtype."""
        dtypes = {a.dtype for a in arrays if a is not None}
        return len(dtypes) == 1 and dtypes.pop() in (numpy.float32, numpy.float64)

    # ------------------------------------------------------------ activations
    def activation_forward(self, name, x, alpha=0.0):
        if name not in _FORWARD or not self._fusable(x):
            return super().activation_forward(name, x, alpha)
        return self._elementwise("act", name)(x, float(alpha))

    def activation_backward(self, name, y, dy, alpha=0.0):
        if name not in _BACKWARD or not self._fusable(y, dy):
            return super().activation_backward(name, y, dy, alpha)
        return self._elementwise("actgrad", name)(y, dy, float(alpha))

    def _erf(self, x):
        import cupyx.scipy.special
        return cupyx.scipy.special.erf(x)

    def maxout_backward(self, dy, idx, pieces):
        n, units = dy.shape
        dx = self.xp.zeros((n * units, pieces), dtype=dy.dtype)
        dx[self.xp.arange(n * units), idx.reshape(-1)] = dy.reshape(-1)  # one winner a row
        return dx.reshape(n, units * pieces)

    def embedding_backward(self, indices, dy, dtable):
        # Repeated indices sum: an atomic scatter-add on the device.
        self._cupyx.scatter_add(dtable, indices.reshape(-1), dy.reshape(-1, dtable.shape[1]))

    # -------------------------------------------------------------- dense layer
    def dense_forward(self, x, W, b, activation="linear", alpha=0.0):
        """cuBLAS product, then bias + activation in one pass over its output."""
        if activation not in _FORWARD or not self._fusable(x, W, b):
            return super().dense_forward(x, W, b, activation, alpha)
        z = x @ W
        if b is None:
            return z if activation == "linear" else self.activation_forward(activation, z, alpha)
        self._elementwise("bias_act", activation)(b, float(alpha), z)  # z is the output: in place
        return z

    # -------------------------------------------------------------- optimizers
    def adam_update(self, param, grad, m, v, lr, beta1, beta2, eps, step,
                    weight_decay=0.0, decoupled=False):
        if not (self._fusable(param, grad, m, v)
                and all(map(_is_number, (lr, beta1, beta2, eps, step, weight_decay)))):
            return super().adam_update(param, grad, m, v, lr, beta1, beta2, eps, step,
                                       weight_decay, decoupled)
        c1 = 1 - beta1 ** step
        c2 = 1 - beta2 ** step
        k = self._elementwise("adam")
        wd = float(weight_decay) if weight_decay and not decoupled else 0.0
        dlr = float(lr) * float(weight_decay) if weight_decay and decoupled else 0.0
        k(grad, float(lr) / c1, float(beta1), float(beta2), float(eps), 1.0 / c2, wd, dlr,
          param, m, v)

    def sgd_update(self, param, grad, velocity, lr, momentum=0.0, nesterov=False,
                   weight_decay=0.0):
        if not (momentum and velocity is not None and self._fusable(param, grad, velocity)
                and all(map(_is_number, (lr, momentum, weight_decay)))):
            return super().sgd_update(param, grad, velocity, lr, momentum, nesterov,
                                      weight_decay)
        k = self._elementwise("sgd_momentum")
        k(grad, float(lr), float(momentum), float(weight_decay or 0.0), int(bool(nesterov)),
          param, velocity)

    # ------------------------------------------------------- sparse products
    # A CSR operand: host structure (indptr, indices), values on the device.
    def _structure(self, A):
        """A's structure on the device as int32 (cuSPARSE's index type):
        ``(indptr, indices)``."""
        xp = self.xp
        return (xp.asarray(numpy.asarray(A.indptr, dtype=numpy.int32)),
                xp.asarray(numpy.asarray(A.indices, dtype=numpy.int32)))

    def _device_csr(self, A, data=None, structure=None):
        """A (with ``data`` in place of its values) as a cupyx.scipy.sparse.csr_matrix."""
        indptr, indices = self._structure(A) if structure is None else structure
        values = A.data if data is None else data
        self.check_native(values, "the sparse operand's values")
        return self._cupyx.scipy.sparse.csr_matrix((values, indices, indptr), shape=A.shape)

    def csr_take_rows(self, A, rows):
        # The structure on the host (as every backend); the values gathered on
        # the device through the positions, uploaded once.
        rows = numpy.asarray(rows, dtype=numpy.int64)
        indptr = numpy.asarray(A.indptr)
        starts = indptr[rows].astype(numpy.int64)
        counts = indptr[rows + 1] - starts
        new_ptr = numpy.zeros(rows.size + 1, dtype=numpy.int64)
        numpy.cumsum(counts, out=new_ptr[1:])
        pos = numpy.repeat(starts - new_ptr[:-1], counts) + numpy.arange(new_ptr[-1])
        data = A.data[self.xp.asarray(pos)]
        return CSR(new_ptr.astype(indptr.dtype, copy=False), numpy.asarray(A.indices)[pos], data,
                   (rows.size, A.shape[1]))

    def spmm(self, A, B, bias=None, activation="linear"):
        Z = self._device_csr(A, A.data.astype(B.dtype, copy=False)) @ B
        Z = self.xp.ascontiguousarray(Z, dtype=B.dtype)
        if bias is not None:
            Z += bias
        return Z if activation == "linear" else self.activation_forward(activation, Z)

    def spmm_t(self, A, G, data=None, out=None, structure=None):
        values = (A.data if data is None else data).astype(G.dtype, copy=False)
        r = self.xp.asarray(self._device_csr(A, values, structure).T @ G, dtype=G.dtype)
        if out is None:
            return self.xp.ascontiguousarray(r)
        out += r
        return out

    def column_sums(self, A, vals, out=None, indices=None):
        xp = self.xp
        if indices is None:
            indices = xp.asarray(numpy.asarray(A.indices, dtype=numpy.int32))
        if self._cupyx is not None:
            # An atomic float64 scatter-add (the contract's accumulation):
            # cupy.bincount would sync twice (its range checks) every batch.
            sums = xp.zeros(A.shape[1], dtype=numpy.float64)
            self._cupyx.scatter_add(sums, indices, vals.astype(numpy.float64))
        else:  # the array-API stand-in of the CPU tests (no cupyx)
            sums = xp.bincount(indices, weights=vals, minlength=A.shape[1])
        if out is None:
            return sums.astype(vals.dtype)
        out += sums.astype(out.dtype)
        return out

    def _rows(self, A):
        """The row of each stored entry (A's CSR order), host int32."""
        indptr = numpy.asarray(A.indptr)
        return numpy.repeat(numpy.arange(A.shape[0], dtype=numpy.int32), numpy.diff(indptr))

    def sddmm(self, A, H, Vt, c=None, rows=None, cols=None):
        xp = self.xp
        if H.dtype != Vt.dtype or H.dtype not in (numpy.float32, numpy.float64) \
                or (c is not None and c.dtype != H.dtype):
            return super().sddmm(A, H, Vt, c)
        if rows is None:
            rows = xp.asarray(self._rows(A))
        if cols is None:
            cols = xp.asarray(numpy.asarray(A.indices, dtype=numpy.int32))
        nnz, k = int(rows.shape[0]), int(H.shape[1])
        out = xp.empty(nnz, dtype=H.dtype)
        if nnz == 0:
            return out
        H = xp.ascontiguousarray(H)
        Vt = xp.ascontiguousarray(Vt)
        has_c = c is not None
        c = xp.ascontiguousarray(c) if has_c else out  # never read when has_c is 0
        kernel = self._raw("fastnn_sddmm_f32" if H.dtype == numpy.float32
                           else "fastnn_sddmm_f64")
        threads = 256  # 8 warps, one stored entry each
        blocks = (nnz * 32 + threads - 1) // threads
        kernel((blocks,), (threads,), (rows, cols, H, Vt, c, numpy.int32(has_c), out,
                                       numpy.int64(nnz), numpy.int32(k)))
        return out

    def masked_sq_error(self, pred_vals, target_vals, weights=None):
        """``(loss, grad_vals)`` as the contract's, the loss a 0-d float64
        device array (summed in float64): no sync; ``fetch`` reads it. Three
        CuPy element-wise passes over the nnz values, next to the products
        around them not worth a kernel of its own."""
        diff = pred_vals - target_vals
        wdiff = diff if weights is None else weights * diff
        loss = (wdiff.astype(numpy.float64) * diff).sum()
        return loss, (2 * wdiff).astype(pred_vals.dtype, copy=False)

    def autorec_adam_step(self, X, W, b, Vt, c, adam_state, lr, beta1, beta2, eps, step,
                          lam_scale, activation="sigmoid", input_values=None):
        """The reference's step composed from the device products, with X's
        structure (and its row/column index arrays) uploaded once per step.
        Returns ``(data_loss, reg_loss)`` as 0-d float64 device arrays."""
        xp = self.xp
        structure = self._structure(X)
        rows = xp.asarray(self._rows(X))
        cols = structure[1]
        dtype = W.dtype
        targets = X.data.astype(dtype, copy=False)
        inputs = targets if input_values is None else input_values.astype(dtype, copy=False)
        Z = xp.asarray(self._device_csr(X, inputs, structure) @ W, dtype=dtype)
        H = self.dense_epilogue(Z, b, activation)
        vals = self.sddmm(X, H, Vt, c, rows=rows, cols=cols)
        data_loss, g = self.masked_sq_error(vals, targets)
        G = self._device_csr(X, g, structure)
        dVt = xp.asarray(G.T @ H, dtype=dtype)
        dc = self.column_sums(X, g, indices=cols)
        dZ = self.activation_backward(activation, H, xp.asarray(G @ Vt, dtype=dtype))
        dW = self.spmm_t(X, dZ, data=inputs, structure=structure)
        db = dZ.sum(axis=0)
        reg = 0.5 * float(lam_scale) * (self.sum_of_squares([W]) + self.sum_of_squares([Vt]))
        scale = dtype.type(lam_scale)
        dW += scale * W
        dVt += scale * Vt
        for name, p, grad in (("W", W, dW), ("b", b, db), ("Vt", Vt, dVt), ("c", c, dc)):
            m, v = adam_state[name]
            self.adam_update(p, grad, m, v, lr, beta1, beta2, eps, step)
        return data_loss, reg

    def dense_epilogue(self, Z, b, activation):
        """``act(Z + b)`` in place in ``Z`` where a fused kernel has the activation."""
        if activation in _FORWARD and self._fusable(Z, b):
            self._elementwise("bias_act", activation)(b, 0.0, Z)
            return Z
        return self.activation_forward(activation, Z + b)


_SHARED: list = []


def shared():
    """The one ``CupyOps`` of this process (``"cupy"`` and ``"gpu"`` name it)."""
    if not _SHARED:
        _SHARED.append(CupyOps())
    return _SHARED[0]
