/* The Winograd F(2x2, 3x3) transforms of csrc/conv.pyx's 3x3, stride-1 path
 * (Lavin & Gray 2016), channels last: a 4x4 input tile to its 16 transformed
 * planes (B^T d B), 16 planes back to a 2x2 output tile (A^T m A, bias added),
 * and a 2x2 output-gradient tile to 16 planes (A z A^T, the weight gradient's
 * form). Each loops over the channels, contiguous in NHWC, so GCC vectorises it;
 * FASTNN_CLONES builds AVX-512 / AVX2 / baseline versions. The order of every
 * sum is fixed and the same in every version but for FMA contraction. The
 * GEMMs between, tiling, threads and checks stay in the .pyx; this only computes.
 *
 * Plane k = 4 * row + column of the 4x4 transformed tile lives at
 * v + k * plane: the caller lays a chunk's tiles out so each plane is a
 * (tiles, channels) row-major matrix, one GEMM operand. */
#ifndef FASTNN_WINOGRAD_ROWS_H
#define FASTNN_WINOGRAD_ROWS_H

#include <stddef.h>
#include "fastnn_clones.h"

#define FASTNN_WG_DEFINE(T, S)                                                           \
/* The 4x4 tile of image x (H, W, C) whose top-left pixel is (ih0, iw0), pixels     \
 * outside the image read from zero (C zeros), transformed: v[k * plane + c]. */     \
FASTNN_CLONES static void fastnn_wg_in_##S(const T *x, ptrdiff_t H, ptrdiff_t W,        \
                                           ptrdiff_t C, ptrdiff_t ih0, ptrdiff_t iw0,    \
                                           const T *zero, T *v, ptrdiff_t plane)         \
{                                                                                        \
    const T *p[16];                                                                      \
    for (int i = 0; i < 4; i++)                                                          \
        for (int j = 0; j < 4; j++) {                                                    \
            ptrdiff_t ih = ih0 + i, iw = iw0 + j;                                        \
            p[4 * i + j] = (ih >= 0 && ih < H && iw >= 0 && iw < W)                      \
                               ? x + (ih * W + iw) * C : zero;                           \
        }                                                                                \
    _Pragma("GCC ivdep")                                                                 \
    for (ptrdiff_t c = 0; c < C; c++) {                                                  \
        T d[16], t[16];                                                                  \
        for (int k = 0; k < 16; k++) d[k] = p[k][c];                                     \
        /* B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], on the rows, then columns */  \
        for (int j = 0; j < 4; j++) {                                                    \
            t[j] = d[j] - d[8 + j];                                                      \
            t[4 + j] = d[4 + j] + d[8 + j];                                              \
            t[8 + j] = d[8 + j] - d[4 + j];                                              \
            t[12 + j] = d[4 + j] - d[12 + j];                                            \
        }                                                                                \
        for (int i = 0; i < 4; i++) {                                                    \
            v[(4 * i) * plane + c] = t[4 * i] - t[4 * i + 2];                            \
            v[(4 * i + 1) * plane + c] = t[4 * i + 1] + t[4 * i + 2];                    \
            v[(4 * i + 2) * plane + c] = t[4 * i + 2] - t[4 * i + 1];                    \
            v[(4 * i + 3) * plane + c] = t[4 * i + 1] - t[4 * i + 3];                    \
        }                                                                                \
    }                                                                                    \
}                                                                                        \
                                                                                         \
/* The 2x2 output tile A^T m A of the planes m[k * plane + f], plus bias[f] (NULL:  \
 * none), into pixels y00 y01 y10 y11 (F values each; the caller points those      \
 * outside the output at a scratch row). */                                             \
FASTNN_CLONES static void fastnn_wg_out_##S(const T *m, ptrdiff_t plane, const T *bias, \
                                            T *y00, T *y01, T *y10, T *y11, ptrdiff_t F) \
{                                                                                        \
    _Pragma("GCC ivdep")                                                                 \
    for (ptrdiff_t f = 0; f < F; f++) {                                                  \
        T a[16], s[8];                                                                   \
        for (int k = 0; k < 16; k++) a[k] = m[k * plane + f];                            \
        /* A^T = [1 1 1 0; 0 1 -1 -1] */                                                 \
        for (int j = 0; j < 4; j++) {                                                    \
            s[j] = a[j] + a[4 + j] + a[8 + j];                                           \
            s[4 + j] = a[4 + j] - a[8 + j] - a[12 + j];                                  \
        }                                                                                \
        T b = bias ? bias[f] : (T)0;                                                     \
        y00[f] = s[0] + s[1] + s[2] + b;                                                 \
        y01[f] = s[1] - s[2] - s[3] + b;                                                 \
        y10[f] = s[4] + s[5] + s[6] + b;                                                 \
        y11[f] = s[5] - s[6] - s[7] + b;                                                 \
    }                                                                                    \
}                                                                                        \
                                                                                         \
/* The 2x2 output-gradient tile z00 z01 z10 z11 (F values each; zero rows outside   \
 * the output) to the planes A z A^T: v[k * plane + f]. */                             \
FASTNN_CLONES static void fastnn_wg_dz_##S(const T *z00, const T *z01, const T *z10,    \
                                           const T *z11, T *v, ptrdiff_t plane,          \
                                           ptrdiff_t F)                                  \
{                                                                                        \
    _Pragma("GCC ivdep")                                                                 \
    for (ptrdiff_t f = 0; f < F; f++) {                                                  \
        /* A = [1 0; 1 1; 1 -1; 0 -1], on the rows, then columns */                      \
        T r[8] = {z00[f], z01[f], z00[f] + z10[f], z01[f] + z11[f],                      \
                  z00[f] - z10[f], z01[f] - z11[f], -z10[f], -z11[f]};                   \
        for (int i = 0; i < 4; i++) {                                                    \
            v[(4 * i) * plane + f] = r[2 * i];                                           \
            v[(4 * i + 1) * plane + f] = r[2 * i] + r[2 * i + 1];                        \
            v[(4 * i + 2) * plane + f] = r[2 * i] - r[2 * i + 1];                        \
            v[(4 * i + 3) * plane + f] = -r[2 * i + 1];                                  \
        }                                                                                \
    }                                                                                    \
}

FASTNN_WG_DEFINE(float, f)
FASTNN_WG_DEFINE(double, d)

#endif
