"""The floor of the recurrent cells' scheme (bench/compare_rnn.py's case: batch
64, 50 steps, 32 -> 128 units, float32): the CPU time, on one thread, of just
the matrix products a fwd+bwd does, through fastnn's GEMM (fastnn._C.blas),
beside PyTorch's whole fwd+bwd of the same cell (same process layout as
compare_rnn.py, one thread each, process CPU time). The products per call, G
gates of U units, T steps of N rows, F features:

    input projection   (T*N, F) @ (F, G*U)                 1
    recurrence         (N, U) @ (U, G*U)                   T  (the GRU's too)
    its gradient       (N, G*U) @ (G*U, U)                 T
    dR                 (U, T*N) @ (T*N, G*U)               1
    dW, dx             (F, T*N) @ (T*N, G*U), (T*N, G*U) @ (G*U, F)

fastnn's / PyTorch's time cannot go below products / PyTorch's whole time
with this scheme, whatever the fused passes and memory cost.

The second column ("cells' microkernel") is the floor of the fused path
(csrc/recurrent_gemm.h) that the cells take at these sizes: the T recurrent
products and their T gradients on the cells' microkernel over R (and R^T)
packed once, dR and dW accumulated per step and dx per step from W^T packed
once, as the kernel does; the input projection through OpenBLAS. (Each product
a Python call here, about 7 us each, included.)

The third ("at peak") is the hardware's floor for the same multiply-adds: all of
them at the microkernel's own rate on a large product (600 x 128 @ 128 x 512,
per-call costs amortised), before any gate pass, copy or synchronisation.

    PYTHONPATH=$PWD python bench/rnn_gemm_floor.py [ROUNDS]
"""
import os
import statistics
import subprocess
import sys
import time

import numpy

N, T, F, U = 64, 50, 32, 128
GATES = {"SimpleRNN": 1, "GRU": 3, "LSTM": 4}


def products(G, reps):
    from fastnn._C import blas
    rng = numpy.random.default_rng(0)
    f = numpy.float32
    x = rng.standard_normal((T * N, F)).astype(f)
    W = rng.standard_normal((F, G * U)).astype(f)
    R = rng.standard_normal((U, G * U)).astype(f)
    h = rng.standard_normal((N, U)).astype(f)
    d = rng.standard_normal((T * N, G * U)).astype(f)
    H = rng.standard_normal((T * N, U)).astype(f)
    out_g = numpy.empty((N, G * U), f)
    out_h = numpy.empty((N, U), f)
    xp = numpy.empty((T * N, G * U), f)
    dR = numpy.empty((U, G * U), f)
    dW = numpy.empty((F, G * U), f)
    dx = numpy.empty((T * N, F), f)
    t0 = time.process_time()
    for _ in range(reps):
        blas.gemm(x, W, out=xp)
        for t in range(T):
            blas.gemm(h, R, out=out_g)
        for t in range(T):
            blas.gemm(d[t * N:(t + 1) * N], R, trans_b=True, out=out_h)
        blas.gemm(H, d, trans_a=True, out=dR)
        blas.gemm(x, d, trans_a=True, out=dW)
        blas.gemm(d, W, trans_b=True, out=dx)
    return (time.process_time() - t0) / reps


def products_fused(G, reps):
    from fastnn._C import blas, recurrent
    rng = numpy.random.default_rng(0)
    f = numpy.float32
    x = rng.standard_normal((T * N, F)).astype(f)
    W = rng.standard_normal((F, G * U)).astype(f)
    R = rng.standard_normal((U, G * U)).astype(f)
    h = rng.standard_normal((N, U)).astype(f)
    d = rng.standard_normal((T * N, G * U)).astype(f)
    HT = rng.standard_normal((T, U, N)).astype(f)   # the kernel reads H_t transposed in place
    XT = rng.standard_normal((T, F, N)).astype(f)   # and so x_t
    out_g = numpy.empty((N, G * U), f)
    out_h = numpy.empty((N, U), f)
    xp = numpy.empty((T * N, G * U), f)
    dR = numpy.zeros((U, G * U), f)
    dW = numpy.empty((F, G * U), f)
    dx = numpy.empty((T * N, F), f)
    t0 = time.process_time()
    for _ in range(reps):
        blas.gemm(x, W, out=xp)
        Rp = recurrent.pack_panels(R)
        for t in range(T):
            recurrent.small_gemm_packed(h, Rp, G * U, out_g)
        RTp = recurrent.pack_panels(numpy.ascontiguousarray(R.T))
        WTp = recurrent.pack_panels(numpy.ascontiguousarray(W.T))
        for t in range(T):
            dt = d[t * N:(t + 1) * N]
            recurrent.small_gemm_packed(dt, RTp, U, out_h)
            recurrent.small_gemm(HT[t], dt, out=dR, add=True)
            recurrent.small_gemm(XT[t], dt, out=dW, add=True)
            recurrent.small_gemm_packed(dt, WTp, F, dx[t * N:(t + 1) * N])
    return (time.process_time() - t0) / reps


def peak_rate():
    """Multiply-adds per second of the cells' microkernel on a large product
    (one thread, CPU time): the best of five."""
    from fastnn._C import recurrent
    rng = numpy.random.default_rng(0)
    a = rng.standard_normal((600, 128)).astype(numpy.float32)
    b = rng.standard_normal((128, 512)).astype(numpy.float32)
    packed, out = recurrent.pack_panels(b), numpy.empty((600, 512), numpy.float32)
    best = 0.0
    for _ in range(5):
        t0 = time.process_time()
        for _ in range(40):
            recurrent.small_gemm_packed(a, packed, 512, out)
        best = max(best, 40 * a.size * 512 / (time.process_time() - t0))
    return best


def macs(G):
    """The multiply-adds of one fwd+bwd: three products of the input side, three
    of the recurrence (forward, its gradient, dR)."""
    return 3 * T * N * F * G * U + 3 * T * N * U * G * U


def main(rounds=5):
    import fastnn
    fastnn.set_num_threads(1)
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    bench = os.path.dirname(os.path.abspath(__file__))
    child = (f"import sys; sys.path.insert(0, {bench!r}); import _torch_cases, time; "
             "_torch_cases.torch.set_num_threads(1); "
             "fns = {k: _torch_cases.rnn_cell(k) for k in ('SimpleRNN', 'GRU', 'LSTM')}; "
             "[f() for f in fns.values()]; print('ready', flush=True)\n"
             "for line in sys.stdin:\n"
             "    k, n = line.split(); t = time.process_time()\n"
             "    [fns[k]() for _ in range(int(n))]\n"
             "    print((time.process_time() - t) / int(n), flush=True)")
    torch = subprocess.Popen([sys.executable, "-c", child], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env=env)
    assert torch.stdout.readline().strip() == "ready"
    mine = {k: [] for k in GATES}
    fused = {k: [] for k in GATES}
    theirs = {k: [] for k in GATES}
    for k, G in GATES.items():
        products(G, 1)
        products_fused(G, 1)
    for _ in range(rounds):
        for k, G in GATES.items():
            mine[k].append(products(G, 3))
            fused[k].append(products_fused(G, 3))
            torch.stdin.write(f"{k} 3\n")
            torch.stdin.flush()
            theirs[k].append(float(torch.stdout.readline()))
    torch.stdin.close()
    torch.wait()
    rate = peak_rate()
    print(f"{rounds} rounds x 3 calls, CPU ms, one thread each; the microkernel's peak "
          f"{rate / 1e9:.1f} G multiply-adds/s")
    for k, G in GATES.items():
        g, p = statistics.median(mine[k]), statistics.median(theirs[k])
        q = statistics.median(fused[k])
        top = macs(G) / rate
        print(f"{k:10s} products alone: OpenBLAS {g * 1e3:7.2f}, cells' microkernel "
              f"{q * 1e3:7.2f}, at peak {top * 1e3:6.2f}  PyTorch fwd+bwd {p * 1e3:7.2f}  "
              f"floor of fastnn/PyTorch {g / p:.2f}, fused path {q / p:.2f}, at peak "
              f"{top / p:.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
