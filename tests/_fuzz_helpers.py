"""What the kernel fuzz files tests/fuzz/test_fuzz_cnn.py and
tests/fuzz/test_fuzz_rnn.py share: the loop references of tests/kernels, loaded
by path (each caller gets its own copy of the module, free to patch it), the
float64 cast, and the hostile variants allowed for an operand that the others'
dtype is checked against. The fuzzer's machinery is tests/fuzz/conftest.py.

Imported by name: tests/conftest.py puts this folder on ``sys.path``."""
import importlib.util
import os

import numpy

_HERE = os.path.dirname(os.path.abspath(__file__))

# The operand that norm.pyx and recurrent.pyx check the others' dtype against
# (x, xproj, R) is not given another dtype alone: their message then names the
# other operand ("dy has dtype float32 but the other operands are float64"), a
# wording left as is in those kernels (being changed on other branches now).
NO_LONE_DTYPE = ("C", "F", "strided", "readonly", "list", "ndim")


def load_kernel_test(name):
    """A tests/kernels module, for its loop reference (by path: tests/ is no package)."""
    path = os.path.join(_HERE, "kernels", name + ".py")
    spec = importlib.util.spec_from_file_location("fuzz_ref_" + name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def f64(a):
    return numpy.asarray(a, numpy.float64)
