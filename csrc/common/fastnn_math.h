/* Vectorizable float32 transcendentals for the activation kernels.
 *
 * glibc's scalar expf/tanhf/expm1f stop GCC from vectorizing a loop; these are
 * plain branch-free C (selects only) that it vectorizes at -O3 even for the
 * portable SSE2 baseline. Accuracy is a few ulp, ample for float32 training;
 * float64 kernels keep libm. Only what the kernels need lives here.
 */
#ifndef FASTNN_MATH_H
#define FASTNN_MATH_H
#include <string.h>

/* exp(x) for x <= 0 (every kernel call site: softmax, sigmoid, elu, tanh).
 * Cephes expf: x = n ln2 + r, |r| <= ln2/2, degree-6 polynomial, times 2^n. Below
 * -87.33 the result is flushed to 0; NaN propagates. */
static inline float fastnn_exp_nonpos_f(float x) {
    float xc = x < -87.33654f ? -87.33654f : x;
    float fx = xc * 1.44269504088896341f + 0.5f;
    int i = (int)fx;                      /* truncation; fx <= 0.5 so fix to floor */
    float n = (float)i;
    int fix = n > fx;
    n -= fix ? 1.0f : 0.0f;
    i -= fix;
    float r = xc - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    int bits = (i + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    float res = p * scale;
    res = x < -87.33654f ? 0.0f : res;
    return x != x ? x : res;
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
