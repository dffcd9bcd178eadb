"""fastnn._C.conv, NumpyOps.conv2d_* and the Ops reference against a direct
convolution written here: an explicit loop over output pixels and kernel
taps (no padding array, no im2col), so neither implementation checks itself."""
import numpy
import pytest
from hypothesis import given, settings, strategies as st

from fastnn._C import conv as kernels
from fastnn.testing import DTYPES, assert_close

ACTS = ["linear", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "softmax"]


# ------------------------------------------------------- the loop reference
def _taps(x_shape, W_shape, strides, pads, dilation):
    """(oh, ow, i, j, ih, iw) for every kernel tap that lands inside the input."""
    n, h, w, c = x_shape
    kh, kw = W_shape[:2]
    (sh, sw), (pt, pb, pl, pr), (dh, dw) = strides, pads, dilation
    oh_n = (h + pt + pb - (kh - 1) * dh - 1) // sh + 1
    ow_n = (w + pl + pr - (kw - 1) * dw - 1) // sw + 1
    taps = []
    for oh in range(oh_n):
        for ow in range(ow_n):
            for i in range(kh):
                for j in range(kw):
                    ih, iw = oh * sh - pt + i * dh, ow * sw - pl + j * dw
                    if 0 <= ih < h and 0 <= iw < w:
                        taps.append((oh, ow, i, j, ih, iw))
    return oh_n, ow_n, taps


def ref_forward(x, W, b, strides, pads, dilation, groups):
    """Pre-activation z in float64."""
    x, W = x.astype(numpy.float64), W.astype(numpy.float64)
    n, _, _, c = x.shape
    kh, kw, cg, f = W.shape
    fg = f // groups
    oh_n, ow_n, taps = _taps(x.shape, W.shape, strides, pads, dilation)
    z = numpy.zeros((n, oh_n, ow_n, f))
    for oh, ow, i, j, ih, iw in taps:
        for g in range(groups):
            z[:, oh, ow, g * fg:(g + 1) * fg] += (x[:, ih, iw, g * cg:(g + 1) * cg]
                                                  @ W[i, j, :, g * fg:(g + 1) * fg])
    if b is not None:
        z += b
    return z


def ref_act(name, z, alpha=0.2):
    if name == "linear":
        return z
    if name == "sigmoid":
        return 1 / (1 + numpy.exp(-z))
    if name == "tanh":
        return numpy.tanh(z)
    if name == "relu":
        return numpy.maximum(z, 0)
    if name == "leaky_relu":
        return numpy.where(z > 0, z, alpha * z)
    if name == "elu":
        return numpy.where(z > 0, z, alpha * numpy.expm1(numpy.minimum(z, 0)))
    e = numpy.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def ref_act_grad(name, y, dy, alpha=0.2):
    if name == "linear":
        return dy
    if name == "sigmoid":
        return dy * y * (1 - y)
    if name == "tanh":
        return dy * (1 - y * y)
    if name == "relu":
        return dy * (y > 0)
    if name == "leaky_relu":
        return numpy.where(y > 0, dy, alpha * dy)
    if name == "elu":
        return numpy.where(y > 0, dy, dy * (y + alpha))
    return y * (dy - (dy * y).sum(-1, keepdims=True))


def ref_backward(x, W, dz, strides, pads, dilation, groups):
    """(dx, dW, db) of the pre-activation, float64."""
    x, W, dz = (a.astype(numpy.float64) for a in (x, W, dz))
    kh, kw, cg, f = W.shape
    fg = f // groups
    _, _, taps = _taps(x.shape, W.shape, strides, pads, dilation)
    dx, dW = numpy.zeros(x.shape), numpy.zeros(W.shape)
    for oh, ow, i, j, ih, iw in taps:
        for g in range(groups):
            cs, fs = slice(g * cg, (g + 1) * cg), slice(g * fg, (g + 1) * fg)
            dx[:, ih, iw, cs] += dz[:, oh, ow, fs] @ W[i, j, :, fs].T
            dW[i, j, :, fs] += x[:, ih, iw, cs].T @ dz[:, oh, ow, fs]
    return dx, dW, dz.sum(axis=(0, 1, 2))


# ------------------------------------------------------------------- cases
# (N, H, W, C, kh, kw, F, strides, pads (t, b, l, r), dilation, groups)
CASES = [
    (2, 5, 7, 3, 3, 3, 4, (1, 1), (1, 1, 1, 1), (1, 1), 1),      # "same", odd sizes
    (1, 6, 5, 2, 3, 2, 3, (2, 2), (0, 0, 0, 0), (1, 1), 1),      # stride > 1, batch 1
    (3, 9, 8, 4, 3, 3, 5, (1, 2), (2, 1, 0, 3), (2, 2), 1),      # dilation, uneven pads
    (2, 4, 4, 5, 1, 1, 3, (1, 1), (0, 0, 0, 0), (1, 1), 1),      # 1x1: x is its own im2col
    (2, 4, 5, 3, 1, 1, 2, (2, 2), (0, 0, 0, 0), (1, 1), 1),      # strided 1x1
    (2, 5, 6, 3, 5, 6, 4, (1, 1), (0, 0, 0, 0), (1, 1), 1),      # kernel as large as input
    (2, 6, 7, 6, 3, 3, 4, (1, 1), (1, 1, 1, 1), (1, 1), 2),      # groups
    (1, 7, 5, 6, 2, 3, 9, (2, 1), (1, 0, 1, 1), (1, 2), 3),      # groups + everything
    (2, 5, 5, 4, 3, 3, 4, (1, 1), (1, 1, 1, 1), (1, 1), 4),      # one channel per group
    (1, 1, 9, 3, 1, 3, 2, (1, 1), (0, 0, 2, 0), (1, 1), 1),      # a 1D (causal) conv
    (37, 3, 3, 2, 3, 3, 3, (1, 1), (0, 0, 0, 0), (1, 1), 1),     # many samples, one pixel out
]
# Several im2col chunks (CHUNK_ELEMS = 2**17 elements: 5 output rows of 40 x 3 * 3 * 64;
# 41 rows per sample),
# chunks that straddle samples, and a partial last chunk.
BIG = (9, 41, 40, 64, 3, 3, 16, (1, 1), (1, 1, 1, 1), (1, 1), 1)


def tol(dtype, k):
    return 2e-6 * max(8.0, numpy.sqrt(k)) if dtype == numpy.float32 else 1e-12


def draw(rng, case, dtype):
    n, h, w, c, kh, kw, f, strides, pads, dilation, groups = case
    x = rng.standard_normal((n, h, w, c)).astype(dtype)
    W = (rng.standard_normal((kh, kw, c // groups, f)) * 0.3).astype(dtype)
    b = rng.standard_normal(f).astype(dtype)
    return x, W, b, dict(strides=strides, pads=pads, dilation=dilation, groups=groups)


def check_case(rng, ops, ref, case, dtype, act):
    x, W, b, geo = draw(rng, case, dtype)
    kg = W.shape[0] * W.shape[1] * W.shape[2]
    t = tol(dtype, kg)
    z = ref_forward(x, W, b, **geo)
    y64 = ref_act(act, z)
    floor = 0.03 * max(1.0, float(numpy.abs(z).max()))
    args = (geo["strides"], geo["pads"], geo["dilation"], geo["groups"])
    y = kernels.conv2d_forward(x, W, b, *args, act, 0.2)
    assert_close(y, y64.astype(dtype), tol=t, floor=floor)
    for impl in (ops, ref):
        assert_close(impl.conv2d_forward(x, W, b, *args, act, 0.2), y64.astype(dtype), tol=t,
                     floor=floor)
    # Backward from the kernel's own y (the derivative is taken from it), into
    # non-zero gradients: the kernels must accumulate, not overwrite.
    dy = rng.standard_normal(y.shape).astype(dtype)
    dz = ref_act_grad(act, y.astype(numpy.float64), dy.astype(numpy.float64))
    dx64, dW64, db64 = ref_backward(x, W, dz, *args)
    dW0, db0 = rng.standard_normal(W.shape).astype(dtype), rng.standard_normal(b.shape).astype(dtype)
    gfloor = 0.03 * max(1.0, float(numpy.abs(dW64).max()))
    for impl in (kernels, ops, ref):
        dW, db = dW0.copy(), db0.copy()
        dx = impl.conv2d_backward(x, W, y, dy, dW, db, *args, act, 0.2)
        assert_close(dx, dx64.astype(dtype), tol=t, floor=0.03 * max(1.0, numpy.abs(dx64).max()))
        assert_close(dW, (dW0 + dW64).astype(dtype), tol=t * 4, floor=gfloor)
        assert_close(db, (db0 + db64).astype(dtype), tol=t * 4,
                     floor=0.03 * max(1.0, numpy.abs(db64).max()))
        # need_dx=False: the same parameter gradients, no dx.
        dW2, db2 = dW0.copy(), db0.copy()
        assert impl.conv2d_backward(x, W, y, dy, dW2, db2, *args, act, 0.2,
                                    need_dx=False) is None
        numpy.testing.assert_allclose(dW2, dW, rtol=1e-5 if dtype == numpy.float32 else 1e-12,
                                      atol=1e-5 * gfloor)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_conv_matches_loop_reference(ops, ref, rng, case, dtype):
    check_case(rng, ops, ref, case, dtype, "linear")


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_conv_fused_activations(ops, ref, rng, act, dtype):
    check_case(rng, ops, ref, CASES[2], dtype, act)
    check_case(rng, ops, ref, CASES[6], dtype, act)


@pytest.mark.parametrize("dtype", DTYPES)
def test_conv_several_chunks(ops, ref, rng, dtype):
    """A batch whose im2col buffer takes several chunks gives the same result."""
    x, W, b, geo = draw(rng, BIG, dtype)
    args = (geo["strides"], geo["pads"], geo["dilation"], geo["groups"])
    z = ref.conv2d_forward(x.astype(numpy.float64), W.astype(numpy.float64),
                           b.astype(numpy.float64), *args)
    y = kernels.conv2d_forward(x, W, b, *args, "relu")
    assert_close(y, numpy.maximum(z, 0).astype(dtype), tol=tol(dtype, 576),
                 floor=0.03 * numpy.abs(z).max())
    dy = rng.standard_normal(y.shape).astype(dtype)
    dW, db = numpy.zeros_like(W), numpy.zeros_like(b)
    dW_r, db_r = numpy.zeros(W.shape), numpy.zeros(b.shape)
    dz = dy.astype(numpy.float64) * (y > 0)
    dx = kernels.conv2d_backward(x, W, y, dy, dW, db, *args, "relu")
    dx_r = ref.conv2d_backward(x.astype(numpy.float64), W.astype(numpy.float64), None, dz,
                               dW_r, db_r, *args)
    assert_close(dx, dx_r.astype(dtype), tol=tol(dtype, 576), floor=0.03 * numpy.abs(dx_r).max())
    assert_close(dW, dW_r.astype(dtype), tol=tol(dtype, 14400) * 4,
                 floor=0.03 * numpy.abs(dW_r).max())
    assert_close(db, db_r.astype(dtype), tol=tol(dtype, 14400) * 4,
                 floor=0.03 * numpy.abs(db_r).max())


@pytest.mark.parametrize("dtype", DTYPES)
def test_input_grad_alone(ops, ref, rng, dtype):
    """The transposed convolution's forward: dx from dy and W alone (x_shape)."""
    case = CASES[7]
    x, W, b, geo = draw(rng, case, dtype)
    args = (geo["strides"], geo["pads"], geo["dilation"], geo["groups"])
    dz = rng.standard_normal(ref.conv2d_forward(x, W, None, *args).shape).astype(dtype)
    dx64, _, _ = ref_backward(x, W, dz, *args)
    for impl in (ops, ref):
        assert_close(impl.conv2d_input_grad(dz, W, x.shape, *args), dx64.astype(dtype),
                     tol=tol(dtype, 50), floor=0.03 * numpy.abs(dx64).max())


def test_non_contiguous_and_read_only_inputs(ops, rng):
    x, W, b, geo = draw(rng, CASES[2], numpy.float64)
    args = (geo["strides"], geo["pads"], geo["dilation"], geo["groups"])
    expected = kernels.conv2d_forward(x, W, b, *args)
    xs = numpy.repeat(x, 2, axis=3)[..., ::2]          # strided channels
    xs[...] = x
    Wf = numpy.asfortranarray(W)
    x_ro = x.copy()
    x_ro.flags.writeable = False
    for xi, Wi in ((xs, W), (x, Wf), (x_ro, W)):
        assert_close(kernels.conv2d_forward(xi, Wi, b, *args), expected)
        assert_close(ops.conv2d_forward(xi, Wi, b, *args), expected)
    dy = rng.standard_normal(expected.shape)
    dW, dW2 = numpy.zeros_like(W), numpy.zeros_like(W)
    dx = kernels.conv2d_backward(x, W, expected, dy, dW, None, *args)
    dx2 = kernels.conv2d_backward(xs, Wf, expected, dy[:, :, :, ::-1][:, :, :, ::-1], dW2, None,
                                  *args)
    assert_close(dx2, dx)
    assert_close(dW2, dW)


def test_one_and_two_threads_agree(rng):
    from fastnn import threads
    x, W, b, geo = draw(rng, BIG, numpy.float32)
    args = (geo["strides"], geo["pads"], geo["dilation"], geo["groups"])
    saved = threads.get_num_threads()
    results = []
    try:
        for nt in (1, 2):
            threads.set_num_threads(nt, adapt=False)
            y = kernels.conv2d_forward(x, W, b, *args, "relu")
            dW, db = numpy.zeros_like(W), numpy.zeros_like(b)
            dx = kernels.conv2d_backward(x, W, y, y, dW, db, *args, "relu")
            results.append((y, dx, dW, db))
    finally:
        threads.set_num_threads(saved)
    # BLAS's bits may depend on how gemm_rm slices a product (as for the dense
    # kernels, tests/test_threads.py): the products agree to rounding; the
    # bias gradient, fastnn's own fixed-order sum, to the bit.
    for a, b_ in zip(*results):
        assert_close(b_, a, tol=tol(numpy.float32, 576))
    numpy.testing.assert_array_equal(results[0][3], results[1][3])


def test_numpy_ops_falls_back_and_applies_further_activations(ops, ref, rng):
    """What the kernel does not take goes to the reference (float16, mixed
    dtypes); Keras's further activations run after the kernel's product."""
    x, W, b, geo = draw(rng, CASES[6], numpy.float64)
    args = (geo["strides"], geo["pads"], geo["dilation"], geo["groups"])
    z = ref_forward(x, W, b, *args)
    for act, fn in (("selu", lambda v: 1.0507009873554805 * numpy.where(
            v > 0, v, 1.6732632423543772 * numpy.expm1(numpy.minimum(v, 0)))),
                    ("softplus", lambda v: numpy.logaddexp(v, 0))):
        y = ops.conv2d_forward(x, W, b, *args, act)
        assert_close(y, fn(z), tol=1e-10)
        dy = rng.standard_normal(y.shape)
        dW, dW_r = numpy.zeros_like(W), numpy.zeros_like(W)
        dx = ops.conv2d_backward(x, W, y, dy, dW, None, *args, act)
        dx_r = ref.conv2d_backward(x, W, y, dy, dW_r, None, *args, act)
        assert_close(dx, dx_r, tol=1e-10)
        assert_close(dW, dW_r, tol=1e-10)
    x16, W16 = x.astype(numpy.float16), W.astype(numpy.float16)
    y16 = ops.conv2d_forward(x16, W16, None, *args)
    assert y16.dtype == numpy.float16
    assert_close(y16.astype(numpy.float64), ref_forward(x16, W16, None, *args), tol=2e-2)
    mixed = ops.conv2d_forward(x.astype(numpy.float32), W, None, *args)
    assert_close(mixed.astype(numpy.float64), ref_forward(x, W, None, *args), tol=1e-5)
    # A dW the kernel would refuse (Fortran order) is filled by the reference.
    dW_f = numpy.asfortranarray(numpy.zeros_like(W))
    ops.conv2d_backward(x, W, None, rng.standard_normal(z.shape), dW_f, None, *args)
    assert dW_f.any()


# -------------------------------------------------------------- bad input
def test_bad_arguments_raise_before_the_kernel(rng):
    x, W, b, geo = draw(rng, CASES[0], numpy.float32)
    args = ((1, 1), (1, 1, 1, 1), (1, 1), 1)
    with pytest.raises(TypeError, match="dtype"):
        kernels.conv2d_forward(x, W.astype(numpy.float64), b, *args)
    with pytest.raises(TypeError, match="dtype"):
        kernels.conv2d_forward(x.astype(numpy.int32), W, b, *args)
    with pytest.raises(ValueError, match="4-D"):
        kernels.conv2d_forward(x[0], W, b, *args)
    with pytest.raises(ValueError, match="channels"):
        kernels.conv2d_forward(x[..., :2], W, b, *args)
    with pytest.raises(ValueError, match="b has shape"):
        kernels.conv2d_forward(x, W, b[:2], *args)
    with pytest.raises(ValueError, match="strides"):
        kernels.conv2d_forward(x, W, b, (0, 1), (1, 1, 1, 1), (1, 1), 1)
    with pytest.raises(ValueError, match="pads"):
        kernels.conv2d_forward(x, W, b, (1, 1), (1, -1, 1, 1), (1, 1), 1)
    with pytest.raises(ValueError, match="dilation"):
        kernels.conv2d_forward(x, W, b, (1, 1), (1, 1, 1, 1), (1,), 1)
    with pytest.raises(ValueError, match="groups"):
        kernels.conv2d_forward(x, W, b, (1, 1), (1, 1, 1, 1), (1, 1), 0)
    with pytest.raises(ValueError, match="multiple of groups"):
        kernels.conv2d_forward(numpy.zeros((1, 5, 5, 6), numpy.float32),
                               numpy.zeros((3, 3, 2, 4), numpy.float32), None,
                               (1, 1), (0, 0, 0, 0), (1, 1), 3)
    with pytest.raises(ValueError, match="does not fit"):
        kernels.conv2d_forward(x[:, :2], W, b, (1, 1), (0, 0, 0, 0), (1, 1), 1)
    with pytest.raises(ValueError, match="activation"):
        kernels.conv2d_forward(x, W, b, *args, "swish")
    y = kernels.conv2d_forward(x, W, b, *args)
    with pytest.raises(ValueError, match="out has shape"):
        kernels.conv2d_forward(x, W, b, *args, out=numpy.empty((1, 1, 1, 1), numpy.float32))
    with pytest.raises(ValueError, match="same memory as x|overlaps x"):
        kernels.conv2d_forward(x, numpy.zeros((1, 1, 3, 3), numpy.float32), None,
                               (1, 1), (0, 0, 0, 0), (1, 1), 1, out=x)
    out = numpy.empty(y.shape, numpy.float32)
    assert kernels.conv2d_forward(x, W, b, *args, out=out) is out
    dW, db = numpy.zeros_like(W), numpy.zeros_like(b)
    with pytest.raises(ValueError, match="dy has shape"):
        kernels.conv2d_backward(x, W, y, y[:, 1:], dW, db, *args)
    with pytest.raises(ValueError, match="dW has shape"):
        kernels.conv2d_backward(x, W, y, y, dW[:1], db, *args)
    with pytest.raises(ValueError, match="C-contiguous"):
        kernels.conv2d_backward(x, W, y, y, numpy.asfortranarray(dW), db, *args)
    ro = dW.copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        kernels.conv2d_backward(x, W, y, y, ro, db, *args)
    with pytest.raises(ValueError, match="needed for activation"):
        kernels.conv2d_backward(x, W, None, y, dW, db, *args, "relu")
    with pytest.raises(ValueError, match="x may be None"):
        kernels.conv2d_backward(None, W, None, y, dW, db, *args)
    with pytest.raises(ValueError, match="non-empty"):
        kernels.conv2d_backward(None, W, None, y, None, None, *args, x_shape=(-2, 5, 7, 3))
    with pytest.raises(ValueError, match="overlaps|same memory"):
        kernels.conv2d_backward(x, W, y, y, dW, W.reshape(-1)[:4], *args)


@given(n=st.integers(1, 3), h=st.integers(1, 7), w=st.integers(1, 7), cg=st.integers(1, 3),
       groups=st.integers(1, 3), fg=st.integers(1, 3), kh=st.integers(1, 4), kw=st.integers(1, 4),
       sh=st.integers(1, 3), sw=st.integers(1, 3), dh=st.integers(1, 2), dw=st.integers(1, 2),
       pads=st.tuples(*[st.integers(0, 3)] * 4), seed=st.integers(0, 2 ** 16))
@settings(max_examples=60, deadline=None)
def test_property_random_geometry(n, h, w, cg, groups, fg, kh, kw, sh, sw, dh, dw, pads, seed):
    """Random shapes: the kernel equals the loop reference, or refuses a
    window that does not fit with a ValueError (never a crash)."""
    rng = numpy.random.default_rng(seed)
    x = rng.standard_normal((n, h, w, cg * groups))
    W = rng.standard_normal((kh, kw, cg, fg * groups))
    args = ((sh, sw), pads, (dh, dw), groups)
    fits = (h + pads[0] + pads[1] >= (kh - 1) * dh + 1
            and w + pads[2] + pads[3] >= (kw - 1) * dw + 1)
    if not fits:
        with pytest.raises(ValueError, match="does not fit"):
            kernels.conv2d_forward(x, W, None, *args)
        return
    y = kernels.conv2d_forward(x, W, None, *args)
    assert_close(y, ref_forward(x, W, None, *args))
    dy = rng.standard_normal(y.shape)
    dW = numpy.zeros_like(W)
    dx = kernels.conv2d_backward(x, W, None, dy, dW, None, *args)
    dx_r, dW_r, _ = ref_backward(x, W, dy, *args)
    assert_close(dx, dx_r)
    assert_close(dW, dW_r)


# ------------------------------------------------------------------ Winograd
# fastnn._C.conv's Winograd F(2x2, 3x3) path (3x3, stride 1, dilation 1, groups 1),
# forced with winograd=True, against the same loop reference; the im2col path
# (winograd=False) on the same data alongside.
# (N, H, W, C, F, pads (t, b, l, r))
WG_CASES = [
    (2, 5, 7, 3, 4, (1, 1, 1, 1)),        # "same", odd H and W: partial tiles
    (1, 1, 1, 1, 1, (1, 1, 1, 1)),        # a 1x1 image, one channel, one filter
    (1, 3, 3, 17, 17, (0, 0, 0, 0)),      # "valid", one output pixel, batch 1
    (3, 2, 9, 3, 1, (2, 0, 1, 2)),        # asymmetric pads, H under a tile
    (2, 6, 5, 1, 3, (0, 0, 0, 0)),        # "valid", C = 1
    (2, 4, 4, 5, 17, (3, 2, 0, 4)),       # pads > 2: dx's own pads (2 - pad) go negative
    (1, 8, 3, 17, 3, (1, 1, 1, 1)),
    (4, 13, 13, 32, 64, (0, 0, 0, 0)),    # the MNIST convnet's second layer, 4 samples
]
WG_ACTS = ["linear", "relu", "tanh", "softmax"]


def wg_tol(dtype, c, f):
    # Winograd's float32 error: the input transform adds or subtracts up to 4
    # values per direction, the transformed kernel carries factors of 1/2 and the
    # output transform sums 9 of the 16 products per output, so each product
    # adds a few more roundings of terms no larger than |x| |W| times a small
    # constant: the error bound grows by a constant factor over the direct sum
    # (2 to 4 for F(2x2, 3x3): Lavin & Gray 2016; Barabasz et al. 2020), hence 4x
    # the direct tolerance. float64 keeps the direct tolerance's order.
    return tol(dtype, 9 * max(c, f)) * (4 if dtype == numpy.float32 else 10)


def wg_draw(rng, case, dtype):
    n, h, w, c, f, pads = case
    x = rng.standard_normal((n, h, w, c)).astype(dtype)
    W = (rng.standard_normal((3, 3, c, f)) / numpy.sqrt(9 * c)).astype(dtype)
    b = rng.standard_normal(f).astype(dtype)
    return x, W, b, ((1, 1), pads, (1, 1), 1)


@pytest.mark.parametrize("case", WG_CASES)
@pytest.mark.parametrize("act", WG_ACTS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_winograd_matches_loop_reference(rng, case, act, dtype):
    x, W, b, args = wg_draw(rng, case, dtype)
    t = wg_tol(dtype, case[3], case[4])
    z = ref_forward(x, W, b, *args)
    y64 = ref_act(act, z)
    floor = 0.03 * max(1.0, float(numpy.abs(z).max()))
    y = kernels.conv2d_forward(x, W, b, *args, act, 0.2, winograd=True)
    assert_close(y, y64.astype(dtype), tol=t, floor=floor)
    assert_close(kernels.conv2d_forward(x, W, b, *args, act, 0.2, winograd=False), y, tol=t,
                 floor=floor)
    # into a given out: the same values, out returned
    out = numpy.full(y.shape, numpy.nan, dtype)
    assert kernels.conv2d_forward(x, W, b, *args, act, 0.2, out=out, winograd=True) is out
    numpy.testing.assert_array_equal(out, y)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dz = ref_act_grad(act, y.astype(numpy.float64), dy.astype(numpy.float64))
    dx64, dW64, db64 = ref_backward(x, W, dz, *args)
    dW0, db0 = rng.standard_normal(W.shape).astype(dtype), rng.standard_normal(b.shape).astype(dtype)
    gfloor = 0.03 * max(1.0, float(numpy.abs(dW64).max()))
    xfloor = 0.03 * max(1.0, float(numpy.abs(dx64).max()))
    for wg in (True, False):
        dW, db = dW0.copy(), db0.copy()
        dx = kernels.conv2d_backward(x, W, y, dy, dW, db, *args, act, 0.2, winograd=wg)
        assert_close(dx, dx64.astype(dtype), tol=t, floor=xfloor)
        assert_close(dW, (dW0 + dW64).astype(dtype), tol=t * 4, floor=gfloor)
        assert_close(db, (db0 + db64).astype(dtype), tol=t * 4,
                     floor=0.03 * max(1.0, numpy.abs(db64).max()))
    # parameter gradients alone, then the input gradient alone (x None)
    dW2, db2 = dW0.copy(), db0.copy()
    assert kernels.conv2d_backward(x, W, y, dy, dW2, db2, *args, act, 0.2, need_dx=False,
                                   winograd=True) is None
    assert_close(dW2, (dW0 + dW64).astype(dtype), tol=t * 4, floor=gfloor)
    if act == "linear":
        dx3 = kernels.conv2d_backward(None, W, None, dy, None, None, *args, x_shape=x.shape,
                                      winograd=True)
        assert_close(dx3, dx64.astype(dtype), tol=t, floor=xfloor)


@pytest.mark.parametrize("dtype", DTYPES)
def test_winograd_several_chunks(rng, dtype):
    """BIG: 3780 tiles of 64 channels and 16 filters, 204 tiles per chunk (the
    last one partial, chunks straddling samples) and dW's four accumulator slots."""
    n, h, w, c, _, _, f, _, pads, _, _ = BIG
    x, W, b, args = wg_draw(rng, (n, h, w, c, f, pads), dtype)
    z = ref_forward(x, W, b, *args)
    y = kernels.conv2d_forward(x, W, b, *args, "relu", winograd=True)
    t = wg_tol(dtype, c, f)
    assert_close(y, numpy.maximum(z, 0).astype(dtype), tol=t, floor=0.03 * numpy.abs(z).max())
    dy = rng.standard_normal(y.shape).astype(dtype)
    dz = dy.astype(numpy.float64) * (y > 0)
    dx64, dW64, db64 = ref_backward(x, W, dz, *args)
    dW, db = numpy.zeros_like(W), numpy.zeros_like(b)
    dx = kernels.conv2d_backward(x, W, y, dy, dW, db, *args, "relu", winograd=True)
    assert_close(dx, dx64.astype(dtype), tol=t, floor=0.03 * numpy.abs(dx64).max())
    assert_close(dW, dW64.astype(dtype), tol=tol(dtype, 14400) * 16,
                 floor=0.03 * numpy.abs(dW64).max())
    assert_close(db, db64.astype(dtype), tol=tol(dtype, 14400) * 4,
                 floor=0.03 * numpy.abs(db64).max())


def test_winograd_results_do_not_depend_on_the_thread_count(rng):
    """Every output tile is one chunk's, each GEMM one thread's, and dW's slots
    are fixed by the shapes: the same bits for 1, 2 and 3 threads."""
    from fastnn import threads
    cap, adapt = threads.get_num_threads(), threads._state.adapt
    n, h, w, c, _, _, f, _, pads, _, _ = BIG
    x, W, b, args = wg_draw(rng, (n, h, w, c, f, pads), numpy.float32)
    results = []
    try:
        for nt in (1, 2, 3):
            threads.set_num_threads(nt, adapt=False)
            y = kernels.conv2d_forward(x, W, b, *args, "relu", winograd=True)
            dW, db = numpy.zeros_like(W), numpy.zeros_like(b)
            dx = kernels.conv2d_backward(x, W, y, y, dW, db, *args, "relu", winograd=True)
            results.append((y, dx, dW, db))
    finally:
        threads.set_num_threads(cap, adapt=bool(adapt))
    for other in results[1:]:
        for a, b_ in zip(results[0], other):
            numpy.testing.assert_array_equal(a, b_)


def test_winograd_dispatch(rng, monkeypatch):
    """"auto" takes Winograd for a qualifying 3x3 convolution with enough
    channels and filters (the same bits as winograd=True), im2col otherwise;
    the module's WINOGRAD switch sets the default."""
    x, W, b, args = wg_draw(rng, (2, 9, 7, 32, 32, (1, 1, 1, 1)), numpy.float32)
    forced = kernels.conv2d_forward(x, W, b, *args, winograd=True)
    im2col = kernels.conv2d_forward(x, W, b, *args, winograd=False)
    assert not numpy.array_equal(forced, im2col)   # the paths round differently
    numpy.testing.assert_array_equal(kernels.conv2d_forward(x, W, b, *args), forced)
    numpy.testing.assert_array_equal(kernels.conv2d_forward(x, W, b, *args, winograd="auto"),
                                     forced)
    monkeypatch.setattr(kernels, "WINOGRAD", False)
    numpy.testing.assert_array_equal(kernels.conv2d_forward(x, W, b, *args), im2col)
    monkeypatch.setattr(kernels, "WINOGRAD", "auto")
    # too few channels for "auto": im2col
    small = kernels.WINOGRAD_MIN_CHANNELS - 1
    xs, Ws, bs, _ = wg_draw(rng, (2, 9, 7, small, 32, (1, 1, 1, 1)), numpy.float32)
    numpy.testing.assert_array_equal(kernels.conv2d_forward(xs, Ws, bs, *args),
                                     kernels.conv2d_forward(xs, Ws, bs, *args, winograd=False))
    # stride 2 never qualifies
    s2 = ((2, 2), (1, 1, 1, 1), (1, 1), 1)
    numpy.testing.assert_array_equal(kernels.conv2d_forward(x, W, b, *s2),
                                     kernels.conv2d_forward(x, W, b, *s2, winograd=False))
    # the backward follows the same choice
    dy = rng.standard_normal(forced.shape).astype(numpy.float32)
    grads = {}
    for wg in (None, True, False):
        dW, db = numpy.zeros_like(W), numpy.zeros_like(b)
        grads[wg] = (kernels.conv2d_backward(x, W, None, dy, dW, db, *args, winograd=wg), dW)
    for a, b_ in zip(grads[None], grads[True]):
        numpy.testing.assert_array_equal(a, b_)
    assert not numpy.array_equal(grads[True][1], grads[False][1])


def test_winograd_non_contiguous_inputs(rng):
    x, W, b, args = wg_draw(rng, (2, 6, 5, 17, 3, (1, 1, 1, 1)), numpy.float64)
    y = kernels.conv2d_forward(x, W, b, *args, winograd=True)
    xs = numpy.repeat(x, 2, axis=3)[..., ::2]
    Wf = numpy.asfortranarray(W)
    assert not xs.flags.c_contiguous and not Wf.flags.c_contiguous
    numpy.testing.assert_array_equal(kernels.conv2d_forward(xs, Wf, b, *args, winograd=True), y)
    dy = rng.standard_normal(y.shape)
    dys = numpy.repeat(dy, 2, axis=3)[..., ::2]
    dW, dW2 = numpy.zeros_like(W), numpy.zeros_like(W)
    dx = kernels.conv2d_backward(x, W, None, dy, dW, None, *args, winograd=True)
    dx2 = kernels.conv2d_backward(xs, Wf, None, dys, dW2, None, *args, winograd=True)
    numpy.testing.assert_array_equal(dx2, dx)
    numpy.testing.assert_array_equal(dW2, dW)


@pytest.mark.parametrize("act", ["linear", "relu"])
def test_winograd_read_only_inputs(rng, act):
    """Read-only x, W, b, y and dy are read in place (a linear backward reads dy
    as dz: it must not ask for a writeable view of it)."""
    x, W, b, args = wg_draw(rng, (2, 5, 6, 3, 4, (1, 1, 1, 1)), numpy.float64)
    y = kernels.conv2d_forward(x, W, b, *args, act, winograd=True)
    dy = rng.standard_normal(y.shape)
    dW, db = numpy.zeros_like(W), numpy.zeros_like(b)
    dx = kernels.conv2d_backward(x, W, y, dy, dW, db, *args, act, winograd=True)
    for a in (x, W, b, y, dy):
        a.flags.writeable = False
    numpy.testing.assert_array_equal(kernels.conv2d_forward(x, W, b, *args, act, winograd=True),
                                     y)
    dW2, db2 = numpy.zeros_like(W), numpy.zeros_like(b)
    numpy.testing.assert_array_equal(
        kernels.conv2d_backward(x, W, y, dy, dW2, db2, *args, act, winograd=True), dx)
    numpy.testing.assert_array_equal(dW2, dW)
    numpy.testing.assert_array_equal(db2, db)


def test_winograd_bad_arguments_raise(rng):
    x, W, b, _ = wg_draw(rng, (1, 5, 5, 2, 2, (0, 0, 0, 0)), numpy.float32)
    for fn, bad in (("conv2d_forward", dict(strides=(2, 1))),
                    ("conv2d_forward", dict(dilation=(1, 2))),
                    ("conv2d_forward", dict(groups=2)),
                    ("conv2d_backward", dict(strides=(1, 2)))):
        kw = {**dict(strides=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1), groups=1), **bad}
        Wg = W[:, :, :1] if kw["groups"] == 2 else W
        with pytest.raises(ValueError, match=f"{fn}: winograd=True needs a 3x3 kernel"):
            if fn == "conv2d_forward":
                kernels.conv2d_forward(x, Wg, b, winograd=True, **kw)
            else:
                kernels.conv2d_backward(x, Wg, None, numpy.zeros((1, 3, 2, 2), numpy.float32),
                                        None, None, winograd=True, **kw)
    with pytest.raises(ValueError, match="conv2d_forward: winograd=True needs a 3x3"):
        kernels.conv2d_forward(x, W[:2], b, winograd=True)
    with pytest.raises(ValueError, match="winograd must be None, True, False or 'auto'"):
        kernels.conv2d_forward(x, W, b, winograd="fast")
