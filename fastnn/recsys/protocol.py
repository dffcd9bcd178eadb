"""The AutoRec evaluation protocol, end to end: per seed, a random test split,
a validation part carved from the training part, selection of lambda and the
number of epochs on validation RMSE only, an optional refit on the whole
training part, and test RMSE/MAE plus top-K ranking metrics. Holds the
protocol runner only; the model is in autorec.py, metrics in metrics.py.

The test part is touched exactly once per seed, after selection, by the final
model; every selection score is recorded in the result so that it can be
checked (``result["seeds"][i]["selection"]``).
"""
import platform
import time

import numpy

from .._types import Any, Callable, Dict, DTypeLike, List, Optional, Sequence, Tuple, Union
from .autorec import AutoRec
from .data import Ratings
from .metrics import ranking_metrics
from .splits import random_split, validation_split

#: lambda grid searched by default (the best value on MovieLens-100K with the
#: default Adam schedule, 100 or 150, sits inside it, not on its edge).
DEFAULT_LAMS = (50.0, 100.0, 150.0, 200.0)
#: Default Adam learning rate, and its decay: the factor and the epochs without
#: a new best validation RMSE before each cut. Chosen on validation RMSE
#: (bench/RESULTS.md, "AutoRec quality"); a rate this high needs the decay.
LEARNING_RATE = 1e-2
LR_DECAY = 0.5
LR_DECAY_PATIENCE = 5


class _Average:
    """Mean prediction of several fitted AutoRec models (the same lambda and
    epochs, different initial weights): ``evaluate`` and ``score_matrix`` as
    AutoRec's."""

    def __init__(self, models):
        self.models = models

    def evaluate(self, test):
        m = test.matrix.tocoo()
        pred = numpy.mean([model.predict(m.row, m.col) for model in self.models], axis=0)
        err = pred - m.data.astype(numpy.float64)
        return float(numpy.sqrt(numpy.mean(err ** 2))), float(numpy.mean(numpy.abs(err)))

    def score_matrix(self, users=None):
        return numpy.mean([model.score_matrix(users) for model in self.models], axis=0)


def _mean_std(values):
    a = numpy.asarray(values, dtype=numpy.float64)
    return {"mean": float(a.mean()), "std": float(a.std(ddof=1)) if a.size > 1 else 0.0}


def evaluate_autorec(ratings: Ratings, seeds: Sequence[int] = (0, 1, 2, 3, 4),
                     test_frac: float = 0.1, val_frac: float = 0.1,
                     lams: Union[float, Sequence[float]] = DEFAULT_LAMS, optimizer: str = "adam",
                     epochs: int = 300, patience: int = 25, variant: str = "item",
                     hidden: Union[int, Sequence[int]] = 500, refit: bool = True,
                     learning_rate: float = LEARNING_RATE, batch_size: int = 256,
                     input_dropout: float = 0.5, lr_decay: Optional[float] = LR_DECAY,
                     lr_decay_patience: int = LR_DECAY_PATIENCE, dtype: DTypeLike = "float32",
                     k: int = 10, threshold: float = 4.0, n_models: int = 1,
                     log: Optional[Callable[[str], Any]] = None,
                     keep_models: bool = False) -> Dict[str, Any]:
    """Run the AutoRec protocol on ``ratings`` (a ``Ratings``) for each seed.

    Per seed ``s``:

    1. ``train, test = random_split(ratings, test_frac, s)``;
    2. ``fit_part, val = validation_split(train, val_frac, s)``;
    3. for each ``lam`` in ``lams``: train on ``fit_part`` for at most
       ``epochs`` epochs (L-BFGS: iterations), early-stopping on validation RMSE
       with ``patience``; its score is the best validation RMSE and its epoch
       count the epoch reaching it. With ``lr_decay`` (minibatch optimizers;
       ignored, and recorded as None, with L-BFGS) the learning rate is
       multiplied by ``lr_decay`` after every ``lr_decay_patience`` epochs
       without a new best validation RMSE, and the epochs of those cuts are
       recorded (``lr_drops``);
    4. choose the ``lam`` with the lowest validation RMSE (ties: the first in
       ``lams``) and its best epoch count;
    5. ``refit=True``: train a fresh model (same seed) on the whole ``train``
       (fit_part + val) with the chosen ``lam`` for the chosen number of epochs,
       no early stopping, replaying the chosen run's learning-rate cuts that
       came before its best epoch (``refit_lr_drops``); with ``n_models > 1``,
       that many such models (initial weights seeded ``seed``, ``seed + 1000``,
       ...) whose predictions are averaged; ``refit=False``: keep the selected model (its best weights,
       trained on ``fit_part`` only);
    6. evaluate on ``test``: RMSE and MAE (predictions clipped to the rating
       range; cold users/items by the model's fallback rule) and
       Precision/Recall/NDCG/HR@``k`` over all items, each user's ``train``
       items excluded, test ratings ``>= threshold`` relevant.

    ``log``: optional callable receiving one progress line at a time.
    ``keep_models``: also return the tested model of each seed under
    ``"models"`` (AutoRec objects, or averages of them with ``n_models > 1``;
    that entry is not JSON-able).

    Returns a JSON-able dict: ``protocol`` (everything needed to rerun it),
    ``seeds`` (per seed: chosen lam/epochs, every validation score, test
    metrics, seconds), ``summary`` (mean and sample std over seeds of each test
    metric) and ``seconds``. Raises ValueError for bad settings, and for a seed
    whose fit, validation or test part is empty (too few ratings for the
    fractions), before that seed trains anything.

    Parameters
    ----------
    ratings : Ratings
        All ratings.
    seeds : sequence of int, default (0, 1, 2, 3, 4)
        One full run per seed.
    test_frac, val_frac : float, default 0.1
        The test and validation fractions (steps 1 and 2).
    lams : sequence of float
        The L2 weights tried (step 3).
    optimizer : str, default "adam"
        A fastnn optimizer name, or "lbfgs".
    epochs : int, default 300
        The most epochs (L-BFGS: iterations) per training.
    patience : int, default 25
        Early-stopping patience on validation RMSE.
    variant : {"item", "user"}, default "item"
        I-AutoRec or U-AutoRec.
    hidden : int or tuple of int, default 500
        Hidden layer sizes.
    refit : bool, default True
        Step 5: retrain on the whole train part.
    learning_rate : float
        The minibatch optimizers' rate.
    batch_size : int, default 256
        Rows per minibatch.
    input_dropout : float, default 0.5
        Fraction of observed input ratings dropped while training.
    lr_decay : float or None
        The rate's factor on a plateau (None: no decay).
    lr_decay_patience : int
        Epochs without a new best before a cut.
    dtype : str, default "float32"
        The models' float type.
    k : int, default 10
        The ranking metrics' cut-off.
    threshold : float, default 4.0
        Test ratings at or above it are relevant.
    n_models : int, default 1
        Refitted models averaged per seed.
    log : callable, optional
        Receives one progress line at a time.
    keep_models : bool, default False
        Also return each seed's tested model under ``"models"``.

    Returns
    -------
    dict
        As described above.
    """
    lams = tuple(float(x) for x in numpy.atleast_1d(lams))
    seeds = tuple(int(s) for s in seeds)
    if not lams:
        raise ValueError("lams is empty; give at least one lambda")
    if not seeds:
        raise ValueError("seeds is empty; give at least one seed")
    if n_models < 1 or (n_models > 1 and not refit):
        raise ValueError(f"n_models={n_models}; expected 1, or more with refit=True")
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    hidden = (hidden,) if isinstance(hidden, int) else tuple(int(h) for h in hidden)
    if optimizer == "lbfgs":
        lr_decay = None  # no learning rate to decay
    say = log or (lambda line: None)
    model_kwargs: Dict[str, Any] = dict(hidden=hidden, variant=variant, optimizer=optimizer,
                                        learning_rate=learning_rate, batch_size=batch_size,
                                        input_dropout=input_dropout, lr_decay=lr_decay,
                                        lr_decay_patience=lr_decay_patience, dtype=dtype)
    AutoRec(lam=1.0, **model_kwargs)  # bad model settings fail here, before any training
    protocol = {
        "data": getattr(ratings, "source", None),
        "shape": list(ratings.shape), "ratings": int(ratings.nnz),
        "rating_range": list(ratings.rating_range),
        "split": f"random_split(ratings, test_frac={test_frac}, seed) per seed; "
                 f"validation_split(train, val_frac={val_frac}, seed) carved from train",
        "seeds": list(seeds), "test_frac": test_frac, "val_frac": val_frac,
        "selection": "lam and epochs by lowest validation RMSE (early stopping, "
                     f"patience {patience}, at most {epochs} epochs); test never used",
        "lr_schedule": (f"learning rate x{lr_decay:g} after every {lr_decay_patience} epochs "
                        "without a new best validation RMSE; the refit replays the chosen "
                        "run's cuts before its best epoch" if lr_decay is not None
                        else "constant"),
        "refit": ("fresh model on train (= fit part + validation) with the chosen lam "
                  "for the chosen number of epochs"
                  + (" and the chosen run's learning-rate cuts" if lr_decay is not None else "")
                  + (f", predictions averaged over {n_models} such models" if n_models > 1
                     else "") if refit else
                  "none: the selected model trained on the fit part is tested"),
        "lams": list(lams), "epochs": epochs, "patience": patience, "n_models": n_models,
        "model": {**model_kwargs, "hidden": list(hidden)},
        "ranking": {"k": k, "threshold": threshold, "exclude": "each user's train items",
                    "candidates": "all items"},
        "platform": f"{platform.python_implementation()} {platform.python_version()}, "
                    f"numpy {numpy.__version__}",
    }
    start = time.perf_counter()
    per_seed, models = [], []
    for seed in seeds:
        t0 = time.perf_counter()
        train, test = random_split(ratings, test_frac, seed)
        fit_part, val = validation_split(train, val_frac, seed)
        for part, name in ((fit_part, "fit"), (val, "validation"), (test, "test")):
            if part.nnz == 0:
                raise ValueError(
                    f"seed {seed}: the {name} part of the split is empty ({ratings.nnz} "
                    f"ratings, test_frac={test_frac}, val_frac={val_frac}); the protocol "
                    "needs at least one rating in each of fit, validation and test: use "
                    "more ratings or larger fractions")
        selection: List[Dict[str, Any]] = []
        best_model: Optional[Tuple[float, AutoRec]] = None
        for lam in lams:
            t1 = time.perf_counter()
            # Any: after selection, also an _Average of refitted models.
            model: Any = AutoRec(lam=lam, seed=seed, **model_kwargs)
            history = model.fit(fit_part, validation=val, epochs=epochs, patience=patience,
                                verbose=0)
            val_curve = [float(v) for v in history["val_rmse"]]
            # The epoch whose weights fit() restored (first reaching the minimum).
            best = model.best_epoch - 1 if model.best_epoch > 0 else int(numpy.argmin(val_curve))
            selection.append({"lam": lam, "val_rmse": val_curve[best],
                              "val_mae": float(history["val_mae"][best]),
                              "best_epoch": best + 1, "epochs_run": len(val_curve),
                              "lr_drops": list(model.lr_drops),
                              "seconds": round(time.perf_counter() - t1, 2)})
            cuts = f", lr cut after epochs {model.lr_drops}" if model.lr_drops else ""
            say(f"seed {seed}  lam {lam:<8g} val RMSE {val_curve[best]:.4f} at epoch "
                f"{best + 1} of {len(val_curve)}{cuts}  ({time.perf_counter() - t1:.1f} s)")
            if best_model is None or val_curve[best] < best_model[0]:
                best_model = (val_curve[best], model)
        chosen = min(range(len(selection)), key=lambda j: (selection[j]["val_rmse"], j))
        lam, n_epochs = selection[chosen]["lam"], selection[chosen]["best_epoch"]
        # Cuts at or after the best epoch did not shape the selected weights.
        refit_drops = [e for e in selection[chosen]["lr_drops"] if e < n_epochs]
        if refit:
            members = []
            for j in range(n_models):
                members.append(AutoRec(lam=lam, seed=seed + 1000 * j, **model_kwargs))
                members[-1].fit(train, epochs=n_epochs, verbose=0,
                                lr_drops=refit_drops if lr_decay is not None else None)
            model = members[0] if n_models == 1 else _Average(members)
        else:
            assert best_model is not None  # for mypy: lams is not empty
            model = best_model[1]
        test_rmse, test_mae = model.evaluate(test)
        ranking = ranking_metrics(model.score_matrix, train, test, k=k, threshold=threshold)
        row = {"seed": seed, "n_fit": int(fit_part.nnz), "n_val": int(val.nnz),
               "n_test": int(test.nnz), "chosen_lam": lam, "chosen_epochs": n_epochs,
               "refit_lr_drops": refit_drops if refit else None,
               "val_rmse": selection[chosen]["val_rmse"], "selection": selection,
               "test_rmse": test_rmse, "test_mae": test_mae,
               **{key: v for key, v in ranking.items() if key != "users"},
               "ranking_users": ranking["users"],
               "seconds": round(time.perf_counter() - t0, 2)}
        per_seed.append(row)
        if keep_models:
            models.append(model)
        say(f"seed {seed}  chose lam {lam:g}, {n_epochs} epochs"
            f"{' (refit on train+val)' if refit else ''}: test RMSE {test_rmse:.4f}  "
            f"MAE {test_mae:.4f}  NDCG@{k} {ranking[f'ndcg@{k}']:.4f}  "
            f"({row['seconds']:.1f} s)")
    metrics = ["val_rmse", "test_rmse", "test_mae", f"precision@{k}", f"recall@{k}",
               f"ndcg@{k}", f"hr@{k}"]
    summary = {m: _mean_std([r[m] for r in per_seed]) for m in metrics}
    result = {"protocol": protocol, "seeds": per_seed, "summary": summary,
              "seconds": round(time.perf_counter() - start, 2)}
    if keep_models:
        result["models"] = models
    return result


def format_table(result):
    """A human-readable table of ``evaluate_autorec``'s result."""
    k = result["protocol"]["ranking"]["k"]
    cols = [("seed", "seed", "{:d}"), ("lam", "chosen_lam", "{:g}"),
            ("epochs", "chosen_epochs", "{:d}"), ("val RMSE", "val_rmse", "{:.4f}"),
            ("test RMSE", "test_rmse", "{:.4f}"), ("test MAE", "test_mae", "{:.4f}"),
            (f"P@{k}", f"precision@{k}", "{:.4f}"), (f"R@{k}", f"recall@{k}", "{:.4f}"),
            (f"NDCG@{k}", f"ndcg@{k}", "{:.4f}"), (f"HR@{k}", f"hr@{k}", "{:.4f}"),
            ("s", "seconds", "{:.1f}")]
    widths = [max(len(h), 9) for h, _, _ in cols]
    lines = ["  ".join(h.rjust(w) for (h, _, _), w in zip(cols, widths))]
    for r in result["seeds"]:
        lines.append("  ".join(f.format(r[key]).rjust(w) for (_, key, f), w in zip(cols, widths)))
    cells = [(f"{result['summary'][key]['mean']:.4f}" if key in result["summary"] else
              ("mean" if key == "seed" else "")).rjust(w) for (_, key, _), w in zip(cols, widths)]
    lines.append("  ".join(cells))
    cells = [(f"±{result['summary'][key]['std']:.4f}" if key in result["summary"] else
              ("std" if key == "seed" else "")).rjust(w) for (_, key, _), w in zip(cols, widths)]
    lines.append("  ".join(cells))
    s = result["summary"]["test_rmse"]
    lines.append(f"test RMSE {s['mean']:.4f} ± {s['std']:.4f} over {len(result['seeds'])} "
                 f"seeds ({result['seconds']:.0f} s)")
    return "\n".join(lines)


__all__ = ["evaluate_autorec", "format_table", "DEFAULT_LAMS", "LEARNING_RATE",
           "LR_DECAY", "LR_DECAY_PATIENCE"]
