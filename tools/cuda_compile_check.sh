#!/usr/bin/env bash
# Compile fastnn's CUDA code with nvcc for sm_90 (H100/H200), without a GPU:
# every csrc/cuda/*.cu (the RawModule sources CuPy's NVRTC compiles at first
# use) and the ElementwiseKernel bodies of fastnn/backend/cupy_ops.py (written
# out by tools/cuda_elementwise_source.py as CuPy would wrap them), to PTX,
# warnings as errors. A check that the code compiles, not that it is right:
# tests/gpu checks that on a GPU. Exit status 0 when everything compiled.
# Usage: tools/cuda_compile_check.sh [NVCC]   (default: nvcc on PATH)
set -euo pipefail
cd "$(dirname "$0")/.."
NVCC="${1:-nvcc}"
ARCH="${FASTNN_CUDA_ARCH:-sm_90}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python tools/cuda_elementwise_source.py "$tmp/elementwise.cu"
status=0
for src in csrc/cuda/*.cu "$tmp/elementwise.cu"; do
    # NVRTC sees no system headers: -nostdinc-like discipline is the
    # sources' own (they #include nothing); nvcc adds its CUDA headers only.
    if "$NVCC" --ptx -arch="$ARCH" -Werror all-warnings -o "$tmp/out.ptx" "$src"; then
        echo "ok   $src ($(grep -c '^.visible .entry\|^.weak .func\|^.func' "$tmp/out.ptx" || true) PTX entries/functions)"
    else
        echo "FAIL $src"
        status=1
    fi
done
exit $status
