"""The strict test backend: NumPy arrays behind a wall, as a GPU's are.

``StrictOps`` (registered as ``"strict"``) computes exactly as the reference
``Ops`` does, but on ``StrictArray`` objects that wrap a NumPy array and refuse
every implicit conversion to the host: ``__array__``, ``__float__``,
``__int__``, ``__index__``, ``__bool__``, ``.item()``, ``.tolist()`` raise, and
so does combining one with a NumPy array (``strict + ndarray``), as a CuPy
array would. The only ways across are the backend's documented transfers,
``ops.asarray(host)`` (host to device) and ``ops.to_numpy(array)`` (device to
host), and both are counted in ``ops.transfers``. A model that trains, saves
and predicts on this backend therefore does not touch host NumPy behind the
backend's back, and the counts show how often it syncs; that is how the CuPy
backend is known to be complete before a GPU runs it.

Random draws come from fastnn's seeded generator (``fastnn.set_seed``) and are
wrapped without counting, standing in for a generator that lives on the
device; so a strict run and a NumPy run after the same seed agree bit for bit.

The sparse products (``spmm``, ``spmm_t``, ``column_sums``, ``sddmm``,
``masked_sq_error``, ``autorec_adam_step``, ``csr_take_rows``) are this fake
device's own kernels, as a CuPy backend supplies CUDA ones: a sparse operand's
structure (``indptr``/``indices``) is host NumPy (a GPU backend uploads it),
its values and every dense operand are StrictArrays, and the kernel is the
reference ``Ops`` math run on the wrapped arrays (not a host transfer, not
counted), so results equal the ``"reference"`` backend's bit for bit. Host
values in a sparse operand are refused, as anywhere else.

Test-only: every operation pays a Python wrapper. Holds no layer logic.
"""
import collections

import numpy

from .ops import CSR, Ops

# ndarray methods and attributes that would hand data to the host implicitly.
_HOST_METHODS = frozenset({"item", "tolist", "tobytes", "tofile", "dump", "dumps",
                           "__array_interface__", "__array_struct__", "ctypes", "data"})


class HostTransferError(TypeError):
    """An implicit conversion of a device array to host data."""


def _refuse(what):
    raise HostTransferError(
        f"{what} of a fastnn.backend.strict.StrictArray would copy device data to the host "
        "implicitly; use ops.to_numpy(array) (the backend's documented transfer) instead")


def _mixing_error(other):
    return TypeError(
        f"cannot combine a {type(other).__module__}.{type(other).__name__} (host NumPy data, "
        "backend 'numpy'/'reference') with a fastnn.backend.strict.StrictArray (backend "
        "'strict'); move one of them: ops.asarray(host_array) or ops.to_numpy(device_array)")


def _unwrap(x):
    """The NumPy data inside ``x`` (recursing into lists and tuples); host
    arrays are refused, scalars and dtypes pass."""
    if type(x) is StrictArray:
        return x._a
    if isinstance(x, numpy.ndarray):
        raise _mixing_error(x)
    if isinstance(x, (list, tuple)):
        return type(x)(_unwrap(e) for e in x)
    return x


def _wrap(x):
    """Results back behind the wall: arrays and NumPy scalars become StrictArrays
    (a reduction on a device gives a 0-d device array, not a host number)."""
    if isinstance(x, numpy.ndarray):
        return StrictArray(x)
    if isinstance(x, numpy.generic):
        return StrictArray(numpy.asarray(x))
    if isinstance(x, tuple):
        return tuple(_wrap(e) for e in x)
    if isinstance(x, list):
        return [_wrap(e) for e in x]
    return x


def _call(fn, args, kwargs):
    return _wrap(fn(*[_unwrap(a) for a in args], **{k: _unwrap(v) for k, v in kwargs.items()}))


def _binary(name, reflected=False):
    op = getattr(numpy.ndarray, name)

    def method(self, other):
        if isinstance(other, numpy.ndarray):
            raise _mixing_error(other)
        if type(other) is StrictArray:
            other = other._a
        elif not isinstance(other, (int, float, complex, bool, numpy.generic)):
            return NotImplemented
        return _wrap(op(self._a, other))
    method.__name__ = name
    return method


def _inplace(name):
    op = getattr(numpy.ndarray, name)

    def method(self, other):
        if isinstance(other, numpy.ndarray):
            raise _mixing_error(other)
        op(self._a, other._a if type(other) is StrictArray else other)
        return self
    method.__name__ = name
    return method


class StrictArray:
    """A NumPy array that behaves like a device array: arithmetic, indexing and
    ndarray methods work and return StrictArrays; implicit host conversion raises."""

    __slots__ = ("_a",)
    __array_ufunc__ = None   # NumPy operators defer to ours, which refuse host arrays
    __hash__ = None  # type: ignore[assignment]  # unhashable, as numpy arrays are

    def __init__(self, array):
        self._a = array

    # ---------------------------------------------------------- host walls
    def __array__(self, *args, **kwargs):
        _refuse("numpy.asarray()")

    def __float__(self):
        _refuse("float()")

    def __int__(self):
        _refuse("int()")

    def __index__(self):
        _refuse("use as an index")

    def __complex__(self):
        _refuse("complex()")

    def __bool__(self):
        _refuse("bool() (an if/while test)")

    def __reduce__(self):
        _refuse("pickling")

    def __repr__(self):  # never prints data: that would be a transfer
        return f"StrictArray(shape={self._a.shape}, dtype={self._a.dtype})"

    __str__ = __repr__

    # ------------------------------------------------------------ metadata
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    nbytes = property(lambda self: self._a.nbytes)
    itemsize = property(lambda self: self._a.itemsize)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: self._a.flags)
    T = property(lambda self: StrictArray(self._a.T))

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        return (StrictArray(numpy.asarray(row)) for row in self._a)

    def __getattr__(self, name):
        if name in _HOST_METHODS:
            _refuse(f".{name}")
        attr = getattr(self._a, name)
        if callable(attr):
            return lambda *args, **kwargs: _call(attr, args, kwargs)
        return _wrap(attr)

    def __copy__(self):
        return StrictArray(self._a.copy())

    def __deepcopy__(self, memo):
        return StrictArray(self._a.copy())

    # ------------------------------------------------------------ indexing
    def __getitem__(self, key):
        return _wrap(self._a[_unwrap(key)])

    def __setitem__(self, key, value):
        self._a[_unwrap(key)] = _unwrap(value)

    # ---------------------------------------------------------- arithmetic
    def __neg__(self):
        return StrictArray(-self._a)

    def __pos__(self):
        return StrictArray(+self._a)

    def __abs__(self):
        return StrictArray(abs(self._a))

    def __invert__(self):
        return StrictArray(~self._a)


for _name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul",
              "and", "or", "xor", "lt", "le", "gt", "ge", "eq", "ne"):
    setattr(StrictArray, f"__{_name}__", _binary(f"__{_name}__"))
    if _name not in ("lt", "le", "gt", "ge", "eq", "ne"):
        setattr(StrictArray, f"__r{_name}__", _binary(f"__r{_name}__"))
        setattr(StrictArray, f"__i{_name}__", _inplace(f"__i{_name}__"))


class _StrictNamespace:
    """``ops.xp`` of the strict backend: NumPy's functions over StrictArrays.

    Types and constants (``xp.float32``, ``xp.int64``, ``xp.inf``) are NumPy's.
    ``asarray``/``array``/``ascontiguousarray`` of host data is a host-to-device
    transfer and is counted as one; every other function refuses host arrays.
    NumPy's global ``random`` is not offered: draws go through the backend.
    """

    __name__ = "fastnn.backend.strict"
    ndarray = StrictArray

    def __init__(self, ops):
        self._ops = ops

    def _to_device(self, fn):
        def convert(x, *args, **kwargs):
            if type(x) is not StrictArray and _holds_host_data(x):
                self._ops._count("to_device")
                return StrictArray(numpy.array(fn(x, *args, **kwargs), copy=True))
            return _call(fn, (x,) + args, kwargs)
        return convert

    def __getattr__(self, name):
        if name == "random":
            raise AttributeError("the strict backend offers no xp.random: draw through the "
                                 "backend (ops.random_uniform, ops.random_normal, "
                                 "ops.permutation), which owns the generator")
        attr = getattr(numpy, name)
        if isinstance(attr, type) or not callable(attr):
            return attr
        if name in ("asarray", "array", "ascontiguousarray", "asanyarray"):
            return self._to_device(attr)
        return lambda *args, **kwargs: _call(attr, args, kwargs)


def _holds_host_data(x):
    """True for NumPy arrays and Python sequences (data that lives on the host);
    false for scalars, which every device API takes by value."""
    if isinstance(x, numpy.ndarray):
        return True
    if isinstance(x, (list, tuple)):
        return any(_holds_host_data(e) or isinstance(e, (int, float, bool, numpy.generic))
                   for e in x)
    return False


def _device_view(A):
    """A CSR operand of the strict backend as the reference math takes it: its
    host structure with the NumPy array inside its StrictArray values (host
    values are refused: they would be an implicit upload)."""
    return CSR(A.indptr, A.indices, _unwrap(A.data), A.shape)


def _scalar(x):
    """A reduction's result as a 0-d device array (a GPU kernel's loss stays there)."""
    return StrictArray(numpy.asarray(x, dtype=numpy.float64))


# The strict backend's sparse "kernels": the reference math on the wrapped arrays.
_REFERENCE = Ops()


class StrictOps(Ops):
    """The reference ``Ops`` on ``StrictArray``s, counting host transfers."""

    name = "strict"
    is_host = False
    array_type = StrictArray

    def __init__(self):
        self.xp = _StrictNamespace(self)
        self.transfers = collections.Counter()

    def _count(self, direction):
        self.transfers[direction] += 1

    def reset_transfers(self):
        """Zero ``transfers`` (keys ``"to_host"`` and ``"to_device"``)."""
        self.transfers.clear()

    def asarray(self, x, dtype=None):
        if type(x) is StrictArray:
            return x if dtype is None or x.dtype == dtype else x.astype(dtype)
        self._count("to_device")
        return StrictArray(numpy.array(x, dtype=dtype, copy=True))

    def to_numpy(self, x):
        if type(x) is not StrictArray:
            return numpy.asarray(x)
        self._count("to_host")
        return x._a.copy()

    def is_native(self, x):
        return type(x) is StrictArray

    # The generator stands in for one on the device: draws are not transfers.
    def random_uniform(self, shape, dtype="float32"):
        from ..random import get_rng
        return StrictArray(get_rng().random(shape, dtype=numpy.dtype(dtype).type))

    def random_normal(self, shape, dtype="float32"):
        from ..random import get_rng
        return StrictArray(get_rng().standard_normal(shape, dtype=numpy.dtype(dtype).type))

    def permutation(self, n):
        from ..random import get_rng
        return StrictArray(get_rng().permutation(n))

    def embedding_backward(self, indices, dy, dtable):
        # A scatter-add on the device (the reference's add.at on the wrapped arrays).
        _REFERENCE.embedding_backward(_unwrap(indices), _unwrap(dy), _unwrap(dtable))

    def _erf(self, x):
        # gelu's erf: the device's own special function, as cupyx.scipy.special's.
        return _wrap(_REFERENCE._erf(_unwrap(x)))

    # ------------------------------------------- sparse products ("device kernels")
    # The reference math on the wrapped arrays: not a transfer, not counted.
    def csr_take_rows(self, A, rows):
        out = _REFERENCE.csr_take_rows(_device_view(A), rows)
        out.data = StrictArray(out.data)
        return out

    def spmm(self, A, B, bias=None, activation="linear"):
        return _wrap(_REFERENCE.spmm(_device_view(A), _unwrap(B), _unwrap(bias), activation))

    def spmm_t(self, A, G, data=None, out=None):
        r = _REFERENCE.spmm_t(_device_view(A), _unwrap(G), _unwrap(data), _unwrap(out))
        return out if out is not None else _wrap(r)

    def column_sums(self, A, vals, out=None):
        r = _REFERENCE.column_sums(_device_view(A), _unwrap(vals), _unwrap(out))
        return out if out is not None else _wrap(r)

    def sddmm(self, A, H, Vt, c=None):
        return _wrap(_REFERENCE.sddmm(_device_view(A), _unwrap(H), _unwrap(Vt), _unwrap(c)))

    def masked_sq_error(self, pred_vals, target_vals, weights=None):
        loss, grad = _REFERENCE.masked_sq_error(_unwrap(pred_vals), _unwrap(target_vals),
                                                _unwrap(weights))
        return _scalar(loss), _wrap(grad)

    def autorec_adam_step(self, X, W, b, Vt, c, adam_state, lr, beta1, beta2, eps, step,
                          lam_scale, activation="sigmoid", input_values=None):
        # Parameters and moments are updated in place through their wrapped arrays.
        state = {name: _unwrap(tuple(mv)) for name, mv in adam_state.items()}
        data_loss, reg = _REFERENCE.autorec_adam_step(
            _device_view(X), _unwrap(W), _unwrap(b), _unwrap(Vt), _unwrap(c), state, lr, beta1,
            beta2, eps, step, lam_scale, activation, _unwrap(input_values))
        return _scalar(data_loss), _scalar(reg)

