# The recurrent cells' BLAS path, included by recurrent.pyx (textually: it uses
# that file's cimports, its recurrent_rows.h declarations and its cell codes): one
# OpenBLAS product per step (gemm_rm) and the row passes, for the sizes where the
# fused path (recurrent_gemm.h) loses, recurrent dropout and the first-form GRU
# (recurrent_gru0.pxi, included here); _weight_grads sums dR and the biases over
# all steps after the sequence. Checks stay in recurrent.pyx.


cdef void _forward(int cell, int act, int ract, Py_ssize_t T, Py_ssize_t N, Py_ssize_t U,
                   const floating* xproj, const floating* R, const floating* brec,
                   const unsigned char* mask, const floating* rmask,
                   floating* Y, floating* H, floating* C, floating* A, floating* E,
                   floating* S, floating* hd) noexcept nogil:
    """H[0] (and C[0]) hold the initial state. Per step t: A[t] the activated
    gates (SimpleRNN: h_new), E[t] LSTM's act(c_new) or GRU's recurrent
    candidate term (h_prev @ R_h + b_h); S a (N, GU) scratch for the GRU's
    recurrent product. rmask (N, GU) or NULL: recurrent dropout, one mask per
    gate side by side (Keras's); hd a (N, GU) scratch for h_prev as each
    gate reads it then."""
    cdef Py_ssize_t G = 1 if cell == CELL_SIMPLE else (4 if cell == CELL_LSTM else 3)
    cdef Py_ssize_t GU = G * U, t, n, j, g
    cdef const floating* hprev
    cdef floating* dst
    cdef int nt
    cdef bint inplace = <const floating*>A == xproj
    if cell == CELL_GRU0:
        for t in range(T):
            _gru0_forward_step(act, ract, t, T, N, U, xproj, R, mask, rmask, Y, H, A, E, S, hd,
                               inplace)
        return
    for t in range(T):
        hprev = H + t * N * U
        # The recurrent product: straight into the gates, or (GRU) into S,
        # whose candidate block the reset gate scales before it is added;
        # over the input projection itself when A is xproj (then added already).
        dst = S if cell == CELL_GRU else A + t * N * GU
        if rmask == NULL:
            gemm_rm(False, False, <int>N, <int>GU, <int>U, 1, hprev, <int>U, R, <int>GU,
                    1 if inplace and cell != CELL_GRU else 0, dst, <int>GU)
        else:
            # Each gate reads h_prev through its own mask: one product per gate.
            for n in range(N):
                for g in range(G):
                    for j in range(U):
                        hd[n * GU + g * U + j] = hprev[n * U + j] * rmask[n * GU + g * U + j]
            for g in range(G):
                gemm_rm(False, False, <int>N, <int>U, <int>U, 1, hd + g * U, <int>GU,
                        R + g * U, <int>GU, 1 if inplace and cell != CELL_GRU else 0,
                        dst + g * U, <int>GU)
        # Rows are independent: the thread policy decides (one function of the work).
        nt = fastnn_threads(<double>N * GU * FASTNN_ELEMENT_COST)
        if nt > 1:
            for n in prange(N, schedule="static", num_threads=nt):
                _forward_row(cell, act, ract, t, n, T, N, U, xproj, brec, mask, Y, H, C, A, E,
                             S, inplace)
        else:
            for n in range(N):
                _forward_row(cell, act, ract, t, n, T, N, U, xproj, brec, mask, Y, H, C, A, E,
                             S, inplace)


cdef inline floating _dact(int act, floating y) noexcept nogil:
    if floating is float:
        return fastnn_rnn_dact_f32(act, y)
    else:
        return fastnn_rnn_dact_f64(act, y)


cdef inline void _act(floating* v, Py_ssize_t n, int act) noexcept nogil:
    if floating is float:
        fastnn_rnn_act_f32(v, n, act)
    else:
        fastnn_rnn_act_f64(v, n, act)


cdef inline void _finish_row(Py_ssize_t t, Py_ssize_t n, Py_ssize_t T, Py_ssize_t U,
                             const floating* hprev, floating* hn, floating* y,
                             bint keep) noexcept nogil:
    """The step's output, or at a padded step the state kept and the output
    repeated (zeros before the first real step)."""
    if keep:
        memcpy(y, hn, U * sizeof(floating))
    else:
        memcpy(hn, hprev, U * sizeof(floating))
        if t == 0:
            memset(y, 0, U * sizeof(floating))
        else:
            memcpy(y, y - U, U * sizeof(floating))


include "recurrent_gru0.pxi"


cdef inline void _forward_row(int cell, int act, int ract, Py_ssize_t t, Py_ssize_t n,
                              Py_ssize_t T, Py_ssize_t N, Py_ssize_t U, const floating* xproj,
                              const floating* brec, const unsigned char* mask, floating* Y,
                              floating* H, floating* C, floating* A, floating* E,
                              const floating* S, bint inplace) noexcept nogil:
    """Sample n at step t: gates, state update, mask, output."""
    cdef Py_ssize_t GU = U * (1 if cell == CELL_SIMPLE else (4 if cell == CELL_LSTM else 3))
    cdef const floating* hprev = H + t * N * U
    cdef const floating* x = NULL if inplace else xproj + (t * N + n) * GU
    cdef floating* a = A + (t * N + n) * GU
    cdef floating* hn = H + ((t + 1) * N + n) * U
    cdef floating* y = Y + (n * T + t) * U
    cdef bint keep = mask == NULL or mask[t * N + n] != 0
    cdef const floating* cp
    cdef floating* cn
    cdef floating* e
    if cell == CELL_SIMPLE:
        if floating is float:
            fastnn_simple_fwd_row_f32(U, a, x, act)
        else:
            fastnn_simple_fwd_row_f64(U, a, x, act)
        memcpy(hn, a, U * sizeof(floating))
    elif cell == CELL_LSTM:
        cp = C + (t * N + n) * U
        cn = C + ((t + 1) * N + n) * U
        e = E + (t * N + n) * U
        if floating is float:
            fastnn_lstm_fwd_row_f32(U, a, x, cp, cn, e, hn, act, ract)
        else:
            fastnn_lstm_fwd_row_f64(U, a, x, cp, cn, e, hn, act, ract)
        if not keep:
            memcpy(cn, cp, U * sizeof(floating))
    else:
        e = E + (t * N + n) * U
        if floating is float:
            fastnn_gru_fwd_row_f32(U, a, a if inplace else x, S + n * GU, brec,
                                   hprev + n * U, e, hn, act, ract)
        else:
            fastnn_gru_fwd_row_f64(U, a, a if inplace else x, S + n * GU, brec,
                                   hprev + n * U, e, hn, act, ract)
    if keep:
        memcpy(y, hn, U * sizeof(floating))
    else:
        # A padded step: the state stays, the output repeats the last one.
        memcpy(hn, hprev + n * U, U * sizeof(floating))
        if t == 0:
            memset(y, 0, U * sizeof(floating))
        else:
            memcpy(y, y - U, U * sizeof(floating))


cdef void _backward(int cell, int act, int ract, Py_ssize_t T, Py_ssize_t N, Py_ssize_t U,
                    const floating* R, const unsigned char* mask, const floating* rmask,
                    const floating* H, const floating* C, const floating* A, const floating* E,
                    const floating* dY, floating* dX, floating* DH, floating* SI,
                    floating* dh, floating* dc, floating* dy, floating* S) noexcept nogil:
    """dh (and dc) hold the final states' gradients on entry, the initial
    states' on return. dX[t]: the gradient of the input projection, which is
    that of the recurrent product's output too, but for the GRU's candidate
    block: the GRU keeps a step's whole gradient of its recurrent product in
    SI (N, 3U) for the step's GEMM, and its candidate block in DH[t] (the
    dR GEMM's operand, (T, N, U)). dy
    (N, U): the gradient reaching an earlier step's output through padded
    steps; S (N, U) scratch. rmask (N, GU) or NULL: as for _forward."""
    cdef Py_ssize_t G = 1 if cell == CELL_SIMPLE else (4 if cell == CELL_LSTM else 3)
    cdef Py_ssize_t GU = G * U, t, n, j, g
    cdef int nt
    cdef const floating* di
    memset(dy, 0, N * U * sizeof(floating))
    if cell == CELL_GRU0:
        for t in range(T - 1, -1, -1):
            _gru0_backward_step(act, ract, t, T, N, U, R, mask, rmask, H, A, dY, dX, DH, SI, dh,
                                dy, S)
        return
    for t in range(T - 1, -1, -1):
        nt = fastnn_threads(<double>N * GU * FASTNN_ELEMENT_COST)
        if nt > 1:
            for n in prange(N, schedule="static", num_threads=nt):
                _backward_row(cell, act, ract, t, n, T, N, U, mask, H, C, A, E, dY, dX, DH, SI,
                              dh, dc, dy)
        else:
            for n in range(N):
                _backward_row(cell, act, ract, t, n, T, N, U, mask, H, C, A, E, dY, dX, DH, SI,
                              dh, dc, dy)
        di = SI if cell == CELL_GRU else dX + t * N * GU
        # dh_{t-1} += dGates @ R^T (gate by gate through its dropout mask when
        # there is one).
        if rmask == NULL:
            gemm_rm(False, True, <int>N, <int>U, <int>GU, 1, di, <int>GU, R,
                    <int>GU, 1, dh, <int>U)
        else:
            for g in range(G):
                gemm_rm(False, True, <int>N, <int>U, <int>U, 1, di + g * U, <int>GU,
                        R + g * U, <int>GU, 0, S, <int>U)
                for n in range(N):
                    for j in range(U):
                        dh[n * U + j] += S[n * U + j] * rmask[n * GU + g * U + j]


cdef inline void _backward_row(int cell, int act, int ract, Py_ssize_t t, Py_ssize_t n,
                               Py_ssize_t T, Py_ssize_t N, Py_ssize_t U,
                               const unsigned char* mask, const floating* H, const floating* C,
                               const floating* A, const floating* E, const floating* dY,
                               floating* dX, floating* DH, floating* SI, floating* dh,
                               floating* dc, floating* dy) noexcept nogil:
    """Sample n at step t: the gate derivatives (dX, and the GRU's SI and DH
    rows) and what reaches h_{t-1} outside the recurrent product (into dh's
    row; the product's part is added by the step's GEMM)."""
    cdef Py_ssize_t GU = U * (1 if cell == CELL_SIMPLE else (4 if cell == CELL_LSTM else 3))
    cdef Py_ssize_t j
    cdef bint keep = mask == NULL or mask[t * N + n] != 0
    cdef const floating* gy = dY + (n * T + t) * U
    cdef floating* dhn = dh + n * U
    cdef floating* g = dy + n * U
    cdef floating* dx = dX + (t * N + n) * GU
    cdef floating* di = SI + n * GU if cell == CELL_GRU else NULL
    cdef floating* dhh = DH + (t * N + n) * U if cell == CELL_GRU else NULL
    cdef const floating* a = A + (t * N + n) * GU
    cdef const floating* e
    cdef const floating* hp
    cdef const floating* cp
    if not keep:
        # The step passed the state and the output on unchanged.
        for j in range(U):
            g[j] += gy[j]
        memset(dx, 0, GU * sizeof(floating))
        if di != NULL:
            memset(di, 0, GU * sizeof(floating))
            memset(dhh, 0, U * sizeof(floating))
        return
    # g: the gradient of this step's h_new (the row of dy, cleared after use).
    for j in range(U):
        g[j] = dhn[j] + gy[j] + g[j]
    if cell == CELL_SIMPLE:
        if floating is float:
            fastnn_simple_bwd_row_f32(U, a, g, dx, dhn, act)
        else:
            fastnn_simple_bwd_row_f64(U, a, g, dx, dhn, act)
    elif cell == CELL_LSTM:
        e = E + (t * N + n) * U
        cp = C + (t * N + n) * U
        if floating is float:
            fastnn_lstm_bwd_row_f32(U, a, e, cp, g, dx, dc + n * U, dhn, act, ract)
        else:
            fastnn_lstm_bwd_row_f64(U, a, e, cp, g, dx, dc + n * U, dhn, act, ract)
    else:
        e = E + (t * N + n) * U
        hp = H + (t * N + n) * U
        if floating is float:
            fastnn_gru_bwd_row_f32(U, a, e, hp, g, dx, di, dhh, dhn, act, ract)
        else:
            fastnn_gru_bwd_row_f64(U, a, e, hp, g, dx, di, dhh, dhn, act, ract)
    memset(g, 0, U * sizeof(floating))


cdef void _weight_grads(Py_ssize_t TN, Py_ssize_t U, Py_ssize_t GU, const floating* Hp,
                        Py_ssize_t ldh, const floating* dI, Py_ssize_t ldi, floating* dR,
                        Py_ssize_t ldr, floating* db, double* acc) noexcept nogil:
    """dR[:, :GU] += Hp[:, :U]^T @ dI[:, :GU] over all T*N rows (Hp's rows
    ldh apart, dI's ldi, dR's ldr); db += the column sums of dI (float64,
    rows in order: deterministic)."""
    cdef Py_ssize_t i, j
    cdef const floating* row
    if dR != NULL:
        gemm_rm(True, False, <int>U, <int>GU, <int>TN, 1, Hp, <int>ldh, dI, <int>ldi, 1, dR,
                <int>ldr)
    if db != NULL:
        for j in range(GU):
            acc[j] = 0
        for i in range(TN):
            row = dI + i * ldi
            for j in range(GU):
                acc[j] += row[j]
        for j in range(GU):
            db[j] += <floating>acc[j]
