"""Recurrent cells over a whole sequence: SimpleRNN, LSTM and GRU (both of
Keras's forms: ``reset_after``, and the first form, which resets ``h_{t-1}``
before the candidate's product), forward and backpropagation through time.

Sequences are time-major, (T, N, ...). The layer computes every step's input
projection beforehand as one product; here, per step, one GEMM for the
recurrence (``h_{t-1} @ R``) and one fused pass over each row for the gate
nonlinearities, the state update and the mask. Backward, per step, one fused
pass for the gate derivatives and one GEMM for the gradient reaching
``h_{t-1}``; the recurrent kernel's gradient is one GEMM over all steps
(``dR += H_prev^T @ dGates``, k = T * N), not T small ones. Shapes and
semantics match ``Ops.rnn_forward`` / ``Ops.rnn_backward``. No layer logic
here (go_backwards and dropout masks are the layer's), no hot Python loop.

Two paths for the per-step products: up to FUSED_MAX_UNITS units ("fused",
recurrent_gemm.h) the cells' own microkernel over R packed once per call, the
gate passes fused per row block, dR accumulated per step, one thread team per
sequence; above, with recurrent dropout, and for the GRU's first form, the
OpenBLAS GEMMs described above (``set_recurrence_path`` forces either).
The path switch, the microkernel's Python entries (``small_gemm``,
``pack_panels``, ``small_gemm_packed``) and the packing of R are in
recurrent_gemm.pxi, included below; the BLAS path's loops in recurrent_blas.pxi
(which includes the GRU first form's steps, recurrent_gru0.pxi).
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.string cimport memcpy, memset
cimport numpy as cnp
import numpy

from checks cimport (check_float, check_ndim, check_c_contiguous, activation_code,
                    BLAS_INT_MAX, check_disjoint)
from gemm cimport gemm_rm

cdef extern from "recurrent_rows.h" nogil:
    void fastnn_simple_fwd_row_f32(Py_ssize_t U, float* a, const float* x, int act)
    void fastnn_simple_fwd_row_f64(Py_ssize_t U, double* a, const double* x, int act)
    void fastnn_lstm_fwd_row_f32(Py_ssize_t U, float* a, const float* x, const float* cp,
                                 float* cn, float* e, float* hn, int act, int ract)
    void fastnn_lstm_fwd_row_f64(Py_ssize_t U, double* a, const double* x, const double* cp,
                                 double* cn, double* e, double* hn, int act, int ract)
    void fastnn_gru_fwd_row_f32(Py_ssize_t U, float* a, const float* x, const float* s,
                                const float* b, const float* hp, float* e, float* hn, int act,
                                int ract)
    void fastnn_gru_fwd_row_f64(Py_ssize_t U, double* a, const double* x, const double* s,
                                const double* b, const double* hp, double* e, double* hn,
                                int act, int ract)

    void fastnn_simple_bwd_row_f32(Py_ssize_t U, const float* a, const float* g, float* dx,
                                   float* dhn, int act)
    void fastnn_simple_bwd_row_f64(Py_ssize_t U, const double* a, const double* g, double* dx,
                                   double* dhn, int act)
    void fastnn_lstm_bwd_row_f32(Py_ssize_t U, const float* a, const float* e, const float* cp,
                                 const float* g, float* dx, float* dc, float* dhn, int act,
                                 int ract)
    void fastnn_lstm_bwd_row_f64(Py_ssize_t U, const double* a, const double* e,
                                 const double* cp, const double* g, double* dx, double* dc,
                                 double* dhn, int act, int ract)
    void fastnn_gru_bwd_row_f32(Py_ssize_t U, const float* a, const float* e, const float* hp,
                                const float* g, float* dx, float* di, float* dhh, float* dhn,
                                int act, int ract)
    void fastnn_gru_bwd_row_f64(Py_ssize_t U, const double* a, const double* e,
                                const double* hp, const double* g, double* dx, double* di,
                                double* dhh, double* dhn, int act, int ract)
    # In-place activation and the derivative from the output (the header's).
    void fastnn_rnn_act_f32(float* v, Py_ssize_t n, int act)
    void fastnn_rnn_act_f64(double* v, Py_ssize_t n, int act)
    float fastnn_rnn_dact_f32(int act, float y)
    double fastnn_rnn_dact_f64(int act, double y)

cdef extern from "recurrent_gemm.h" nogil:
    enum:
        FASTNN_RG_MR
        FASTNN_RG_NR_f32
        FASTNN_RG_NR_f64
    void fastnn_rg_pack_f32(Py_ssize_t K, Py_ssize_t W, const float* src, Py_ssize_t sk,
                            Py_ssize_t sj, float* dst)
    void fastnn_rg_pack_f64(Py_ssize_t K, Py_ssize_t W, const double* src, Py_ssize_t sk,
                            Py_ssize_t sj, double* dst)
    void fastnn_rg_gemm_f32(Py_ssize_t M, Py_ssize_t W, Py_ssize_t K, const float* A,
                            Py_ssize_t lda, const float* packed, float* C, Py_ssize_t ldc,
                            int add)
    void fastnn_rg_gemm_f64(Py_ssize_t M, Py_ssize_t W, Py_ssize_t K, const double* A,
                            Py_ssize_t lda, const double* packed, double* C, Py_ssize_t ldc,
                            int add)
    void fastnn_rg_forward_f32(int nt, int cell, int act, int ract, Py_ssize_t T, Py_ssize_t N,
                               Py_ssize_t U, const float* xproj, const float* Rp,
                               const float* brec, const unsigned char* mask, float* Y, float* H,
                               float* C, float* A, float* E, float* S, int inplace)
    void fastnn_rg_forward_f64(int nt, int cell, int act, int ract, Py_ssize_t T, Py_ssize_t N,
                               Py_ssize_t U, const double* xproj, const double* Rp,
                               const double* brec, const unsigned char* mask, double* Y,
                               double* H, double* C, double* A, double* E, double* S,
                               int inplace)
    void fastnn_rg_backward_f32(int nt, int cell, int act, int ract, Py_ssize_t T, Py_ssize_t N,
                                Py_ssize_t U, const float* RTp, const unsigned char* mask,
                                const float* H, const float* C, const float* A, const float* E,
                                const float* dY, float* dX, float* DH, float* SI, float* dh,
                                float* dc, float* dy, float* dR, float* Bpk, Py_ssize_t F,
                                const float* X, const float* WTp, float* dW, float* dXin,
                                double* dbacc)
    void fastnn_rg_backward_f64(int nt, int cell, int act, int ract, Py_ssize_t T, Py_ssize_t N,
                                Py_ssize_t U, const double* RTp, const unsigned char* mask,
                                const double* H, const double* C, const double* A,
                                const double* E, const double* dY, double* dX, double* DH,
                                double* SI, double* dh, double* dc, double* dy, double* dR,
                                double* Bpk, Py_ssize_t F, const double* X, const double* WTp,
                                double* dW, double* dXin, double* dbacc)

cnp.import_array()
include "common/threads.pxi"

#: The activations the cells take (differentiable from their outputs, no parameter).
CELL_ACTIVATIONS = ("linear", "sigmoid", "tanh", "relu")
#: Cell name -> gates per unit.
CELL_GATES = {"simple": 1, "lstm": 4, "gru": 3}

cdef enum:
    CELL_SIMPLE = 0
    CELL_LSTM = 1
    CELL_GRU = 2
    CELL_GRU0 = 3   # the GRU's first form (reset_after=False)


include "recurrent_gemm.pxi"


include "recurrent_blas.pxi"


cdef int _cell_code(object cell, bint reset_after=True) except -1:
    if cell == "simple":
        return CELL_SIMPLE
    if cell == "lstm":
        return CELL_LSTM
    if cell == "gru":
        return CELL_GRU if reset_after else CELL_GRU0
    raise ValueError(f"unknown cell {cell!r}; expected one of {tuple(CELL_GATES)}")


cdef object _checked(str what, object a, object like, str like_name, tuple shape):
    check_float(what, a, like, like_name)
    if a.shape != shape:
        raise ValueError(f"{what} has shape {a.shape}; expected {shape}")
    return numpy.ascontiguousarray(a)


cdef object _checked_rec_mask(object rec_mask, object like, str like_name, Py_ssize_t N,
                              Py_ssize_t U, Py_ssize_t G):
    """The recurrent dropout mask as the kernels take it: one per gate, side
    by side (N, G*U); one mask (N, U) for every gate is repeated."""
    check_float("rec_mask", rec_mask, like, like_name)
    if rec_mask.shape == (N, U) and G > 1:
        return numpy.ascontiguousarray(numpy.tile(rec_mask, (1, G)))
    if rec_mask.shape != (N, G * U):
        raise ValueError(f"rec_mask has shape {rec_mask.shape}; expected {(N, U)} (one mask "
                         f"for every gate) or {(N, G * U)} (one per gate)")
    return numpy.ascontiguousarray(rec_mask)


cdef object _checked_mask(object mask, Py_ssize_t T, Py_ssize_t N):
    if not isinstance(mask, numpy.ndarray):
        raise TypeError(f"mask must be a numpy.ndarray, got {type(mask).__name__}")
    if mask.shape != (T, N):
        raise ValueError(f"mask has shape {mask.shape}; expected {(T, N)} (steps, batch)")
    if mask.dtype != numpy.bool_ and mask.dtype.kind not in "iu":
        raise TypeError(f"mask has dtype {mask.dtype}; expected bool (or integers)")
    return numpy.ascontiguousarray(mask != 0).view(numpy.uint8)


def rnn_forward(cell, xproj, R, h0, c0=None, mask=None, b_rec=None, rec_mask=None,
                activation="tanh", recurrent_activation="sigmoid", bint overwrite_xproj=False,
                bint reset_after=True):
    """Run cell ``cell`` ("simple", "lstm" or "gru": Keras's GRU, with
    ``reset_after`` or in its first form without) over ``xproj`` (T, N, G*U), with ``R`` (U, G*U), ``h0``
    (N, U), ``c0`` (N, U, the LSTM's), ``mask`` (T, N) bool or None,
    ``b_rec`` (3U,) (the GRU's recurrent bias) or None, ``rec_mask`` (N, U)
    (one recurrent dropout mask for every gate), (N, G*U) (one per gate, side
    by side, as Keras draws them) or None; activations among CELL_ACTIVATIONS. Returns ``(Y, H, C, A, E)``:
    outputs (N, T, U) (batch-major, as the layer returns them), states (T+1, N, U) (H[0] = h0, H[T] the final one),
    cell states (T+1, N, U) (LSTM; else None), and what ``rnn_backward``
    reads: the activated gates A (T, N, G*U) and E (T, N, U) (the first-form
    GRU's: r * h_{t-1} as its candidate's product read it)."""
    cdef int code = _cell_code(cell, reset_after)
    cdef int a_code = activation_code(activation, CELL_ACTIVATIONS)
    cdef int r_code = activation_code(recurrent_activation, CELL_ACTIVATIONS)
    check_float("xproj", xproj)
    check_ndim("xproj", xproj, 3)
    check_float("R", R, xproj, "xproj")
    check_ndim("R", R, 2)
    cdef Py_ssize_t T = xproj.shape[0], N = xproj.shape[1], U = R.shape[0]
    cdef Py_ssize_t G = CELL_GATES[cell]
    if R.shape[1] != G * U or xproj.shape[2] != G * U:
        raise ValueError(f"rnn_forward: cell {cell!r} with R of shape {R.shape} needs R "
                         f"({U}, {G * U}) and xproj (T, N, {G * U}); got R {R.shape}, "
                         f"xproj {xproj.shape}")
    if max(T * N, G * U) > BLAS_INT_MAX:
        raise ValueError(f"rnn_forward: sizes {(T, N, G * U)} exceed the 32-bit BLAS limit")
    xproj = numpy.ascontiguousarray(xproj)
    R = numpy.ascontiguousarray(R)
    h0 = _checked("h0", h0, xproj, "xproj", (N, U))
    if code == CELL_LSTM:
        if c0 is None:
            raise ValueError("rnn_forward: the LSTM needs c0")
        c0 = _checked("c0", c0, xproj, "xproj", (N, U))
    elif c0 is not None:
        raise ValueError(f"rnn_forward: cell {cell!r} has no cell state; c0 must be None")
    if b_rec is not None:
        if code != CELL_GRU:
            raise ValueError(f"rnn_forward: b_rec is the reset_after GRU's; cell {cell!r} "
                             f"(reset_after={bool(reset_after)}) takes None")
        b_rec = _checked("b_rec", b_rec, xproj, "xproj", (G * U,))
    if rec_mask is not None:
        rec_mask = _checked_rec_mask(rec_mask, xproj, "xproj", N, U, G)
    if mask is not None:
        mask = _checked_mask(mask, T, N)
    dtype = xproj.dtype
    Y = numpy.empty((N, T, U), dtype)
    H = numpy.empty((T + 1, N, U), dtype)
    H[0] = h0
    C = None
    if code == CELL_LSTM:
        C = numpy.empty((T + 1, N, U), dtype)
        C[0] = c0
    # The gates are computed over the input projection when the caller gives
    # it up (one (T, N, G*U) array less to allocate and fault in).
    if overwrite_xproj and xproj.flags.writeable:
        A = xproj
    else:
        A = numpy.empty((T, N, G * U), dtype)
    # Scratch of size 1 where a cell does not use it (a pointer must still be taken).
    e_shape = (T, N, U) if code != CELL_SIMPLE else (<object>1, 1, 1)
    s_shape = (N, G * U) if code in (CELL_GRU, CELL_GRU0) else (<object>1, 1)
    hd_shape = (N, G * U) if rec_mask is not None else (<object>1, 1)
    E = numpy.empty(e_shape, dtype)
    S = numpy.empty(s_shape, dtype)
    hd = numpy.empty(hd_shape, dtype)
    if T == 0 or N == 0 or U == 0:
        if U and T:
            Y[...] = 0
        return Y, H, C, A, E
    if dtype == numpy.float32:
        _forward_typed[float](code, a_code, r_code, xproj, R, b_rec, mask, rec_mask, Y, H, C,
                              A, E, S, hd)
    else:
        _forward_typed[double](code, a_code, r_code, xproj, R, b_rec, mask, rec_mask, Y, H, C,
                               A, E, S, hd)
    return Y, H, C, A, E


cdef object _forward_typed(int code, int act, int ract, const floating[:, :, ::1] xproj,
                         const floating[:, ::1] R, object b_rec, object mask, object rec_mask,
                         floating[:, :, ::1] Y, floating[:, :, ::1] H, object C,
                         floating[:, :, ::1] A, floating[:, :, ::1] E, floating[:, ::1] S,
                         floating[:, ::1] hd):
    # Memoryviews and pointers are taken here, with the GIL; the loop drops it.
    cdef const floating[::1] brv
    cdef const unsigned char[:, ::1] mv
    cdef const floating[:, ::1] rmv
    cdef floating[:, :, ::1] Cv
    cdef const floating* brec = NULL
    cdef const unsigned char* mp = NULL
    cdef const floating* rp = NULL
    cdef floating* cp = NULL
    if b_rec is not None:
        brv = b_rec
        brec = &brv[0]
    if mask is not None:
        mv = mask
        mp = &mv[0, 0]
    if rec_mask is not None:
        rmv = rec_mask
        rp = &rmv[0, 0]
    if C is not None:
        Cv = C
        cp = &Cv[0, 0, 0]
    cdef Py_ssize_t T = xproj.shape[0], N = xproj.shape[1], U = R.shape[0]
    cdef Py_ssize_t GU = R.shape[1], G = GU // U, g, NR
    cdef floating[::1] Rp
    cdef int nt
    if _fused(code, rec_mask, U, G, sizeof(floating)):
        # Each gate's U x U block of R packed on its own, one after another.
        NR = FASTNN_RG_NR_f32 if floating is float else FASTNN_RG_NR_f64
        Rp = numpy.empty(G * ((U + NR - 1) // NR) * NR * U,
                         numpy.float32 if floating is float else numpy.float64)
        nt = fastnn_threads(<double>N * GU * U)
        with nogil:
            for g in range(G):
                _pack_ptr(&R[0, 0] + g * U, U, U, GU, 1, &Rp[0] + g * ((U + NR - 1) // NR) * NR * U)
            if floating is float:
                fastnn_rg_forward_f32(nt, code, act, ract, T, N, U, &xproj[0, 0, 0], &Rp[0], brec,
                                      mp, &Y[0, 0, 0], &H[0, 0, 0], cp, &A[0, 0, 0],
                                      &E[0, 0, 0], &S[0, 0], &A[0, 0, 0] == &xproj[0, 0, 0])
            else:
                fastnn_rg_forward_f64(nt, code, act, ract, T, N, U, &xproj[0, 0, 0], &Rp[0], brec,
                                      mp, &Y[0, 0, 0], &H[0, 0, 0], cp, &A[0, 0, 0],
                                      &E[0, 0, 0], &S[0, 0], &A[0, 0, 0] == &xproj[0, 0, 0])
        return
    with nogil:
        _forward(code, act, ract, xproj.shape[0], xproj.shape[1], R.shape[0], &xproj[0, 0, 0],
                 &R[0, 0], brec, mp, rp, &Y[0, 0, 0], &H[0, 0, 0], cp, &A[0, 0, 0],
                 &E[0, 0, 0], &S[0, 0], &hd[0, 0])


def rnn_backward(cell, R, H, C, A, E, dY, dhT=None, dcT=None, mask=None, rec_mask=None,
                 dR=None, db_rec=None, activation="tanh", recurrent_activation="sigmoid",
                 bint reset_after=True, x=None, W=None, dW=None, db_in=None,
                 bint need_dx=False):
    """Backpropagation through time for ``rnn_forward``'s outputs (``H``,
    ``C``, ``A``, ``E`` as it returned them, the other arguments as it got
    them). ``dY`` (N, T, U): the outputs' gradient; ``dhT``/``dcT`` (N, U) or
    None: the final states'. Accumulates ``dR += H_prev^T @ dGates`` (``dR``
    (U, G*U) C-contiguous, writeable, or None to skip) and the GRU's
    ``db_rec += ...`` ((3U,), or None). Returns ``(dxproj, dh0, dc0)``:
    (T, N, G*U), (N, U), (N, U) or None.

    With ``W`` (F, G*U), the input kernel that made ``xproj = x @ W + b_in``,
    the input projection's gradients too, each step's while its gates are in
    cache (on the fused path; through BLAS after the sequence otherwise):
    ``dW += x^T @ dxproj`` (``x`` (T, N, F) the rows as projected, ``dW``
    (F, G*U) C-contiguous, writeable, or None), ``db_in += `` its column sums
    ((G*U,) or None), and the first element returned is then the input's
    gradient ``dxproj @ W^T`` (T, N, F) (None unless ``need_dx``)."""
    cdef int code = _cell_code(cell, reset_after)
    cdef int a_code = activation_code(activation, CELL_ACTIVATIONS)
    cdef int r_code = activation_code(recurrent_activation, CELL_ACTIVATIONS)
    check_float("R", R)
    check_ndim("R", R, 2)
    cdef Py_ssize_t U = R.shape[0], G = CELL_GATES[cell]
    if R.shape[1] != G * U:
        raise ValueError(f"rnn_backward: R has shape {R.shape}; cell {cell!r} needs "
                         f"({U}, {G * U})")
    check_float("dY", dY, R, "R")
    check_ndim("dY", dY, 3)
    cdef Py_ssize_t N = dY.shape[0], T = dY.shape[1]
    if dY.shape[2] != U:
        raise ValueError(f"rnn_backward: dY has shape {dY.shape}; expected {(N, T, U)}")
    R = numpy.ascontiguousarray(R)
    dY = numpy.ascontiguousarray(dY)
    H = _checked("H", H, R, "R", (T + 1, N, U))
    A = _checked("A", A, R, "R", (T, N, G * U))
    if code != CELL_SIMPLE:
        E = _checked("E", E, R, "R", (T, N, U))
    if code == CELL_LSTM:
        C = _checked("C", C, R, "R", (T + 1, N, U))
    dh = (numpy.zeros((N, U), R.dtype) if dhT is None
          else _checked("dhT", dhT, R, "R", (N, U)).copy())
    dc = None
    if code == CELL_LSTM:
        dc = numpy.zeros((N, U), R.dtype) if dcT is None else \
            _checked("dcT", dcT, R, "R", (N, U)).copy()
    if mask is not None:
        mask = _checked_mask(mask, T, N)
    if rec_mask is not None:
        rec_mask = _checked_rec_mask(rec_mask, R, "R", N, U, G)
    if dR is not None:
        check_float("dR", dR, R, "R")
        if dR.shape != (U, G * U):
            raise ValueError(f"rnn_backward: dR has shape {dR.shape}; expected {(U, G * U)}")
        check_c_contiguous("dR", dR, writeable=True)
    if db_rec is not None:
        if code != CELL_GRU:
            raise ValueError(f"rnn_backward: db_rec is the reset_after GRU's; cell {cell!r} "
                             f"(reset_after={bool(reset_after)}) takes None")
        check_float("db_rec", db_rec, R, "R")
        if db_rec.shape != (G * U,):
            raise ValueError(f"rnn_backward: db_rec has shape {db_rec.shape}; expected "
                             f"{(G * U,)}")
        check_c_contiguous("db_rec", db_rec, writeable=True)
    # dR and db_rec are written while the states and dX are read (one GEMM):
    # no overlap with what is read, nor with each other. dR may not be R either.
    inputs = {k: v for k, v in (("R", R), ("H", H), ("C", C), ("A", A), ("E", E), ("dY", dY),
                                ("dhT", dhT), ("dcT", dcT), ("rec_mask", rec_mask))
              if isinstance(v, numpy.ndarray)}  # a cell's unused arguments are not read
    check_disjoint("dR", dR, inputs)
    check_disjoint("db_rec", db_rec, dict(inputs, dR=dR))
    cdef Py_ssize_t F = 0
    dXin = None
    if W is not None:
        check_float("W", W, R, "R")
        check_ndim("W", W, 2)
        if W.shape[1] != G * U:
            raise ValueError(f"rnn_backward: W has shape {W.shape}; expected (F, {G * U})")
        F = W.shape[0]
        W = numpy.ascontiguousarray(W)
        if dW is not None and x is None:
            raise ValueError("rnn_backward: dW needs x, the rows as projected, of "
                             f"shape {(T, N, F)}")
        if x is not None:
            x = _checked("x", x, R, "R", (T, N, F))
        if dW is not None:
            check_float("dW", dW, R, "R")
            if dW.shape != (F, G * U):
                raise ValueError(f"rnn_backward: dW has shape {dW.shape}; expected "
                                 f"{(F, G * U)}")
            check_c_contiguous("dW", dW, writeable=True)
        if db_in is not None:
            check_float("db_in", db_in, R, "R")
            if db_in.shape != (G * U,):
                raise ValueError(f"rnn_backward: db_in has shape {db_in.shape}; expected "
                                 f"{(G * U,)}")
            check_c_contiguous("db_in", db_in, writeable=True)
        inputs.update(W=W)
        if x is not None:
            inputs.update(x=x)
        check_disjoint("dW", dW, dict(inputs, dR=dR, db_rec=db_rec))
        check_disjoint("db_in", db_in, dict(inputs, dR=dR, db_rec=db_rec, dW=dW))
        if need_dx:
            dXin = (numpy.empty if U else numpy.zeros)((T, N, F), R.dtype)
    elif x is not None or dW is not None or db_in is not None or need_dx:
        raise ValueError("rnn_backward: x, dW, db_in and need_dx go with W, the input "
                         "kernel; W is None")
    dX = numpy.empty((T, N, G * U), R.dtype)
    # The GRU's candidate block of its recurrent product's gradient, and a step's scratch.
    gru = code in (CELL_GRU, CELL_GRU0)
    DH = numpy.empty((T, N, U) if gru else (<object>1, 1, 1), R.dtype)
    # (Two steps' worth: the fused path alternates them, so that a thread's gate pass
    # never writes what another's product of the step before still reads.)
    SI = numpy.empty((2 * N, G * U) if gru else (<object>1, 1), R.dtype)
    if T == 0 or N == 0 or U == 0:
        return (dX if W is None else dXin), dh, dc
    # The states as the recurrent product saw them (through dropout: gate by
    # gate, side by side, (T, N, G*U)).
    Hp = H[:T] if rec_mask is None else numpy.tile(H[:T], (1, 1, G)) * rec_mask
    if F == 0:  # no input features: no dW, dXin is empty (db_in still sums dxproj)
        x = dW = None
    if R.dtype == numpy.float32:
        _backward_typed[float](code, a_code, r_code, R, mask, rec_mask, H, C, A, E, dY, dX, DH,
                               SI, dh, dc, Hp, dR, db_rec, x, W, dW, db_in,
                               dXin if F else None)
    else:
        _backward_typed[double](code, a_code, r_code, R, mask, rec_mask, H, C, A, E, dY, dX,
                                DH, SI, dh, dc, Hp, dR, db_rec, x, W, dW, db_in,
                                dXin if F else None)
    return (dX if W is None else dXin), dh, dc


cdef object _backward_typed(int code, int act, int ract, const floating[:, ::1] R, object mask,
                          object rec_mask, const floating[:, :, ::1] H, object C,
                          const floating[:, :, ::1] A, object E, const floating[:, :, ::1] dY,
                          floating[:, :, ::1] dX, floating[:, :, ::1] DH, floating[:, ::1] SI,
                          floating[:, ::1] dh,
                          object dc, const floating[:, :, ::1] Hp, object dR, object db_rec,
                          object x, object W, object dW, object db_in, object dXin):
    cdef Py_ssize_t N = dY.shape[0], T = dY.shape[1], U = R.shape[0], GU = R.shape[1]
    cdef Py_ssize_t G = GU // U if U else 1, g
    cdef const unsigned char[:, ::1] mv
    cdef const floating[:, ::1] rmv
    cdef const floating[:, :, ::1] Cv
    cdef const floating[:, :, ::1] Ev
    cdef floating[:, ::1] dcv
    cdef floating[:, ::1] dRv
    cdef floating[::1] dbv
    cdef const unsigned char* mp = NULL
    cdef const floating* rp = NULL
    cdef const floating* cp = NULL
    cdef const floating* ep = NULL
    cdef floating* dcp = NULL
    cdef floating* dRp = NULL
    cdef floating* dbp = NULL
    # The input projection's gradients (rnn_backward's W mode), each NULL to skip.
    cdef const floating[:, :, ::1] xv
    cdef const floating[:, ::1] Wv
    cdef floating[:, ::1] dWv
    cdef floating[::1] dbiv
    cdef floating[:, :, ::1] dXinv
    cdef const floating* xip = NULL
    cdef const floating* Wp = NULL
    cdef floating* dWp = NULL
    cdef floating* dbip = NULL
    cdef floating* dXinp = NULL
    cdef Py_ssize_t F = 0 if W is None else W.shape[0]
    cdef double[::1] dbacc
    cdef floating[::1] WTp
    if x is not None:
        xv = x
        xip = &xv[0, 0, 0]
    if dW is not None:
        dWv = dW
        dWp = &dWv[0, 0]
    if db_in is not None:
        dbiv = db_in
        dbip = &dbiv[0]
    if dXin is not None:
        Wv = W
        Wp = &Wv[0, 0]
        dXinv = dXin
        dXinp = &dXinv[0, 0, 0]
    if mask is not None:
        mv = mask
        mp = &mv[0, 0]
    if rec_mask is not None:
        rmv = rec_mask
        rp = &rmv[0, 0]
    if C is not None and code == CELL_LSTM:
        Cv = C
        cp = &Cv[0, 0, 0]
    if code != CELL_SIMPLE:
        Ev = E
        ep = &Ev[0, 0, 0]
    if dc is not None:
        dcv = dc
        dcp = &dcv[0, 0]
    if dR is not None:
        dRv = dR
        dRp = &dRv[0, 0]
    if db_rec is not None:
        dbv = db_rec
        dbp = &dbv[0]
    dtype = numpy.float32 if floating is float else numpy.float64
    cdef floating[:, ::1] dy = numpy.empty((N, U), dtype)
    cdef floating[:, ::1] S = numpy.empty((N, U), dtype)
    cdef double[::1] acc = numpy.empty(GU, numpy.float64)
    cdef floating[::1] RTp
    cdef floating[::1] Bpk
    cdef int nt
    cdef Py_ssize_t NR = FASTNN_RG_NR_f32 if floating is float else FASTNN_RG_NR_f64
    cdef bint fused = _fused(code, rec_mask, U, G, sizeof(floating))
    if fused:
        # R^T (GU x U) packed once for the step's dh_{t-1} += dGates @ R^T.
        RTp = numpy.empty((U + NR - 1) // NR * NR * GU, dtype)
        # dR's step operand, dGates[t] packed (G * P panels of N x NR).
        Bpk = numpy.empty(G * ((U + NR - 1) // NR) * N * NR, dtype)
        nt = fastnn_threads(<double>N * GU * U)
        # W^T (GU x F) packed once for the step's dXin = dX @ W^T; db_in's sums.
        WTp = numpy.empty(max((F + NR - 1) // NR * NR * GU, 1), dtype)
        dbacc = numpy.zeros(GU if dbip != NULL else 1, numpy.float64)
    with nogil:
        if fused:
            _pack_ptr(&R[0, 0], GU, U, 1, GU, &RTp[0])
            if dXinp != NULL:
                _pack_ptr(Wp, GU, F, 1, GU, &WTp[0])
            memset(&dy[0, 0], 0, N * U * sizeof(floating))
            if floating is float:
                fastnn_rg_backward_f32(nt, code, act, ract, T, N, U, &RTp[0], mp, &H[0, 0, 0],
                                       cp, &A[0, 0, 0], ep, &dY[0, 0, 0], &dX[0, 0, 0],
                                       &DH[0, 0, 0], &SI[0, 0], &dh[0, 0], dcp, &dy[0, 0],
                                       dRp, &Bpk[0], F, xip, &WTp[0], dWp, dXinp,
                                       &dbacc[0] if dbip != NULL else NULL)
            else:
                fastnn_rg_backward_f64(nt, code, act, ract, T, N, U, &RTp[0], mp, &H[0, 0, 0],
                                       cp, &A[0, 0, 0], ep, &dY[0, 0, 0], &dX[0, 0, 0],
                                       &DH[0, 0, 0], &SI[0, 0], &dh[0, 0], dcp, &dy[0, 0],
                                       dRp, &Bpk[0], F, xip, &WTp[0], dWp, dXinp,
                                       &dbacc[0] if dbip != NULL else NULL)
            # dR and the input side are done (per step); what follows adds the
            # GRU's db_rec only.
            dRp = NULL
            if dbip != NULL:
                for g in range(GU):
                    dbip[g] += <floating>dbacc[g]
            dWp = dbip = dXinp = NULL
        else:
            _backward(code, act, ract, T, N, U, &R[0, 0], mp, rp, &H[0, 0, 0], cp, &A[0, 0, 0],
                      ep, &dY[0, 0, 0], &dX[0, 0, 0], &DH[0, 0, 0], &SI[0, 0], &dh[0, 0], dcp,
                      &dy[0, 0], &S[0, 0])
        if code == CELL_GRU0:
            # z and r from the states (as they read them), the candidate's
            # block from r * h_{t-1} (E) and its product's gradient (DH).
            if rp != NULL:
                for g in range(2):
                    _weight_grads(T * N, U, U, &Hp[0, 0, g * U], GU, &dX[0, 0, g * U], GU,
                                  dRp + g * U if dRp != NULL else NULL, GU, NULL, &acc[0])
            else:
                _weight_grads(T * N, U, 2 * U, &Hp[0, 0, 0], U, &dX[0, 0, 0], GU, dRp, GU,
                              NULL, &acc[0])
            _weight_grads(T * N, U, U, ep, U, &DH[0, 0, 0], U,
                          dRp + 2 * U if dRp != NULL else NULL, GU, NULL, &acc[0])
        elif rp != NULL:
            # Gate by gate, each from the states as it read them.
            for g in range(G):
                if code == CELL_GRU and g == 2:
                    _weight_grads(T * N, U, U, &Hp[0, 0, 2 * U], GU, &DH[0, 0, 0], U,
                                  dRp + 2 * U if dRp != NULL else NULL, GU,
                                  dbp + 2 * U if dbp != NULL else NULL, &acc[0])
                else:
                    _weight_grads(T * N, U, U, &Hp[0, 0, g * U], GU, &dX[0, 0, g * U], GU,
                                  dRp + g * U if dRp != NULL else NULL, GU,
                                  dbp + g * U if dbp != NULL else NULL, &acc[0])
        elif code == CELL_GRU:
            # dR's z and r blocks from dX's, the candidate block from DH.
            _weight_grads(T * N, U, 2 * U, &Hp[0, 0, 0], U, &dX[0, 0, 0], GU, dRp, GU, dbp,
                          &acc[0])
            _weight_grads(T * N, U, U, &Hp[0, 0, 0], U, &DH[0, 0, 0], U,
                          dRp + 2 * U if dRp != NULL else NULL, GU,
                          dbp + 2 * U if dbp != NULL else NULL, &acc[0])
        else:
            _weight_grads(T * N, U, GU, &Hp[0, 0, 0], U, &dX[0, 0, 0], GU, dRp, GU, dbp,
                          &acc[0])
        # The input projection's gradients after the sequence (the BLAS path;
        # the fused path did them per step).
        if dWp != NULL or dbip != NULL:
            _weight_grads(T * N, F, GU, xip, F, &dX[0, 0, 0], GU, dWp, GU, dbip, &acc[0])
        if dXinp != NULL:
            gemm_rm(False, True, <int>(T * N), <int>F, <int>GU, 1, &dX[0, 0, 0], <int>GU, Wp,
                    <int>GU, 0, dXinp, <int>F)
