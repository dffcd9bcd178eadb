# The activation codes kernels take as an int: fastnn_activations.h's enum
# (the one numbering), under the names the .pyx and .pxd files use. Nothing else.
cdef extern from "fastnn_activations.h":
    cdef enum:
        ACT_LINEAR "FASTNN_LINEAR"
        ACT_SIGMOID "FASTNN_SIGMOID"
        ACT_TANH "FASTNN_TANH"
        ACT_RELU "FASTNN_RELU"
        ACT_LEAKY_RELU "FASTNN_LEAKY_RELU"
        ACT_ELU "FASTNN_ELU"
        ACT_SOFTMAX "FASTNN_SOFTMAX"


cdef extern from "fastnn_activations.h":
    cdef enum:
        FASTNN_LINEAR
        FASTNN_SIGMOID
        FASTNN_TANH
        FASTNN_RELU
        FASTNN_LEAKY_RELU
        FASTNN_ELU
        FASTNN_SOFTMAX


cdef inline dict c_activation_enum():
    """The C enum by its own names, for the test that the name table matches it."""
    return {"FASTNN_LINEAR": FASTNN_LINEAR, "FASTNN_SIGMOID": FASTNN_SIGMOID,
            "FASTNN_TANH": FASTNN_TANH, "FASTNN_RELU": FASTNN_RELU,
            "FASTNN_LEAKY_RELU": FASTNN_LEAKY_RELU, "FASTNN_ELU": FASTNN_ELU,
            "FASTNN_SOFTMAX": FASTNN_SOFTMAX}
