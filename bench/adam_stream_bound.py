"""How much of the 0.1x target the exact full Adam pass alone takes.

Taking turns, a process each (bench/_turns.py: each sees the same machine load
and runs with its own OpenMP defaults): (a) the dense masked PyTorch I-AutoRec
epoch of compare_autorec.py and (b) 15 (= batches per epoch) exact Adam passes
over W and Vt with no data gradient, i.e. only the L2 term: each reads and
writes p, m, v once (24 bytes per parameter, 6,040 x 500 x 2 float32
parameters), with fastnn's fused, parallel, vectorised row kernel (the one
autorec_adam_step uses). Any exact full-Adam training step moves at least
these bytes, so (b) is a floor for one fastnn epoch. (c): the same bytes moved
by ``a *= 1`` on p, m, v in NumPy (one thread, no Adam arithmetic), for scale.

    python bench/adam_stream_bound.py [--size ml1m] [--reps 5]
"""
import argparse
import importlib.util
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _turns import serve_timed, take_turns  # noqa: E402
# compare_autorec loads no fastnn kernels when imported.
from compare_autorec import SIZES  # noqa: E402

WAYS = ("torch epoch", "exact Adam stream (fastnn)", "p,m,v *= 1 (NumPy, 1 thread)")


def make_epoch(way, size, k):
    """One epoch's function of ``way``, built in this process; torch is loaded
    before fastnn's kernels (whose import sets OpenMP's waiting policy)."""
    if way == WAYS[0]:
        import torch  # noqa: F401
    from compare_autorec import TorchIAutoRec, synthetic_ratings
    R = synthetic_ratings(*SIZES[size])
    X = R.T.tocsr()
    X.sort_indices()
    n_items, n_users = X.shape
    batches = -(-n_items // 256)
    if way == WAYS[0]:
        return TorchIAutoRec(X, k, 1e-3, 1e-3, 256, 0).epoch
    rng = np.random.default_rng(0)
    arrays = [[rng.standard_normal((n_users, k)).astype(np.float32) * s
               for s in (0.05, 0.01, 0.001)] for _ in range(2)]  # (p, m, v) for W and Vt
    for _, m, v in arrays:
        np.abs(v, out=v)
    if way == WAYS[2]:
        def numpy_epoch():
            for _ in range(batches):
                for p, m, v in arrays:
                    for a in (p, m, v):
                        np.multiply(a, np.float32(1), out=a)
        return numpy_epoch
    from fastnn._C import autorec_step as K
    from fastnn._C.sparse import _adam_coefficients
    # An empty pattern: every row's data gradient is 0, the L2 term remains.
    t_indptr = np.zeros(n_users + 1, np.int32)
    t_indices = np.zeros(0, np.int32)
    perm = np.zeros(0, np.int32)
    G = np.zeros((1, k), np.float32)
    data = np.zeros(0, np.float32)
    nt = os.cpu_count()
    buf, stride = K._row_buffers(nt, k, np.float32)
    sq = np.empty(n_users)
    lr_t, eps_t, _, _ = _adam_coefficients(1e-3, 0.9, 0.999, 1e-8, 1, 0.0, False)

    def adam_epoch():
        for _ in range(batches):
            for p, m, v in arrays:
                K._csr_perm_matmul_adam_sq(t_indptr, t_indices, perm, data, G, p, m, v, lr_t,
                                           0.9, 0.999, eps_t, 1e-3, buf, stride, nt, sq)
    return adam_epoch


def serve_way(way, size, k):
    epoch = make_epoch(way, size, k)
    epoch()  # warm-up
    serve_timed(epoch, {"ready": True})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", choices=sorted(SIZES), default="ml1m")
    ap.add_argument("--k", type=int, default=500)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve is not None:
        return serve_way(WAYS[args.serve], args.size, args.k)
    n_users, n_items, _ = SIZES[args.size]
    batches = -(-n_items // 256)
    ways = list(WAYS) if importlib.util.find_spec("torch") is not None else list(WAYS[1:])
    if WAYS[0] not in ways:
        print("torch: not installed (pip install torch==2.13.0): no budget to compare with")
    children = {w: ([sys.executable, os.path.abspath(__file__), "--serve", str(WAYS.index(w)),
                     "--size", args.size, "--k", str(args.k)], None) for w in ways}
    _, times, _ = take_turns(children, args.reps)
    med = {name: float(np.median(v)) for name, v in times.items()}
    n_params = 2 * n_users * args.k
    print(f"{args.size}: {n_params / 1e6:.2f} M params (W, Vt) x {batches} batches, "
          f"24 B/param/batch = {n_params * 24 * batches / 1e9:.2f} GB per epoch; "
          f"median of {args.reps}, taking turns, a process each; load average "
          f"{os.getloadavg()[0]:.2f}")
    target = 0.1 * med[WAYS[0]] if WAYS[0] in med else None
    for name, t in med.items():
        gbs = n_params * 24 * batches / t / 1e9
        budget = f"{t / target:5.2f} x the 0.1x budget" if target else "no torch"
        print(f"  {name:30s} {t:7.3f} s/epoch  ({budget}"
              + (f", {gbs:5.1f} GB/s)" if name != WAYS[0] else ")"))


if __name__ == "__main__":
    main()
