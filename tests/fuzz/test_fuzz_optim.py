"""Fuzzing the in-place optimizer kernels (fastnn._C.optim, and the sparse
module's fused Adam): the updated param and state against the textbook update
in float64 written here (machinery and property: conftest.py)."""
import numpy
import pytest
from hypothesis import strategies as st

from fastnn._C import optim
from fastnn._C import sparse as S

# Any number of axes; C or F order shared by all (the kernels run over flat memory).
LAYOUTS = ("C", "F", "strided", "reversed", "readonly", "list", "dtype")


def f64(a):
    return numpy.asarray(a, numpy.float64)


def adam_ref(p, g, m, v, lr, b1, b2, eps, step, wd, decoupled):
    """Adam / AdamW (Kingma & Ba; Loshchilov & Hutter) in float64."""
    p, g, m, v = f64(p).copy(), f64(g), f64(m), f64(v)
    with numpy.errstate(all="ignore"):
        if not decoupled:
            g = g + wd * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        mhat, vhat = m / (1 - b1 ** step), v / (1 - b2 ** step)
        if decoupled:
            p = p - lr * wd * p
        p = p - lr * mhat / (numpy.sqrt(vhat) + eps)
    return p, m, v


def _state(draw, g, n_state):
    dt = g.dtype(draw)
    shape = tuple(g.dim(draw, hi=6) for _ in range(draw(st.integers(0, 3))))
    p = g.values(draw, shape, dt, special=False)
    grad = g.values(draw, shape, dt)
    # Second moments are never negative.
    state = [g.values(draw, shape, dt, lo=0 if i == n_state - 1 else -1, hi=1, special=False)
             for i in range(n_state)]
    return dt, shape, p, grad, state


def _args(draw, g, names, arrays):
    out = []
    for name, a in zip(names, arrays):
        out.append(g.arg(draw, name, a.copy(), out=name != "grad", allow=LAYOUTS))
    # Aliasing: the state given as the param, or the grad as a state array.
    if draw(st.integers(0, 5)) == 0 and len(out) > 2 and arrays[0].size:
        i, j = draw(st.sampled_from([(k, l) for k in range(len(out)) for l in range(len(out))
                                     if k < l]))
        if isinstance(out[i], numpy.ndarray) and out[i].flags.writeable:
            out[j] = out[i]
            g.hazard(names[j], g.MUST, f"is {names[i]}")
    return out


def _result(arrays, names):
    return tuple(a for a, n in zip(arrays, names) if n != "grad")


def case_sgd(draw, g):
    dt, shape, p, grad, (vel,) = _state(draw, g, 1)
    lr = draw(st.sampled_from([0.1, 0.01]))
    mom = draw(st.sampled_from([0.0, 0.9]))
    nesterov, wd = draw(st.booleans()), draw(st.sampled_from([0.0, 0.01]))
    with numpy.errstate(all="ignore"):
        gg = f64(grad) + wd * f64(p)
        if mom:
            v_new = mom * f64(vel) - lr * gg
            p_new = f64(p) + (mom * v_new - lr * gg if nesterov else v_new)
        else:
            v_new, p_new = f64(vel), f64(p) - lr * gg
    names = ("param", "grad", "velocity")
    P, G, V = _args(draw, g, names, (p, grad, vel))
    if not mom:
        # Without momentum the velocity is not used: nothing about it matters.
        g.h.items = [h for h in g.h.items if h[0] != "velocity" and h[2] != "is velocity"]
        g.float_args.pop("velocity", None)
    if not mom and draw(st.booleans()):
        V = None  # documented: no velocity without momentum
    want = (p_new, v_new) if mom else (p_new,)

    def call():
        optim.sgd_update(P, G, V, lr, mom, nesterov, wd)
        return (P, V) if mom else (P,)
    return g.case(call, want, dt, 4.0)


def case_rmsprop(draw, g):
    dt, shape, p, grad, (sq,) = _state(draw, g, 1)
    lr, rho, eps, wd = 0.01, draw(st.sampled_from([0.9, 0.0])), 1e-7, draw(st.sampled_from([0.0, 0.1]))
    with numpy.errstate(all="ignore"):
        gg = f64(grad) + wd * f64(p)
        s = rho * f64(sq) + (1 - rho) * gg * gg
        p_new = f64(p) - lr * gg / (numpy.sqrt(s) + eps)
    names = ("param", "grad", "sq")
    P, G, Q = _args(draw, g, names, (p, grad, sq))

    def call():
        optim.rmsprop_update(P, G, Q, lr, rho, eps, wd)
        return (P, Q)
    return g.case(call, (p_new, s), dt, 4.0)


def case_adagrad(draw, g):
    dt, shape, p, grad, (acc,) = _state(draw, g, 1)
    lr, eps, wd = 0.01, 1e-7, draw(st.sampled_from([0.0, 0.1]))
    with numpy.errstate(all="ignore"):
        gg = f64(grad) + wd * f64(p)
        a = f64(acc) + gg * gg
        p_new = f64(p) - lr * gg / (numpy.sqrt(a) + eps)
    names = ("param", "grad", "acc")
    P, G, Q = _args(draw, g, names, (p, grad, acc))

    def call():
        optim.adagrad_update(P, G, Q, lr, eps, wd)
        return (P, Q)
    return g.case(call, (p_new, a), dt, 4.0)


def _adam_case(draw, g, kernel):
    dt, shape, p, grad, (m, v) = _state(draw, g, 2)
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-7
    step = draw(st.one_of(st.integers(1, 20), st.sampled_from([0, -1])))
    wd, decoupled = draw(st.sampled_from([0.0, 0.01])), draw(st.booleans())
    want = adam_ref(p, grad, m, v, lr, b1, b2, eps, step, wd, decoupled)
    names = ("param", "grad", "m", "v")
    P, G, M, V = _args(draw, g, names, (p, grad, m, v))
    if step < 1:
        g.hazard("step", g.MUST, f"step={step}")
    zero_grad = kernel == "sparse" and draw(st.booleans())
    if zero_grad:
        if isinstance(G, numpy.ndarray) and not G.flags.writeable:
            g.hazard("grad", g.MUST, "read-only, zero_grad")
        want = want + (numpy.zeros(shape),)

    def call():
        if kernel == "sparse":
            S.adam_update(P, G, M, V, lr, b1, b2, eps, step, wd, decoupled, zero_grad)
        else:
            optim.adam_update(P, G, M, V, lr, b1, b2, eps, step, wd, decoupled)
        return (P, M, V) + ((G,) if zero_grad else ())
    return g.case(call, want, dt, 4.0)


def case_adam(draw, g):
    return _adam_case(draw, g, "optim")


def case_sparse_adam(draw, g):
    return _adam_case(draw, g, "sparse")


CASES = [case_sgd, case_rmsprop, case_adagrad, case_adam, case_sparse_adam]


@pytest.mark.parametrize("case_fn", CASES, ids=lambda f: f.__name__[5:])
def test_fuzz(case_fn, fuzz):
    fuzz(case_fn)
