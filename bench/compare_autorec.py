"""Time one I-AutoRec training epoch several ways and report ratios and memory.

(step) fastnn.recsys.sparse_ops.autorec_adam_step: the whole exact training
    step (forward, loss, backward, L2, Adam on every parameter) in one call;
(fused) fastnn's kernels composed by hand with the W / Vt gradients applied by
    Adam row by row (spmm_t_adam) and decoder + loss + dH fused;
(sparse) fastnn's kernels through the layer contract, then the fused Adam kernel;
(autorec) the library's own fastnn.recsys.autorec.AutoRec: one fit whose
    epochs a callback times (its own initial weights and L2 scaling, so its
    losses differ; its time is what a user gets today);
(numpy) the dense masked formulation in NumPy with NumPy Adam;
(torch) the dense masked formulation in PyTorch CPU, autograd, torch.optim.Adam
    (skipped when torch is not importable).

I-AutoRec: items are samples (a row of the items x users matrix), input dim =
n_users, k hidden units, sigmoid encoder, identity decoder, loss = sum over
observed entries of squared error, L2 ``lam`` through Adam's weight decay
(L2 added to the gradient, identical in all ways but autorec). Adam lr 1e-3,
full dense Adam on every parameter every step in every way.

Each way runs in its own subprocess, so that its peak memory is its own and
each library runs with its own defaults (fastnn's OpenMP threads spin some
microseconds, then sleep, see fastnn/_C/__init__.py; torch's spin for
milliseconds first): ``peak RSS``
is the process's maximum resident set over its whole run, data included;
``traced`` is NumPy's peak allocation during one epoch (tracemalloc; torch's
allocator is invisible to it). Times are the median of ``--epochs`` timed
epochs after one warm-up epoch. Ratios compare medians from one run: the ways
run one after another. With ``--interleave`` the ways' processes live side by
side and take turns, an epoch each per round (the order rotating, 5 ms of quiet
before each turn so that torch's spinning threads do not slow the next way:
bench/_turns.py), so that all see the same machine load; ratios are per round,
then the median (use this on a noisy machine).

    python bench/compare_autorec.py                  # ML-1M size: step, fused, autorec, torch
    python bench/compare_autorec.py --ways step,fused,sparse,numpy,torch
    python bench/compare_autorec.py --size ml100k    # ML-100K size (synthetic)
    python bench/compare_autorec.py --size ml100k --real   # real u.data
    python bench/compare_autorec.py --profile        # where the fastnn time goes
    python bench/compare_autorec.py --ways step --sweep samples   # force one sweep
    python bench/compare_autorec.py --size 4000x3500x700000 --ways step:samples,step:outputs \
        --interleave --epochs 8      # any synthetic size: where the two sweeps cross
    python bench/compare_autorec.py --size ml100k --real --ways step,torch --interleave \
        --epochs 15      # epochs alternating: ratios under the same load
    python bench/compare_autorec.py --ways step:samples:64,step:samples:4 --interleave \
        --epochs 6       # the samples sweep unsliced (64 MiB limit) vs in 4 MiB slices
    python bench/compare_autorec.py --size ml100k --real --interleave --epochs 101 \
        --ways step@GOMP_SPINCOUNT=0,step,torch   # fastnn's threads sleeping at once vs
                         # its default short spin (fastnn/_C/__init__.py)
"""
import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
import tracemalloc

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _data import autorec_init as init_params, synthetic_ratings  # noqa: E402
from _turns import peak_rss_mb, serve, serve_timed, take_turns  # noqa: E402

from _data import AUTOREC_SIZES as SIZES  # noqa: E402


def size_of(name):
    """(users, items, ratings) of a named size or of "USERSxITEMSxRATINGS"."""
    if name in SIZES:
        return SIZES[name]
    try:
        users, items, nnz = (int(x) for x in name.split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"size {name!r}: expected one of {sorted(SIZES)} or USERSxITEMSxRATINGS") from None
    return users, items, nnz


# ---------------------------------------------------------------------- data
def load_data(args):
    if args.real:
        from fastnn.recsys import load_ratings
        path = os.path.expanduser("~/.cache/fastnn-data/ml-100k/u.data")
        return load_ratings(path).matrix
    return synthetic_ratings(*size_of(args.size), seed=args.seed)


@contextlib.contextmanager
def samples_block_bytes(mib):
    """SAMPLES_BLOCK_BYTES set to ``mib`` MiB meanwhile (None: left as it is)."""
    if mib is None:
        yield
        return
    try:
        from fastnn._C import autorec_step as kernels
    except ImportError:  # a build from before the AutoRec step left sparse.pyx
        from fastnn._C import sparse as kernels
    saved = kernels.SAMPLES_BLOCK_BYTES
    kernels.SAMPLES_BLOCK_BYTES = int(mib * (1 << 20))
    try:
        yield
    finally:
        kernels.SAMPLES_BLOCK_BYTES = saved


# ------------------------------------------------------------- (a) sparse path
class SparseIAutoRec:
    def __init__(self, X, k, lam, lr, batch, seed):
        from fastnn.recsys import sparse_ops
        self.so = sparse_ops
        self.X, self.batch, self.lam, self.lr = X, batch, lam, lr
        self.p = init_params(X.shape[1], k, seed)
        self.g = {n: np.zeros_like(v) for n, v in self.p.items()}
        self.m = {n: np.zeros_like(v) for n, v in self.p.items()}
        self.v = {n: np.zeros_like(v) for n, v in self.p.items()}
        self.step = 0
        self.rng = np.random.default_rng(seed)
        self.times = {}

    def _tick(self, name, t0):
        t1 = time.perf_counter()
        self.times[name] = self.times.get(name, 0.0) + t1 - t0
        return t1

    def epoch(self):
        so, p, g = self.so, self.p, self.g
        order = self.rng.permutation(self.X.shape[0])
        total = 0.0
        for s in range(0, len(order), self.batch):
            t = time.perf_counter()
            P = so.as_pattern(self.X[np.sort(order[s:s + self.batch])])
            t = self._tick("slice batch", t)
            H, enc_back = so.sparse_dense_forward(P, p["W"], p["b"], "sigmoid",
                                                  dW=g["W"], db=g["b"])
            t = self._tick("encoder SpMM + sigmoid", t)
            vals, dec_back = so.sampled_dense_forward(P, H, p["Vt"], p["c"],
                                                      dVt=g["Vt"], dc=g["c"])
            t = self._tick("decoder SDDMM", t)
            loss, dvals = so.masked_sq_error(vals, P.data)
            total += loss
            t = self._tick("masked loss", t)
            dH = dec_back(dvals)
            t = self._tick("decoder backward (SpMM-T dVt, SpMM dH, dc)", t)
            enc_back(dH)
            t = self._tick("encoder backward (sigmoid', SpMM-T dW, db)", t)
            self.step += 1
            for n in p:
                so.adam_update(p[n], g[n], self.m[n], self.v[n], self.lr, 0.9, 0.999, 1e-8,
                               self.step, weight_decay=self.lam if n in ("W", "Vt") else 0.0,
                               zero_grad=True)  # grads start the next batch at 0
            self._tick("Adam (fused kernel, zeroes grads)", t)
        return total


class FusedSparseIAutoRec(SparseIAutoRec):
    """The sparse path with the W and Vt gradients never materialised: each
    gradient row is computed in a per-thread buffer and Adam applies it at once
    (``spmm_t_adam``). The same math, bitwise, as ``SparseIAutoRec``."""

    def epoch(self):
        so, p, g = self.so, self.p, self.g
        order = self.rng.permutation(self.X.shape[0])
        total = 0.0
        adam = dict(lr=self.lr, beta1=0.9, beta2=0.999, eps=1e-8)
        for s in range(0, len(order), self.batch):
            t = time.perf_counter()
            P = so.as_pattern(self.X[np.sort(order[s:s + self.batch])])
            t = self._tick("slice batch", t)
            H, _ = so.sparse_dense_forward(P, p["W"], p["b"], "sigmoid")
            t = self._tick("encoder SpMM + sigmoid", t)
            loss, _, dec_back = so.sampled_dense_sq_error(P, H, p["Vt"], p["c"])
            dvals, dH = dec_back.grad_vals, dec_back.dH
            total += loss
            t = self._tick("decoder SDDMM + masked loss + dH (fused)", t)
            self.step += 1
            so.spmm_t_adam(P, H, p["Vt"], self.m["Vt"], self.v["Vt"], step=self.step,
                           weight_decay=self.lam, data=dvals, **adam)
            t = self._tick("Vt: fused SpMM-T gradient + Adam", t)
            dZ = dH * H * (1 - H)
            so.column_sums(P, dvals, out=g["c"], accumulate=False)
            g["b"][...] = dZ.sum(axis=0)
            for n in ("b", "c"):
                so.adam_update(p[n], g[n], self.m[n], self.v[n], step=self.step, **adam)
            t = self._tick("sigmoid', biases (+ Adam)", t)
            so.spmm_t_adam(P, dZ, p["W"], self.m["W"], self.v["W"], step=self.step,
                           weight_decay=self.lam, **adam)
            self._tick("W: fused SpMM-T gradient + Adam", t)
        return total


class StepIAutoRec(SparseIAutoRec):
    """The whole training step in one call, ``sparse_ops.autorec_adam_step``,
    with its default sweep (``--sweep`` picks one): "samples" (item by item:
    encoder, predictions, loss, dH; then user by user: the W, Vt and c gradient
    rows applied by Adam at once) or "outputs" (encoder, then user by user:
    predictions, loss, Vt and c gradient + Adam, dH; then W's gradient + Adam);
    L2 inside the Adam passes. Same math as the other ways. ``block_mib``
    (way "step:samples:MIB"): the samples sweep's slice
    limit (``fastnn._C.autorec_step.SAMPLES_BLOCK_BYTES``) for this way's steps."""
    sweep = None
    block_mib = None

    def epoch(self):
        so, p = self.so, self.p
        state = {n: (self.m[n], self.v[n]) for n in p}
        if not hasattr(self, "pattern"):  # as AutoRec.fit: batches sliced off one pattern
            self.pattern = so.as_pattern(self.X, np.float32)
        order = self.rng.permutation(self.X.shape[0])
        total = 0.0
        for s in range(0, len(order), self.batch):
            t = time.perf_counter()
            P = self.pattern.take_rows(np.sort(order[s:s + self.batch]))
            t = self._tick("slice batch", t)
            self.step += 1
            before = sum(self.times.values())
            with samples_block_bytes(self.block_mib):
                loss, _ = so.autorec_adam_step(P, p["W"], p["b"], p["Vt"], p["c"], state,
                                               self.lr, 0.9, 0.999, 1e-8, self.step, self.lam,
                                               timings=self.times, sweep=self.sweep)
            total += loss
            inside = sum(self.times.values()) - before
            self.times["step: wrapper, allocation"] = (
                self.times.get("step: wrapper, allocation", 0.0)
                + time.perf_counter() - t - inside)
        return total


class AutoRecClass:
    """The library's own ``fastnn.recsys.AutoRec`` (whatever training step it
    uses now): one ``fit(epochs=1 + n, verbose=0)`` call whose epochs are timed
    by a callback (on_epoch_begin to on_epoch_end), so fit's one-off setup
    (building the item x user samples, allocating) is not charged to every
    epoch; a user's long fit amortises it the same way. ``epoch()`` (one fit
    call of one epoch, setup included) remains for the tracemalloc pass. Its L2
    is ``lam`` scaled per batch and its initial weights are its own, so losses
    are not comparable with the other ways; times are."""

    def __init__(self, X, k, lam, lr, batch, seed):
        from fastnn.recsys.autorec import AutoRec
        # fit() takes users x items and builds the items x users samples itself.
        self.R = X.T.tocsr()
        self.model = AutoRec(hidden=k, variant="item", lam=lam, learning_rate=lr,
                             batch_size=batch, seed=seed)

    def epoch(self):
        h = self.model.fit(self.R, epochs=1, verbose=0)
        return float(h["loss"][-1]) * self.R.nnz

    def timed_epochs(self, n):
        """(losses, seconds) of 1 + n epochs in one fit; the first is the warm-up."""
        from fastnn.callbacks import Callback

        class EpochTimer(Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.t = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                seconds.append(time.perf_counter() - self.t)

        seconds = []
        h = self.model.fit(self.R, epochs=1 + n, verbose=0, callbacks=[EpochTimer()])
        return [float(x) * self.R.nnz for x in h["loss"]], seconds

    def start_stepping(self, n):
        """For --interleave: one fit of ``n`` epochs in a thread, each epoch
        waiting for ``next_epoch()``, which returns its seconds (timed inside fit,
        from on_epoch_begin to on_epoch_end)."""
        import queue
        import threading

        from fastnn.callbacks import Callback
        gate, done = threading.Semaphore(0), queue.Queue()

        class Gate(Callback):
            def on_epoch_begin(self, epoch, logs=None):
                gate.acquire()
                self.t = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                done.put(time.perf_counter() - self.t)

        def run():
            try:
                self.model.fit(self.R, epochs=n, verbose=0, callbacks=[Gate()])
            except BaseException as e:  # handed to the main thread
                done.put(e)

        self._gate, self._done = gate, done
        threading.Thread(target=run, daemon=True).start()

    def next_epoch(self):
        self._gate.release()
        out = self._done.get(timeout=3600)
        if isinstance(out, BaseException):
            raise out
        return out


# -------------------------------------------------------------- (b) numpy path
class NumpyIAutoRec:
    def __init__(self, X, k, lam, lr, batch, seed):
        from fastnn.backend.ops import Ops
        self.ops = Ops()
        self.Xd = X.toarray()
        self.M = (X != 0).toarray().astype(np.float32)
        self.batch, self.lam, self.lr = batch, lam, lr
        self.p = init_params(X.shape[1], k, seed)
        self.m = {n: np.zeros_like(v) for n, v in self.p.items()}
        self.v = {n: np.zeros_like(v) for n, v in self.p.items()}
        self.step = 0
        self.rng = np.random.default_rng(seed)

    def epoch(self):
        p = self.p
        order = self.rng.permutation(self.Xd.shape[0])
        total = 0.0
        for s in range(0, len(order), self.batch):
            idx = np.sort(order[s:s + self.batch])
            X, M = self.Xd[idx], self.M[idx]
            H = 1 / (1 + np.exp(-(X @ p["W"] + p["b"])))
            R = H @ p["Vt"].T + p["c"]
            E = M * (R - X)
            total += float((E * E).sum(dtype=np.float64))
            dR = 2 * E
            dZ = (dR @ p["Vt"]) * H * (1 - H)
            g = dict(W=X.T @ dZ, b=dZ.sum(0), Vt=dR.T @ H, c=dR.sum(0))
            self.step += 1
            for n in p:
                self.ops.adam_update(p[n], g[n], self.m[n], self.v[n], self.lr, 0.9, 0.999,
                                     1e-8, self.step,
                                     weight_decay=self.lam if n in ("W", "Vt") else 0.0)
        return total


# -------------------------------------------------------------- (c) torch path
class TorchIAutoRec:
    def __init__(self, X, k, lam, lr, batch, seed):
        import torch
        torch.set_num_threads(2)
        self.torch = torch
        self.Xd = torch.from_numpy(X.toarray())
        self.M = torch.from_numpy((X != 0).toarray().astype(np.float32))
        self.batch = batch
        p = init_params(X.shape[1], k, seed)
        self.params = {n: torch.nn.Parameter(torch.from_numpy(v.copy())) for n, v in p.items()}
        self.opt_l2 = torch.optim.Adam([self.params["W"], self.params["Vt"]], lr=lr,
                                       weight_decay=lam)
        self.opt = torch.optim.Adam([self.params["b"], self.params["c"]], lr=lr)
        self.rng = np.random.default_rng(seed)

    def epoch(self):
        torch, p = self.torch, self.params
        order = self.rng.permutation(self.Xd.shape[0])
        total = 0.0
        for s in range(0, len(order), self.batch):
            idx = torch.from_numpy(np.sort(order[s:s + self.batch]))
            X, M = self.Xd[idx], self.M[idx]
            self.opt.zero_grad()
            self.opt_l2.zero_grad()
            H = torch.sigmoid(X @ p["W"] + p["b"])
            R = H @ p["Vt"].T + p["c"]
            loss = ((M * (R - X)) ** 2).sum()
            loss.backward()
            self.opt.step()
            self.opt_l2.step()
            total += float(loss.detach())
        return total


WAYS = {"step": StepIAutoRec, "autorec": AutoRecClass, "fused": FusedSparseIAutoRec,
        "sparse": SparseIAutoRec, "numpy": NumpyIAutoRec, "torch": TorchIAutoRec}


def torch_installed():
    """Whether torch can be found, without importing it here: a child process
    inherits its parent's peak RSS on Linux, so the parent stays small."""
    import importlib.util
    if importlib.util.find_spec("torch") is None:
        print("torch: not installed, skipped")
        return False
    return True


def way_env(spec):
    """"WAY@VAR=VALUE@..." -> (WAY, the environment of its process): e.g.
    "step@GOMP_SPINCOUNT=0" runs the step way with fastnn's threads sleeping at
    once. SystemExit on a setting without "="."""
    way, *settings = spec.split("@")
    env = dict(os.environ)
    for setting in settings:
        var, eq, value = setting.partition("=")
        if not eq or not var:
            sys.exit(f"way {spec!r}: expected WAY@VAR=VALUE, e.g. step@GOMP_SPINCOUNT=0")
        env[var] = value
    return way, env


def parse_way(way):
    """"kind[:sweep[:MIB]]" -> (kind, sweep or None, slice limit in MiB or None);
    SystemExit with the reason on a bad way."""
    way = way.split("@")[0]
    kind, _, rest = way.partition(":")
    sweep, _, block_mib = rest.partition(":")
    if kind not in WAYS:
        sys.exit(f"way {way!r}: expected one of {sorted(WAYS)}, optionally "
                 f"step:SWEEP or step:samples:MIB")
    if rest and kind != "step":
        sys.exit(f"way {way!r}: only the step way takes a sweep (step:samples, step:outputs)")
    if sweep and sweep not in ("auto", "samples", "outputs"):
        sys.exit(f"way {way!r}: the sweep must be auto, samples or outputs")
    try:
        block = float(block_mib) if block_mib else None
    except ValueError:
        block = -1.0
    if block is not None and not block > 0:
        sys.exit(f"way {way!r}: the slice limit must be a positive number of MiB, "
                 f"e.g. step:samples:4")
    return kind, sweep or None, block


def make_model(way, args):
    """The data and the model of one way, in this process. torch is imported
    first, before anything can load fastnn's kernels: fastnn sets its
    OpenMP waiting (OMP_WAIT_POLICY, GOMP_SPINCOUNT) when it loads, the one
    OpenMP runtime of the process reads them once, and torch is to run with
    its own defaults."""
    kind, sweep, block_mib = parse_way(way)
    if kind == "torch":
        import torch  # noqa: F401
    R = load_data(args)
    X = R.T.tocsr()  # items x users: I-AutoRec samples
    X.sort_indices()
    model = WAYS[kind](X, args.k, args.lam, 1e-3, args.batch, args.seed)
    sweep = sweep or args.sweep
    model.sweep = None if sweep == "auto" else sweep
    model.block_mib = block_mib
    return R, model


def run_one(args):
    """Child process: build the data and one model, time epochs, print JSON."""
    R, model = make_model(args.way, args)
    rss_setup = peak_rss_mb()
    if hasattr(model, "timed_epochs"):
        losses, times = model.timed_epochs(args.epochs)
        times = times[1:]  # the first epoch is the warm-up
    else:
        losses = [model.epoch()]  # warm-up
        times = []
        if hasattr(model, "times"):
            model.times.clear()
        for _ in range(args.epochs):
            t = time.perf_counter()
            losses.append(model.epoch())
            times.append(time.perf_counter() - t)
    profile = dict(getattr(model, "times", {}))
    tracemalloc.start()
    model.epoch()
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    out = dict(way=args.way, shape=list(R.shape), nnz=int(R.nnz), epoch_s=float(np.median(times)),
               all_s=times, losses=losses, traced_mb=traced / 2**20,
               peak_rss_mb=peak_rss_mb(),
               setup_rss_mb=rss_setup)
    if profile:
        out["profile"] = {k: v / args.epochs for k, v in profile.items()}
    print(json.dumps(out))


def serve_one(args):
    """Child process of --interleave (bench/_turns.py): build one way, run the
    warm-up epoch, say "ready" (with the data's shape), then time epochs on
    demand."""
    R, model = make_model(args.serve, args)
    ready = dict(ready=True, shape=list(R.shape), nnz=int(R.nnz))
    if hasattr(model, "start_stepping"):  # autorec: one fit, stepped an epoch at a time
        model.start_stepping(1 + args.epochs)
        model.next_epoch()  # warm-up
        serve(model.next_epoch, ready)  # it times its own epochs (a callback)
    else:
        model.epoch()  # warm-up
        serve_timed(model.epoch, ready)


def run_interleaved(args):
    """Every way in its own process, each with its library's defaults (torch
    with its OpenMP settings, fastnn with its own), all alive at once; one epoch
    of each per round, the order rotating, so that every way sees the same
    machine load; ratios are per round, then the median. A way may name a
    sweep, "step:samples" or "step:outputs", to compare both in one run, and
    the samples sweep's slice limit in MiB, "step:samples:64" (64 MiB: ML-1M
    unsliced). A way may set variables in its process's environment,
    "step@GOMP_SPINCOUNT=0", to compare settings. Peak RSS is each process's,
    data included."""
    ways = []
    for way in args.ways.split(","):
        if parse_way(way)[0] == "torch" and not torch_installed():
            continue
        ways.append(way)
    base = [a for a in sys.argv[1:] if a != "--interleave"]
    children = {}
    for way in ways:
        name, env = way_env(way)
        children[way] = ([sys.executable, os.path.abspath(__file__), "--serve", name] + base,
                         env)
    info, times, last = take_turns(children, args.epochs)
    first = info[ways[0]]
    print(f"I-AutoRec epoch, {'real ML-100K' if args.real else 'synthetic ' + args.size}: "
          f"{first['shape'][1]} items x {first['shape'][0]} users, {first['nnz']} ratings, "
          f"k={args.k}, batch={args.batch}; {args.epochs} rounds interleaved, a process per "
          f"way; load average {os.getloadavg()[0]:.2f}")
    print(f"{'way':24s} {'median s':>9s} {'min s':>7s} {'ratio vs torch: median':>23s} "
          f"{'min':>6s} {'max':>6s} {'peak RSS MB':>12s}")
    for w in ways:
        line = f"{w:24s} {np.median(times[w]):9.3f} {min(times[w]):7.3f}"
        if "torch" in times:
            ratio = np.array(times[w]) / np.array(times["torch"])
            line += f" {np.median(ratio):23.3f} {ratio.min():6.3f} {ratio.max():6.3f}"
        else:
            line += f" {'':23s} {'':6s} {'':6s}"
        print(line + f" {last[w]['peak_rss_mb']:12.0f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="ml1m",
                    help=f"one of {sorted(SIZES)} or USERSxITEMSxRATINGS (synthetic)")
    ap.add_argument("--real", action="store_true", help="real ML-100K u.data (with --size ml100k)")
    ap.add_argument("--k", type=int, default=500)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lam", type=float, default=1e-3)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ways", default="step,fused,autorec,torch")
    ap.add_argument("--profile", action="store_true", help="print the sparse path's breakdown")
    ap.add_argument("--sweep", choices=("auto", "samples", "outputs"), default="auto",
                    help="autorec_adam_step's sweep for the step way (auto: its default)")
    ap.add_argument("--interleave", action="store_true",
                    help="the ways' processes take turns, an epoch of each per round")
    ap.add_argument("--way", help=argparse.SUPPRESS)
    ap.add_argument("--serve", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.way:
        return run_one(args)
    if args.serve:
        return serve_one(args)
    try:
        size_of(args.size)  # a bad size fails here, not in a child
    except argparse.ArgumentTypeError as e:
        ap.error(str(e))
    if args.real and args.size != "ml100k":
        ap.error("--real needs --size ml100k")
    if args.interleave:
        return run_interleaved(args)
    results = {}
    for way in args.ways.split(","):
        if parse_way(way)[0] == "torch" and not torch_installed():
            continue
        name, env = way_env(way)
        cmd = [sys.executable, os.path.abspath(__file__), "--way", name] + sys.argv[1:]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode:
            print(f"{way}: failed\n{proc.stderr}")
            continue
        results[way] = json.loads(proc.stdout.strip().splitlines()[-1])
    if not results:
        return
    first = next(iter(results.values()))
    print(f"I-AutoRec epoch, {'real ML-100K' if args.real else 'synthetic ' + args.size}: "
          f"{first['shape'][1]} items x {first['shape'][0]} users, {first['nnz']} ratings, "
          f"k={args.k}, batch={args.batch}, fwd+bwd+Adam, median of {args.epochs} epochs")
    print(f"{'way':8s} {'s/epoch':>9s} {'vs torch':>9s} {'vs numpy':>9s} "
          f"{'peak RSS MB':>12s} {'traced MB':>10s}  first/last epoch loss")
    for way, r in results.items():
        vs_t = r["epoch_s"] / results["torch"]["epoch_s"] if "torch" in results else float("nan")
        vs_n = r["epoch_s"] / results["numpy"]["epoch_s"] if "numpy" in results else float("nan")
        print(f"{way:8s} {r['epoch_s']:9.3f} {vs_t:9.3f} {vs_n:9.3f} {r['peak_rss_mb']:12.0f} "
              f"{r['traced_mb']:10.0f}  {r['losses'][0]:.4g} / {r['losses'][-1]:.4g}")
    for way in ("step", "fused", "sparse"):
        if args.profile and way in results:
            prof = results[way]["profile"]
            tot = sum(prof.values())
            print(f"{way} path, where the time goes (s/epoch, profiled epochs):")
            for k, v in sorted(prof.items(), key=lambda kv: -kv[1]):
                print(f"  {k:46s} {v:7.3f}  {100 * v / tot:5.1f}%")


if __name__ == "__main__":
    main()
