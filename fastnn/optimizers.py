"""Optimizers (SGD, RMSprop, Adagrad, Adadelta, Adam, AdamW, Adamax, Nadam),
learning-rate schedules and gradient clipping.

Keras 2's arguments are accepted so that course code runs unchanged: ``lr``
(deprecated, warns and names ``learning_rate``), ``decay`` (time-based decay:
the rate at step t is ``learning_rate / (1 + decay * t)``) and ``epsilon=None``
(the default, 1e-7 as in Keras).

An optimizer updates a fixed, ordered list of parameter arrays in place:
``opt.apply_gradients(params, grads)``. Its per-parameter state (moments,
velocities) is kept in the same order, so ``get_state``/``set_state`` can save
and restore it exactly. The update arithmetic lives in the backend
(``Ops.adam_update`` and friends: one fused pass per parameter on the CPU)
of the parameters' backend; the state lives there too (``to`` moves it), and
clipping decides on the device, so a step never waits on it.
"""
import math
import types
import warnings

from ._registry import Configurable, lookup, serialize
from ._types import Any, Dict, List, Optional, Sequence, Tuple, Union
from .backend import backend_of, ops_for


# --------------------------------------------------------------------- schedules
class LearningRateSchedule(Configurable):
    """A learning rate as a function of the optimizer's step count (from 0)."""

    def __call__(self, step):
        raise NotImplementedError


class ExponentialDecay(LearningRateSchedule):
    """``initial_learning_rate * decay_rate ** (step / decay_steps)`` (Keras's).

    Parameters
    ----------
    initial_learning_rate : float
        The rate at step 0.
    decay_steps : int
        Steps per factor of ``decay_rate``.
    decay_rate : float
        The factor.
    staircase : bool, default False
        Decay in whole steps of ``decay_steps``.

    Examples
    --------
    >>> lr = ExponentialDecay(1e-3, decay_steps=1000, decay_rate=0.9)
    >>> opt = Adam(learning_rate=lr)
    """
    _config_keys = ("initial_learning_rate", "decay_steps", "decay_rate", "staircase")

    def __init__(self, initial_learning_rate: float, decay_steps: int, decay_rate: float,
                 staircase: bool = False) -> None:
        if decay_steps <= 0:
            raise ValueError(f"decay_steps must be > 0, got {decay_steps}")
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_steps, self.decay_rate, self.staircase = decay_steps, float(decay_rate), staircase

    def __call__(self, step):
        p = step / self.decay_steps
        if self.staircase:
            p = math.floor(p)
        return self.initial_learning_rate * self.decay_rate ** p


class InverseTimeDecay(ExponentialDecay):
    """``initial_learning_rate / (1 + decay_rate * step / decay_steps)`` (Keras's).

    Parameters
    ----------
    initial_learning_rate : float
        The rate at step 0.
    decay_steps : int
        The step scale.
    decay_rate : float
        How fast the rate falls.
    staircase : bool, default False
        Decay in whole steps of ``decay_steps``.
    """
    def __call__(self, step):
        p = step / self.decay_steps
        if self.staircase:
            p = math.floor(p)
        return self.initial_learning_rate / (1 + self.decay_rate * p)


class PiecewiseConstantDecay(LearningRateSchedule):
    """A constant rate between step boundaries (Keras's).

    Parameters
    ----------
    boundaries : list of int
        The steps where the rate changes (increasing).
    values : list of float
        One more rate than boundaries: ``values[i]`` up to and including
        ``boundaries[i]``, the last one after.
    """
    _config_keys = ("boundaries", "values")

    def __init__(self, boundaries: Sequence[int], values: Sequence[float]) -> None:
        if len(values) != len(boundaries) + 1:
            raise ValueError(f"values needs one more entry than boundaries, got "
                             f"{len(values)} values for {len(boundaries)} boundaries")
        self.boundaries, self.values = list(boundaries), [float(v) for v in values]

    def __call__(self, step):
        for b, v in zip(self.boundaries, self.values):
            if step <= b:
                return v
        return self.values[-1]


class CosineDecay(LearningRateSchedule):
    """Cosine decay from ``initial_learning_rate`` to ``alpha`` times it,
    after an optional linear warm-up.

    Parameters
    ----------
    initial_learning_rate : float
        The rate after warm-up.
    decay_steps : int
        Steps of the cosine decay (after warm-up).
    alpha : float, default 0.0
        The final rate, as a fraction of ``initial_learning_rate``.
    warmup_steps : int, default 0
        Steps of linear warm-up from ``initial_learning_rate / warmup_steps``.
    """
    _config_keys = ("initial_learning_rate", "decay_steps", "alpha", "warmup_steps")

    def __init__(self, initial_learning_rate: float, decay_steps: int, alpha: float = 0.0,
                 warmup_steps: int = 0) -> None:
        self.initial_learning_rate, self.decay_steps = float(initial_learning_rate), decay_steps
        self.alpha, self.warmup_steps = float(alpha), warmup_steps

    def __call__(self, step):
        if step < self.warmup_steps:
            return self.initial_learning_rate * (step + 1) / self.warmup_steps
        t = min(step - self.warmup_steps, self.decay_steps) / self.decay_steps
        cosine = 0.5 * (1 + math.cos(math.pi * t))
        return self.initial_learning_rate * ((1 - self.alpha) * cosine + self.alpha)


_SCHEDULES = {"exponential_decay": ExponentialDecay, "inverse_time_decay": InverseTimeDecay,
              "piecewise_constant_decay": PiecewiseConstantDecay, "cosine_decay": CosineDecay}


# -------------------------------------------------------------------- optimizers
def _epsilon(epsilon):
    """Keras 2's ``epsilon=None`` means the backend's fuzz factor, 1e-7."""
    epsilon = 1e-7 if epsilon is None else float(epsilon)
    if not epsilon > 0:
        raise ValueError(f"epsilon must be > 0 or None (for 1e-7), got {epsilon}")
    return epsilon


class Optimizer(Configurable):
    """Base class: learning rate (a float or a schedule), clipping, state.

    Clipping, in this order: ``clipvalue`` clips each gradient element to
    [-clipvalue, clipvalue]; ``clipnorm`` rescales each parameter's gradient to
    at most that L2 norm; ``global_clipnorm`` rescales all gradients together
    so their joint L2 norm is at most that value.

    Parameters
    ----------
    learning_rate : float, LearningRateSchedule or dict, default 0.01
        The step size, or a schedule of the step count (or its config).
    clipvalue : float, optional
        Clip each gradient element to [-clipvalue, clipvalue].
    clipnorm : float, optional
        Rescale each parameter's gradient to at most this L2 norm.
    global_clipnorm : float, optional
        Rescale all gradients together to at most this joint L2 norm.
    decay : float, default 0.0
        Keras 2's time-based decay: the rate at step t is
        ``learning_rate / (1 + decay * t)``.
    lr : float, optional
        Keras 2's name of ``learning_rate`` (deprecated: warns).

    Raises
    ------
    ValueError
        If a rate, a clip value or ``decay`` is out of range.
    """
    _config_keys: "tuple[str, ...]" = ("learning_rate", "clipvalue", "clipnorm", "global_clipnorm",
                                       "decay")
    _slots: "tuple[str, ...]" = ()

    def __init__(self, learning_rate: Union[float, LearningRateSchedule, Dict[str, Any]] = 0.01,
                 clipvalue: Optional[float] = None, clipnorm: Optional[float] = None,
                 global_clipnorm: Optional[float] = None, decay: float = 0.0,
                 lr: Optional[float] = None) -> None:
        if lr is not None:
            # Keras 2 spelling: still honoured so old code runs, but said once.
            warnings.warn(f"{type(self).__name__}(lr=...) is deprecated; use "
                          f"learning_rate={lr!r}", DeprecationWarning, stacklevel=3)
            learning_rate = lr
        decay = float(decay)
        if not decay >= 0:
            raise ValueError(f"decay must be >= 0 (Keras 2 time-based decay: the rate at step t "
                             f"is learning_rate / (1 + decay * t)), got {decay}")
        if isinstance(learning_rate, dict):
            learning_rate = lookup(_SCHEDULES, learning_rate, "learning-rate schedule")
        if not isinstance(learning_rate, LearningRateSchedule):
            # (a config dict became a schedule just above)
            learning_rate = float(learning_rate)  # type: ignore[arg-type]
            if not learning_rate > 0:
                raise ValueError(f"learning_rate must be > 0, got {learning_rate}")
        for name, v in (("clipvalue", clipvalue), ("clipnorm", clipnorm),
                        ("global_clipnorm", global_clipnorm)):
            if v is not None and not v > 0:
                raise ValueError(f"{name} must be > 0 or None, got {v}")
        if decay and isinstance(learning_rate, LearningRateSchedule):
            raise ValueError("decay applies to a constant learning rate; with a schedule, "
                             "put the decay in the schedule (e.g. InverseTimeDecay)")
        self.learning_rate, self.decay = learning_rate, decay
        self.clipvalue, self.clipnorm, self.global_clipnorm = clipvalue, clipnorm, global_clipnorm
        self.iterations = 0
        self._state: Any = None  # list (one per parameter) of dicts slot -> array
        self._ops: Any = None  # the parameters' backend, fixed by build

    def get_config(self):
        """The constructor arguments that rebuild this optimizer, JSON-able."""
        config = super().get_config()
        if isinstance(self.learning_rate, LearningRateSchedule):
            config["learning_rate"] = serialize(self.learning_rate)
        return config

    @property
    def current_learning_rate(self) -> float:
        """The rate the next update uses (after schedule or decay)."""
        lr = self.learning_rate
        if isinstance(lr, LearningRateSchedule):
            return float(lr(self.iterations))
        return lr / (1.0 + self.decay * self.iterations) if self.decay else lr

    def build(self, params: Sequence[Any]) -> None:
        """Make the per-parameter state (moments, ...) for ``params``, zeroed.

        Parameters
        ----------
        params : list of array
            The parameters this optimizer will update, in a fixed order.
        """
        if self._ops is None or not all(self._ops.is_native(p) for p in params):
            self._ops = ops_for(*params)
        ops = self._ops
        self._state = [{slot: ops.zeros(p.shape, dtype=p.dtype) for slot in self._slots}
                       for p in params]

    # The public interface of a fused training step (e.g. AutoRec's one-kernel
    # Adam step), which updates the parameters and the slots itself instead of
    # calling apply_gradients: built / slots / next_step.
    @property
    def built(self):
        """Whether ``build`` has made the per-parameter state."""
        return self._state is not None

    def slots(self, index: int) -> Dict[str, Any]:
        """The state arrays of parameter ``index`` (in ``build``'s order) as a
        dict slot name -> array, e.g. ``{"m": ..., "v": ...}`` for Adam. The
        arrays themselves, not copies: a fused step updates them in place.

        Parameters
        ----------
        index : int
            The parameter's position.
        """
        if self._state is None:
            raise RuntimeError(f"{type(self).__name__} is not built yet; call "
                               f"build(params) or apply_gradients first")
        if not 0 <= index < len(self._state):
            raise IndexError(f"parameter index {index} out of range: this optimizer was "
                             f"built for {len(self._state)} parameters")
        return self._state[index]

    def next_step(self):
        """Count one update and return ``(learning_rate, step)`` for it: the
        rate at the step count before it (as ``apply_gradients`` uses) and the
        new step count, from 1 (Adam's bias correction)."""
        lr = self.current_learning_rate
        self.iterations += 1
        return lr, self.iterations

    def _clip(self, grads):
        ops = self._ops
        xp = ops.xp

        def factor(norm_sq, limit):
            # limit / max(norm, limit): exactly 1 when the norm is within the
            # limit, limit / norm otherwise; computed on the device (no sync).
            return (limit / xp.maximum(xp.sqrt(norm_sq), limit))

        if self.clipvalue is not None:
            grads = [xp.clip(g, -self.clipvalue, self.clipvalue) for g in grads]
        if self.clipnorm is not None:
            grads = [g * factor(ops.sum_of_squares([g]), self.clipnorm).astype(g.dtype)
                     for g in grads]
        if self.global_clipnorm is not None:
            f = factor(ops.sum_of_squares(grads), self.global_clipnorm)
            grads = [g * f.astype(g.dtype) for g in grads]
        return grads

    def to(self, ops):
        """Move the state arrays to backend ``ops`` (``Model.to`` calls this).

        Parameters
        ----------
        ops : Ops
            The backend.

        Returns
        -------
        Optimizer
            The optimizer itself.
        """
        for state in self._state or []:
            for slot, a in state.items():
                if not ops.is_native(a):
                    state[slot] = ops.asarray((backend_of(a) or self._ops).to_numpy(a),
                                              dtype=a.dtype)
        self._ops = ops
        return self

    def apply_gradients(self, params: Sequence[Any], grads: Sequence[Any]) -> None:
        """Update ``params`` in place from ``grads``: clip, then one step.

        Parameters
        ----------
        params : list of array
            The parameters, in the same order at every call.
        grads : list of array
            Their gradients, one per parameter, of its shape.

        Raises
        ------
        ValueError
            If the lists differ in length or shapes, or the optimizer was
            built for other parameters.
        """
        if len(params) != len(grads):
            raise ValueError(f"got {len(params)} parameters but {len(grads)} gradients")
        if self._state is None:
            self.build(params)
        elif len(self._state) != len(params) or any(
                s and next(iter(s.values())).shape != p.shape for s, p in zip(self._state, params)):
            raise ValueError("this optimizer was built for other parameters; use a new "
                             "optimizer for each model")
        if self._ops is None:
            self._ops = ops_for(*params)
        grads = self._clip(grads)
        lr, _ = self.next_step()
        for p, g, state in zip(params, grads, self._state):
            if g.shape != p.shape:
                raise ValueError(f"gradient of shape {g.shape} for a parameter of shape {p.shape}")
            self._update(p, g, state, lr)

    def _update(self, param, grad, state, lr):
        raise NotImplementedError

    # State for save/load: a flat dict of arrays plus the step count.
    def get_state(self) -> Dict[str, Any]:
        """The step count and state arrays (as NumPy) for saving: ``{"iterations", "arrays"}``."""
        arrays = {}
        for i, state in enumerate(self._state or []):
            for slot, a in state.items():
                arrays[f"{i}/{slot}"] = self._ops.to_numpy(a)
        return {"iterations": self.iterations, "arrays": arrays}

    def set_state(self, state: Dict[str, Any], params: Sequence[Any]) -> None:
        """Restore what ``get_state`` returned, for ``params``.

        Parameters
        ----------
        state : dict
            ``{"iterations": int, "arrays": {"index/slot": ndarray}}``.
        params : list of array
            The parameters, in the order the state was saved in.
        """
        self.build(params)
        self.iterations = int(state["iterations"])
        ops = self._ops
        for key, a in state["arrays"].items():
            i, slot = key.split("/")
            target = self._state[int(i)][slot]
            if target.shape != a.shape:
                raise ValueError(f"optimizer state {key} has shape {a.shape}, expected {target.shape}")
            target[...] = ops.asarray(a, dtype=target.dtype)


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum.

    Parameters
    ----------
    learning_rate : float or LearningRateSchedule, default 0.01
        The step size.
    momentum : float, default 0.0
        In [0, 1): the velocity's decay.
    nesterov : bool, default False
        Nesterov momentum.
    weight_decay : float, default 0.0
        L2 added to the gradient.
    **kw
        The base optimizer's arguments: ``clipvalue``, ``clipnorm``,
        ``global_clipnorm``, ``decay``, and Keras 2's ``lr`` (see ``Optimizer``).
    """
    _config_keys = Optimizer._config_keys + ("momentum", "nesterov", "weight_decay")

    def __init__(self, learning_rate: Any = 0.01, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0, **kw: Any) -> None:
        super().__init__(learning_rate, **kw)
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.momentum, self.nesterov, self.weight_decay = float(momentum), bool(nesterov), float(weight_decay)
        self._slots = ("velocity",) if self.momentum else ()

    def _update(self, param, grad, state, lr):
        self._ops.sgd_update(param, grad, state.get("velocity"), lr, self.momentum,
                                 self.nesterov, self.weight_decay)


class RMSprop(Optimizer):
    """RMSprop (Hinton): the gradient divided by a moving root mean square of its past.

    Parameters
    ----------
    learning_rate : float or LearningRateSchedule, default 0.001
        The step size.
    rho : float, default 0.9
        The decay of the moving average of squared gradients.
    epsilon : float, optional
        Added to the denominator; None (Keras 2's default) means 1e-7.
    weight_decay : float, default 0.0
        L2 added to the gradient.
    **kw
        The base optimizer's arguments: ``clipvalue``, ``clipnorm``,
        ``global_clipnorm``, ``decay``, and Keras 2's ``lr`` (see ``Optimizer``).

    Examples
    --------
    The course's Keras 2 call runs unchanged:

    >>> opt = RMSprop(lr=0.001, rho=0.9, epsilon=None, decay=0.0)  # warns: use learning_rate
    """
    _config_keys = Optimizer._config_keys + ("rho", "epsilon", "weight_decay")
    _slots = ("sq",)

    def __init__(self, learning_rate: Any = 0.001, rho: float = 0.9,
                 epsilon: Optional[float] = None, weight_decay: float = 0.0, **kw: Any) -> None:
        super().__init__(learning_rate, **kw)
        self.rho, self.epsilon, self.weight_decay = float(rho), _epsilon(epsilon), float(weight_decay)

    def _update(self, param, grad, state, lr):
        self._ops.rmsprop_update(param, grad, state["sq"], lr, self.rho, self.epsilon,
                                     self.weight_decay)


class Adagrad(Optimizer):
    """Adagrad (Duchi et al. 2011): per-weight rates from the sum of squared gradients.

    Parameters
    ----------
    learning_rate : float or LearningRateSchedule, default 0.001
        The step size.
    initial_accumulator_value : float, default 0.1
        The squared-gradient sums' start.
    epsilon : float, optional
        Added to the denominator; None means 1e-7.
    weight_decay : float, default 0.0
        L2 added to the gradient.
    **kw
        The base optimizer's arguments: ``clipvalue``, ``clipnorm``,
        ``global_clipnorm``, ``decay``, and Keras 2's ``lr`` (see ``Optimizer``).
    """
    _config_keys = Optimizer._config_keys + ("initial_accumulator_value", "epsilon", "weight_decay")
    _slots = ("acc",)

    def __init__(self, learning_rate: Any = 0.001, initial_accumulator_value: float = 0.1,
                 epsilon: Optional[float] = None, weight_decay: float = 0.0, **kw: Any) -> None:
        super().__init__(learning_rate, **kw)
        self.initial_accumulator_value = float(initial_accumulator_value)
        self.epsilon, self.weight_decay = _epsilon(epsilon), float(weight_decay)

    def build(self, params: Sequence[Any]) -> None:
        """Make the state for ``params`` (accumulators at ``initial_accumulator_value``).

        Parameters
        ----------
        params : list of array
            The parameters, in a fixed order.
        """
        super().build(params)
        for s in self._state:
            s["acc"] += s["acc"].dtype.type(self.initial_accumulator_value)

    def _update(self, param, grad, state, lr):
        self._ops.adagrad_update(param, grad, state["acc"], lr, self.epsilon, self.weight_decay)


class Adam(Optimizer):
    """Adam (Kingma & Ba). ``weight_decay`` here is L2 added to the gradient;
    use ``AdamW`` for decoupled weight decay.

    Parameters
    ----------
    learning_rate : float or LearningRateSchedule, default 0.001
        The step size.
    beta_1 : float, default 0.9
        The first moment's decay.
    beta_2 : float, default 0.999
        The second moment's decay.
    epsilon : float, optional
        Added to the denominator; None means 1e-7.
    weight_decay : float, default 0.0
        L2 added to the gradient.
    amsgrad : bool, default False
        Accepted as False only (AMSGrad is not implemented).
    **kw
        The base optimizer's arguments: ``clipvalue``, ``clipnorm``,
        ``global_clipnorm``, ``decay``, and Keras 2's ``lr`` (see ``Optimizer``).

    Examples
    --------
    >>> model.compile(optimizer=Adam(learning_rate=1e-3), loss="mse")
    """
    _config_keys = Optimizer._config_keys + ("beta_1", "beta_2", "epsilon", "weight_decay")
    _slots = ("m", "v")
    _decoupled = False

    def __init__(self, learning_rate: Any = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: Optional[float] = None, weight_decay: float = 0.0,
                 amsgrad: bool = False, **kw: Any) -> None:
        if amsgrad:  # accepted as False because Keras 2 code spells out the default
            raise ValueError("amsgrad=True is not implemented in fastnn; use amsgrad=False "
                             "(the default)")
        super().__init__(learning_rate, **kw)
        for name, b in (("beta_1", beta_1), ("beta_2", beta_2)):
            if not 0 <= b < 1:
                raise ValueError(f"{name} must be in [0, 1), got {b}")
        self.beta_1, self.beta_2 = float(beta_1), float(beta_2)
        self.epsilon, self.weight_decay = _epsilon(epsilon), float(weight_decay)

    def _update(self, param, grad, state, lr):
        self._ops.adam_update(param, grad, state["m"], state["v"], lr, self.beta_1,
                                  self.beta_2, self.epsilon, self.iterations,
                                  self.weight_decay, self._decoupled)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter).

    Parameters
    ----------
    learning_rate : float or LearningRateSchedule, default 0.001
        The step size.
    weight_decay : float, default 0.004
        Decoupled decay: each step subtracts ``learning_rate * weight_decay * w``.
    **kw
        Adam's other arguments (``beta_1``, ``beta_2``, ``epsilon``) and the base
        optimizer's (see ``Optimizer``).
    """
    _decoupled = True

    def __init__(self, learning_rate: Any = 0.001, weight_decay: float = 0.004,
                 **kw: Any) -> None:
        super().__init__(learning_rate, weight_decay=weight_decay, **kw)


class Adadelta(Optimizer):
    """Adadelta (Zeiler 2012). ``learning_rate`` defaults to 1.0, as in Keras 2
    and the paper (which has none): the course's ``optimizer='adadelta'``
    trains at Keras 2's pace, not Keras 3's 1000 times slower default.

    Parameters
    ----------
    learning_rate : float or LearningRateSchedule, default 1.0
        The step size.
    rho : float, default 0.95
        The decay of the moving averages.
    epsilon : float, optional
        Added inside the square roots; None means 1e-7.
    weight_decay : float, default 0.0
        L2 added to the gradient.
    **kw
        The base optimizer's arguments: ``clipvalue``, ``clipnorm``,
        ``global_clipnorm``, ``decay``, and Keras 2's ``lr`` (see ``Optimizer``).
    """
    _config_keys = Optimizer._config_keys + ("rho", "epsilon", "weight_decay")
    _slots = ("acc_grad", "acc_delta")

    def __init__(self, learning_rate: Any = 1.0, rho: float = 0.95,
                 epsilon: Optional[float] = None, weight_decay: float = 0.0, **kw: Any) -> None:
        super().__init__(learning_rate, **kw)
        if not 0 <= rho < 1:
            raise ValueError(f"rho must be in [0, 1), got {rho}")
        self.rho, self.epsilon, self.weight_decay = float(rho), _epsilon(epsilon), float(weight_decay)

    def _update(self, param, grad, state, lr):
        self._ops.adadelta_update(param, grad, state["acc_grad"], state["acc_delta"], lr,
                                      self.rho, self.epsilon, self.weight_decay)


class Adamax(Adam):
    """Adamax (Kingma & Ba, section 7): Adam with the infinity norm.

    Parameters
    ----------
    learning_rate : float or LearningRateSchedule, default 0.002
        The step size.
    **kw
        Adam's other arguments (``beta_1``, ``beta_2``, ``epsilon``,
        ``weight_decay``) and the base optimizer's (see ``Optimizer``).
    """
    _config_keys = Optimizer._config_keys + ("beta_1", "beta_2", "epsilon", "weight_decay")
    _slots = ("m", "u")

    def __init__(self, learning_rate: Any = 0.002, **kw: Any) -> None:
        super().__init__(learning_rate, **kw)

    def _update(self, param, grad, state, lr):
        self._ops.adamax_update(param, grad, state["m"], state["u"], lr, self.beta_1,
                                    self.beta_2, self.epsilon, self.iterations, self.weight_decay)


class Nadam(Adam):
    """Nadam (Dozat 2016): Adam with Nesterov momentum, with Keras's momentum
    schedule ``mu_t = beta_1 * (1 - 0.5 * 0.96 ** (0.004 * t))``.

    Parameters
    ----------
    learning_rate, beta_1, beta_2, epsilon, weight_decay, amsgrad, **kw
        As for ``Adam``.
    """
    _config_keys = Optimizer._config_keys + ("beta_1", "beta_2", "epsilon", "weight_decay")

    def _mu(self, step):
        return self.beta_1 * (1.0 - 0.5 * 0.96 ** (0.004 * step))

    def _update(self, param, grad, state, lr):
        t = self.iterations
        # The product of mu over steps 1..t: one factor per step, recomputed
        # from the step count alone after set_state (which restores iterations),
        # so a restored optimizer continues exactly.
        at = getattr(self, "_mu_product_at", None)
        if at == t - 1:
            self._mu_product *= self._mu(t)
        elif at != t:
            self._mu_product = math.prod(self._mu(i) for i in range(1, t + 1))
        self._mu_product_at = t
        self._ops.nadam_update(param, grad, state["m"], state["v"], lr, self.beta_1,
                                   self.beta_2, self.epsilon, t, self._mu(t), self._mu(t + 1),
                                   self._mu_product, self.weight_decay)


_TABLE = {"sgd": SGD, "rmsprop": RMSprop, "adagrad": Adagrad, "adadelta": Adadelta,
          "adam": Adam, "adamw": AdamW, "adamax": Adamax, "nadam": Nadam}


def get(identifier: Any) -> Optimizer:
    """An optimizer from a name ("adam"), an instance, or a config dict.

    Parameters
    ----------
    identifier : str, Optimizer or dict
        A name (``"sgd"``, ``"rmsprop"``, ``"adagrad"``, ``"adadelta"``,
        ``"adam"``, ``"adamw"``, ``"adamax"``, ``"nadam"``), an instance
        (returned as is), or ``{"class_name", "config"}``.

    Returns
    -------
    Optimizer

    Raises
    ------
    ValueError
        If the name is unknown (the message lists the valid ones).
    """
    opt = lookup(_TABLE, identifier, "optimizer")
    if not isinstance(opt, Optimizer):
        raise TypeError(f"optimizer must be a name or a fastnn.optimizers.Optimizer, got {opt!r}")
    return opt


schedules = types.SimpleNamespace(**{c.__name__: c for c in _SCHEDULES.values()})
