"""How much of the 0.1x target the exact full Adam pass alone takes.

Interleaved in one process (so both see the same machine load): (a) the dense
masked PyTorch I-AutoRec epoch of compare_autorec.py and (b) 15 (= batches per
epoch) exact Adam passes over W and Vt with no data gradient, i.e. only the L2
term: each reads and writes p, m, v once (24 bytes per parameter, 6,040 x 500 x 2
float32 parameters), with fastnn's fused, parallel, vectorised row kernel (the
one autorec_adam_step uses). Any exact full-Adam training step moves at least
these bytes, so (b) is a floor for one fastnn epoch. (c): the same bytes moved
by ``a *= 1`` on p, m, v in NumPy (one thread, no Adam arithmetic), for scale.

OMP_WAIT_POLICY=PASSIVE for the whole process (as fastnn.recsys.sparse_ops
sets it): otherwise torch's OpenMP threads spin after each torch epoch and
starve the next kernel in the same process.

    python bench/adam_stream_bound.py [--size ml1m] [--reps 5]
"""
import argparse
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from compare_autorec import SIZES, TorchIAutoRec, synthetic_ratings  # noqa: E402
from fastnn._C import sparse as K  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", choices=sorted(SIZES), default="ml1m")
    ap.add_argument("--k", type=int, default=500)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    R = synthetic_ratings(*SIZES[args.size])
    X = R.T.tocsr()
    X.sort_indices()
    n_items, n_users = X.shape
    batches = -(-n_items // 256)
    torch_model = TorchIAutoRec(X, args.k, 1e-3, 1e-3, 256, 0)
    rng = np.random.default_rng(0)
    arrays = [[rng.standard_normal((n_users, args.k)).astype(np.float32) * s
               for s in (0.05, 0.01, 0.001)] for _ in range(2)]  # (p, m, v) for W and Vt
    for _, m, v in arrays:
        np.abs(v, out=v)
    # An empty pattern: every row's data gradient is 0, the L2 term remains.
    t_indptr = np.zeros(n_users + 1, np.int32)
    G = np.zeros((1, args.k), np.float32)
    data = np.zeros(0, np.float32)
    nt = os.cpu_count()
    buf, stride = K._row_buffers(nt, args.k, np.float32)
    sq = np.empty(n_users)
    lr_t, eps_t, _, _ = K._adam_coefficients(1e-3, 0.9, 0.999, 1e-8, 1, 0.0, False)

    def adam_epoch():
        for _ in range(batches):
            for p, m, v in arrays:
                K._csr_perm_matmul_adam_sq(t_indptr, t_indices, perm, data, G, p, m, v, lr_t,
                                           0.9, 0.999, eps_t, 1e-3, buf, stride, nt, sq)

    def numpy_epoch():
        for _ in range(batches):
            for p, m, v in arrays:
                for a in (p, m, v):
                    np.multiply(a, np.float32(1), out=a)

    t_indices = np.zeros(0, np.int32)
    perm = np.zeros(0, np.int32)
    ways = {"torch epoch": torch_model.epoch, "exact Adam stream (fastnn)": adam_epoch,
            "p,m,v *= 1 (NumPy, 1 thread)": numpy_epoch}
    for f in ways.values():
        f()  # warm-up
    times = {name: [] for name in ways}
    for _ in range(args.reps):
        for name, f in ways.items():
            t = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - t)
    med = {name: float(np.median(v)) for name, v in times.items()}
    n_params = 2 * n_users * args.k
    print(f"{args.size}: {n_params / 1e6:.2f} M params (W, Vt) x {batches} batches, "
          f"24 B/param/batch = {n_params * 24 * batches / 1e9:.2f} GB per epoch; "
          f"median of {args.reps}, interleaved; load average {os.getloadavg()[0]:.2f}")
    target = 0.1 * med["torch epoch"]
    for name, t in med.items():
        gbs = n_params * 24 * batches / t / 1e9
        print(f"  {name:30s} {t:7.3f} s/epoch  ({t / target:5.2f} x the 0.1x budget"
              + (f", {gbs:5.1f} GB/s)" if "torch" not in name else ")"))


if __name__ == "__main__":
    main()
