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
}                                                                                           \
/* dx = k1 * dy with fixed (inference) statistics: x is not read, so an inf x does           \
 * not turn dx into NaN through 0 * (x - mean). */                                          \
FASTNN_CLONES static void fastnn_bn_dx_fixed_##S(ptrdiff_t rows, ptrdiff_t n,                \
                                                 const T *restrict dy, T *restrict dx,      \
                                                 const T *restrict k1)                      \
{                                                                                           \
    for (ptrdiff_t i = 0; i < rows; i++) {                                                  \
        const T *restrict d = dy + i * n;                                                   \
        T *restrict o = dx + i * n;                                                         \
        for (ptrdiff_t j = 0; j < n; j++)                                                   \
            o[j] = k1[j] * d[j];                                                            \
    }                                                                                       \
}

/* The same four loops over a (P, n, Q) block whose feature axis is not last (an NCHW
 * batch is (N, C, H*W)): feature j's values are P runs of Q contiguous elements. A
 * run's sums go through FASTNN_BN_LANES float64 lanes (element q into lane q % L, the
 * tail after the lanes' total), so they vectorise without reassociating anything:
 * the order is the source's, whatever the instruction set or thread count. */
#define FASTNN_BN_LANES 8

#define FASTNN_BN_STRIDED(T, S)                                                               \
FASTNN_CLONES static void fastnn_bn_stats_strided_##S(ptrdiff_t P, ptrdiff_t n, ptrdiff_t Q, \
                                                      const T *x, const T *shift,           \
                                                      double *restrict s1,                  \
                                                      double *restrict s2)                  \
{                                                                                           \
    for (ptrdiff_t j = 0; j < n; j++) { s1[j] = 0; s2[j] = 0; }                             \
    for (ptrdiff_t p = 0; p < P; p++)                                                       \
        for (ptrdiff_t j = 0; j < n; j++) {                                                 \
            const T *restrict r = x + (p * n + j) * Q;                                      \
            double sh = (double)shift[j], a1[FASTNN_BN_LANES] = {0},                        \
                   a2[FASTNN_BN_LANES] = {0}, t1 = 0, t2 = 0;                               \
            ptrdiff_t q = 0;                                                                \
            for (; q + FASTNN_BN_LANES <= Q; q += FASTNN_BN_LANES)                          \
                for (int l = 0; l < FASTNN_BN_LANES; l++) {                                 \
                    double d = (double)r[q + l] - sh;                                       \
                    a1[l] += d;                                                             \
                    a2[l] += d * d;                                                         \
                }                                                                           \
            for (int l = 0; l < FASTNN_BN_LANES; l++) { t1 += a1[l]; t2 += a2[l]; }         \
            for (; q < Q; q++) {                                                            \
                double d = (double)r[q] - sh;                                               \
                t1 += d;                                                                    \
                t2 += d * d;                                                                \
            }                                                                               \
            s1[j] += t1;                                                                    \
            s2[j] += t2;                                                                    \
        }                                                                                   \
}                                                                                           \
FASTNN_CLONES static void fastnn_bn_normalize_strided_##S(ptrdiff_t P, ptrdiff_t n,          \
                                                          ptrdiff_t Q, const T *restrict x, \
                                                          T *restrict y,                    \
                                                          const T *restrict mean,           \
                                                          const T *restrict scale,          \
                                                          const T *restrict beta)           \
{                                                                                           \
    for (ptrdiff_t p = 0; p < P; p++)                                                       \
        for (ptrdiff_t j = 0; j < n; j++) {                                                 \
            const T *restrict r = x + (p * n + j) * Q;                                      \
            T *restrict o = y + (p * n + j) * Q;                                            \
            T m = mean[j], sc = scale[j], b = beta[j];                                      \
            for (ptrdiff_t q = 0; q < Q; q++) o[q] = (r[q] - m) * sc + b;                   \
        }                                                                                   \
}                                                                                           \
FASTNN_CLONES static void fastnn_bn_grad_sums_strided_##S(ptrdiff_t P, ptrdiff_t n,          \
                                                          ptrdiff_t Q, const T *restrict x, \
                                                          const T *restrict dy,             \
                                                          const T *restrict mean,           \
                                                          double *restrict sdy,             \
                                                          double *restrict sdyx)            \
{                                                                                           \
    for (ptrdiff_t j = 0; j < n; j++) { sdy[j] = 0; sdyx[j] = 0; }                          \
    for (ptrdiff_t p = 0; p < P; p++)                                                       \
        for (ptrdiff_t j = 0; j < n; j++) {                                                 \
            const T *restrict r = x + (p * n + j) * Q;                                      \
            const T *restrict d = dy + (p * n + j) * Q;                                     \
            double m = (double)mean[j], a1[FASTNN_BN_LANES] = {0},                          \
                   a2[FASTNN_BN_LANES] = {0}, t1 = 0, t2 = 0;                               \
            ptrdiff_t q = 0;                                                                \
            for (; q + FASTNN_BN_LANES <= Q; q += FASTNN_BN_LANES)                          \
                for (int l = 0; l < FASTNN_BN_LANES; l++) {                                 \
                    double g = (double)d[q + l];                                            \
                    a1[l] += g;                                                             \
                    a2[l] += g * ((double)r[q + l] - m);                                    \
                }                                                                           \
            for (int l = 0; l < FASTNN_BN_LANES; l++) { t1 += a1[l]; t2 += a2[l]; }         \
            for (; q < Q; q++) {                                                            \
                double g = (double)d[q];                                                    \
                t1 += g;                                                                    \
                t2 += g * ((double)r[q] - m);                                               \
            }                                                                               \
            sdy[j] += t1;                                                                   \
            sdyx[j] += t2;                                                                  \
        }                                                                                   \
}                                                                                           \
FASTNN_CLONES static void fastnn_bn_dx_strided_##S(ptrdiff_t P, ptrdiff_t n, ptrdiff_t Q,    \
                                                   const T *restrict x,                     \
                                                   const T *restrict dy, T *restrict dx,    \
                                                   const T *restrict mean,                  \
                                                   const T *restrict k1,                    \
                                                   const T *restrict k2,                    \
                                                   const T *restrict k3)                    \
{                                                                                           \
    for (ptrdiff_t p = 0; p < P; p++)                                                       \
        for (ptrdiff_t j = 0; j < n; j++) {                                                 \
            ptrdiff_t o = (p * n + j) * Q;                                                  \
            T a = k1[j], b = k2[j], c = k3[j], m = mean[j];                                 \
            for (ptrdiff_t q = 0; q < Q; q++)                                               \
                dx[o + q] = a * dy[o + q] + b * (x[o + q] - m) + c;                         \
        }                                                                                   \
}                                                                                           \
FASTNN_CLONES static void fastnn_bn_dx_fixed_strided_##S(ptrdiff_t P, ptrdiff_t n,           \
                                                         ptrdiff_t Q,                       \
                                                         const T *restrict dy,              \
                                                         T *restrict dx,                    \
                                                         const T *restrict k1)              \
{                                                                                           \
    for (ptrdiff_t p = 0; p < P; p++)                                                       \
        for (ptrdiff_t j = 0; j < n; j++) {                                                 \
            ptrdiff_t o = (p * n + j) * Q;                                                  \
            T a = k1[j];                                                                    \
            for (ptrdiff_t q = 0; q < Q; q++) dx[o + q] = a * dy[o + q];                    \
        }                                                                                   \
}

FASTNN_BN_ROWS(float, f32)
FASTNN_BN_ROWS(double, f64)
FASTNN_BN_STRIDED(float, f32)
FASTNN_BN_STRIDED(double, f64)

#endif
