// The sparse AutoRec path's own CUDA kernel for fastnn.backend.cupy_ops.
//
// Compiled by CuPy's RawModule (NVRTC) the first time the "cupy" backend runs
// an SDDMM, so importing fastnn needs neither a GPU nor a compiler. NVRTC has
// no standard headers: nothing is #included. tools/cuda_compile_check.sh
// compiles this file with nvcc for sm_90 as a syntax/type check without a GPU.
//
// Everything else on the GPU is CuPy's (cuBLAS, cuSPARSE through
// cupyx.scipy.sparse) or a one-line ElementwiseKernel in cupy_ops.py; only
// the SDDMM has no CuPy equivalent that avoids an nnz x k temporary.

// SDDMM: out[e] = dot(H[rows[e], :], Vt[cols[e], :]) (+ c[cols[e]]) for each
// stored entry e of a CSR pattern (rows[] expanded from indptr on the host).
// One warp per entry: its 32 lanes stride over the k columns of two
// contiguous rows (coalesced reads), then a shuffle reduction. The sum is
// kept in double so float32 results are the dot product rounded once, as
// the NumPy reference (which sums in float32 pairwise) is to float32
// rounding. A whole warp shares e, so the early return never splits one
// and the full-mask shuffle is safe.
#define FASTNN_SDDMM(NAME, T)                                                      \
extern "C" __global__ void NAME(const int* __restrict__ rows,                    \
                                const int* __restrict__ cols,                    \
                                const T* __restrict__ H,                         \
                                const T* __restrict__ Vt,                        \
                                const T* __restrict__ c, int has_c,              \
                                T* __restrict__ out, long long nnz, int k)       \
{                                                                                  \
    long long e = ((long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5;        \
    int lane = threadIdx.x & 31;                                                   \
    if (e >= nnz) return;                                                          \
    const T* h = H + (long long)rows[e] * k;                                       \
    const T* v = Vt + (long long)cols[e] * k;                                      \
    double acc = 0.0;                                                              \
    for (int j = lane; j < k; j += 32) acc += (double)h[j] * (double)v[j];        \
    for (int off = 16; off > 0; off >>= 1)                                         \
        acc += __shfl_down_sync(0xffffffffu, acc, off);                            \
    if (lane == 0) {                                                               \
        if (has_c) acc += (double)c[cols[e]];                                      \
        out[e] = (T)acc;                                                           \
    }                                                                              \
}

FASTNN_SDDMM(fastnn_sddmm_f32, float)
FASTNN_SDDMM(fastnn_sddmm_f64, double)
