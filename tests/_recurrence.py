"""A small linear recurrence written for the tests, in the shape of the
protocol the recurrent layers use (mask, initial_state, return_sequences,
return_state, go_backwards): tests/test_graph.py runs the model graph over it
(``ToyRNN``), tests/layers/test_bidirectional.py wraps it (``LinearRecurrence``).
It computes through ``self.ops.xp``, so it runs on the strict backend too.

Imported by name: tests/conftest.py puts this folder on ``sys.path``."""
from fastnn import layers as L


@L.register_layer
class LinearRecurrence(L.Layer):
    """h_t = h_{t-1} @ A + mask_t * (x_t @ W) with a fixed decay A = decay I
    (0.5) and ``states`` states (2: h and 2 h; 1: h alone): the recurrent
    protocol (mask, initial_state, return_sequences, return_state,
    go_backwards) in a few lines. A padded step (mask 0) keeps h."""
    supports_masking = True

    def __init__(self, units, return_sequences=False, return_state=False, go_backwards=False,
                 decay=0.5, states=2, **kwargs):
        super().__init__(**kwargs)
        self.units, self.return_sequences = units, return_sequences
        self.return_state, self.go_backwards = return_state, go_backwards
        self.decay, self.states = decay, states

    def build(self, input_shape):
        self.add_weight("kernel", (input_shape[-1], self.units), "glorot_uniform")
        self.built = True

    def compute_output_shape(self, input_shape):
        out = (input_shape[0], self.units) if self.return_sequences else (self.units,)
        return [out] + [(self.units,)] * self.states if self.return_state else out

    def compute_mask(self, inputs, mask=None):
        out = mask if self.return_sequences else None
        return [out] + [None] * self.states if self.return_state else out

    def forward(self, x, training=False, mask=None, initial_state=None):
        xp, W, decay = self.ops.xp, self.params["kernel"], self.decay
        n, steps = x.shape[:2]
        m = xp.ones((n, steps), dtype=x.dtype) if mask is None else self.ops.asarray(
            mask).astype(x.dtype)
        if self.go_backwards:
            x, m = x[:, ::-1], m[:, ::-1]
        z = x @ W
        if initial_state is None:
            h = xp.zeros((n, self.units), dtype=x.dtype)
        else:  # the states are h and 2 h: h_0 = s_0 + 0.25 s_1 reads both
            h = initial_state[0] if self.states == 1 else \
                initial_state[0] + 0.25 * initial_state[1]
        hs = []
        for t in range(steps):
            keep = m[:, t, None]
            h = keep * (decay * h + z[:, t]) + (1 - keep) * h
            hs.append(h)
        seq = xp.stack(hs, axis=1)
        outs = (seq if self.return_sequences else h,) + \
            ((h, 2 * h)[:self.states] if self.return_state else ())

        def backprop(dys):
            dys = list(dys) if self.return_state else [dys]
            g = xp.zeros((n, self.units), dtype=x.dtype)
            if self.return_state:
                for d, f in zip(dys[1:], (1.0, 2.0)):
                    if d is not None:
                        g = g + f * d
            if not self.return_sequences and dys[0] is not None:
                g = g + dys[0]
            dz = [None] * steps
            for t in range(steps - 1, -1, -1):
                if self.return_sequences and dys[0] is not None:
                    g = g + dys[0][:, t]
                keep = m[:, t, None]
                dz[t] = g * keep
                g = keep * decay * g + (1 - keep) * g
            dz = xp.stack(dz, axis=1)
            self.grads["kernel"] += xp.einsum("ntd,ntu->du", x, dz)
            dx = dz @ W.T
            if self.go_backwards:
                dx = dx[:, ::-1]
            if initial_state is None:
                return dx
            return dx, {"initial_state": [g, 0.25 * g][:self.states]}

        return (outs if self.return_state else outs[0]), backprop

    def get_config(self):
        return {**super().get_config(), "units": self.units,
                "return_sequences": self.return_sequences, "return_state": self.return_state,
                "go_backwards": self.go_backwards, "decay": self.decay, "states": self.states}


@L.register_layer
class ToyRNN(LinearRecurrence):
    """h_t = h_{t-1} + mask_t * (x_t @ W), one state: no decay, so small enough
    to check by hand (a padded step leaves the state unchanged)."""

    def __init__(self, units, decay=1.0, states=1, **kwargs):
        super().__init__(units, decay=decay, states=states, **kwargs)
