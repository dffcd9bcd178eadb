"""Compiled Cython kernels (built from csrc/*.pyx). Nothing else lives here.

How many threads they use is decided by fastnn/threads.py and
csrc/common/threads.h, not by the OpenMP runtime's environment variables
(another library may have loaded that runtime first).
"""
import os

_here = os.path.dirname(os.path.abspath(__file__))
if not any(name.endswith((".so", ".pyd")) for name in os.listdir(_here)):
    raise ImportError(
        f"fastnn's compiled kernels are missing from {_here}. This is usually the source "
        "checkout shadowing the installed package: run Python from another directory (or use "
        "the `fastnn` command), or build the kernels in place with `pip install -e .` or "
        "`python setup.py build_ext --inplace`.")
