"""Recommendation on sparse rating matrices: ratings containers and readers
(data.py), train/test splits (splits.py), sparse kernels' Python layer
(sparse_ops.py), evaluation metrics (metrics.py), the AutoRec model
(autorec.py), the evaluation protocol (protocol.py) and synthetic ratings
(synthetic.py); MovieLens by name, downloaded on first use (movielens.py).
Re-exports only."""
from .data import Ratings, load_ratings, read_movielens, read_dat, read_csv, read_inter
from .movielens import load_movielens, fetch_movielens
from .splits import random_split, load_fold, leave_k_out, validation_split
from .metrics import (rmse, mae, ranking_metrics, precision_at_k, recall_at_k, ndcg_at_k,
                      hit_rate_at_k)
from . import sparse_ops
from .autorec import AutoRec
from .synthetic import synthetic_ratings
from .protocol import evaluate_autorec

__all__ = ["Ratings", "load_ratings", "read_movielens", "read_dat", "read_csv", "read_inter",
           "random_split", "load_fold", "leave_k_out", "validation_split", "rmse", "mae",
           "ranking_metrics", "precision_at_k", "recall_at_k", "ndcg_at_k", "hit_rate_at_k",
           "sparse_ops", "AutoRec", "synthetic_ratings", "evaluate_autorec"]
__all__ += ["load_movielens", "fetch_movielens"]
