"""Sparse operations for recommendation models, over SciPy CSR matrices.

Thin layer between models and the Cython kernels in ``fastnn._C.sparse``: it
turns ``scipy.sparse`` matrices into validated kernel arguments, allocates
outputs, and pairs each forward with its backward in the house layer contract
(``y, backprop = forward(...)``; ``dx = backprop(dy)`` accumulates parameter
gradients). No model logic lives here. The backend's sparse operations
(``Ops.spmm`` ...; ``NumpyOps`` calls the kernel wrappers here) are what the
layer functions below compute through, on the ``ops`` they are given.

The AutoRec hot path (DESIGN.md, "The recommendation hot path") is::

    H, enc_back = sparse_dense_forward(X, W, b, "sigmoid", dW, db)    # SpMM
    vals, dec_back = sampled_dense_forward(X, H, Vt, c, dVt, dc)     # SDDMM
    loss, dvals = masked_sq_error(vals, X.data)
    enc_back(dec_back(dvals))

with the decoder weight stored transposed, ``Vt`` of shape (n_out, k), so the
dense equivalent is ``H @ Vt.T + c`` read at the stored positions of ``X``.
Pass one ``SparsePattern`` (``as_pattern(X)``) to both layers so the transposed
structure is built once per batch.

Fused variants for a training step that owns its gradients (same math, bitwise
the same values): ``sampled_dense_sq_error`` (decoder + loss + dH in one pass)
and ``spmm_t_adam`` (the W / Vt gradient applied by Adam row by row, never stored).

A whole exact training step (forward, loss, backward, L2, Adam on every
parameter) is ``autorec_adam_step``: the decoder runs output unit by output unit
(the batch's transposed structure) so each ``Vt`` row is read from memory once,
by the Adam pass, and its gradient row is used while in L1.
"""
import numpy
import scipy.sparse

from ..backend import get_backend
from .._C import sparse as _k  # fastnn._C sets the OpenMP wait policy first
from .._C import autorec_step as _step

__all__ = ["SparsePattern", "as_pattern", "spmm", "spmm_t", "sddmm", "column_sums",
           "masked_sq_error", "adam_update", "spmm_t_adam", "sampled_dense_sq_error",
           "sparse_dense_forward", "sampled_dense_forward", "check_csr",
           "autorec_adam_step", "autorec_adam_state"]

check_csr = _k.check_csr
#: Activations the SpMM kernel applies in its epilogue (others go through the backend).
FUSED_ACTIVATIONS = _k.FUSED_ACTIVATIONS


class SparsePattern:
    """A CSR matrix as the kernels take it: C-contiguous ``indptr``/``indices``
    of one integer dtype, ``data`` of one float dtype, plus the transposed
    structure, computed on first use and cached (a pattern used for two
    transposed products, e.g. AutoRec's input and its loss mask, pays once).

    Build with ``as_pattern(matrix, dtype)`` (which sorts a SciPy matrix's
    indices when they are not); the arrays given here must be valid CSR with
    each row's column indices sorted (``check_csr``), or ValueError.
    """

    def __init__(self, indptr, indices, data, shape):
        self.indptr = indptr
        self.indices = indices
        self.data = data
        self.shape = (int(shape[0]), int(shape[1]))
        _k.check_csr(indptr, indices, self.shape[0], self.shape[1], data.shape[0])
        self._transpose = None

    @property
    def nnz(self):
        return self.indices.shape[0]

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def transpose_structure(self):
        """``(t_indptr, t_indices, perm)`` of the transpose; ``A.T.data == data[perm]``."""
        if self._transpose is None:
            self._transpose = _k.csr_transpose(self.indptr, self.indices, self.shape[1])
        return self._transpose

    def take_rows(self, rows):
        """The pattern of rows ``rows`` (integers in ``[0, n_rows)``, any order),
        like SciPy's ``A[rows]`` but a copy by one compiled loop, with no
        re-validation (the rows of a valid pattern make a valid pattern): the
        per-batch slice of a training loop."""
        indptr, indices, data = _k.csr_take_rows(self.indptr, self.indices, self.data, rows)
        out = SparsePattern.__new__(SparsePattern)
        out.indptr, out.indices, out.data = indptr, indices, data
        out.shape = (indptr.shape[0] - 1, self.shape[1])
        out._transpose = None
        return out

    def row_ids(self):
        """Row index of every stored entry (length nnz), in CSR order."""
        return numpy.repeat(numpy.arange(self.shape[0], dtype=self.indices.dtype),
                            numpy.diff(self.indptr))

    def to_scipy(self):
        return scipy.sparse.csr_matrix((self.data, self.indices, self.indptr), shape=self.shape)

    def __repr__(self):
        return f"SparsePattern(shape={self.shape}, nnz={self.nnz}, dtype={self.dtype})"


def as_pattern(matrix, dtype=None):
    """A ``SparsePattern`` from a SciPy sparse matrix/array (any format) or a
    ``SparsePattern``. ``dtype`` (float32 or float64) converts the data; the
    index arrays keep int32 when they fit; rows whose indices are not sorted are
    sorted (in a copy). Explicitly stored zeros stay stored: the pattern, not
    the value, says what is observed."""
    if isinstance(matrix, SparsePattern):
        if dtype is None or numpy.dtype(dtype) == matrix.dtype:
            return matrix
        return SparsePattern(matrix.indptr, matrix.indices,
                             numpy.ascontiguousarray(matrix.data, dtype=dtype), matrix.shape)
    if not scipy.sparse.issparse(matrix):
        raise TypeError(f"expected a scipy.sparse matrix (CSR), got {type(matrix).__name__}")
    m = matrix.tocsr()
    if not m.has_sorted_indices:  # the kernels take sorted rows; a copy, yours stays
        m = m.sorted_indices()
    dtype = numpy.dtype(dtype if dtype is not None else
                        (m.dtype if m.dtype in (numpy.float32, numpy.float64) else numpy.float32))
    if dtype not in (numpy.float32, numpy.float64):
        raise ValueError(f"dtype {dtype} is not supported; expected float32 or float64")
    # Checked before any narrowing to int32: an int64 column index of 2**32 + 1
    # must be an error, not column 1.
    wide = numpy.int64 if (m.indptr.dtype.itemsize > 4 or m.indices.dtype.itemsize > 4) \
        else numpy.int32
    _k.check_csr(numpy.ascontiguousarray(m.indptr, dtype=wide),
                 numpy.ascontiguousarray(m.indices, dtype=wide), m.shape[0], m.shape[1],
                 name="matrix")
    index_dtype = numpy.int32 if max(m.nnz, *m.shape) < 2**31 - 1 else numpy.int64
    indptr = numpy.ascontiguousarray(m.indptr, dtype=index_dtype)
    indices = numpy.ascontiguousarray(m.indices, dtype=index_dtype)
    data = numpy.ascontiguousarray(m.data, dtype=dtype)
    return SparsePattern(indptr, indices, data, m.shape)


def _dense(x, name, dtype):
    if not isinstance(x, numpy.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(x).__name__}")
    if x.dtype != dtype:
        raise ValueError(f"{name} has dtype {x.dtype}; expected {dtype} (the sparse data's)")
    return numpy.ascontiguousarray(x)


def spmm(A, B, out=None, accumulate=False, bias=None, activation="linear"):
    """``act(A @ B + bias)`` for sparse ``A`` (n x m) and dense ``B`` (m x k)
    -> dense (n x k); ``bias`` (k,) and ``activation`` (one of
    ``FUSED_ACTIVATIONS``) are the kernel's fused epilogue. With ``out``:
    written (or added to before the epilogue, when ``accumulate``) in place."""
    A = as_pattern(A)
    B = _dense(B, "B", A.dtype)
    if bias is not None:
        bias = _dense(bias, "bias", A.dtype)
    if out is None:
        out = numpy.empty((A.shape[0], B.shape[1]), dtype=A.dtype)
        accumulate = False
    if A.shape[1] != B.shape[0]:
        raise ValueError(f"A is {A.shape} but B is {B.shape}: A.shape[1] must equal B.shape[0]")
    return _k.csr_matmul(A.indptr, A.indices, A.data, B, out, accumulate, bias, activation)


def spmm_t(A, G, out=None, accumulate=False, data=None):
    """``A.T @ G`` for sparse ``A`` (n x m) and dense ``G`` (n x k) -> (m x k),
    deterministic (cached transpose, row-parallel). ``data`` (length nnz)
    replaces ``A``'s values while keeping its pattern."""
    A = as_pattern(A)
    G = _dense(G, "G", A.dtype)
    vals = A.data if data is None else _dense(data, "data", A.dtype)
    if out is None:
        out = numpy.empty((A.shape[1], G.shape[1]), dtype=A.dtype)
        accumulate = False
    if A.shape[0] != G.shape[0]:
        raise ValueError(f"A is {A.shape} but G is {G.shape}: A.shape[0] must equal G.shape[0]")
    return _k.csr_t_matmul(A.indptr, A.indices, vals, G, out, accumulate,
                           A.transpose_structure)


def sddmm(A, H, Vt, c=None, out=None):
    """Values of ``H @ Vt.T + c`` at the stored positions of ``A`` (n x m), in
    CSR order: a length-nnz array. ``H`` (n x k), ``Vt`` (m x k), ``c`` (m,)."""
    A = as_pattern(A)
    H = _dense(H, "H", A.dtype)
    Vt = _dense(Vt, "Vt", A.dtype)
    if c is not None:
        c = _dense(c, "c", A.dtype)
    if out is None:
        out = numpy.empty(A.nnz, dtype=A.dtype)
    return _k.sddmm(A.indptr, A.indices, H, Vt, c, out)


def column_sums(A, vals, out=None, accumulate=True):
    """Per-column sums of ``vals`` (length nnz) over ``A``'s pattern (float64
    accumulation): the bias gradient of an SDDMM."""
    A = as_pattern(A)
    vals = _dense(vals, "vals", A.dtype)
    if out is None:
        out = numpy.zeros(A.shape[1], dtype=A.dtype)
    return _k.column_sums(A.indices, vals, out, accumulate)


def masked_sq_error(pred_vals, target_vals, weights=None, grad_out=None):
    """``(loss, grad_vals)``: ``loss = sum w * (pred - target)**2`` over the
    observed entries only (float64 sum), ``grad_vals = 2 w (pred - target)``."""
    return _k.masked_sq_error(numpy.ascontiguousarray(pred_vals),
                              numpy.ascontiguousarray(target_vals),
                              None if weights is None else numpy.ascontiguousarray(weights),
                              grad_out)


adam_update = _k.adam_update


def spmm_t_adam(A, G, param, m, v, lr, beta1, beta2, eps, step, weight_decay=0.0,
                decoupled=False, data=None):
    """One Adam step on ``param`` (A.shape[1] x k) whose gradient is
    ``A.T @ G``, never materialised: each gradient row is computed in a
    per-thread buffer and applied at once. Exactly ``adam_update(param,
    spmm_t(A, G), m, v, ...)`` (bitwise), at the memory traffic of the Adam
    pass alone. For a training step that owns the gradient (no clipping or
    other reader of it)."""
    A = as_pattern(A)
    G = _dense(G, "G", A.dtype)
    vals = A.data if data is None else _dense(data, "data", A.dtype)
    if A.shape[0] != G.shape[0]:
        raise ValueError(f"A is {A.shape} but G is {G.shape}: A.shape[0] must equal G.shape[0]")
    if param.shape[0] != A.shape[1]:
        raise ValueError(f"param has shape {param.shape}; expected ({A.shape[1]}, {G.shape[1]})")
    _k.csr_t_matmul_adam(A.indptr, A.indices, vals, G, param, m, v, lr, beta1, beta2, eps,
                         step, weight_decay, decoupled, A.transpose_structure)


def sparse_dense_forward(X, W, b=None, activation="sigmoid", dW=None, db=None, ops=None):
    """Dense layer on a sparse input: ``act(X @ W + b)`` with ``X`` CSR (n x m),
    ``W`` (m x k), ``b`` (k,). Returns ``(H, backprop)``; ``backprop(dH)``
    accumulates ``dW += X.T @ dZ`` (only rows of ``W`` whose input column is
    present are nonzero) and ``db += dZ.sum(0)``, and returns None: the input is
    data, not a parameter. ``dW``/``db`` default to fresh zero arrays, exposed
    as ``backprop.dW``/``backprop.db``. The products run on ``ops`` (default:
    the active backend); on the CPU, activations in ``FUSED_ACTIVATIONS`` run
    in the SpMM kernel's epilogue, and any other backend activation works too."""
    X = as_pattern(X, W.dtype)
    ops = get_backend() if ops is None else ops
    H = ops.spmm(X, W, b, activation)

    def backprop(dH):
        dZ = dH if activation == "linear" else ops.activation_backward(activation, H, dH)
        dZ = numpy.ascontiguousarray(dZ, dtype=W.dtype)
        nonlocal dW, db
        if dW is None:
            dW = numpy.zeros_like(W)
        ops.spmm_t(X, dZ, out=dW)
        if b is not None:
            if db is None:
                db = numpy.zeros_like(b)
            db += dZ.sum(axis=0, dtype=numpy.float64).astype(db.dtype)
        backprop.dW, backprop.db = dW, db
        return None

    return H, backprop


def _decoder_param_grads(pattern, gvals, H, Vt, c, dVt, dc, ops):
    """Accumulate the decoder's parameter gradients from the per-entry output
    gradients ``gvals`` on ``pattern``: ``dVt += G.T @ H`` and ``dc += column
    sums of G``. Returns ``(G, dVt, dc)``, allocating zero gradients when None."""
    G = SparsePattern(pattern.indptr, pattern.indices, gvals, pattern.shape)
    G._transpose = pattern.transpose_structure
    if dVt is None:
        dVt = numpy.zeros_like(Vt)
    ops.spmm_t(G, H, out=dVt)
    if c is not None:
        if dc is None:
            dc = numpy.zeros_like(c)
        ops.column_sums(G, gvals, out=dc)
    return G, dVt, dc


def sampled_dense_forward(pattern, H, Vt, c=None, dVt=None, dc=None, ops=None):
    """Dense layer evaluated only at observed outputs: the values of
    ``H @ Vt.T + c`` at ``pattern``'s stored positions (length nnz, CSR order).
    Returns ``(vals, backprop)``; ``backprop(dvals)`` accumulates
    ``dVt += G.T @ H`` and ``dc += column sums of G`` where ``G`` is the sparse
    matrix of ``dvals`` on the pattern, and returns ``dH = G @ Vt``. The
    products run on ``ops`` (default: the active backend)."""
    pattern = as_pattern(pattern, H.dtype)
    ops = get_backend() if ops is None else ops
    vals = ops.sddmm(pattern, H, Vt, c)

    def backprop(dvals):
        nonlocal dVt, dc
        dvals = _dense(dvals, "dvals", H.dtype)
        G, dVt, dc = _decoder_param_grads(pattern, dvals, H, Vt, c, dVt, dc, ops)
        backprop.dVt, backprop.dc = dVt, dc
        return ops.spmm(G, Vt)

    return vals, backprop


def sampled_dense_sq_error(pattern, H, Vt, c=None, target_vals=None, weights=None,
                           dVt=None, dc=None):
    """``sampled_dense_forward`` and ``masked_sq_error`` fused: the decoder
    outputs at ``pattern``'s positions, their squared error against
    ``target_vals`` (default: ``pattern``'s values) and ``dH`` in one pass over
    the pattern, so each ``Vt`` row is fetched once per entry instead of twice.

    Returns ``(loss, vals, backprop)``; ``backprop()`` accumulates ``dVt += G.T
    @ H`` and ``dc += column sums of G`` (``G``: the loss gradient on the
    pattern) and returns ``dH``, computed in the forward pass. Same values,
    bitwise, as the unfused composition (the loss up to float64 summation order).
    """
    pattern = as_pattern(pattern, H.dtype)
    H = _dense(H, "H", pattern.dtype)
    Vt = _dense(Vt, "Vt", pattern.dtype)
    if c is not None:
        c = _dense(c, "c", pattern.dtype)
    target = pattern.data if target_vals is None else _dense(target_vals, "target_vals",
                                                             pattern.dtype)
    vals = numpy.empty(pattern.nnz, pattern.dtype)
    grad = numpy.empty(pattern.nnz, pattern.dtype)
    dH = numpy.empty_like(H)
    loss = _k.sddmm_sq_error(pattern.indptr, pattern.indices, H, Vt, c, target, vals, grad, dH,
                             None if weights is None else _dense(weights, "weights",
                                                                 pattern.dtype))

    def backprop():
        nonlocal dVt, dc
        _, dVt, dc = _decoder_param_grads(pattern, grad, H, Vt, c, dVt, dc, get_backend())
        backprop.dVt, backprop.dc = dVt, dc
        return dH

    # For callers that apply the gradient themselves (e.g. spmm_t_adam on Vt).
    backprop.grad_vals, backprop.dH = grad, dH
    return loss, vals, backprop


_STEP_PARAMS = ("W", "b", "Vt", "c")


def autorec_adam_state(W, b, Vt, c):
    """Fresh (zero) Adam moments for ``autorec_adam_step``: ``{name: (m, v)}``
    for ``"W"``, ``"b"``, ``"Vt"``, ``"c"``, each shaped and typed like the parameter."""
    return {name: (numpy.zeros_like(p), numpy.zeros_like(p))
            for name, p in zip(_STEP_PARAMS, (W, b, Vt, c))}


def autorec_adam_step(X, W, b, Vt, c, adam_state, lr, beta1, beta2, eps, step, lam_scale,
                      activation="sigmoid", input_values=None, n_blocks=None, timings=None,
                      sweep=None):
    """One exact training step of a one-hidden-layer AutoRec with Adam and L2,
    fused; updates ``W, b, Vt, c`` and the moments in ``adam_state`` in place.

    Arguments: ``X`` the batch (a SciPy CSR matrix or a ``SparsePattern``,
    samples x n_out, ``n_out = W.shape[0]``): its stored entries are the observed
    ratings and its values the targets. ``W`` (n_out x k) encoder weight, ``b``
    (k,), ``Vt`` (n_out x k) decoder weight stored transposed, ``c`` (n_out,);
    all C-contiguous, one float dtype (X's values are converted to it).
    ``adam_state``: ``{"W": (m, v), "b": (m, v), "Vt": (m, v), "c": (m, v)}``
    (``autorec_adam_state`` makes zeros). ``step`` counts from 1.
    ``input_values`` (length ``X.nnz``, CSR order of ``X``, default ``X``'s
    values): the encoder's input at the same positions, e.g. after input
    dropout (a dropped rating is a stored 0); the targets stay ``X``'s values.

    Math, with ``x`` the input rows and ``r`` the targets::

        H    = act(x @ W + b)                  act: sigmoid, relu, tanh, linear
        rhat = H @ Vt.T + c                    only at X's stored positions
        data_loss = sum over stored (r - rhat)**2
        objective = data_loss + lam_scale/2 * (|W|^2 + |Vt|^2)

    gradients of ``objective`` (the exact gradients of the dense masked
    formulation; L2 gradient ``lam_scale * W``, ``lam_scale * Vt``; none on
    ``b``, ``c``), then Adam on all four parameters, every element, as
    ``Ops.adam_update(p, g, m, v, lr, beta1, beta2, eps, step)`` with
    ``weight_decay=0, decoupled=False`` and ``g`` including the L2 term::

        m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
        p -= lr/(1 - beta1^step) * m / (sqrt(v/(1 - beta2^step)) + eps)

    (computed as ``lr*sqrt(c2)/c1 * m / (sqrt(v) + eps*sqrt(c2))``, the same
    value up to rounding). Returns ``(data_loss, reg_loss)``, floats, both at the
    parameters *before* the step: ``reg_loss = lam_scale/2 * (|W|^2 + |Vt|^2)``
    (computed inside the Adam passes). ``lam_scale`` is the L2 weight for this
    batch (AutoRec: ``lam * batch_size / n_samples``).

    Equals the unfused composition (``sparse_dense_forward``,
    ``sampled_dense_forward``, ``masked_sq_error``, backprop, ``+ lam_scale*p``,
    ``adam_update``) up to float32 rounding: predictions, dH and the Vt, c and W
    gradient rows are the same sums in the same order, except in the
    ``"outputs"`` sweep, which sums dH per block of output units.

    ``sweep`` orders the work (same math; ``fastnn._C.autorec_step.autorec_adam_step``
    has the details): ``"samples"`` runs sample by sample (encoder to dZ), then
    output unit by unit (gradient rows applied by Adam at once); its results do
    not depend on the thread count. ``"outputs"`` runs the decoder output unit
    by unit, reading Vt in order, with dH summed in ``n_blocks`` partials
    (default twice the OpenMP thread count, 1 for small problems): its bits
    depend on ``n_blocks``, never on the schedule. ``None``: ``"samples"`` (as
    fast or faster at every size measured), ``"outputs"`` when ``n_blocks`` is
    given.
    ``timings``: optional dict; each phase's seconds are added to it (profiling).
    """
    if set(adam_state) != set(_STEP_PARAMS):
        raise ValueError(f"adam_state must have keys {_STEP_PARAMS}, got {sorted(adam_state)}")
    X = as_pattern(X, W.dtype)
    (mW, vW), (mb, vb), (mVt, vVt), (mc, vc) = (adam_state[n] for n in _STEP_PARAMS)
    if input_values is not None:
        input_values = _dense(numpy.asarray(input_values).ravel(), "input_values", X.dtype)
    if X.shape[1] != W.shape[0]:
        raise ValueError(f"X is {X.shape} but W is {W.shape}: X.shape[1] must equal "
                         f"W.shape[0]")
    data_loss, sq_W, sq_V = _step.autorec_adam_step(
        X.indptr, X.indices, X.data, W, b, Vt, c, mW, vW, mb, vb, mVt, vVt, mc, vc,
        lr, beta1, beta2, eps, step, lam_scale, activation, input_values,
        # A transpose already made is reused; else the kernel makes one after its
        # own check of X (a batch's pattern is used once: no second check).
        X._transpose, n_blocks, timings, sweep)
    return data_loss, 0.5 * float(lam_scale) * (sq_W + sq_V)
