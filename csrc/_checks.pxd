# Shared argument validation for the kernels (inline, so no runtime cimport is
# needed between fastnn._C modules). Everything here runs with the GIL, before a
# kernel enters nogil code; nothing here computes.
import numpy

cdef enum:
    BLAS_INT_MAX = 2147483647


cdef inline object check_float(str what, object a, object like=None):
    """``a`` must be a float32/float64 ndarray (the dtype of ``like`` if given)."""
    if not isinstance(a, numpy.ndarray):
        raise TypeError(f"{what} must be a numpy.ndarray, got {type(a).__name__}")
    if a.dtype != numpy.float32 and a.dtype != numpy.float64:
        raise TypeError(f"{what} has dtype {a.dtype}; the kernels take float32 or float64")
    if like is not None and a.dtype != like.dtype:
        raise TypeError(f"{what} has dtype {a.dtype} but the other operands are {like.dtype}")
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


cdef inline int activation_code(object name) except -1:
    """The _elementwise.pxd code of an activation name (same names as Ops)."""
    codes = {"linear": 0, "sigmoid": 1, "tanh": 2, "relu": 3, "leaky_relu": 4, "elu": 5,
             "softmax": 6}
    if name not in codes:
        raise ValueError(f"unknown activation {name!r}; expected one of {tuple(codes)}")
    return codes[name]


cdef inline object check_out(str what, object out, object shape, object like):
    """A fresh array of ``shape`` when ``out`` is None, else ``out`` checked to be a
    writeable C-contiguous array of that shape and ``like``'s dtype."""
    if out is None:
        return numpy.empty(shape, dtype=like.dtype)
    check_float(what, out, like)
    if out.shape != tuple(shape):
        raise ValueError(f"{what} has shape {out.shape} but the result has shape {tuple(shape)}")
    check_c_contiguous(what, out, writeable=True)
    return out
