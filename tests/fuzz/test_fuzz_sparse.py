"""Fuzzing the sparse kernels (fastnn._C.sparse) and the fused AutoRec step
(fastnn._C.autorec_step) with hostile CSR structures: index dtypes, unsorted
rows, repeated columns, out-of-range and negative indices, decreasing or short
row pointers, bad transposes and permutations. References are written here,
entry by entry with numpy.add.at (never a dense product: NaN * 0 there would
spread a NaN to entries the kernels rightly never touch). Machinery and
property: conftest.py."""
import importlib.util
import os

import numpy
import pytest
from hypothesis import strategies as st

from fastnn._C import autorec_step as AR
from fastnn._C import sparse as S

SPARSE_ACTS = ("linear", "sigmoid", "relu", "tanh")
INDEX_LAYOUTS = ("C", "strided", "reversed", "readonly", "list", "dtype", "ndim")


def f64(a):
    return numpy.asarray(a, numpy.float64)


def act_ref(name, z):
    with numpy.errstate(all="ignore"):
        return {"linear": lambda: z, "sigmoid": lambda: 1 / (1 + numpy.exp(-z)),
                "relu": lambda: numpy.where(numpy.isnan(z), z, numpy.where(z > 0, z, 0.0)),
                "tanh": lambda: numpy.tanh(z)}[name]()


class Csr:
    """A drawn CSR structure: clean arrays, the row of each entry, and the
    arrays handed to the kernel (maybe corrupted: hazards say how)."""

    def __init__(self, draw, g, n, m, dt, special=True, corrupt=True):
        it = g.index_dtype(draw)
        rng = numpy.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        counts = rng.integers(0, m + 2, n) if m else numpy.zeros(n, int)
        if m == 0:
            counts[:] = 0
        # Sorted columns per row, repeats allowed (a repeat is a second entry).
        cols = [numpy.sort(rng.integers(0, m, c)) if m else numpy.zeros(0, int) for c in counts]
        self.indptr = numpy.concatenate([[0], numpy.cumsum(counts)]).astype(it)
        self.indices = (numpy.concatenate(cols) if cols else numpy.zeros(0)).astype(it)
        self.rows = numpy.repeat(numpy.arange(n), counts)
        self.nnz = int(self.indptr[-1])
        self.data = g.values(draw, (self.nnz,), dt, special=special)
        self.n, self.m = n, m
        ip, ix = self.indptr.copy(), self.indices.copy()
        how = draw(st.sampled_from(["clean"] * 6 + ["unsorted", "column", "indptr",
                                                     "last", "mixed", "float"])) \
            if corrupt else "clean"
        if how == "unsorted":
            # Two distinct columns of one row swapped.
            for r in range(n):
                lo, hi = ip[r], ip[r + 1]
                if hi - lo >= 2 and ix[lo] != ix[hi - 1]:
                    ix[lo], ix[hi - 1] = ix[hi - 1], ix[lo]
                    g.hazard("indices", g.MUST, f"row {r} unsorted")
                    break
        elif how == "column" and self.nnz:
            p = draw(st.integers(0, self.nnz - 1))
            bad = draw(st.sampled_from([m, -1, 2**31 - 1, m + 7]))
            ix[p] = bad
            # Keep the row sorted so the range is what is wrong.
            r = int(numpy.searchsorted(ip, p, side="right")) - 1
            ix[ip[r]:ip[r + 1]].sort()
            g.hazard("indices", g.MUST, f"column {bad}")
        elif how == "indptr" and n >= 2:
            r = draw(st.integers(1, n - 1))
            ip[r] = draw(st.sampled_from([-1, ip[-1] + 1, 2**31 - 1]))
            if not (ip[r - 1] <= ip[r] <= ip[r + 1]):
                g.hazard("indptr", g.MUST, f"indptr[{r}] = {ip[r]}")
        elif how == "last":
            ip[-1] += draw(st.sampled_from([1, -1])) if ip[-1] else 1
            g.hazard("indptr", g.MUST, "indptr[-1] != nnz")
        elif how == "mixed":
            ix = ix.astype(numpy.int64 if it == numpy.int32 else numpy.int32)
            g.hazard("indices", g.MUST, "dtype differs from indptr's")
        elif how == "float":
            ip = ip.astype(numpy.float64)
            g.hazard("indptr", g.MUST, "float indptr")
        self.ix_values = ix  # as corrupted, before any layout change
        self.ip = g.arg(draw, "indptr", ip, allow=INDEX_LAYOUTS)
        self.ix = g.arg(draw, "indices", ix, allow=INDEX_LAYOUTS)

    def matmul(self, B):
        """A @ B in float64, entry by entry."""
        out = numpy.zeros((self.n, B.shape[1]))
        with numpy.errstate(all="ignore"):
            numpy.add.at(out, self.rows, f64(self.data)[:, None] * f64(B)[self.indices])
        return out

    def t_matmul(self, G):
        out = numpy.zeros((self.m, G.shape[1]))
        with numpy.errstate(all="ignore"):
            numpy.add.at(out, self.indices, f64(self.data)[:, None] * f64(G)[self.rows])
        return out

    def transpose(self):
        order = numpy.argsort(self.indices, kind="stable")
        t_indptr = numpy.concatenate([[0], numpy.cumsum(numpy.bincount(
            self.indices, minlength=self.m))]).astype(self.indptr.dtype)
        return t_indptr, self.rows[order].astype(self.indptr.dtype), order.astype(
            self.indptr.dtype)


def case_check_csr(draw, g):
    n, m = g.dim(draw), g.dim(draw)
    A = Csr(draw, g, n, m, numpy.float32)
    n_rows, n_cols = n, m
    if draw(st.integers(0, 5)) == 0:
        n_rows = draw(st.sampled_from([-1, n + 1, -2**40]))
        g.hazard("n_rows", g.MUST, f"n_rows={n_rows}")
    if draw(st.integers(0, 5)) == 0:
        n_cols = draw(st.sampled_from([-1, -2**40]))
        g.hazard("n_cols", g.MUST, f"n_cols={n_cols}")
    return g.case(lambda: S.check_csr(A.ip, A.ix, n_rows, n_cols), None, numpy.float32)


def case_csr_take_rows(draw, g):
    dt = g.dtype(draw)
    n, m = g.dim(draw), g.dim(draw)
    A = Csr(draw, g, n, m, dt)
    k = g.dim(draw)
    rows = numpy.random.default_rng(draw(st.integers(0, 99))).integers(0, max(n, 1), k)
    if n == 0 and k:
        g.hazard("rows", g.MUST, "rows of an empty matrix")
    elif k and draw(st.integers(0, 5)) == 0:
        rows[draw(st.integers(0, k - 1))] = draw(st.sampled_from([-1, n, 2**40]))
        g.hazard("rows", g.MUST, "out of range")
    # Column problems are not this kernel's concern (it copies columns as they are).
    g.h.items = [h for h in g.h.items if not (h[0] == "indices" and h[2].startswith(("row", "column")))]
    ip, ix = A.indptr, A.ix_values
    take = [numpy.arange(ip[r], ip[r + 1]) for r in rows] if not g.h.must else []
    sel = numpy.concatenate(take).astype(int) if take else numpy.zeros(0, int)
    want = (numpy.concatenate([[0], numpy.cumsum([len(t) for t in take])]).astype(ip.dtype),
            ix[sel], f64(A.data)[sel]) if not g.h.must else None
    R = g.arg(draw, "rows", rows, allow=("C", "strided", "reversed", "list", "ndim"))
    D = g.arg(draw, "data", A.data)
    return g.case(lambda: S.csr_take_rows(A.ip, A.ix, D, R), want, dt)


def case_csr_matmul(draw, g):
    dt = g.dtype(draw)
    n, m, k = g.dim(draw), g.dim(draw), g.dim(draw)
    A = Csr(draw, g, n, m, dt)
    B = g.values(draw, (m, k), dt)
    act = draw(st.sampled_from(SPARSE_ACTS))
    acc = draw(st.booleans())
    bias = g.values(draw, (k,), dt) if draw(st.booleans()) else None
    old = g.values(draw, (n, k), dt, special=False)
    z = A.matmul(B) + (f64(old) if acc else 0) + (f64(bias) if bias is not None else 0)
    scale = numpy.zeros((n, k))
    with numpy.errstate(all="ignore"):
        numpy.add.at(scale, A.rows, numpy.abs(f64(A.data))[:, None] * numpy.abs(f64(B))[A.indices])
    want = act_ref(act, z)
    Bv = g.arg(draw, "B", B)
    D = g.arg(draw, "data", A.data)
    bv = g.arg(draw, "bias", bias) if bias is not None else None
    out = g.arg(draw, "out", old.copy(), out=True, allow=("C", "readonly", "strided", "dtype", "list"))
    if draw(st.integers(0, 5)) == 0 and B.shape == old.shape and B.size and isinstance(Bv, numpy.ndarray):
        out = Bv
        g.hazard("out", g.MUST, "is B")

    def call():
        r = S.csr_matmul(A.ip, A.ix, D, Bv, out, acc, bv, act)
        assert r is out
        return r
    return g.case(call, want, dt, scale + 2 + numpy.abs(z))


def case_csr_transpose(draw, g):
    n, m = g.dim(draw), g.dim(draw)
    A = Csr(draw, g, n, m, numpy.float32)
    n_cols = m
    if draw(st.integers(0, 5)) == 0:
        n_cols = draw(st.sampled_from([-1, -5, 2**62 + 1]))
        g.hazard("n_cols", g.MUST, f"n_cols={n_cols}")
    want = A.transpose() if not g.h.must else None
    return g.case(lambda: S.csr_transpose(A.ip, A.ix, n_cols), want, numpy.float32)


def _transpose_arg(draw, g, A):
    if not draw(st.booleans()):
        return None
    tp, ti, perm = (a.copy() for a in A.transpose())
    if perm.size and draw(st.integers(0, 3)) == 0:
        perm[draw(st.integers(0, perm.size - 1))] = draw(st.sampled_from([-1, A.nnz, 10**9]))
        g.hazard("transpose", g.MUST, "perm out of range")
    return tp, ti, perm


def case_csr_t_matmul(draw, g):
    dt = g.dtype(draw)
    n, m, k = g.dim(draw), g.dim(draw), g.dim(draw)
    A = Csr(draw, g, n, m, dt)
    Gm = g.values(draw, (n, k), dt)
    acc = draw(st.booleans())
    old = g.values(draw, (m, k), dt, special=False)
    want = A.t_matmul(Gm) + (f64(old) if acc else 0)
    scale = numpy.zeros((m, k))
    with numpy.errstate(all="ignore"):
        numpy.add.at(scale, A.indices, numpy.abs(f64(A.data))[:, None] * numpy.abs(f64(Gm))[A.rows])
    tr = _transpose_arg(draw, g, A)
    Gv, D = g.arg(draw, "G", Gm), g.arg(draw, "data", A.data)
    out = g.arg(draw, "out", old.copy(), out=True, allow=("C", "readonly", "strided", "dtype"))
    if draw(st.integers(0, 5)) == 0 and Gm.shape == old.shape and Gm.size and isinstance(Gv, numpy.ndarray):
        out = Gv
        g.hazard("out", g.MUST, "is G")

    def call():
        return S.csr_t_matmul(A.ip, A.ix, D, Gv, out, acc, tr)
    return g.case(call, want, dt, scale + 2 + numpy.abs(f64(old)))


def _adam(p, g, m, v, lr, b1, b2, eps, step, wd, decoupled):
    with numpy.errstate(all="ignore"):
        if not decoupled:
            g = g + wd * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = (p - lr * wd * p if decoupled else p) - lr / (1 - b1 ** step) * m / (
            numpy.sqrt(v / (1 - b2 ** step)) + eps)
    return p, m, v


def case_csr_t_matmul_adam(draw, g):
    dt = g.dtype(draw)
    n, m, k = g.dim(draw), g.dim(draw), g.dim(draw)
    A = Csr(draw, g, n, m, dt)
    Gm = g.values(draw, (n, k), dt)
    p0 = g.values(draw, (m, k), dt, special=False)
    m0 = g.values(draw, (m, k), dt, lo=-1, hi=1, special=False)
    v0 = g.values(draw, (m, k), dt, lo=0, hi=1, special=False)
    step = draw(st.integers(1, 5))
    wd, dec = draw(st.sampled_from([0.0, 0.01])), draw(st.booleans())
    want = _adam(f64(p0), A.t_matmul(Gm), f64(m0), f64(v0), 0.01, 0.9, 0.999, 1e-7, step, wd, dec)
    tr = _transpose_arg(draw, g, A)
    Gv, D = g.arg(draw, "G", Gm), g.arg(draw, "data", A.data)
    P = g.arg(draw, "param", p0.copy(), out=True)
    M = g.arg(draw, "m", m0.copy(), out=True)
    V = g.arg(draw, "v", v0.copy(), out=True)
    if draw(st.integers(0, 5)) == 0 and p0.size and isinstance(P, numpy.ndarray) and P.flags.writeable:
        V = P
        g.hazard("v", g.MUST, "is param")

    def call():
        S.csr_t_matmul_adam(A.ip, A.ix, D, Gv, P, M, V, 0.01, 0.9, 0.999, 1e-7, step, wd, dec, tr)
        return (P, M, V)
    return g.case(call, want, dt, 8.0)


def case_sddmm(draw, g):
    dt = g.dtype(draw)
    n, m, k = g.dim(draw), g.dim(draw), g.dim(draw)
    A = Csr(draw, g, n, m, dt)
    H = g.values(draw, (n, k), dt)
    Vt = g.values(draw, (m, k), dt)
    c = g.values(draw, (m,), dt) if draw(st.booleans()) else None
    with numpy.errstate(all="ignore"):
        want = (f64(H)[A.rows] * f64(Vt)[A.indices]).sum(1)
        scale = (numpy.abs(f64(H))[A.rows] * numpy.abs(f64(Vt))[A.indices]).sum(1)
        if c is not None:
            want = want + f64(c)[A.indices]
    Hv, Vv = g.arg(draw, "H", H), g.arg(draw, "Vt", Vt)
    cv = g.arg(draw, "c", c) if c is not None else None
    out = g.arg(draw, "out_vals", numpy.full(A.nnz, numpy.nan, dt), out=True,
                allow=("C", "readonly", "strided", "dtype"))
    if draw(st.integers(0, 5)) == 0 and A.nnz and c is not None and A.nnz == m and isinstance(cv, numpy.ndarray):
        out = cv
        g.hazard("out_vals", g.MUST, "is c")
    return g.case(lambda: S.sddmm(A.ip, A.ix, Hv, Vv, cv, out), want, dt, scale + 2)


def case_sddmm_sq_error(draw, g):
    dt = g.dtype(draw)
    n, m, k = g.dim(draw), g.dim(draw), g.dim(draw)
    A = Csr(draw, g, n, m, dt, special=False)
    H = g.values(draw, (n, k), dt, special=False)
    Vt = g.values(draw, (m, k), dt, special=False)
    c = g.values(draw, (m,), dt, special=False) if draw(st.booleans()) else None
    w = g.values(draw, (A.nnz,), dt, lo=0, hi=2, special=False) if draw(st.booleans()) else None
    acc = draw(st.booleans())
    dH0 = g.values(draw, (n, k), dt, special=False)
    pred = (f64(H)[A.rows] * f64(Vt)[A.indices]).sum(1) + (f64(c)[A.indices] if c is not None else 0)
    wt = f64(w) if w is not None else 1.0
    d = pred - f64(A.data)
    grad = 2 * wt * d
    dH = numpy.zeros((n, k))
    numpy.add.at(dH, A.rows, grad[:, None] * f64(Vt)[A.indices])
    if acc:
        dH += f64(dH0)
    loss = float((wt * d * d).sum())
    Hv, Vv = g.arg(draw, "H", H), g.arg(draw, "Vt", Vt)
    T = g.arg(draw, "target_vals", A.data)
    out = g.arg(draw, "out_vals", numpy.empty(A.nnz, dt), out=True, allow=("C", "readonly", "dtype"))
    gv = g.arg(draw, "grad_vals", numpy.empty(A.nnz, dt), out=True, allow=("C", "readonly", "dtype"))
    dHv = g.arg(draw, "dH", dH0.copy(), out=True, allow=("C", "readonly", "dtype"))
    if draw(st.integers(0, 5)) == 0 and A.nnz and isinstance(out, numpy.ndarray):
        gv = out
        g.hazard("grad_vals", g.MUST, "is out_vals")

    def call():
        r = S.sddmm_sq_error(A.ip, A.ix, Hv, Vv, c, T, out, gv, dHv, w, acc)
        return (numpy.float64(r), out, gv, dHv)
    scale = 4 * (1 + numpy.abs(grad).sum() + k) * (1 + numpy.abs(d).max(initial=0))
    return g.case(call, (loss, pred, grad, dH), dt,
                  (scale * (1 + A.nnz), 2 + k * 4, 4 + numpy.abs(grad), scale))


def case_column_sums(draw, g):
    dt = g.dtype(draw)
    n, m = g.dim(draw), g.dim(draw)
    A = Csr(draw, g, n, m, dt)
    acc = draw(st.booleans())
    old = g.values(draw, (m,), dt, special=False)
    want = numpy.zeros(m)
    ixv = A.ix_values.astype(numpy.int64)
    if not (ixv.size and (ixv.min() < 0 or ixv.max() >= m)):
        numpy.add.at(want, ixv, f64(A.data))
    if acc:
        want += f64(old)
    scale = numpy.zeros(m)
    numpy.add.at(scale, A.indices, numpy.abs(f64(A.data)))
    # This kernel takes only the indices: its structure hazards are of the indices alone.
    g.h.items = [h for h in g.h.items if h[0] != "indptr" and not h[2].startswith("row")
                 and h[2] != "dtype differs from indptr's"]
    # Nor is a float indptr one of its float operands: vals and out both swapped
    # to the other float type are a consistent call (conftest's Gen.case).
    g.float_args.pop("indptr", None)
    ix = A.ix
    V = g.arg(draw, "vals", A.data)
    out = g.arg(draw, "out", old.copy(), out=True, allow=("C", "readonly", "strided", "dtype"))
    if draw(st.integers(0, 5)) == 0 and A.nnz == m and A.nnz and isinstance(V, numpy.ndarray) \
            and V.flags.writeable:
        out = V
        g.hazard("out", g.MUST, "is vals")
    return g.case(lambda: S.column_sums(ix, V, out, acc), want, dt, scale + 2)


def case_masked_sq_error(draw, g):
    dt = g.dtype(draw)
    nnz = g.dim(draw, hi=40)
    pred = g.values(draw, (nnz,), dt)
    tgt = g.values(draw, (nnz,), dt)
    w = g.values(draw, (nnz,), dt, lo=0, hi=2) if draw(st.booleans()) else None
    wt = f64(w) if w is not None else 1.0
    with numpy.errstate(all="ignore"):
        d = f64(pred) - f64(tgt)
        loss = numpy.float64((wt * d * d).sum())
        grad = 2 * wt * d
    P, T = g.arg(draw, "pred_vals", pred), g.arg(draw, "target_vals", tgt)
    W = g.arg(draw, "weights", w) if w is not None else None
    form = draw(st.sampled_from(["none", "out", "pred"]))
    out = None
    if form == "out":
        out = g.arg(draw, "grad_out", numpy.empty(nnz, dt), out=True,
                    allow=("C", "readonly", "strided", "dtype"))
    elif form == "pred" and isinstance(P, numpy.ndarray) and P.flags.writeable:
        out = P  # documented: the gradient may overwrite the predictions

    def call():
        l, gr = S.masked_sq_error(P, T, W, out)
        return (numpy.float64(l), gr)
    return g.case(call, (loss, grad), dt, (numpy.abs(wt * d * d).sum() * nnz + 1, 1 + numpy.abs(grad)))


def case_autorec_adam_step(draw, g):
    dt = g.dtype(draw)
    n, m, k = g.dim(draw), g.dim(draw, lo=1), g.dim(draw, lo=1)
    m, k = max(m, 1), max(k, 1)
    A = Csr(draw, g, n, m, dt, special=False)
    act = draw(st.sampled_from(SPARSE_ACTS))
    lam = draw(st.sampled_from([0.0, 0.1]))
    step = draw(st.integers(1, 4))
    sweep, n_blocks = draw(st.sampled_from([("samples", None), ("outputs", None),
                                            ("outputs", 1), ("outputs", 3)]))
    x_in = g.values(draw, (A.nnz,), dt, special=False) if draw(st.booleans()) else None
    P = {"W": (m, k), "b": (k,), "Vt": (m, k), "c": (m,)}
    params = {p: g.values(draw, s, dt, lo=-0.5, hi=0.5, special=False) for p, s in P.items()}
    state = {p: (g.values(draw, s, dt, lo=-0.01, hi=0.01, special=False),
                 g.values(draw, s, dt, lo=0, hi=1e-3, special=False)) for p, s in P.items()}
    # The step in float64, from its definition: a masked I-AutoRec loss and Adam.
    xv = f64(x_in if x_in is not None else A.data)
    Xd = numpy.zeros((n, m))
    numpy.add.at(Xd, (A.rows, A.indices), xv)
    T = numpy.zeros((n, m))
    numpy.add.at(T, (A.rows, A.indices), f64(A.data))
    M = numpy.zeros((n, m))
    numpy.add.at(M, (A.rows, A.indices), 1.0)
    W, b, Vt, c = (f64(params[p]) for p in P)
    Z = Xd @ W + b
    H = act_ref(act, Z)
    # Repeated entries: each is its own term of the loss (same prediction).
    E = H @ Vt.T + c
    R = numpy.zeros((n, m))
    numpy.add.at(R, (A.rows, A.indices), E[A.rows, A.indices] - f64(A.data))
    loss = float(((E[A.rows, A.indices] - f64(A.data)) ** 2).sum())
    dR = 2 * R
    dH = dR @ Vt
    dact = {"linear": numpy.ones_like(H), "sigmoid": H * (1 - H), "relu": (H > 0) * 1.0,
            "tanh": 1 - H * H}[act]
    dZ = dH * dact
    grads = {"W": Xd.T @ dZ + lam * W, "b": dZ.sum(0), "Vt": dR.T @ H + lam * Vt,
             "c": dR.sum(0)}
    want_p, want_s = {}, {}
    for p in P:
        pn, mn, vn = _adam(f64(params[p]), grads[p], f64(state[p][0]), f64(state[p][1]),
                           0.01, 0.9, 0.999, 1e-8, step, 0.0, False)
        want_p[p], want_s[p] = pn, (mn, vn)
    want = ((loss, float((W ** 2).sum()), float((Vt ** 2).sum())),
            tuple(want_p[p] for p in P), tuple(x for p in P for x in want_s[p]))
    T_arg = g.arg(draw, "target", A.data, allow=("C", "readonly", "strided", "dtype", "list"))
    args = {p: g.arg(draw, p, params[p].copy(), out=True, allow=("C", "readonly", "dtype"))
            for p in P}
    st_args = {}
    for p in P:
        st_args[p] = (g.arg(draw, "m" + p, state[p][0].copy(), out=True, allow=("C", "dtype")),
                      g.arg(draw, "v" + p, state[p][1].copy(), out=True, allow=("C", "dtype")))
    if draw(st.integers(0, 5)) == 0 and isinstance(args["W"], numpy.ndarray) \
            and args["W"].flags.writeable:
        st_args["Vt"] = (args["W"], st_args["Vt"][1])
        g.hazard("mVt", g.MUST, "is W")
    tr = _transpose_arg(draw, g, A)

    def call():
        r = AR.autorec_adam_step(A.ip, A.ix, T_arg, args["W"], args["b"], args["Vt"], args["c"],
                                 *st_args["W"], *st_args["b"], *st_args["Vt"], *st_args["c"],
                                 0.01, 0.9, 0.999, 1e-8, step, lam, act, input_values=x_in,
                                 transpose=tr, n_blocks=n_blocks, sweep=sweep)
        return (tuple(numpy.float64(x) for x in r), tuple(args[p] for p in P),
                tuple(x for p in P for x in st_args[p]))
    big = 16 * (1 + loss + (W ** 2).sum() + (Vt ** 2).sum()) * (1 + n + m)
    return g.case(call, want, dt, ((big,) * 3, 8.0, 8.0))


CASES = [case_check_csr, case_csr_take_rows, case_csr_matmul, case_csr_transpose,
         case_csr_t_matmul, case_csr_t_matmul_adam, case_sddmm, case_sddmm_sq_error,
         case_column_sums, case_masked_sq_error, case_autorec_adam_step]


@pytest.mark.parametrize("case_fn", CASES, ids=lambda f: f.__name__[5:])
def test_fuzz(case_fn, fuzz):
    fuzz(case_fn)


def _fuzz_machinery():
    """tests/fuzz/conftest.py as a module of its own (by path: ``conftest`` is
    also tests/conftest.py's name)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "conftest.py")
    spec = importlib.util.spec_from_file_location("fuzz_machinery", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_column_sums_float_indptr_is_not_an_operand():
    # Found by the 10,000-example run: a float64 case whose (unused) indptr was
    # corrupted to float64 while vals and out were both swapped to float32, a
    # consistent float32 call that the kernel rightly accepts; the test counted
    # the indptr among the float operands and demanded an error. The draws as
    # hypothesis made them, replayed.
    C = _fuzz_machinery()
    draws = iter([numpy.dtype(numpy.float64), 0, 0, numpy.dtype(numpy.int32), 0, 0, "float", "C",
                  "C", False, 0, "dtype", numpy.float32, "dtype", numpy.float32, 0])
    g = C.Gen()
    case = case_column_sums(lambda strategy: next(draws), g)
    assert next(draws, None) is None   # every draw replayed, in order
    assert case.dtype == numpy.float32 and not case.hazards.must
    C.check_case(case)
