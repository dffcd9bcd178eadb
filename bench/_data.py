"""The inputs of every benchmark case, built from fixed seeds with NumPy and
SciPy only: the pytest process (fastnn, NumPy reference) and the PyTorch child
process (bench/_torch_cases.py) build the same arrays from the same code.

Must not import fastnn or torch: the PyTorch child imports this module, and
each library is to run with its own thread pools, unperturbed by the other's.
"""
import os
from pathlib import Path

import numpy as np
import scipy.sparse as sp

#: Timed epochs per epoch-sized case (MLP, AutoRec), after one warm-up epoch.
EPOCHS = int(os.environ.get("FASTNN_BENCH_EPOCHS", "3"))
#: The ways every hot path is timed: fastnn, the plain NumPy reference, PyTorch CPU.
WAYS = ("fastnn", "numpy", "torch")
GEMM_SHAPES = {"1024^3": (1024, 1024, 1024), "128x784x256": (128, 784, 256)}
OPTIM_SIZE = 1 << 20
#: One ML-1M-sized I-AutoRec batch: 256 items x 6,040 users, ~4.5% observed, k = 500.
SPARSE_BATCH = dict(batch=256, users=6040, k=500, density=0.045)
#: (users, items, ratings) of the AutoRec epoch cases.
AUTOREC_SIZES = {"ml1m": (6040, 3706, 1_000_209), "ml100k": (943, 1682, 100_000)}
#: I-AutoRec hyperparameters of every way of the epoch cases.
AUTOREC = dict(k=500, batch=256, lam=1e-3, lr=1e-3, seed=0)
#: The README's MNIST-shaped MLP: 60,000 samples, 784-256-128-10, batch 128, Adam 1e-3.
MLP = dict(samples=60000, sizes=(784, 256, 128, 10), batch=128, lr=1e-3)
#: Keras's MNIST convnet epoch: 60,000 MNIST-shaped 28x28x1 images, batch 128, Adam 1e-3.
CNN = dict(samples=60000, image=(28, 28, 1), classes=10, batch=128, lr=1e-3)


def f32(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def gemm_operands(m, k, n):
    rng = np.random.default_rng(0)
    return f32(rng, m, k), f32(rng, k, n), np.empty((m, n), np.float32)


def dense_layer(m=128, k=784, n=256):
    """x, W (in, out), b, dy of a 784 -> 256 layer on a batch of 128."""
    rng = np.random.default_rng(0)
    x = f32(rng, m, k)
    W = f32(rng, k, n) * np.float32(0.05)
    return x, W, np.zeros(n, np.float32), f32(rng, m, n)


def activation_input(shape=(256, 4096)):
    """x and an upstream gradient dy, float32."""
    rng = np.random.default_rng(0)
    return f32(rng, *shape), f32(rng, *shape)


def classification_batch(n=512, classes=1000):
    """logits (n, classes) float32 and integer labels (n,)."""
    logits, _ = activation_input((n, classes))
    return logits, np.random.default_rng(1).integers(0, classes, n)


def optim_arrays(k):
    """k float32 vectors of OPTIM_SIZE elements (parameters, gradients, state)."""
    rng = np.random.default_rng(0)
    return [f32(rng, OPTIM_SIZE) for _ in range(k)]


def dead_unit_state(dead_frac=0.03, width=256):
    """Adam state (p, g, m, v) of a (N / width, width) weight whose first
    ``dead_frac`` of columns (dead ReLU units) get no gradient: their m has
    decayed to 1e-36, so the update's step * m is a denormal, slow on x86
    unless denormals are flushed (fastnn's kernels flush them)."""
    p, g, m, v = optim_arrays(4)
    g *= 1e-3
    m *= 1e-4
    v = np.abs(v) * np.float32(1e-6)
    dead = np.zeros((OPTIM_SIZE // width, width), bool)
    dead[:, :int(width * dead_frac)] = True
    g[dead.ravel()] = 0
    m[dead.ravel()] = 1e-36
    return p, g, m, v


def sparse_batch():
    """The arrays of one I-AutoRec batch (SPARSE_BATCH): X (CSR, ratings 1..5),
    its dense form Xd and mask M, weights W and Vt (users x k), biases b and c,
    hidden activations H, a hidden gradient G and values at the observed
    entries ``vals``."""
    s = SPARSE_BATCH
    rng = np.random.default_rng(0)
    X = sp.random(s["batch"], s["users"], density=s["density"], format="csr",
                  dtype=np.float32, random_state=rng)
    X.data = rng.integers(1, 6, X.nnz).astype(np.float32)
    Xd = X.toarray()
    users, k, batch = s["users"], s["k"], s["batch"]
    return dict(X=X, Xd=Xd, M=(Xd != 0).astype(np.float32), W=f32(rng, users, k) * 0.01,
                b=f32(rng, k), Vt=f32(rng, users, k) * 0.01, c=f32(rng, users),
                H=np.abs(f32(rng, batch, k)) % 1, G=f32(rng, batch, k), vals=f32(rng, X.nnz))


def synthetic_ratings(n_users, n_items, nnz, seed=0):
    """users x items CSR, long-tailed item popularity and user activity (Zipf-like),
    ratings 1..5 correlated with a user and an item effect. Seeded."""
    rng = np.random.default_rng(seed)
    item_p = 1.0 / np.arange(1, n_items + 1) ** 0.9
    item_p = rng.permutation(item_p / item_p.sum())
    user_p = 1.0 / np.arange(1, n_users + 1) ** 0.6
    user_p = rng.permutation(user_p / user_p.sum())
    keys = np.empty(0, dtype=np.int64)
    while keys.size < nnz:  # draw pairs until enough distinct ones exist
        u = rng.choice(n_users, size=nnz, p=user_p)
        i = rng.choice(n_items, size=nnz, p=item_p)
        keys = np.unique(np.concatenate([keys, u.astype(np.int64) * n_items + i]))
    keys = rng.permutation(keys)[:nnz]
    u, i = keys // n_items, keys % n_items
    ub = rng.normal(0, 0.5, n_users)
    ib = rng.normal(0, 0.7, n_items)
    r = np.clip(np.round(3.6 + ub[u] + ib[i] + rng.normal(0, 0.8, nnz)), 1, 5)
    m = sp.csr_matrix((r.astype(np.float32), (u, i)), shape=(n_users, n_items))
    m.sort_indices()
    return m


def ml100k_path():
    """The real MovieLens-100K u.data ($FASTNN_DATA/ml-100k, else
    ~/.cache/fastnn-data/ml-100k), or None when it is not there."""
    roots = [os.environ.get("FASTNN_DATA"), "~/.cache/fastnn-data"]
    for root in filter(None, roots):
        path = Path(root).expanduser() / "ml-100k" / "u.data"
        if path.is_file():
            return path
    return None


def read_ml100k(path):
    """users x items CSR of u.data (tab-separated user, item, rating, time;
    ids from 1), the matrix fastnn.recsys.load_ratings builds, read with NumPy
    alone so the PyTorch child needs no fastnn."""
    u, i, r = np.loadtxt(path, dtype=np.int64, usecols=(0, 1, 2), unpack=True)
    users, u = np.unique(u, return_inverse=True)
    items, i = np.unique(i, return_inverse=True)
    m = sp.csr_matrix((r.astype(np.float32), (u, i)), shape=(users.size, items.size))
    m.sort_indices()
    return m


def autorec_ratings(size):
    """users x items ratings of an AutoRec epoch case: "ml1m" or "ml100k"
    (synthetic, seeded) or "ml100k-real" (u.data; FileNotFoundError without it)."""
    if size == "ml100k-real":
        path = ml100k_path()
        if path is None:
            raise FileNotFoundError("MovieLens-100K u.data not found in $FASTNN_DATA/ml-100k "
                                    "or ~/.cache/fastnn-data/ml-100k")
        return read_ml100k(path)
    return synthetic_ratings(*AUTOREC_SIZES[size], seed=0)


def autorec_init(n_in, k, seed):
    """The initial W, b, Vt, c of the dense masked reference ways (NumPy, PyTorch)."""
    rng = np.random.default_rng(seed)
    s = 1 / np.sqrt(n_in)
    return dict(W=rng.uniform(-s, s, (n_in, k)).astype(np.float32),
                b=np.zeros(k, np.float32),
                Vt=rng.uniform(-1 / np.sqrt(k), 1 / np.sqrt(k), (n_in, k)).astype(np.float32),
                c=np.zeros(n_in, np.float32))


def mnist_shaped():
    """60,000 random MNIST-shaped samples: x (n, 784) float32 in [0, 1), labels 0..9."""
    rng = np.random.default_rng(0)
    x = rng.random((MLP["samples"], MLP["sizes"][0]), dtype=np.float32)
    return x, rng.integers(0, MLP["sizes"][-1], MLP["samples"])


def mnist_images():
    """60,000 random MNIST-shaped images, channels last as fastnn and Keras take
    them: x (n, 28, 28, 1) float32 in [0, 1), labels 0..9 (the PyTorch child
    transposes x to its own NCHW layout once, outside the timed epoch)."""
    rng = np.random.default_rng(0)
    x = rng.random((CNN["samples"],) + CNN["image"], dtype=np.float32)
    return x, rng.integers(0, CNN["classes"], CNN["samples"])


# ------------------------------------------------------------- convolution
#: name -> (batch, size, channels, kernel, filters): Conv2D, "same" padding,
#: stride 1, bias + ReLU. "3x3": issue 16's case (3.6 GFLOP per fwd+bwd step);
#: "5x5 first": a first layer on 3-channel images (no input gradient).
CONV_CASES = {"3x3 32x32x64->64": (32, 32, 64, 3, 64), "5x5 32x32x3->32 first": (32, 32, 3, 5, 32)}


def conv_layer(case):
    """x (N, H, W, C), W (k, k, C, F) (Keras's layout), b (F,), dy (N, H, W, F), float32."""
    n, size, c, k, f = CONV_CASES[case]
    rng = np.random.default_rng(0)
    s = 1 / np.sqrt(k * k * c)
    return (f32(rng, n, size, size, c), rng.uniform(-s, s, (k, k, c, f)).astype(np.float32),
            f32(rng, f) * 0.1, f32(rng, n, size, size, f))


def conv_flops(case, need_dx):
    """Multiply-adds x 2 of forward + dW (+ dx): one GEMM of N*H*W x k*k*C x F each."""
    n, size, c, k, f = CONV_CASES[case]
    return 2.0 * n * size * size * k * k * c * f * (3 if need_dx else 2)


#: The batch-norm case: an NHWC batch of 32 images 32x32 with 64 channels (the
#: Conv2D case's activation), Keras's epsilon.
BATCHNORM = dict(shape=(32, 32, 32, 64), epsilon=1e-3)


def batchnorm_batch():
    """x (NHWC) with a per-channel offset and spread, gamma, beta, dy; float32."""
    rng = np.random.default_rng(0)
    n, h, w, c = BATCHNORM["shape"]
    x = f32(rng, n, h, w, c) * rng.uniform(0.5, 2, c).astype(np.float32) \
        + rng.standard_normal(c).astype(np.float32)
    return x, f32(rng, c), f32(rng, c), f32(rng, n, h, w, c)


#: The CNN chapter's depthwise and pooling input: batch 32, 32x32, 64 channels.
CNN_POOL = dict(batch=32, size=32, channels=64, kernel=3)


def depthwise_case(multiplier=1):
    """x (N, H, W, C), a 3x3 depthwise kernel (3, 3, C, M), bias (C*M,) and dy
    (N, H, W, C*M) of a "same" DepthwiseConv2D with depth_multiplier M,
    float32 (channels_last, fastnn's layout; the PyTorch case transposes to its
    NCHW)."""
    rng = np.random.default_rng(0)
    n, s, c, k = (CNN_POOL[key] for key in ("batch", "size", "channels", "kernel"))
    m = multiplier
    return (f32(rng, n, s, s, c), f32(rng, k, k, c, m) * np.float32(0.3),
            np.zeros(c * m, np.float32), f32(rng, n, s, s, c * m))


def maxpool_case():
    """x (N, H, W, C) and dy (N, H/2, W/2, C) of a 2x2 MaxPooling2D, float32."""
    rng = np.random.default_rng(0)
    n, s, c = (CNN_POOL[key] for key in ("batch", "size", "channels"))
    return f32(rng, n, s, s, c), f32(rng, n, s // 2, s // 2, c)


# ------------------------------------------------------------ char-level LM
#: The char-LM of `fastnn rnn --kind charlm` (fastnn/recipes_rnn.py): the embedded
#: King James text, 90% for training and 10% for validation, windows of 64 characters
#: that do not overlap, Embedding 32 -> LSTM 128 -> softmax, Adam 2e-3, batch 64.
CHARLM = dict(seq=64, batch=64, embedding=32, units=128, lr=2e-3, val_fraction=0.1)
CHARLM_TEXT = Path(__file__).resolve().parent.parent / "fastnn" / "datasets" / "data" / \
    "kjv-genesis-exodus.txt.gz"


def charlm_data(seq=None):
    """(x, y, x_val, y_val, vocabulary size): int64 windows of the embedded
    text and their next characters, cut as fastnn.recipes_rnn.char_lm_data
    cuts them (read here from the data file, without importing fastnn)."""
    import gzip
    seq = seq or CHARLM["seq"]
    with gzip.open(CHARLM_TEXT, "rt", encoding="utf-8") as f:
        text = f.read()
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    codes = np.array([index[c] for c in text], np.int64)
    cut = int(len(text) * (1 - CHARLM["val_fraction"]))

    def windows(part):
        starts = np.arange(0, len(part) - seq, seq)
        idx = starts[:, None] + np.arange(seq)
        return part[idx], part[idx + 1]

    x, y = windows(codes[:cut])
    xv, yv = windows(codes[cut:])
    return x, y, xv, yv, len(chars)


# ------------------------------------------------------- recurrent layers (issue 17)
#: Issue 17's cell case: batch 64, 50 steps, 32 features -> 128 units.
RNN_CELL = dict(batch=64, steps=50, features=32, units=128)
RNN_GATES = {"SimpleRNN": 1, "GRU": 3, "LSTM": 4}


def rnn_cell(kind):
    """x (batch, steps, features), the output gradient dy (batch, steps, units)
    and Keras-layout weights of a ``kind`` layer: kernel (features, G*units),
    recurrent_kernel (units, G*units), bias (G*units,) or, for the GRU, (2, 3*units)."""
    c = RNN_CELL
    rng = np.random.default_rng(0)
    g = RNN_GATES[kind] * c["units"]
    x = f32(rng, c["batch"], c["steps"], c["features"])
    dy = f32(rng, c["batch"], c["steps"], c["units"])
    W = f32(rng, c["features"], g) * np.float32(1 / np.sqrt(c["features"]))
    R = f32(rng, c["units"], g) * np.float32(1 / np.sqrt(c["units"]))
    b = f32(rng, *((2, g) if kind == "GRU" else (g,))) * np.float32(0.1)
    return x, dy, W, R, b
