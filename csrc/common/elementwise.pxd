# Activation math over contiguous runs of memory, shared (inline) by
# activations.pyx and dense.pyx. One function per direction with the switch
# outside the inner loop, so each loop is simple enough to vectorize.
# Derivatives come from the activation's output y, as in fastnn.backend.Ops.
# Callers validate and own parallelism; this only computes.
from cython cimport floating
from libc.math cimport exp, tanh, expm1

cdef extern from "fastnn_math.h" nogil:
    float fastnn_exp_nonpos_f(float x)
    float fastnn_sigmoid_f(float x)
    double fastnn_sigmoid_d(double x)
    float fastnn_expm1_nonpos_f(float x)
    float fastnn_tanh_f(float x)

from activation_codes cimport (ACT_LINEAR, ACT_SIGMOID, ACT_TANH, ACT_RELU, ACT_LEAKY_RELU,
                              ACT_ELU, ACT_SOFTMAX)


cdef inline floating _exp_nonpos(floating v) noexcept nogil:
    """exp(v) for v <= 0: vectorizable for float32, libm for float64."""
    if floating is float:
        return fastnn_exp_nonpos_f(v)
    else:
        return exp(v)


cdef inline floating _sigmoid(floating v) noexcept nogil:
    """fastnn_math.h's sigmoid, the one the sparse epilogues use too."""
    if floating is float:
        return fastnn_sigmoid_f(v)
    else:
        return fastnn_sigmoid_d(v)


cdef inline double sum_f64(const floating* a, Py_ssize_t n) noexcept nogil:
    """Sum in float64 over 8 independent accumulators (fixed order: deterministic),
    so the loop is not one long chain of dependent additions."""
    cdef double acc[8]
    cdef Py_ssize_t j, k, n8 = n - n % 8
    for k in range(8):
        acc[k] = 0
    for j in range(0, n8, 8):
        for k in range(8):
            acc[k] += a[j + k]
    for j in range(n8, n):
        acc[0] += a[j]
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))


cdef inline double dot_f64(const floating* a, const floating* b, Py_ssize_t n) noexcept nogil:
    """Like sum_f64, for sum(a * b)."""
    cdef double acc[8]
    cdef Py_ssize_t j, k, n8 = n - n % 8
    for k in range(8):
        acc[k] = 0
    for j in range(0, n8, 8):
        for k in range(8):
            acc[k] += <double>a[j + k] * b[j + k]
    for j in range(n8, n):
        acc[0] += <double>a[j] * b[j]
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))


cdef inline void softmax_row(const floating* x, floating* y, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t j
    cdef floating mx = x[0]
    cdef double total = 0
    cdef floating scale
    for j in range(1, n):
        if x[j] > mx:
            mx = x[j]
    # exp and the (float64, serial) sum in separate loops so the exp loop vectorizes.
    for j in range(n):
        y[j] = _exp_nonpos(x[j] - mx)
    total = sum_f64(y, n)
    scale = <floating>(1.0 / total)
    for j in range(n):
        y[j] *= scale


cdef inline void softmax_backward_row(const floating* y, const floating* dy, floating* dx,
                                      Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t j
    cdef double dot = 0
    cdef floating d
    dot = dot_f64(dy, y, n)
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
                y[j] = fastnn_tanh_f(x[j])
            else:
                y[j] = tanh(x[j])
    elif code == ACT_ELU:
        for j in range(n):
            v = x[j]
            if floating is float:
                y[j] = v if v > 0 else alpha * fastnn_expm1_nonpos_f(v)
            else:
                y[j] = v if v > 0 else alpha * expm1(v)
    elif code == ACT_SOFTMAX:
        softmax_row(x, y, n)


cdef inline void act_backward_run(int code, const floating* y, const floating* dy,
                                  floating* dx, Py_ssize_t n, floating alpha) noexcept nogil:
    """``dx[:n] = dy * act'(y)`` from the output ``y``; ``dx`` may equal ``dy``.
    Every branch reads dy[j] whatever y[j] is: a read under the condition kept GCC
    from turning the select into vector blends (in a prange body, built for the
    baseline ISA, the ReLU case ran scalar with a mispredicted branch per element:
    21 % of a 5x5 convolution's step)."""
    cdef Py_ssize_t j
    cdef floating v, g
    if code == ACT_LINEAR:
        if dx != dy:
            for j in range(n):
                dx[j] = dy[j]
    elif code == ACT_RELU:
        for j in range(n):
            g = dy[j]
            dx[j] = g if y[j] > 0 else 0
    elif code == ACT_LEAKY_RELU:
        for j in range(n):
            g = dy[j]
            dx[j] = g if y[j] > 0 else g * alpha
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
            g = dy[j]
            dx[j] = g if v > 0 else g * (v + alpha)
    elif code == ACT_SOFTMAX:
        softmax_backward_row(y, dy, dx, n)
