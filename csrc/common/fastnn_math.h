/* Vectorizable float32 transcendentals for the activation kernels.
 *
 * glibc's scalar expf/tanhf/expm1f stop GCC from vectorizing a loop; these are
 * plain branch-free C (selects only) that it vectorizes at -O3 even for the
 * portable SSE2 baseline. Accuracy is a few ulp, ample for float32 training;
 * float64 kernels keep libm. Only what the kernels need lives here; nothing
 * else in csrc/ writes its own exp or sigmoid.
 */
#ifndef FASTNN_MATH_H
#define FASTNN_MATH_H
#include <math.h>

/* exp(x) for x <= 0 (every kernel call site: softmax, sigmoid, elu, tanh), the
 * one float32 exp of the kernels. Cephes expf: x = n ln2 + r, |r| <= ln2/2,
 * degree-6 polynomial, times 2^n; within 2 ulp of expf. Below -87.33654 (where
 * exp(x) < FLT_MIN) the result is 0, never a denormal: a saturated sigmoid unit
 * holding one would make every product with it a denormal, several times
 * slower on x86. NaN propagates.
 *
 * Written so that GCC vectorises it both in the portable SSE2 build (the dense
 * loops) and in the AVX2/AVX-512 target clones of simd_rows.h: n = floor(...)
 * by the add-and-subtract-1.5*2^23 rounding and one select. floorf does not
 * vectorise without SSE4.1, and a float -> int -> float truncation does not
 * vectorise in the clones (GCC 12). */
static inline float fastnn_exp_nonpos_f(float x) {
    float xc = x < -87.33654f ? -87.33654f : x;
    float fx = xc * 1.44269504088896341f + 0.5f;
    /* rint(fx), exact for |fx| < 2^22 in round-to-nearest; then floor. */
    float t = (fx + 12582912.0f) - 12582912.0f;
    float n = t > fx ? t - 1.0f : t;
    float r = xc - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    union { int i; float f; } scale;
    scale.i = ((int)n + 127) << 23;
    return x < -87.33654f ? 0.0f : p * scale.f;
}

/* sigmoid(x) = 1 / (1 + exp(-x)), the one implementation of the kernels (dense
 * loops and sparse epilogues): exp of a non-positive number only, so no
 * overflow for any x; selects, not branches, so loops over it vectorise.
 * e / (1 + e) for x < 0, not e * (1 / (1 + e)): one rounding fewer keeps the
 * float32 result within 2 ulp (tests/recsys/test_sparse_kernels.py). */
static inline float fastnn_sigmoid_f(float x) {
    float e = fastnn_exp_nonpos_f(x >= 0 ? -x : x);
    return x >= 0 ? 1.0f / (1.0f + e) : e / (1.0f + e);
}

static inline double fastnn_sigmoid_d(double x) {
    double e = exp(x >= 0 ? -x : x);
    return x >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
}

/* expm1(x) for x <= 0: a short series near 0 where exp(x) - 1 would cancel. */
static inline float fastnn_expm1_nonpos_f(float x) {
    float series = x * (1.0f + x * (0.5f + x * (1.0f / 6.0f + x * (1.0f / 24.0f))));
    float direct = fastnn_exp_nonpos_f(x) - 1.0f;
    return x > -0.01f ? series : direct;
}

/* tanh(x) = sign(x) (1 - e) / (1 + e), e = exp(-2|x|); odd series near 0. */
static inline float fastnn_tanh_f(float x) {
    float a = x < 0 ? -x : x;
    float e = fastnn_exp_nonpos_f(-2.0f * a);
    float t = (1.0f - e) / (1.0f + e);
    float x2 = x * x;
    float series = x * (1.0f + x2 * (-1.0f / 3.0f + x2 * (2.0f / 15.0f + x2 * (-17.0f / 315.0f))));
    t = x < 0 ? -t : t;
    return a < 0.0625f ? series : t;
}

#endif
