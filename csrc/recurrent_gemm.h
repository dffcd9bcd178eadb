/* The recurrent cells' own small GEMM and the whole-sequence loops that use it
 * (csrc/recurrent.pyx's "fused" path): per step, h_{t-1} @ R (forward) and
 * dGates @ R^T (backward) through a register-blocked microkernel over R packed
 * ONCE per call, each row block's gate pass run right after its product while
 * the block is in L1, and the threads kept in ONE OpenMP team for the whole
 * sequence: split by samples (no barrier in the step loop; the backward's
 * weight gradients by column panels after it) when each thread gets two row
 * blocks or more, else by units with one barrier per step.
 *
 * Why not OpenBLAS here: at the cells' sizes (64 rows, k = U = 128, 4U = 512
 * columns) it re-packs R on every one of the T steps and its per-call setup
 * is a large part of such a small product (bench/rnn_gemm_floor.py: the
 * products alone cost about PyTorch's whole LSTM).
 *
 * Layout: a K x W operand B is packed in panels of FASTNN_RG_NR(T) columns
 * (64 bytes: two 256-bit vectors), panel p holding B[k, p*NR + c] at
 * [(p*K + k)*NR + c], zero past the last column. The forward packs each gate's
 * U x U block of R on its own, so a thread that owns units [u0, u1) owns the
 * same panels in every gate and its gate pass needs no other thread's
 * columns. Every element of a product is one chain of multiply-adds over k in
 * order, whatever the thread count, the row block or the panel: the thread
 * split never changes a result's bits.
 *
 * The microkernel is FASTNN_CLONES (AVX-512 / AVX2 / portable versions picked
 * at load); the loops that call it are plain C with OpenMP pragmas (GCC does
 * not clone an OpenMP region's outlined body). The gate passes over a thread's
 * units are recurrent_rows.h's *_part functions. Shapes and all checks are the
 * .pyx's.
 */
#ifndef FASTNN_RECURRENT_GEMM_H
#define FASTNN_RECURRENT_GEMM_H

#include <stddef.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "fastnn_activations.h"
#include "fastnn_clones.h"
#include "fastnn_math.h"
#include "recurrent_rows.h"

/* Rows per microkernel call: 6 rows x 2 vectors = 12 accumulators, plus two
 * B vectors and a broadcast: 15 of AVX2's 16 registers. */
#define FASTNN_RG_MR 6
#define FASTNN_RG_NR_f32 16
#define FASTNN_RG_NR_f64 8

/* Cell codes, as recurrent.pyx's enum. */
#define FASTNN_RG_SIMPLE 0
#define FASTNN_RG_LSTM 1
#define FASTNN_RG_GRU 2

typedef float fastnn_rg_vf32 __attribute__((vector_size(32)));
typedef double fastnn_rg_vf64 __attribute__((vector_size(32)));

#define FASTNN_RG_DEFINE(T, S, SIGMOID, TANH)                                                \
static inline fastnn_rg_v##S fastnn_rg_load_##S(const T *p)                                 \
{                                                                                          \
    fastnn_rg_v##S v;                                                                      \
    memcpy(&v, p, sizeof v); /* unaligned: one vmovups */                                  \
    return v;                                                                              \
}                                                                                          \
                                                                                           \
/* dst (the packed panels of B, K x W) from B[k, j] = src[k * sk + j * sj]. */             \
static void fastnn_rg_pack_##S(ptrdiff_t K, ptrdiff_t W, const T *src, ptrdiff_t sk,       \
                               ptrdiff_t sj, T *dst)                                       \
{                                                                                          \
    const ptrdiff_t NR = FASTNN_RG_NR_##S;                                                 \
    if (sj == 1 && W == NR) { /* one whole panel of rows: a row copy per k */              \
        for (ptrdiff_t k = 0; k < K; k++)                                                  \
            memcpy(dst + k * NR, src + k * sk, NR * sizeof(T));                            \
        return;                                                                            \
    }                                                                                      \
    for (ptrdiff_t p = 0; p * NR < W; p++)                                                 \
        for (ptrdiff_t k = 0; k < K; k++)                                                  \
            for (ptrdiff_t c = 0; c < NR; c++) {                                           \
                ptrdiff_t j = p * NR + c;                                                  \
                dst[(p * K + k) * NR + c] = j < W ? src[k * sk + j * sj] : (T)0;           \
            }                                                                              \
}                                                                                          \
                                                                                           \
/* C[0:mr, 0:nc] (=|+=) A[0:mr, 0:K] @ panel, mr <= MR, nc <= NR; A[i, k] at            \
 * A[i * lda + k * ka] (ka = 1: rows; lda = 1: A stored transposed, as dR's H_{t-1}^T),   \
 * C's rows ldc apart. Each element: acc = 0, acc += a * b for k in order (then C = acc  \
 * or C += acc), in the block of 2-6 rows and in the one-row path alike. */             \
FASTNN_CLONES static void fastnn_rg_kernel_##S(ptrdiff_t mr, ptrdiff_t K, const T *A,      \
                                               ptrdiff_t lda, ptrdiff_t ka,                \
                                               const T *restrict panel, T *C,              \
                                               ptrdiff_t ldc, ptrdiff_t nc, int add)       \
{                                                                                          \
    const ptrdiff_t NR = FASTNN_RG_NR_##S, H = FASTNN_RG_NR_##S / 2;                       \
    fastnn_rg_v##S acc[FASTNN_RG_MR][2];                                                   \
    if (mr >= 2) {                                                                         \
        /* Fewer than MR rows (a block's tail) run here too, the missing rows reading  \
         * the last one again and never stored: a row at a time is latency-bound (two \
         * FMA chains), four times slower per row, and 64 rows end in a block of 4.  */ \
        fastnn_rg_v##S c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0}, c20 = {0}, c21 = {0};   \
        fastnn_rg_v##S c30 = {0}, c31 = {0}, c40 = {0}, c41 = {0}, c50 = {0}, c51 = {0};   \
        const ptrdiff_t l = mr - 1;                                                        \
        const T *a0 = A, *a1 = A + lda, *a2 = A + (l < 2 ? l : 2) * lda;                   \
        const T *a3 = A + (l < 3 ? l : 3) * lda, *a4 = A + (l < 4 ? l : 4) * lda;          \
        const T *a5 = A + (l < 5 ? l : 5) * lda;                                           \
        for (ptrdiff_t k = 0; k < K; k++) {                                                \
            fastnn_rg_v##S b0 = fastnn_rg_load_##S(panel + k * NR);                        \
            fastnn_rg_v##S b1 = fastnn_rg_load_##S(panel + k * NR + H);                    \
            T x;                                                                           \
            x = a0[k * ka]; c00 += x * b0; c01 += x * b1;                                  \
            x = a1[k * ka]; c10 += x * b0; c11 += x * b1;                                  \
            x = a2[k * ka]; c20 += x * b0; c21 += x * b1;                                  \
            x = a3[k * ka]; c30 += x * b0; c31 += x * b1;                                  \
            x = a4[k * ka]; c40 += x * b0; c41 += x * b1;                                  \
            x = a5[k * ka]; c50 += x * b0; c51 += x * b1;                                  \
        }                                                                                  \
        acc[0][0] = c00; acc[0][1] = c01; acc[1][0] = c10; acc[1][1] = c11;                \
        acc[2][0] = c20; acc[2][1] = c21; acc[3][0] = c30; acc[3][1] = c31;                \
        acc[4][0] = c40; acc[4][1] = c41; acc[5][0] = c50; acc[5][1] = c51;                \
    } else {                                                                               \
        for (ptrdiff_t i = 0; i < mr; i++) {                                               \
            fastnn_rg_v##S c0 = {0}, c1 = {0};                                             \
            const T *a = A + i * lda;                                                      \
            for (ptrdiff_t k = 0; k < K; k++) {                                            \
                T x = a[k * ka];                                                           \
                c0 += x * fastnn_rg_load_##S(panel + k * NR);                              \
                c1 += x * fastnn_rg_load_##S(panel + k * NR + H);                          \
            }                                                                              \
            acc[i][0] = c0;                                                                \
            acc[i][1] = c1;                                                                \
        }                                                                                  \
    }                                                                                      \
    if (nc == NR) {                                                                        \
        /* A whole panel: the sums go out as vectors (a stack copy read back element  \
         * by element stalled on store forwarding: a third of a K = 64 call). */      \
        for (ptrdiff_t i = 0; i < mr; i++) {                                               \
            T *c = C + i * ldc;                                                            \
            fastnn_rg_v##S v0 = acc[i][0], v1 = acc[i][1];                                 \
            if (add) {                                                                     \
                v0 += fastnn_rg_load_##S(c);                                               \
                v1 += fastnn_rg_load_##S(c + H);                                           \
            }                                                                              \
            memcpy(c, &v0, sizeof v0);                                                     \
            memcpy(c + H, &v1, sizeof v1);                                                 \
        }                                                                                  \
        return;                                                                            \
    }                                                                                      \
    for (ptrdiff_t i = 0; i < mr; i++) {                                                   \
        T row[FASTNN_RG_NR_##S];                                                           \
        T *c = C + i * ldc;                                                                \
        memcpy(row, &acc[i][0], sizeof acc[i][0]);                                         \
        memcpy(row + H, &acc[i][1], sizeof acc[i][1]);                                     \
        if (add)                                                                           \
            for (ptrdiff_t j = 0; j < nc; j++) c[j] += row[j];                             \
        else                                                                               \
            for (ptrdiff_t j = 0; j < nc; j++) c[j] = row[j];                              \
    }                                                                                      \
}                                                                                          \
                                                                                           \
/* acc[0:nc] += the column sums of a packed N x NR panel: the step's rows summed in T     \
 * (in order), then added in float64 (db over all steps: rows in order, deterministic). */ \
FASTNN_CLONES static void fastnn_rg_colsum_##S(ptrdiff_t N, ptrdiff_t nc,                  \
                                               const T *restrict pk, double *restrict acc) \
{                                                                                          \
    const ptrdiff_t NR = FASTNN_RG_NR_##S;                                                 \
    T s[FASTNN_RG_NR_##S] = {0};                                                           \
    for (ptrdiff_t n = 0; n < N; n++)                                                      \
        for (ptrdiff_t j = 0; j < NR; j++) s[j] += pk[n * NR + j];                         \
    for (ptrdiff_t j = 0; j < nc; j++) acc[j] += (double)s[j];                             \
}                                                                                          \
                                                                                           \
/* C[0:M, 0:W] (=|+=) A[0:M, 0:K] @ B, B packed by fastnn_rg_pack (the microkernel's      \
 * test entry; the cells call the microkernel from their own loops). */                   \
static void fastnn_rg_gemm_##S(ptrdiff_t M, ptrdiff_t W, ptrdiff_t K, const T *A,          \
                               ptrdiff_t lda, const T *packed, T *C, ptrdiff_t ldc,        \
                               int add)                                                    \
{                                                                                          \
    const ptrdiff_t NR = FASTNN_RG_NR_##S;                                                 \
    for (ptrdiff_t m0 = 0; m0 < M; m0 += FASTNN_RG_MR)                                     \
        for (ptrdiff_t p = 0; p * NR < W; p++) {                                           \
            ptrdiff_t mr = M - m0 < FASTNN_RG_MR ? M - m0 : FASTNN_RG_MR;                  \
            ptrdiff_t nc = W - p * NR < NR ? W - p * NR : NR;                              \
            fastnn_rg_kernel_##S(mr, K, A + m0 * lda, lda, 1, packed + p * K * NR,         \
                                 C + m0 * ldc + p * NR, ldc, nc, add);                     \
        }                                                                                  \
}                                                                                          \
                                                                                           \
/* This thread's units [*u0, *u1): a share of the U / NR panels of every gate. */         \
static inline void fastnn_rg_share_##S(ptrdiff_t U, ptrdiff_t *u0, ptrdiff_t *u1)          \
{                                                                                          \
    const ptrdiff_t NR = FASTNN_RG_NR_##S, P = (U + NR - 1) / NR;                          \
    int tid = 0, nt = 1;                                                                   \
    FASTNN_RG_TEAM(tid, nt)                                                                \
    *u0 = (P * tid / nt) * NR;                                                             \
    *u1 = (P * (tid + 1) / nt) * NR;                                                       \
    if (*u1 > U) *u1 = U;                                                                  \
    if (*u0 > U) *u0 = U;                                                                  \
}                                                                                          \
                                                                                           \
/* How the team splits a sequence's work, the same answer in every thread (it depends on  \
 * N and the team's size only): by samples (whole blocks of MR rows [*r0, *r1), all units) \
 * when each thread gets two row blocks or more, returning 1; else by units (this        \
 * thread's panels [*u0, *u1), all rows), returning 0. */                                 \
static inline int fastnn_rg_split_##S(ptrdiff_t N, ptrdiff_t U, int tid, int nth,          \
                                      ptrdiff_t *u0, ptrdiff_t *u1, ptrdiff_t *r0,         \
                                      ptrdiff_t *r1)                                       \
{                                                                                          \
    const ptrdiff_t RB = (N + FASTNN_RG_MR - 1) / FASTNN_RG_MR;                            \
    *u0 = 0; *u1 = U; *r0 = 0; *r1 = N;                                                    \
    if (nth > 1 && RB >= 2 * nth) {                                                        \
        *r0 = RB * tid / nth * FASTNN_RG_MR;                                               \
        *r1 = RB * (tid + 1) / nth * FASTNN_RG_MR;                                         \
        if (*r1 > N) *r1 = N;                                                              \
        return 1;                                                                          \
    }                                                                                      \
    fastnn_rg_share_##S(U, u0, u1);                                                        \
    return 0;                                                                              \
}                                                                                          \
                                                                                           \
/* The whole forward sequence (rnn_forward's, no recurrent dropout): Rp the gates' U x U   \
 * blocks of R packed one after another (G blocks of P panels); see _forward in the .pyx  \
 * for the arrays. nt threads (1: no team). With two row blocks or more per thread, each  \
 * thread runs its own samples (whole blocks of rows) through the whole sequence: a      \
 * sample's state needs no other's, so no barrier and no state line crosses cores (two   \
 * one-thread processes each ran at their solo speed; the team split by units lost a     \
 * third of it). Fewer rows: split by units, one barrier per step. */                     \
static void fastnn_rg_forward_##S(int nt, int cell, int act, int ract, ptrdiff_t T_,       \
                                  ptrdiff_t N, ptrdiff_t U, const T *xproj, const T *Rp,   \
                                  const T *brec, const unsigned char *mask, T *Y, T *H,    \
                                  T *C, T *A, T *E, T *S, int inplace)                     \
{                                                                                          \
    const ptrdiff_t NR = FASTNN_RG_NR_##S, P = (U + NR - 1) / NR;                          \
    const ptrdiff_t G = cell == FASTNN_RG_SIMPLE ? 1 : (cell == FASTNN_RG_LSTM ? 4 : 3);   \
    const ptrdiff_t GU = G * U;                                                            \
    _Pragma("omp parallel num_threads(nt) if (nt > 1)")                                    \
    {                                                                                      \
        int tid = 0, nth = 1;                                                              \
        FASTNN_RG_TEAM(tid, nth)                                                           \
        ptrdiff_t u0, u1, r0, r1;                                                          \
        const int by_rows = fastnn_rg_split_##S(N, U, tid, nth, &u0, &u1, &r0, &r1);       \
        const ptrdiff_t L = u1 - u0, p0 = u0 / NR, p1 = (u1 + NR - 1) / NR;                \
        for (ptrdiff_t t = 0; t < T_; t++) {                                               \
            const T *hprev = H + t * N * U;                                                \
            for (ptrdiff_t m0 = r0; m0 < r1 && L > 0; m0 += FASTNN_RG_MR) {                \
                ptrdiff_t mr = r1 - m0 < FASTNN_RG_MR ? r1 - m0 : FASTNN_RG_MR;            \
                /* The product of this row block, this thread's columns of each gate:     \
                 * into the gates (over the input projection when A is xproj), or (GRU)  \
                 * into S, which the reset gate scales before it is added. */             \
                T *dst = cell == FASTNN_RG_GRU ? S + m0 * GU : A + (t * N + m0) * GU;      \
                int add = inplace && cell != FASTNN_RG_GRU;                                \
                for (ptrdiff_t g = 0; g < G; g++)                                          \
                    for (ptrdiff_t p = p0; p < p1; p++) {                                  \
                        ptrdiff_t nc = U - p * NR < NR ? U - p * NR : NR;                  \
                        fastnn_rg_kernel_##S(mr, U, hprev + m0 * U, U, 1,                  \
                                             Rp + (g * P + p) * U * NR,                    \
                                             dst + g * U + p * NR, GU, nc, add);           \
                    }                                                                      \
                /* Then the block's gate pass, its rows still in L1. */                  \
                for (ptrdiff_t n = m0; n < m0 + mr; n++) {                                 \
                    const T *x = inplace ? NULL : xproj + (t * N + n) * GU + u0;           \
                    T *a = A + (t * N + n) * GU + u0;                                      \
                    T *hn = H + ((t + 1) * N + n) * U + u0;                                \
                    const T *hp = hprev + n * U + u0;                                      \
                    T *y = Y + (n * T_ + t) * U + u0;                                      \
                    int keep = mask == NULL || mask[t * N + n] != 0;                       \
                    if (cell == FASTNN_RG_SIMPLE) {                                        \
                        fastnn_simple_fwd_row_##S(L, a, x, act); /* cloned: wide */        \
                        memcpy(hn, a, L * sizeof(T));                                      \
                    } else if (cell == FASTNN_RG_LSTM) {                                   \
                        const T *cp = C + (t * N + n) * U + u0;                            \
                        T *cn = C + ((t + 1) * N + n) * U + u0;                            \
                        fastnn_lstm_fwd_part_##S(L, U, a, x, cp, cn,                       \
                                                 E + (t * N + n) * U + u0, hn, act, ract); \
                        if (!keep)                                                         \
                            memcpy(cn, cp, L * sizeof(T));                                 \
                    } else {                                                               \
                        fastnn_gru_fwd_part_##S(L, U, a, x ? x : a, S + n * GU + u0,       \
                                                brec ? brec + u0 : NULL, hp,               \
                                                E + (t * N + n) * U + u0, hn, act, ract);  \
                    }                                                                      \
                    if (keep) {                                                            \
                        memcpy(y, hn, L * sizeof(T));                                      \
                    } else {                                                               \
                        /* A padded step: the state stays, the output repeats. */         \
                        memcpy(hn, hp, L * sizeof(T));                                     \
                        if (t == 0)                                                        \
                            memset(y, 0, L * sizeof(T));                                   \
                        else                                                               \
                            memcpy(y, y - U, L * sizeof(T));                               \
                    }                                                                      \
                }                                                                          \
            }                                                                              \
            /* Split by units, the next step's product reads every thread's units. */    \
            if (!by_rows) {                                                                \
                _Pragma("omp barrier")                                                     \
            }                                                                              \
        }                                                                                  \
    }                                                                                      \
}                                                                                          \
                                                                                           \
/* Step t's weight gradients over column panels [p0, p1) of every gate: dR += H_{t-1}^T  \
 * @ dGates_t (the GRU's candidate block from DH, its product's gradient), dW += X_t^T @  \
 * dX_t from the same packed panel (the candidate block packed again, from dX), dbacc +=  \
 * dX_t's column sums; each NULL to skip. Bpk: G * P panels of N x NR, scratch. */         \
static void fastnn_rg_wgrad_step_##S(int cell, ptrdiff_t t, ptrdiff_t N, ptrdiff_t U,      \
                                     ptrdiff_t G, ptrdiff_t p0, ptrdiff_t p1, const T *H,  \
                                     const T *dX, const T *DH, T *dR, T *Bpk, ptrdiff_t F, \
                                     const T *X, T *dW, double *dbacc)                     \
{                                                                                          \
    const ptrdiff_t NR = FASTNN_RG_NR_##S, P = (U + NR - 1) / NR, GU = G * U;              \
    for (ptrdiff_t g = 0; (dR != NULL || dW != NULL || dbacc != NULL) && g < G; g++) {     \
        int cand = cell == FASTNN_RG_GRU && g == 2;                                        \
        const T *dxg = dX + t * N * GU + g * U;                                            \
        const T *src = cand ? DH + t * N * U : dxg;                                        \
        ptrdiff_t lds = cand ? U : GU;                                                     \
        for (ptrdiff_t p = p0; p < p1; p++) {                                              \
            ptrdiff_t nc = U - p * NR < NR ? U - p * NR : NR;                              \
            T *pk = Bpk + (g * P + p) * N * NR;                                            \
            if (dR != NULL) {                                                              \
                fastnn_rg_pack_##S(N, nc, src + p * NR, lds, 1, pk);                       \
                for (ptrdiff_t i0 = 0; i0 < U; i0 += FASTNN_RG_MR) {                       \
                    ptrdiff_t mr = U - i0 < FASTNN_RG_MR ? U - i0 : FASTNN_RG_MR;          \
                    fastnn_rg_kernel_##S(mr, N, H + t * N * U + i0, 1, U, pk,              \
                                         dR + i0 * GU + g * U + p * NR, GU, nc, 1);        \
                }                                                                          \
            }                                                                              \
            if (dW == NULL && dbacc == NULL)                                               \
                continue;                                                                  \
            if (cand || dR == NULL)                                                        \
                fastnn_rg_pack_##S(N, nc, dxg + p * NR, GU, 1, pk);                        \
            for (ptrdiff_t i0 = 0; dW != NULL && i0 < F; i0 += FASTNN_RG_MR) {            \
                ptrdiff_t mr = F - i0 < FASTNN_RG_MR ? F - i0 : FASTNN_RG_MR;              \
                fastnn_rg_kernel_##S(mr, N, X + t * N * F + i0, 1, F, pk,                  \
                                     dW + i0 * GU + g * U + p * NR, GU, nc, 1);            \
            }                                                                              \
            if (dbacc != NULL)                                                             \
                fastnn_rg_colsum_##S(N, nc, pk, dbacc + g * U + p * NR);                   \
        }                                                                                  \
    }                                                                                      \
}                                                                                          \
                                                                                           \
/* The whole backward sequence (rnn_backward's, no recurrent dropout): RTp R^T (GU x U)    \
 * packed; SI two (N, GU) buffers (the GRU's, one per step parity so that a thread's     \
 * gate pass never writes what another's product still reads). dh, dc, dy as _backward's. \
 * dR (U, GU) accumulated here too (NULL: not), Bpk (G * P panels of N x NR) its        \
 * scratch. The input projection's gradients too, each NULL to skip: dW (F, GU) += X^T @  \
 * dX from X (T, N, F), the rows as projected; dbacc (GU, float64) += dX's column sums;   \
 * dXin (T, N, F) = dX @ W^T from WTp, W^T (GU x F) packed. With two row blocks or more  \
 * per thread, as the forward, the threads split the samples for the recurrence (gate    \
 * passes, dh_{t-1}, dXin: a sample's rows only, no barrier), then the weight gradients  \
 * by column panels after it, step by step in the same order (the same bits). */         \
static void fastnn_rg_backward_##S(int nt, int cell, int act, int ract, ptrdiff_t T_,      \
                                   ptrdiff_t N, ptrdiff_t U, const T *RTp,                 \
                                   const unsigned char *mask, const T *H, const T *C,      \
                                   const T *A, const T *E, const T *dY, T *dX, T *DH,      \
                                   T *SI, T *dh, T *dc, T *dy, T *dR, T *Bpk,              \
                                   ptrdiff_t F, const T *X, const T *WTp, T *dW, T *dXin,  \
                                   double *dbacc)                                          \
{                                                                                          \
    const ptrdiff_t NR = FASTNN_RG_NR_##S, P = (U + NR - 1) / NR;                          \
    const ptrdiff_t G = cell == FASTNN_RG_SIMPLE ? 1 : (cell == FASTNN_RG_LSTM ? 4 : 3);   \
    const ptrdiff_t GU = G * U, RB = (N + FASTNN_RG_MR - 1) / FASTNN_RG_MR;                \
    const int wgrads = dR != NULL || dW != NULL || dbacc != NULL;                          \
    _Pragma("omp parallel num_threads(nt) if (nt > 1)")                                    \
    {                                                                                      \
        int tid = 0, nth = 1;                                                              \
        FASTNN_RG_TEAM(tid, nth)                                                           \
        ptrdiff_t u0, u1, r0, r1;                                                          \
        const int by_rows = fastnn_rg_split_##S(N, U, tid, nth, &u0, &u1, &r0, &r1);       \
        const ptrdiff_t L = u1 - u0, p0 = u0 / NR, p1 = (u1 + NR - 1) / NR;                \
        /* dXin's tiles (a row block by a panel of F): this thread's share, or (by rows) \
         * its own rows' tiles. */                                                         \
        const ptrdiff_t QF = (F + NR - 1) / NR, IT = RB * QF;                              \
        const ptrdiff_t it0 = by_rows ? r0 / FASTNN_RG_MR * QF : IT * tid / nth;           \
        const ptrdiff_t it1 = by_rows ? (r1 + FASTNN_RG_MR - 1) / FASTNN_RG_MR * QF         \
                                      : IT * (tid + 1) / nth;                              \
        for (ptrdiff_t t = T_ - 1; t >= 0; t--) {                                          \
            T *si = cell == FASTNN_RG_GRU ? SI + (t & 1) * N * GU : dX + t * N * GU;       \
            for (ptrdiff_t n = r0; n < r1 && L > 0; n++) {                                 \
                int keep = mask == NULL || mask[t * N + n] != 0;                           \
                const T *gy = dY + (n * T_ + t) * U + u0;                                  \
                /* dY's rows are T * U apart: fetch a few samples ahead. */                \
                if (n + 4 < N)                                                             \
                    for (ptrdiff_t i = 0; i < L; i += 64 / (ptrdiff_t)sizeof(T))           \
                        __builtin_prefetch(gy + 4 * T_ * U + i);                           \
                T *dhn = dh + n * U + u0;                                                  \
                T *g = dy + n * U + u0;                                                    \
                T *dx = dX + (t * N + n) * GU + u0;                                        \
                const T *a = A + (t * N + n) * GU + u0;                                    \
                if (!keep) {                                                               \
                    /* The step passed the state and the output on unchanged. */         \
                    for (ptrdiff_t i = 0; i < L; i++) g[i] += gy[i];                       \
                    for (ptrdiff_t k = 0; k < G; k++) {                                    \
                        memset(dx + k * U, 0, L * sizeof(T));                              \
                        if (cell == FASTNN_RG_GRU)                                         \
                            memset(si + n * GU + k * U + u0, 0, L * sizeof(T));            \
                    }                                                                      \
                    if (cell == FASTNN_RG_GRU)                                             \
                        memset(DH + (t * N + n) * U + u0, 0, L * sizeof(T));               \
                    continue;                                                              \
                }                                                                          \
                for (ptrdiff_t i = 0; i < L; i++) g[i] = dhn[i] + gy[i] + g[i];            \
                if (cell == FASTNN_RG_SIMPLE) {                                            \
                    fastnn_simple_bwd_row_##S(L, a, g, dx, dhn, act);                      \
                } else if (cell == FASTNN_RG_LSTM) {                                       \
                    fastnn_lstm_bwd_part_##S(L, U, a, E + (t * N + n) * U + u0,            \
                                             C + (t * N + n) * U + u0, g, dx,              \
                                             dc + n * U + u0, act, ract);                  \
                    memset(dhn, 0, L * sizeof(T));                                         \
                } else {                                                                   \
                    fastnn_gru_bwd_part_##S(L, U, a, E + (t * N + n) * U + u0,             \
                                            H + (t * N + n) * U + u0, g, dx,               \
                                            si + n * GU + u0, DH + (t * N + n) * U + u0,   \
                                            dhn, act, ract);                               \
                }                                                                          \
                memset(g, 0, L * sizeof(T));                                               \
            }                                                                              \
            if (!by_rows) {                                                                \
                /* Split by units: this step's weight gradients over this thread's       \
                 * columns while the step's gates are in cache (one GEMM over all T*N    \
                 * rows afterwards cost 1.6x as much in OpenBLAS); then dh_{t-1} reads   \
                 * every thread's gates of the step. */                                  \
                if (wgrads && L > 0)                                                       \
                    fastnn_rg_wgrad_step_##S(cell, t, N, U, G, p0, p1, H, dX, DH, dR, Bpk, \
                                             F, X, dW, dbacc);                             \
                _Pragma("omp barrier")                                                     \
            }                                                                              \
            /* dh_{t-1} += dGates @ R^T: this thread's columns (by units) or rows. */      \
            for (ptrdiff_t m0 = r0; m0 < r1 && L > 0; m0 += FASTNN_RG_MR) {                \
                ptrdiff_t mr = r1 - m0 < FASTNN_RG_MR ? r1 - m0 : FASTNN_RG_MR;            \
                for (ptrdiff_t p = p0; p < p1; p++) {                                      \
                    ptrdiff_t nc = U - p * NR < NR ? U - p * NR : NR;                      \
                    fastnn_rg_kernel_##S(mr, GU, si + m0 * GU, GU, 1, RTp + p * GU * NR,   \
                                         dh + m0 * U + p * NR, U, nc, 1);                  \
                }                                                                          \
            }                                                                              \
            /* dXin_t = dX_t @ W^T, this thread's tiles. */                                \
            for (ptrdiff_t it = it0; dXin != NULL && it < it1; it++) {                     \
                ptrdiff_t m0 = it / QF * FASTNN_RG_MR, q = it % QF;                        \
                ptrdiff_t mr = N - m0 < FASTNN_RG_MR ? N - m0 : FASTNN_RG_MR;              \
                ptrdiff_t nc = F - q * NR < NR ? F - q * NR : NR;                          \
                fastnn_rg_kernel_##S(mr, GU, dX + (t * N + m0) * GU, GU, 1, WTp + q * GU * NR, \
                                     dXin + (t * N + m0) * F + q * NR, F, nc, 0);          \
            }                                                                              \
        }                                                                                  \
        if (by_rows && wgrads) {                                                           \
            /* Split by samples: the weight gradients once every step's gates are in,   \
             * by column panels, step by step in the order above. */                     \
            _Pragma("omp barrier")                                                         \
            ptrdiff_t w0, w1;                                                              \
            fastnn_rg_share_##S(U, &w0, &w1);                                              \
            for (ptrdiff_t t = T_ - 1; t >= 0 && w1 > w0; t--)                             \
                fastnn_rg_wgrad_step_##S(cell, t, N, U, G, w0 / NR, (w1 + NR - 1) / NR, H, \
                                         dX, DH, dR, Bpk, F, X, dW, dbacc);                \
        }                                                                                  \
    }                                                                                      \
}

#ifdef _OPENMP
#define FASTNN_RG_TEAM(tid, nt) { tid = omp_get_thread_num(); nt = omp_get_num_threads(); }
#else
#define FASTNN_RG_TEAM(tid, nt)
#endif

FASTNN_RG_DEFINE(float, f32, fastnn_sigmoid_f, fastnn_tanh_f)
FASTNN_RG_DEFINE(double, f64, fastnn_sigmoid_d, tanh)

#endif
