"""GPU benchmarks: fastnn's "cupy" backend against PyTorch CUDA, in one run.

Four cases, each timed with CUDA events after one warm-up call (fastnn's
with CuPy's events, PyTorch's with its own), the best of FASTNN_BENCH_EPOCHS
(default 3) timed calls, the data already on the device for both:

* MLP epoch: 784-256-128-10 (ReLU, softmax cross-entropy, Adam 1e-3,
  batch 128, shuffled) on 60,000 random MNIST-shaped samples (bench/_data.py);
* AutoRec epoch, ML-1M-sized (6,040 users x 3,706 items, 1,000,209 synthetic
  ratings): fastnn's I-AutoRec (hidden 500, batch 256, its sparse fused step)
  against the dense masked PyTorch loop of bench/compare_autorec.py (the
  loss summed on the device, read once an epoch as fastnn's is);
* CNN epoch: Conv 32 k3 relu, MaxPool 2, Conv 64 k3 relu, MaxPool 2,
  Flatten, Dense 10 on 12,000 random 28x28x1 images, batch 128, Adam;
* LSTM fwd+bwd: one train step of LSTM(128) + Dense(1) on (64, 50, 32).

They skip, saying why, without CuPy, a CUDA device, or PyTorch with CUDA.
Nothing is asserted about speed: the ratios (fastnn time / PyTorch time) are
printed and, with FASTNN_GPU_BENCH_JSON=path, written there (bench/gpu_check.sh
does). The issue's targets: MLP and AutoRec epochs <= 1.0x PyTorch CUDA.

    python -m pytest bench/test_bench_gpu.py -s -p no:cacheprovider
"""
import json
import os
import time

import numpy as np
import pytest

import _data

pytestmark = pytest.mark.gpu

REPEAT = int(os.environ.get("FASTNN_BENCH_EPOCHS", "3"))
RESULTS = {}


@pytest.fixture(scope="module")
def devices():
    from fastnn.backend.cupy_ops import BackendUnavailable, import_cupy
    try:
        cupy, _ = import_cupy()
    except BackendUnavailable as e:
        pytest.skip(f"no GPU for the cupy backend: {e}")
    try:
        import torch
    except ImportError:
        pytest.skip("PyTorch is not installed: no CUDA baseline for the GPU benchmarks")
    if not torch.cuda.is_available():
        pytest.skip("PyTorch has no CUDA device: no baseline for the GPU benchmarks")
    import fastnn
    return cupy, torch, fastnn.backend.get_instance("cupy")


def _time(fn, start_event, sync):
    """Best seconds of REPEAT calls of ``fn`` after one warm-up, by CUDA events
    (``start_event()`` makes a (start, end) pair; ``sync(end)`` waits for it)."""
    fn()
    best = float("inf")
    for _ in range(REPEAT):
        start, end = start_event()
        start.record()
        fn()
        end.record()
        best = min(best, sync(start, end))
    return best


def _cupy_time(cupy, fn):
    def events():
        return cupy.cuda.Event(), cupy.cuda.Event()

    def sync(start, end):
        end.synchronize()
        return cupy.cuda.get_elapsed_time(start, end) / 1e3
    return _time(fn, events, sync)


def _torch_time(torch, fn):
    def events():
        return torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

    def sync(start, end):
        end.synchronize()
        return start.elapsed_time(end) / 1e3
    return _time(fn, events, sync)


def _record(name, fastnn_s, torch_s, extra=""):
    RESULTS[name] = dict(fastnn_s=fastnn_s, torch_s=torch_s, ratio=fastnn_s / torch_s)
    print(f"\n[gpu bench] {name}: fastnn {fastnn_s * 1e3:.1f} ms, PyTorch CUDA "
          f"{torch_s * 1e3:.1f} ms, ratio {fastnn_s / torch_s:.2f}x {extra}")
    path = os.environ.get("FASTNN_GPU_BENCH_JSON")
    if path:
        with open(path, "w") as f:
            json.dump(RESULTS, f, indent=1)


# -------------------------------------------------------------------- MLP
def test_mlp_epoch(devices):
    cupy, torch, gpu = devices
    import fastnn
    from fastnn import layers as L
    m = _data.MLP
    x, y = _data.mnist_shaped()
    fastnn.set_seed(0)
    model = fastnn.Sequential([fastnn.Input((m["sizes"][0],)),
                               L.Dense(m["sizes"][1], activation="relu"),
                               L.Dense(m["sizes"][2], activation="relu"),
                               L.Dense(m["sizes"][3], activation="softmax")], backend="cupy")
    model.compile(fastnn.optimizers.Adam(m["lr"]), "sparse_categorical_crossentropy")
    xd, yd = gpu.asarray(x), gpu.asarray(y)
    ours = _cupy_time(cupy, lambda: model.fit(xd, yd, batch_size=m["batch"], epochs=1,
                                              verbose=0, shuffle=True))

    F = torch.nn.functional
    dev = torch.device("cuda")
    sizes = m["sizes"]
    net = torch.nn.Sequential(torch.nn.Linear(sizes[0], sizes[1]), torch.nn.ReLU(),
                              torch.nn.Linear(sizes[1], sizes[2]), torch.nn.ReLU(),
                              torch.nn.Linear(sizes[2], sizes[3])).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=m["lr"])
    xt, yt = torch.from_numpy(x).to(dev), torch.from_numpy(y).to(dev)

    def epoch():
        perm = torch.randperm(len(xt), device=dev)
        for i in range(0, len(xt), m["batch"]):
            idx = perm[i:i + m["batch"]]
            opt.zero_grad()
            F.cross_entropy(net(xt[idx]), yt[idx]).backward()
            opt.step()
    _record("MLP epoch (60k, 784-256-128-10, batch 128)", ours, _torch_time(torch, epoch))


# ---------------------------------------------------------------- AutoRec
def test_autorec_ml1m_epoch(devices):
    cupy, torch, gpu = devices
    from fastnn.recsys import AutoRec
    a = _data.AUTOREC
    R = _data.autorec_ratings("ml1m")  # users x items
    model = AutoRec(hidden=a["k"], lam=a["lam"], learning_rate=a["lr"], batch_size=a["batch"],
                    seed=a["seed"], backend="cupy")
    ours = _cupy_time(cupy, lambda: model.fit(R, epochs=1, verbose=0))

    dev = torch.device("cuda")
    X = R.T.tocsr()  # items x users: I-AutoRec's samples
    Xd = torch.from_numpy(X.toarray()).to(dev)
    M = (Xd != 0).float()
    p = _data.autorec_init(X.shape[1], a["k"], a["seed"])
    params = {n: torch.nn.Parameter(torch.from_numpy(v.copy()).to(dev)) for n, v in p.items()}
    opt_l2 = torch.optim.Adam([params["W"], params["Vt"]], lr=a["lr"], weight_decay=a["lam"])
    opt = torch.optim.Adam([params["b"], params["c"]], lr=a["lr"])
    rng = np.random.default_rng(a["seed"])

    def epoch():
        order = torch.from_numpy(rng.permutation(Xd.shape[0])).to(dev)
        total = torch.zeros((), device=dev)
        for s in range(0, len(order), a["batch"]):
            idx = order[s:s + a["batch"]]
            Xb, Mb = Xd[idx], M[idx]
            opt.zero_grad()
            opt_l2.zero_grad()
            H = torch.sigmoid(Xb @ params["W"] + params["b"])
            out = H @ params["Vt"].T + params["c"]
            loss = ((Mb * (out - Xb)) ** 2).sum()
            loss.backward()
            opt.step()
            opt_l2.step()
            total += loss.detach()
        return float(total)  # one read an epoch, as fastnn's logs
    _record("AutoRec epoch, ML-1M-sized (I-AutoRec, k=500, batch 256; PyTorch dense masked)",
            ours, _torch_time(torch, epoch))


# -------------------------------------------------------------------- CNN
CNN_SAMPLES = 12000


def test_cnn_epoch(devices):
    cupy, torch, gpu = devices
    import fastnn
    from fastnn import layers as L
    c = _data.CNN
    x, y = _data.mnist_images()
    x, y = x[:CNN_SAMPLES], y[:CNN_SAMPLES]
    fastnn.set_seed(0)
    model = fastnn.Sequential([fastnn.Input(c["image"]),
                               L.Conv2D(32, 3, activation="relu"), L.MaxPooling2D(2),
                               L.Conv2D(64, 3, activation="relu"), L.MaxPooling2D(2),
                               L.Flatten(), L.Dense(c["classes"], activation="softmax")],
                              backend="cupy")
    model.compile(fastnn.optimizers.Adam(c["lr"]), "sparse_categorical_crossentropy")
    xd, yd = gpu.asarray(x), gpu.asarray(y)
    ours = _cupy_time(cupy, lambda: model.fit(xd, yd, batch_size=c["batch"], epochs=1,
                                              verbose=0, shuffle=True))

    nn, F = torch.nn, torch.nn.functional
    dev = torch.device("cuda")
    net = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                        nn.Linear(64 * 5 * 5, c["classes"])).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=c["lr"], eps=1e-7)
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).to(dev)
    yt = torch.from_numpy(y).to(dev)

    def epoch():
        perm = torch.randperm(len(xt), device=dev)
        for i in range(0, len(xt), c["batch"]):
            idx = perm[i:i + c["batch"]]
            opt.zero_grad()
            F.cross_entropy(net(xt[idx]), yt[idx]).backward()
            opt.step()
    _record(f"CNN epoch ({CNN_SAMPLES} 28x28x1, conv32-pool-conv64-pool-dense10, batch 128)",
            ours, _torch_time(torch, epoch))


# ------------------------------------------------------------------- LSTM
def test_lstm_fwd_bwd(devices):
    cupy, torch, gpu = devices
    import fastnn
    from fastnn import layers as L
    r = _data.RNN_CELL
    rng = np.random.default_rng(0)
    x = rng.standard_normal((r["batch"], r["steps"], r["features"])).astype(np.float32)
    y = rng.standard_normal((r["batch"], 1)).astype(np.float32)
    fastnn.set_seed(0)
    model = fastnn.Sequential([fastnn.Input((r["steps"], r["features"])), L.LSTM(r["units"]),
                               L.Dense(1)], backend="cupy")
    model.compile(fastnn.optimizers.SGD(1e-3), "mse")
    xd, yd = gpu.asarray(x), gpu.asarray(y)
    ours = _cupy_time(cupy, lambda: model.train_on_batch(xd, yd))

    dev = torch.device("cuda")
    lstm = torch.nn.LSTM(r["features"], r["units"], batch_first=True).to(dev)
    head = torch.nn.Linear(r["units"], 1).to(dev)
    opt = torch.optim.SGD(list(lstm.parameters()) + list(head.parameters()), lr=1e-3)
    xt, yt = torch.from_numpy(x).to(dev), torch.from_numpy(y).to(dev)

    def step():
        opt.zero_grad()
        out, _ = lstm(xt)
        loss = ((head(out[:, -1]) - yt) ** 2).mean()
        loss.backward()
        opt.step()
        return float(loss)  # train_on_batch returns the loss to the host too
    _record(f"LSTM({r['units']}) train step fwd+bwd ({r['batch']}, {r['steps']}, "
            f"{r['features']})", ours, _torch_time(torch, step))
