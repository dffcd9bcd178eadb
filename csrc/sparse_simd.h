/* Inner loops of the sparse kernels in csrc/sparse.pyx, written in C so that
 * GCC can build each in several instruction-set versions and pick one when the
 * module loads (target_clones): a portable build still runs AVX2/AVX-512 code
 * on CPUs that have it. Only loops over one contiguous row live here; loops
 * over rows, threading and validation stay in the .pyx.
 *
 * Results do not depend on the vector width: dot products keep 16 partial sums
 * (lane j takes elements i = j mod 16, in order) and add them in a fixed tree,
 * so every ISA version does the same operations in the same order (up to FMA
 * contraction, which is fixed per machine). Same input, same output, every run.
 */
#ifndef FASTNN_SPARSE_SIMD_H
#define FASTNN_SPARSE_SIMD_H

#include <math.h>
#include <stddef.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* Threads for a parallel loop of `work` multiply-adds (or element updates):
 * one below the threshold, where waking and joining a team costs more than it
 * saves (and, on shared cores, a preempted team member stalls the whole loop). */
#define FASTNN_PARALLEL_MIN_WORK 262144.0
static int fastnn_threads_for(double work)
{
#ifdef _OPENMP
    return work < FASTNN_PARALLEL_MIN_WORK ? 1 : omp_get_max_threads();
#else
    (void)work;
    return 1;
#endif
}

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) \
    && __GNUC__ >= 12
#define FASTNN_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define FASTNN_CLONES
#endif

/* sqrt needs no errno here (its argument is a sum of squares); without errno
 * handling the compiler can vectorise it. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC optimize("no-math-errno")
#endif

enum { FASTNN_LINEAR = 0, FASTNN_SIGMOID = 1, FASTNN_RELU = 2, FASTNN_TANH = 3 };

#define FASTNN_DEFINE(T, S, EXP, TANH)                                                   \
FASTNN_CLONES static void fastnn_axpy_##S(ptrdiff_t n, T a, const T *restrict x,       \
                                          T *restrict y)                                \
{                                                                                       \
    for (ptrdiff_t i = 0; i < n; i++) y[i] += a * x[i];                                 \
}                                                                                       \
                                                                                        \
FASTNN_CLONES static T fastnn_dot_##S(ptrdiff_t n, const T *restrict x,                 \
                                      const T *restrict y)                              \
{                                                                                       \
    T acc[16] = {0};                                                                    \
    ptrdiff_t i = 0;                                                                    \
    for (; i + 16 <= n; i += 16)                                                        \
        for (int j = 0; j < 16; j++) acc[j] += x[i + j] * y[i + j];                     \
    for (int j = 0; i < n; i++, j++) acc[j] += x[i] * y[i];                             \
    for (int w = 8; w > 0; w >>= 1)                                                     \
        for (int j = 0; j < w; j++) acc[j] += acc[j + w];                               \
    return acc[0];                                                                      \
}                                                                                       \
                                                                                        \
static void fastnn_bias_act_##S(ptrdiff_t n, T *restrict y, const T *restrict bias,     \
                                int act)                                                \
{                                                                                       \
    if (bias)                                                                           \
        for (ptrdiff_t i = 0; i < n; i++) y[i] += bias[i];                              \
    if (act == FASTNN_SIGMOID) {                                                        \
        for (ptrdiff_t i = 0; i < n; i++) {                                             \
            /* exp of a non-positive number only: no overflow */                        \
            T e = EXP(y[i] >= 0 ? -y[i] : y[i]);                                        \
            y[i] = y[i] >= 0 ? (T)1 / ((T)1 + e) : e / ((T)1 + e);                      \
        }                                                                               \
    } else if (act == FASTNN_RELU) {                                                    \
        for (ptrdiff_t i = 0; i < n; i++) y[i] = y[i] > 0 ? y[i] : 0;                   \
    } else if (act == FASTNN_TANH) {                                                    \
        for (ptrdiff_t i = 0; i < n; i++) y[i] = TANH(y[i]);                            \
    }                                                                                   \
}                                                                                       \
                                                                                        \
FASTNN_CLONES static void fastnn_adam_##S(ptrdiff_t n, T *restrict p, T *restrict g,    \
                                          T *restrict m, T *restrict v, T b1, T b2,     \
                                          T lr, T eps, T wd, T keep, int zero_grad)     \
{                                                                                       \
    const T ob1 = (T)1 - b1, ob2 = (T)1 - b2;                                           \
    if (zero_grad) {                                                                    \
        for (ptrdiff_t i = 0; i < n; i++) {                                             \
            T gi = g[i] + wd * p[i];                                                    \
            T mi = b1 * m[i] + ob1 * gi, vi = b2 * v[i] + ob2 * gi * gi;                \
            m[i] = mi; v[i] = vi; g[i] = 0;                                             \
            p[i] = keep * p[i] - lr * mi / (sqrt##S(vi) + eps);                         \
        }                                                                               \
    } else {                                                                            \
        for (ptrdiff_t i = 0; i < n; i++) {                                             \
            T gi = g[i] + wd * p[i];                                                    \
            T mi = b1 * m[i] + ob1 * gi, vi = b2 * v[i] + ob2 * gi * gi;                \
            m[i] = mi; v[i] = vi;                                                       \
            p[i] = keep * p[i] - lr * mi / (sqrt##S(vi) + eps);                         \
        }                                                                               \
    }                                                                                   \
}

#define sqrtf32 sqrtf
#define sqrtf64 sqrt
FASTNN_DEFINE(float, f32, expf, tanhf)
FASTNN_DEFINE(double, f64, exp, tanh)

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif

#endif
