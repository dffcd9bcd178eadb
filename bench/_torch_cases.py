"""The PyTorch CPU side of the benchmark suite: every case's PyTorch version,
and the child process that times them (started by bench/conftest.py).

PyTorch runs in its own process so that its OpenMP and BLAS thread pools and
fastnn's never share one process (one OpenMP runtime reads its settings once,
when it loads: in one process one library would run with the other's). The
child imports torch first and never imports fastnn.

Protocol: one JSON request per stdin line, ``{"case", "params", "mode",
"rounds", "min_rounds", "max_time", "min_time"}``; one JSON answer per line,
``{"times": [seconds per call, one per round], "iterations": calls per round}``
or ``{"error": traceback}``. Modes: "calls" calibrates like pytest-benchmark
(enough calls per round to reach ``min_time``, enough rounds to fill
``max_time``, at least ``min_rounds``); "epochs" runs one warm-up and
``rounds`` timed calls; "once" one call (``--benchmark-disable``).

    python bench/_torch_cases.py --serve     # the child; normally conftest starts it
"""
import json
import math
import os
import sys
import time
import traceback

import torch  # first: before anything else can load an OpenMP runtime

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _data  # noqa: E402
from _epochs import torch_epoch  # noqa: E402

F = torch.nn.functional
#: Threads for PyTorch's pool: FASTNN_BENCH_TORCH_THREADS, else one per CPU.
THREADS = int(os.environ.get("FASTNN_BENCH_TORCH_THREADS") or os.cpu_count() or 1)


def t(a, grad=False):
    return torch.from_numpy(np.ascontiguousarray(a)).requires_grad_(grad)


# ------------------------------------------------------------ dense kernels
def gemm(shape):
    a, b, out = (t(x) for x in _data.gemm_operands(*_data.GEMM_SHAPES[shape]))
    return lambda: torch.matmul(a, b, out=out)


def dense(need_dx):
    """Forward + backward of a 784 -> 256 ReLU layer; without dx the input
    does not require grad (a first layer), as fastnn skips dx."""
    x, W, b, dy = _data.dense_layer()
    tx, tW, tb, tdy = t(x, need_dx), t(W.T, True), t(b, True), t(dy)  # W as nn.Linear's

    def step():
        y = torch.relu(F.linear(tx, tW, tb))
        y.backward(tdy)
    return step


FORWARD = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu,
           "elu": lambda x: F.elu(x, 1.0), "softmax": lambda x: torch.softmax(x, -1)}
# The kernels autograd calls for each backward, from the output y.
BACKWARD = {"sigmoid": torch.ops.aten.sigmoid_backward,
            "relu": lambda dy, y: torch.ops.aten.threshold_backward(dy, y, 0),
            "softmax": lambda dy, y: torch.ops.aten._softmax_backward_data(
                dy, y, -1, torch.float32)}


def activation_forward(name):
    x, _ = _data.activation_input()
    x = t(x)
    return lambda: FORWARD[name](x)


def activation_backward(name):
    x, dy = _data.activation_input()
    y, dy = FORWARD[name](t(x)), t(dy)
    return lambda: BACKWARD[name](dy, y)


def softmax_cross_entropy():
    """Per-sample losses and their gradient w.r.t. the logits, as fastnn's
    softmax_cross_entropy returns (summed loss: the unscaled gradient)."""
    logits, labels = _data.classification_batch()
    z, y = t(logits, True), torch.from_numpy(labels)

    def step():
        z.grad = None
        F.cross_entropy(z, y, reduction="sum").backward()
    return step


# --------------------------------------------------------------- optimizers
def _one_param(opt_class, **kwargs):
    p, g = _data.optim_arrays(2)
    tp = t(p, True)
    tp.grad = t(g)
    return opt_class([tp], **kwargs).step


def adam():
    return _one_param(torch.optim.Adam, lr=1e-3, eps=1e-7)


def adamw():
    return _one_param(torch.optim.AdamW, lr=1e-3, eps=1e-7, weight_decay=1e-2)


def sgd_nesterov():
    return _one_param(torch.optim.SGD, lr=1e-3, momentum=0.9, nesterov=True, weight_decay=1e-4)


def rmsprop():
    return _one_param(torch.optim.RMSprop, lr=1e-3, alpha=0.9, eps=1e-7)


def adagrad():
    return _one_param(torch.optim.Adagrad, lr=1e-3, eps=1e-7)


def adam_dead_units():
    """One Adam step from the same state each round (setup, untimed), 3% of the
    first moments denormal; PyTorch's default keeps denormals."""
    base = [t(a) for a in _data.dead_unit_state()]
    tp = t(base[0].numpy().copy(), True)
    tp.grad = base[1]
    opt = torch.optim.Adam([tp], lr=1e-3, eps=1e-7)
    opt.step()  # creates the state

    def setup():
        state = opt.state[tp]
        with torch.no_grad():
            tp.copy_(base[0])
            state["exp_avg"].copy_(base[2])
            state["exp_avg_sq"].copy_(base[3])
        state["step"].fill_(9)
    return opt.step, setup


# ------------------------------------------ sparse hot path: dense masked way
def _sparse():
    d = {k: t(v) for k, v in _data.sparse_batch().items() if k != "X"}
    return d


def spmm():
    d = _sparse()
    return lambda: d["Xd"] @ d["W"]


def spmm_t():
    d = _sparse()
    return lambda: d["Xd"].T @ d["G"]


def sddmm():
    d = _sparse()
    return lambda: (d["H"] @ d["Vt"].T + d["c"]) * d["M"]


def masked_loss():
    d = _sparse()
    R = d["H"] @ d["Vt"].T

    def step():
        E = d["M"] * (R - d["Xd"])
        return float((E * E).sum(dtype=torch.float64)), 2 * E
    return step


def adam_W():
    d = _sparse()
    p = d["W"].clone().requires_grad_(True)
    p.grad = d["Vt"].clone()
    return torch.optim.Adam([p], lr=1e-3, eps=1e-8, weight_decay=1e-3).step


def _autorec_params(d):
    return {n: d[n].clone().requires_grad_(True) for n in ("W", "b", "Vt", "c")}


def _autorec_loss(d, p):
    H = torch.sigmoid(d["Xd"] @ p["W"] + p["b"])
    E = d["M"] * (H @ p["Vt"].T + p["c"] - d["Xd"])
    return (E * E).sum()


def batch_step():
    d = _sparse()
    p = _autorec_params(d)

    def step():
        for q in p.values():
            q.grad = None
        _autorec_loss(d, p).backward()
    return step


def train_step():
    d = _sparse()
    p = _autorec_params(d)
    opt_l2 = torch.optim.Adam([p["W"], p["Vt"]], lr=1e-3, eps=1e-8, weight_decay=1e-3)
    opt = torch.optim.Adam([p["b"], p["c"]], lr=1e-3, eps=1e-8)

    def step():
        opt.zero_grad()
        opt_l2.zero_grad()
        _autorec_loss(d, p).backward()
        opt.step()
        opt_l2.step()
    return step


# ---------------------------------------------------------- training epochs
def autorec_epoch(size):
    """One I-AutoRec epoch, dense masked, autograd, torch.optim.Adam (L2 as
    Adam's weight decay on W and V): compare_autorec.py's torch way."""
    from compare_autorec import TorchIAutoRec
    a = _data.AUTOREC
    X = _data.autorec_ratings(size).T.tocsr()  # items x users: I-AutoRec samples
    model = TorchIAutoRec(X, a["k"], a["lam"], a["lr"], a["batch"], a["seed"])
    torch.set_num_threads(THREADS)  # TorchIAutoRec sets its own
    return model.epoch


def mlp_epoch():
    """One epoch of the README's MLP, a plain PyTorch loop (shuffled batches,
    cross-entropy on logits, Adam)."""
    torch.manual_seed(0)
    sizes, m = _data.MLP["sizes"], _data.MLP
    model = torch.nn.Sequential(torch.nn.Linear(sizes[0], sizes[1]), torch.nn.ReLU(),
                                torch.nn.Linear(sizes[1], sizes[2]), torch.nn.ReLU(),
                                torch.nn.Linear(sizes[2], sizes[3]))
    opt = torch.optim.Adam(model.parameters(), lr=m["lr"])
    x, y = (torch.from_numpy(a) for a in _data.mnist_shaped())
    return torch_epoch(model, opt, x, y, m["batch"])


def cnn_epoch():
    """One epoch of Keras's MNIST convnet (Conv 32 k3 relu, MaxPool 2, Conv 64
    k3 relu, MaxPool 2, Flatten, Dropout 0.5, Dense 10), a plain PyTorch loop
    in PyTorch's own NCHW layout (shuffled batches, cross-entropy on logits,
    Adam with Keras's epsilon)."""
    torch.manual_seed(0)
    c = _data.CNN
    nn = torch.nn
    (h, w, channels), k = c["image"], 3

    def pooled(n):   # a side after conv (valid) and pool, twice: 28 -> 5
        return ((n - k + 1) // 2 - k + 1) // 2
    flat = 64 * pooled(h) * pooled(w)
    model = nn.Sequential(nn.Conv2d(channels, 32, k), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(32, 64, k), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Dropout(0.5), nn.Linear(flat, c["classes"]))
    opt = torch.optim.Adam(model.parameters(), lr=c["lr"], eps=1e-7)
    x, y = _data.mnist_images()
    x, y = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))), torch.from_numpy(y)
    return torch_epoch(model, opt, x, y, c["batch"])


# ------------------------------------------------------- batch normalization
def batchnorm(memory_format):
    """BatchNorm2d training forward + backward (dx, dgamma, dbeta) on the NHWC
    batch of _data.batchnorm_batch, held as NCHW ("nchw") or as NCHW in the
    channels_last memory format ("channels_last": NHWC bytes, as fastnn's)."""
    x, gamma, beta, dy = _data.batchnorm_batch()
    fmt = torch.channels_last if memory_format == "channels_last" else torch.contiguous_format
    tx = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(memory_format=fmt).requires_grad_(True)
    tdy = torch.from_numpy(dy).permute(0, 3, 1, 2).contiguous(memory_format=fmt)
    bn = torch.nn.BatchNorm2d(x.shape[-1], eps=_data.BATCHNORM["epsilon"], momentum=0.01)
    with torch.no_grad():
        bn.weight.copy_(t(gamma))
        bn.bias.copy_(t(beta))
    bn.train()

    def step():
        tx.grad = None
        bn.zero_grad()
        bn(tx).backward(tdy)
    return step


CASES = {f.__name__: f for f in (
    gemm, dense, activation_forward, activation_backward, softmax_cross_entropy,
    adam, adamw, sgd_nesterov, rmsprop, adagrad, adam_dead_units,
    spmm, spmm_t, sddmm, masked_loss, adam_W, batch_step, train_step,
    autorec_epoch, mlp_epoch, cnn_epoch,
    batchnorm)}


def conv2d(case, need_dx):
    """relu(conv2d(x, W, b)) forward + backward, "same" padding, NCHW (PyTorch's
    own layout); without dx the input does not require grad (a first layer)."""
    x, W, b, dy = _data.conv_layer(case)
    k = W.shape[0]
    tx, tW, tb = t(x.transpose(0, 3, 1, 2), need_dx), t(W.transpose(3, 2, 0, 1), True), t(b, True)
    tdy = t(dy.transpose(0, 3, 1, 2))

    def step():
        y = torch.relu(F.conv2d(tx, tW, tb, padding=k // 2))
        y.backward(tdy)
    return step


CASES.update({f.__name__: f for f in (conv2d,)})


# -------------------------------------------- depthwise convolution, pooling
def _nchw(a, memory_format):
    """An NHWC array as PyTorch's NCHW tensor, stored channels_last (NHWC in
    memory, as fastnn's) or contiguous NCHW."""
    fmt = torch.channels_last if memory_format == "channels_last" else torch.contiguous_format
    return torch.from_numpy(a).permute(0, 3, 1, 2).contiguous(memory_format=fmt)


def depthwise_conv(memory_format="channels_last"):
    """3x3 depthwise conv (groups = channels), "same", bias, forward +
    backward with dx. channels_last (the default here) is PyTorch's faster
    layout for it on this CPU and fastnn's own."""
    x, k, b, dy = _data.depthwise_case()
    c = x.shape[3]
    tx = _nchw(x, memory_format).requires_grad_(True)
    tk = t(k.transpose(2, 3, 0, 1).reshape(c, 1, k.shape[0], k.shape[1]), True)
    tb, tdy = t(b, True), _nchw(dy, memory_format)

    def step():
        tx.grad = tk.grad = tb.grad = None
        F.conv2d(tx, tk, tb, padding="same", groups=c).backward(tdy)
    return step


def max_pool(memory_format="channels_last"):
    """2x2 max pooling, stride 2, forward + backward."""
    x, dy = _data.maxpool_case()
    tx, tdy = _nchw(x, memory_format).requires_grad_(True), _nchw(dy, memory_format)

    def step():
        tx.grad = None
        F.max_pool2d(tx, 2).backward(tdy)
    return step


CASES.update({f.__name__: f for f in (depthwise_conv, max_pool)})


# The char-LM epoch (bench/test_bench_rnn_charlm.py), added as its own block.
def charlm_epoch(cell="lstm"):
    """One epoch of `fastnn rnn --kind charlm`'s model: compare_charlm.py's
    PyTorch way (shuffled batches of 64 windows of 64 characters, Adam)."""
    from compare_charlm import torch_char_lm, torch_epoch_fn
    torch.manual_seed(0)
    x, y, _, _, vocab = _data.charlm_data()
    return torch_epoch_fn(torch_char_lm(vocab, cell), x, y)


CASES["charlm_epoch"] = charlm_epoch


# ------------------------------------------------------- recurrent layers (issue 17)
def rnn_cell(kind):
    """Forward + backward of torch.nn.RNN/GRU/LSTM over the whole sequence
    (batch first, every step's output), with the same weights as fastnn's
    layer (gate blocks reordered: LSTM i f c o = torch's i f g o, GRU z r h ->
    torch's r z n); the input requires grad, as fastnn computes dx."""
    x, dy, W, R, b = _data.rnn_cell(kind)
    c = _data.RNN_CELL
    mod = {"SimpleRNN": torch.nn.RNN, "GRU": torch.nn.GRU, "LSTM": torch.nn.LSTM}[kind](
        c["features"], c["units"], batch_first=True)
    U = c["units"]

    def gates(a):
        if kind != "GRU":
            return a
        return np.concatenate([a[..., U:2 * U], a[..., :U], a[..., 2 * U:]], axis=-1)

    with torch.no_grad():
        mod.weight_ih_l0.copy_(t(gates(W).T))
        mod.weight_hh_l0.copy_(t(gates(R).T))
        mod.bias_ih_l0.copy_(t(gates(b[0] if kind == "GRU" else b)))
        if kind == "GRU":
            mod.bias_hh_l0.copy_(t(gates(b[1])))
        else:
            mod.bias_hh_l0.zero_()
    tx, tdy = t(x, True), t(dy)

    def step():
        mod.zero_grad()
        tx.grad = None
        out, _ = mod(tx)
        out.backward(tdy)
    return step


CASES[rnn_cell.__name__] = rnn_cell


# -------------------------------------------------------------------- child
def per_call_times(fn, setup, request):
    """Seconds per call, one entry per round (see the module docstring)."""
    def round_(n):
        if setup:
            setup()
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        return (time.perf_counter() - t0) / n

    mode = request["mode"]
    if mode == "once":
        return [round_(1)], 1
    round_(1)  # warm-up: PyTorch allocates and picks kernels on the first call
    if mode == "epochs":
        return [round_(1) for _ in range(request["rounds"])], 1
    # "calls": as pytest-benchmark calibrates (setup forces one call per round).
    one = min(round_(1) for _ in range(3))
    iterations = 1 if setup else max(1, math.ceil(request["min_time"] / max(one, 1e-9)))
    rounds = math.ceil(request["max_time"] / max(one * iterations, 1e-9))
    rounds = min(max(rounds, request["min_rounds"]), 100_000)
    return [round_(iterations) for _ in range(rounds)], iterations


def serve():
    torch.set_num_threads(THREADS)
    built = {}
    print(json.dumps({"ready": True, "torch": torch.__version__, "threads": THREADS}),
          flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        try:
            key = json.dumps([request["case"], request["params"]], sort_keys=True)
            if key not in built:
                case = CASES[request["case"]](**request["params"])
                built[key] = case if isinstance(case, tuple) else (case, None)
            times, iterations = per_call_times(*built[key], request)
            answer = {"times": times, "iterations": iterations}
        except Exception:
            answer = {"error": traceback.format_exc()}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    if sys.argv[1:] != ["--serve"]:
        sys.exit(__doc__)
    serve()
