"""Layers that wrap a layer: the ``Wrapper`` base (what ``TimeDistributed``
and ``Bidirectional`` share: the wrapped layer is tracked, so its
weights, gradients and regularizers are the wrapper's; its config nests in
the wrapper's), ``TimeDistributed`` and ``Bidirectional``. The wrapped layer's
own computation stays in the wrapped layer; a wrapper only reshapes or routes."""
from .._types import Any, Optional
from .base import Layer


def serialize_layer(layer):
    """``{"class_name", "config"}`` of a layer, for a composite's config."""
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def deserialize_layer(spec):
    """A layer from ``serialize_layer``'s dict (the class must be registered:
    fastnn's own are; custom ones with ``fastnn.layers.register_layer``)."""
    from . import layer_class
    if isinstance(spec, Layer):
        return spec
    if not isinstance(spec, dict) or "class_name" not in spec:
        raise ValueError(f"expected a layer or a {{'class_name', 'config'}} dict, got {spec!r}")
    return layer_class(spec["class_name"]).from_config(dict(spec.get("config", {})))


class Wrapper(Layer):
    """Base of layers that wrap one layer (``self.layer``). The wrapper
    computes in the wrapped layer's dtype unless told otherwise; then an
    unbuilt wrapped layer takes the wrapper's dtype.

    Parameters
    ----------
    layer : Layer
        The layer to wrap.
    **kwargs
        Base layer arguments (``name``, ``dtype``, ``trainable``,
        ``input_shape``, ...; see ``Layer``).
    """

    def __init__(self, layer: Layer, **kwargs: Any) -> None:
        if not isinstance(layer, Layer):
            raise TypeError(f"{type(self).__name__} wraps a fastnn layer, got "
                            f"{type(layer).__name__}")
        kwargs.setdefault("dtype", layer.dtype)
        super().__init__(**kwargs)
        if layer.dtype != self.dtype:
            if layer.built:
                raise ValueError(f"{type(self).__name__} {self.name!r} computes in {self.dtype} "
                                 f"but the wrapped layer {layer.name!r} is built in {layer.dtype}")
            layer.dtype = self.dtype
        self.layer = layer
        if not self.trainable:
            self.trainable = False  # set before the layer was held: freeze it too, as Keras

    def get_config(self):
        return {**super().get_config(), "layer": serialize_layer(self.layer)}

    @classmethod
    def from_config(cls, config):
        """A new wrapper (fresh weights) from ``get_config()``'s dict.

        Parameters
        ----------
        config : dict
            What ``get_config`` returned (the wrapped layer's config nested in it).
        """
        config = dict(config)
        config["layer"] = deserialize_layer(config["layer"])
        return cls(**config)


class TimeDistributed(Wrapper):
    """Applies the wrapped layer to every time step of a (batch, steps, ...)
    input with the same weights: ``TimeDistributed(Dense(8))``. The steps are
    folded into the batch, so the wrapped layer runs once on (batch * steps,
    ...), not once per step. A mask on the input passes through unchanged.

    Parameters
    ----------
    layer : Layer
        The layer applied to each step.
    **kwargs
        Base layer arguments (``name``, ``dtype``, ``trainable``,
        ``input_shape``, ...; see ``Layer``).

    Examples
    --------
    >>> y = TimeDistributed(Dense(8))(x)  # x: (batch, steps, features) -> (batch, steps, 8)
    """
    supports_masking = True

    def __init__(self, layer: Layer, **kwargs: Any) -> None:
        super().__init__(layer, **kwargs)
        self.skips_input_grad = layer.skips_input_grad

    def _check_rank(self, input_shape):
        if len(input_shape) < 2:
            raise ValueError(f"TimeDistributed layer {self.name!r} needs inputs of shape "
                             f"(batch, steps, ...) with at least one feature axis, got "
                             f"(None, {', '.join(map(str, input_shape))})")

    def build(self, input_shape):
        self._check_rank(input_shape)
        self.build_sublayer(self.layer, tuple(input_shape[1:]))
        self.built = True

    def check_input_shape(self, input_shape):
        self._check_rank(input_shape)
        self.layer.check_input_shape(tuple(input_shape[1:]))

    def compute_output_shape(self, input_shape):
        inner = self.layer.compute_output_shape(tuple(input_shape[1:]))
        return (input_shape[0],) + tuple(inner)

    def forward(self, x, training=False, mask=None):
        """Apply the wrapped layer to every step; see ``Layer.forward``.

        Parameters
        ----------
        x : array
            ``(batch, steps, ...)``.
        training : bool, default False
            Passed to the wrapped layer.
        mask : array, optional
            Passes through unchanged (``compute_mask``).
        """
        if x.ndim < 3:
            raise ValueError(f"TimeDistributed layer {self.name!r} needs inputs of shape "
                             f"(batch, steps, ...), got {tuple(x.shape)}")
        n, steps = x.shape[:2]
        y, inner_backprop = self.layer.forward(x.reshape((n * steps,) + x.shape[2:]), training)
        y_shape = (n, steps) + y.shape[1:]

        def backprop(dy, need_dx=True):
            dy = dy.reshape((n * steps,) + dy.shape[2:])
            dx = inner_backprop(dy, need_dx=False) if not need_dx else inner_backprop(dy)
            return None if dx is None else dx.reshape(x.shape)

        return y.reshape(y_shape), backprop


MERGE_MODES = ("concat", "sum", "mul", "ave", None)


def _recurrent_flags(layer):
    return (bool(getattr(layer, "return_sequences", False)),
            bool(getattr(layer, "return_state", False)))


class Bidirectional(Wrapper):
    """Runs a recurrent layer over the sequence both ways, as Keras's
    ``Bidirectional(LSTM(64))``: a forward copy of the layer (named
    ``forward_<name>``) and a backward one (``backward_<name>``, built from
    the same config with ``go_backwards`` flipped, or ``backward_layer=``).
    The backward copy's sequence output is reversed back in time, so step t
    of both outputs belongs to input step t. ``merge_mode`` combines the two
    outputs: "concat" (default), "sum", "mul", "ave", or None (both returned,
    forward first). With ``return_state`` the states follow the output(s):
    the forward layer's, then the backward layer's; an ``initial_state`` list
    is split the same way (first half forward). A mask goes to both layers.
    A ``stateful`` layer makes both copies stateful (Keras's rule: a given
    ``backward_layer`` must be stateful exactly when the layer is): each keeps
    its final states for the next batch (the backward copy's are those after
    reading the batch backwards, as in Keras); ``reset_states()`` resets both
    and ``states`` lists the forward copy's, then the backward copy's.

    The template layer passed in is only a description: the two copies hold
    the weights (forward first, then backward), as in Keras.

    Parameters
    ----------
    layer : Layer
        A recurrent layer (``SimpleRNN``, ``LSTM``, ``GRU``): the template of both copies.
    merge_mode : {"concat", "sum", "mul", "ave", None}, default "concat"
        How the two outputs combine.
    backward_layer : Layer, optional
        The backward copy's template (default: ``layer`` with ``go_backwards`` flipped).
    **kwargs
        Base layer arguments (``name``, ``dtype``, ``trainable``,
        ``input_shape``, ...; see ``Layer``).

    Examples
    --------
    >>> y = Bidirectional(LSTM(64, return_sequences=True))(x)  # (batch, steps, 128)
    """
    supports_masking = True

    def __init__(self, layer: Layer, merge_mode: Optional[str] = "concat",
                 backward_layer: Optional[Layer] = None, **kwargs: Any) -> None:
        if merge_mode not in MERGE_MODES:
            raise ValueError(f"Bidirectional: merge_mode must be one of {MERGE_MODES}, "
                             f"got {merge_mode!r}")
        super().__init__(layer, **kwargs)
        if not hasattr(layer, "go_backwards"):
            raise ValueError(f"Bidirectional layer {self.name!r} wraps a recurrent layer (one "
                             f"with go_backwards), got {type(layer).__name__} {layer.name!r}")
        self.merge_mode = merge_mode
        config = layer.get_config()
        # Any: the wrapped recurrent layer's own API (reset_states, states), not Layer's.
        self.forward_layer: Any = type(layer).from_config(
            {**config, "name": "forward_" + layer.name, "dtype": self.dtype.name})
        self._given_backward = backward_layer is not None
        if backward_layer is None:
            backward_layer = type(layer).from_config(
                {**config, "name": "backward_" + layer.name, "dtype": self.dtype.name,
                 "go_backwards": not config.get("go_backwards", False)})
        elif not isinstance(backward_layer, Layer):
            raise TypeError(f"Bidirectional layer {self.name!r}: backward_layer must be a "
                            f"fastnn layer, got {type(backward_layer).__name__}")
        else:
            if backward_layer.dtype != self.dtype:
                raise ValueError(f"Bidirectional layer {self.name!r} computes in {self.dtype} "
                                 f"but backward_layer {backward_layer.name!r} is "
                                 f"{backward_layer.dtype}")
            if bool(getattr(backward_layer, "go_backwards", False)) == \
                    bool(getattr(self.forward_layer, "go_backwards", False)):
                raise ValueError(f"Bidirectional layer {self.name!r}: backward_layer "
                                 f"{backward_layer.name!r} must read in the other direction "
                                 f"(go_backwards={not getattr(self.forward_layer, 'go_backwards', False)}), "
                                 f"got go_backwards={getattr(backward_layer, 'go_backwards', False)}")
            if bool(getattr(backward_layer, "stateful", False)) != \
                    bool(getattr(self.forward_layer, "stateful", False)):
                raise ValueError(
                    f"Bidirectional layer {self.name!r}: backward_layer {backward_layer.name!r} "
                    f"must have the same stateful as the forward layer "
                    f"({bool(getattr(self.forward_layer, 'stateful', False))}), got "
                    f"{bool(getattr(backward_layer, 'stateful', False))}")
            if _recurrent_flags(backward_layer) != _recurrent_flags(self.forward_layer):
                raise ValueError(
                    f"Bidirectional layer {self.name!r}: backward_layer {backward_layer.name!r} "
                    "must have the same return_sequences and return_state as the forward layer "
                    f"{_recurrent_flags(self.forward_layer)}, got "
                    f"{_recurrent_flags(backward_layer)}")
        self.backward_layer: Any = backward_layer
        self.return_sequences, self.return_state = _recurrent_flags(self.forward_layer)
        self.stateful = bool(getattr(self.forward_layer, "stateful", False))
        self.skips_input_grad = (self.forward_layer.skips_input_grad
                                 and self.backward_layer.skips_input_grad)

    def reset_states(self, states=None):
        """Forget both copies' states (zeros from the next call), or set them.

        Parameters
        ----------
        states : list of array, optional
            The forward copy's states, then the backward copy's (as for
            ``initial_state``); default: zeros.

        Raises
        ------
        ValueError
            If the wrapped layer is not stateful.
        """
        if not self.stateful:
            raise ValueError(f"Bidirectional layer {self.name!r} is not stateful; "
                             f"reset_states() is for a wrapped layer with stateful=True")
        if states is None:
            self.forward_layer.reset_states()
            self.backward_layer.reset_states()
            return
        states = list(states) if isinstance(states, (list, tuple)) else [states]
        if len(states) % 2:
            raise ValueError(f"Bidirectional layer {self.name!r}: reset_states takes the "
                             "forward layer's states then the backward layer's, an even "
                             f"count; got {len(states)}")
        half = len(states) // 2
        self.forward_layer.reset_states(states[:half])
        self.backward_layer.reset_states(states[half:])

    @property
    def states(self):
        """Both copies' current states, forward first (None before a stateful
        layer's first call, or when not stateful)."""
        if not self.stateful:
            return None
        f, b = self.forward_layer.states, self.backward_layer.states
        return None if f is None or b is None else f + b

    def _sublayers(self):
        # The template (self.layer) holds no weights: only the two copies count.
        return [self.forward_layer, self.backward_layer]

    # ----------------------------------------------------------------- shapes
    def _check_rank(self, input_shape):
        if len(input_shape) != 2:
            raise ValueError(f"Bidirectional layer {self.name!r} needs inputs of shape "
                             f"(batch, steps, features), got "
                             f"(None, {', '.join(map(str, input_shape))})")

    def build(self, input_shape):
        self._check_rank(input_shape)
        self.build_sublayer(self.forward_layer, tuple(input_shape))
        self.build_sublayer(self.backward_layer, tuple(input_shape))
        out = self.compute_output_shape(tuple(input_shape))
        self._n_states = len(out) - (2 if self.merge_mode is None else 1) \
            if isinstance(out, list) else 0
        self.built = True

    def check_input_shape(self, input_shape):
        self._check_rank(input_shape)
        self.forward_layer.check_input_shape(tuple(input_shape))
        self.backward_layer.check_input_shape(tuple(input_shape))

    def _split_shapes(self, layer, input_shape):
        shape = layer.compute_output_shape(tuple(input_shape))
        if self.return_state:
            shape = list(shape)
            return tuple(shape[0]), [tuple(s) for s in shape[1:]]
        return tuple(shape), []

    def compute_output_shape(self, input_shape):
        out_f, states_f = self._split_shapes(self.forward_layer, input_shape)
        out_b, states_b = self._split_shapes(self.backward_layer, input_shape)
        if self.merge_mode == "concat":
            outs = [out_f[:-1] + (out_f[-1] + out_b[-1],)]
        elif self.merge_mode is None:
            outs = [out_f, out_b]
        else:
            outs = [out_f]
        outs += states_f + states_b
        return outs if len(outs) > 1 else outs[0]

    def compute_mask(self, inputs, mask=None):
        out_mask = mask if self.return_sequences else None
        n_out = 2 if self.merge_mode is None else 1
        if not self.return_state and n_out == 1:
            return out_mask
        return [out_mask] * n_out + [None] * self._n_states

    _n_states = 0   # state outputs of both directions together, set by build

    # ---------------------------------------------------------------- calling
    def forward(self, x, training=False, mask=None, initial_state=None):
        """Run both copies and merge their outputs; see ``Layer.forward``.

        Parameters
        ----------
        x : array
            ``(batch, steps, features)``.
        training : bool, default False
            Passed to both layers.
        mask : array, optional
            ``(batch, steps)`` booleans, passed to both layers.
        initial_state : list of array, optional
            The forward layer's states, then the backward layer's.
        """
        if x.ndim != 3:
            raise ValueError(f"Bidirectional layer {self.name!r} needs inputs of shape "
                             f"(batch, steps, features), got {tuple(x.shape)}")
        kw_f, kw_b = {}, {}
        if mask is not None:
            kw_f["mask"] = kw_b["mask"] = mask
        if initial_state is not None:
            states = list(initial_state) if isinstance(initial_state, (list, tuple)) \
                else [initial_state]
            if len(states) % 2:
                raise ValueError(f"Bidirectional layer {self.name!r}: initial_state holds the "
                                 "forward layer's states then the backward layer's, an even "
                                 f"count; got {len(states)}")
            half = len(states) // 2
            kw_f["initial_state"], kw_b["initial_state"] = states[:half], states[half:]
        yf, back_f = self.forward_layer.forward(x, training, **kw_f)
        yb, back_b = self.backward_layer.forward(x, training, **kw_b)
        if self.return_state:
            out_f, states_f = yf[0], list(yf[1:])
            out_b, states_b = yb[0], list(yb[1:])
        else:
            out_f, states_f, out_b, states_b = yf, [], yb, []
        if self.return_sequences:
            out_b = out_b[:, ::-1]   # step t of both outputs is input step t
        mode = self.merge_mode
        xp = self.ops.xp
        if mode == "concat":
            outs = [xp.concatenate([out_f, out_b], axis=-1)]
        elif mode == "sum":
            outs = [out_f + out_b]
        elif mode == "ave":
            outs = [(out_f + out_b) * 0.5]
        elif mode == "mul":
            outs = [out_f * out_b]
        else:
            outs = [out_f, out_b]
        n_out, n_f = len(outs), len(states_f)
        outs += states_f + states_b
        k = out_f.shape[-1]

        def backprop(dys, need_dx=True):
            dys = list(dys) if len(outs) > 1 else [dys]
            if mode is None:
                d_f, d_b = dys[0], dys[1]
            elif dys[0] is None:
                d_f = d_b = None
            elif mode == "concat":
                d_f, d_b = dys[0][..., :k], dys[0][..., k:]
            elif mode == "sum":
                d_f = d_b = dys[0]
            elif mode == "ave":
                d_f = d_b = dys[0] * 0.5
            else:
                d_f, d_b = dys[0] * out_b, dys[0] * out_f
            if d_b is not None and self.return_sequences:
                d_b = d_b[:, ::-1]
            ds_f = dys[n_out:n_out + n_f]
            ds_b = dys[n_out + n_f:]
            dx, d_init = None, []
            for layer, back, d_out, d_states, kw in (
                    (self.forward_layer, back_f, d_f, ds_f, kw_f),
                    (self.backward_layer, back_b, d_b, ds_b, kw_b)):
                n_init = len(kw.get("initial_state", ()))
                if d_out is None and all(d is None for d in d_states):
                    d_init += [None] * n_init   # this direction does not reach the loss
                    continue
                g = [d_out] + list(d_states) if self.return_state else d_out
                if not need_dx and layer.skips_input_grad and not n_init:
                    back(g, need_dx=False)
                    continue
                r = back(g)
                if n_init:
                    r, dkw = r
                    d_init += list(dkw.get("initial_state", [None] * n_init))
                if r is not None:
                    dx = r if dx is None else dx + r
            if dx is None and need_dx:
                dx = self.ops.zeros(x.shape, dtype=x.dtype)
            if initial_state is not None:
                return dx, {"initial_state": d_init}
            return dx

        return (tuple(outs) if len(outs) > 1 else outs[0]), backprop

    def get_config(self):
        config = {**super().get_config(), "merge_mode": self.merge_mode}
        if self._given_backward:
            config["backward_layer"] = serialize_layer(self.backward_layer)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if config.get("backward_layer") is not None:
            config["backward_layer"] = deserialize_layer(config["backward_layer"])
        return super().from_config(config)
