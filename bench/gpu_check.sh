#!/usr/bin/env bash
# The GPU check of issue #18, in one script for a GPU machine without network
# (CuPy, Cython, SciPy, pytest and PyTorch with CUDA installed there):
#   1. builds fastnn in place (the Cython kernels: the CPU side of the parity tests),
#   2. the nvcc compile check of the CUDA code, when nvcc is there,
#   3. the gpu-marked tests (tests/gpu: every CupyOps method against NumPy
#      references, models trained on the GPU against the CPU step by step),
#   4. the GPU benchmarks against PyTorch CUDA (bench/test_bench_gpu.py),
# each with a time limit, all under ten minutes. Logs go to OUTDIR:
# env.txt (GPU, driver, CuPy, PyTorch), build.log, nvcc.log, gpu_tests.log
# (+ gpu_tests.xml), bench.log, bench.json (the ratios) and summary.txt.
# Exit status: 0 when the build, the tests and the benchmarks all passed.
#
#   bash bench/gpu_check.sh OUTDIR          (with the run tool: bash bench/gpu_check.sh $OUT)
#
# On a machine without a GPU it still runs: the tests and benchmarks skip,
# each saying why, and the summary says so (FASTNN_SKIP_BUILD=1 skips step 1
# in a checkout already built).
set -u -o pipefail
OUT="${1:?usage: bash bench/gpu_check.sh OUTDIR}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export FASTNN_BENCH_EPOCHS="${FASTNN_BENCH_EPOCHS:-3}"
start=$(date +%s)
summary="$OUT/summary.txt"
: > "$summary"
note() { echo "$*" | tee -a "$summary"; }

{
    date -u
    git log -1 --oneline 2>/dev/null || true
    nvidia-smi 2>&1 || echo "nvidia-smi: not found"
    python - <<'PY'
import platform, sys
print("python", sys.version.split()[0], platform.machine())
for name in ("numpy", "scipy", "Cython", "cupy", "torch"):
    try:
        mod = __import__(name)
        print(name, getattr(mod, "__version__", "?"))
    except Exception as e:
        print(name, "unavailable:", type(e).__name__, e)
try:
    import cupy
    print("cupy CUDA runtime", cupy.cuda.runtime.runtimeGetVersion(),
          "driver", cupy.cuda.runtime.driverGetVersion(),
          "device", cupy.cuda.runtime.getDeviceProperties(0)["name"].decode())
except Exception as e:
    print("cupy device: unavailable:", type(e).__name__, e)
try:
    import torch
    print("torch CUDA", torch.version.cuda, "available", torch.cuda.is_available(),
          torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
except Exception as e:
    print("torch CUDA: unavailable:", type(e).__name__, e)
PY
    uptime
} > "$OUT/env.txt" 2>&1
note "device: $(grep -m1 '^cupy CUDA runtime\|^cupy device' "$OUT/env.txt")"

status=0
if [ "${FASTNN_SKIP_BUILD:-0}" = 1 ]; then  # a checkout already built (a trial run here)
    note "build: skipped (FASTNN_SKIP_BUILD=1)"
elif timeout 150 python setup.py build_ext --inplace -j "$(nproc 2>/dev/null || echo 4)" \
        > "$OUT/build.log" 2>&1; then
    note "build: ok ($(( $(date +%s) - start )) s)"
else
    note "build: FAILED (rc $?, see build.log)"; tail -20 "$OUT/build.log"
    exit 1
fi

if command -v nvcc > /dev/null; then
    if timeout 40 bash tools/cuda_compile_check.sh > "$OUT/nvcc.log" 2>&1; then
        note "nvcc compile check: ok"
    else
        note "nvcc compile check: FAILED (see nvcc.log)"; status=1
    fi
else
    note "nvcc compile check: skipped (no nvcc; CuPy compiles with NVRTC at first use)"
fi

t0=$(date +%s)
timeout 250 python -m pytest tests -m gpu -q -p no:cacheprovider -rfEs \
    --junitxml="$OUT/gpu_tests.xml" > "$OUT/gpu_tests.log" 2>&1
rc=$?
note "gpu tests: rc $rc, $(tail -1 "$OUT/gpu_tests.log") ($(( $(date +%s) - t0 )) s)"
[ $rc -eq 0 ] || status=1
grep -E '^(FAILED|ERROR)' "$OUT/gpu_tests.log" | head -40 | tee -a "$summary"

t0=$(date +%s)
FASTNN_GPU_BENCH_JSON="$OUT/bench.json" timeout 150 python -m pytest bench/test_bench_gpu.py \
    -q -s -p no:cacheprovider -rfEs > "$OUT/bench.log" 2>&1
rc=$?
note "gpu benchmarks: rc $rc, $(tail -1 "$OUT/bench.log") ($(( $(date +%s) - t0 )) s)"
[ $rc -eq 0 ] || status=1
grep '^\[gpu bench\]' "$OUT/bench.log" | tee -a "$summary"
note "total: $(( $(date +%s) - start )) s, exit status $status"
exit $status
