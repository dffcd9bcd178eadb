/* FASTNN_CLONES: build a C row loop in several instruction-set versions and
 * pick one when the module loads (GCC's target_clones), so a portable build
 * still runs AVX2/AVX-512 code on CPUs that have it. Elsewhere: one version. */
#ifndef FASTNN_CLONES_H
#define FASTNN_CLONES_H

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) \
    && __GNUC__ >= 12
#define FASTNN_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define FASTNN_CLONES
#endif

#endif
