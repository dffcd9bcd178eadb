/* The one numbering of the activations that kernels take as an int code: the
 * dense element-wise loops (elementwise.pxd), the sparse row epilogues
 * (simd_rows.h) and the Python name table (checks.pxd's activation_codes) all
 * read it from here. Add a name at the end; never renumber. */
#ifndef FASTNN_ACTIVATIONS_H
#define FASTNN_ACTIVATIONS_H

enum {
    FASTNN_LINEAR = 0,
    FASTNN_SIGMOID = 1,
    FASTNN_TANH = 2,
    FASTNN_RELU = 3,
    FASTNN_LEAKY_RELU = 4,
    FASTNN_ELU = 5,
    FASTNN_SOFTMAX = 6
};

#endif
