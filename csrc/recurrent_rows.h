/* The recurrent cells' row passes (csrc/recurrent.pyx): for one sample at one
 * step, forward, add the input projection to the recurrent product, apply the
 * gate nonlinearities and update the state, all while the row is in L1;
 * backward, the gate derivatives and the state gradients. The LSTM's and the
 * GRU's passes are written once, over units [u0, u0 + L) of a row (the *_part
 * functions, which recurrent_gemm.h's threads call on their units); the
 * whole-row functions are those with L = U.
 * Written in C so that GCC builds each in several instruction-set versions
 * (FASTNN_CLONES): the sigmoid and tanh of fastnn_math.h then run 8 or 16
 * lanes wide on CPUs that have AVX2/AVX-512, in a portable build. Loops over
 * rows and steps, the GEMMs and all checks stay in the .pyx. float64 uses
 * libm's tanh and fastnn_sigmoid_d, as the other kernels do.
 */
#ifndef FASTNN_RECURRENT_ROWS_H
#define FASTNN_RECURRENT_ROWS_H

#include <math.h>
#include <stddef.h>
#include "fastnn_activations.h"
#include "fastnn_clones.h"
#include "fastnn_math.h"

#define FASTNN_RNN_DEFINE(T, S, SIGMOID, TANH)                                              \
/* v = act(v) in place; the switch is outside the loops so each vectorizes. Always       \
 * inlined: an out-of-line copy is built for the portable baseline only, and the       \
 * FASTNN_CLONES callers then ran their sigmoids and tanhs 4 lanes wide, not 8 or 16    \
 * (a third of the LSTM's forward in perf). */                                           \
static inline __attribute__((always_inline)) void                                        \
fastnn_rnn_act_##S(T *restrict v, ptrdiff_t n, int act)                                  \
{                                                                                        \
    if (act == FASTNN_SIGMOID) {                                                         \
        for (ptrdiff_t i = 0; i < n; i++) v[i] = SIGMOID(v[i]);                          \
    } else if (act == FASTNN_TANH) {                                                     \
        for (ptrdiff_t i = 0; i < n; i++) v[i] = TANH(v[i]);                             \
    } else if (act == FASTNN_RELU) {                                                     \
        /* "<= 0" keeps a NaN (numpy.maximum's ReLU; found by tests/fuzz) */             \
        for (ptrdiff_t i = 0; i < n; i++) v[i] = v[i] <= 0 ? 0 : v[i];                   \
    }                                                                                    \
}                                                                                        \
                                                                                         \
/* SimpleRNN: a (U) holds h_{t-1} @ R; a = act(a + x) is h_new (x NULL: a holds the     \
 * input projection already). */                                                        \
FASTNN_CLONES static void fastnn_simple_fwd_row_##S(ptrdiff_t U, T *restrict a,           \
                                                    const T *restrict x, int act)        \
{                                                                                        \
    if (x)                                                                               \
        for (ptrdiff_t i = 0; i < U; i++) a[i] += x[i];                                  \
    fastnn_rnn_act_##S(a, U, act);                                                       \
}                                                                                        \
                                                                                         \
/* LSTM, units [u0, u0 + L) of one row: a (gate k of those units at a + k * U; i f c o)  \
 * holds h_{t-1} @ R; on return the activated gates, cn = f * cp + i * g, e = act(cn),   \
 * hn = o * e (x NULL as for SimpleRNN). recurrent_gemm.h's threads each take their      \
 * units' part; L = U is the whole row. */                                               \
FASTNN_CLONES static void fastnn_lstm_fwd_part_##S(ptrdiff_t L, ptrdiff_t U, T *restrict a, \
                                                   const T *restrict x,                  \
                                                   const T *restrict cp, T *restrict cn, \
                                                   T *restrict e, T *restrict hn, int act, \
                                                   int ract)                             \
{                                                                                        \
    if (x)                                                                               \
        for (ptrdiff_t g = 0; g < 4; g++)                                                \
            for (ptrdiff_t i = 0; i < L; i++) a[g * U + i] += x[g * U + i];              \
    fastnn_rnn_act_##S(a, L, ract);                                                      \
    fastnn_rnn_act_##S(a + U, L, ract);                                                  \
    fastnn_rnn_act_##S(a + 2 * U, L, act);                                               \
    fastnn_rnn_act_##S(a + 3 * U, L, ract);                                              \
    for (ptrdiff_t i = 0; i < L; i++) {                                                  \
        T c = a[U + i] * cp[i] + a[i] * a[2 * U + i];                                    \
        cn[i] = c;                                                                       \
        e[i] = c;                                                                        \
    }                                                                                    \
    fastnn_rnn_act_##S(e, L, act);                                                       \
    for (ptrdiff_t i = 0; i < L; i++) hn[i] = a[3 * U + i] * e[i];                       \
}                                                                                        \
                                                                                         \
/* LSTM, the whole row (4U). */                                                          \
FASTNN_CLONES static void fastnn_lstm_fwd_row_##S(ptrdiff_t U, T *restrict a,            \
                                                  const T *restrict x,                   \
                                                  const T *restrict cp, T *restrict cn,  \
                                                  T *restrict e, T *restrict hn,         \
                                                  int act, int ract)                     \
{                                                                                        \
    fastnn_lstm_fwd_part_##S(U, U, a, x, cp, cn, e, hn, act, ract);                      \
}                                                                                        \
                                                                                         \
/* GRU (reset_after), units [u0, u0 + L) of one row: s (gate k of those units at         \
 * s + k * U, and so for a, x and b) holds h_{t-1} @ R, b its bias or NULL; on return    \
 * a (z r h) the activated gates, e = s_h + b_h (the candidate's recurrent term),        \
 * hn = z * hp + (1 - z) * h~. x may be a itself (read at each index before written).    \
 * recurrent_gemm.h's threads each take their units' part; L = U is the whole row. */    \
FASTNN_CLONES static void fastnn_gru_fwd_part_##S(ptrdiff_t L, ptrdiff_t U, T *a,        \
                                                  const T *x, const T *restrict s,       \
                                                  const T *restrict b,                   \
                                                  const T *restrict hp, T *restrict e,   \
                                                  T *restrict hn, int act, int ract)     \
{                                                                                        \
    for (ptrdiff_t g = 0; g < 2; g++) {                                                  \
        if (b)                                                                           \
            for (ptrdiff_t i = 0; i < L; i++)                                            \
                a[g * U + i] = x[g * U + i] + s[g * U + i] + b[g * U + i];               \
        else                                                                             \
            for (ptrdiff_t i = 0; i < L; i++) a[g * U + i] = x[g * U + i] + s[g * U + i]; \
    }                                                                                    \
    if (b)                                                                               \
        for (ptrdiff_t i = 0; i < L; i++) e[i] = s[2 * U + i] + b[2 * U + i];            \
    else                                                                                 \
        for (ptrdiff_t i = 0; i < L; i++) e[i] = s[2 * U + i];                           \
    fastnn_rnn_act_##S(a, L, ract);                                                      \
    fastnn_rnn_act_##S(a + U, L, ract);                                                  \
    for (ptrdiff_t i = 0; i < L; i++) a[2 * U + i] = x[2 * U + i] + a[U + i] * e[i];     \
    fastnn_rnn_act_##S(a + 2 * U, L, act);                                               \
    for (ptrdiff_t i = 0; i < L; i++) hn[i] = a[i] * hp[i] + (1 - a[i]) * a[2 * U + i];  \
}                                                                                        \
                                                                                         \
/* GRU, the whole row (3U). */                                                           \
FASTNN_CLONES static void fastnn_gru_fwd_row_##S(ptrdiff_t U, T *a,                      \
                                                 const T *x,                             \
                                                 const T *restrict s,                    \
                                                 const T *restrict b,                    \
                                                 const T *restrict hp, T *restrict e,    \
                                                 T *restrict hn, int act, int ract)      \
{                                                                                        \
    fastnn_gru_fwd_part_##S(U, U, a, x, s, b, hp, e, hn, act, ract);                     \
}                                                                                        \
/* Backward rows (one sample, one step): g (U) is the gradient of the step's h_new.     \
 * The derivatives come from the outputs, as fastnn.backend.Ops does. The default        \
 * pair (tanh, sigmoid) gets its own loop, written out so that it vectorizes. */         \
static inline T fastnn_rnn_dact_##S(int act, T y)                                        \
{                                                                                        \
    return act == FASTNN_SIGMOID ? y * (1 - y)                                           \
         : act == FASTNN_TANH ? 1 - y * y                                                \
         : act == FASTNN_RELU ? (y > 0 ? (T)1 : (T)0) : (T)1;                            \
}                                                                                        \
                                                                                         \
/* SimpleRNN: dx = g * act'(h_new); nothing reaches h_{t-1} but through the GEMM. */    \
FASTNN_CLONES static void fastnn_simple_bwd_row_##S(ptrdiff_t U, const T *restrict a,     \
                                                    const T *restrict g, T *restrict dx, \
                                                    T *restrict dhn, int act)            \
{                                                                                        \
    if (act == FASTNN_TANH) {                                                            \
        for (ptrdiff_t i = 0; i < U; i++) dx[i] = g[i] * (1 - a[i] * a[i]);              \
    } else {                                                                             \
        for (ptrdiff_t i = 0; i < U; i++) dx[i] = g[i] * fastnn_rnn_dact_##S(act, a[i]); \
    }                                                                                    \
    for (ptrdiff_t i = 0; i < U; i++) dhn[i] = 0;                                        \
}                                                                                        \
                                                                                         \
/* LSTM, units [u0, u0 + L) of one row: a the activated gates (i f c o; gate k of those  \
 * units at a + k * U, and so for dx), e = act(c_t), cp = c_{t-1}; dc (L) holds the      \
 * gradient of c_t on entry, of c_{t-1} on return. recurrent_gemm.h's threads each take  \
 * their units' part; L = U is the whole row. */                                         \
FASTNN_CLONES static void fastnn_lstm_bwd_part_##S(ptrdiff_t L, ptrdiff_t U,             \
                                                   const T *restrict a,                  \
                                                   const T *restrict e,                  \
                                                   const T *restrict cp,                 \
                                                   const T *restrict g, T *restrict dx,  \
                                                   T *restrict dc, int act, int ract)    \
{                                                                                        \
    if (act == FASTNN_TANH && ract == FASTNN_SIGMOID) {                                  \
        for (ptrdiff_t i = 0; i < L; i++) {                                              \
            T gi = a[i], gf = a[U + i], gg = a[2 * U + i], go = a[3 * U + i];            \
            T dcj = dc[i] + g[i] * go * (1 - e[i] * e[i]);                               \
            dx[i] = dcj * gg * gi * (1 - gi);                                            \
            dx[U + i] = dcj * cp[i] * gf * (1 - gf);                                     \
            dx[2 * U + i] = dcj * gi * (1 - gg * gg);                                    \
            dx[3 * U + i] = g[i] * e[i] * go * (1 - go);                                 \
            dc[i] = dcj * gf;                                                            \
        }                                                                                \
    } else {                                                                             \
        for (ptrdiff_t i = 0; i < L; i++) {                                              \
            T gi = a[i], gf = a[U + i], gg = a[2 * U + i], go = a[3 * U + i];            \
            T dcj = dc[i] + g[i] * go * fastnn_rnn_dact_##S(act, e[i]);                  \
            dx[i] = dcj * gg * fastnn_rnn_dact_##S(ract, gi);                            \
            dx[U + i] = dcj * cp[i] * fastnn_rnn_dact_##S(ract, gf);                     \
            dx[2 * U + i] = dcj * gi * fastnn_rnn_dact_##S(act, gg);                     \
            dx[3 * U + i] = g[i] * e[i] * fastnn_rnn_dact_##S(ract, go);                 \
            dc[i] = dcj * gf;                                                            \
        }                                                                                \
    }                                                                                    \
}                                                                                        \
                                                                                         \
/* LSTM, the whole row; dhn (U) zeroed: nothing reaches h_{t-1} but through the GEMM. */ \
FASTNN_CLONES static void fastnn_lstm_bwd_row_##S(ptrdiff_t U, const T *restrict a,      \
                                                  const T *restrict e,                   \
                                                  const T *restrict cp,                  \
                                                  const T *restrict g, T *restrict dx,   \
                                                  T *restrict dc, T *restrict dhn,       \
                                                  int act, int ract)                     \
{                                                                                        \
    fastnn_lstm_bwd_part_##S(U, U, a, e, cp, g, dx, dc, act, ract);                      \
    for (ptrdiff_t i = 0; i < U; i++) dhn[i] = 0;                                        \
}                                                                                        \
                                                                                         \
/* GRU (reset_after), units [u0, u0 + L) of one row, any activations (derivatives        \
 * through fastnn_rnn_dact): a the activated gates (z r h~; gate k of those units at     \
 * a + k * U, and so for dx and di), e the candidate's recurrent term, hp = h_{t-1}.     \
 * dx: the input projection's gradient; di: the recurrent product's (its candidate       \
 * block scaled by r), dhh that block again (for dR); dhn: what reaches h_{t-1}          \
 * directly (g * z). recurrent_gemm.h's threads each take their units' part. */          \
FASTNN_CLONES static void fastnn_gru_bwd_part_##S(ptrdiff_t L, ptrdiff_t U,              \
                                                  const T *restrict a,                   \
                                                  const T *restrict e,                   \
                                                  const T *restrict hp,                  \
                                                  const T *restrict g, T *restrict dx,   \
                                                  T *restrict di, T *restrict dhh,       \
                                                  T *restrict dhn, int act, int ract)    \
{                                                                                        \
    for (ptrdiff_t i = 0; i < L; i++) {                                                  \
        T z = a[i], r = a[U + i], hh = a[2 * U + i], gi = g[i];                          \
        T dz = gi * (hp[i] - hh) * fastnn_rnn_dact_##S(ract, z);                         \
        T dph = gi * (1 - z) * fastnn_rnn_dact_##S(act, hh);                             \
        T dr = dph * e[i] * fastnn_rnn_dact_##S(ract, r);                                \
        dx[i] = dz; dx[U + i] = dr; dx[2 * U + i] = dph;                                 \
        di[i] = dz; di[U + i] = dr; di[2 * U + i] = dph * r;                             \
        dhh[i] = dph * r;                                                                \
        dhn[i] = gi * z;                                                                 \
    }                                                                                    \
}                                                                                        \
                                                                                         \
/* GRU, the whole row. Only here does the default pair get its written-out loop:         \
 * the part's products group differently ((gi * d) * (z * (1 - z)) against               \
 * ((gi * d) * z) * (1 - z)), and giving it this loop would change the fused             \
 * path's bits. */                                                                       \
FASTNN_CLONES static void fastnn_gru_bwd_row_##S(ptrdiff_t U, const T *restrict a,       \
                                                 const T *restrict e,                    \
                                                 const T *restrict hp,                   \
                                                 const T *restrict g, T *restrict dx,    \
                                                 T *restrict di, T *restrict dhh,        \
                                                 T *restrict dhn, int act, int ract)     \
{                                                                                        \
    if (act == FASTNN_TANH && ract == FASTNN_SIGMOID) {                                  \
        for (ptrdiff_t i = 0; i < U; i++) {                                              \
            T z = a[i], r = a[U + i], hh = a[2 * U + i], gi = g[i];                      \
            T dz = gi * (hp[i] - hh) * z * (1 - z);                                      \
            T dph = gi * (1 - z) * (1 - hh * hh);                                        \
            T dr = dph * e[i] * r * (1 - r);                                             \
            dx[i] = dz; dx[U + i] = dr; dx[2 * U + i] = dph;                             \
            di[i] = dz; di[U + i] = dr; di[2 * U + i] = dph * r;                         \
            dhh[i] = dph * r;                                                            \
            dhn[i] = gi * z;                                                             \
        }                                                                                \
    } else {                                                                             \
        fastnn_gru_bwd_part_##S(U, U, a, e, hp, g, dx, di, dhh, dhn, act, ract);         \
    }                                                                                    \
}

FASTNN_RNN_DEFINE(float, f32, fastnn_sigmoid_f, fastnn_tanh_f)
FASTNN_RNN_DEFINE(double, f64, fastnn_sigmoid_d, tanh)

#endif
