/* Inner loops of the sparse kernels (csrc/sparse.pyx, csrc/autorec_step.pyx,
 * declared for Cython in sparse_rows.pxd), written in C so that
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
#ifndef FASTNN_SIMD_ROWS_H
#define FASTNN_SIMD_ROWS_H

#include <math.h>
#include <stddef.h>
#include "adam_row.h"
#include "fastnn_activations.h"
#include "fastnn_clones.h"
#include "fastnn_math.h"

/* The thread policy is common/threads.h's; the sparse kernels call it by
 * this name. */
#include "common/threads.h"
static int fastnn_threads_for(double work)
{
    return fastnn_threads(work);
}


#define FASTNN_DEFINE(T, S, SIGMOID, TANH)                                                 \
FASTNN_CLONES static void fastnn_axpy_##S(ptrdiff_t n, T a, const T *restrict x,       \
                                          T *restrict y)                                \
{                                                                                       \
    for (ptrdiff_t i = 0; i < n; i++) y[i] += a * x[i];                                 \
}                                                                                       \
                                                                                        \
/* y += a0*x0 + a1*x1 + a2*x2 + a3*x3, evaluated as four axpys in that order   \
 * (bitwise the same as four fastnn_axpy calls), with y loaded and stored once.  \
 * nx0..nx3: the rows of the next call, prefetched line by line meanwhile. */      \
FASTNN_CLONES static void fastnn_axpy4_##S(ptrdiff_t n, T a0, const T *restrict x0,    \
                                           T a1, const T *restrict x1, T a2,            \
                                           const T *restrict x2, T a3,                  \
                                           const T *restrict x3, T *restrict y,         \
                                           const T *nx0, const T *nx1, const T *nx2,    \
                                           const T *nx3)                                \
{                                                                                       \
    ptrdiff_t i = 0;                                                                    \
    for (; i + FASTNN_LINE_##S <= n; i += FASTNN_LINE_##S) {                            \
        __builtin_prefetch(nx0 + i); __builtin_prefetch(nx1 + i);                       \
        __builtin_prefetch(nx2 + i); __builtin_prefetch(nx3 + i);                       \
        for (int j = 0; j < FASTNN_LINE_##S; j++) {                                     \
            T t = y[i + j];                                                             \
            t += a0 * x0[i + j];                                                        \
            t += a1 * x1[i + j];                                                        \
            t += a2 * x2[i + j];                                                        \
            t += a3 * x3[i + j];                                                        \
            y[i + j] = t;                                                               \
        }                                                                               \
    }                                                                                   \
    for (; i < n; i++) {                                                                \
        T t = y[i];                                                                     \
        t += a0 * x0[i];                                                                \
        t += a1 * x1[i];                                                                \
        t += a2 * x2[i];                                                                \
        t += a3 * x3[i];                                                                \
        y[i] = t;                                                                       \
    }                                                                                   \
}                                                                                       \
                                                                                        \
/* Four dot products of x with y0..y3 sharing the loads of x; each result is         \
 * bitwise the same as fastnn_dot(n, x, yj). */                                      \
FASTNN_CLONES static void fastnn_dot4_##S(ptrdiff_t n, const T *restrict x,             \
                                          const T *restrict y0, const T *restrict y1,   \
                                          const T *restrict y2, const T *restrict y3,   \
                                          T *restrict out, const T *ny0, const T *ny1,  \
                                          const T *ny2, const T *ny3)                   \
{                                                                                       \
    T a0[16] = {0}, a1[16] = {0}, a2[16] = {0}, a3[16] = {0};                           \
    ptrdiff_t i = 0;                                                                    \
    for (; i + 16 <= n; i += 16) {                                                      \
        __builtin_prefetch(ny0 + i); __builtin_prefetch(ny1 + i);                       \
        __builtin_prefetch(ny2 + i); __builtin_prefetch(ny3 + i);                       \
        for (int j = 0; j < 16; j++) {                                                  \
            T xv = x[i + j];                                                            \
            a0[j] += xv * y0[i + j];                                                    \
            a1[j] += xv * y1[i + j];                                                    \
            a2[j] += xv * y2[i + j];                                                    \
            a3[j] += xv * y3[i + j];                                                    \
        }                                                                               \
    }                                                                                   \
    for (int j = 0; i < n; i++, j++) {                                                  \
        a0[j] += x[i] * y0[i];                                                          \
        a1[j] += x[i] * y1[i];                                                          \
        a2[j] += x[i] * y2[i];                                                          \
        a3[j] += x[i] * y3[i];                                                          \
    }                                                                                   \
    for (int w = 8; w > 0; w >>= 1)                                                     \
        for (int j = 0; j < w; j++) {                                                   \
            a0[j] += a0[j + w];                                                         \
            a1[j] += a1[j + w];                                                         \
            a2[j] += a2[j + w];                                                         \
            a3[j] += a3[j + w];                                                         \
        }                                                                               \
    out[0] = a0[0]; out[1] = a1[0]; out[2] = a2[0]; out[3] = a3[0];                     \
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
FASTNN_CLONES static void fastnn_bias_act_##S(ptrdiff_t n, T *restrict y,               \
                                              const T *restrict bias,                   \
                                int act)                                                \
{                                                                                       \
    if (bias)                                                                           \
        for (ptrdiff_t i = 0; i < n; i++) y[i] += bias[i];                              \
    if (act == FASTNN_SIGMOID) {                                                        \
        for (ptrdiff_t i = 0; i < n; i++) {                                             \
            y[i] = SIGMOID(y[i]);                                                       \
        }                                                                               \
    } else if (act == FASTNN_RELU) {                                                    \
        /* !(y <= 0): a NaN stays NaN, as NumPy's maximum(y, 0) (found by tests/fuzz) */ \
        for (ptrdiff_t i = 0; i < n; i++) y[i] = !(y[i] <= 0) ? y[i] : 0;               \
    } else if (act == FASTNN_TANH) {                                                    \
        for (ptrdiff_t i = 0; i < n; i++) y[i] = TANH(y[i]);                            \
    }                                                                                   \
}                                                                                       \
                                                                                        \
                                                                                        \
/* The decoder sweep's per-entry update for four entries of one output unit:  \
 * grad += g0*h0 + g1*h1 + g2*h2 + g3*h3 (bitwise fastnn_axpy4's sums) and       \
 * d_q += g_q * x for q = 0..3 (four distinct rows), in one pass, x loaded once. */ \
FASTNN_CLONES static void fastnn_grad_scatter4_##S(ptrdiff_t n, T g0, const T *restrict h0, \
                                                   T g1, const T *restrict h1, T g2,    \
                                                   const T *restrict h2, T g3,          \
                                                   const T *restrict h3,                \
                                                   T *restrict grad, const T *restrict x, \
                                                   T *restrict d0, T *restrict d1,      \
                                                   T *restrict d2, T *restrict d3)      \
{                                                                                       \
    for (ptrdiff_t i = 0; i < n; i++) {                                                 \
        T t = grad[i];                                                                  \
        t += g0 * h0[i];                                                                \
        t += g1 * h1[i];                                                                \
        t += g2 * h2[i];                                                                \
        t += g3 * h3[i];                                                                \
        grad[i] = t;                                                                    \
        T xi = x[i];                                                                    \
        d0[i] += g0 * xi;                                                               \
        d1[i] += g1 * xi;                                                               \
        d2[i] += g2 * xi;                                                               \
        d3[i] += g3 * xi;                                                               \
    }                                                                                   \
}                                                                                       \
                                                                                        \
/* dz = dy * f'(y) from the activation's output y (sigmoid: y(1-y), tanh: 1-y^2,     \
 * relu: y > 0), the same expressions as Ops.activation_backward. dz may be dy        \
 * (in place: element i reads dy[i] before it writes dz[i]), so neither is restrict. */\
FASTNN_CLONES static void fastnn_act_grad_##S(ptrdiff_t n, const T *restrict y,         \
                                              const T *dy, T *dz, int act)              \
{                                                                                       \
    if (act == FASTNN_SIGMOID)                                                          \
        for (ptrdiff_t i = 0; i < n; i++) dz[i] = dy[i] * y[i] * ((T)1 - y[i]);         \
    else if (act == FASTNN_TANH)                                                        \
        for (ptrdiff_t i = 0; i < n; i++) dz[i] = dy[i] * ((T)1 - y[i] * y[i]);         \
    else if (act == FASTNN_RELU)                                                        \
        for (ptrdiff_t i = 0; i < n; i++) dz[i] = y[i] > 0 ? dy[i] : (T)0;              \
    else                                                                                \
        for (ptrdiff_t i = 0; i < n; i++) dz[i] = dy[i];                                \
}                                                                                       \
                                                                                        \
/* acc += x, in double (one add per element: the order of a row-by-row sum). */         \
FASTNN_CLONES static void fastnn_acc_row_##S(ptrdiff_t n, const T *restrict x,          \
                                             double *restrict acc)                      \
{                                                                                       \
    for (ptrdiff_t i = 0; i < n; i++) acc[i] += (double)x[i];                           \
}

/* elements per 64-byte cache line */
#define FASTNN_LINE_f32 16
#define FASTNN_LINE_f64 8
FASTNN_DEFINE(float, f32, fastnn_sigmoid_f, tanhf)
FASTNN_DEFINE(double, f64, fastnn_sigmoid_d, tanh)

#endif
