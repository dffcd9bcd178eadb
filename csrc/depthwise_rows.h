/* The direct depthwise convolution's inner loops, used by csrc/pool.pyx: for one
 * filter per channel (depth_multiplier 1, the common case) and, below, for M > 1. In C so that
 * GCC builds each for several instruction sets (FASTNN_CLONES: AVX-512, AVX2,
 * baseline) and keeps a block of FASTNN_DW_BLOCK channels' sums in registers
 * across the kernel's taps, loading only x and k. Taps are summed in the same
 * order (kernel row i, then column j) in every version: results differ between
 * versions only by FMA contraction. Loops over rows, threads and checks stay
 * in the .pyx; this only computes.
 *
 * Layout: rows of (width, C) channels-last pixels; k is (kh, kw, C) (M = 1) or
 * (kh, kw, C * M), output channel c * M + m from input channel c. */
#ifndef FASTNN_DEPTHWISE_ROWS_H
#define FASTNN_DEPTHWISE_ROWS_H

#include <stddef.h>
#include "fastnn_clones.h"

/* Channels per block: 32 sums fit the vector registers of every version. */
#define FASTNN_DW_BLOCK 32
/* Channels per block of the four-pixel dx loop: 4 x 16 sums stay in registers
 * in the AVX2 version too (16 vector registers). */
#define FASTNN_DW_PX4_BLOCK 16

#define FASTNN_DW_DEFINE(T, S)                                                           \
static inline __attribute__((always_inline)) void fastnn_dw_out_##S(                    \
    const T *const *xrows, const T *restrict k, const T *bias, T *restrict y,            \
    ptrdiff_t ow, ptrdiff_t C, ptrdiff_t c0, int nb, int kh, int kw, int j0, int j1,     \
    ptrdiff_t iw0, int dw)                                                               \
{                                                                                        \
    T acc[FASTNN_DW_BLOCK];                                                              \
    for (int c = 0; c < nb; c++) acc[c] = bias ? bias[c0 + c] : (T)0;                    \
    for (int i = 0; i < kh; i++) {                                                       \
        if (!xrows[i]) continue;                                                         \
        const T *xp = xrows[i] + (iw0 + (ptrdiff_t)j0 * dw) * C + c0;                    \
        const T *kp = k + ((ptrdiff_t)i * kw + j0) * C + c0;                             \
        for (int j = j0; j < j1; j++, xp += (ptrdiff_t)dw * C, kp += C)                  \
            for (int c = 0; c < nb; c++) acc[c] += xp[c] * kp[c];                        \
    }                                                                                    \
    for (int c = 0; c < nb; c++) y[ow * C + c0 + c] = acc[c];                            \
}                                                                                        \
                                                                                         \
/* One output row: y[ow, c] = bias[c] + sum over the taps of x * k; xrows[i] is the  \
 * input row kernel row i reads (NULL: outside the image). */                            \
FASTNN_CLONES static void fastnn_dw_row_##S(const T *const *xrows, const T *k,          \
                                            const T *bias, T *y, ptrdiff_t wo,           \
                                            ptrdiff_t W, ptrdiff_t C, int kh, int kw,    \
                                            int sw, int dw, int pl)                      \
{                                                                                        \
    for (ptrdiff_t ow = 0; ow < wo; ow++) {                                              \
        /* The taps j whose column iw0 + j * dw lies inside the row. */                  \
        ptrdiff_t iw0 = ow * sw - pl;                                                    \
        int j0 = iw0 >= 0 ? 0 : (int)((-iw0 + dw - 1) / dw);                             \
        int j1 = W - 1 - iw0 < 0 ? 0 : (int)((W - 1 - iw0) / dw) + 1;                    \
        if (j1 > kw) j1 = kw;                                                            \
        if (j1 < j0) j1 = j0;                                                            \
        ptrdiff_t c0 = 0;                                                                \
        for (; c0 + FASTNN_DW_BLOCK <= C; c0 += FASTNN_DW_BLOCK)                         \
            fastnn_dw_out_##S(xrows, k, bias, y, ow, C, c0, FASTNN_DW_BLOCK, kh, kw,     \
                              j0, j1, iw0, dw);                                          \
        if (c0 < C)                                                                      \
            fastnn_dw_out_##S(xrows, k, bias, y, ow, C, c0, (int)(C - c0), kh, kw, j0,   \
                              j1, iw0, dw);                                              \
    }                                                                                    \
}                                                                                        \
                                                                                         \
static inline __attribute__((always_inline)) void fastnn_dw_dk_block_##S(               \
    const T *restrict xrow, const T *restrict dzrow, double *restrict part,              \
    ptrdiff_t lo, ptrdiff_t hi, ptrdiff_t C, ptrdiff_t c0, int nb, int sw, ptrdiff_t off) \
{                                                                                        \
    T acc[FASTNN_DW_BLOCK];                                                              \
    for (int c = 0; c < nb; c++) acc[c] = 0;                                             \
    for (ptrdiff_t ow = lo; ow < hi; ow++) {                                             \
        const T *xp = xrow + (ow * sw + off) * C + c0;                                   \
        const T *gp = dzrow + ow * C + c0;                                               \
        for (int c = 0; c < nb; c++) acc[c] += xp[c] * gp[c];                            \
    }                                                                                    \
    for (int c = 0; c < nb; c++) part[c0 + c] += acc[c];                                 \
}                                                                                        \
                                                                                         \
/* One tap's kernel gradient over one output row: part[c] += the sum over outputs   \
 * lo..hi of x[ow * sw + off, c] * dz[ow, c], summed in T along the row, then added  \
 * to the float64 block sum. */                                                          \
FASTNN_CLONES static void fastnn_dw_dk_row_##S(const T *xrow, const T *dzrow,           \
                                               double *part, ptrdiff_t lo, ptrdiff_t hi, \
                                               ptrdiff_t C, int sw, ptrdiff_t off)       \
{                                                                                        \
    ptrdiff_t c0 = 0;                                                                    \
    for (; c0 + FASTNN_DW_BLOCK <= C; c0 += FASTNN_DW_BLOCK)                             \
        fastnn_dw_dk_block_##S(xrow, dzrow, part, lo, hi, C, c0, FASTNN_DW_BLOCK, sw,    \
                               off);                                                     \
    if (c0 < C)                                                                          \
        fastnn_dw_dk_block_##S(xrow, dzrow, part, lo, hi, C, c0, (int)(C - c0), sw, off); \
}                                                                                        \
                                                                                         \
/* dx of four neighbouring input pixels at once, stride 1, where every tap takes    \
 * them to outputs inside the row: out[p, c] = the sum over taps (i, j), in that    \
 * order, of rows[i][(start + p - j * dw) * C + c] * k[i, j, c]. Each k vector is   \
 * loaded once for four FMAs (one pixel at a time: two loads per FMA); on one      \
 * thread this took dx of a 32x32x64 float32 image from about 47 to 31 us of CPU    \
 * (AVX-512 clone; the forward's loop, tried the same way, did not change). The     \
 * sums' order is fastnn_dw_dx_px_##S's: the same bits. */                          \
static inline __attribute__((always_inline)) void fastnn_dw_dx4_##S(                    \
    const T *const *rows, const T *restrict k, T *restrict out, ptrdiff_t C,             \
    ptrdiff_t c0, int nb, int kh, int kw, ptrdiff_t start, int dw)                       \
{                                                                                        \
    T a0[FASTNN_DW_PX4_BLOCK], a1[FASTNN_DW_PX4_BLOCK], a2[FASTNN_DW_PX4_BLOCK],         \
        a3[FASTNN_DW_PX4_BLOCK];                                                         \
    ptrdiff_t step = -(ptrdiff_t)dw;                                                     \
    for (int c = 0; c < nb; c++) a0[c] = a1[c] = a2[c] = a3[c] = 0;                      \
    for (int i = 0; i < kh; i++) {                                                       \
        if (!rows[i]) continue;                                                          \
        const T *xp = rows[i] + start * C + c0;                                          \
        const T *kp = k + (ptrdiff_t)i * kw * C + c0;                                    \
        for (int j = 0; j < kw; j++, xp += step * C, kp += C)                            \
            for (int c = 0; c < nb; c++) {                                               \
                T kv = kp[c];                                                            \
                a0[c] += xp[c] * kv;                                                     \
                a1[c] += xp[C + c] * kv;                                                 \
                a2[c] += xp[2 * C + c] * kv;                                             \
                a3[c] += xp[3 * C + c] * kv;                                             \
            }                                                                            \
    }                                                                                    \
    for (int c = 0; c < nb; c++) {                                                       \
        out[c0 + c] = a0[c];                                                             \
        out[C + c0 + c] = a1[c];                                                         \
        out[2 * C + c0 + c] = a2[c];                                                     \
        out[3 * C + c0 + c] = a3[c];                                                     \
    }                                                                                    \
}                                                                                        \
                                                                                         \
/* Four pixels' channels in blocks (full ones, then the tail). */                      \
static inline __attribute__((always_inline)) void fastnn_dw_dx4_all_##S(                \
    const T *const *rows, const T *k, T *out, ptrdiff_t C, int kh, int kw,               \
    ptrdiff_t start, int dw)                                                             \
{                                                                                        \
    ptrdiff_t c0 = 0;                                                                    \
    for (; c0 + FASTNN_DW_PX4_BLOCK <= C; c0 += FASTNN_DW_PX4_BLOCK)                     \
        fastnn_dw_dx4_##S(rows, k, out, C, c0, FASTNN_DW_PX4_BLOCK, kh, kw, start, dw);  \
    if (c0 < C)                                                                          \
        fastnn_dw_dx4_##S(rows, k, out, C, c0, (int)(C - c0), kh, kw, start, dw);        \
}                                                                                        \
                                                                                         \
static inline __attribute__((always_inline)) void fastnn_dw_dx_px_##S(                  \
    const T *const *dzrows, const T *restrict k, T *restrict dx, ptrdiff_t iw,           \
    ptrdiff_t wo, ptrdiff_t C, ptrdiff_t c0, int nb, int kh, int kw, int sw, int dw,     \
    int pl)                                                                              \
{                                                                                        \
    T acc[FASTNN_DW_BLOCK];                                                              \
    for (int c = 0; c < nb; c++) acc[c] = 0;                                             \
    for (int i = 0; i < kh; i++) {                                                       \
        if (!dzrows[i]) continue;                                                        \
        for (int j = 0; j < kw; j++) {                                                   \
            ptrdiff_t u = iw + pl - (ptrdiff_t)j * dw, ow = u;                           \
            if (u < 0) continue;                                                         \
            if (sw != 1) { /* a division only where the stride needs one */              \
                if (u % sw) continue;                                                    \
                ow = u / sw;                                                             \
            }                                                                            \
            if (ow >= wo) continue;                                                      \
            const T *gp = dzrows[i] + ow * C + c0;                                       \
            const T *kp = k + ((ptrdiff_t)i * kw + j) * C + c0;                          \
            for (int c = 0; c < nb; c++) acc[c] += gp[c] * kp[c];                        \
        }                                                                                \
    }                                                                                    \
    for (int c = 0; c < nb; c++) dx[iw * C + c0 + c] = acc[c];                           \
}                                                                                        \
                                                                                         \
/* One input row of dx: each pixel sums what the outputs whose windows cover it     \
 * send back; dzrows[i] is the output row kernel row i takes this row to (NULL:     \
 * none). */                                                                             \
FASTNN_CLONES static void fastnn_dw_dx_row_##S(const T *const *dzrows, const T *k,      \
                                               T *dx, ptrdiff_t W, ptrdiff_t wo,         \
                                               ptrdiff_t C, int kh, int kw, int sw,      \
                                               int dw, int pl)                           \
{                                                                                        \
    for (ptrdiff_t iw = 0; iw < W; iw++) {                                               \
        /* Four pixels that every tap takes to an output inside the row. */             \
        if (sw == 1 && iw + 4 <= W && iw + pl - (ptrdiff_t)(kw - 1) * dw >= 0            \
                && iw + 3 + pl < wo) {                                                   \
            fastnn_dw_dx4_all_##S(dzrows, k, dx + iw * C, C, kh, kw, iw + pl, dw);       \
            iw += 3;                                                                     \
            continue;                                                                    \
        }                                                                                \
        ptrdiff_t c0 = 0;                                                                \
        for (; c0 + FASTNN_DW_BLOCK <= C; c0 += FASTNN_DW_BLOCK)                         \
            fastnn_dw_dx_px_##S(dzrows, k, dx, iw, wo, C, c0, FASTNN_DW_BLOCK, kh, kw,   \
                                sw, dw, pl);                                             \
        if (c0 < C)                                                                      \
            fastnn_dw_dx_px_##S(dzrows, k, dx, iw, wo, C, c0, (int)(C - c0), kh, kw, sw, \
                                dw, pl);                                                 \
    }                                                                                    \
}

/* depth_multiplier M > 1: output channel c * M + m reads input channel c. A block is
 * nbc input channels times mb of their multipliers (nbc * mb <= FASTNN_DW_BLOCK sums,
 * kept as acc[c * mb + mm]); with mb == M the block's outputs and kernel entries are
 * contiguous, and with M a compile-time constant (the dispatchers below instantiate
 * 2, 3 and 4) GCC vectorises the x broadcast and the M-strided reads with shuffles.
 * M > FASTNN_DW_BLOCK takes one channel and chunks of its multipliers. Sums keep the
 * taps' order of the M = 1 loops. */
#define FASTNN_DW_DEFINE_MULT(T, S)                                                      \
static inline __attribute__((always_inline)) void fastnn_dw_out_mult_##S(               \
    const T *const *xrows, const T *restrict k, const T *bias, T *restrict y,            \
    ptrdiff_t ow, ptrdiff_t C, ptrdiff_t M, ptrdiff_t c0, int nbc, ptrdiff_t m0, int mb, \
    int kh, int kw, int j0, int j1, ptrdiff_t iw0, int dw)                               \
{                                                                                        \
    T acc[FASTNN_DW_BLOCK];                                                              \
    ptrdiff_t CM = C * M;                                                                \
    for (int c = 0; c < nbc; c++)                                                        \
        for (int mm = 0; mm < mb; mm++)                                                  \
            acc[c * mb + mm] = bias ? bias[(c0 + c) * M + m0 + mm] : (T)0;               \
    for (int i = 0; i < kh; i++) {                                                       \
        if (!xrows[i]) continue;                                                         \
        const T *xp = xrows[i] + (iw0 + (ptrdiff_t)j0 * dw) * C + c0;                    \
        const T *kp = k + ((ptrdiff_t)i * kw + j0) * CM + c0 * M + m0;                   \
        for (int j = j0; j < j1; j++, xp += (ptrdiff_t)dw * C, kp += CM)                 \
            for (int c = 0; c < nbc; c++)                                                \
                for (int mm = 0; mm < mb; mm++)                                          \
                    acc[c * mb + mm] += xp[c] * kp[c * M + mm];                          \
    }                                                                                    \
    for (int c = 0; c < nbc; c++)                                                        \
        for (int mm = 0; mm < mb; mm++)                                                  \
            y[ow * CM + (c0 + c) * M + m0 + mm] = acc[c * mb + mm];                      \
}                                                                                        \
                                                                                         \
static inline __attribute__((always_inline)) void fastnn_dw_row_mult_body_##S(          \
    const T *const *xrows, const T *k, const T *bias, T *y, ptrdiff_t wo, ptrdiff_t W,   \
    ptrdiff_t C, ptrdiff_t M, int kh, int kw, int sw, int dw, int pl)                    \
{                                                                                        \
    int nbc = M <= FASTNN_DW_BLOCK ? (int)(FASTNN_DW_BLOCK / M) : 1;                     \
    int mb = M <= FASTNN_DW_BLOCK ? (int)M : FASTNN_DW_BLOCK;                            \
    for (ptrdiff_t ow = 0; ow < wo; ow++) {                                              \
        ptrdiff_t iw0 = ow * sw - pl;                                                    \
        int j0 = iw0 >= 0 ? 0 : (int)((-iw0 + dw - 1) / dw);                             \
        int j1 = W - 1 - iw0 < 0 ? 0 : (int)((W - 1 - iw0) / dw) + 1;                    \
        if (j1 > kw) j1 = kw;                                                            \
        if (j1 < j0) j1 = j0;                                                            \
        for (ptrdiff_t c0 = 0; c0 < C; c0 += nbc) {                                      \
            int n = C - c0 < nbc ? (int)(C - c0) : nbc;                                  \
            for (ptrdiff_t m0 = 0; m0 < M; m0 += mb) {                                   \
                int nm = M - m0 < mb ? (int)(M - m0) : mb;                               \
                if (n == nbc && nm == mb)                                                \
                    fastnn_dw_out_mult_##S(xrows, k, bias, y, ow, C, M, c0, nbc, m0, mb, \
                                           kh, kw, j0, j1, iw0, dw);                     \
                else                                                                     \
                    fastnn_dw_out_mult_##S(xrows, k, bias, y, ow, C, M, c0, n, m0, nm,   \
                                           kh, kw, j0, j1, iw0, dw);                     \
            }                                                                            \
        }                                                                                \
    }                                                                                    \
}                                                                                        \
                                                                                         \
/* One output row, as fastnn_dw_row_##S, for M > 1: y has C * M channels. */             \
FASTNN_CLONES static void fastnn_dw_row_mult_##S(const T *const *xrows, const T *k,     \
                                                 const T *bias, T *y, ptrdiff_t wo,      \
                                                 ptrdiff_t W, ptrdiff_t C, ptrdiff_t M,  \
                                                 int kh, int kw, int sw, int dw, int pl) \
{                                                                                        \
    switch (M) {                                                                         \
    case 2: fastnn_dw_row_mult_body_##S(xrows, k, bias, y, wo, W, C, 2, kh, kw, sw, dw, pl); break; \
    case 3: fastnn_dw_row_mult_body_##S(xrows, k, bias, y, wo, W, C, 3, kh, kw, sw, dw, pl); break; \
    case 4: fastnn_dw_row_mult_body_##S(xrows, k, bias, y, wo, W, C, 4, kh, kw, sw, dw, pl); break; \
    default: fastnn_dw_row_mult_body_##S(xrows, k, bias, y, wo, W, C, M, kh, kw, sw, dw, pl); \
    }                                                                                    \
}                                                                                        \
                                                                                         \
static inline __attribute__((always_inline)) void fastnn_dw_dk_mult_block_##S(          \
    const T *restrict xrow, const T *restrict dzrow, double *restrict part,              \
    ptrdiff_t lo, ptrdiff_t hi, ptrdiff_t C, ptrdiff_t M, ptrdiff_t c0, int nbc,         \
    ptrdiff_t m0, int mb, int sw, ptrdiff_t off)                                         \
{                                                                                        \
    T acc[FASTNN_DW_BLOCK];                                                              \
    ptrdiff_t CM = C * M;                                                                \
    for (int t = 0; t < nbc * mb; t++) acc[t] = 0;                                       \
    for (ptrdiff_t ow = lo; ow < hi; ow++) {                                             \
        const T *xp = xrow + (ow * sw + off) * C + c0;                                   \
        const T *gp = dzrow + ow * CM + c0 * M + m0;                                     \
        for (int c = 0; c < nbc; c++)                                                    \
            for (int mm = 0; mm < mb; mm++)                                              \
                acc[c * mb + mm] += xp[c] * gp[c * M + mm];                              \
    }                                                                                    \
    for (int c = 0; c < nbc; c++)                                                        \
        for (int mm = 0; mm < mb; mm++)                                                  \
            part[(c0 + c) * M + m0 + mm] += acc[c * mb + mm];                            \
}                                                                                        \
                                                                                         \
static inline __attribute__((always_inline)) void fastnn_dw_dk_row_mult_body_##S(       \
    const T *xrow, const T *dzrow, double *part, ptrdiff_t lo, ptrdiff_t hi,             \
    ptrdiff_t C, ptrdiff_t M, int sw, ptrdiff_t off)                                     \
{                                                                                        \
    int nbc = M <= FASTNN_DW_BLOCK ? (int)(FASTNN_DW_BLOCK / M) : 1;                     \
    int mb = M <= FASTNN_DW_BLOCK ? (int)M : FASTNN_DW_BLOCK;                            \
    for (ptrdiff_t c0 = 0; c0 < C; c0 += nbc) {                                          \
        int n = C - c0 < nbc ? (int)(C - c0) : nbc;                                      \
        for (ptrdiff_t m0 = 0; m0 < M; m0 += mb) {                                       \
            int nm = M - m0 < mb ? (int)(M - m0) : mb;                                   \
            if (n == nbc && nm == mb)                                                    \
                fastnn_dw_dk_mult_block_##S(xrow, dzrow, part, lo, hi, C, M, c0, nbc,    \
                                            m0, mb, sw, off);                            \
            else                                                                         \
                fastnn_dw_dk_mult_block_##S(xrow, dzrow, part, lo, hi, C, M, c0, n, m0,  \
                                            nm, sw, off);                                \
        }                                                                                \
    }                                                                                    \
}                                                                                        \
                                                                                         \
/* One tap's kernel gradient over one output row, as fastnn_dw_dk_row_##S, for M > 1:   \
 * part[c * M + m] += the sum over outputs lo..hi of x[ow * sw + off, c] *              \
 * dz[ow, c * M + m]. */                                                                 \
FASTNN_CLONES static void fastnn_dw_dk_row_mult_##S(const T *xrow, const T *dzrow,      \
                                                    double *part, ptrdiff_t lo,          \
                                                    ptrdiff_t hi, ptrdiff_t C,           \
                                                    ptrdiff_t M, int sw, ptrdiff_t off)  \
{                                                                                        \
    switch (M) {                                                                         \
    case 2: fastnn_dw_dk_row_mult_body_##S(xrow, dzrow, part, lo, hi, C, 2, sw, off); break; \
    case 3: fastnn_dw_dk_row_mult_body_##S(xrow, dzrow, part, lo, hi, C, 3, sw, off); break; \
    case 4: fastnn_dw_dk_row_mult_body_##S(xrow, dzrow, part, lo, hi, C, 4, sw, off); break; \
    default: fastnn_dw_dk_row_mult_body_##S(xrow, dzrow, part, lo, hi, C, M, sw, off); \
    }                                                                                    \
}                                                                                        \
                                                                                         \
static inline __attribute__((always_inline)) void fastnn_dw_dx_mult_px_##S(             \
    const T *const *dzrows, const T *restrict k, T *restrict dx, ptrdiff_t iw,           \
    ptrdiff_t wo, ptrdiff_t C, ptrdiff_t M, ptrdiff_t c0, int nb, int kh, int kw,        \
    int sw, int dw, int pl)                                                              \
{                                                                                        \
    T acc[FASTNN_DW_BLOCK];                                                              \
    ptrdiff_t CM = C * M;                                                                \
    for (int c = 0; c < nb; c++) acc[c] = 0;                                             \
    for (int i = 0; i < kh; i++) {                                                       \
        if (!dzrows[i]) continue;                                                        \
        for (int j = 0; j < kw; j++) {                                                   \
            ptrdiff_t u = iw + pl - (ptrdiff_t)j * dw, ow = u;                           \
            if (u < 0) continue;                                                         \
            if (sw != 1) {                                                               \
                if (u % sw) continue;                                                    \
                ow = u / sw;                                                             \
            }                                                                            \
            if (ow >= wo) continue;                                                      \
            const T *gp = dzrows[i] + ow * CM + c0 * M;                                  \
            const T *kp = k + ((ptrdiff_t)i * kw + j) * CM + c0 * M;                     \
            for (int c = 0; c < nb; c++) {                                               \
                T s = 0;                                                                 \
                for (ptrdiff_t m = 0; m < M; m++) s += gp[c * M + m] * kp[c * M + m];    \
                acc[c] += s;                                                             \
            }                                                                            \
        }                                                                                \
    }                                                                                    \
    for (int c = 0; c < nb; c++) dx[iw * C + c0 + c] = acc[c];                           \
}                                                                                        \
                                                                                         \
static inline __attribute__((always_inline)) void fastnn_dw_dx_row_mult_body_##S(       \
    const T *const *dzrows, const T *k, T *dx, ptrdiff_t W, ptrdiff_t wo, ptrdiff_t C,   \
    ptrdiff_t M, int kh, int kw, int sw, int dw, int pl)                                 \
{                                                                                        \
    for (ptrdiff_t iw = 0; iw < W; iw++) {                                               \
        ptrdiff_t c0 = 0;                                                                \
        for (; c0 + FASTNN_DW_BLOCK <= C; c0 += FASTNN_DW_BLOCK)                         \
            fastnn_dw_dx_mult_px_##S(dzrows, k, dx, iw, wo, C, M, c0, FASTNN_DW_BLOCK,   \
                                     kh, kw, sw, dw, pl);                                \
        if (c0 < C)                                                                      \
            fastnn_dw_dx_mult_px_##S(dzrows, k, dx, iw, wo, C, M, c0, (int)(C - c0), kh, \
                                     kw, sw, dw, pl);                                    \
    }                                                                                    \
}                                                                                        \
                                                                                         \
/* One input row of dx, as fastnn_dw_dx_row_##S, for M > 1: each input channel sums     \
 * its M outputs' products (m in order) per tap, then the taps in order. */              \
FASTNN_CLONES static void fastnn_dw_dx_row_mult_##S(const T *const *dzrows, const T *k, \
                                                    T *dx, ptrdiff_t W, ptrdiff_t wo,    \
                                                    ptrdiff_t C, ptrdiff_t M, int kh,    \
                                                    int kw, int sw, int dw, int pl)      \
{                                                                                        \
    switch (M) {                                                                         \
    case 2: fastnn_dw_dx_row_mult_body_##S(dzrows, k, dx, W, wo, C, 2, kh, kw, sw, dw, pl); break; \
    case 3: fastnn_dw_dx_row_mult_body_##S(dzrows, k, dx, W, wo, C, 3, kh, kw, sw, dw, pl); break; \
    case 4: fastnn_dw_dx_row_mult_body_##S(dzrows, k, dx, W, wo, C, 4, kh, kw, sw, dw, pl); break; \
    default: fastnn_dw_dx_row_mult_body_##S(dzrows, k, dx, W, wo, C, M, kh, kw, sw, dw, pl); \
    }                                                                                    \
}

FASTNN_DW_DEFINE(float, f)
FASTNN_DW_DEFINE(double, d)
FASTNN_DW_DEFINE_MULT(float, f)
FASTNN_DW_DEFINE_MULT(double, d)

#endif
