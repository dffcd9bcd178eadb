# Shared argument validation for every kernel module (inline, so no runtime
# cimport is needed between fastnn._C modules), and the activation name table.
# Everything here runs with the GIL, before a kernel enters nogil code; nothing
# here computes. The dense kernels raise TypeError for a wrong type or dtype;
# the sparse ones (check_array and below) ValueError, as they always have.
import numpy

from activation_codes cimport (ACT_LINEAR, ACT_SIGMOID, ACT_TANH, ACT_RELU, ACT_LEAKY_RELU,
                              ACT_ELU, ACT_SOFTMAX)

cdef enum:
    BLAS_INT_MAX = 2147483647


cdef inline object check_float(str what, object a, object like=None, str like_name=None):
    """``a`` must be a float32/float64 ndarray (the dtype of ``like``, the argument
    called ``like_name``, if given)."""
    if not isinstance(a, numpy.ndarray):
        raise TypeError(f"{what} must be a numpy.ndarray, got {type(a).__name__}")
    if a.dtype != numpy.float32 and a.dtype != numpy.float64:
        raise TypeError(f"{what} has dtype {a.dtype}; the kernels take float32 or float64")
    if like is not None and a.dtype != like.dtype:
        raise TypeError(f"{what} has dtype {a.dtype} but "
                        + (f"{like_name} has" if like_name else "the other operands are")
                        + f" {like.dtype}; they must match")
    return a


cdef inline object check_ndim(str what, object a, int ndim):
    if a.ndim != ndim:
        raise ValueError(f"{what} must be {ndim}-D, got shape {a.shape}")
    return a


cdef inline object check_c_contiguous(str what, object a, bint writeable=False):
    if not a.flags.c_contiguous:
        raise ValueError(f"{what} must be C-contiguous (use numpy.ascontiguousarray)")
    if writeable and not a.flags.writeable:
        raise ValueError(f"{what} is read-only but is written to")
    return a


cdef inline object check_same_shape(str what, object a, str other, object b):
    if a.shape != b.shape:
        raise ValueError(f"{what} has shape {a.shape} but {other} has shape {b.shape}")
    return a


cdef inline object as_row_major(object a, bint* transposed):
    """A C-contiguous view of ``a`` or of ``a.T`` (flagging ``transposed``), so
    F-contiguous operands reach BLAS without a copy; anything else is copied."""
    if a.flags.c_contiguous:
        transposed[0] = False
        return a
    if a.flags.f_contiguous:
        transposed[0] = True
        return a.T
    transposed[0] = False
    return numpy.ascontiguousarray(a)


cdef inline dict activation_codes():
    """The one table of activation names (Ops') to their codes, the enum of
    fastnn_activations.h. Each module exposes it as ACTIVATION_CODES."""
    return {"linear": ACT_LINEAR, "sigmoid": ACT_SIGMOID, "tanh": ACT_TANH, "relu": ACT_RELU,
            "leaky_relu": ACT_LEAKY_RELU, "elu": ACT_ELU, "softmax": ACT_SOFTMAX}


cdef inline int activation_code(object name, tuple supported=None) except -1:
    """The code of an activation name, among ``supported`` names if given."""
    codes = activation_codes()
    names = tuple(codes) if supported is None else supported
    if name not in names:
        raise ValueError(f"unknown activation {name!r}; expected one of {names}")
    return codes[name]


cdef inline object check_out(str what, object out, object shape, object like, str like_name=None):
    """A fresh array of ``shape`` when ``out`` is None, else ``out`` checked to be a
    writeable C-contiguous array of that shape and ``like``'s dtype."""
    if out is None:
        return numpy.empty(shape, dtype=like.dtype)
    check_float(what, out, like, like_name)
    if out.shape != tuple(shape):
        raise ValueError(f"{what} has shape {out.shape} but the result has shape {tuple(shape)}")
    check_c_contiguous(what, out, writeable=True)
    return out



# ----------------------------------------------------- the sparse kernels'
cdef inline object check_array(object x, str name, int ndim):
    """``x`` must be a C-contiguous ndarray of ``ndim`` dimensions (ValueError)."""
    if not isinstance(x, numpy.ndarray):
        raise ValueError(f"{name} must be a numpy.ndarray, got {type(x).__name__}")
    if x.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {x.shape}")
    if not x.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (use numpy.ascontiguousarray)")
    return x


cdef inline object check_float_dtype(dict arrays):
    """The one float dtype shared by ``arrays`` (a dict name -> array or None)."""
    dtype = None
    for name, a in arrays.items():
        if a is None:
            continue
        if a.dtype != numpy.float32 and a.dtype != numpy.float64:
            raise ValueError(f"{name} has dtype {a.dtype}; expected float32 or float64")
        if dtype is None:
            dtype = a.dtype
        elif a.dtype != dtype:
            names = [k for k, v in arrays.items() if v is not None]
            raise ValueError(f"{name} has dtype {a.dtype} but {names[0]} has {dtype}; "
                             f"{', '.join(names)} must share one float dtype")
    return dtype


cdef inline int check_writable(object x, str name) except -1:
    if not x.flags.writeable:
        raise ValueError(f"{name} is read-only; the kernel writes into it")
    return 0


cdef inline int check_shape(object x, str name, tuple shape) except -1:
    if x.shape != shape:
        raise ValueError(f"{name} has shape {x.shape}; expected {shape}")
    return 0


cdef inline int check_disjoint(str out_name, object out, dict inputs, tuple same_ok=()) except -1:
    """Refuse an output whose memory overlaps an input's (a kernel reading an
    input while it writes the output would read what it already overwrote).
    ``same_ok`` names the inputs the output may *be* (the identical array, as
    an elementwise kernel computing in place documents); a partial overlap
    with them is still refused."""
    if out is None:
        return 0
    for name, a in inputs.items():
        if a is None or a is out and name in same_ok:
            continue
        if (a is out or (a.__array_interface__["data"][0] == out.__array_interface__["data"][0]
                         and a.shape == out.shape and a.strides == out.strides)):
            if name in same_ok:
                continue
            raise ValueError(f"{out_name} is the same memory as {name}; pass a separate "
                             f"array for {out_name}"
                             + (f" (or {out_name}={name} itself)" if same_ok else ""))
        if numpy.shares_memory(out, a, max_work=10**6):
            raise ValueError(f"{out_name} overlaps {name} in memory; pass a separate array "
                             f"for {out_name}")
    return 0


cdef inline int check_all_disjoint(dict outs, dict inputs) except -1:
    """Each written array in ``outs`` (name -> array or None) must share no
    memory with any input nor with another written array: an in-place update
    reading state another one is writing gives garbage."""
    names = [k for k, v in outs.items() if v is not None]
    for i, name in enumerate(names):
        others = dict(inputs)
        for other in names[i + 1:]:
            others[other] = outs[other]
        check_disjoint(name, outs[name], others)
    return 0


cdef inline Py_ssize_t check_count(str name, object value, Py_ssize_t top=-1) except -1:
    """A non-negative integer argument (a size or count; at most ``top`` when
    given): ValueError/TypeError naming it instead of an OverflowError or a
    negative size that would index outside the arrays."""
    import operator
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}") from None
    if v < 0:
        raise ValueError(f"{name} is {v}; expected a non-negative integer")
    if top >= 0 and v > top:
        raise ValueError(f"{name} is {v}; expected at most {top}")
    if v > 2**62:
        raise ValueError(f"{name} is {v}; too large")
    return v
