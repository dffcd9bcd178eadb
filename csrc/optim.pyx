"""Optimizer updates as single fused, in-place passes over contiguous parameter
and state arrays (same math as the ``Ops`` updates, with denormals flushed to
0 while they run: fastnn_fpenv.h). Parallel with a static prange over fixed
blocks, so results do not depend on the thread count. Adam's row loop is
adam_row.h's, the one the sparse kernels and the AutoRec step run."""
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport sqrt, sqrtf
cimport numpy as cnp
import numpy

from checks cimport check_all_disjoint, check_float, check_same_shape

cnp.import_array()
include "common/threads.pxi"

# Every *_run below runs with denormals flushed, on the thread that runs it
# (each prange block and the serial path alike): fastnn_fpenv.h.
cdef extern from "fastnn_fpenv.h" nogil:
    unsigned fastnn_flush_denormals_begin()
    void fastnn_flush_denormals_end(unsigned saved)

cdef extern from "adam_row.h" nogil:
    void fastnn_adam_f32(Py_ssize_t n, float* p, float* g, float* m, float* v, float b1,
                         float b2, float lr, float eps, float wd, float keep, int zero_grad)
    void fastnn_adam_f64(Py_ssize_t n, double* p, double* g, double* m, double* v, double b1,
                         double b2, double lr, double eps, double wd, double keep,
                         int zero_grad)

cdef enum:
    BLOCK = 8192
    PARALLEL_MIN = 32768


cdef inline floating _sqrt(floating v) noexcept nogil:
    if floating is float:
        return sqrtf(v)
    else:
        return sqrt(v)


cdef object _flat(str what, object a, object like):
    """A flat writeable view of a contiguous array shaped like ``like``."""
    check_float(what, a, like, "param")
    check_same_shape(what, a, "param", like)
    if not (a.flags.c_contiguous or a.flags.f_contiguous):
        raise ValueError(f"{what} must be contiguous (optimizer updates run over flat memory)")
    return a.reshape(-1, order="C" if a.flags.c_contiguous else "F")


cdef object _check_layouts(object param, object arrays):
    """Flat views of ``param`` and each (name, array) sharing param's memory order."""
    check_float("param", param)
    if not param.flags.writeable:
        raise ValueError("param is read-only but is updated in place")
    flats = [_flat("param", param, param)]
    c_order = param.flags.c_contiguous
    for what, a in arrays:
        # Type first: a list has no flags to look at.
        flat = _flat(what, a, param)
        # grad is only read (read-only grads are fine); the optimizer state is written.
        if what != "grad" and not a.flags.writeable:
            raise ValueError(f"{what} is read-only but is updated in place (it is optimizer "
                             f"state); pass a writeable array")
        flats.append(flat)
        if a.ndim > 1 and a.flags.c_contiguous != c_order and not (
                a.flags.c_contiguous and a.flags.f_contiguous):
            raise ValueError(f"{what} and param must share one memory order (both C or both F)")
    # param and the state are updated in place while grad is read: none may share
    # memory (a velocity that is the param, a grad that overlaps m, ...).
    check_all_disjoint({"param": param, **{w: a for w, a in arrays if w != "grad"}},
                       {w: a for w, a in arrays if w == "grad"})
    return flats


# ---------------------------------------------------------------------- sgd
cdef inline void _sgd_run(floating* p, const floating* g, floating* vel, Py_ssize_t n,
                          floating lr, floating mom, bint nesterov, floating wd) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating gi, vi
    cdef unsigned saved = fastnn_flush_denormals_begin()
    for i in range(n):
        gi = g[i] + wd * p[i]
        if mom != 0:
            vi = mom * vel[i] - lr * gi
            vel[i] = vi
            if nesterov:
                p[i] += mom * vi - lr * gi
            else:
                p[i] += vi
        else:
            p[i] -= lr * gi
    fastnn_flush_denormals_end(saved)


cdef void _sgd(floating[::1] p, const floating[::1] g, floating[::1] vel, double lr, double mom,
               bint nesterov, double wd):
    cdef Py_ssize_t n = p.shape[0], nb = (n + BLOCK - 1) // BLOCK, b, s
    cdef floating* vp = &vel[0] if mom != 0 else NULL
    with nogil:
        if n < PARALLEL_MIN:
            _sgd_run(&p[0], &g[0], vp, n, <floating>lr, <floating>mom, nesterov, <floating>wd)
        else:
            for b in prange(nb, schedule="static", num_threads=fastnn_threads(n * FASTNN_ELEMENT_COST)):
                s = b * BLOCK
                _sgd_run(&p[s], &g[s], vp + s if vp != NULL else NULL, min(<Py_ssize_t>BLOCK, n - s),
                         <floating>lr, <floating>mom, nesterov, <floating>wd)


def sgd_update(param, grad, velocity, double lr, double momentum=0.0, bint nesterov=False,
               double weight_decay=0.0):
    """In place: ``g = grad + weight_decay * param``; with momentum
    ``velocity = momentum * velocity - lr * g`` and ``param += velocity`` (nesterov:
    ``param += momentum * velocity - lr * g``); else ``param -= lr * g``.
    ``velocity`` may be None when ``momentum`` is 0."""
    arrays = [("grad", grad)]
    if momentum != 0:
        if velocity is None:
            raise ValueError("sgd_update: momentum needs a velocity array, got None")
        arrays.append(("velocity", velocity))
    flats = _check_layouts(param, arrays)
    vel = flats[2] if momentum != 0 else flats[0]
    if param.size == 0:
        return
    if param.dtype == numpy.float32:
        _sgd[float](flats[0], flats[1], vel, lr, momentum, nesterov, weight_decay)
    else:
        _sgd[double](flats[0], flats[1], vel, lr, momentum, nesterov, weight_decay)


# ------------------------------------------------------------------ rmsprop
cdef inline void _rmsprop_run(floating* p, const floating* g, floating* sq, Py_ssize_t n,
                              floating lr, floating rho, floating eps,
                              floating wd) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating gi, si
    cdef unsigned saved = fastnn_flush_denormals_begin()
    for i in range(n):
        gi = g[i] + wd * p[i]
        si = rho * sq[i] + (1 - rho) * gi * gi
        sq[i] = si
        p[i] -= lr * gi / (_sqrt(si) + eps)
    fastnn_flush_denormals_end(saved)


cdef void _rmsprop(floating[::1] p, const floating[::1] g, floating[::1] sq, double lr, double rho,
                   double eps, double wd):
    cdef Py_ssize_t n = p.shape[0], nb = (n + BLOCK - 1) // BLOCK, b, s
    with nogil:
        if n < PARALLEL_MIN:
            _rmsprop_run(&p[0], &g[0], &sq[0], n, <floating>lr, <floating>rho, <floating>eps,
                         <floating>wd)
        else:
            for b in prange(nb, schedule="static", num_threads=fastnn_threads(n * FASTNN_ELEMENT_COST)):
                s = b * BLOCK
                _rmsprop_run(&p[s], &g[s], &sq[s], min(<Py_ssize_t>BLOCK, n - s), <floating>lr,
                             <floating>rho, <floating>eps, <floating>wd)


def rmsprop_update(param, grad, sq, double lr, double rho=0.9, double eps=1e-7,
                   double weight_decay=0.0):
    """In place: ``sq = rho * sq + (1 - rho) * g**2``; ``param -= lr * g / (sqrt(sq) + eps)``."""
    flats = _check_layouts(param, [("grad", grad), ("sq", sq)])
    if param.size == 0:
        return
    if param.dtype == numpy.float32:
        _rmsprop[float](flats[0], flats[1], flats[2], lr, rho, eps, weight_decay)
    else:
        _rmsprop[double](flats[0], flats[1], flats[2], lr, rho, eps, weight_decay)


# ------------------------------------------------------------------ adagrad
cdef inline void _adagrad_run(floating* p, const floating* g, floating* acc, Py_ssize_t n,
                              floating lr, floating eps, floating wd) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating gi, ai
    cdef unsigned saved = fastnn_flush_denormals_begin()
    for i in range(n):
        gi = g[i] + wd * p[i]
        ai = acc[i] + gi * gi
        acc[i] = ai
        p[i] -= lr * gi / (_sqrt(ai) + eps)
    fastnn_flush_denormals_end(saved)


cdef void _adagrad(floating[::1] p, const floating[::1] g, floating[::1] acc, double lr, double eps,
                   double wd):
    cdef Py_ssize_t n = p.shape[0], nb = (n + BLOCK - 1) // BLOCK, b, s
    with nogil:
        if n < PARALLEL_MIN:
            _adagrad_run(&p[0], &g[0], &acc[0], n, <floating>lr, <floating>eps, <floating>wd)
        else:
            for b in prange(nb, schedule="static", num_threads=fastnn_threads(n * FASTNN_ELEMENT_COST)):
                s = b * BLOCK
                _adagrad_run(&p[s], &g[s], &acc[s], min(<Py_ssize_t>BLOCK, n - s),
                             <floating>lr, <floating>eps, <floating>wd)


def adagrad_update(param, grad, acc, double lr, double eps=1e-7, double weight_decay=0.0):
    """In place: ``acc += g**2``; ``param -= lr * g / (sqrt(acc) + eps)``."""
    flats = _check_layouts(param, [("grad", grad), ("acc", acc)])
    if param.size == 0:
        return
    if param.dtype == numpy.float32:
        _adagrad[float](flats[0], flats[1], flats[2], lr, eps, weight_decay)
    else:
        _adagrad[double](flats[0], flats[1], flats[2], lr, eps, weight_decay)


# --------------------------------------------------------------------- adam
cdef inline void _adam_run(floating* p, const floating* g, floating* m, floating* v,
                           Py_ssize_t n, floating b1, floating b2, floating lr_t,
                           floating eps_t, floating l2, floating keep) noexcept nogil:
    # adam_row.h's kernel, the one the sparse kernels and the AutoRec step use;
    # it flushes denormals itself. It writes g only when asked to zero it.
    if floating is float:
        fastnn_adam_f32(n, p, <float*>g, m, v, b1, b2, lr_t, eps_t, l2, keep, 0)
    else:
        fastnn_adam_f64(n, p, <double*>g, m, v, b1, b2, lr_t, eps_t, l2, keep, 0)


cdef void _adam(floating[::1] p, const floating[::1] g, floating[::1] m, floating[::1] v,
                double b1, double b2, double lr_t, double eps_t, double l2, double keep):
    cdef Py_ssize_t n = p.shape[0], nb = (n + BLOCK - 1) // BLOCK, b, s
    with nogil:
        if n < PARALLEL_MIN:
            _adam_run(&p[0], &g[0], &m[0], &v[0], n, <floating>b1, <floating>b2,
                      <floating>lr_t, <floating>eps_t, <floating>l2, <floating>keep)
        else:
            for b in prange(nb, schedule="static", num_threads=fastnn_threads(n * FASTNN_ELEMENT_COST)):
                s = b * BLOCK
                _adam_run(&p[s], &g[s], &m[s], &v[s], min(<Py_ssize_t>BLOCK, n - s),
                          <floating>b1, <floating>b2, <floating>lr_t, <floating>eps_t,
                          <floating>l2, <floating>keep)


def adam_update(param, grad, m, v, double lr, double beta1, double beta2, double eps,
                step, double weight_decay=0.0, bint decoupled=False):
    """One Adam step in place (``step`` counts from 1). ``decoupled`` gives AdamW
    (``param -= lr * weight_decay * param`` apart from the adaptive step);
    otherwise ``weight_decay`` is L2 added to the gradient."""
    if step < 1:
        raise ValueError(f"adam_update: step counts from 1, got {step}")
    flats = _check_layouts(param, [("grad", grad), ("m", m), ("v", v)])
    if param.size == 0:
        return
    # The bias corrections folded into the step size and epsilon, as
    # fastnn._C.sparse._adam_coefficients folds them (the same kernel, the same bits):
    # lr/c1 * m / (sqrt(v/c2) + eps) == lr*sqrt(c2)/c1 * m / (sqrt(v) + eps*sqrt(c2)).
    c1 = 1.0 - beta1 ** step
    c2 = 1.0 - beta2 ** step
    lr_t = lr * sqrt(c2) / c1
    eps_t = eps * sqrt(c2)
    l2 = 0.0 if decoupled else weight_decay
    keep = 1.0 - (lr * weight_decay if decoupled else 0.0)
    if param.dtype == numpy.float32:
        _adam[float](flats[0], flats[1], flats[2], flats[3], beta1, beta2, lr_t, eps_t, l2,
                     keep)
    else:
        _adam[double](flats[0], flats[1], flats[2], flats[3], beta1, beta2, lr_t, eps_t, l2,
                      keep)
