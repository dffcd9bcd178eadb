# The GRU's first form (reset_after=False: the reset gate scales h before the
# candidate's recurrent product, so each step takes two products, not one),
# one step forward and one backward, included by recurrent.pyx (textually: it
# uses that file's cimports, helpers (_act, _dact, _finish_row) and
# declarations, and is no module of its own).

cdef void _gru0_forward_step(int act, int ract, Py_ssize_t t, Py_ssize_t T, Py_ssize_t N,
                             Py_ssize_t U, const floating* xproj, const floating* R,
                             const unsigned char* mask, const floating* rmask, floating* Y,
                             floating* H, floating* A, floating* E, floating* S, floating* hd,
                             bint inplace) noexcept nogil:
    """One step of the GRU's first form: z and r from one product (two with
    per-gate dropout), E[t] = r * h_{t-1} (through the candidate's dropout
    mask), then the candidate's product E[t] @ R_h, then h~ and the mix
    (which reads h_{t-1} itself). Two products per step, so two row passes,
    each a plain loop over rows (one thread: the products dominate)."""
    cdef Py_ssize_t GU = 3 * U, n, j, g
    cdef const floating* hprev = H + t * N * U
    cdef const floating* x
    cdef floating* a
    cdef floating* e
    cdef floating* hn
    cdef bint keep
    if rmask == NULL:
        gemm_rm(False, False, <int>N, <int>(2 * U), <int>U, 1, hprev, <int>U, R, <int>GU, 0,
                S, <int>GU)
    else:
        for n in range(N):
            for g in range(3):
                for j in range(U):
                    hd[n * GU + g * U + j] = hprev[n * U + j] * rmask[n * GU + g * U + j]
        for g in range(2):
            gemm_rm(False, False, <int>N, <int>U, <int>U, 1, hd + g * U, <int>GU, R + g * U,
                    <int>GU, 0, S + g * U, <int>GU)
    for n in range(N):
        a = A + (t * N + n) * GU
        x = a if inplace else xproj + (t * N + n) * GU
        e = E + (t * N + n) * U
        for j in range(2 * U):
            a[j] = x[j] + S[n * GU + j]
        _act(a, 2 * U, ract)
        if rmask == NULL:
            for j in range(U):
                e[j] = a[U + j] * hprev[n * U + j]
        else:
            for j in range(U):
                e[j] = a[U + j] * hd[n * GU + 2 * U + j]
    gemm_rm(False, False, <int>N, <int>U, <int>U, 1, E + t * N * U, <int>U, R + 2 * U, <int>GU,
            0, S + 2 * U, <int>GU)
    for n in range(N):
        a = A + (t * N + n) * GU
        x = a if inplace else xproj + (t * N + n) * GU
        hn = H + ((t + 1) * N + n) * U
        for j in range(U):
            a[2 * U + j] = x[2 * U + j] + S[n * GU + 2 * U + j]
        _act(a + 2 * U, U, act)
        for j in range(U):
            hn[j] = a[j] * hprev[n * U + j] + (1 - a[j]) * a[2 * U + j]
        keep = mask == NULL or mask[t * N + n] != 0
        _finish_row(t, n, T, U, hprev + n * U, hn, Y + (n * T + t) * U, keep)


cdef void _gru0_backward_step(int act, int ract, Py_ssize_t t, Py_ssize_t T, Py_ssize_t N,
                              Py_ssize_t U, const floating* R, const unsigned char* mask,
                              const floating* rmask, const floating* H, const floating* A,
                              const floating* dY, floating* dX, floating* DH, floating* SI,
                              floating* dh, floating* dy, floating* S) noexcept nogil:
    """Step t of the first form, backward: z's and the candidate's
    derivatives, the candidate's input gradient r * h_{t-1} (DH[t], from
    which its product's gradient S = DH[t] @ R_h^T), then r's derivative,
    and what reaches h_{t-1}: directly (the mix), through r * h_{t-1} and
    through the z and r products (SI, one GEMM, or one per gate with
    dropout)."""
    cdef Py_ssize_t GU = 3 * U, n, j, g
    cdef bint keep
    cdef const floating* gy
    cdef const floating* a
    cdef const floating* hp
    cdef floating* gr
    cdef floating* dhn
    cdef floating* dx
    cdef floating* di
    cdef floating* dhh
    cdef floating z, hh, gi, r, m, drh
    for n in range(N):
        keep = mask == NULL or mask[t * N + n] != 0
        gy = dY + (n * T + t) * U
        gr = dy + n * U
        dhn = dh + n * U
        dx = dX + (t * N + n) * GU
        di = SI + n * GU
        dhh = DH + (t * N + n) * U
        if not keep:
            for j in range(U):
                gr[j] += gy[j]
            memset(dx, 0, GU * sizeof(floating))
            memset(di, 0, GU * sizeof(floating))
            memset(dhh, 0, U * sizeof(floating))
            continue
        a = A + (t * N + n) * GU
        hp = H + (t * N + n) * U
        for j in range(U):
            gi = dhn[j] + gy[j] + gr[j]
            z = a[j]
            hh = a[2 * U + j]
            dx[j] = gi * (hp[j] - hh) * _dact(ract, z)
            di[j] = dx[j]
            dx[2 * U + j] = gi * (1 - z) * _dact(act, hh)
            dhh[j] = dx[2 * U + j]
            dhn[j] = gi * z
            gr[j] = 0
    gemm_rm(False, True, <int>N, <int>U, <int>U, 1, DH + t * N * U, <int>U, R + 2 * U, <int>GU,
            0, S, <int>U)
    for n in range(N):
        if mask != NULL and mask[t * N + n] == 0:
            continue
        a = A + (t * N + n) * GU
        hp = H + (t * N + n) * U
        dx = dX + (t * N + n) * GU
        di = SI + n * GU
        for j in range(U):
            r = a[U + j]
            m = 1 if rmask == NULL else rmask[n * GU + 2 * U + j]
            drh = S[n * U + j]
            dx[U + j] = drh * hp[j] * m * _dact(ract, r)
            di[U + j] = dx[U + j]
            dh[n * U + j] += drh * r * m
    if rmask == NULL:
        gemm_rm(False, True, <int>N, <int>U, <int>(2 * U), 1, SI, <int>GU, R, <int>GU, 1, dh,
                <int>U)
    else:
        for g in range(2):
            gemm_rm(False, True, <int>N, <int>U, <int>U, 1, SI + g * U, <int>GU, R + g * U,
                    <int>GU, 0, S, <int>U)
            for n in range(N):
                for j in range(U):
                    dh[n * U + j] += S[n * U + j] * rmask[n * GU + g * U + j]
