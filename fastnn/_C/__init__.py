"""Compiled Cython kernels (built from csrc/*.pyx). Nothing else lives here.

The kernels' OpenMP threads should sleep, not spin, while they wait at the end
of a parallel loop: on shared cores a spinning thread takes the CPU from the
thread doing the work (an AutoRec epoch ran 10x slower that way). libgomp reads
the policy when it loads, which is when the first kernel module is imported,
right after this file runs; an explicit OMP_WAIT_POLICY from the user wins.
"""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

_here = os.path.dirname(os.path.abspath(__file__))
if not any(name.endswith((".so", ".pyd")) for name in os.listdir(_here)):
    raise ImportError(
        f"fastnn's compiled kernels are missing from {_here}. This is usually the source "
        "checkout shadowing the installed package: run Python from another directory (or use "
        "the `fastnn` command), or build the kernels in place with `pip install -e .` or "
        "`python setup.py build_ext --inplace`.")
