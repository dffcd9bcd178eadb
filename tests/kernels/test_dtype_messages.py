"""Reproducers from issue #19 ("Kernel messages name the arguments as the
caller wrote them") for the kernels edited on other branches (recurrent,
conv): a dtype mismatch must name the argument the dtype has to match, not
"the other operands". They fail until those kernels pass ``like_name`` to
``check_float``/``check_out`` (csrc/common/checks.pxd); the batch-norm ones
live in test_norm.py."""
import numpy
import pytest

from fastnn._C import conv, recurrent

F32, F64 = numpy.float32, numpy.float64


def _message(call):
    with pytest.raises(TypeError) as e:
        call()
    return str(e.value)


def _rnn_forward_inputs(cell, T=2, N=3, U=2):
    G = {"simple": 1, "lstm": 4, "gru": 3}[cell]
    rng = numpy.random.default_rng(0)
    d = dict(xproj=rng.standard_normal((T, N, G * U)).astype(F32),
             R=rng.standard_normal((U, G * U)).astype(F32), h0=numpy.zeros((N, U), F32))
    if cell == "lstm":
        d["c0"] = numpy.zeros((N, U), F32)
    return d


@pytest.mark.parametrize("name", ["R", "h0", "c0", "b_rec", "rec_mask"])
def test_rnn_forward_names_xproj(name):
    cell = {"c0": "lstm", "b_rec": "gru"}.get(name, "simple")
    d = _rnn_forward_inputs(cell)
    N, U = d["h0"].shape
    G = d["R"].shape[1] // U
    extra = {"c0": numpy.zeros((N, U)), "b_rec": numpy.zeros(G * U),
             "rec_mask": numpy.ones((N, U))}
    if name in extra:
        d[name] = extra[name]
    else:
        d[name] = d[name].astype(F64)
    msg = _message(lambda: recurrent.rnn_forward(cell, **d))
    assert f"{name} has dtype float64 but xproj has float32" in msg, msg


@pytest.mark.parametrize("name", ["dY", "H", "A", "E", "C", "dhT", "dcT", "rec_mask", "dR",
                                  "db_rec"])
def test_rnn_backward_names_R(name):
    cell = {"C": "lstm", "dcT": "lstm", "db_rec": "gru", "E": "gru"}.get(name, "simple")
    d = _rnn_forward_inputs(cell)
    if cell == "gru":
        d["b_rec"] = numpy.zeros(d["R"].shape[1], F32)
    Y, H, C, A, E = recurrent.rnn_forward(cell, **d)
    N, U = d["h0"].shape
    args = dict(R=d["R"], H=H, C=C, A=A, E=E, dY=numpy.ones_like(Y), dhT=None, dcT=None,
                rec_mask=None, dR=None, db_rec=None)
    extra = {"dhT": numpy.zeros((N, U)), "dcT": numpy.zeros((N, U)),
             "rec_mask": numpy.ones((N, U)), "dR": numpy.zeros(d["R"].shape),
             "db_rec": numpy.zeros(d["R"].shape[1])}
    args[name] = extra[name] if name in extra else args[name].astype(F64)
    msg = _message(lambda: recurrent.rnn_backward(cell, **args))
    assert f"{name} has dtype float64 but R has float32" in msg, msg


def test_conv2d_forward_out_names_x():
    x = numpy.ones((1, 4, 4, 2), F32)
    W = numpy.ones((3, 3, 2, 5), F32)
    out = numpy.empty((1, 2, 2, 5), F64)
    msg = _message(lambda: conv.conv2d_forward(x, W, out=out))
    assert "out has dtype float64 but x has float32" in msg, msg
