"""Compiled Cython kernels (built from csrc/*.pyx). Nothing else lives here.

The kernels' OpenMP threads should sleep, not spin, while they wait at the end
of a parallel loop: on shared cores a spinning thread takes the CPU from the
thread doing the work (an AutoRec epoch ran 10x slower that way). libgomp reads
the policy when it loads, which is when the first kernel module is imported,
right after this file runs; an explicit OMP_WAIT_POLICY from the user wins.
"""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
