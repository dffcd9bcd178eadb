"""Recurrent cells over a whole sequence: SimpleRNN, LSTM and GRU (Keras's
``reset_after`` form), forward and backpropagation through time.

Sequences are time-major, (T, N, ...). The layer computes every step's input
projection beforehand as one product; here, per step, one GEMM for the
recurrence (``h_{t-1} @ R``) and one fused pass over each row for the gate
nonlinearities, the state update and the mask. Backward, per step, one fused
pass for the gate derivatives and one GEMM for the gradient reaching
``h_{t-1}``; the recurrent kernel's gradient is one GEMM over all steps
(``dR += H_prev^T @ dGates``, k = T * N), not T small ones. Shapes and
semantics match ``Ops.rnn_forward`` / ``Ops.rnn_backward``. No layer logic
here (go_backwards and dropout masks are the layer's), no hot Python loop.
"""
from cython cimport floating
from libc.string cimport memcpy, memset
cimport numpy as cnp
import numpy

from checks cimport check_float, check_ndim, check_c_contiguous, activation_code, BLAS_INT_MAX
from elementwise cimport act_forward_run
from activation_codes cimport ACT_LINEAR, ACT_SIGMOID, ACT_TANH, ACT_RELU
from gemm cimport gemm_rm

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


cdef inline floating _dact(int code, floating y) noexcept nogil:
    """The activation's derivative from its output."""
    if code == ACT_SIGMOID:
        return y * (1 - y)
    if code == ACT_TANH:
        return 1 - y * y
    if code == ACT_RELU:
        return 1 if y > 0 else 0
    return 1


cdef void _forward(int cell, int act, int ract, Py_ssize_t T, Py_ssize_t N, Py_ssize_t U,
                   const floating* xproj, const floating* R, const floating* brec,
                   const unsigned char* mask, const floating* rmask,
                   floating* Y, floating* H, floating* C, floating* A, floating* E,
                   floating* S, floating* hd) noexcept nogil:
    """H[0] (and C[0]) hold the initial state. Per step t: A[t] the activated
    gates (SimpleRNN: h_new), E[t] LSTM's act(c_new) or GRU's recurrent
    candidate term (h_prev @ R_h + b_h); S a (N, GU) scratch for the GRU's
    recurrent product, hd a (N, U) scratch for the dropped-out h_prev."""
    cdef Py_ssize_t G = 1 if cell == CELL_SIMPLE else (4 if cell == CELL_LSTM else 3)
    cdef Py_ssize_t GU = G * U, t, n, j
    cdef const floating* hprev
    cdef const floating* hin
    cdef const floating* x
    cdef const floating* cp
    cdef floating* a
    cdef floating* s
    cdef floating* hn
    cdef floating* cn
    cdef floating* e
    cdef floating* y
    cdef floating zj
    cdef bint keep
    for t in range(T):
        hprev = H + t * N * U
        hin = hprev
        if rmask != NULL:
            for j in range(N * U):
                hd[j] = hprev[j] * rmask[j]
            hin = hd
        # The recurrent product: straight into the gates, or (GRU) into S,
        # whose candidate block the reset gate scales before it is added.
        if cell == CELL_GRU:
            gemm_rm(False, False, <int>N, <int>GU, <int>U, 1, hin, <int>U, R, <int>GU, 0,
                    S, <int>GU)
        else:
            gemm_rm(False, False, <int>N, <int>GU, <int>U, 1, hin, <int>U, R, <int>GU, 0,
                    A + t * N * GU, <int>GU)
        for n in range(N):
            x = xproj + (t * N + n) * GU
            a = A + (t * N + n) * GU
            hn = H + ((t + 1) * N + n) * U
            y = Y + (t * N + n) * U
            keep = mask == NULL or mask[t * N + n] != 0
            if cell == CELL_SIMPLE:
                for j in range(U):
                    a[j] += x[j]
                act_forward_run(act, a, a, U, 0)
                for j in range(U):
                    hn[j] = a[j]
            elif cell == CELL_LSTM:
                cp = C + (t * N + n) * U
                cn = C + ((t + 1) * N + n) * U
                e = E + (t * N + n) * U
                for j in range(GU):
                    a[j] += x[j]
                act_forward_run(ract, a, a, 2 * U, 0)
                act_forward_run(act, a + 2 * U, a + 2 * U, U, 0)
                act_forward_run(ract, a + 3 * U, a + 3 * U, U, 0)
                for j in range(U):
                    cn[j] = a[U + j] * cp[j] + a[j] * a[2 * U + j]
                act_forward_run(act, cn, e, U, 0)
                for j in range(U):
                    hn[j] = a[3 * U + j] * e[j]
                if not keep:
                    memcpy(cn, cp, U * sizeof(floating))
            else:
                s = S + n * GU
                e = E + (t * N + n) * U
                for j in range(2 * U):
                    a[j] = x[j] + s[j] + (brec[j] if brec != NULL else 0)
                act_forward_run(ract, a, a, 2 * U, 0)
                for j in range(U):
                    e[j] = s[2 * U + j] + (brec[2 * U + j] if brec != NULL else 0)
                    a[2 * U + j] = x[2 * U + j] + a[U + j] * e[j]
                act_forward_run(act, a + 2 * U, a + 2 * U, U, 0)
                for j in range(U):
                    zj = a[j]
                    hn[j] = zj * hprev[n * U + j] + (1 - zj) * a[2 * U + j]
            if keep:
                memcpy(y, hn, U * sizeof(floating))
            else:
                # A padded step: the state stays, the output repeats the last one.
                memcpy(hn, hprev + n * U, U * sizeof(floating))
                if t == 0:
                    memset(y, 0, U * sizeof(floating))
                else:
                    memcpy(y, y - N * U, U * sizeof(floating))


cdef void _backward(int cell, int act, int ract, Py_ssize_t T, Py_ssize_t N, Py_ssize_t U,
                    const floating* R, const unsigned char* mask, const floating* rmask,
                    const floating* H, const floating* C, const floating* A, const floating* E,
                    const floating* dY, floating* dX, floating* dI, floating* dh, floating* dc,
                    floating* dy, floating* tmp, floating* S) noexcept nogil:
    """dh (and dc) hold the final states' gradients on entry, the initial
    states' on return. dX[t]: the gradient of the input projection; dI[t]
    (the GRU's; dX itself otherwise) of the recurrent product's output."""
    cdef Py_ssize_t G = 1 if cell == CELL_SIMPLE else (4 if cell == CELL_LSTM else 3)
    cdef Py_ssize_t GU = G * U, t, n, j
    cdef const floating* a
    cdef const floating* e
    cdef const floating* hp
    cdef const floating* cp
    cdef const floating* gy
    cdef floating* dx
    cdef floating* di
    cdef floating* dhn
    cdef floating* dcn
    cdef floating* dyn
    cdef floating g, dcj, zj, dph
    cdef bint keep
    memset(dy, 0, N * U * sizeof(floating))
    for t in range(T - 1, -1, -1):
        for n in range(N):
            keep = mask == NULL or mask[t * N + n] != 0
            gy = dY + (t * N + n) * U
            dhn = dh + n * U
            dyn = dy + n * U
            dx = dX + (t * N + n) * GU
            di = dI + (t * N + n) * GU
            if not keep:
                # The step passed the state and the output on unchanged.
                for j in range(U):
                    dyn[j] += gy[j]
                memset(dx, 0, GU * sizeof(floating))
                if di != dx:
                    memset(di, 0, GU * sizeof(floating))
                continue
            for j in range(U):
                tmp[j] = dhn[j] + gy[j] + dyn[j]  # the gradient of this step's h_new
                dyn[j] = 0
            a = A + (t * N + n) * GU
            if cell == CELL_SIMPLE:
                for j in range(U):
                    dx[j] = tmp[j] * _dact(act, a[j])
                    dhn[j] = 0
            elif cell == CELL_LSTM:
                e = E + (t * N + n) * U
                cp = C + (t * N + n) * U
                dcn = dc + n * U
                for j in range(U):
                    dcj = dcn[j] + tmp[j] * a[3 * U + j] * _dact(act, e[j])
                    dx[j] = dcj * a[2 * U + j] * _dact(ract, a[j])
                    dx[U + j] = dcj * cp[j] * _dact(ract, a[U + j])
                    dx[2 * U + j] = dcj * a[j] * _dact(act, a[2 * U + j])
                    dx[3 * U + j] = tmp[j] * e[j] * _dact(ract, a[3 * U + j])
                    dcn[j] = dcj * a[U + j]
                    dhn[j] = 0
            else:
                e = E + (t * N + n) * U
                hp = H + (t * N + n) * U
                for j in range(U):
                    zj = a[j]
                    g = tmp[j]
                    dx[j] = g * (hp[j] - a[2 * U + j]) * _dact(ract, zj)
                    dph = g * (1 - zj) * _dact(act, a[2 * U + j])
                    dx[U + j] = dph * e[j] * _dact(ract, a[U + j])
                    dx[2 * U + j] = dph
                    di[j] = dx[j]
                    di[U + j] = dx[U + j]
                    di[2 * U + j] = dph * a[U + j]
                    dhn[j] = g * zj
        # dh_{t-1} += dGates @ R^T (through the dropout mask when there is one).
        if rmask == NULL:
            gemm_rm(False, True, <int>N, <int>U, <int>GU, 1, dI + t * N * GU, <int>GU, R,
                    <int>GU, 1, dh, <int>U)
        else:
            gemm_rm(False, True, <int>N, <int>U, <int>GU, 1, dI + t * N * GU, <int>GU, R,
                    <int>GU, 0, S, <int>U)
            for j in range(N * U):
                dh[j] += S[j] * rmask[j]


cdef void _weight_grads(Py_ssize_t TN, Py_ssize_t U, Py_ssize_t GU, const floating* Hp,
                        const floating* dI, floating* dR, floating* db, double* acc) noexcept nogil:
    """dR += Hp^T @ dI over all T*N rows; db += the column sums of dI (float64,
    rows in order: deterministic)."""
    cdef Py_ssize_t i, j
    cdef const floating* row
    if dR != NULL:
        gemm_rm(True, False, <int>U, <int>GU, <int>TN, 1, Hp, <int>U, dI, <int>GU, 1, dR,
                <int>GU)
    if db != NULL:
        for j in range(GU):
            acc[j] = 0
        for i in range(TN):
            row = dI + i * GU
            for j in range(GU):
                acc[j] += row[j]
        for j in range(GU):
            db[j] += <floating>acc[j]


cdef int _cell_code(object cell) except -1:
    if cell == "simple":
        return CELL_SIMPLE
    if cell == "lstm":
        return CELL_LSTM
    if cell == "gru":
        return CELL_GRU
    raise ValueError(f"unknown cell {cell!r}; expected one of {tuple(CELL_GATES)}")


cdef object _checked(str what, object a, object like, tuple shape):
    check_float(what, a, like)
    if a.shape != shape:
        raise ValueError(f"{what} has shape {a.shape}; expected {shape}")
    return numpy.ascontiguousarray(a)


cdef object _checked_mask(object mask, Py_ssize_t T, Py_ssize_t N):
    if not isinstance(mask, numpy.ndarray):
        raise TypeError(f"mask must be a numpy.ndarray, got {type(mask).__name__}")
    if mask.shape != (T, N):
        raise ValueError(f"mask has shape {mask.shape}; expected {(T, N)} (steps, batch)")
    if mask.dtype != numpy.bool_ and mask.dtype.kind not in "iu":
        raise TypeError(f"mask has dtype {mask.dtype}; expected bool (or integers)")
    return numpy.ascontiguousarray(mask != 0).view(numpy.uint8)


def rnn_forward(cell, xproj, R, h0, c0=None, mask=None, b_rec=None, rec_mask=None,
                activation="tanh", recurrent_activation="sigmoid"):
    """Run cell ``cell`` ("simple", "lstm" or "gru": Keras's GRU with
    ``reset_after``) over ``xproj`` (T, N, G*U), with ``R`` (U, G*U), ``h0``
    (N, U), ``c0`` (N, U, the LSTM's), ``mask`` (T, N) bool or None,
    ``b_rec`` (3U,) (the GRU's recurrent bias) or None, ``rec_mask`` (N, U)
    or None; activations among CELL_ACTIVATIONS. Returns ``(Y, H, C, A, E)``:
    outputs (T, N, U), states (T+1, N, U) (H[0] = h0, H[T] the final one),
    cell states (T+1, N, U) (LSTM; else None), and what ``rnn_backward``
    reads: the activated gates A (T, N, G*U) and E (T, N, U)."""
    cdef int code = _cell_code(cell)
    cdef int a_code = activation_code(activation, CELL_ACTIVATIONS)
    cdef int r_code = activation_code(recurrent_activation, CELL_ACTIVATIONS)
    check_float("xproj", xproj)
    check_ndim("xproj", xproj, 3)
    check_float("R", R, xproj)
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
    h0 = _checked("h0", h0, xproj, (N, U))
    if code == CELL_LSTM:
        if c0 is None:
            raise ValueError("rnn_forward: the LSTM needs c0")
        c0 = _checked("c0", c0, xproj, (N, U))
    elif c0 is not None:
        raise ValueError(f"rnn_forward: cell {cell!r} has no cell state; c0 must be None")
    if b_rec is not None:
        if code != CELL_GRU:
            raise ValueError(f"rnn_forward: b_rec is the GRU's; cell {cell!r} takes None")
        b_rec = _checked("b_rec", b_rec, xproj, (G * U,))
    if rec_mask is not None:
        rec_mask = _checked("rec_mask", rec_mask, xproj, (N, U))
    if mask is not None:
        mask = _checked_mask(mask, T, N)
    dtype = xproj.dtype
    Y = numpy.empty((T, N, U), dtype)
    H = numpy.empty((T + 1, N, U), dtype)
    H[0] = h0
    C = None
    if code == CELL_LSTM:
        C = numpy.empty((T + 1, N, U), dtype)
        C[0] = c0
    A = numpy.empty((T, N, G * U), dtype)
    # Scratch of size 1 where a cell does not use it (a pointer must still be taken).
    e_shape = (T, N, U) if code != CELL_SIMPLE else (<object>1, 1, 1)
    s_shape = (N, G * U) if code == CELL_GRU else (<object>1, 1)
    hd_shape = (N, U) if rec_mask is not None else (<object>1, 1)
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
    with nogil:
        _forward(code, act, ract, xproj.shape[0], xproj.shape[1], R.shape[0], &xproj[0, 0, 0],
                 &R[0, 0], brec, mp, rp, &Y[0, 0, 0], &H[0, 0, 0], cp, &A[0, 0, 0],
                 &E[0, 0, 0], &S[0, 0], &hd[0, 0])


def rnn_backward(cell, R, H, C, A, E, dY, dhT=None, dcT=None, mask=None, rec_mask=None,
                 dR=None, db_rec=None, activation="tanh", recurrent_activation="sigmoid"):
    """Backpropagation through time for ``rnn_forward``'s outputs (``H``,
    ``C``, ``A``, ``E`` as it returned them, the other arguments as it got
    them). ``dY`` (T, N, U): the outputs' gradient; ``dhT``/``dcT`` (N, U) or
    None: the final states'. Accumulates ``dR += H_prev^T @ dGates`` (``dR``
    (U, G*U) C-contiguous, writeable, or None to skip) and the GRU's
    ``db_rec += ...`` ((3U,), or None). Returns ``(dxproj, dh0, dc0)``:
    (T, N, G*U), (N, U), (N, U) or None."""
    cdef int code = _cell_code(cell)
    cdef int a_code = activation_code(activation, CELL_ACTIVATIONS)
    cdef int r_code = activation_code(recurrent_activation, CELL_ACTIVATIONS)
    check_float("R", R)
    check_ndim("R", R, 2)
    cdef Py_ssize_t U = R.shape[0], G = CELL_GATES[cell]
    if R.shape[1] != G * U:
        raise ValueError(f"rnn_backward: R has shape {R.shape}; cell {cell!r} needs "
                         f"({U}, {G * U})")
    check_float("dY", dY, R)
    check_ndim("dY", dY, 3)
    cdef Py_ssize_t T = dY.shape[0], N = dY.shape[1]
    if dY.shape[2] != U:
        raise ValueError(f"rnn_backward: dY has shape {dY.shape}; expected {(T, N, U)}")
    R = numpy.ascontiguousarray(R)
    dY = numpy.ascontiguousarray(dY)
    H = _checked("H", H, R, (T + 1, N, U))
    A = _checked("A", A, R, (T, N, G * U))
    if code != CELL_SIMPLE:
        E = _checked("E", E, R, (T, N, U))
    if code == CELL_LSTM:
        C = _checked("C", C, R, (T + 1, N, U))
    dh = numpy.zeros((N, U), R.dtype) if dhT is None else _checked("dhT", dhT, R, (N, U)).copy()
    dc = None
    if code == CELL_LSTM:
        dc = numpy.zeros((N, U), R.dtype) if dcT is None else \
            _checked("dcT", dcT, R, (N, U)).copy()
    if mask is not None:
        mask = _checked_mask(mask, T, N)
    if rec_mask is not None:
        rec_mask = _checked("rec_mask", rec_mask, R, (N, U))
    if dR is not None:
        check_float("dR", dR, R)
        if dR.shape != (U, G * U):
            raise ValueError(f"rnn_backward: dR has shape {dR.shape}; expected {(U, G * U)}")
        check_c_contiguous("dR", dR, writeable=True)
    if db_rec is not None:
        if code != CELL_GRU:
            raise ValueError(f"rnn_backward: db_rec is the GRU's; cell {cell!r} takes None")
        check_float("db_rec", db_rec, R)
        if db_rec.shape != (G * U,):
            raise ValueError(f"rnn_backward: db_rec has shape {db_rec.shape}; expected "
                             f"{(G * U,)}")
        check_c_contiguous("db_rec", db_rec, writeable=True)
    dX = numpy.empty((T, N, G * U), R.dtype)
    dI = numpy.empty((T, N, G * U), R.dtype) if code == CELL_GRU else dX
    if T == 0 or N == 0 or U == 0:
        return dX, dh, dc
    # The states as the recurrent product saw them (through dropout).
    Hp = H[:T] if rec_mask is None else H[:T] * rec_mask
    if R.dtype == numpy.float32:
        _backward_typed[float](code, a_code, r_code, R, mask, rec_mask, H, C, A, E, dY, dX, dI,
                               dh, dc, Hp, dR, db_rec)
    else:
        _backward_typed[double](code, a_code, r_code, R, mask, rec_mask, H, C, A, E, dY, dX,
                                dI, dh, dc, Hp, dR, db_rec)
    return dX, dh, dc


cdef object _backward_typed(int code, int act, int ract, const floating[:, ::1] R, object mask,
                          object rec_mask, const floating[:, :, ::1] H, object C,
                          const floating[:, :, ::1] A, object E, const floating[:, :, ::1] dY,
                          floating[:, :, ::1] dX, floating[:, :, ::1] dI, floating[:, ::1] dh,
                          object dc, const floating[:, :, ::1] Hp, object dR, object db_rec):
    cdef Py_ssize_t T = dY.shape[0], N = dY.shape[1], U = R.shape[0], GU = R.shape[1]
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
    cdef floating[::1] tmp = numpy.empty(U, dtype)
    cdef floating[:, ::1] S = numpy.empty((N, U), dtype)
    cdef double[::1] acc = numpy.empty(GU, numpy.float64)
    with nogil:
        _backward(code, act, ract, T, N, U, &R[0, 0], mp, rp, &H[0, 0, 0], cp, &A[0, 0, 0], ep,
                  &dY[0, 0, 0], &dX[0, 0, 0], &dI[0, 0, 0], &dh[0, 0], dcp, &dy[0, 0],
                  &tmp[0], &S[0, 0])
        _weight_grads(T * N, U, GU, &Hp[0, 0, 0], &dI[0, 0, 0], dRp, dbp, &acc[0])
