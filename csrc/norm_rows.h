/* The row loops of csrc/norm.pyx (batch normalization over a (rows, features)
 * block, features contiguous), built in several instruction-set versions by
 * FASTNN_CLONES: the float -> double conversions of the float64 sums are most
 * of the work, and a portable build's SSE2 converts two at a time. They
 * compute only: norm.pyx checks every argument and splits rows into the
 * fixed blocks that make sums independent of the thread count. */
#ifndef FASTNN_NORM_ROWS_H
#define FASTNN_NORM_ROWS_H

#include <stddef.h>
#include "fastnn_clones.h"

#define FASTNN_BN_ROWS(T, S)                                                                  \
/* s1 = sum(x - shift), s2 = sum((x - shift)^2) over `rows` rows, per feature. */            \
FASTNN_CLONES static void fastnn_bn_stats_##S(ptrdiff_t rows, ptrdiff_t n, const T *x,       \
                                              const T *shift, double *restrict s1,          \
                                              double *restrict s2)                          \
{                                                                                           \
    for (ptrdiff_t j = 0; j < n; j++) { s1[j] = 0; s2[j] = 0; }                             \
    for (ptrdiff_t i = 0; i < rows; i++) {                                                  \
        const T *r = x + i * n;                                                             \
        for (ptrdiff_t j = 0; j < n; j++) {                                                 \
            double d = (double)r[j] - (double)shift[j];                                     \
            s1[j] += d;                                                                     \
            s2[j] += d * d;                                                                 \
        }                                                                                   \
    }                                                                                       \
}                                                                                           \
/* y = (x - mean) * scale + beta: the subtraction first, so a large mean does not            \
 * cost the result its low bits. */                                                         \
FASTNN_CLONES static void fastnn_bn_normalize_##S(ptrdiff_t rows, ptrdiff_t n,               \
                                                  const T *restrict x, T *restrict y,       \
                                                  const T *restrict mean,                   \
                                                  const T *restrict scale,                  \
                                                  const T *restrict beta)                   \
{                                                                                           \
    for (ptrdiff_t i = 0; i < rows; i++) {                                                  \
        const T *restrict r = x + i * n;                                                    \
        T *restrict o = y + i * n;                                                          \
        for (ptrdiff_t j = 0; j < n; j++)                                                   \
            o[j] = (r[j] - mean[j]) * scale[j] + beta[j];                                   \
    }                                                                                       \
}                                                                                           \
/* sdy = sum(dy), sdyx = sum(dy * (x - mean)) over `rows` rows, per feature. */              \
FASTNN_CLONES static void fastnn_bn_grad_sums_##S(ptrdiff_t rows, ptrdiff_t n,               \
                                                  const T *restrict x, const T *restrict dy,\
                                                  const T *restrict mean,                   \
                                                  double *restrict sdy,                     \
                                                  double *restrict sdyx)                    \
{                                                                                           \
    for (ptrdiff_t j = 0; j < n; j++) { sdy[j] = 0; sdyx[j] = 0; }                          \
    for (ptrdiff_t i = 0; i < rows; i++) {                                                  \
        const T *restrict r = x + i * n;                                                    \
        const T *restrict d = dy + i * n;                                                   \
        for (ptrdiff_t j = 0; j < n; j++) {                                                 \
            double g = (double)d[j];                                                        \
            sdy[j] += g;                                                                    \
            sdyx[j] += g * ((double)r[j] - (double)mean[j]);                                \
        }                                                                                   \
    }                                                                                       \
}                                                                                           \
/* dx = k1 * dy + k2 * (x - mean) + k3 (norm.pyx derives k1..k3 per feature). */            \
FASTNN_CLONES static void fastnn_bn_dx_##S(ptrdiff_t rows, ptrdiff_t n, const T *restrict x, \
                                           const T *restrict dy, T *restrict dx,            \
                                           const T *restrict mean, const T *restrict k1,    \
                                           const T *restrict k2, const T *restrict k3)      \
{                                                                                           \
    for (ptrdiff_t i = 0; i < rows; i++) {                                                  \
        const T *restrict r = x + i * n;                                                    \
        const T *restrict d = dy + i * n;                                                   \
        T *restrict o = dx + i * n;                                                         \
        for (ptrdiff_t j = 0; j < n; j++)                                                   \
            o[j] = k1[j] * d[j] + k2[j] * (r[j] - mean[j]) + k3[j];                         \
    }                                                                                       \
}

FASTNN_BN_ROWS(float, f32)
FASTNN_BN_ROWS(double, f64)

#endif
