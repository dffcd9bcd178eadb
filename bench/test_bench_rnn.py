"""SimpleRNN, GRU and LSTM layers, forward + backward through time: batch 64,
50 steps, 32 features -> 128 units, every step's output returned, a random
output gradient, float32 (issue 17's case). fastnn's layer on NumpyOps (its
Cython cell kernels), the same layer on the plain NumPy reference Ops (a step
loop of NumPy products), and torch.nn.RNN/GRU/LSTM with the same weights.

    python -m pytest bench/test_bench_rnn.py --benchmark-only
"""
import pytest

import _data
from fastnn import layers as L
from fastnn.backend import NumpyOps, Ops

OPS = {"fastnn": NumpyOps(), "numpy": Ops()}


def make_layer(kind, ops):
    x, dy, W, R, b = _data.rnn_cell(kind)
    layer = getattr(L, kind)(_data.RNN_CELL["units"], return_sequences=True)
    layer._ensure_built(x.shape[1:])
    layer.to(ops)
    layer.set_weights([W, R, b])
    return layer, x, dy


def forward_backward(layer, x, dy):
    y, backprop = layer.forward(x, training=True)
    return backprop(dy)


@pytest.mark.parametrize("way", _data.WAYS)
@pytest.mark.parametrize("kind", ["SimpleRNN", "GRU", "LSTM"])
def test_rnn_forward_backward(benchmark, request, way, kind):
    c = _data.RNN_CELL
    benchmark.group = (f"{kind} {c['batch']}x{c['steps']}x{c['features']}->{c['units']} "
                       f"fwd+bwd")
    if way == "torch":
        return request.getfixturevalue("torch_case")("rnn_cell", kind=kind)
    layer, x, dy = make_layer(kind, OPS[way])
    benchmark(forward_backward, layer, x, dy)
