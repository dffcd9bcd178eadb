"""Compiled Cython kernels (built from csrc/*.pyx). Nothing else lives here.

How the kernels' OpenMP threads wait between parallel loops: they sleep
(OMP_WAIT_POLICY=PASSIVE) after a short spin (GOMP_SPINCOUNT=1000, libgomp's
own figure for oversubscribed threads: some tens of microseconds).

- Not the runtimes' default of spinning for milliseconds: on shared cores a
  spinning thread takes the CPU from the thread doing the work (an AutoRec
  epoch ran 10x slower that way).
- Not sleeping at once: waking a sleeping thread costs 15-50 microseconds
  (against about 1 for a spinning one), and a training step runs several short
  parallel loops back to back. On a 2-vCPU VM a real MovieLens-100K AutoRec
  epoch took 0.036 s sleeping at once and 0.033 s with this spin, median of 101
  interleaved rounds (`python bench/compare_autorec.py --size ml100k --real
  --interleave --epochs 101 --ways step@GOMP_SPINCOUNT=0,step,torch`). Ad hoc
  (a throwaway driver of the same processes, not committed): beside a CPU hog,
  0.049 s and 0.050 s, where 10,000 spins took 0.063 s; and an MLP epoch,
  whose BLAS threads share the cores with these, took 2.23 s against 2.14 s
  without the spin (16 interleaved rounds, within the noise).

libgomp reads these when it loads, which is when the first kernel module is
imported, right after this file runs. An explicit OMP_WAIT_POLICY from the
user wins, and then nothing is set; so does an explicit GOMP_SPINCOUNT.
"""
import os

if "OMP_WAIT_POLICY" not in os.environ:
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    os.environ.setdefault("GOMP_SPINCOUNT", "1000")

_here = os.path.dirname(os.path.abspath(__file__))
if not any(name.endswith((".so", ".pyd")) for name in os.listdir(_here)):
    raise ImportError(
        f"fastnn's compiled kernels are missing from {_here}. This is usually the source "
        "checkout shadowing the installed package: run Python from another directory (or use "
        "the `fastnn` command), or build the kernels in place with `pip install -e .` or "
        "`python setup.py build_ext --inplace`.")
