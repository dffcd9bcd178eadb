"""Validation sweeps behind the AutoRec defaults (bench/RESULTS_autorec_quality.md,
"How the new settings were chosen"): one I-AutoRec (k=500) per lambda on one
seed's split, early-stopped on validation RMSE; prints one JSON line per run
with the best validation RMSE, its epoch, the learning-rate cuts before it and,
for the record only, the test RMSE of that model (no refit). No choice is made
here; the protocol itself is ``python -m fastnn autorec``.

    OMP_NUM_THREADS=1 python bench/sweep_autorec_seed0.py --lam 50 100 150 200 \\
        --lr 1e-2 --lr-decay 0.5 --lr-decay-patience 5
"""
import argparse
import json
import os
import time

import numpy

from fastnn.recsys import load_ratings, random_split, validation_split
from fastnn.recsys.autorec import AutoRec


class _MeanBiasAutoRec(AutoRec):
    """The experiment "decoder bias c starts at the training mean" (not adopted)."""

    def __init__(self, c_init, fit_part, **kwargs):
        super().__init__(**kwargs)
        self.c_init, self.fit_part = c_init, fit_part

    def build(self, n_features):
        super().build(n_features)
        X = self._samples(self.fit_part.matrix)
        if self.c_init == "global":
            self.c[...] = X.data.mean()
        else:                                   # each output's (for I-AutoRec: user's) mean
            counts = numpy.bincount(X.indices, minlength=n_features)
            sums = numpy.bincount(X.indices, weights=X.data, minlength=n_features)
            self.c[...] = numpy.where(counts > 0, sums / numpy.maximum(counts, 1), X.data.mean())


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=os.path.expanduser("~/.cache/fastnn-data/ml-100k/u.data"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lam", type=float, nargs="+", default=[100.0])
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--lr-decay", type=float, default=None, help="factor (default: constant)")
    p.add_argument("--lr-decay-patience", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--input-dropout", type=float, default=0.5)
    p.add_argument("--c-init", default="zero", choices=["zero", "output", "global"])
    p.add_argument("--epochs", type=int, default=300)
    p.add_argument("--patience", type=int, default=25)
    a = p.parse_args()

    ratings = load_ratings(a.data)
    train, test = random_split(ratings, 0.1, a.seed)
    fit_part, val = validation_split(train, 0.1, a.seed)
    for lam in a.lam:
        start = time.perf_counter()
        kwargs = dict(hidden=500, lam=lam, learning_rate=a.lr, batch_size=a.batch_size,
                      input_dropout=a.input_dropout, lr_decay=a.lr_decay,
                      lr_decay_patience=a.lr_decay_patience, seed=a.seed)
        model = AutoRec(**kwargs) if a.c_init == "zero" else \
            _MeanBiasAutoRec(a.c_init, fit_part, **kwargs)
        history = model.fit(fit_part, validation=val, epochs=a.epochs, patience=a.patience,
                            verbose=0)
        best = model.best_epoch
        print(json.dumps({
            "seed": a.seed, "lam": lam, "lr": a.lr, "lr_decay": a.lr_decay,
            "lr_decay_patience": a.lr_decay_patience, "batch_size": a.batch_size,
            "input_dropout": a.input_dropout, "c_init": a.c_init, "best_epoch": best,
            "epochs_run": len(history["val_rmse"]),
            "val_rmse": round(history["val_rmse"][best - 1], 5),
            "lr_drops": [e for e in model.lr_drops if e < best],
            "test_rmse_no_refit_record_only": round(model.evaluate(test)[0], 5),
            "seconds": round(time.perf_counter() - start, 1)}), flush=True)


if __name__ == "__main__":
    main()
