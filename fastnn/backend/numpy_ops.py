"""NumpyOps: the CPU backend. Hot methods go to the Cython kernels in fastnn._C;
anything a kernel does not handle falls back to the plain NumPy ``Ops``."""
from .ops import Ops


class NumpyOps(Ops):
    name = "numpy"
