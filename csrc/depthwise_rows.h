/* The direct depthwise convolution's inner loops, used by csrc/pool.pyx: for one
 * filter per channel (depth_multiplier 1, the common case), below them for M > 1, and
 * last the three-tap loops (kernel width 3, stride and dilation 1 along the width,
 * M = 1: the usual layer) that the .pyx takes where they apply. In C so that
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
/* The three-tap dW loop: output columns per chunk, and vector blocks of channels whose
 * sums a chunk keeps on the stack (more channels: several passes). */
#define FASTNN_DW3_CHUNK 8
#define FASTNN_DW3_GROUP 32

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


/* Three-tap rows (kernel width 3, horizontal stride and dilation 1, one filter per
 * channel: nearly every depthwise layer in practice), on 64-byte vectors of channels
 * (GCC vector extensions: one zmm register in the AVX-512 clone, two ymm in the AVX2
 * one). The general loops above load x and k for every multiply-add (two loads per
 * FMA) and keep their 32 sums on the stack; these hold the sums and the kernel row in
 * registers and reuse each loaded input vector for up to three taps:
 * - forward and dx: four neighbouring pixels at once, a kernel row's 3 k vectors and
 *   the 6 input vectors they touch loaded once (9 loads for 12 FMAs);
 * - dW (+ db): all 9 taps' sums of one output row at once, sliding each input row's
 *   3-vector window by one load per output pixel (4 loads for 9 FMAs).
 * Every sum adds its terms in the general loops' order (taps by kernel row, then
 * column; dW over ascending output columns, from 0 in T), so both give the same
 * bits. Pixels whose window leaves the row, and channels past the last whole
 * vector, go to the general per-pixel code. */
#define FASTNN_DW3_DEFINE(T, S)                                                          \
typedef T fastnn_dwv_##S __attribute__((vector_size(64), aligned(sizeof(T))));          \
                                                                                         \
/* Four outputs out[p] (p = 0..3, C apart) of one vector of channels: the sum over   \
 * kernel rows i (rows[i] != NULL) and taps j of rows[i][(p + dir * j) * C] * k[i, j], \
 * base pointers already at the first input's channel block. dir = 1: the forward    \
 * (input columns iw0 + p + j); dir = -1: dx (output columns start + p - j). */       \
static inline __attribute__((always_inline)) void fastnn_dw3_px4_##S(                   \
    const T *const *rows, ptrdiff_t at, const T *restrict k, fastnn_dwv_##S init,        \
    T *restrict out, ptrdiff_t C, int kh, int dir)                                       \
{                                                                                        \
    typedef fastnn_dwv_##S vec;                                                          \
    vec a0 = init, a1 = init, a2 = init, a3 = init;                                      \
    for (int i = 0; i < kh; i++) {                                                       \
        if (!rows[i]) continue;                                                          \
        const T *kp = k + (ptrdiff_t)i * 3 * C;                                          \
        vec k0 = *(const vec *)kp, k1 = *(const vec *)(kp + C),                          \
            k2 = *(const vec *)(kp + 2 * C);                                             \
        const T *xp = rows[i] + at;                                                      \
        if (dir > 0) {                                                                   \
            vec x0 = *(const vec *)xp, x1 = *(const vec *)(xp + C),                      \
                x2 = *(const vec *)(xp + 2 * C), x3 = *(const vec *)(xp + 3 * C),        \
                x4 = *(const vec *)(xp + 4 * C), x5 = *(const vec *)(xp + 5 * C);        \
            a0 += x0 * k0; a1 += x1 * k0; a2 += x2 * k0; a3 += x3 * k0;                  \
            a0 += x1 * k1; a1 += x2 * k1; a2 += x3 * k1; a3 += x4 * k1;                  \
            a0 += x2 * k2; a1 += x3 * k2; a2 += x4 * k2; a3 += x5 * k2;                  \
        } else {                                                                         \
            vec xm2 = *(const vec *)(xp - 2 * C), xm1 = *(const vec *)(xp - C),          \
                x0 = *(const vec *)xp, x1 = *(const vec *)(xp + C),                      \
                x2 = *(const vec *)(xp + 2 * C), x3 = *(const vec *)(xp + 3 * C);        \
            a0 += x0 * k0; a1 += x1 * k0; a2 += x2 * k0; a3 += x3 * k0;                  \
            a0 += xm1 * k1; a1 += x0 * k1; a2 += x1 * k1; a3 += x2 * k1;                 \
            a0 += xm2 * k2; a1 += xm1 * k2; a2 += x0 * k2; a3 += x1 * k2;                \
        }                                                                                \
    }                                                                                    \
    *(vec *)out = a0;                                                                    \
    *(vec *)(out + C) = a1;                                                              \
    *(vec *)(out + 2 * C) = a2;                                                          \
    *(vec *)(out + 3 * C) = a3;                                                          \
}                                                                                        \
                                                                                         \
/* One output of fastnn_dw3_px4_##S (the pixels left over from the groups of four). */ \
static inline __attribute__((always_inline)) void fastnn_dw3_px1_##S(                   \
    const T *const *rows, ptrdiff_t at, const T *restrict k, fastnn_dwv_##S init,        \
    T *restrict out, ptrdiff_t C, int kh, int dir)                                       \
{                                                                                        \
    typedef fastnn_dwv_##S vec;                                                          \
    vec a = init;                                                                        \
    for (int i = 0; i < kh; i++) {                                                       \
        if (!rows[i]) continue;                                                          \
        const T *kp = k + (ptrdiff_t)i * 3 * C, *xp = rows[i] + at;                      \
        a += *(const vec *)xp * *(const vec *)kp;                                        \
        a += *(const vec *)(xp + dir * C) * *(const vec *)(kp + C);                      \
        a += *(const vec *)(xp + 2 * dir * C) * *(const vec *)(kp + 2 * C);              \
    }                                                                                    \
    *(vec *)out = a;                                                                     \
}                                                                                        \
                                                                                         \
/* The forward's output row (fastnn_dw_row_##S with kw = 3, sw = dw = 1). */           \
FASTNN_CLONES static void fastnn_dw3_row_##S(                                          \
    const T *const *xrows, const T *k, const T *bias, T *y, ptrdiff_t wo, ptrdiff_t W,   \
    ptrdiff_t C, int kh, int pl)                                                         \
{                                                                                        \
    const ptrdiff_t V = 64 / sizeof(T), CV = C - C % V;                                  \
    const fastnn_dwv_##S zero = {0};                                                     \
    ptrdiff_t ow, c0;                                                                    \
    /* Pixels outer, channel blocks inner: x and y are read and written in order. */   \
    for (ow = 0; ow < wo;) {                                                             \
        ptrdiff_t iw0 = ow - pl;                                                         \
        if (iw0 >= 0 && iw0 + 6 <= W && ow + 4 <= wo && CV > 0) {                        \
            for (c0 = 0; c0 < CV; c0 += V)                                               \
                fastnn_dw3_px4_##S(xrows, iw0 * C + c0, k + c0,                          \
                                   bias ? *(const fastnn_dwv_##S *)(bias + c0) : zero,   \
                                   y + ow * C + c0, C, kh, 1);                           \
            for (ptrdiff_t p = 0; p < 4 && CV < C; p++)                                  \
                fastnn_dw_out_##S(xrows, k, bias, y, ow + p, C, CV, (int)(C - CV), kh,   \
                                  3, 0, 3, iw0 + p, 1);                                  \
            ow += 4;                                                                     \
            continue;                                                                    \
        }                                                                                \
        if (iw0 >= 0 && iw0 + 3 <= W && CV == C) {                                       \
            for (c0 = 0; c0 < C; c0 += V)                                                \
                fastnn_dw3_px1_##S(xrows, iw0 * C + c0, k + c0,                          \
                                   bias ? *(const fastnn_dwv_##S *)(bias + c0) : zero,   \
                                   y + ow * C + c0, C, kh, 1);                           \
            ow++;                                                                        \
            continue;                                                                    \
        }                                                                                \
        int j0 = iw0 >= 0 ? 0 : (int)-iw0;                                               \
        int j1 = W - 1 - iw0 < 0 ? 0 : (int)(W - 1 - iw0) + 1;                           \
        if (j1 > 3) j1 = 3;                                                              \
        if (j1 < j0) j1 = j0;                                                            \
        for (c0 = 0; c0 < C; c0 += FASTNN_DW_BLOCK)                                      \
            fastnn_dw_out_##S(xrows, k, bias, y, ow, C, c0,                              \
                              (int)(C - c0 < FASTNN_DW_BLOCK ? C - c0 : FASTNN_DW_BLOCK), \
                              kh, 3, j0, j1, iw0, 1);                                    \
        ow++;                                                                            \
    }                                                                                    \
}                                                                                        \
                                                                                         \
/* One input row of dx (fastnn_dw_dx_row_##S with kw = 3, sw = dw = 1). */              \
FASTNN_CLONES static void fastnn_dw3_dx_row_##S(                                       \
    const T *const *dzrows, const T *k, T *dx, ptrdiff_t W, ptrdiff_t wo, ptrdiff_t C,   \
    int kh, int pl)                                                                      \
{                                                                                        \
    const ptrdiff_t V = 64 / sizeof(T), CV = C - C % V;                                  \
    const fastnn_dwv_##S zero = {0};                                                     \
    ptrdiff_t iw, c0;                                                                    \
    for (iw = 0; iw < W;) {                                                              \
        ptrdiff_t start = iw + pl;                                                       \
        if (start - 2 >= 0 && start + 4 <= wo && iw + 4 <= W && CV > 0) {                \
            for (c0 = 0; c0 < CV; c0 += V)                                               \
                fastnn_dw3_px4_##S(dzrows, start * C + c0, k + c0, zero,                 \
                                   dx + iw * C + c0, C, kh, -1);                         \
            for (ptrdiff_t p = 0; p < 4 && CV < C; p++)                                  \
                fastnn_dw_dx_px_##S(dzrows, k, dx, iw + p, wo, C, CV, (int)(C - CV), kh, \
                                    3, 1, 1, pl);                                        \
            iw += 4;                                                                     \
            continue;                                                                    \
        }                                                                                \
        if (start - 2 >= 0 && start + 1 <= wo && CV == C) {                              \
            for (c0 = 0; c0 < C; c0 += V)                                                \
                fastnn_dw3_px1_##S(dzrows, start * C + c0, k + c0, zero,                 \
                                   dx + iw * C + c0, C, kh, -1);                         \
            iw++;                                                                        \
            continue;                                                                    \
        }                                                                                \
        for (c0 = 0; c0 < C; c0 += FASTNN_DW_BLOCK)                                      \
            fastnn_dw_dx_px_##S(dzrows, k, dx, iw, wo, C, c0,                            \
                                (int)(C - c0 < FASTNN_DW_BLOCK ? C - c0 : FASTNN_DW_BLOCK), \
                                kh, 3, 1, 1, pl);                                        \
        iw++;                                                                            \
    }                                                                                    \
}                                                                                        \
                                                                                         \
/* dW of one output row for a 3x3 kernel (sw = dw = 1, M = 1): pp[(i * 3 + j) * C + c]  \
 * += the sum over the outputs ow whose input column ow - pl + j lies in [0, W) of      \
 * xrows[i][(ow - pl + j) * C + c] * dz[ow * C + c] (summed in T over ascending ow,     \
 * then added in float64), for every kernel row with xrows[i] != NULL; and, if dbp      \
 * is not NULL, dbp[c] += the sum of dz over the row (the same way).                    \
 * Each vector block of channels keeps its 9 sums (and db's) in registers over a        \
 * chunk of FASTNN_DW3_CHUNK output columns, and on the stack between chunks: a         \
 * chunk's pixels (4 rows of them) stay in L1 while every block passes over them,       \
 * where sweeping whole rows block by block, 64 bytes of each pixel at a time, missed   \
 * L1 at every load. */                                                                 \
static inline __attribute__((always_inline)) void fastnn_dw3_dk_edge_##S(               \
    const T *const *xrows, const T *g, fastnn_dwv_##S *a, ptrdiff_t from, ptrdiff_t to, \
    ptrdiff_t W, ptrdiff_t C, ptrdiff_t c0, int pl)                                     \
{                                                                                       \
    typedef fastnn_dwv_##S vec;                                                         \
    for (ptrdiff_t ow = from; ow < to; ow++) {                                          \
        vec d = *(const vec *)(g + ow * C);                                             \
        a[9] += d;                                                                      \
        for (int i = 0; i < 3; i++) {                                                   \
            if (!xrows[i]) continue;                                                    \
            for (int j = 0; j < 3; j++) {                                               \
                ptrdiff_t iw = ow - pl + j;                                             \
                if (iw < 0 || iw >= W) continue;                                        \
                a[i * 3 + j] += *(const vec *)(xrows[i] + iw * C + c0) * d;             \
            }                                                                           \
        }                                                                               \
    }                                                                                   \
}                                                                                       \
                                                                                        \
FASTNN_CLONES static void fastnn_dw3_dk_row_##S(const T *const *xrows, const T *dz,     \
                                                double *pp, double *dbp, ptrdiff_t wo,  \
                                                ptrdiff_t W, ptrdiff_t C, int pl)       \
{                                                                                       \
    typedef fastnn_dwv_##S vec;                                                         \
    const ptrdiff_t V = 64 / sizeof(T), CV = C - C % V;                                 \
    /* Outputs whose three taps all lie inside the row: [lo, hi). */                    \
    ptrdiff_t lo = pl < wo ? pl : wo, hi = W - 2 + pl < wo ? W - 2 + pl : wo;           \
    if (hi < lo) hi = lo;                                                               \
    int all = xrows[0] && xrows[1] && xrows[2];                                         \
    vec acc[FASTNN_DW3_GROUP][10];                                                      \
    for (ptrdiff_t g0 = 0; g0 < CV; g0 += FASTNN_DW3_GROUP * V) {                       \
        int nbk = (int)((CV - g0) / V < FASTNN_DW3_GROUP ? (CV - g0) / V : FASTNN_DW3_GROUP);\
        for (int bk = 0; bk < nbk; bk++) {                                              \
            for (int t = 0; t < 10; t++)                                                \
                acc[bk][t] = (vec){0};                                                  \
            fastnn_dw3_dk_edge_##S(xrows, dz + g0 + bk * V, acc[bk], 0, lo, W, C,       \
                                   g0 + bk * V, pl);                                    \
        }                                                                               \
        for (ptrdiff_t o0 = lo; o0 < hi; o0 += FASTNN_DW3_CHUNK) {                      \
            ptrdiff_t o1 = o0 + FASTNN_DW3_CHUNK < hi ? o0 + FASTNN_DW3_CHUNK : hi;     \
            /* The next chunk's dz and last input row are new to the cache (the other   \
             * two input rows were the previous output row's): into L2 ahead. */        \
            for (ptrdiff_t e = o1 * C + g0; e < (o1 + FASTNN_DW3_CHUNK) * C && e < wo * C;\
                 e += V)                                                                \
                __builtin_prefetch(dz + e, 0, 2);                                       \
            if (xrows[2])                                                               \
                for (ptrdiff_t e = (o1 - pl + 2) * C + g0;                              \
                     e < (o1 - pl + 2 + FASTNN_DW3_CHUNK) * C && e < W * C; e += V)     \
                    __builtin_prefetch(xrows[2] + e, 0, 2);                             \
            for (int bk = 0; bk < nbk; bk++) {                                          \
                ptrdiff_t c0 = g0 + bk * V, b = (o0 - pl) * C;                          \
                const T *g = dz + c0;                                                   \
                vec *a = acc[bk];                                                       \
                if (all) {                                                              \
                    /* Each input row's window x[ow - pl .. ow - pl + 2] slides by one  \
                     * load. */                                                         \
                    const T *x0 = xrows[0] + c0, *x1 = xrows[1] + c0, *x2 = xrows[2] + c0;\
                    vec u0 = *(const vec *)(x0 + b), u1 = *(const vec *)(x0 + b + C);   \
                    vec v0 = *(const vec *)(x1 + b), v1 = *(const vec *)(x1 + b + C);   \
                    vec w0 = *(const vec *)(x2 + b), w1 = *(const vec *)(x2 + b + C);   \
                    vec a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3], a4 = a[4], a5 = a[5],\
                        a6 = a[6], a7 = a[7], a8 = a[8], ad = a[9];                     \
                    for (ptrdiff_t ow = o0; ow < o1; ow++) {                            \
                        ptrdiff_t q = (ow - pl + 2) * C;                                \
                        vec d = *(const vec *)(g + ow * C);                             \
                        vec u2 = *(const vec *)(x0 + q), v2 = *(const vec *)(x1 + q),   \
                            w2 = *(const vec *)(x2 + q);                                \
                        ad += d;                                                        \
                        a0 += u0 * d; a1 += u1 * d; a2 += u2 * d;                       \
                        a3 += v0 * d; a4 += v1 * d; a5 += v2 * d;                       \
                        a6 += w0 * d; a7 += w1 * d; a8 += w2 * d;                       \
                        u0 = u1; u1 = u2; v0 = v1; v1 = v2; w0 = w1; w1 = w2;           \
                    }                                                                   \
                    a[0] = a0; a[1] = a1; a[2] = a2; a[3] = a3; a[4] = a4; a[5] = a5;   \
                    a[6] = a6; a[7] = a7; a[8] = a8; a[9] = ad;                         \
                } else {                                                                \
                    for (int i = 0; i < 3; i++) {                                       \
                        if (!xrows[i]) continue;                                        \
                        const T *xr = xrows[i] + c0;                                    \
                        vec s0 = *(const vec *)(xr + b), s1 = *(const vec *)(xr + b + C);\
                        vec t0 = a[i * 3], t1 = a[i * 3 + 1], t2 = a[i * 3 + 2];        \
                        for (ptrdiff_t ow = o0; ow < o1; ow++) {                        \
                            vec d = *(const vec *)(g + ow * C);                         \
                            vec s2 = *(const vec *)(xr + (ow - pl + 2) * C);            \
                            t0 += s0 * d; t1 += s1 * d; t2 += s2 * d;                   \
                            s0 = s1; s1 = s2;                                           \
                        }                                                               \
                        a[i * 3] = t0; a[i * 3 + 1] = t1; a[i * 3 + 2] = t2;            \
                    }                                                                   \
                    for (ptrdiff_t ow = o0; ow < o1; ow++)                              \
                        a[9] += *(const vec *)(g + ow * C);                             \
                }                                                                       \
            }                                                                           \
        }                                                                               \
        for (int bk = 0; bk < nbk; bk++) {                                              \
            ptrdiff_t c0 = g0 + bk * V;                                                 \
            vec *a = acc[bk];                                                           \
            fastnn_dw3_dk_edge_##S(xrows, dz + c0, a, hi, wo, W, C, c0, pl);            \
            for (int t = 0; t < 9; t++) {                                               \
                if (!xrows[t / 3]) continue;                                            \
                for (ptrdiff_t c = 0; c < V; c++)                                       \
                    pp[t * C + c0 + c] += a[t][c];                                      \
            }                                                                           \
            if (dbp)                                                                    \
                for (ptrdiff_t c = 0; c < V; c++)                                       \
                    dbp[c0 + c] += a[9][c];                                             \
        }                                                                               \
    }                                                                                   \
    if (CV < C) {                                                                       \
        for (int i = 0; i < 3; i++) {                                                   \
            if (!xrows[i]) continue;                                                    \
            for (int j = 0; j < 3; j++) {                                               \
                ptrdiff_t off = j - pl, l = off < 0 ? -off : 0, h = W - off;            \
                if (h > wo) h = wo;                                                     \
                if (h > l)                                                              \
                    fastnn_dw_dk_block_##S(xrows[i], dz, pp + (i * 3 + j) * C, l, h, C, \
                                           CV, (int)(C - CV), 1, off);                  \
            }                                                                           \
        }                                                                               \
        if (dbp)                                                                        \
            for (ptrdiff_t c = CV; c < C; c++) {                                        \
                T s = 0;                                                                \
                for (ptrdiff_t ow = 0; ow < wo; ow++) s += dz[ow * C + c];              \
                dbp[c] += s;                                                            \
            }                                                                           \
    }                                                                                   \
}

FASTNN_DW_DEFINE(float, f)
FASTNN_DW_DEFINE(double, d)
FASTNN_DW_DEFINE_MULT(float, f)
FASTNN_DW_DEFINE_MULT(double, d)
FASTNN_DW3_DEFINE(float, f)
FASTNN_DW3_DEFINE(double, d)

#endif
