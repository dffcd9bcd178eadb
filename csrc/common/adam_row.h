/* The one Adam row kernel: every Adam update in fastnn._C runs through these
 * loops (optim.pyx's adam_update, sparse.pyx's adam_update and
 * csr_t_matmul_adam, the AutoRec step's W, Vt, b and c updates), so a fused
 * update and the plain one agree bit for bit.
 *
 * The bias corrections are folded into the step size and epsilon by the caller
 * (lr = lr * sqrt(c2) / c1, eps = eps * sqrt(c2)); wd is L2 added to the
 * gradient, keep = 1 - lr * decay the decoupled (AdamW) decay. Each call runs
 * with denormals flushed to 0 on its thread (fastnn_fpenv.h: a dead unit's
 * moments decay through the denormals, several times slower on x86).
 *
 * Compiled with -fno-math-errno (setup.py), so sqrt has no errno side effect
 * and the loops vectorise; an optimize pragma or attribute does not achieve
 * that in GCC 12. */
#ifndef FASTNN_ADAM_ROW_H
#define FASTNN_ADAM_ROW_H

#include <math.h>
#include <stddef.h>
#include "fastnn_clones.h"
#include "fastnn_fpenv.h"

#define FASTNN_DEFINE_ADAM(T, S)                                                        \
FASTNN_CLONES static void fastnn_adam_##S(ptrdiff_t n, T *restrict p, T *restrict g,    \
                                          T *restrict m, T *restrict v, T b1, T b2,     \
                                          T lr, T eps, T wd, T keep, int zero_grad)     \
{                                                                                       \
    const T ob1 = (T)1 - b1, ob2 = (T)1 - b2;                                           \
    unsigned saved = fastnn_flush_denormals_begin();                                    \
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
    fastnn_flush_denormals_end(saved);                                                  \
}                                                                                       \
                                                                                        \
/* Adam on one row with the L2 term inside (gradient g + wd * p; g is only read)       \
 * and the squared norm of the row *before* the update returned (16 partial sums,     \
 * fixed tree, as fastnn_dot), for the L2 part of the objective at no extra pass. */   \
FASTNN_CLONES static double fastnn_adam_sq_##S(ptrdiff_t n, T *restrict p,              \
                                               const T *restrict g, T *restrict m,       \
                                               T *restrict v, T b1, T b2, T lr, T eps,   \
                                               T wd)                                     \
{                                                                                       \
    const T ob1 = (T)1 - b1, ob2 = (T)1 - b2;                                           \
    unsigned saved = fastnn_flush_denormals_begin();                                    \
    T acc[16] = {0};                                                                    \
    ptrdiff_t i = 0;                                                                    \
    for (; i + 16 <= n; i += 16)                                                        \
        for (int j = 0; j < 16; j++) {                                                  \
            T pi = p[i + j];                                                            \
            acc[j] += pi * pi;                                                          \
            T gi = g[i + j] + wd * pi;                                                  \
            T mi = b1 * m[i + j] + ob1 * gi, vi = b2 * v[i + j] + ob2 * gi * gi;        \
            m[i + j] = mi; v[i + j] = vi;                                               \
            p[i + j] = pi - lr * mi / (sqrt##S(vi) + eps);                              \
        }                                                                               \
    for (int j = 0; i < n; i++, j++) {                                                  \
        T pi = p[i];                                                                    \
        acc[j] += pi * pi;                                                              \
        T gi = g[i] + wd * pi;                                                          \
        T mi = b1 * m[i] + ob1 * gi, vi = b2 * v[i] + ob2 * gi * gi;                    \
        m[i] = mi; v[i] = vi;                                                           \
        p[i] = pi - lr * mi / (sqrt##S(vi) + eps);                                      \
    }                                                                                   \
    for (int w = 8; w > 0; w >>= 1)                                                     \
        for (int j = 0; j < w; j++) acc[j] += acc[j + w];                               \
    fastnn_flush_denormals_end(saved);                                                  \
    return (double)acc[0];                                                              \
}

#define sqrtf32 sqrtf
#define sqrtf64 sqrt
FASTNN_DEFINE_ADAM(float, f32)
FASTNN_DEFINE_ADAM(double, f64)

#endif
