"""Train the character LM of `fastnn rnn --kind charlm` in fastnn and the same
model in PyTorch CPU, for the same epochs, and print both validation bits per
character and epoch times side by side.

Same model (Embedding 32 -> LSTM 128, or GRU/SimpleRNN with --cell -> Linear
softmax over the 62 characters), same data (bench/_data.charlm_data: the
embedded King James text, 90/10, windows of 64 characters), same batch (64,
shuffled each epoch), same optimizer (Adam 2e-3, eps 1e-7 as Keras's), same
loss (cross-entropy averaged over every step of the batch), and the same
initial weights: the fastnn process draws them (Keras's initializers) and
writes them to a file that the PyTorch process loads, mapped between the two
layouts (Keras's gate order i, f, c, o is PyTorch's; GRU's z, r, h becomes
r, z, n, its two bias rows PyTorch's bias_ih and bias_hh). Only the shuffling
and float rounding differ. Each library runs in its own process (PyTorch's
never imports fastnn), one after the other; the epoch time is the median of
the epochs after the first.

    python bench/compare_charlm.py                 # 5 epochs, LSTM
    python bench/compare_charlm.py --epochs 10 --cell gru

Targets (issue #17): fastnn's validation bits per character no worse than
PyTorch's by more than 1%, and its epoch no slower.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import _data  # noqa: E402
from _epochs import torch_epoch  # noqa: E402


def _median(xs):
    return float(np.median(xs)) if xs else float("nan")


# ------------------------------------------------------------------ fastnn
def run_fastnn(args):
    sys.path.insert(0, os.path.dirname(HERE))
    import fastnn
    from fastnn.recipes_rnn import char_lm
    c = _data.CHARLM
    x, y, xv, yv, vocab = _data.charlm_data()
    fastnn.set_seed(args.seed)
    model = char_lm(vocab, c["seq"], c["embedding"], c["units"], args.cell, c["lr"])
    np.savez(args.init, *model.get_weights())
    bpc, times = [], []
    for _ in range(args.epochs):
        t0 = time.perf_counter()
        model.fit(x, y, batch_size=c["batch"], epochs=1, verbose=0, shuffle=True)
        times.append(time.perf_counter() - t0)
        bpc.append(float(model.evaluate(xv, yv, batch_size=256)) / np.log(2))
    return {"bpc": bpc, "times": times}


# ----------------------------------------------------------------- PyTorch
def torch_char_lm(vocab, cell, weights=None, freeze_bias_hh=False):
    """The PyTorch model, with ``weights`` (fastnn's get_weights() order:
    embedding table, kernel, recurrent kernel, bias, dense kernel, dense
    bias) mapped into PyTorch's layout when given. nn.LSTM and nn.RNN hold
    two bias vectors where Keras holds one; both train, so under Adam the
    sum moves about twice as fast. ``freeze_bias_hh`` keeps the second at
    zero: then the model and its updates are exactly Keras's (the GRU's two
    biases are Keras's two rows, and are never frozen)."""
    import torch
    c = _data.CHARLM
    rnn_class = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "simplernn": torch.nn.RNN}[cell]

    class CharLM(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(vocab, c["embedding"])
            self.rnn = rnn_class(c["embedding"], c["units"], batch_first=True)
            self.out = torch.nn.Linear(c["units"], vocab)

        def forward(self, x):
            return self.out(self.rnn(self.emb(x))[0])

    model = CharLM()
    if weights is not None:
        table, kernel, recurrent, bias, dense_k, dense_b = weights
        u = c["units"]
        bias_ih, bias_hh = (bias, np.zeros_like(bias)) if bias.ndim == 1 else (bias[0], bias[1])
        if cell == "gru":   # Keras z, r, h -> PyTorch r, z, n
            order = np.r_[u:2 * u, 0:u, 2 * u:3 * u]
            kernel, recurrent = kernel[:, order], recurrent[:, order]
            bias_ih, bias_hh = bias_ih[order], bias_hh[order]
        sd = {"emb.weight": table, "rnn.weight_ih_l0": kernel.T, "rnn.weight_hh_l0": recurrent.T,
              "rnn.bias_ih_l0": bias_ih, "rnn.bias_hh_l0": bias_hh,
              "out.weight": dense_k.T, "out.bias": dense_b}
        model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v, np.float32))
                               for k, v in sd.items()})
    if freeze_bias_hh and cell != "gru":
        with torch.no_grad():
            model.rnn.bias_hh_l0.zero_()
        model.rnn.bias_hh_l0.requires_grad_(False)
    return model


def torch_epoch_fn(model, x, y, seed=0):
    """One shuffled epoch of Adam steps; returns the callable."""
    import torch
    c = _data.CHARLM
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=c["lr"],
                           eps=1e-7)
    return torch_epoch(model, opt, torch.from_numpy(x), torch.from_numpy(y), c["batch"],
                       torch.Generator().manual_seed(seed))


def run_torch(args):
    import torch
    x, y, xv, yv, vocab = _data.charlm_data()
    with np.load(args.init) as f:
        weights = [f[f"arr_{i}"] for i in range(len(f.files))]
    model = torch_char_lm(vocab, args.cell, weights, args.torch_bias == "frozen")
    epoch = torch_epoch_fn(model, x, y, args.seed)
    txv, tyv = torch.from_numpy(xv), torch.from_numpy(yv)
    bpc, times = [], []
    for _ in range(args.epochs):
        t0 = time.perf_counter()
        epoch()
        times.append(time.perf_counter() - t0)
        with torch.no_grad():
            logits = model(txv)
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                     tyv.reshape(-1))
        bpc.append(float(loss) / np.log(2))
    return {"bpc": bpc, "times": times, "threads": torch.get_num_threads()}


# ------------------------------------------------------------------ driver
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--cell", default="lstm", choices=["lstm", "gru", "simplernn"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--torch-bias", default="frozen", choices=["frozen", "trained"],
                        help="LSTM/SimpleRNN: keep PyTorch's second bias (bias_hh) at zero, "
                             "as Keras has one (frozen, default: the same model), or train "
                             "it as nn.LSTM does by default (trained)")
    parser.add_argument("--child", choices=["fastnn", "torch"], help=argparse.SUPPRESS)
    parser.add_argument("--init", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        result = (run_fastnn if args.child == "fastnn" else run_torch)(args)
        print(json.dumps(result))
        return result
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        init = os.path.join(tmp, "init.npz")
        for lib in ("fastnn", "torch"):   # fastnn first: it writes the initial weights
            out = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", lib,
                                  "--init", init, "--epochs", str(args.epochs), "--cell",
                                  args.cell, "--seed", str(args.seed), "--torch-bias",
                                  args.torch_bias],
                                 capture_output=True, text=True, check=False)
            if out.returncode:
                sys.exit(f"{lib} run failed:\n{out.stderr}")
            results[lib] = json.loads(out.stdout.strip().splitlines()[-1])
    f, t = results["fastnn"], results["torch"]
    c = _data.CHARLM
    print(f"char-LM: Embedding {c['embedding']} -> {args.cell.upper()} {c['units']} -> softmax, "
          f"seq {c['seq']}, batch {c['batch']}, Adam {c['lr']:g}; load {os.getloadavg()[0]:.2f}; "
          f"torch threads {t.get('threads')}; torch bias_hh {args.torch_bias}")
    print(f"{'epoch':>5}  {'fastnn bpc':>10}  {'torch bpc':>10}  {'fastnn s':>8}  {'torch s':>8}")
    for i in range(args.epochs):
        print(f"{i + 1:>5}  {f['bpc'][i]:>10.4f}  {t['bpc'][i]:>10.4f}  {f['times'][i]:>8.2f}  "
              f"{t['times'][i]:>8.2f}")
    tf = _median(f["times"][1:] or f["times"])
    tt = _median(t["times"][1:] or t["times"])
    gap = f["bpc"][-1] / t["bpc"][-1] - 1
    print(f"final validation bits/char: fastnn {f['bpc'][-1]:.4f}, torch {t['bpc'][-1]:.4f} "
          f"({100 * gap:+.2f}%: target <= +1%); median epoch: fastnn {tf:.2f} s, torch {tt:.2f} s "
          f"(ratio {tf / tt:.2f}: target <= 1)")
    return results


if __name__ == "__main__":
    main()
