/* Flush-to-zero and denormals-are-zero for the duration of a kernel, on the
 * calling thread only, restored afterwards (x86: the MXCSR FTZ and DAZ bits;
 * elsewhere a no-op, so results there keep IEEE denormals).
 *
 * Why: optimizer state that decays while its gradient is 0 (Adam's m and v,
 * RMSprop's mean square, a momentum velocity: the weights of a dead ReLU
 * unit) passes through the denormal range for many steps (Adam's m, times 0.9
 * a step, for about 150), and x86 arithmetic on denormals is several times
 * slower. With the flags set such values become 0. That moves a parameter by
 * at most lr * 1.2e-38 / eps: nothing at float32 resolution for any weight
 * above about 1e-24. The flags are per thread: a parallel loop sets them in
 * every thread's part. MXCSR is not touched outside these calls, so NumPy
 * code in the same thread keeps its IEEE behaviour. */
#ifndef FASTNN_FPENV_H
#define FASTNN_FPENV_H

#if defined(__x86_64__) || defined(_M_X64) || defined(__SSE2__)
#include <xmmintrin.h>
#define FASTNN_MXCSR_FTZ_DAZ 0x8040u
static inline unsigned fastnn_flush_denormals_begin(void)
{
    unsigned saved = _mm_getcsr();
    _mm_setcsr(saved | FASTNN_MXCSR_FTZ_DAZ);
    return saved;
}
static inline void fastnn_flush_denormals_end(unsigned saved) { _mm_setcsr(saved); }
#else
static inline unsigned fastnn_flush_denormals_begin(void) { return 0; }
static inline void fastnn_flush_denormals_end(unsigned saved) { (void)saved; }
#endif

#endif
