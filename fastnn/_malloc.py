"""glibc's allocator settings for fastnn's array sizes, applied once at import.

By default glibc hands every allocation above 128 KiB (a threshold it raises
only as such blocks are freed) to a fresh ``mmap``, and gives the top of the
heap back to the system once 2x that is free. A layer that allocates
sequence-sized arrays on every call (a recurrent layer's gates and states over
all steps, megabytes each) then faults in every page of them again on every
call: measured on the recurrent cells (bench/compare_rnn.py, one thread's CPU
time), that was a quarter of the LSTM's fwd+bwd. Raising both thresholds
keeps such blocks in the heap between calls, so they come back already mapped.

Nothing is changed when the process's owner chose otherwise (glibc's
``GLIBC_TUNABLES`` or ``MALLOC_MMAP_THRESHOLD_``/``MALLOC_TRIM_THRESHOLD_`` in
the environment), with ``FASTNN_MALLOPT=0``, or off glibc.
"""
import ctypes
import os
import platform

M_TRIM_THRESHOLD = -1   # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
#: Blocks up to this size come from the heap (glibc's ceiling for 64-bit: 32 MiB).
MMAP_THRESHOLD = 32 << 20
#: Free memory at the heap's top kept rather than returned to the system.
TRIM_THRESHOLD = 256 << 20

applied = False


def configure(environ=os.environ):
    """Set the thresholds unless told not to; True when they were set."""
    global applied
    if environ.get("FASTNN_MALLOPT", "1") == "0" or platform.system() != "Linux":
        return False
    if any(k in environ for k in ("GLIBC_TUNABLES", "MALLOC_MMAP_THRESHOLD_",
                                  "MALLOC_TRIM_THRESHOLD_")):
        return False
    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    # The trim threshold first: mallopt(M_MMAP_THRESHOLD) also stops glibc's own
    # adjustment of both.
    applied = bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)) and \
        bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    return applied
