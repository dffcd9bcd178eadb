"""Numerical gradient checking, public: ``fastnn.gradcheck(obj, *inputs)``.

Checks a layer, a loss or a compiled model in float64 by central differences
along random directions (as Chainer's ``check_backward`` does): one direction
costs two extra forward passes, however many parameters there are. Each piece
(every input and every parameter) is checked on its own, so a failure names the
piece whose gradient is wrong. Random layers (Dropout, noise) see the same
random draws in every forward pass.
"""
import numpy

from .backend import get_backend
from ._types import Any, ArrayIn, Dict, Optional
from .layers.base import Layer
from .losses import Loss
from .random import get_rng


class GradcheckError(AssertionError):
    """An analytic gradient disagrees with the numerical one."""


class GradcheckResult:
    def __init__(self, checks):
        self.checks = checks  # list of (piece, numeric, analytic, ok)

    @property
    def ok(self):
        return all(ok for *_, ok in self.checks)

    @property
    def max_error(self):
        return max((abs(n - a) / max(abs(n), abs(a), 1e-12) for _, n, a, _ in self.checks), default=0.0)

    def __bool__(self):
        return self.ok

    def __repr__(self):
        return f"<GradcheckResult ok={self.ok} pieces={len(self.checks)} max_rel_error={self.max_error:.2e}>"


def _require_float64(arrays, what):
    for name, a in arrays:
        if a.dtype != numpy.float64:
            raise TypeError(f"gradcheck runs in float64, but {what} {name!r} is {a.dtype}; "
                            "build layers with dtype='float64' and pass float64 inputs")


def _directional_check(f, analytic, pieces, eps, rtol, atol, n_directions, seed):
    """``f()`` evaluates the scalar; ``analytic[name]`` is its gradient for the
    array ``pieces[name]``, which ``f`` reads (and which we perturb in place)."""
    rng = numpy.random.default_rng(seed)
    ops = get_backend()
    checks = []
    for name, arr in pieces.items():
        grad = ops.to_numpy(analytic[name])
        for _ in range(n_directions):
            v = rng.standard_normal(arr.shape)
            v /= max(numpy.linalg.norm(v), 1e-300)
            vd = ops.asarray(v, dtype=arr.dtype)
            saved = arr.copy()
            arr += eps * vd
            f_plus = f()
            arr[...] = saved
            arr -= eps * vd
            f_minus = f()
            arr[...] = saved
            numeric = (f_plus - f_minus) / (2 * eps)
            exact = float((grad * v).sum())
            ok = abs(numeric - exact) <= atol + rtol * max(abs(numeric), abs(exact))
            checks.append((name, numeric, exact, ok))
    return GradcheckResult(checks)


def _finish(result, raise_on_failure, what):
    if raise_on_failure and not result.ok:
        bad = [f"  {piece}: numerical {n:.8g} vs analytic {a:.8g}"
               for piece, n, a, ok in result.checks if not ok]
        raise GradcheckError(f"gradient check failed for {what}:\n" + "\n".join(bad))
    return result


def gradcheck(obj: Any, *inputs: ArrayIn, training: bool = True, eps: float = 1e-6,
              rtol: float = 1e-5, atol: float = 1e-8, n_directions: int = 2, seed: int = 0,
              raise_on_failure: bool = True, sample_weight: Optional[ArrayIn] = None,
              call_kwargs: Optional[Dict[str, Any]] = None,
              mask: Optional[ArrayIn] = None) -> "GradcheckResult":
    """Check the gradients of ``obj`` numerically, in float64.

    * ``gradcheck(layer, x)`` (or ``(layer, [x1, x2])`` for merge layers):
      the scalar ``sum(dy * layer(x))`` for a fixed random ``dy``, against the
      input gradient returned by backprop and every trainable parameter's
      (those of the layers a composite layer holds included). A layer with
      several outputs is checked on ``sum_k dy_k * y_k``. ``call_kwargs``
      go to ``forward`` (``mask=``, ``initial_state=``); arrays among them
      other than the mask are checked like inputs.
    * ``gradcheck(loss, y_true, y_pred)``: the loss against ``d loss/d y_pred``;
      a loss with ``fused_activation`` is also checked through its fused path,
      (under ``mask=`` when given: a sequence output's padded steps)
      at the logits whose activation gives ``y_pred``.
    * ``gradcheck(model, x, y)``: a compiled model's training loss (with
      regularization) against the gradients of all its trainable weights.

    Parameters
    ----------
    obj : Layer, Loss or Model
        What to check.
    *inputs : array_like
        The layer's input(s); ``y_true, y_pred`` for a loss; ``x, y`` for a model.
    training : bool, default True
        The layer's mode (a layer that draws random numbers, such as Dropout,
        is reseeded for each evaluation).
    eps : float, default 1e-6
        The central finite-difference step.
    rtol, atol : float
        Relative and absolute tolerances of the comparison.
    n_directions : int, default 2
        Random directions checked per array (one finite difference each).
    seed : int, default 0
        Seeds the directions and the output gradient.
    raise_on_failure : bool, default True
        Raise ``GradcheckError`` on a mismatch, rather than only report it.
    sample_weight : array_like, optional
        A loss's per-sample weights.
    call_kwargs : dict, optional
        Keyword arguments of the layer's ``forward``.
    mask : array_like, optional
        A loss's mask of padded steps.

    Returns
    -------
    GradcheckResult
        The largest errors found, per array checked.

    Raises
    ------
    GradcheckError
        On a mismatch, unless ``raise_on_failure=False``.
    TypeError
        If ``obj`` is not a Layer, a Loss or a compiled Model.

    Examples
    --------
    >>> from fastnn import gradcheck
    >>> from fastnn.layers import Dense
    >>> gradcheck(Dense(3, activation="tanh", dtype="float64"), numpy.random.rand(4, 5))
    """
    if isinstance(obj, Layer):
        return _check_layer(obj, inputs, training, eps, rtol, atol, n_directions, seed,
                            raise_on_failure, call_kwargs)
    if isinstance(obj, Loss):
        return _check_loss(obj, inputs, eps, rtol, atol, n_directions, seed, raise_on_failure,
                           sample_weight, mask)
    if hasattr(obj, "_train_step"):
        return _check_model(obj, inputs, eps, rtol, atol, n_directions, seed, raise_on_failure)
    raise TypeError(f"gradcheck takes a Layer, a Loss or a compiled Model, got {type(obj).__name__}")


def _check_layer(layer, inputs, training, eps, rtol, atol, n_directions, seed, raise_on_failure,
                 call_kwargs=None):
    ops = get_backend()
    if len(inputs) != 1:
        raise TypeError("gradcheck(layer, x): pass one input (a list of arrays for merge layers)")
    x = inputs[0]
    xs = [ops.asarray(a).copy() for a in x] if layer.multi_input else [ops.asarray(x).copy()]
    if not layer.built:
        layer._ensure_built([a.shape[1:] for a in xs] if layer.multi_input else xs[0].shape[1:])
    # Call arguments: arrays among them (other than the mask) are checked like inputs.
    kwargs, checked = {}, {}
    for key, value in (call_kwargs or {}).items():
        if key != "mask" and isinstance(value, (list, tuple)):
            kwargs[key] = [ops.asarray(v).copy() for v in value]
            checked[key] = True
        elif key != "mask" and hasattr(value, "shape"):
            kwargs[key] = ops.asarray(value).copy()
            checked[key] = False
        else:
            kwargs[key] = value
    float_inputs = [a for a in xs if a.dtype.kind == "f"]
    _require_float64([(f"input {i}", a) for i, a in enumerate(float_inputs)], "the layer input")
    weights = [(f"{l.name}/{n}" if l is not layer else n, l, n) for l, n in layer._weight_items()]
    _require_float64([(key, l.params[n]) for key, l, n in weights], f"layer {layer.name!r} weight")
    rng_state = get_rng().bit_generator.state

    def run():
        get_rng().bit_generator.state = rng_state  # same dropout/noise draws every pass
        return layer.forward(xs if layer.multi_input else xs[0], training, **kwargs)

    y, backprop = run()
    several = isinstance(y, tuple)
    ys = list(y) if several else [y]
    out_rng = numpy.random.default_rng(seed + 1)
    dys = [ops.asarray(out_rng.standard_normal(yk.shape)) for yk in ys]

    def f():
        y = run()[0]
        return float(sum((yk * d).sum() for yk, d in zip(y if several else [y], dys)))

    layer.zero_grads()
    y, backprop = run()
    dx = backprop(dys if several else dys[0])
    dkw = {}
    if checked:
        dx, dkw = dx
    pieces, analytic = {}, {}
    if any(a.dtype.kind == "f" for a in xs):
        dxs = dx if layer.multi_input else [dx]
        for i, (a, d) in enumerate(zip(xs, dxs)):
            pieces[f"input {i}"], analytic[f"input {i}"] = a, d
    for key, many in checked.items():
        values = kwargs[key] if many else [kwargs[key]]
        grads = dkw[key] if many else [dkw[key]]
        for j, (a, d) in enumerate(zip(values, grads)):
            name = f"{key} {j}" if many else key
            pieces[name], analytic[name] = a, d
    for key, l, n in weights:
        if n in l.trainable_names:
            pieces[key], analytic[key] = l.params[n], l.grads[n].copy()
    result = _directional_check(f, analytic, pieces, eps, rtol, atol, n_directions, seed)
    return _finish(result, raise_on_failure, f"layer {layer.name!r}")


def _check_loss(loss, inputs, eps, rtol, atol, n_directions, seed, raise_on_failure, sample_weight,
                mask=None):
    ops = get_backend()
    if len(inputs) != 2:
        raise TypeError("gradcheck(loss, y_true, y_pred): pass the targets and the predictions")
    y_true, y_pred = ops.asarray(inputs[0]), ops.asarray(inputs[1]).copy()
    _require_float64([("y_pred", y_pred)], "the prediction")
    kw = {} if mask is None else {"mask": ops.asarray(mask)}
    _, grad = loss.forward_backward(y_true, y_pred, sample_weight, **kw)
    result = _directional_check(lambda: loss(y_true, y_pred, sample_weight, **kw), {"y_pred": grad},
                                {"y_pred": y_pred}, eps, rtol, atol, n_directions, seed)
    checks = list(result.checks)
    if loss.fused_activation is not None:
        # Logits that map to the same probabilities through the fused activation.
        xp = ops.xp
        logits = xp.log(y_pred) if loss.fused_activation == "softmax" else \
            xp.log(y_pred) - xp.log1p(-y_pred)
        _, grad, _ = loss.forward_backward_logits(y_true, logits, sample_weight, **kw)

        def f():
            probs = ops.activation_forward(loss.fused_activation, logits)
            return loss(y_true, probs, sample_weight, **kw)

        fused = _directional_check(f, {"logits (fused)": grad}, {"logits (fused)": logits},
                                   eps, rtol, atol, n_directions, seed)
        checks += fused.checks
    return _finish(GradcheckResult(checks), raise_on_failure, f"loss {loss.name!r}")


def _check_model(model, inputs, eps, rtol, atol, n_directions, seed, raise_on_failure):
    if len(inputs) != 2:
        raise TypeError("gradcheck(model, x, y): pass inputs and targets")
    model._require_compiled("gradcheck")
    xs = model._prepare_x(inputs[0])
    ys = model._prepare_y(inputs[1], xs[0].shape[0])
    _require_float64([(f"{l.name}/{n}", l.params[n]) for l, n in model._trainable], "model weight")
    rng_state = get_rng().bit_generator.state

    def f():
        get_rng().bit_generator.state = rng_state
        outs, _, penalty = model._forward(xs, True)
        return model._loss_values(ys, outs, None)[0] + penalty + model._regularization_loss()

    # One training step's gradients, without the update: a throwaway optimizer would
    # change the weights, so run forward/backward by hand.
    get_rng().bit_generator.state = rng_state
    for layer in model._layers:
        layer.zero_grads()
    fused = model._fusable()
    outs, tape, _ = model._forward(xs, True, fused)
    _, _, dys, _ = model._losses_and_grads(ys, outs, None, fused)
    model._backward(tape, dys)
    pieces, analytic = {}, {}
    for layer, name, reg in model._regularized:
        layer.grads[name] += reg.gradient(layer.params[name])
    for layer, name in model._trainable:
        key = f"{layer.name}/{name}"
        pieces[key], analytic[key] = layer.params[name], layer.grads[name].copy()
    result = _directional_check(f, analytic, pieces, eps, rtol, atol, n_directions, seed)
    return _finish(result, raise_on_failure, f"model {model.name!r}")
