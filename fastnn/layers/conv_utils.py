"""Argument checks and shape arithmetic shared by the convolution and pooling
layers (Keras's ``conv_utils``): tuples of sizes, padding, data format, and the
output length of a strided, dilated window. Every check raises a ValueError
that names the layer and the argument, at construction, before any kernel."""
import numpy


def _is_int(value):
    return isinstance(value, (int, numpy.integer)) and not isinstance(value, bool)


def normalize_tuple(value, n, name, layer, allow_zero=False) -> "tuple[int, ...]":
    """``3`` or ``(3, 3)`` -> ``(3, 3)`` for an ``n``-dimensional layer; each
    entry a positive integer (non-negative with ``allow_zero``)."""
    if _is_int(value):
        values = (int(value),) * n
    else:
        try:
            values = tuple(value)
        except TypeError:
            raise ValueError(f"{layer}: {name} must be an integer or a tuple of {n} integers, "
                             f"got {value!r}") from None
        if len(values) != n or not all(_is_int(v) for v in values):
            raise ValueError(f"{layer}: {name} must be an integer or a tuple of {n} integers, "
                             f"got {value!r}")
        values = tuple(int(v) for v in values)
    low = 0 if allow_zero else 1
    if any(v < low for v in values):
        raise ValueError(f"{layer}: {name} must be {'>= 0' if allow_zero else '>= 1'} "
                         f"everywhere, got {value!r}")
    return values


def normalize_padding(value, layer, allowed=("valid", "same")):
    padding = value.lower() if isinstance(value, str) else value
    if padding not in allowed:
        raise ValueError(f"{layer}: padding must be one of {', '.join(map(repr, allowed))}, "
                         f"got {value!r}")
    return padding


def normalize_data_format(value, layer):
    if value is None:
        return "channels_last"
    data_format = value.lower() if isinstance(value, str) else value
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(f"{layer}: data_format must be 'channels_last' or 'channels_first', "
                         f"got {value!r}")
    return data_format


def effective_size(kernel, dilation=1):
    """The extent a dilated kernel covers: ``(k - 1) * d + 1``."""
    return (kernel - 1) * dilation + 1


def same_pads(length, kernel, stride, dilation=1):
    """The (before, after) zero padding of ``padding="same"`` (TensorFlow's and
    Keras's rule: the output has ceil(length / stride) positions, the odd pad
    goes after)."""
    out = -(-length // stride)
    total = max((out - 1) * stride + effective_size(kernel, dilation) - length, 0)
    return total // 2, total - total // 2


def conv_output_length(length, kernel, padding, stride, dilation=1):
    """Output positions of a window sliding over ``length`` inputs; None for
    an unknown length, 0 or less when a "valid" window does not fit."""
    if length is None:
        return None
    if padding == "same":
        return -(-length // stride)
    return (length - effective_size(kernel, dilation)) // stride + 1


def deconv_output_length(length, kernel, padding, stride, dilation=1, output_padding=None):
    """Output positions of a transposed convolution (Keras's rule)."""
    if length is None:
        return None
    k = effective_size(kernel, dilation)
    if output_padding is None:
        if padding == "valid":
            return length * stride + max(k - stride, 0)
        return length * stride
    pad = 0 if padding == "valid" else k // 2
    return (length - 1) * stride + k - 2 * pad + output_padding


def check_spatial(layer, input_shape, kernel, padding, strides, dilation=None):
    """The output spatial sizes for ``input_shape``'s spatial sizes, or a
    ValueError naming the layer when a "valid" window is larger than its input."""
    dilation = dilation or (1,) * len(kernel)
    out = []
    for axis, (n, k, s, d) in enumerate(zip(input_shape, kernel, strides, dilation)):
        m = conv_output_length(n, k, padding, s, d)
        if m is not None and m < 1:
            raise ValueError(f"{layer}: a window of {effective_size(k, d)} (kernel {k}, "
                             f"dilation {d}) does not fit spatial axis {axis} of size {n} with "
                             f"padding='valid'; the input must be at least "
                             f"{effective_size(k, d)} there, or use padding='same'")
        out.append(m)
    return tuple(out)
