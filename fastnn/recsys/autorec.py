"""AutoRec (Sedhain et al., WWW 2015): an autoencoder that reconstructs the
rows of a rating matrix, trained on observed ratings only.

I-AutoRec (``variant="item"``) takes each item's ratings over all users as one
sample, U-AutoRec (``variant="user"``) each user's ratings over all items.
With ``x`` a sample (mostly unobserved), the model is

    h = sigmoid(W' x + b),   r = V h + c,
    loss = sum over observed entries (x - r)^2 + lam / 2 * (|W|^2 + |V|^2)

and fastnn never computes what the loss ignores: the encoder is a CSR x dense
product (SpMM, O(nnz k)) and the decoder is evaluated only at the observed
positions (SDDMM, O(nnz k)); backward is the same two sparse products
transposed. Gradients are those of the dense masked formulation (tested).
Deeper stacks (``hidden=(500, 250, 500)``) put fastnn ``Dense`` layers between
the sparse encoder and the sparse decoder.

Training: minibatch Adam (or any fastnn optimizer) with early stopping on
validation RMSE, or full-batch L-BFGS (``optimizer="lbfgs"``, the paper's
choice), where one sparse epoch is one function evaluation. With
``lr_decay``, the minibatch learning rate is multiplied by that factor
whenever validation RMSE has not improved for ``lr_decay_patience`` epochs;
the epochs at which it was cut are kept (``lr_drops``) so that a refit without
validation can replay the same schedule (``fit(..., lr_drops=...)``).

Prediction rule for entries the training data cannot inform: an item (for
I-AutoRec; a user for U-AutoRec) with no training rating has no input, and a
user (item) with no training rating has an untrained decoder row; for those
entries the model predicts the mean training rating of the other side (the
user's mean, or the item's mean), or the global mean when both are unseen.
Predictions are clipped to the rating range unless ``clip=False``.

Backends: the model computes on the backend active when it is built (``with
fastnn.backend.use_backend("strict"): model.fit(...)``), fixed as ``self.ops``.
The ratings stay host SciPy matrices (the fallback means, saving, the sparse
structure); the weights, optimizer moments and training values live on the
backend, and the host transfers are the documented ones: the initial weights
and the training values up once a fit, the loss sums down once an epoch, the
predictions once a ``predict``/``evaluate`` call, the user indices up and the
scores down once per ``score_matrix``/``recommend`` block, and the weights
through ``get_weights``/``set_weights`` (EarlyStopping, ``save``, ``load``).
Off the host (``ops.is_host`` false) only the fused Adam step trains: L-BFGS
(SciPy's host optimizer) and the layer-by-layer step (deeper stacks, other
optimizers) compute on host NumPy and are refused with a ValueError there.
"""
import math

import numpy
import scipy.sparse

from .. import initializers
from .. import optimizers as optimizers_mod
from ..backend import get_backend, get_instance
from ..backend.ops import ACTIVATIONS, CSR
from ..callbacks import Callback, EarlyStopping
from ..layers import Dense
from ..random import set_seed
from .._registry import serialize
from .._types import (Any, ArrayIn, BackendLike, Dict, DTypeLike, List, Optional, PathIn,
                      Sequence, Tuple, Union)
from ..training import TrainingLoop
from ..saving import AUTOREC_FORMAT, AUTOREC_VERSION, Archive, ModelFileError, write_archive
from . import sparse_ops
from .data import Ratings
from .layerwise import _LayerwiseStep
from .lbfgs import _LbfgsFit
from .minibatch import _MinibatchFit
from .fit_callbacks import _FitCallbacks

# What fit and evaluate take: Ratings or a users x items scipy.sparse matrix
# (SciPy ships no type stubs: mypy reads the second as Any).
RatingsIn = Union[Ratings, scipy.sparse.spmatrix]


def _is_int(x):
    return isinstance(x, (int, numpy.integer)) and not isinstance(x, (bool, numpy.bool_))


def _is_real(x):
    return (_is_int(x) or isinstance(x, (float, numpy.floating))) and math.isfinite(x)


def _indices(values, n, what):
    """``values`` as int64 indices in [0, n), or a ValueError naming ``what``:
    floats are refused, not truncated (1.7 is not index 1), and negative
    indices are refused, not counted from the end."""
    a = numpy.asarray(values)
    if a.size == 0 and a.dtype.kind in "biuf":  # [] reads as float64: no index to judge
        return numpy.zeros(0, dtype=numpy.int64)
    if a.dtype.kind not in "iu" or a.dtype == bool:
        raise ValueError(f"{what} must be integer indices, got dtype {a.dtype}"
                         + (f" ({a.ravel()[:3].tolist()}...)" if a.size else ""))
    a = a.astype(numpy.int64).ravel()
    if a.size and (a.min() < 0 or a.max() >= n):
        raise ValueError(f"{what} must lie in [0, {n}), got values in [{a.min()}, {a.max()}]")
    return a


def _csr(ratings, what):
    if isinstance(ratings, Ratings):
        return ratings.matrix
    if scipy.sparse.issparse(ratings):
        return scipy.sparse.csr_matrix(ratings)
    raise TypeError(f"{what} must be a fastnn.recsys.Ratings or a scipy.sparse matrix, "
                    f"got {type(ratings).__name__}")


class AutoRec(_LayerwiseStep, _LbfgsFit, _MinibatchFit, _FitCallbacks):
    """I-AutoRec / U-AutoRec on sparse ratings.

    Parameters
    ----------
    hidden : int or tuple of int
        Hidden layer sizes; ``500`` is the paper's model, ``(500, 250, 500)`` a
        deeper stack.
    variant : "item" or "user"
    lam : float
        L2 weight of ``lam / 2 * sum |W|^2`` over all weight matrices.
    activation : hidden activation ("sigmoid" in the paper).
    optimizer : a fastnn optimizer name or instance, or "lbfgs" (full batch).
    learning_rate, batch_size : minibatch training settings.
    input_dropout : fraction of observed input ratings dropped while training
        (denoising AutoRec); the loss still covers every observed rating.
    lr_decay : None (constant learning rate) or a factor in (0, 1): with
        validation, the learning rate is multiplied by it after every
        ``lr_decay_patience`` epochs without a new best validation RMSE
        (counted from the best epoch or the last cut, whichever is later);
        without validation, ``fit`` needs ``lr_drops`` to say when. Minibatch
        optimizers with a float learning rate only. The cuts change
        ``self.optimizer.learning_rate`` in place, so a second ``fit`` of the
        same model starts from the cut rate (as with Keras' ReduceLROnPlateau).
    lr_decay_patience : int >= 1, see ``lr_decay``.
    clip : clip predictions to the rating range.
    dtype : "float32" (default) or "float64".
    seed : seeds initial weights, batch order and dropout.
    backend : None (the backend active when ``fit`` builds the model) or a
        backend name or ``Ops``: ``"cupy"`` trains on the GPU. ``load`` takes
        it too; the file is the same whichever backend saved it.

    Notes
    -----
    After ``fit``: ``best_epoch`` (validation), ``lr_drops`` (sorted epoch
    counts after which the learning rate was cut) and ``history``
    (with ``lr_decay``, ``history["learning_rate"]`` is the rate each epoch ran at);
    ``user_ids`` / ``item_ids``, the raw id of each index when fitted on a
    ``Ratings`` (None for a plain sparse matrix).

    ``predict(users, items)`` rates index pairs, ``recommend(users, k)`` lists
    each user's top-k unrated items, ``save(path)`` / ``AutoRec.load(path)``
    keep a fitted model in one file.
    """

    def __init__(self, hidden: Union[int, Sequence[int]] = 500, variant: str = "item",
                 lam: float = 1.0, activation: str = "sigmoid",
                 optimizer: Union[str, optimizers_mod.Optimizer] = "adam",
                 learning_rate: float = 1e-3, batch_size: int = 256, input_dropout: float = 0.0,
                 lr_decay: Optional[float] = None, lr_decay_patience: int = 5, clip: bool = True,
                 dtype: DTypeLike = "float32", seed: Optional[int] = 0,
                 backend: Optional[BackendLike] = None) -> None:
        if variant not in ("item", "user"):
            raise ValueError(f"variant must be 'item' or 'user', got {variant!r}")
        sizes: Any = [hidden] if _is_int(hidden) else hidden  # user input, checked next
        if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__") \
                or not list(sizes) or not all(_is_int(h) and h >= 1 for h in sizes):
            raise ValueError(f"hidden must be a positive integer or a sequence of them, e.g. "
                             f"500 or (500, 250, 500); got {hidden!r}")
        self.hidden = tuple(int(h) for h in sizes)
        if not _is_real(lam) or not lam >= 0:
            raise ValueError(f"lam must be a finite number >= 0, got {lam!r}")
        if not _is_real(learning_rate) or not learning_rate > 0:
            raise ValueError(f"learning_rate must be a finite number > 0, got {learning_rate!r}")
        if not _is_real(input_dropout) or not 0 <= input_dropout < 1:
            raise ValueError(f"input_dropout must be in [0, 1), got {input_dropout!r}")
        if not _is_int(batch_size) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; expected one of "
                             f"{ACTIVATIONS}")
        if isinstance(optimizer, str) and optimizer != "lbfgs":
            optimizers_mod.get(optimizer)  # an unknown name: ValueError listing the valid ones
        if numpy.dtype(dtype) not in (numpy.float32, numpy.float64):
            raise ValueError(f"dtype must be float32 or float64, got {numpy.dtype(dtype)}")
        if seed is not None and not _is_int(seed):
            raise ValueError(f"seed must be an integer or None, got {seed!r}")
        if lr_decay is not None:
            if not 0 < lr_decay < 1:
                raise ValueError(f"lr_decay must be None or a factor in (0, 1), got {lr_decay}")
            if optimizer == "lbfgs":
                raise ValueError("lr_decay needs a minibatch optimizer; L-BFGS has no "
                                 "learning rate")
        if isinstance(lr_decay_patience, bool) or int(lr_decay_patience) != lr_decay_patience \
                or lr_decay_patience < 1:
            raise ValueError(f"lr_decay_patience must be an integer >= 1, got "
                             f"{lr_decay_patience!r}")
        self.variant, self.lam, self.activation = variant, float(lam), activation
        self.optimizer_spec, self.learning_rate = optimizer, float(learning_rate)
        self.batch_size, self.input_dropout = int(batch_size), float(input_dropout)
        self.lr_decay = None if lr_decay is None else float(lr_decay)
        self.lr_decay_patience = int(lr_decay_patience)
        self.lr_drops: List[int] = []
        self.clip, self.dtype = bool(clip), numpy.dtype(dtype)
        self.seed = None if seed is None else int(seed)
        # The backend to compute on (a name or an Ops; None: the one active at
        # fit). Looked up now, so that an unavailable one ("cupy" without
        # CuPy or a GPU) fails here, saying why. Not a setting: not saved.
        self.backend = None if backend is None else get_instance(backend)
        self.history: Dict[str, List[float]] = {}
        self.stop_training = False
        self.optimizer = None
        self.built = False

    def __repr__(self):
        opt = self.optimizer_spec if isinstance(self.optimizer_spec, str) \
            else type(self.optimizer_spec).__name__
        state = (f"fitted on {self.shape[0]} users x {self.shape[1]} items"
                 if self.built and hasattr(self, "_train_X") else "not fitted")
        return (f"AutoRec(variant={self.variant!r}, hidden={list(self.hidden)}, "
                f"lam={self.lam:g}, optimizer={opt!r}, {state})")

    # ------------------------------------------------------------------ data
    def _samples(self, matrix):
        """Rows are samples: items x users for I-AutoRec, users x items for U-AutoRec."""
        m = matrix.T.tocsr() if self.variant == "item" else matrix.tocsr()
        # astype copies (indices too) before sorting: for U-AutoRec ``m`` may be
        # the caller's own matrix, which must not be reordered in place.
        m = m.astype(self.dtype, copy=True)
        m.sort_indices()
        return m

    # ----------------------------------------------------------------- build
    def build(self, n_features):
        """Create the weights for ``n_features`` inputs (``fit`` calls this).

        Parameters
        ----------
        n_features : int
            Users per item row (I-AutoRec) or items per user row (U-AutoRec).
        """
        # The backend this model computes on, fixed here as a Keras model's is.
        self.ops = self.backend if self.backend is not None else get_backend()
        self.n_features = int(n_features)
        sizes = (self.n_features,) + self.hidden
        glorot = initializers.get("glorot_uniform")
        # Drawn on the host (fastnn's seeded generator), moved once (a no-op on
        # the host backends), so every backend starts from the same weights.
        self.W = self.ops.asarray(glorot((sizes[0], sizes[1]), self.dtype))
        self.b = self.ops.zeros(sizes[1], self.dtype)
        self.middle = []
        for i in range(1, len(self.hidden)):
            layer = Dense(sizes[i + 1], activation=self.activation, dtype=self.dtype,
                          name=f"autorec_hidden_{i}")
            layer.build((sizes[i],))
            layer.to(self.ops)
            self.middle.append(layer)
        # Decoder stored transposed, (n_features, k): each output's weights contiguous.
        self.Vt = self.ops.asarray(glorot((self.n_features, sizes[-1]), self.dtype))
        self.c = self.ops.zeros(self.n_features, self.dtype)
        self.built = True

    def _params(self):
        """(name, param, grad, is_weight_matrix) in a fixed order."""
        out = [("W", self.W, self.dW, True), ("b", self.b, self.db, False)]
        for layer in self.middle:
            out.append((layer.name + "/kernel", layer.params["kernel"], layer.grads["kernel"], True))
            out.append((layer.name + "/bias", layer.params["bias"], layer.grads["bias"], False))
        out += [("Vt", self.Vt, self.dVt, True), ("c", self.c, self.dc, False)]
        return out

    def _alloc_grads(self):
        zeros_like = self.ops.xp.zeros_like
        self.dW, self.db = zeros_like(self.W), zeros_like(self.b)
        self.dVt, self.dc = zeros_like(self.Vt), zeros_like(self.c)

    def get_weights(self):
        """Copies of the weights as host NumPy arrays (one transfer each on a
        device backend)."""
        return [numpy.array(self.ops.to_numpy(p), copy=True) for _, p, _, _ in self._params()]

    def set_weights(self, weights):
        """Overwrite the weights, in ``get_weights`` order.

        Parameters
        ----------
        weights : list of array_like
            One array per weight, each of its shape.
        """
        params = self._params()
        if len(weights) != len(params):
            raise ValueError(f"AutoRec has {len(params)} weight arrays, got {len(weights)}")
        for (name, p, _, _), w in zip(params, weights):
            if numpy.shape(w) != p.shape:
                raise ValueError(f"weight {name}: expected shape {p.shape}, got {numpy.shape(w)}")
            p[...] = self.ops.asarray(w, dtype=p.dtype)

    # ------------------------------------------------------------------- fit
    def fit(self, train: RatingsIn, validation: Optional[RatingsIn] = None, epochs: int = 100,
            patience: int = 10, verbose: int = 1, callbacks: Optional[Sequence[Callback]] = None,
            max_iter: Optional[int] = None,
            lr_drops: Optional[Sequence[int]] = None) -> Dict[str, List[float]]:
        """Train on ``train`` (Ratings or a users x items sparse matrix);
        with ``validation``, early-stop on validation RMSE (restoring the best
        weights) after ``patience`` epochs without improvement. Returns the
        history dict ("loss", "rmse", and "val_rmse"/"val_mae" with validation).
        For ``optimizer="lbfgs"`` an epoch is one L-BFGS iteration.

        Training runs in the loop ``Model.fit`` runs in (``fastnn.training``):
        ``patience`` is ``EarlyStopping(monitor="val_rmse", min_delta=1e-6,
        restore_best_weights=True)``, ``lr_decay`` a ``ReduceLROnPlateau`` on
        ``val_rmse``; ``callbacks`` (any fastnn callbacks: ModelCheckpoint,
        CSVLogger, ...) run after those two, as with ``Model.fit``.

        ``lr_drops`` (needs ``lr_decay``): replay a learning-rate schedule, i.e.
        multiply the rate by ``lr_decay`` after each of these epoch counts
        (another fit's ``lr_drops``) instead of deciding on validation RMSE.

        Parameters
        ----------
        train : Ratings or scipy.sparse matrix
            The training ratings, users x items.
        validation : Ratings or scipy.sparse matrix, optional
            Held-out ratings of the same shape, for early stopping.
        epochs : int, default 100
            The most epochs to train.
        patience : int, default 10
            Epochs without validation improvement before stopping.
        verbose : int, default 1
            0 silent, 1 a progress bar per epoch, 2 one line per epoch.
        callbacks : list of Callback, optional
            fastnn callbacks, run after the early stopping and rate decay.
        max_iter : int, optional
            L-BFGS only: the most iterations (default: ``epochs``).
        lr_drops : list of int, optional
            Epoch counts after which to multiply the rate by ``lr_decay``.

        Returns
        -------
        dict
            The history: ``{"loss": [...], "rmse": [...], "val_rmse": [...], ...}``.

        Examples
        --------
        >>> from fastnn.recsys import AutoRec, load_movielens, random_split
        >>> train, test = random_split(load_movielens("ml-100k"), 0.1, seed=0)
        >>> model = AutoRec(hidden=500, lam=1.0)
        >>> history = model.fit(train, epochs=50)
        >>> rmse, mae = model.evaluate(test)
        """
        if isinstance(epochs, bool) or not isinstance(epochs, (int, numpy.integer)) or epochs < 0:
            raise ValueError(f"epochs must be a non-negative integer, got {epochs!r}")
        replay = self._check_lr_drops(lr_drops, validation)
        matrix = _csr(train, "train")
        if matrix.nnz == 0:
            raise ValueError("train has no ratings")
        data = numpy.asarray(matrix.data)
        if not numpy.isfinite(data).all():
            raise ValueError("train ratings contain NaN or infinite values")
        self._fit_stats(matrix, train)
        if isinstance(train, Ratings):
            self.user_ids, self.item_ids = train.user_ids, train.item_ids
        else:
            self.user_ids = self.item_ids = None
        X = self._samples(matrix)
        set_seed(self.seed) if self.seed is not None else None
        if not self.built:
            self.build(X.shape[1])
        elif X.shape[1] != self.n_features:
            raise ValueError(f"this AutoRec was built for {self.n_features} inputs per sample, "
                             f"got a matrix with {X.shape[1]}")
        if self.optimizer_spec == "lbfgs" and not self.ops.is_host:
            raise self._host_only("optimizer='lbfgs' (SciPy's L-BFGS-B runs on the host: "
                                  "it would move the flat parameter vector and gradient "
                                  "across each iteration)")
        self._alloc_grads()
        self._set_train(X)
        val = None
        if validation is not None:
            vm = _csr(validation, "validation")
            if vm.shape != matrix.shape:
                raise ValueError(f"validation has shape {vm.shape} but train has {matrix.shape}; "
                                 "split parts must share one shape")
            val = vm
        own = self._training_callbacks(val is not None, patience, replay)
        loop = TrainingLoop(self, own + list(callbacks or []), epochs=epochs, verbose=verbose,
                            steps=1 if self.optimizer_spec == "lbfgs"
                            else math.ceil(X.shape[0] / self.batch_size))
        self.lr_drops = []
        run = self._fit_lbfgs if self.optimizer_spec == "lbfgs" else self._fit_minibatch
        run(X, val, loop)
        history = loop.end()  # EarlyStopping puts the best epoch's weights back here
        early = own[0] if own and isinstance(own[0], EarlyStopping) else None
        self.best_epoch = -1  # no validation, or no epoch ran
        if early is not None and early.best_weights is not None:
            self.best_epoch = early.best_epoch + 1
        self.history = history.history
        return self.history

    def _set_train(self, X):
        """Keep the training samples ``X`` (host SciPy CSR, sorted): on the host
        for saving and the fallback means, and as the backend's CSR operand
        (host structure, values moved to the backend once) for encoding."""
        self._train_X = X
        pattern = sparse_ops.as_pattern(X, self.dtype)
        if not self.ops.is_host:
            pattern = CSR(pattern.indptr, pattern.indices, self.ops.asarray(pattern.data),
                          pattern.shape)
        self._train_pattern = pattern

    def _train_rows(self, rows, train=None):
        """Training sample rows ``rows`` (host indices) as a CSR operand of the backend."""
        if train is None or train is self._train_X:
            return self.ops.csr_take_rows(self._train_pattern, rows)
        return train[rows]

    def _host_only(self, what):
        return ValueError(
            f"AutoRec on backend {self.ops.name!r} trains with the fused Adam step only (one "
            f"hidden layer, plain Adam without weight decay or clipping, activation in "
            f"{sorted(sparse_ops.FUSED_ACTIVATIONS)}); {what} computes on host NumPy. Fit "
            f"on the 'numpy' backend for it (then save, and load on this one to predict)")

    def _with_validation(self, logs, val):
        if val is not None:
            logs["val_rmse"], logs["val_mae"] = self.evaluate(val, _train=self._train_X)
        return logs

    # --------------------------------------------------------------- predict
    def _fit_stats(self, matrix, ratings):
        self.rating_range = ratings.rating_range if isinstance(ratings, Ratings) else \
            (float(matrix.data.min()), float(matrix.data.max()))
        counts_u = numpy.diff(matrix.indptr)
        # bincount over row ids, not add.reduceat over indptr: reduceat drops the
        # last rating of the last non-empty row when empty rows trail it.
        rows = numpy.repeat(numpy.arange(matrix.shape[0]), counts_u)
        sums_u = numpy.bincount(rows, weights=matrix.data, minlength=matrix.shape[0])
        counts_i = numpy.bincount(matrix.indices, minlength=matrix.shape[1])
        sums_i = numpy.bincount(matrix.indices, weights=matrix.data, minlength=matrix.shape[1])
        self.global_mean = float(matrix.data.mean())
        self.user_mean = numpy.where(counts_u > 0, sums_u / numpy.maximum(counts_u, 1), numpy.nan)
        self.item_mean = numpy.where(counts_i > 0, sums_i / numpy.maximum(counts_i, 1), numpy.nan)
        self.shape = matrix.shape

    def _check_fitted(self):
        if not self.built or not hasattr(self, "_train_X"):
            raise RuntimeError("this AutoRec is not fitted yet; call fit(train) first")

    def predict(self, users: ArrayIn, items: ArrayIn,
                _train: Optional[scipy.sparse.csr_matrix] = None) -> numpy.ndarray:
        """Predicted ratings for the (user index, item index) pairs, a host
        float64 array: computed on the model's backend and fetched once (the
        fallback means and the clipping are host work on host data).

        Parameters
        ----------
        users : array_like of int
            User indices (rows of the training matrix).
        items : array_like of int
            Item indices, one per user index.

        Returns
        -------
        ndarray of float64
            The predictions (clipped to the rating range when ``clip``).
        """
        self._check_fitted()
        n_users, n_items = self.shape
        users = _indices(users, n_users, "user indices")
        items = _indices(items, n_items, "item indices")
        if users.shape != items.shape:
            raise ValueError(f"users and items must have the same length, got {users.size} "
                             f"and {items.size}")
        X = self._train_X if _train is None else _train
        samples, features = (items, users) if self.variant == "item" else (users, items)
        out = numpy.empty(users.size, dtype=numpy.float64)
        if users.size:
            # Only the samples asked about are encoded (row j of H is sample
            # needed[j]); the pairs become a CSR pattern (those rows x outputs)
            # and the SDDMM runs on it in float64: each prediction is one dot
            # product of two rows, without gathering a copy of both rows per pair.
            needed, local = numpy.unique(samples, return_inverse=True)
            H = self._encode(self._train_rows(needed, X))[0].astype(numpy.float64)
            order = numpy.lexsort((features, local))  # kernels take sorted rows
            indptr = numpy.searchsorted(local[order], numpy.arange(needed.size + 1))
            pairs = sparse_ops.SparsePattern(indptr.astype(numpy.int64, copy=False),
                                             features[order],
                                             self.ops.empty(users.size, numpy.float64),
                                             (needed.size, X.shape[1]))
            out[order] = self.ops.to_numpy(self.ops.sddmm(
                pairs, H, self.Vt.astype(numpy.float64, copy=False),
                self.c.astype(numpy.float64, copy=False)))
        out = self._fallback(out, users, items)
        if self.clip:
            out = numpy.clip(out, *self.rating_range)
        return out

    def _fallback(self, out, users, items):
        user_seen = ~numpy.isnan(self.user_mean[users])
        item_seen = ~numpy.isnan(self.item_mean[items])
        cold = ~(user_seen & item_seen)
        if cold.any():
            fill = numpy.full(cold.sum(), self.global_mean)
            u, i = users[cold], items[cold]
            fill = numpy.where(user_seen[cold], self.user_mean[u], fill)
            fill = numpy.where(item_seen[cold], self.item_mean[i], fill)
            out = out.copy()
            out[cold] = fill
        return out

    def evaluate(self, test: RatingsIn,
                 _train: Optional[scipy.sparse.csr_matrix] = None) -> Tuple[float, float]:
        """(RMSE, MAE) over the ratings of ``test`` (same shape as train).

        Parameters
        ----------
        test : Ratings or scipy.sparse matrix
            The ratings to predict.

        Returns
        -------
        tuple of float
            ``(rmse, mae)``.
        """
        m = _csr(test, "test").tocoo()
        if m.shape != self.shape:
            raise ValueError(f"test has shape {m.shape} but the model was fitted on {self.shape}")
        if m.nnz == 0:
            raise ValueError("test has no ratings")
        pred = self.predict(m.row, m.col, _train=_train)
        err = pred - m.data.astype(numpy.float64)
        return float(numpy.sqrt(numpy.mean(err ** 2))), float(numpy.mean(numpy.abs(err)))

    def score_matrix(self, users: Optional[ArrayIn] = None) -> numpy.ndarray:
        """Dense predicted scores (users x items) for ranking metrics.

        Parameters
        ----------
        users : array_like of int, optional
            The rows to score (default: all users).

        Returns
        -------
        ndarray of float64
            ``(len(users), n_items)`` unclipped scores.
        """
        self._check_fitted()
        users = (numpy.arange(self.shape[0]) if users is None
                 else _indices(users, self.shape[0], "user indices"))
        return self._scores(users, self._item_codes())

    def _item_codes(self):
        """I-AutoRec: the hidden codes of every item (items x k), the same for
        every user, so a caller scoring users block by block encodes them once.
        None for U-AutoRec, whose codes are per user."""
        return self._encode(self._train_pattern)[0] if self.variant == "item" else None

    def _scores(self, users, item_codes):
        """Dense scores of host user indices ``users``, fetched to the host (one
        transfer each way on a device backend: the indices up, the scores down)."""
        ops = self.ops
        if self.variant == "item":
            u = ops.asarray(users)
            scores = self.Vt[u] @ item_codes.T + self.c[u, None]
        else:
            H = self._encode(self._train_rows(users))[0]                 # users x k
            scores = H @ self.Vt.T + self.c
        return ops.to_numpy(scores.astype(numpy.float64))

    # ------------------------------------------------------------- recommend
    def recommend(self, users: Union[int, ArrayIn], k: int = 10,
                  exclude_train: bool = True) -> Tuple[numpy.ndarray, numpy.ndarray]:
        """The top-``k`` items of each user index in ``users``, best first:
        ``(items, scores)``, int64 and float64 arrays of shape (len(users), k),
        or (k,) for a single user index. Raw ids: ``self.item_ids[items]``.

        Items are ranked by ``score_matrix`` (the model's unclipped scores, as
        the ranking metrics rank them). With ``exclude_train`` a user's training
        items are left out; where fewer than ``k`` items are left, the row ends
        with item -1 and score NaN. A user with no training rating (an untrained
        decoder row) gets the items ranked by their mean training rating
        instead, items without one at the global mean, as ``predict`` rates them.
        
        Parameters
        ----------
        users : int or array_like of int
            User indices.
        k : int, default 10
            Items per user.
        exclude_train : bool, default True
            Leave out each user's training items.

        Returns
        -------
        items : ndarray of int64
        scores : ndarray of float64
        """
        self._check_fitted()
        n_users, n_items = self.shape
        if isinstance(k, bool) or not isinstance(k, (int, numpy.integer)) or not 1 <= k <= n_items:
            raise ValueError(f"k must be an integer in [1, {n_items}] (the number of items), "
                             f"got {k!r}")
        single = numpy.ndim(users) == 0
        users = _indices(users, n_users, "user indices")
        seen = (self._train_X.T.tocsr() if self.variant == "item" else self._train_X) \
            if exclude_train else None
        popular = numpy.where(numpy.isnan(self.item_mean), self.global_mean, self.item_mean)
        items_out = numpy.empty((users.size, k), dtype=numpy.int64)
        scores_out = numpy.empty((users.size, k), dtype=numpy.float64)
        codes = self._item_codes()
        block = 1024  # bounds the dense score block at 1024 x n_items
        for lo in range(0, users.size, block):
            u = users[lo:lo + block]
            scores = self._scores(u, codes)
            cold = numpy.isnan(self.user_mean[u])
            scores[cold] = popular
            if seen is not None:
                sub = seen[u]
                scores[numpy.repeat(numpy.arange(u.size), numpy.diff(sub.indptr)),
                       sub.indices] = -numpy.inf
            top = numpy.argpartition(-scores, k - 1, axis=1)[:, :k]
            part = numpy.take_along_axis(scores, top, 1)
            order = numpy.lexsort((top, -part), axis=1)  # best first, ties by index
            items_out[lo:lo + u.size] = numpy.take_along_axis(top, order, 1)
            scores_out[lo:lo + u.size] = numpy.take_along_axis(part, order, 1)
        gone = numpy.isneginf(scores_out)
        items_out[gone], scores_out[gone] = -1, numpy.nan
        return (items_out[0], scores_out[0]) if single else (items_out, scores_out)

    # ------------------------------------------------------------ save, load
    def save(self, path: PathIn) -> None:
        """Write this fitted model to one file: its settings, weights, the
        training ratings its predictions are encoded from, the fallback means,
        the id maps, the history and the optimizer's state (so that ``fit``
        resumes where it stopped). A zip of JSON and ``.npy`` arrays, written
        atomically as ``Model.save`` writes; never pickle.

        Parameters
        ----------
        path : str or os.PathLike
            The file to write.
        """
        self._check_fitted()
        spec = self.optimizer_spec
        config = {
            "format": AUTOREC_FORMAT, "version": AUTOREC_VERSION,
            "settings": {"hidden": list(self.hidden), "variant": self.variant, "lam": self.lam,
                         "activation": self.activation,
                         "optimizer": spec if isinstance(spec, str) else serialize(spec),
                         "learning_rate": self.learning_rate, "batch_size": self.batch_size,
                         "input_dropout": self.input_dropout, "lr_decay": self.lr_decay,
                         "lr_decay_patience": self.lr_decay_patience, "clip": bool(self.clip),
                         "dtype": self.dtype.name, "seed": self.seed},
            "shape": [int(n) for n in self.shape], "n_features": self.n_features,
            "rating_range": list(self.rating_range), "global_mean": self.global_mean,
            "best_epoch": getattr(self, "best_epoch", None), "lr_drops": list(self.lr_drops),
            # mid-fit (a ModelCheckpoint) this is the History callback, after it its dict
            "history": {key: [float(v) for v in values] for key, values in
                        getattr(self.history, "history", self.history).items()},
            "n_weights": len(self._params()),
            "ids": self.user_ids is not None, "optimizer": None,
        }
        arrays = {f"weights/{i:05d}.npy": w for i, w in enumerate(self.get_weights())}
        X = self._train_X
        arrays.update({"train/indptr.npy": X.indptr, "train/indices.npy": X.indices,
                       "train/data.npy": X.data, "means/user.npy": self.user_mean,
                       "means/item.npy": self.item_mean})
        if self.user_ids is not None:
            arrays.update({"ids/users.npy": self.user_ids, "ids/items.npy": self.item_ids})
        opt = self.optimizer
        if opt is not None and opt.built:
            state = opt.get_state()
            config["optimizer"] = {"config": serialize(opt), "iterations": state["iterations"],
                                   "slots": sorted(state["arrays"])}
            arrays.update({f"optimizer/{key}.npy": a for key, a in state["arrays"].items()})
        write_archive(path, config, arrays)

    @classmethod
    def load(cls, path: PathIn, backend: Optional[BackendLike] = None) -> "AutoRec":
        """An AutoRec saved by ``save``, ready to predict, recommend or go on
        training. A missing, truncated or inconsistent file raises
        ``fastnn.saving.ModelFileError`` (a ValueError) naming the file and
        what is wrong; nothing in the file is run.

        Parameters
        ----------
        path : str or os.PathLike
            A file written by ``save``.
        backend : str or Ops, optional
            Where to place the model (default: the backend active now).

        Returns
        -------
        AutoRec
        """
        archive = Archive(path, AUTOREC_FORMAT, AUTOREC_VERSION, "fastnn AutoRec file")
        where = archive.path
        try:
            return cls._from_archive(archive, backend)
        except ModelFileError:
            raise
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as e:
            raise ModelFileError(f"{where}: inconsistent AutoRec file ({type(e).__name__}: "
                                 f"{e})") from None
        finally:
            archive.close()

    @classmethod
    def _from_archive(cls, archive, backend=None):
        config = archive.config
        settings = dict(config["settings"])
        if not isinstance(settings["optimizer"], str):
            settings["optimizer"] = optimizers_mod.get(settings["optimizer"])
        model = cls(**settings, backend=backend)
        n_users, n_items = (int(n) for n in config["shape"])
        n_samples, n_features = (n_items, n_users) if model.variant == "item" else (n_users, n_items)
        if int(config["n_features"]) != n_features:
            raise ValueError(f"n_features {config['n_features']} does not match shape "
                             f"{config['shape']} for variant {model.variant!r}")

        def floats(name, shape=None):
            a = archive.array(name)
            if a.dtype.kind != "f" or (shape is not None and a.shape != shape):
                raise ValueError(f"{name} has dtype {a.dtype} and shape {a.shape}; expected "
                                 f"floats" + (f" of shape {shape}" if shape else ""))
            return a

        model.build(n_features)
        model._alloc_grads()
        weights = [floats(f"weights/{i:05d}.npy") for i in range(int(config["n_weights"]))]
        model.set_weights(weights)
        # Checked on the host, as the model's dtype holds them (a float64 1e300
        # is an infinite float32).
        if not all(numpy.isfinite(w.astype(model.dtype, copy=False)).all() for w in weights):
            raise ValueError("the weights hold NaN or infinite values")
        indptr, indices = archive.array("train/indptr.npy"), archive.array("train/indices.npy")
        data = floats("train/data.npy")
        sparse_ops.check_csr(indptr, indices, n_samples, n_features, data.shape[0],
                             name="train")
        if not numpy.isfinite(data).all():
            raise ValueError("the training ratings hold NaN or infinite values")
        model._set_train(scipy.sparse.csr_matrix(
            (data.astype(model.dtype, copy=False), indices, indptr),
            shape=(n_samples, n_features)))
        model.user_mean = floats("means/user.npy", (n_users,))
        model.item_mean = floats("means/item.npy", (n_items,))
        model.shape = (n_users, n_items)
        lo, hi = (float(x) for x in config["rating_range"])
        model.rating_range, model.global_mean = (lo, hi), float(config["global_mean"])
        model.user_ids = model.item_ids = None
        if config["ids"]:
            model.user_ids, model.item_ids = (archive.array("ids/users.npy"),
                                              archive.array("ids/items.npy"))
            if model.user_ids.shape != (n_users,) or model.item_ids.shape != (n_items,):
                raise ValueError(f"id maps of shapes {model.user_ids.shape} and "
                                 f"{model.item_ids.shape} do not match shape {config['shape']}")
        model.best_epoch, model.lr_drops = config["best_epoch"], list(config["lr_drops"])
        model.history = dict(config["history"])
        opt = config["optimizer"]
        if opt is not None:
            model.optimizer = optimizers_mod.get(opt["config"])
            params = [p for _, p, _, _ in model._params()]
            model.optimizer.set_state({"iterations": opt["iterations"],
                                       "arrays": {key: archive.array(f"optimizer/{key}.npy")
                                                  for key in opt["slots"]}}, params)
        return model
