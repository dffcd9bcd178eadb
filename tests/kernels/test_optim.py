"""fastnn._C.optim updates and NumpyOps against the Ops updates, over several steps."""
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
    with pytest.raises(TypeError, match="float64 but the other operands are float32"):
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
