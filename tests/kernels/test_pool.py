"""fastnn._C.pool (max/average pooling, direct depthwise convolution) and the
NumpyOps/Ops methods over them, against plain loop references written here:
awkward shapes (odd sizes, stride != pool, overlapping windows, window = input,
batch 1, dilation, depth multipliers), float32 and float64, ties, read-only
and non-contiguous inputs, and bad arguments (a clear error, never a crash)."""
import numpy
import pytest
from hypothesis import given, settings, strategies as st

from fastnn import threads
from fastnn._C import pool
from fastnn.backend import NumpyOps, Ops
from fastnn.layers.conv_utils import same_pads
from fastnn.testing import assert_close

DTYPES = [numpy.float32, numpy.float64]


def pads_of(hw, k, s, padding, d=(1, 1)):
    if padding == "valid":
        return (0, 0, 0, 0)
    return same_pads(hw[0], k[0], s[0], d[0]) + same_pads(hw[1], k[1], s[1], d[1])


# --------------------------------------------------------- loop references
def ref_pool(x, k, s, pads, mode):
    """Windows visited one by one; padded cells skipped; the first maximum
    (row-major) wins. Returns y, argmax (window position), and dx for dy."""
    n, h, w, c = x.shape
    pt, pb, pl, pr = pads
    ho = (h + pt + pb - k[0]) // s[0] + 1
    wo = (w + pl + pr - k[1]) // s[1] + 1
    y = numpy.zeros((n, ho, wo, c))
    arg = numpy.zeros((n, ho, wo, c), dtype=numpy.int32)
    cells = {}
    for b in range(n):
        for oh in range(ho):
            for ow in range(wo):
                for ch in range(c):
                    best, where, total, count = None, None, 0.0, 0
                    for i in range(k[0]):
                        for j in range(k[1]):
                            r, q = oh * s[0] - pt + i, ow * s[1] - pl + j
                            if not (0 <= r < h and 0 <= q < w):
                                continue
                            v = float(x[b, r, q, ch])
                            total += v
                            count += 1
                            if best is None or v > best:
                                best, where = v, (i * k[1] + j, r, q)
                    if mode == "max":
                        y[b, oh, ow, ch] = best
                        arg[b, oh, ow, ch] = where[0]
                        cells[b, oh, ow, ch] = [where[1:]]
                    else:
                        y[b, oh, ow, ch] = total / count
                        cells[b, oh, ow, ch] = [
                            (oh * s[0] - pt + i, ow * s[1] - pl + j)
                            for i in range(k[0]) for j in range(k[1])
                            if 0 <= oh * s[0] - pt + i < h and 0 <= ow * s[1] - pl + j < w]
    return y, arg, cells


def ref_pool_backward(dy, x_shape, cells):
    dx = numpy.zeros(x_shape)
    for (b, oh, ow, ch), where in cells.items():
        for r, q in where:
            dx[b, r, q, ch] += dy[b, oh, ow, ch] / len(where)
    return dx


def ref_depthwise(x, kern, bias, s, d, pads):
    n, h, w, c = x.shape
    kh, kw, _, m = kern.shape
    pt, pb, pl, pr = pads
    ho = (h + pt + pb - (kh - 1) * d[0] - 1) // s[0] + 1
    wo = (w + pl + pr - (kw - 1) * d[1] - 1) // s[1] + 1
    y = numpy.zeros((n, ho, wo, c * m))
    for b in range(n):
        for oh in range(ho):
            for ow in range(wo):
                for ch in range(c):
                    for mm in range(m):
                        acc = 0.0 if bias is None else float(bias[ch * m + mm])
                        for i in range(kh):
                            for j in range(kw):
                                r = oh * s[0] - pt + i * d[0]
                                q = ow * s[1] - pl + j * d[1]
                                if 0 <= r < h and 0 <= q < w:
                                    acc += float(x[b, r, q, ch]) * float(kern[i, j, ch, mm])
                        y[b, oh, ow, ch * m + mm] = acc
    return y


def ref_depthwise_backward(x, kern, dz, s, d, pads):
    n, h, w, c = x.shape
    kh, kw, _, m = kern.shape
    pt, pb, pl, pr = pads
    _, ho, wo, _ = dz.shape
    dx = numpy.zeros(x.shape)
    dk = numpy.zeros(kern.shape)
    for b in range(n):
        for oh in range(ho):
            for ow in range(wo):
                for ch in range(c):
                    for mm in range(m):
                        g = float(dz[b, oh, ow, ch * m + mm])
                        for i in range(kh):
                            for j in range(kw):
                                r = oh * s[0] - pt + i * d[0]
                                q = ow * s[1] - pl + j * d[1]
                                if 0 <= r < h and 0 <= q < w:
                                    dx[b, r, q, ch] += g * float(kern[i, j, ch, mm])
                                    dk[i, j, ch, mm] += g * float(x[b, r, q, ch])
    return dx, dk, dz.sum(axis=(0, 1, 2))


POOL_CASES = [  # x shape, window, strides, padding
    ((2, 7, 9, 3), (2, 2), (2, 2), "valid"),     # odd sizes: the last row/col dropped
    ((2, 7, 9, 3), (2, 2), (2, 2), "same"),
    ((1, 6, 5, 4), (3, 3), (1, 2), "valid"),     # overlapping windows, stride != pool
    ((3, 5, 7, 2), (3, 2), (2, 3), "same"),      # stride larger than the window
    ((1, 4, 5, 3), (4, 5), (1, 1), "valid"),     # window = input
    ((2, 5, 5, 1), (3, 3), (1, 1), "same"),      # every window partly padding
    ((1, 1, 1, 5), (1, 1), (1, 1), "valid"),
]


@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,k,s,padding", POOL_CASES)
def test_pool_kernel_against_loops(shape, k, s, padding, dtype, mode, rng):
    x = rng.standard_normal(shape).astype(dtype)
    pads = pads_of(shape[1:3], k, s, padding)
    y_ref, arg_ref, cells = ref_pool(x, k, s, pads, mode)
    y, arg = pool.pool2d_forward(x, *k, *s, *pads, mode=mode)
    assert_close(y, y_ref.astype(dtype))
    if mode == "max":
        numpy.testing.assert_array_equal(arg, arg_ref)
    else:
        assert arg is None
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = pool.pool2d_backward(dy, arg, shape, *k, *s, *pads, mode=mode)
    assert_close(dx, ref_pool_backward(dy, shape, cells).astype(dtype))
    # The reference backend gives the same (its own NumPy, not the kernel).
    for ops in (Ops(), NumpyOps()):
        y2, arg2 = ops.pool2d_forward(x, k, s, padding, mode)
        assert_close(y2, y_ref.astype(dtype))
        assert_close(ops.pool2d_backward(dy, arg2, shape, k, s, padding, mode),
                     ref_pool_backward(dy, shape, cells).astype(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool_ties_give_the_gradient_to_the_first_maximum(dtype):
    # Every value equal: the first cell of each window (row-major) wins, as in
    # TensorFlow/Keras; overlapping windows add into the cells they share.
    x = numpy.ones((1, 3, 3, 1), dtype)
    for ops in (Ops(), NumpyOps()):
        y, arg = ops.pool2d_forward(x, (2, 2), (1, 1), "valid", "max")
        numpy.testing.assert_array_equal(arg, numpy.zeros((1, 2, 2, 1)))
        dx = ops.pool2d_backward(numpy.ones_like(y), arg, x.shape, (2, 2), (1, 1), "valid", "max")
        numpy.testing.assert_array_equal(dx[0, :, :, 0], [[1, 1, 0], [1, 1, 0], [0, 0, 0]])
    # A tie later in a window does not take the gradient from the first.
    x = numpy.array([[1, 3], [3, 2]], dtype).reshape(1, 2, 2, 1)
    y, arg = pool.pool2d_forward(x, 2, 2, 2, 2, 0, 0, 0, 0, mode="max")
    assert int(arg[0, 0, 0, 0]) == 1
    dx = pool.pool2d_backward(numpy.ones_like(y), arg, x.shape, 2, 2, 2, 2, 0, 0, 0, 0)
    numpy.testing.assert_array_equal(dx[0, :, :, 0], [[0, 1], [0, 0]])


def test_average_pool_same_divides_by_the_real_inputs():
    # Keras: a "same" window over the edge averages only its real inputs.
    x = numpy.arange(1, 10, dtype=numpy.float64).reshape(1, 3, 3, 1)
    y, _ = pool.pool2d_forward(x, 2, 2, 2, 2, *pads_of((3, 3), (2, 2), (2, 2), "same"),
                               mode="avg")
    numpy.testing.assert_allclose(y[0, :, :, 0], [[3.0, 4.5], [7.5, 9.0]])


DW_CASES = [  # x shape, kernel (kh, kw, M), strides, dilation, padding
    ((2, 7, 9, 3), (3, 3, 1), (1, 1), (1, 1), "same"),
    ((1, 8, 6, 4), (3, 2, 2), (2, 1), (1, 1), "valid"),
    ((3, 5, 7, 2), (2, 2, 3), (2, 2), (1, 1), "same"),
    ((1, 9, 8, 3), (3, 3, 1), (1, 1), (2, 3), "same"),   # dilation
    ((2, 4, 5, 5), (4, 5, 1), (1, 1), (1, 1), "valid"),  # kernel = input
    ((1, 5, 5, 2), (1, 1, 2), (2, 2), (1, 1), "valid"),  # 1x1
    ((1, 3, 4, 3), (3, 3, 1), (3, 2), (1, 1), "same"),   # stride 3 over padding
    ((2, 5, 6, 37), (3, 3, 1), (1, 1), (1, 1), "same"),  # a channel block and a tail
    ((1, 6, 7, 70), (2, 3, 1), (2, 2), (1, 1), "same"),  # two blocks and a tail, strided
    # depth_multiplier > 1 in the C loops: blocks of 32 outputs that start inside a
    # channel's M outputs, a tail, strides, dilation and padding
    ((2, 6, 7, 13), (3, 3, 3), (1, 1), (1, 1), "same"),  # C*M = 39: a block and a tail
    ((1, 9, 8, 11), (3, 2, 5), (2, 1), (2, 3), "same"),  # C*M = 55, strided and dilated
    ((2, 5, 6, 3), (2, 3, 40), (1, 2), (1, 2), "valid"), # M larger than a block
    ((1, 4, 5, 17), (4, 5, 2), (1, 1), (1, 1), "valid"), # kernel = input, C*M = 34
    # The backward's work items are blocks of 8 output rows, each writing the dx rows of
    # its stretch of the image (the last block the rest): several blocks, a short last
    # one, dx rows past ho * stride ("valid"), strides and dilation across the blocks'
    # edges, and the four-pixel dx loop (stride 1 along the width: W >= 4 + the halo)
    # beside its one-pixel edges and a channel tail.
    ((2, 37, 6, 5), (3, 3, 1), (1, 1), (1, 1), "same"),
    ((1, 35, 5, 3), (3, 3, 2), (2, 2), (1, 1), "same"),
    ((1, 26, 4, 3), (5, 3, 1), (1, 1), (1, 1), "valid"),  # ho 22: dx rows 22-25 too
    ((1, 40, 3, 2), (3, 1, 1), (3, 1), (2, 1), "valid"),  # ho 12, dx rows 36-39
    ((1, 19, 14, 37), (3, 3, 1), (2, 1), (1, 2), "same"),
    ((2, 9, 12, 20), (3, 4, 2), (1, 1), (1, 1), "same"),
    # The three-tap loops (kernel width 3, stride and dilation 1 along the width, M = 1;
    # 64-byte vectors of channels: 16 float32, 8 float64): several vectors and a tail,
    # vertical strides and dilation (row pointers), kernel heights other than 3 (dW
    # then takes the general loop), several dW chunks of 8 columns, and more than one
    # group of 32 vectors (C = 530).
    ((2, 11, 13, 48), (3, 3, 1), (1, 1), (1, 1), "same"),
    ((1, 10, 17, 33), (3, 3, 1), (2, 1), (1, 1), "same"),
    ((1, 9, 12, 16), (3, 3, 1), (1, 1), (2, 1), "valid"),
    ((2, 6, 9, 64), (2, 3, 1), (1, 1), (1, 1), "same"),
    ((1, 5, 40, 72), (3, 3, 1), (1, 1), (1, 1), "valid"),
    ((1, 3, 10, 530), (3, 3, 1), (1, 1), (1, 1), "same"),
]


@pytest.mark.parametrize("activation", ["linear", "relu", "tanh"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,kernel,s,d,padding", DW_CASES)
def test_depthwise_kernel_against_loops(shape, kernel, s, d, padding, dtype, activation, rng):
    kh, kw, m = kernel
    x = rng.standard_normal(shape).astype(dtype)
    kern = rng.standard_normal((kh, kw, shape[3], m)).astype(dtype)
    bias = rng.standard_normal(shape[3] * m).astype(dtype)
    pads = pads_of(shape[1:3], (kh, kw), s, padding, d)
    z = ref_depthwise(x, kern, bias, s, d, pads)
    act = {"linear": lambda v: v, "relu": lambda v: numpy.maximum(v, 0), "tanh": numpy.tanh}
    y_ref = act[activation](z)
    y = pool.depthwise_conv2d_forward(x, kern, bias, *s, *d, *pads, activation=activation)
    assert_close(y, y_ref.astype(dtype), tol=1e-4 if dtype == numpy.float32 else 1e-11)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dz = dy * {"linear": 1, "relu": (y_ref > 0), "tanh": 1 - y_ref ** 2}[activation]
    dx_ref, dk_ref, db_ref = ref_depthwise_backward(x, kern, dz, s, d, pads)
    dk = numpy.full(kern.shape, 0.5, dtype)   # accumulates: +=
    db = numpy.full(bias.shape, -0.25, dtype)
    dx = pool.depthwise_conv2d_backward(x, kern, y, dy, dk, db, *s, *d, *pads,
                                        activation=activation)
    tol = 1e-4 if dtype == numpy.float32 else 1e-11
    assert_close(dx, dx_ref.astype(dtype), tol=tol)
    assert_close(dk, (dk_ref + 0.5).astype(dtype), tol=tol)
    assert_close(db, (db_ref - 0.25).astype(dtype), tol=tol)
    assert pool.depthwise_conv2d_backward(x, kern, y, dy, dk, None, *s, *d, *pads,
                                          activation=activation, need_dx=False) is None
    # Both backends through Ops' signature agree with the loops.
    for ops in (Ops(), NumpyOps()):
        y2 = ops.depthwise_conv2d_forward(x, kern, bias, s, padding, d, activation)
        assert_close(y2, y_ref.astype(dtype), tol=tol)
        dk2, db2 = numpy.zeros_like(kern), numpy.zeros_like(bias)
        dx2 = ops.depthwise_conv2d_backward(x, kern, y2, dy, dk2, db2, s, padding, d,
                                            activation)
        assert_close(dx2, dx_ref.astype(dtype), tol=tol)
        assert_close(dk2, dk_ref.astype(dtype), tol=tol)
        assert_close(db2, db_ref.astype(dtype), tol=tol)


@pytest.mark.parametrize("dtype", DTYPES)
def test_depthwise_three_tap_loops_give_the_general_loops_bits(dtype, rng):
    # Both add every sum's terms in the same order: only the loop structure differs.
    for shape, kh, sh, dh, padding, act in (
            ((2, 9, 31, 40), 3, 1, 1, "same", "relu"), ((1, 12, 13, 64), 3, 2, 1, "same", "linear"),
            ((2, 8, 11, 35), 2, 1, 2, "valid", "tanh"), ((1, 4, 22, 530), 3, 1, 1, "same", "linear")):
        x = rng.standard_normal(shape).astype(dtype)
        kern = rng.standard_normal((kh, 3, shape[3], 1)).astype(dtype)
        bias = rng.standard_normal(shape[3]).astype(dtype)
        pads = pads_of(shape[1:3], (kh, 3), (sh, 1), padding, (dh, 1))
        results = []
        old = pool.set_depthwise_three_tap(True)
        try:
            for on in (True, False):
                pool.set_depthwise_three_tap(on)
                y = pool.depthwise_conv2d_forward(x, kern, bias, sh, 1, dh, 1, *pads,
                                                  activation=act)
                dy = numpy.random.default_rng(1).standard_normal(y.shape).astype(dtype)
                dk, db = numpy.zeros_like(kern), numpy.zeros_like(bias)
                dx = pool.depthwise_conv2d_backward(x, kern, y, dy, dk, db, sh, 1, dh, 1,
                                                    *pads, activation=act)
                results.append((y, dx, dk, db))
        finally:
            pool.set_depthwise_three_tap(old)
        for a, b in zip(*results):
            numpy.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("m", [1, 2])
def test_depthwise_general_dk_loops_repeat_bit_for_bit_on_several_threads(m, rng):
    # The general loops' dW (kernel width 5, so not the three-tap ones), called
    # again and again on 2 and 3 threads against one thread: each tap's column
    # range (lo, hi) was shared between the threads (Cython privatizes only what
    # a prange body assigns), and a block now and then took another thread's
    # range: about one call in twenty differed.
    cap, adapt = threads.get_num_threads(), threads._state.adapt
    x = rng.standard_normal((24, 20, 8, 16)).astype(numpy.float32)
    kern = rng.standard_normal((5, 5, 16, m)).astype(numpy.float32)
    try:
        threads.set_num_threads(1, adapt=False)
        y = pool.depthwise_conv2d_forward(x, kern, None, 1, 1, 1, 1, 1, 1, 1, 1)

        def dk():
            out = numpy.zeros_like(kern)
            pool.depthwise_conv2d_backward(x, kern, y, y, out, None, 1, 1, 1, 1, 1, 1, 1, 1,
                                           need_dx=False)
            return out
        want = dk()
        for n in (2, 3):
            threads.set_num_threads(n, adapt=False)
            assert pool._threads_for(24 * 18 * 4 * 16 * m * 25) > 1
            for _ in range(30):
                numpy.testing.assert_array_equal(dk(), want)
    finally:
        threads.set_num_threads(cap, adapt=bool(adapt))


def test_depthwise_results_do_not_depend_on_the_thread_count(rng):
    cap, adapt = threads.get_num_threads(), threads._state.adapt
    # The C loops (M = 1) and the general ones; then enough partial sums (160 blocks of
    # 1664 columns: 5x5 taps and the bias, 64 channels) that their final sum runs in
    # parallel, over several stretches of columns.
    for shape, k, m in (((4, 33, 31, 40), 3, 1), ((4, 33, 31, 16), 3, 2),
                        ((40, 32, 8, 64), 5, 1)):
        c = shape[3]
        x = rng.standard_normal(shape).astype(numpy.float32)
        kern = rng.standard_normal((k, k, c, m)).astype(numpy.float32)
        results = []
        try:
            for n in (1, 2, 3):
                threads.set_num_threads(n, adapt=False)
                y = pool.depthwise_conv2d_forward(x, kern, None, 1, 1, 1, 1, 1, 1, 1, 1)
                dk, db = numpy.zeros_like(kern), numpy.zeros(c * m, numpy.float32)
                dx = pool.depthwise_conv2d_backward(x, kern, y, y, dk, db,
                                                    1, 1, 1, 1, 1, 1, 1, 1)
                results.append((y, dx, dk, db))
        finally:
            threads.set_num_threads(cap, adapt=bool(adapt))
        for other in results[1:]:
            for a, b in zip(results[0], other):
                numpy.testing.assert_array_equal(a, b)
        # The parallel final sum is also the right one: dW and db as NumPy sums (stride
        # 1, padding 1, dz = y) over the padded input's shifted windows.
        y, _, dk, db = results[1]
        xp = numpy.pad(x.astype(numpy.float64), ((0, 0), (1, 1), (1, 1), (0, 0)))
        ho, wo = y.shape[1:3]
        g = y.astype(numpy.float64).reshape(y.shape[:3] + (c, m))
        dk_ref = numpy.stack([numpy.stack([
            numpy.einsum("nhwc,nhwcm->cm", xp[:, i:i + ho, j:j + wo], g)
            for j in range(k)]) for i in range(k)])
        assert_close(dk, dk_ref.astype(numpy.float32), tol=1e-4)
        assert_close(db, y.astype(numpy.float64).sum(axis=(0, 1, 2)).astype(numpy.float32),
                     tol=1e-4)


def test_read_only_inputs_are_read_in_place(rng):
    x = rng.standard_normal((2, 5, 6, 3))
    kern = rng.standard_normal((3, 3, 3, 1))
    frozen = [numpy.array(a) for a in (x, kern)]
    for a in frozen:
        a.setflags(write=False)
    y = pool.depthwise_conv2d_forward(frozen[0], frozen[1], None, 1, 1, 1, 1, 1, 1, 1, 1)
    numpy.testing.assert_array_equal(
        y, pool.depthwise_conv2d_forward(x, kern, None, 1, 1, 1, 1, 1, 1, 1, 1))
    yp, arg = pool.pool2d_forward(frozen[0], 2, 2, 2, 2, 0, 0, 0, 0)
    numpy.testing.assert_array_equal(yp, pool.pool2d_forward(x, 2, 2, 2, 2, 0, 0, 0, 0)[0])
    arg.setflags(write=False)
    pool.pool2d_backward(yp, arg, x.shape, 2, 2, 2, 2, 0, 0, 0, 0)
    dk = numpy.zeros_like(kern)
    dk.setflags(write=False)
    with pytest.raises(ValueError, match="dkernel is read-only"):
        pool.depthwise_conv2d_backward(x, kern, y, y, dk, None, 1, 1, 1, 1, 1, 1, 1, 1)


def test_non_contiguous_input_is_refused_by_the_kernel_and_copied_by_the_backend(rng):
    big = rng.standard_normal((2, 6, 8, 6))
    x = big[:, :, ::2, ::2]
    with pytest.raises(ValueError, match="C-contiguous"):
        pool.pool2d_forward(x, 2, 2, 2, 2, 0, 0, 0, 0)
    with pytest.raises(ValueError, match="C-contiguous"):
        pool.depthwise_conv2d_forward(x, numpy.ones((3, 3, 3, 1)), None, 1, 1, 1, 1, 0, 0, 0, 0)
    xc = numpy.ascontiguousarray(x)
    y, _ = NumpyOps().pool2d_forward(x, (2, 2), (2, 2), "valid", "max")
    numpy.testing.assert_array_equal(y, pool.pool2d_forward(xc, 2, 2, 2, 2, 0, 0, 0, 0)[0])
    kern = rng.standard_normal((3, 3, 3, 1))
    assert_close(NumpyOps().depthwise_conv2d_forward(x, kern, None, (1, 1), "same"),
                 ref_depthwise(xc, kern, None, (1, 1), (1, 1), (1, 1, 1, 1)))


def test_bad_arguments_raise_before_the_kernel(rng):
    x = rng.standard_normal((2, 5, 5, 3))
    with pytest.raises(ValueError, match="must be 4-D"):
        pool.pool2d_forward(x[0], 2, 2, 2, 2, 0, 0, 0, 0)
    with pytest.raises(TypeError, match="float32 or float64"):
        pool.pool2d_forward(x.astype(numpy.int64), 2, 2, 2, 2, 0, 0, 0, 0)
    with pytest.raises(ValueError, match="strides must be >= 1"):
        pool.pool2d_forward(x, 2, 2, 0, 2, 0, 0, 0, 0)
    with pytest.raises(ValueError, match="does not fit"):
        pool.pool2d_forward(x, 6, 2, 1, 1, 0, 0, 0, 0)
    with pytest.raises(ValueError, match="smaller than the window"):
        pool.pool2d_forward(x, 2, 2, 1, 1, 2, 0, 0, 0)
    with pytest.raises(ValueError, match="mode"):
        pool.pool2d_forward(x, 2, 2, 1, 1, 0, 0, 0, 0, mode="min")
    y, arg = pool.pool2d_forward(x, 2, 2, 2, 2, 0, 0, 0, 0)
    with pytest.raises(ValueError, match="dy has shape"):
        pool.pool2d_backward(y[:, :1].copy(), arg, x.shape, 2, 2, 2, 2, 0, 0, 0, 0)
    with pytest.raises(ValueError, match="int32"):
        pool.pool2d_backward(y, arg.astype(numpy.int64), x.shape, 2, 2, 2, 2, 0, 0, 0, 0)
    for bad in (4, -1):
        wrong = arg.copy()
        wrong[1, 1, 0, 2] = bad
        with pytest.raises(ValueError, match="argmax entries"):
            pool.pool2d_backward(y, wrong, x.shape, 2, 2, 2, 2, 0, 0, 0, 0)
    # A window position on padding (valid as a position, outside the input).
    ys, args = pool.pool2d_forward(x, 2, 2, 2, 2, 0, 1, 0, 1)
    args[0, 2, 2, 0] = 3
    with pytest.raises(ValueError, match="on padding"):
        pool.pool2d_backward(ys, args, x.shape, 2, 2, 2, 2, 0, 1, 0, 1)
    kern = rng.standard_normal((3, 3, 3, 1))
    with pytest.raises(ValueError, match="channels"):
        pool.depthwise_conv2d_forward(x, kern[:, :, :2].copy(), None, 1, 1, 1, 1, 0, 0, 0, 0)
    with pytest.raises(ValueError, match="dilation"):
        pool.depthwise_conv2d_forward(x, kern, None, 1, 1, 0, 1, 0, 0, 0, 0)
    with pytest.raises(ValueError, match="bias has shape"):
        pool.depthwise_conv2d_forward(x, kern, numpy.zeros(4), 1, 1, 1, 1, 0, 0, 0, 0)
    with pytest.raises(ValueError, match="unknown activation"):
        pool.depthwise_conv2d_forward(x, kern, None, 1, 1, 1, 1, 0, 0, 0, 0,
                                      activation="softmax")
    with pytest.raises(TypeError, match="dtype"):
        pool.depthwise_conv2d_forward(x, kern.astype(numpy.float32), None, 1, 1, 1, 1,
                                      0, 0, 0, 0)
    y = pool.depthwise_conv2d_forward(x, kern, None, 1, 1, 1, 1, 0, 0, 0, 0)
    with pytest.raises(ValueError, match="dy has shape"):
        pool.depthwise_conv2d_backward(x, kern, y, y[:, :2].copy(), numpy.zeros_like(kern), None,
                                       1, 1, 1, 1, 0, 0, 0, 0)
    with pytest.raises(ValueError, match="dkernel has shape"):
        pool.depthwise_conv2d_backward(x, kern, y, y, numpy.zeros((3, 3, 3, 2)), None,
                                       1, 1, 1, 1, 0, 0, 0, 0)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 3), h=st.integers(1, 7), w=st.integers(1, 7), c=st.integers(1, 4),
       kh=st.integers(1, 4), kw=st.integers(1, 4), sh=st.integers(1, 3), sw=st.integers(1, 3),
       same=st.booleans(), mode=st.sampled_from(["max", "avg"]), seed=st.integers(0, 2**16))
def test_pool_property(n, h, w, c, kh, kw, sh, sw, same, mode, seed):
    """Random shapes: the kernel equals the loop reference, or (a "valid"
    window larger than the input) raises the clear error."""
    x = numpy.random.default_rng(seed).standard_normal((n, h, w, c))
    pads = pads_of((h, w), (kh, kw), (sh, sw), "same" if same else "valid")
    if not same and (kh > h or kw > w):
        with pytest.raises(ValueError, match="does not fit"):
            pool.pool2d_forward(x, kh, kw, sh, sw, *pads, mode=mode)
        return
    y_ref, _, cells = ref_pool(x, (kh, kw), (sh, sw), pads, mode)
    y, arg = pool.pool2d_forward(x, kh, kw, sh, sw, *pads, mode=mode)
    assert_close(y, y_ref)
    dx = pool.pool2d_backward(y, arg, x.shape, kh, kw, sh, sw, *pads, mode=mode)
    assert_close(dx, ref_pool_backward(y, x.shape, cells))


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 2), h=st.integers(1, 6), w=st.integers(1, 6), c=st.integers(1, 3),
       m=st.integers(1, 2), kh=st.integers(1, 3), kw=st.integers(1, 3), s=st.integers(1, 2),
       d=st.integers(1, 2), same=st.booleans(), seed=st.integers(0, 2**16))
def test_depthwise_property(n, h, w, c, m, kh, kw, s, d, same, seed):
    rng = numpy.random.default_rng(seed)
    x = rng.standard_normal((n, h, w, c))
    kern = rng.standard_normal((kh, kw, c, m))
    pads = pads_of((h, w), (kh, kw), (s, s), "same" if same else "valid", (d, d))
    if not same and ((kh - 1) * d + 1 > h or (kw - 1) * d + 1 > w):
        with pytest.raises(ValueError, match="does not fit"):
            pool.depthwise_conv2d_forward(x, kern, None, s, s, d, d, *pads)
        return
    y = pool.depthwise_conv2d_forward(x, kern, None, s, s, d, d, *pads)
    assert_close(y, ref_depthwise(x, kern, None, (s, s), (d, d), pads))
    dk = numpy.zeros_like(kern)
    dx = pool.depthwise_conv2d_backward(x, kern, y, y, dk, None, s, s, d, d, *pads)
    dx_ref, dk_ref, _ = ref_depthwise_backward(x, kern, y, (s, s), (d, d), pads)
    assert_close(dx, dx_ref)
    assert_close(dk, dk_ref)
