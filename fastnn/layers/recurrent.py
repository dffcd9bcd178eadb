"""Recurrent layers: SimpleRNN, LSTM and GRU (Keras's arguments, defaults,
semantics and weight layout), over the backend's whole-sequence cell
(``ops.rnn_forward`` / ``ops.rnn_backward``).

Each call computes every step's input projection as one product
(``ops.dense_forward`` on the (steps * batch, features) input), hands the
sequence to the backend's cell, which runs the recurrence (one product per
step plus one fused pass for the gates and the state update), and goes back
through time in ``backprop``. No step loop lives here. Bidirectional and the
examples live elsewhere.
"""
from .. import activations
from .._registry import serialize
from .._types import (ActivationSpec, Any, ArrayIn, InitializerSpec, List, Optional,
                      RegularizerSpec, Sequence, Union)
from ..backend.ops import ACTIVATIONS, EXTRA_ACTIVATIONS, INPUT_GRAD_ACTIVATIONS
from .base import Layer

# Activations the cells take: differentiable from their outputs, element-wise
# and without a parameter (leaky_relu's and elu's slope is not carried).
_CELL_ACTIVATIONS = tuple(a for a in ACTIVATIONS + EXTRA_ACTIVATIONS
                          if a not in INPUT_GRAD_ACTIVATIONS + ("softmax", "leaky_relu", "elu"))


def _ser(obj):
    return obj if obj is None or isinstance(obj, str) else serialize(obj)


class _Recurrent(Layer):
    """What SimpleRNN, LSTM and GRU share: arguments, checks, masks, states,
    dropout and the call. A subclass sets ``cell`` (the backend's cell name),
    ``n_gates`` and ``n_states`` and builds its weights."""
    cell: "str | None" = None
    n_gates = 1
    n_states = 1
    supports_masking = True
    skips_input_grad = True  # a first layer's backprop skips the input gradient
    _state_names: "tuple[str, ...]" = ("h",)

    def __init__(self, units: int, activation: ActivationSpec = "tanh", use_bias: bool = True,
                 kernel_initializer: InitializerSpec = "glorot_uniform",
                 recurrent_initializer: InitializerSpec = "orthogonal",
                 bias_initializer: InitializerSpec = "zeros",
                 kernel_regularizer: RegularizerSpec = None,
                 recurrent_regularizer: RegularizerSpec = None,
                 bias_regularizer: RegularizerSpec = None, dropout: float = 0.0,
                 recurrent_dropout: float = 0.0, return_sequences: bool = False,
                 return_state: bool = False, go_backwards: bool = False, stateful: bool = False,
                 unroll: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        kind = type(self).__name__
        if not isinstance(units, int) or isinstance(units, bool) or units < 1:
            raise ValueError(f"{kind} units must be a positive integer, got {units!r}")
        self.units = units
        self.activation = self._activation(activation, "activation")
        self.use_bias = bool(use_bias)
        self.kernel_initializer = kernel_initializer
        self.recurrent_initializer = recurrent_initializer
        self.bias_initializer = bias_initializer
        self.kernel_regularizer = kernel_regularizer
        self.recurrent_regularizer = recurrent_regularizer
        self.bias_regularizer = bias_regularizer
        for what, rate in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if not 0 <= rate < 1:
                raise ValueError(f"{kind} {what} must be in [0, 1), got {rate!r}")
        self.dropout, self.recurrent_dropout = float(dropout), float(recurrent_dropout)
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = bool(stateful)
        # Keras's unroll trades memory for speed in a symbolic graph; the
        # backend's cell runs the steps in compiled code either way, so the
        # flag is kept (config round trip) and changes nothing.
        self.unroll = bool(unroll)
        self._states: Optional[List[Any]] = None  # a stateful layer's states between calls
        self._stateful_batch = None  # ... and the batch size they were made for

    def _activation(self, identifier, what):
        name, _ = activations.get(identifier)
        if name not in _CELL_ACTIVATIONS:
            raise ValueError(f"{type(self).__name__} {what} {name!r} is not supported: a "
                             f"recurrent cell differentiates its activations from their "
                             f"outputs; use one of {', '.join(_CELL_ACTIVATIONS)}")
        return name

    # ----------------------------------------------------------------- weights
    def build(self, input_shape):
        if len(input_shape) != 2 or input_shape[-1] is None:
            raise ValueError(f"{type(self).__name__} layer {self.name!r} expects input of "
                             f"shape (batch, steps, features) with known features, got "
                             f"(None, {', '.join(map(str, input_shape))})")
        k = self.n_gates * self.units
        self.add_weight("kernel", (input_shape[-1], k), self.kernel_initializer,
                        self.kernel_regularizer)
        self.add_weight("recurrent_kernel", (self.units, k), self.recurrent_initializer,
                        self.recurrent_regularizer)
        if self.use_bias:
            self._build_bias()
        self.built = True

    def _build_bias(self):
        self.add_weight("bias", (self.n_gates * self.units,), self.bias_initializer,
                        self.bias_regularizer)

    def check_input_shape(self, input_shape):
        features = self.params["kernel"].shape[0]
        if len(input_shape) != 2 or input_shape[-1] != features:
            raise ValueError(f"{type(self).__name__} layer {self.name!r} expects input of "
                             f"shape (batch, steps, {features}), got "
                             f"(None, {', '.join(map(str, input_shape))})")

    def compute_output_shape(self, input_shape):
        out = (input_shape[0], self.units) if self.return_sequences else (self.units,)
        if self.return_state:
            return [out] + [(self.units,)] * self.n_states
        return out

    def compute_mask(self, inputs, mask=None):
        out = mask if self.return_sequences else None
        return [out] + [None] * self.n_states if self.return_state else out

    def reset_states(self, states: Union[ArrayIn, Sequence[ArrayIn], None] = None) -> None:
        """Forget a stateful layer's states (zeros from the next call), or
        set them to ``states``.

        Parameters
        ----------
        states : list of array_like, optional
            ``(batch, units)`` arrays, one per state (``h``; LSTM: ``h``, ``c``).

        Raises
        ------
        ValueError
            If the layer is not stateful, or the states' shapes do not fit.
        """
        if not self.stateful:
            raise ValueError(f"{type(self).__name__} layer {self.name!r} is not stateful; "
                             f"reset_states() is for stateful=True layers")
        if states is None:
            self._states = None
            return
        states = list(states) if isinstance(states, (list, tuple)) else [states]
        ops = self.ops
        arrays = [ops.asarray(s, dtype=self.dtype) for s in states]
        self._check_states(arrays, arrays[0].shape[0] if arrays else 0, "reset_states")
        self._states = arrays
        self._stateful_batch = arrays[0].shape[0]

    @property
    def states(self):
        """A stateful layer's current states (None before the first call)."""
        return None if self._states is None else list(self._states)

    # ------------------------------------------------------------------ checks
    def _check_states(self, states, n, what):
        kind = type(self).__name__
        if len(states) != self.n_states:
            raise ValueError(f"{kind} layer {self.name!r}: {what} must hold {self.n_states} "
                             f"state{'s' if self.n_states > 1 else ''} "
                             f"({', '.join(self._state_names)}) of shape ({n}, {self.units}), "
                             f"got {len(states)}")
        for name, s in zip(self._state_names, states):
            self.ops.check_native(s, f"{what} of layer {self.name!r}")
            if tuple(s.shape) != (n, self.units):
                raise ValueError(f"{kind} layer {self.name!r}: {what} state {name!r} must "
                                 f"have shape ({n}, {self.units}), got {tuple(s.shape)}")

    def _check_call(self, x, mask, initial_state):
        kind = type(self).__name__
        features = self.params["kernel"].shape[0]
        if x.ndim != 3 or x.shape[-1] != features:
            raise ValueError(f"{kind} layer {self.name!r} expects input of shape (batch, steps, "
                             f"{features}), got {tuple(x.shape)}")
        self._check_input(x)
        n, steps = x.shape[:2]
        if steps == 0:
            raise ValueError(f"{kind} layer {self.name!r} needs at least one time step, got "
                             f"input of shape {tuple(x.shape)}")
        if mask is not None:
            self.ops.check_native(mask, f"mask of layer {self.name!r}")
            if tuple(mask.shape) != (n, steps):
                raise ValueError(f"{kind} layer {self.name!r}: mask must have shape "
                                 f"({n}, {steps}) for input of shape {tuple(x.shape)}, got "
                                 f"{tuple(mask.shape)}")
        if initial_state is not None:
            states = list(initial_state) if isinstance(initial_state, (list, tuple)) \
                else [initial_state]
            self._check_states(states, n, "initial_state")
            for s in states:
                if s.dtype != self.dtype:
                    raise TypeError(f"{kind} layer {self.name!r} computes in {self.dtype} but "
                                    f"got an initial_state of dtype {s.dtype}")
            return states
        if self.stateful and self._stateful_batch is not None and n != self._stateful_batch:
            raise ValueError(f"stateful {kind} layer {self.name!r} holds states for batches of "
                             f"{self._stateful_batch} sequences, got a batch of {n}: a stateful "
                             f"layer needs one fixed batch size (Keras's rule: every batch, the "
                             f"last included, of that size; call reset_states() to start over "
                             f"with another)")
        return None

    # ----------------------------------------------------------------- calling
    def _dropout_mask(self, shape, rate):
        ops = self.ops
        keep = ops.random_uniform(shape, self.dtype) >= rate
        return keep * self.dtype.type(1.0 / (1.0 - rate))

    def _bias_parts(self):
        """(input bias, recurrent bias) as the cell takes them."""
        return self.params.get("bias"), None

    def forward(self, x, training=False, mask=None, initial_state=None):
        """Run the sequence through the cell; see ``Layer.forward``.

        Parameters
        ----------
        x : array
            ``(batch, steps, features)``.
        training : bool, default False
            Apply ``dropout``/``recurrent_dropout``.
        mask : array, optional
            ``(batch, steps)`` booleans: padded steps keep the state unchanged.
        initial_state : list of array, optional
            ``(batch, units)`` starting states (default zeros, or a stateful layer's).
        """
        ops = self.ops
        xp = ops.xp
        states_in = self._check_call(x, mask, initial_state)
        n, steps, features = x.shape
        U, dtype = self.units, self.dtype
        W, R = self.params["kernel"], self.params["recurrent_kernel"]
        b_in, b_rec = self._bias_parts()
        given = states_in is not None
        # The initial states' gradients go back in the structure they came in.
        given_list = isinstance(initial_state, (list, tuple))
        if given:
            states = states_in
        elif self.stateful and self._states is not None:
            states = self._states
        else:
            states = [xp.zeros((n, U), dtype=dtype) for _ in range(self.n_states)]
        # Time-major (steps, batch, features), reversed for go_backwards: the
        # outputs then come in the order the cell read the steps, as Keras's.
        xt = x[:, ::-1] if self.go_backwards else x
        xt = xp.ascontiguousarray(xt.transpose(1, 0, 2))
        mt = None
        if mask is not None:
            mt = mask[:, ::-1] if self.go_backwards else mask
            mt = xp.ascontiguousarray(mt.transpose(1, 0).astype(bool))
        # Dropout masks, one per sequence (the same at every step), as Keras
        # draws them: with recurrent dropout, Keras's cells (implementation 1)
        # draw one mask per gate for the input and for h_{t-1} (rdp (n, G*U),
        # gate blocks side by side); without, one input mask for all gates.
        G = self.n_gates
        dp = rdp = None
        if training and self.dropout > 0:
            dp = [self._dropout_mask((n, features), self.dropout)
                  for _ in range(G if self.recurrent_dropout > 0 else 1)]
        if training and self.recurrent_dropout > 0:
            rdp = self._dropout_mask((n, G * U), self.recurrent_dropout)
        if dp is None or len(dp) == 1:
            if dp is not None:
                xt = xt * dp[0]
            x2 = xt.reshape(steps * n, features)
            xproj = ops.dense_forward(x2, W, b_in, "linear").reshape(steps, n, G * U)
        else:
            # Gate g's block of the projection reads the input through mask g.
            x2 = [(xt * d).reshape(steps * n, features) for d in dp]
            Wg = [xp.ascontiguousarray(W[:, g * U:(g + 1) * U]) for g in range(G)]
            xproj = xp.concatenate([ops.gemm(x2[g], Wg[g]) for g in range(G)], axis=1)
            if b_in is not None:
                xproj += b_in
            xproj = xproj.reshape(steps, n, G * U)
        Y, hT, cT, cache = ops.rnn_forward(
            self.cell, xproj, R, states[0], states[1] if self.n_states > 1 else None, mt,
            b_rec, rdp, self.activation, getattr(self, "recurrent_activation", "sigmoid"),
            getattr(self, "reset_after", True), overwrite_xproj=True)
        final = [hT, cT][:self.n_states]
        if self.stateful:
            # Carried to the next batch as values: backpropagation stops at
            # the batch's first step (truncated BPTT, as Keras).
            self._states = [s.copy() for s in final]
            self._stateful_batch = n
        out = Y if self.return_sequences else Y[:, -1]
        outs = (out,) + tuple(final) if self.return_state else out

        def backprop(dys, need_dx=True):
            if self.return_state:
                dys = list(dys)
                d_out, d_states = dys[0], dys[1:]
            else:
                d_out, d_states = dys, [None] * self.n_states
            if d_out is not None and self.return_sequences:
                dY = d_out
            else:
                dY = xp.zeros((n, steps, U), dtype=dtype)
                if d_out is not None:
                    dY[:, -1] = d_out
            trainable = self.trainable
            dR = self.grads["recurrent_kernel"] if trainable else None
            db_rec = self._bias_grad_rec() if trainable else None
            dcT = d_states[1] if self.n_states > 1 else None
            if dp is not None and len(dp) > 1:
                dxproj, dh0, dc0 = ops.rnn_backward(cache, dY, d_states[0], dcT, dR, db_rec)
                dz = dxproj.reshape(steps * n, G * U)
                dzg = [xp.ascontiguousarray(dz[:, g * U:(g + 1) * U]) for g in range(G)]
                if trainable:
                    gk = self.grads["kernel"]
                    for g in range(G):
                        gk[:, g * U:(g + 1) * U] += ops.gemm(x2[g], dzg[g], trans_a=True)
                    db_in = self._bias_grad_in()
                    if db_in is not None:
                        db_in += dz.sum(axis=0)
                if not need_dx:
                    return None
                dx = ops.gemm(dzg[0], Wg[0], trans_b=True).reshape(steps, n, features) * dp[0]
                for g in range(1, G):
                    dx = dx + ops.gemm(dzg[g], Wg[g], trans_b=True).reshape(steps, n, features) \
                        * dp[g]
            else:
                # The input projection's gradients with BPTT (the kernels do
                # them step by step, while each step's gates are in cache).
                dx, dh0, dc0 = ops.rnn_backward_input(
                    cache, dY, x2, W, self.grads["kernel"] if trainable else None,
                    self._bias_grad_in() if trainable else None, d_states[0], dcT, dR, db_rec,
                    need_dx=need_dx)
                if dx is None:
                    return None
                dx = dx.reshape(steps, n, features)
                if dp is not None:
                    dx = dx * dp[0]
            dx = dx.transpose(1, 0, 2)
            if self.go_backwards:
                dx = dx[:, ::-1]
            dx = xp.ascontiguousarray(dx)
            if not given:
                return dx
            d_states = [dh0, dc0][:self.n_states]
            return dx, {"initial_state": d_states if given_list else d_states[0]}

        return outs, backprop

    def _bias_grad_in(self):
        return self.grads.get("bias")

    def _bias_grad_rec(self):
        return None

    # ------------------------------------------------------------------ config
    def get_config(self):
        return {**super().get_config(), "units": self.units, "activation": self.activation,
                "use_bias": self.use_bias,
                "kernel_initializer": _ser(self.kernel_initializer),
                "recurrent_initializer": _ser(self.recurrent_initializer),
                "bias_initializer": _ser(self.bias_initializer),
                "kernel_regularizer": _ser(self.kernel_regularizer),
                "recurrent_regularizer": _ser(self.recurrent_regularizer),
                "bias_regularizer": _ser(self.bias_regularizer),
                "dropout": self.dropout, "recurrent_dropout": self.recurrent_dropout,
                "return_sequences": self.return_sequences, "return_state": self.return_state,
                "go_backwards": self.go_backwards, "stateful": self.stateful,
                "unroll": self.unroll}


class SimpleRNN(_Recurrent):
    """``h_t = activation(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias)``;
    the output is ``h_t`` (Keras's SimpleRNN).

    Parameters
    ----------
    units : int
        The size of the state and the output.
    activation : str, default "tanh"
        The state's activation.
    use_bias : bool, default True
        Whether the layer has ``bias``.
    kernel_initializer : str or Initializer, default "glorot_uniform"
        How ``kernel`` (features, gates * units) starts.
    recurrent_initializer : str or Initializer, default "orthogonal"
        How ``recurrent_kernel`` (units, gates * units) starts.
    bias_initializer : str or Initializer, default "zeros"
        How ``bias`` starts.
    kernel_regularizer, recurrent_regularizer, bias_regularizer : optional
        Penalties on the weights, added to the loss.
    dropout : float, default 0.0
        Fraction of the input features dropped while training (one mask per sequence).
    recurrent_dropout : float, default 0.0
        Fraction of the state's features dropped in the recurrent product while training.
    return_sequences : bool, default False
        Return the output of every step, ``(batch, steps, units)``, not only
        the last, ``(batch, units)``.
    return_state : bool, default False
        Also return the final states, after the output.
    go_backwards : bool, default False
        Process the sequence in reverse (the outputs come in that order too).
    stateful : bool, default False
        Carry the final states of a batch over as the next batch's initial
        states (``reset_states()`` clears them).
    unroll : bool, default False
        Accepted for Keras code; the steps run in compiled code either way.
    **kwargs
        Base layer arguments (``name``, ``dtype``, ``trainable``,
        ``input_shape``, ...; see ``Layer``).

    Notes
    -----
    Input ``(batch, steps, features)``; a mask (``Embedding(mask_zero=True)``,
    ``Masking``) skips padded steps. Call with ``initial_state=[...]`` to start
    from given states.
    """
    cell = "simple"
    n_gates = 1


class LSTM(_Recurrent):
    """Keras's LSTM: gates i, f, c, o side by side in ``kernel`` (features,
    4 units), ``recurrent_kernel`` (units, 4 units) and ``bias`` (4 units,);
    ``c_t = f * c_{t-1} + i * activation(.)``, ``h_t = o * activation(c_t)``.
    States (and ``return_state`` outputs after the output): ``h``, ``c``.
    ``unit_forget_bias`` starts the forget gate's bias at 1.

    Parameters
    ----------
    units : int
        The size of the states and the output.
    activation : str, default "tanh"
        Applied to the candidate and to the cell state.
    recurrent_activation : str, default "sigmoid"
        The gates' activation.
    unit_forget_bias : bool, default True
        Start the forget gate's bias at 1.
    **kwargs
        The arguments shared by the recurrent layers (Other Parameters below)
        and the base layer arguments (``name``, ``dtype``, ...; see ``Layer``).

    Other Parameters
    ----------------
    use_bias : bool, default True
        Whether the layer has ``bias``.
    kernel_initializer : str or Initializer, default "glorot_uniform"
        How ``kernel`` (features, gates * units) starts.
    recurrent_initializer : str or Initializer, default "orthogonal"
        How ``recurrent_kernel`` (units, gates * units) starts.
    bias_initializer : str or Initializer, default "zeros"
        How ``bias`` starts.
    kernel_regularizer, recurrent_regularizer, bias_regularizer : optional
        Penalties on the weights, added to the loss.
    dropout : float, default 0.0
        Fraction of the input features dropped while training (one mask per sequence).
    recurrent_dropout : float, default 0.0
        Fraction of the state's features dropped in the recurrent product while training.
    return_sequences : bool, default False
        Return the output of every step, ``(batch, steps, units)``, not only
        the last, ``(batch, units)``.
    return_state : bool, default False
        Also return the final states, after the output.
    go_backwards : bool, default False
        Process the sequence in reverse (the outputs come in that order too).
    stateful : bool, default False
        Carry the final states of a batch over as the next batch's initial
        states (``reset_states()`` clears them).
    unroll : bool, default False
        Accepted for Keras code; the steps run in compiled code either way.

    Notes
    -----
    Input ``(batch, steps, features)``; a mask (``Embedding(mask_zero=True)``,
    ``Masking``) skips padded steps. Call with ``initial_state=[...]`` to start
    from given states.

    Examples
    --------
    >>> from fastnn import Sequential
    >>> from fastnn.layers import LSTM, Dense
    >>> model = Sequential([LSTM(64, input_shape=(None, 8)), Dense(1)])
    """
    cell = "lstm"
    n_gates = 4
    n_states = 2
    _state_names = ("h", "c")

    def __init__(self, units: int, activation: ActivationSpec = "tanh",
                 recurrent_activation: ActivationSpec = "sigmoid", unit_forget_bias: bool = True,
                 **kwargs: Any) -> None:
        super().__init__(units, activation=activation, **kwargs)
        self.recurrent_activation = self._activation(recurrent_activation,
                                                     "recurrent_activation")
        self.unit_forget_bias = bool(unit_forget_bias)

    def _build_bias(self):
        b = self.add_weight("bias", (4 * self.units,), self.bias_initializer,
                            self.bias_regularizer)
        if self.unit_forget_bias:
            b[self.units:2 * self.units] = 1

    def get_config(self):
        return {**super().get_config(), "recurrent_activation": self.recurrent_activation,
                "unit_forget_bias": self.unit_forget_bias}


class GRU(_Recurrent):
    """Keras's GRU: gates z, r, h side by side in ``kernel`` (features,
    3 units) and ``recurrent_kernel`` (units, 3 units);
    ``h_t = z * h_{t-1} + (1 - z) * activation(.)``. With ``reset_after``
    (Keras's default, cuDNN's and PyTorch's form) the reset gate multiplies
    the recurrent product and ``bias`` is (2, 3 units): input bias, then
    recurrent bias; without, it resets ``h_{t-1}`` before the product and
    ``bias`` is (3 units,).

    Parameters
    ----------
    units : int
        The size of the state and the output.
    activation : str, default "tanh"
        The candidate's activation.
    recurrent_activation : str, default "sigmoid"
        The gates' activation.
    reset_after : bool, default True
        Apply the reset gate after the recurrent product (Keras's default).
    **kwargs
        The arguments shared by the recurrent layers (Other Parameters below)
        and the base layer arguments (``name``, ``dtype``, ...; see ``Layer``).

    Other Parameters
    ----------------
    use_bias : bool, default True
        Whether the layer has ``bias``.
    kernel_initializer : str or Initializer, default "glorot_uniform"
        How ``kernel`` (features, gates * units) starts.
    recurrent_initializer : str or Initializer, default "orthogonal"
        How ``recurrent_kernel`` (units, gates * units) starts.
    bias_initializer : str or Initializer, default "zeros"
        How ``bias`` starts.
    kernel_regularizer, recurrent_regularizer, bias_regularizer : optional
        Penalties on the weights, added to the loss.
    dropout : float, default 0.0
        Fraction of the input features dropped while training (one mask per sequence).
    recurrent_dropout : float, default 0.0
        Fraction of the state's features dropped in the recurrent product while training.
    return_sequences : bool, default False
        Return the output of every step, ``(batch, steps, units)``, not only
        the last, ``(batch, units)``.
    return_state : bool, default False
        Also return the final states, after the output.
    go_backwards : bool, default False
        Process the sequence in reverse (the outputs come in that order too).
    stateful : bool, default False
        Carry the final states of a batch over as the next batch's initial
        states (``reset_states()`` clears them).
    unroll : bool, default False
        Accepted for Keras code; the steps run in compiled code either way.

    Notes
    -----
    Input ``(batch, steps, features)``; a mask (``Embedding(mask_zero=True)``,
    ``Masking``) skips padded steps. Call with ``initial_state=[...]`` to start
    from given states.
    """
    cell = "gru"
    n_gates = 3

    def __init__(self, units: int, activation: ActivationSpec = "tanh",
                 recurrent_activation: ActivationSpec = "sigmoid", reset_after: bool = True,
                 **kwargs: Any) -> None:
        super().__init__(units, activation=activation, **kwargs)
        self.recurrent_activation = self._activation(recurrent_activation,
                                                     "recurrent_activation")
        self.reset_after = bool(reset_after)

    def _build_bias(self):
        shape = (2, 3 * self.units) if self.reset_after else (3 * self.units,)
        self.add_weight("bias", shape, self.bias_initializer, self.bias_regularizer)

    def _bias_parts(self):
        b = self.params.get("bias")
        if b is None or not self.reset_after:
            return b, None
        return b[0], b[1]

    def _bias_grad_in(self):
        g = self.grads.get("bias")
        return g if g is None or not self.reset_after else g[0]

    def _bias_grad_rec(self):
        g = self.grads.get("bias")
        return None if g is None or not self.reset_after else g[1]

    def get_config(self):
        return {**super().get_config(), "recurrent_activation": self.recurrent_activation,
                "reset_after": self.reset_after}
