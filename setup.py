"""Build the Cython kernels in csrc/ into extension modules under fastnn._C.

Every ``csrc/<name>.pyx`` becomes ``fastnn._C.<name>``. The build is portable by
default; ``FASTNN_NATIVE=1`` adds ``-march=native`` for the local CPU;
``FASTNN_SANITIZE=1`` builds with AddressSanitizer and UndefinedBehaviorSanitizer
(a test build: see tools/sanitize.sh for how it is run). ``FASTNN_ONLY=conv,pool``
builds only the named modules (a developer's shortcut: a change to a shared header
otherwise rebuilds every module).
OpenMP is used when the compiler accepts ``-fopenmp``; without it the kernels
still build and run single-threaded (``FASTNN_NO_OPENMP=1`` forces that).
"""
import glob
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile

import numpy
from setuptools import Extension, setup


def _compiler_accepts(flag):
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    cc = cc.split()
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write("#include <omp.h>\nint main(void){return omp_get_max_threads() < 0;}\n")
        try:
            r = subprocess.run(cc + [flag, src, "-o", os.path.join(tmp, "probe")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except OSError:
            return False
        return r.returncode == 0


def extensions():
    from Cython.Build import cythonize

    use_openmp = (os.environ.get("FASTNN_NO_OPENMP") != "1"
                  and sys.platform != "win32" and _compiler_accepts("-fopenmp"))
    # -fno-math-errno lets sqrt vectorize and -fno-trapping-math lets GCC turn the
    # selects in the activation loops into vector blends; no kernel reads errno or
    # FP exception flags.
    compile_args = ["-O3", "-ffp-contract=fast", "-fno-math-errno",
                    "-fno-trapping-math"] if sys.platform != "win32" else ["/O2"]
    link_args = []
    if os.environ.get("FASTNN_NATIVE") == "1":
        compile_args.append("-march=native")
    if os.environ.get("FASTNN_SANITIZE") == "1":
        # Memory errors and undefined behaviour in the kernels abort with a report
        # (-fno-sanitize-recover) instead of printing and going on; -O1 keeps the
        # reports' stack traces readable. Python itself is not instrumented, so
        # libasan must be preloaded (tools/sanitize.sh).
        compile_args += ["-O1", "-g", "-fsanitize=address,undefined", "-fno-omit-frame-pointer",
                         "-fno-sanitize-recover=undefined"]
        link_args += ["-fsanitize=address,undefined"]
    if use_openmp:
        compile_args.append("-fopenmp")
        link_args.append("-fopenmp")
    common = os.path.join("csrc", "common")
    # Every shared header and .pxd, so a change to one rebuilds the modules (Cython
    # does not see the headers that a .pxd's cdef extern blocks name).
    shared = sorted(glob.glob(os.path.join(common, "*")))
    # A module's own C row loops (csrc/norm_rows.h, depthwise_rows.h, ...) too: a
    # change to one rebuilds every module, which is rare and cheap beside a stale .so.
    shared += sorted(glob.glob(os.path.join("csrc", "*.h")))
    exts = []
    only = {n.strip() for n in os.environ.get("FASTNN_ONLY", "").split(",") if n.strip()}
    for pyx in sorted(glob.glob(os.path.join("csrc", "*.pyx"))):
        name = os.path.splitext(os.path.basename(pyx))[0]
        if only and name not in only:
            continue
        exts.append(Extension(
            "fastnn._C." + name, [pyx],
            include_dirs=[numpy.get_include(), "csrc", common],
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
            extra_compile_args=compile_args, extra_link_args=link_args, depends=shared,
        ))
    # csrc/common holds what the kernel files share: .pxd for Cython, .h for C.
    return cythonize(exts, language_level=3, include_path=[common], compiler_directives={
        "boundscheck": False, "wraparound": False, "cdivision": True,
        "initializedcheck": False, "embedsignature": True,
    })



# The GPU backend's CUDA sources (csrc/cuda/*.cu), which CuPy compiles at
# first use, travel inside the package as fastnn/_C/cuda/, where
# fastnn/backend/cupy_ops.py looks first (a checkout is read from csrc/cuda).
from setuptools.command.build_py import build_py  # noqa: E402


class build_py_with_cuda(build_py):
    def run(self):
        super().run()
        target = os.path.join(self.build_lib, "fastnn", "_C", "cuda")
        self.mkpath(target)
        for src in sorted(glob.glob(os.path.join("csrc", "cuda", "*.cu"))):
            self.copy_file(src, os.path.join(target, os.path.basename(src)))


setup(ext_modules=extensions(), cmdclass={"build_py": build_py_with_cuda})
