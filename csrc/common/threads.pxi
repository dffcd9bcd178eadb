# Included by every kernel module (one line after its cimports): declares the
# thread policy of common/threads.h and points this module's copy of it at the
# process's one policy state, owned by fastnn/threads.py.
cdef extern from "common/threads.h" nogil:
    int fastnn_threads(double work)
    double FASTNN_ELEMENT_COST
cdef extern from "common/threads.h":
    int fastnn_threads_attach(void* state, long long size)


def _attach_thread_policy(size_t address, long long size):
    """Called by fastnn.threads with its state's address (not for users)."""
    if fastnn_threads_attach(<void*>address, size) != 0:
        raise ImportError(f"{__name__} was built against another layout of the thread "
                          "policy (csrc/common/threads.h) than fastnn/threads.py; rebuild it")


import fastnn.threads as _fastnn_thread_policy
_fastnn_thread_policy._attach(_attach_thread_policy)


def _threads_for(double work):
    """The threads this module's kernels give a loop of ``work`` now (tests
    check every module decides alike)."""
    return fastnn_threads(work)
