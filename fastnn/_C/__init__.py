"""Compiled Cython kernels (built from csrc/*.pyx). Nothing else lives here."""
