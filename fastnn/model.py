"""Models: the functional ``Model`` (a DAG of layer calls) and ``Sequential``,
with Keras's ``compile``/``fit``/``evaluate``/``predict``.

The graph runs its nodes in topological order, keeping each node's backprop
closure; backward walks them in reverse and sums gradients where branches
meet. A node may have several outputs and tensors among its call arguments
(``initial_state``), which get gradients like its inputs; masks made by a
layer (``Embedding(mask_zero=True)``, ``Masking``) travel along the nodes to
the layers and the losses after it. A model may have several outputs, each
with its loss, loss weight and metrics, as in Keras. ``fit`` is a thin loop over batches; everything around it (callbacks,
metrics, progress) lives in its own module.

A model owns its backend (``Model(..., backend="numpy")``, default: the one
active when the model is constructed); its layers compute there and
``model.to(name)`` moves weights, gradients and optimizer state. Host data
(NumPy arrays, lists) is moved to the backend once per ``fit``/``evaluate``/
``predict`` call; arrays of another device backend are refused, naming both.
The loss and the metrics stay on the backend during training: the logs are
fetched from it (one host transfer for all of them) only when something reads
them, which ``fit`` does once per epoch (and once for the validation pass);
the progress bar with ``verbose=1`` reads them at most once per refresh
interval, and a callback that reads the batch logs reads them for that batch.

``fit``/``evaluate``/``predict`` also read batches from a generator or a
``fastnn.utils.Sequence`` (``fastnn/data.py``): each batch is checked and
moved to the backend as it is read, then trains exactly as the same batch cut
from arrays would.

The graph machinery (forward/backward over the nodes, one batch's losses and
gradients) is ``_ModelGraph`` in _model_graph.py, a base class of ``Model``;
``Sequential`` lives in _sequential.py and is re-exported here.
"""
import math

import numpy

from . import losses as losses_mod
from . import optimizers as optimizers_mod
from .backend import get_backend, get_instance
from .progress import Progbar
from .training import TrainingLoop
from .layers.base import Layer
from .inputs import (_ModelInputs, _check_batch_size, _check_verbose, _keeps_device,
                     _metric_specs, _spread)
from .data import (BatchSource, _ModelBatches, _array_batches, _refuse_with_source, _unmasked,
                   check_loader_options, is_batch_source)
from ._model_graph import _ModelGraph
from ._types import (Any, ArrayIn, BackendLike, Callable, Data, Dict, List, Mapping, Optional,
                     Sequence, Shape, Union)


class Model(_ModelGraph, _ModelInputs, _ModelBatches):
    """A functional model: ``Model(inputs=x, outputs=y)`` over layer calls.

    Parameters
    ----------
    inputs : SymbolicTensor or list of SymbolicTensor, optional
        The graph's inputs, made with ``fastnn.Input``.
    outputs : SymbolicTensor or list of SymbolicTensor, optional
        The graph's outputs: results of layer calls on ``inputs``. Give both
        or neither (a subclass such as ``Sequential`` builds its graph later).
    name : str, optional
        The model's name (default: the class name in lower case).
    backend : str or Ops, optional
        Where the model computes (a backend name such as ``"numpy"``, or an ``Ops``);
        default: the current default backend (``fastnn.set_backend``).

    Raises
    ------
    ValueError
        If only one of ``inputs`` and ``outputs`` is given, or the outputs do
        not depend on the inputs.

    Examples
    --------
    >>> import numpy, fastnn
    >>> from fastnn.layers import Dense
    >>> x = fastnn.Input((4,))
    >>> y = Dense(2, activation="softmax")(Dense(8, activation="relu")(x))
    >>> model = fastnn.Model(inputs=x, outputs=y)
    >>> model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    >>> model.predict(numpy.zeros((3, 4), "float32")).shape
    (3, 2)
    """

    def __init__(self, inputs: Any = None, outputs: Any = None, name: Optional[str] = None,
                 backend: Optional[BackendLike] = None) -> None:
        self.name = name or type(self).__name__.lower()
        # Fixed here; the layers move to it when the graph is built.
        self.ops = get_instance(backend) if backend is not None else get_backend()
        self.optimizer: Any = None
        self.loss: Any = None
        self.compiled_metrics: List[Any] = []
        self.stop_training = False
        self.history: Any = None
        self._graph_ready = False
        if inputs is not None or outputs is not None:
            if inputs is None or outputs is None:
                raise ValueError("a functional Model needs both inputs and outputs")
            self._init_graph(inputs, outputs)

    # ------------------------------------------------------------------ graph
    def to(self, backend: BackendLike) -> "Model":
        """Compute on ``backend`` from now on: weights, gradients and
        optimizer state move there (through the host, once).

        Parameters
        ----------
        backend : str or Ops
            A backend name (``"numpy"``, ``"reference"``, ``"strict"``) or an ``Ops``.

        Returns
        -------
        Model
            The model itself.
        """
        ops = get_instance(backend)
        if self._graph_ready:
            for layer in self._input_layers + self._all_layers:
                layer.to(ops)
        if self.optimizer is not None:
            self.optimizer.to(ops)
        for loss in getattr(self, "_losses", None) or []:
            if loss is not None:
                loss.ops = ops
        self.ops = ops
        return self

    @property
    def layers(self) -> List[Layer]:
        """The model's layers in graph order (empty until it is built)."""
        return list(self._layers) if self._graph_ready else []

    @property
    def built(self) -> bool:
        """Whether the graph exists (inputs and every layer's weights)."""
        return self._graph_ready

    def get_layer(self, name: Optional[str] = None, index: Optional[int] = None) -> Layer:
        """A layer by name or by position in ``layers``.

        Parameters
        ----------
        name : str, optional
            The layer's name.
        index : int, optional
            Its position in ``layers`` (takes precedence over ``name``).

        Returns
        -------
        Layer

        Raises
        ------
        ValueError
            If no layer has that name.
        """
        if index is not None:
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"no layer named {name!r}; layers: {[l.name for l in self.layers]}")

    # --------------------------------------------------------------- running
    def build(self, input_shape: Shape) -> None:
        """Build with a per-sample ``input_shape`` (batch axis excluded).

        A functional model is built when it is made; this only checks that.

        Parameters
        ----------
        input_shape : tuple of int
            The per-sample input shape.
        """
        if not self._graph_ready:
            raise ValueError("a functional Model is built from its inputs and outputs")

    # -------------------------------------------------------- parameter access
    @property
    def weights(self) -> List[Any]:
        """Every weight array (trainable or not), on the model's backend, in layer order."""
        return self._params() if self._graph_ready else []

    @property
    def trainable_weights(self) -> List[Any]:
        """The weight arrays that training updates, in layer order."""
        return self._params(True) if self._graph_ready else []

    def count_params(self) -> int:
        """The number of scalars in all weights (trainable or not)."""
        self._require_built("count_params")
        return int(sum(p.size for p in self._params()))

    def get_weights(self) -> List[numpy.ndarray]:
        """All weights, as a list of NumPy arrays in layer order."""
        self._require_built("get_weights")
        return [numpy.array(self.ops.to_numpy(p), copy=True) for p in self._params()]

    def set_weights(self, weights: Sequence[ArrayIn]) -> None:
        """Overwrite every weight, in the order of ``get_weights``.

        Parameters
        ----------
        weights : list of array_like
            One array per weight, each of the weight's shape.

        Raises
        ------
        ValueError
            If the count or a shape differs (nothing is written then).
        """
        self._require_built("set_weights")
        params = self._params()
        if len(weights) != len(params):
            raise ValueError(f"model has {len(params)} weight arrays, got {len(weights)}")
        for p, w in zip(params, weights):
            w = numpy.asarray(w)
            if w.shape != p.shape:
                raise ValueError(f"weight shape mismatch: expected {p.shape}, got {w.shape}")
        for p, w in zip(params, weights):
            p[...] = self.ops.asarray(w, dtype=p.dtype)

    # ---------------------------------------------------------------- compile
    def compile(self, optimizer: Any = "rmsprop", loss: Any = None, metrics: Any = None,
                loss_weights: Union[Sequence[float], Mapping[str, float], None] = None) -> None:
        """Choose the optimizer, the loss and the metrics reported by ``fit``.

        Parameters
        ----------
        optimizer : str or Optimizer, default "rmsprop"
            An optimizer name (``"adam"``, ``"sgd"``, ...) or instance.
        loss : str, Loss, callable, list or dict
            The loss: a name (``"mse"``, ``"sparse_categorical_crossentropy"``,
            ...), a ``fastnn.losses.Loss`` or a function ``f(y_true, y_pred)``.
            With several outputs, as Keras: one loss for every output, a list
            (one per output) or a dict by output name; an output without a
            loss is not trained on.
        metrics : list or dict, optional
            Metric names or ``fastnn.metrics.Metric`` instances reported by
            ``fit``/``evaluate``. With several outputs, a list of lists or a
            dict by output name (a flat list applies to every output).
        loss_weights : list or dict, optional
            The factors of the outputs' losses in the total (default 1 each).

        Raises
        ------
        ValueError
            If no loss is given, a name is unknown or an output has metrics
            but no loss.

        Examples
        --------
        >>> model.compile(optimizer="adam", loss="mse", metrics=["mae"])
        """
        if loss is None:
            raise ValueError("compile needs a loss, e.g. loss='mse' or "
                             "loss='sparse_categorical_crossentropy'")
        names = self.output_names if self._graph_ready else ["output"]
        losses = [None if l is None else losses_mod.get(l)
                  for l in _spread(loss, names, "loss")]
        if all(l is None for l in losses):
            raise ValueError("compile: no output has a loss")
        weights = [1.0] * len(names) if loss_weights is None else \
            _spread(loss_weights, names, "loss_weights", missing=1.0, spread_one=False)
        for w in weights:
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w):
                raise ValueError(f"loss_weights must be finite numbers, got {loss_weights!r}")
        metric_specs = _metric_specs(metrics, names)
        if len(names) > 1:
            per_output = isinstance(metrics, dict) or (
                isinstance(metrics, (list, tuple)) and metrics
                and all(m is None or isinstance(m, (list, tuple)) for m in metrics))
            for k, (name, l) in enumerate(zip(names, losses)):
                if l is None and metric_specs[k] and not per_output:
                    metric_specs[k] = []  # a flat list measures the outputs that get targets
                elif l is None and metric_specs[k]:
                    # fit/evaluate take no targets for such an output: the metric
                    # would have nothing to compare with.
                    raise ValueError(f"compile: output {name!r} has metrics {metric_specs[k]!r} "
                                     f"but no loss; an output without a loss gets no targets, so "
                                     f"it cannot be measured. Give {name!r} a loss (a "
                                     f"loss_weights entry of 0 keeps it out of training) or drop "
                                     f"its metrics")
        if self._graph_ready:
            self._collect_params()  # as Keras: trainable flags set since the build take effect
        self.optimizer = optimizers_mod.get(optimizer).to(self.ops)
        for l in losses:
            if l is not None:
                l.ops = self.ops
        self._losses = losses
        self._loss_weights = [float(w) for w in weights]
        self.loss = losses[0] if len(names) == 1 else losses
        self._metric_specs = metric_specs
        self._metric_table = self._make_metrics()
        self.compiled_metrics = [m for _, _, m in self._metric_table]
        self.stop_training = False

    # ------------------------------------------------------------------ steps
    def train_on_batch(self, x: Data, y: Data, sample_weight: Optional[ArrayIn] = None,
                       return_dict: bool = False) -> Any:
        """One gradient step on one batch.

        Parameters
        ----------
        x : array_like or list of array_like
            The inputs of the batch.
        y : array_like or list of array_like
            The targets.
        sample_weight : array_like, optional
            One weight per sample.
        return_dict : bool, default False
            Return ``{name: value}`` instead of a list.

        Returns
        -------
        float, list of float or dict
            The loss (and the metrics) on this batch.
        """
        self._require_compiled("train_on_batch")
        xs = self._prepare_x(x)
        ys = self._prepare_y(y, xs[0].shape[0])
        sample_weight = self._prepare_sample_weight(sample_weight, ys, xs[0].shape[0])
        loss, parts, preds = self._train_step(xs, ys, sample_weight)
        return self._batch_result(loss, parts, ys, preds, sample_weight, return_dict)

    def test_on_batch(self, x: Data, y: Data, sample_weight: Optional[ArrayIn] = None,
                      return_dict: bool = False) -> Any:
        """Loss (and metrics) on one batch, without training.

        Parameters
        ----------
        x : array_like or list of array_like
            The inputs of the batch.
        y : array_like or list of array_like
            The targets.
        sample_weight : array_like, optional
            One weight per sample.
        return_dict : bool, default False
            Return ``{name: value}`` instead of a list.

        Returns
        -------
        float, list of float or dict
        """
        self._require_compiled("test_on_batch")
        xs = self._prepare_x(x)
        ys = self._prepare_y(y, xs[0].shape[0])
        sample_weight = self._prepare_sample_weight(sample_weight, ys, xs[0].shape[0])
        preds = self._forward(xs, False)[0]
        loss, parts = self._loss_values(ys, preds, sample_weight)
        loss += self._regularization_loss()
        return self._batch_result(loss, parts, ys, preds, sample_weight, return_dict)

    def predict_on_batch(self, x: Data) -> Any:
        """Outputs for one batch, in one forward pass.

        Parameters
        ----------
        x : array_like or list of array_like
            The inputs of the batch.

        Returns
        -------
        ndarray or list of ndarray
            One array per output.
        """
        xs = self._prepare_x(x)
        keep = _keeps_device(x, self.ops)
        outs = [o if keep else self.ops.to_numpy(o) for o in self._forward(xs, False)[0]]
        return outs if len(outs) > 1 else outs[0]

    # ------------------------------------------------------------------- fit
    def fit(self, x: Data = None, y: Data = None, batch_size: Optional[int] = None,
            epochs: int = 1, verbose: Union[int, str] = "auto",
            callbacks: Optional[Sequence[Any]] = None, validation_split: float = 0.0,
            validation_data: Data = None, shuffle: bool = True,
            class_weight: Optional[Mapping[int, float]] = None,
            sample_weight: Optional[ArrayIn] = None, initial_epoch: int = 0,
            steps_per_epoch: Optional[int] = None, validation_steps: Optional[int] = None,
            max_queue_size: int = 10, workers: int = 1,
            use_multiprocessing: bool = False) -> Any:
        """Train for ``epochs`` passes over the data.

        ``x`` is the data as arrays (with ``y``, ``sample_weight``,
        ``batch_size``, default 32), or, as in Keras, a source of batches: a
        ``fastnn.utils.Sequence`` (``__len__``, ``__getitem__``,
        ``on_epoch_end``), a generator, or any iterable, whose batches are
        ``x``, ``(x, y)`` or ``(x, y, sample_weight)`` (several inputs or
        outputs as a tuple/list or a dict by name: ``((x1, x2), y)``). Each
        batch is checked as arrays are, and an error names the batch. With a
        source, ``y``, ``sample_weight``, ``batch_size`` and
        ``validation_split`` are refused (the batches hold them / a stream
        cannot be split), and:

        - an epoch is ``steps_per_epoch`` batches; by default all of a
          Sequence, or a generator until it ends (the progress bar then has
          no total). A generator is read on from epoch to epoch: for several
          epochs, loop forever in it and give ``steps_per_epoch``; one that
          runs out before is an error. An object whose ``__iter__`` starts
          afresh (a dataset object) is read anew each epoch. A list is data,
          never batches: a list of arrays is one array per input.
        - ``shuffle`` visits a Sequence's batches in a new random order each
          epoch (``fastnn.set_seed`` repeats it); a generator's order is its own.
        - ``validation_data`` may be a source too, read for
          ``validation_steps`` batches (default: all) after each epoch.

        Batches are read in this thread, one at a time: ``workers``,
        ``use_multiprocessing`` and ``max_queue_size`` are accepted for Keras
        code and change nothing (a warning says so when they ask for
        workers). ``class_weight`` weighs the training batches only.

        Parameters
        ----------
        x : array_like, list or dict of array_like, Sequence, generator or iterable
            The inputs (one array per model input), or a source of batches.
        y : array_like, list or dict of array_like, optional
            The targets, one per output (arrays only).
        batch_size : int, optional
            Samples per gradient step (arrays only; default 32).
        epochs : int, default 1
            The epoch to stop after (counting from 0, so ``initial_epoch``
            onwards).
        verbose : {"auto", 0, 1, 2}, default "auto"
            0 silent, 1 a progress bar per epoch, 2 one line per epoch;
            ``"auto"`` is 1.
        callbacks : list of Callback, optional
            Called at the start and end of training, epochs and batches.
        validation_split : float, default 0.0
            The fraction of the arrays (taken from the end, before shuffling)
            held out to validate on after each epoch.
        validation_data : tuple or batch source, optional
            ``(x_val, y_val)`` or ``(x_val, y_val, sample_weight)``, or a
            source of batches, evaluated after each epoch (``val_`` logs).
        shuffle : bool, default True
            Shuffle the samples (arrays) each epoch, or a Sequence's batch order each
            pass over it (each epoch unless ``steps_per_epoch`` is shorter than it).
        class_weight : dict, optional
            ``{class index: weight}`` multiplying the loss of each sample of
            that class (models with one output).
        sample_weight : array_like, optional
            One weight per training sample.
        initial_epoch : int, default 0
            The epoch to start at (to resume a run).
        steps_per_epoch : int, optional
            Batches per epoch from a batch source.
        validation_steps : int, optional
            Batches read from a validation source after each epoch.
        max_queue_size, workers, use_multiprocessing
            Accepted for Keras code; batches are read in this thread.

        Returns
        -------
        History
            ``history.history`` maps each log name (``loss``, metrics,
            ``val_`` ones) to its value per epoch.

        Raises
        ------
        RuntimeError
            If the model is not compiled.
        ValueError
            If the data do not fit the model (the message names the input,
            its shape and the shape expected) or arguments conflict.

        Examples
        --------
        >>> history = model.fit(x_train, y_train, batch_size=64, epochs=10,
        ...                     validation_split=0.1)
        >>> history.history["val_loss"]
        """
        self._require_compiled("fit")
        if not isinstance(epochs, (int, numpy.integer)) or epochs < 0:
            raise ValueError(f"epochs must be a non-negative integer, got {epochs!r}")
        check_loader_options(workers, use_multiprocessing, max_queue_size, "fit")
        if class_weight is not None and len(self._losses) > 1:
            raise ValueError("class_weight is for models with one output; pass sample_weight")
        ops = self.ops
        if is_batch_source(x, ops):
            _refuse_with_source("fit", x, y=y, sample_weight=sample_weight, batch_size=batch_size,
                                validation_split=validation_split)
            train = BatchSource(x, steps_per_epoch, shuffle, "fit", "steps_per_epoch")

            def epoch_batches(epoch):
                return self._source_batches(train, epoch, class_weight=class_weight)
            val: Any
            steps, samples, val_batch_size, val = train.steps, None, 256, None
        else:
            if steps_per_epoch is not None:
                raise ValueError("fit: steps_per_epoch is for a generator or a Sequence; with "
                                 "arrays an epoch is every sample, in batches of batch_size")
            batch_size = 32 if batch_size is None else batch_size
            _check_batch_size(batch_size)
            train = None
            xs, ys, sw, val = self._prepare_fit_arrays(x, y, sample_weight, class_weight,
                                                       validation_split, validation_data)
            samples = xs[0].shape[0]

            def epoch_batches(epoch):
                return _array_batches(xs, ys, sw, batch_size, ops if shuffle else None)
            steps, val_batch_size = math.ceil(samples / batch_size), max(batch_size, 256)
        if is_batch_source(validation_data, ops):
            val_source = BatchSource(validation_data, validation_steps, False,
                                     "fit (validation_data)", "validation_steps")
        elif validation_steps is not None:
            raise ValueError("fit: validation_steps is for validation_data given as a generator "
                             "or a Sequence; array validation data is used whole")
        else:
            val_source = None
            if val is None:
                val = self._prepare_validation(validation_data)

        if verbose == "auto":
            verbose = 1
        loop = TrainingLoop(self, callbacks, epochs=epochs, steps=steps, verbose=verbose,
                            initial_epoch=initial_epoch, samples=samples, batch_size=batch_size)
        several = len(self._losses) > 1  # (an unbuilt model, built by its first batch, has one)
        for epoch in loop.epochs():
            for _, _, m in self._metric_table:
                m.reset_state()
            loss_sum, seen = 0.0, 0
            part_sums = [None if l is None else 0.0 for l in self._losses]
            for step, (xb, yb, swb) in loop.batches_of(epoch_batches(epoch)):
                nb = xb[0].shape[0]
                loss, parts, preds = self._train_step(xb, yb, swb)
                loss_sum += loss * nb
                seen += nb
                if several:
                    for k, part in enumerate(parts):
                        if part is not None:
                            part_sums[k] += part * nb
                for k, key, m in self._metric_table:
                    m.update_state(*_unmasked(yb[k], preds[k], swb, self._last_masks[k]))
                # Read (one transfer) only if a callback or the bar looks at them.
                batch_logs = self._loss_logs(
                    loss_sum / seen, [None if p is None else p / seen for p in part_sums]
                    if several else [], self._metric_table)
                loop.end_batch(step, batch_logs)
            logs = dict(batch_logs)
            if train is not None:
                train.end_epoch()
            if val_source is not None:
                val_logs = self._evaluate_batches(self._source_batches(val_source),
                                                  val_source.steps)
                val_source.end_epoch()
            elif val is not None:
                val_xs, val_ys, val_sw = val
                val_logs = self._evaluate_batches(_array_batches(val_xs, val_ys, val_sw,
                                                                 val_batch_size),
                                                  math.ceil(val[0][0].shape[0] / val_batch_size))
            if val_source is not None or val is not None:
                logs.update({"val_" + k: v for k, v in val_logs.items()})
            loop.end_epoch(epoch, logs)
        return loop.end()

    # -------------------------------------------------------------- evaluate
    def evaluate(self, x: Data = None, y: Data = None, batch_size: Optional[int] = None,
                 verbose: Union[int, str] = 0, sample_weight: Optional[ArrayIn] = None,
                 return_dict: bool = False, steps: Optional[int] = None, *,
                 max_queue_size: int = 10, workers: int = 1,
                 use_multiprocessing: bool = False) -> Any:
        """Loss (and metrics) over ``(x, y)``, without training.

        Parameters
        ----------
        x : array_like, list or dict of array_like, Sequence, generator or iterable
            The inputs, or a source of ``(x, y)`` or ``(x, y, sample_weight)``
            batches as in ``fit`` (``y``, ``sample_weight`` and
            ``batch_size`` are then refused).
        y : array_like, list or dict of array_like, optional
            The targets.
        batch_size : int, optional
            Samples per forward pass (default 32).
        verbose : {"auto", 0, 1, 2}, default 0
            0 silent, 1 a progress bar with the running loss and metrics (one
            final line when output is not a terminal), 2 one final line;
            ``"auto"`` is 1.
        sample_weight : array_like, optional
            One weight per sample.
        return_dict : bool, default False
            Return ``{name: value}`` instead of a list.
        steps : int, optional
            Batches read from a source (default: all).
        max_queue_size, workers, use_multiprocessing
            Accepted for Keras code; batches are read in this thread.

        Returns
        -------
        float, list of float or dict
            The loss alone when nothing else is measured, else the loss and
            the metrics (a list in ``metrics_names`` order, or a dict).
        """
        self._require_compiled("evaluate")
        verbose = _check_verbose(verbose)
        check_loader_options(workers, use_multiprocessing, max_queue_size, "evaluate")
        if is_batch_source(x, self.ops):
            _refuse_with_source("evaluate", x, y=y, sample_weight=sample_weight,
                                batch_size=batch_size)
            source = BatchSource(x, steps, False, "evaluate", "steps")
            logs = self._evaluate_batches(self._source_batches(source), source.steps,
                                          verbose=verbose)
            source.end_epoch()
        else:
            if steps is not None:
                raise ValueError("evaluate: steps is for a generator or a Sequence; arrays "
                                 "are evaluated whole, in batches of batch_size")
            batch_size = 32 if batch_size is None else batch_size
            _check_batch_size(batch_size)
            xs = self._prepare_x(x)
            n = xs[0].shape[0]
            ys = self._prepare_y(y, n)
            if n == 0:
                raise ValueError("evaluate got empty arrays (0 samples)")
            sample_weight = self._prepare_sample_weight(sample_weight, ys, n)
            logs = self._evaluate_batches(_array_batches(xs, ys, sample_weight, batch_size),
                                          math.ceil(n / batch_size), verbose=verbose)
        if return_dict:
            return logs
        return list(logs.values()) if len(logs) > 1 else logs["loss"]

    # --------------------------------------------------------------- predict
    def predict(self, x: Data, batch_size: Optional[int] = None, verbose: Union[int, str] = 0,
                steps: Optional[int] = None, *, max_queue_size: int = 10, workers: int = 1,
                use_multiprocessing: bool = False) -> Any:
        """Outputs for ``x``, computed in batches (nothing is kept for backward).

        Parameters
        ----------
        x : array_like, list or dict of array_like, Sequence, generator or iterable
            The inputs, or a source of batches (``x``, or ``(x, y)`` whose
            ``y`` is not used) as in ``fit``.
        batch_size : int, optional
            Samples per forward pass (arrays only; default 32).
        verbose : {"auto", 0, 1, 2}, default 0
            As in ``evaluate`` (a bar of the batches done).
        steps : int, optional
            Batches read from a source (default: all).
        max_queue_size, workers, use_multiprocessing
            Accepted for Keras code; batches are read in this thread.

        Returns
        -------
        ndarray or list of ndarray
            One array per output, batch axis first (NumPy for NumPy input;
            the backend's arrays for backend input).
        """
        verbose = _check_verbose(verbose)
        check_loader_options(workers, use_multiprocessing, max_queue_size, "predict")
        ops = self.ops
        if is_batch_source(x, ops):
            _refuse_with_source("predict", x, batch_size=batch_size)
            source = BatchSource(x, steps, False, "predict", "steps")
            prepared = (self._prepare_batch(label, batch, False)
                        for label, batch in source.epoch())
            batches = ((xs, _keeps_device(xb, ops)) for xs, _, _, xb in prepared)
        else:
            if steps is not None:
                raise ValueError("predict: steps is for a generator or a Sequence; arrays are "
                                 "predicted whole, in batches of batch_size")
            source = None
            batch_size = 32 if batch_size is None else batch_size
            _check_batch_size(batch_size)
            xs = self._prepare_x(x)
            n = xs[0].shape[0]
            steps = math.ceil(n / batch_size) if n else None
            batches = ((xb, True) for xb, _, _ in _array_batches(xs, [], None, batch_size))
        bar = Progbar(steps, verbose=verbose) if verbose and (steps or source) else None
        outs: List[List[Any]] = [[] for _ in self.outputs]
        # Host input gets host output (one transfer each): a source's when every batch was.
        keep, step = source is not None or _keeps_device(x, ops), 0
        for step, (xb, keep_batch) in enumerate(batches, 1):
            keep = keep and keep_batch
            for acc, o in zip(outs, self._forward(xb, False)[0]):
                acc.append(o)
            if bar is not None:
                bar.update(step)
        if source is not None:
            source.end_epoch()
            if bar is not None and source.steps is None:
                bar.update(step, finalize=True)
        result = []
        for acc, t in zip(outs, self.outputs):
            out = ops.xp.concatenate(acc, axis=0) if acc else \
                ops.asarray(numpy.zeros((0,) + t.shape, dtype=t.dtype))
            result.append(out if keep else ops.to_numpy(out))
        return result if len(result) > 1 else result[0]

    # ---------------------------------------------------------------- saving
    def save(self, path: Any, include_optimizer: bool = True) -> None:
        """Write architecture, weights and (by default) optimizer state to one
        file, atomically. Load it with ``fastnn.load_model(path)``.

        Parameters
        ----------
        path : str or os.PathLike
            The file to write, in fastnn's format (a zip of JSON and ``.npy``
            files); ``.fastnn`` is the usual suffix.
        include_optimizer : bool, default True
            Also save the optimizer's state, so training resumes where it stopped.

        Raises
        ------
        ValueError
            If the name ends in a Keras suffix (``.h5``, ``.hdf5``,
            ``.keras``): the file would not be in that format.
        """
        from .saving import check_suffix, save_model
        check_suffix(path)
        save_model(self, path, include_optimizer)

    def save_weights(self, path: Any) -> None:
        """Write the weights only (no architecture) to ``path``.

        Parameters
        ----------
        path : str or os.PathLike
            The file to write (fastnn's format; Keras suffixes are refused).
        """
        from .saving import check_suffix, save_weights
        self._require_built("save_weights")
        check_suffix(path, "weights")
        save_weights(self, path)

    def load_weights(self, path: Any) -> None:
        """Read weights written by ``save_weights`` (or ``save``) into this model.

        Parameters
        ----------
        path : str or os.PathLike
            The file to read; its weights must match this model's layers and shapes.
        """
        from .saving import load_weights
        self._require_built("load_weights")
        load_weights(self, path)

    def get_config(self) -> Dict[str, Any]:
        """The architecture as a JSON-able dict (layers, their configs, connections)."""
        from .saving import model_config
        return model_config(self)

    def to_json(self, **kwargs: Any) -> str:
        """The architecture as a JSON string (no weights), as in Keras; rebuild
        it with ``fastnn.models.model_from_json``.

        Parameters
        ----------
        **kwargs
            Passed to ``json.dumps`` (``indent=2``, ...).

        Returns
        -------
        str
        """
        from .saving import model_to_json
        return model_to_json(self, **kwargs)

    # --------------------------------------------------------------- summary
    def summary(self, print_fn: Callable[[str], Any] = print,
                line_length: Optional[int] = None) -> None:
        """Print the input rows, then layers, output shapes and parameter counts,
        as Keras does (a composite layer's count includes the layers it holds;
        a layer with several outputs lists each output's shape). A graph that
        is not a plain chain also gets Keras's "Connected to" column, naming
        each call's inputs as ``layer[node][tensor]``.

        Parameters
        ----------
        print_fn : callable, default print
            Called with each line.
        line_length : int, optional
            Total width (default 65, or 98 with "Connected to").
        """
        self._require_built("summary")
        from .summary import print_summary
        print_summary(self, print_fn, line_length)


# Last: _sequential.py subclasses the Model defined above.
from ._sequential import Sequential  # noqa: E402,F401 (re-exported)
