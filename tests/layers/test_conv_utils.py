"""conv_utils: the shape arithmetic of windows, checked by brute force (slide
the window and count), and the argument checks' messages."""
import pytest

from fastnn.layers import conv_utils as cu


def _count_positions(n, k, s, d, before, after):
    """Positions where a dilated window fits in the padded input."""
    span = (k - 1) * d + 1
    return sum(1 for start in range(0, n + before + after, s) if start + span <= n + before + after)


@pytest.mark.parametrize("n", [1, 2, 5, 7, 8, 13])
@pytest.mark.parametrize("k", [1, 2, 3, 5])
@pytest.mark.parametrize("s", [1, 2, 3])
@pytest.mark.parametrize("d", [1, 2])
def test_output_lengths_match_sliding_the_window(n, k, s, d):
    valid = cu.conv_output_length(n, k, "valid", s, d)
    assert max(valid, 0) == _count_positions(n, k, s, d, 0, 0)
    before, after = cu.same_pads(n, k, s, d)
    assert 0 <= before <= after <= before + 1
    assert _count_positions(n, k, s, d, before, after) == -(-n // s) == \
        cu.conv_output_length(n, k, "same", s, d)


def test_transposed_length_inverts_the_forward_length():
    for n in range(1, 9):
        for k in (1, 2, 3, 4):
            for s in (1, 2, 3):
                m = cu.deconv_output_length(n, k, "valid", s)
                assert cu.conv_output_length(m, k, "valid", s) == n
                assert cu.deconv_output_length(n, k, "same", s) == n * s


def test_argument_checks_name_the_layer_and_value():
    assert cu.normalize_tuple(3, 2, "kernel_size", "Conv2D 'c'") == (3, 3)
    assert cu.normalize_tuple([1, 2], 2, "strides", "x") == (1, 2)
    for bad in (0, -1, (1, 0), (1, 2, 3), "3", 2.0, True):
        with pytest.raises(ValueError, match="Conv2D 'c': strides"):
            cu.normalize_tuple(bad, 2, "strides", "Conv2D 'c'")
    assert cu.normalize_tuple(0, 2, "padding", "x", allow_zero=True) == (0, 0)
    with pytest.raises(ValueError, match="padding must be one of"):
        cu.normalize_padding("full", "x")
    assert cu.normalize_padding("SAME", "x") == "same"
    with pytest.raises(ValueError, match="data_format must be"):
        cu.normalize_data_format("NHWC", "x")
    assert cu.normalize_data_format(None, "x") == "channels_last"
    with pytest.raises(ValueError, match="does not fit spatial axis 1 of size 2"):
        cu.check_spatial("Conv2D 'c'", (5, 2), (3, 3), "valid", (1, 1))
    assert cu.check_spatial("c", (5, 2), (3, 3), "same", (2, 1)) == (3, 2)
