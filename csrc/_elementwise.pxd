# Activation math over contiguous runs of memory, shared (inline) by
# activations.pyx and dense.pyx. One function per direction with the switch
# outside the inner loop, so each loop is simple enough to vectorize.
# Derivatives come from the activation's output y, as in fastnn.backend.Ops.
# Callers validate and own parallelism; this only computes.
from cython cimport floating
from libc.math cimport exp, expf, tanh, tanhf, expm1, expm1f

cdef enum:
    ACT_LINEAR = 0
    ACT_SIGMOID = 1
    ACT_TANH = 2
    ACT_RELU = 3
    ACT_LEAKY_RELU = 4
    ACT_ELU = 5
    ACT_SOFTMAX = 6


cdef inline floating _exp(floating v) noexcept nogil:
    if floating is float:
        return expf(v)
    else:
        return exp(v)


cdef inline floating _sigmoid(floating v) noexcept nogil:
    # Stable for large |v|: exp of a non-positive number only.
    cdef floating e
    if v >= 0:
        e = _exp(-v)
        return 1 / (1 + e)
    e = _exp(v)
    return e / (1 + e)


cdef inline void softmax_row(const floating* x, floating* y, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t j
    cdef floating mx = x[0]
    cdef double total = 0
    cdef floating scale
    for j in range(1, n):
        if x[j] > mx:
            mx = x[j]
    for j in range(n):
        y[j] = _exp(x[j] - mx)
        total += y[j]
    scale = <floating>(1.0 / total)
    for j in range(n):
        y[j] *= scale


cdef inline void softmax_backward_row(const floating* y, const floating* dy, floating* dx,
                                      Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t j
    cdef double dot = 0
    cdef floating d
    for j in range(n):
        dot += dy[j] * y[j]
    d = <floating>dot
    for j in range(n):
        dx[j] = y[j] * (dy[j] - d)


cdef inline void act_forward_run(int code, const floating* x, floating* y, Py_ssize_t n,
                                 floating alpha) noexcept nogil:
    """``y[:n] = act(x[:n])``; ``x`` may equal ``y``. Softmax treats the run as one row."""
    cdef Py_ssize_t j
    cdef floating v
    if code == ACT_LINEAR:
        if x != y:
            for j in range(n):
                y[j] = x[j]
    elif code == ACT_RELU:
        for j in range(n):
            v = x[j]
            y[j] = 0 if v < 0 else v
    elif code == ACT_LEAKY_RELU:
        for j in range(n):
            v = x[j]
            y[j] = v if v > 0 else v * alpha
    elif code == ACT_SIGMOID:
        for j in range(n):
            y[j] = _sigmoid(x[j])
    elif code == ACT_TANH:
        for j in range(n):
            if floating is float:
                y[j] = tanhf(x[j])
            else:
                y[j] = tanh(x[j])
    elif code == ACT_ELU:
        for j in range(n):
            v = x[j]
            if v <= 0:
                if floating is float:
                    v = alpha * expm1f(v)
                else:
                    v = alpha * expm1(v)
            y[j] = v
    elif code == ACT_SOFTMAX:
        softmax_row(x, y, n)


cdef inline void act_backward_run(int code, const floating* y, const floating* dy,
                                  floating* dx, Py_ssize_t n, floating alpha) noexcept nogil:
    """``dx[:n] = dy * act'(y)`` from the output ``y``; ``dx`` may equal ``dy``."""
    cdef Py_ssize_t j
    cdef floating v
    if code == ACT_LINEAR:
        if dx != dy:
            for j in range(n):
                dx[j] = dy[j]
    elif code == ACT_RELU:
        for j in range(n):
            dx[j] = dy[j] if y[j] > 0 else 0
    elif code == ACT_LEAKY_RELU:
        for j in range(n):
            dx[j] = dy[j] if y[j] > 0 else dy[j] * alpha
    elif code == ACT_SIGMOID:
        for j in range(n):
            v = y[j]
            dx[j] = dy[j] * v * (1 - v)
    elif code == ACT_TANH:
        for j in range(n):
            v = y[j]
            dx[j] = dy[j] * (1 - v * v)
    elif code == ACT_ELU:
        for j in range(n):
            v = y[j]
            dx[j] = dy[j] if v > 0 else dy[j] * (v + alpha)
    elif code == ACT_SOFTMAX:
        softmax_backward_row(y, dy, dx, n)
