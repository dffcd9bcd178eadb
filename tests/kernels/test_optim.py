"""fastnn._C.optim updates and NumpyOps against the Ops updates, over several steps."""
import platform

import numpy
import pytest

from fastnn._C import optim as kernels
from fastnn.testing import DTYPES, assert_close, make

CASES = [
    ("sgd_update", 1, dict(lr=0.1)),
    ("sgd_update", 1, dict(lr=0.1, momentum=0.9)),
    ("sgd_update", 1, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("rmsprop_update", 1, dict(lr=0.01, rho=0.8, eps=1e-6, weight_decay=0.01)),
    ("adagrad_update", 1, dict(lr=0.05, eps=1e-7, weight_decay=0.001)),
    ("adam_update", 2, dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-7)),
    ("adam_update", 2, dict(lr=1e-2, beta1=0.8, beta2=0.99, eps=1e-8, weight_decay=0.1)),
    ("adam_update", 2, dict(lr=1e-2, beta1=0.8, beta2=0.99, eps=1e-8, weight_decay=0.1,
                            decoupled=True)),
]


def run_steps(update, method, nstate, kwargs, param, grads, state):
    for step, grad in enumerate(grads, start=1):
        extra = dict(step=step) if method == "adam_update" else {}
        update(param, grad, *state, **kwargs, **extra)


@pytest.mark.parametrize("method,nstate,kwargs", CASES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1,), (3, 17), (129, 257), (1 << 17,)])
def test_updates_match_reference(ops, ref, rng, method, nstate, kwargs, dtype, shape):
    param = make(rng, shape, dtype)
    grads = [make(rng, shape, dtype) for _ in range(3)]
    state = [numpy.abs(make(rng, shape, dtype)) * 0.1 for _ in range(nstate)]
    p_ref, s_ref = param.copy(), [s.copy() for s in state]
    run_steps(getattr(ref, method), method, nstate, kwargs, p_ref, grads, s_ref)
    for update in (getattr(kernels, method), getattr(ops, method)):
        p, s = param.copy(), [x.copy() for x in state]
        run_steps(update, method, nstate, kwargs, p, grads, s)
        assert_close(p, p_ref, tol=1e-5 if dtype == numpy.float32 else 1e-12)
        for got, want in zip(s, s_ref):
            assert_close(got, want, tol=1e-5 if dtype == numpy.float32 else 1e-12)


@pytest.mark.parametrize("layout", ["F", "strided"])
def test_numpy_ops_layouts(ops, ref, rng, layout):
    param = make(rng, (31, 12), numpy.float32, layout)
    grad = make(rng, (31, 12), numpy.float32, layout)
    m, v = numpy.zeros_like(param), numpy.zeros_like(param)
    p_ref, m_ref, v_ref = param.copy(), m.copy(), v.copy()
    ops.adam_update(param, grad, m, v, 1e-2, 0.9, 0.999, 1e-7, 1)
    ref.adam_update(p_ref, grad, m_ref, v_ref, 1e-2, 0.9, 0.999, 1e-7, 1)
    for got, want in ((param, p_ref), (m, m_ref), (v, v_ref)):
        assert_close(got, want)


def test_sgd_without_momentum_needs_no_velocity(rng):
    p = make(rng, (10,), numpy.float64)
    g = make(rng, (10,), numpy.float64)
    want = p - 0.5 * g
    kernels.sgd_update(p, g, None, 0.5)
    assert_close(p, want)


def test_errors(rng):
    p = make(rng, (4, 3), numpy.float32)
    with pytest.raises(ValueError, match=r"grad has shape \(3, 4\) but param has shape \(4, 3\)"):
        kernels.adagrad_update(p, p.T.copy(), numpy.zeros_like(p), 0.1)
    with pytest.raises(TypeError, match="grad has dtype float64 but param has float32"):
        kernels.rmsprop_update(p, p.astype(numpy.float64), numpy.zeros_like(p), 0.1)
    with pytest.raises(ValueError, match="must be contiguous"):
        kernels.adam_update(p[:, :2], p[:, :2], p[:, :2], p[:, :2], 0.1, 0.9, 0.99, 1e-7, 1)
    with pytest.raises(ValueError, match="memory order"):
        kernels.adagrad_update(p, numpy.asfortranarray(p), numpy.zeros_like(p), 0.1)
    with pytest.raises(ValueError, match="step counts from 1"):
        kernels.adam_update(p, p, p.copy(), p.copy(), 0.1, 0.9, 0.99, 1e-7, 0)
    with pytest.raises(ValueError, match="velocity array"):
        kernels.sgd_update(p, p.copy(), None, 0.1, momentum=0.9)
    ro = p.copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        kernels.sgd_update(ro, p, None, 0.1)
    with pytest.raises(TypeError, match="float32 or float64"):
        kernels.sgd_update(numpy.zeros(3, numpy.int32), numpy.zeros(3, numpy.int32), None, 0.1)


X86 = platform.machine().lower() in ("x86_64", "amd64", "i686", "x86")


@pytest.mark.skipif(not X86, reason="denormals are flushed through the x86 MXCSR only; "
                                    "elsewhere the kernels keep IEEE denormals")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [5, 1 << 17])  # the serial and the parallel path
def test_decaying_state_is_flushed_not_left_denormal(dtype, n):
    # A zero gradient (a dead unit): the moments decay by beta each step and
    # would pass through the denormals, which are slow on x86.
    tiny = numpy.finfo(dtype).tiny
    p = numpy.ones(n, dtype)
    g = numpy.zeros(n, dtype)
    m = numpy.full(n, 1.05 * tiny, dtype)
    v = numpy.full(n, 1.05 * tiny, dtype)
    kernels.adam_update(p, g, m, v, 1e-3, 0.5, 0.5, 1e-7, 3)
    assert (m == 0).all() and (v == 0).all() and (p == 1).all()
    vel = numpy.full(n, 1.05 * tiny, dtype)
    kernels.sgd_update(p, g, vel, 0.1, momentum=0.5)
    assert (vel == 0).all()
    sq = numpy.full(n, 1.05 * tiny, dtype)
    kernels.rmsprop_update(p, g, sq, 0.1, rho=0.5)
    assert (sq == 0).all()
    # Normal values are untouched by the flags: the same update as the reference.
    m = numpy.full(n, 1e-3, dtype)
    v = numpy.full(n, 1e-3, dtype)
    kernels.adam_update(p, g, m, v, 1e-3, 0.5, 0.5, 1e-7, 3)
    assert (m == dtype(0.5) * dtype(1e-3)).all()


def test_flush_flags_do_not_leak_into_the_callers_numpy():
    p, g = numpy.ones(8, numpy.float32), numpy.zeros(8, numpy.float32)
    kernels.adam_update(p, g, numpy.zeros(8, numpy.float32), numpy.zeros(8, numpy.float32),
                        1e-3, 0.9, 0.999, 1e-7, 1)
    tiny = numpy.finfo(numpy.float32).tiny
    half = numpy.float32(tiny) * numpy.float32(0.5)  # a denormal under IEEE rules
    assert half > 0 and half < tiny
    tiny64 = numpy.finfo(numpy.float64).tiny
    assert numpy.float64(tiny64) * 0.5 > 0
