"""The batch-norm kernels (fastnn._C.norm) against the formula written here in
NumPy (float64), on awkward shapes, both dtypes, both modes; their argument
checks; and the backend routing (NumpyOps and the Ops reference agree)."""
import numpy
import pytest
from hypothesis import given, settings, strategies as st

from fastnn._C import norm
from fastnn.testing import assert_close

EPS = 1e-3
# Rows around the kernel's 64-row summation blocks, a single row, one feature.
SHAPES = [(1, 1), (1, 7), (2, 3), (63, 5), (64, 1), (65, 17), (300, 4), (1000, 3)]


def reference_forward(x, gamma, beta, eps, mean=None, var=None):
    x64 = x.astype(numpy.float64)
    if mean is None:
        mean = x64.mean(axis=0)
        var = ((x64 - mean) ** 2).mean(axis=0)  # biased, as Keras normalizes
    y = (x64 - mean) / numpy.sqrt(numpy.asarray(var, numpy.float64) + eps)
    if gamma is not None:
        y = y * gamma
    if beta is not None:
        y = y + beta
    return y, mean, var


def reference_backward(x, dy, gamma, mean, var, eps, batch_stats):
    x64, d = x.astype(numpy.float64), dy.astype(numpy.float64)
    inv = 1 / numpy.sqrt(numpy.asarray(var, numpy.float64) + eps)
    xhat = (x64 - numpy.asarray(mean, numpy.float64)) * inv
    g = 1.0 if gamma is None else gamma.astype(numpy.float64)
    if batch_stats:
        dx = g * inv * (d - d.mean(0) - xhat * (d * xhat).mean(0))
    else:
        dx = g * inv * d
    return dx, (d * xhat).sum(0), d.sum(0)


def _data(rng, shape, dtype, loc=1.5, scale=2.0):
    x = (rng.standard_normal(shape) * scale + loc).astype(dtype)
    gamma = rng.standard_normal(shape[1]).astype(dtype)
    beta = rng.standard_normal(shape[1]).astype(dtype)
    return x, gamma, beta


def _tol(dtype):
    return 2e-5 if dtype == numpy.float32 else 1e-11


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_training_matches_formula(shape, dtype, rng):
    x, gamma, beta = _data(rng, shape, dtype)
    y, mean, var = norm.batchnorm_forward(x, gamma, beta, EPS)
    y_ref, mean_ref, var_ref = reference_forward(x, gamma, beta, EPS)
    assert y.dtype == mean.dtype == var.dtype == dtype
    assert_close(mean, mean_ref.astype(dtype), tol=_tol(dtype))
    assert_close(var, var_ref.astype(dtype), tol=_tol(dtype))
    # float32: y is computed from float32 mean and scale (|y| up to ~4 sigma)
    assert_close(y, y_ref.astype(dtype), tol=5 * _tol(dtype))


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_inference_uses_given_statistics(shape, dtype, rng):
    x, gamma, beta = _data(rng, shape, dtype)
    mean = rng.standard_normal(shape[1]).astype(dtype)
    var = rng.uniform(0.5, 3.0, shape[1]).astype(dtype)
    y, m_out, v_out = norm.batchnorm_forward(x, gamma, beta, EPS, mean, var)
    y_ref = reference_forward(x, gamma, beta, EPS, mean.astype(numpy.float64),
                              var.astype(numpy.float64))[0]
    assert_close(y, y_ref.astype(dtype), tol=5 * _tol(dtype))
    numpy.testing.assert_array_equal(m_out, mean)
    numpy.testing.assert_array_equal(v_out, var)


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
def test_forward_without_gamma_beta(dtype, rng):
    x, _, _ = _data(rng, (70, 6), dtype)
    y = norm.batchnorm_forward(x, None, None, EPS)[0]
    assert_close(y, reference_forward(x, None, None, EPS)[0].astype(dtype), tol=5 * _tol(dtype))


def test_batch_of_one_row_gives_beta(rng):
    # One row: mean is the row, variance 0, so every output is beta.
    x, gamma, beta = _data(rng, (1, 9), numpy.float32)
    y, mean, var = norm.batchnorm_forward(x, gamma, beta, EPS)
    numpy.testing.assert_array_equal(mean, x[0])
    numpy.testing.assert_array_equal(var, numpy.zeros(9, numpy.float32))
    numpy.testing.assert_array_equal(y[0], beta)


def test_large_mean_keeps_variance(rng):
    # Features with mean 1e4 and unit spread: a plain sum of squares in float32
    # (or float64 without the shift) would cancel the variance away.
    x = (rng.standard_normal((4096, 3)) + 1e4).astype(numpy.float32)
    _, mean, var = norm.batchnorm_forward(x, None, None, EPS)
    x64 = x.astype(numpy.float64)
    assert_close(var, x64.var(0).astype(numpy.float32), tol=1e-5)
    assert_close(mean, x64.mean(0).astype(numpy.float32), tol=1e-6)


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("batch_stats", [True, False])
@pytest.mark.parametrize("shape", SHAPES)
def test_backward_matches_formula(shape, dtype, batch_stats, rng):
    x, gamma, _ = _data(rng, shape, dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    if batch_stats:
        mean = x.astype(numpy.float64).mean(0).astype(dtype)
        var = x.astype(numpy.float64).var(0).astype(dtype)
    else:
        mean = rng.standard_normal(shape[1]).astype(dtype)
        var = rng.uniform(0.5, 3.0, shape[1]).astype(dtype)
    dgamma = numpy.full(shape[1], 0.25, dtype)   # accumulated into
    dbeta = numpy.full(shape[1], -0.5, dtype)
    dx = norm.batchnorm_backward(x, dy, gamma, mean, var, EPS, dgamma, dbeta,
                                 batch_stats=batch_stats)
    dx_ref, dg_ref, db_ref = reference_backward(x, dy, gamma, mean, var, EPS, batch_stats)
    tol = 1e-4 if dtype == numpy.float32 else 1e-10
    # dx with batch statistics cancels (dy minus its means): hold it to the
    # scale of its terms, g*inv*|dy|, not to its own small entries.
    floor = 0.03 * max(1.0, float(numpy.abs(gamma / numpy.sqrt(var + EPS)).max()))
    assert_close(dx, dx_ref.astype(dtype), tol=tol, floor=floor)
    assert_close(dgamma, (dg_ref + 0.25).astype(dtype), tol=tol)
    assert_close(dbeta, (db_ref - 0.5).astype(dtype), tol=tol)


def test_backward_optional_outputs(rng):
    x, gamma, _ = _data(rng, (80, 5), numpy.float64)
    dy = rng.standard_normal(x.shape)
    mean, var = x.mean(0), x.var(0)
    dgamma = numpy.zeros(5)
    assert norm.batchnorm_backward(x, dy, gamma, mean, var, EPS, dgamma, None,
                                   need_dx=False) is None
    dx_ref, dg_ref, _ = reference_backward(x, dy, gamma, mean, var, EPS, True)
    assert_close(dgamma, dg_ref)
    dx = norm.batchnorm_backward(x, dy, None, mean, var, EPS)
    assert_close(dx, reference_backward(x, dy, None, mean, var, EPS, True)[0], floor=0.1)


def test_results_do_not_depend_on_threads(rng):
    from fastnn import threads
    x, gamma, beta = _data(rng, (3000, 64), numpy.float32)
    dy = rng.standard_normal(x.shape).astype(numpy.float32)
    cap, outs = threads.get_num_threads(), []
    try:
        for n in (1, 2):
            threads.set_num_threads(n, adapt=False)
            y, mean, var = norm.batchnorm_forward(x, gamma, beta, EPS)
            dg, db = numpy.zeros(64, numpy.float32), numpy.zeros(64, numpy.float32)
            dx = norm.batchnorm_backward(x, dy, gamma, mean, var, EPS, dg, db)
            outs.append((y, mean, var, dx, dg, db))
    finally:
        threads.set_num_threads(cap)
    for a, b in zip(*outs):
        numpy.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------ checks
def test_bad_arguments_raise_before_the_kernel(rng):
    x, gamma, beta = _data(rng, (10, 4), numpy.float32)
    with pytest.raises(ValueError, match="gamma has shape"):
        norm.batchnorm_forward(x, gamma[:3], beta, EPS)
    with pytest.raises(TypeError, match="dtype"):
        norm.batchnorm_forward(x, gamma.astype(numpy.float64), beta, EPS)
    with pytest.raises(TypeError, match="float32 or float64"):
        norm.batchnorm_forward(x.astype(numpy.int32), None, None, EPS)
    with pytest.raises(ValueError, match="2-D"):
        norm.batchnorm_forward(x.reshape(2, 5, 4), gamma, beta, EPS)
    with pytest.raises(ValueError, match="C-contiguous"):
        norm.batchnorm_forward(numpy.asfortranarray(x), gamma, beta, EPS)
    with pytest.raises(ValueError, match="epsilon"):
        norm.batchnorm_forward(x, gamma, beta, 0.0)
    with pytest.raises(ValueError, match="at least one row"):
        norm.batchnorm_forward(x[:0], gamma, beta, EPS)
    with pytest.raises(ValueError, match="both mean and variance"):
        norm.batchnorm_forward(x, gamma, beta, EPS, mean=gamma)
    with pytest.raises(ValueError, match="negative"):
        norm.batchnorm_forward(x, gamma, beta, EPS, beta * 0, -numpy.ones(4, numpy.float32))
    nan = numpy.array([1, numpy.nan, 1, 1], numpy.float32)   # NaN propagates, no error
    y = norm.batchnorm_forward(x, gamma, beta, EPS, beta * 0, nan)[0]
    assert numpy.isnan(y[:, 1]).all() and numpy.isfinite(y[:, [0, 2, 3]]).all()
    dy = numpy.ones_like(x)
    mean, var = x.mean(0), x.var(0)
    with pytest.raises(ValueError, match="dy has shape"):
        norm.batchnorm_backward(x, dy[:5], gamma, mean, var, EPS)
    with pytest.raises(ValueError, match="dbeta has shape"):
        norm.batchnorm_backward(x, dy, gamma, mean, var, EPS, None, numpy.zeros(5, numpy.float32))
    ro = numpy.zeros(4, numpy.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        norm.batchnorm_backward(x, dy, gamma, mean, var, EPS, ro)
    same = numpy.zeros(4, numpy.float32)
    with pytest.raises(ValueError, match="same memory"):
        norm.batchnorm_backward(x, dy, gamma, mean, var, EPS, same, same)


def test_read_only_inputs_are_read_in_place(rng):
    x, gamma, beta = _data(rng, (100, 3), numpy.float32)
    for a in (x, gamma, beta):
        a.flags.writeable = False
    y, mean, var = norm.batchnorm_forward(x, gamma, beta, EPS)
    for a in (mean, var):
        a.flags.writeable = False
    y2 = norm.batchnorm_forward(x, gamma, beta, EPS, mean, var)[0]
    numpy.testing.assert_array_equal(y, y2)
    norm.batchnorm_backward(x, y, gamma, mean, var, EPS)


# ----------------------------------------------------------------- backends
@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
def test_numpy_ops_and_reference_agree(ops, ref, dtype, rng):
    x, gamma, beta = _data(rng, (150, 7), dtype)
    strided = numpy.repeat(x, 2, axis=1)[:, ::2]   # non-contiguous: NumpyOps copies
    assert not strided.flags.c_contiguous
    outs = [o.batchnorm_forward(strided, gamma, beta, EPS) for o in (ops, ref)]
    for a, b in zip(*outs):
        assert_close(a, b, tol=5 * _tol(dtype))
    dy = rng.standard_normal(x.shape).astype(dtype)
    grads = []
    for o, (_, mean, var) in zip((ops, ref), outs):
        dg, db = numpy.zeros(7, dtype), numpy.zeros(7, dtype)
        dx = o.batchnorm_backward(strided, dy, gamma, mean, var, EPS, dg, db)
        grads.append((dx, dg, db))
    for a, b in zip(*grads):
        assert_close(a, b, tol=1e-4 if dtype == numpy.float32 else 1e-10, floor=0.5)


@settings(max_examples=40, deadline=None)
@given(m=st.integers(1, 200), n=st.integers(1, 40), dtype=st.sampled_from(["float32", "float64"]),
       loc=st.floats(-100, 100), seed=st.integers(0, 2**16), inference=st.booleans())
def test_property_equals_formula(m, n, dtype, loc, seed, inference):
    rng = numpy.random.default_rng(seed)
    x, gamma, beta = _data(rng, (m, n), dtype, loc=loc)
    stats = ((rng.standard_normal(n) + loc).astype(dtype),
             rng.uniform(0.1, 4, n).astype(dtype)) if inference else (None, None)
    y, mean, var = norm.batchnorm_forward(x, gamma, beta, EPS, *stats)
    y_ref = reference_forward(x, gamma, beta, EPS, *(None if s is None else s.astype(numpy.float64)
                                                     for s in stats))[0]
    # float32: (x - mean) loses |loc| * 2^-24 before the division by the spread.
    tol = 1e-4 * (1 + abs(loc)) if dtype == "float32" else 1e-9
    assert_close(y, y_ref.astype(dtype), tol=tol, floor=1.0)


# ----------------------------------- the strided kernels: x (P, n, Q), features in the middle
# Outer counts around the summation blocks (max(1, 64 // Q) outer indices each),
# a single outer index, inner runs shorter and longer than the 8 float64 lanes.
STRIDED_SHAPES = [(1, 1, 1), (2, 3, 1), (130, 3, 1), (33, 4, 2), (4, 5, 37), (3, 2, 64),
                  (2, 3, 65), (1, 7, 300), (9, 16, 49), (70, 2, 7)]


def _rows(x3):
    """The (rows, n) view of x (P, n, Q) with the features last: the reference's layout."""
    return x3.transpose(0, 2, 1).reshape(-1, x3.shape[1])


def _unrows(y2, shape):
    p, n, q = shape
    return y2.reshape(p, q, n).transpose(0, 2, 1)


def _strided_data(rng, shape, dtype):
    x = (rng.standard_normal(shape) * rng.uniform(0.5, 3, (1, shape[1], 1))
         + rng.standard_normal((1, shape[1], 1)) * 4).astype(dtype)
    return (x, rng.standard_normal(shape[1]).astype(dtype),
            rng.standard_normal(shape[1]).astype(dtype))


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("shape", STRIDED_SHAPES)
def test_strided_forward_and_backward_match_formula(shape, dtype, rng):
    x, gamma, beta = _strided_data(rng, shape, dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    tol = _tol(dtype)
    y, mean, var = norm.batchnorm_forward_strided(x, gamma, beta, EPS)
    y_ref, mean_ref, var_ref = reference_forward(_rows(x), gamma, beta, EPS)
    assert y.shape == shape and y.dtype == mean.dtype == var.dtype == dtype
    assert_close(mean, mean_ref.astype(dtype), tol=tol)
    assert_close(var, var_ref.astype(dtype), tol=tol)
    assert_close(y, _unrows(y_ref, shape).astype(dtype), tol=tol, floor=0.1)
    for batch_stats in (True, False):
        dg, db = numpy.full(shape[1], 0.5, dtype), numpy.full(shape[1], -1.0, dtype)
        dx = norm.batchnorm_backward_strided(x, dy, gamma, mean, var, EPS, dg, db,
                                             batch_stats=batch_stats)
        dx_ref, dg_ref, db_ref = reference_backward(_rows(x), _rows(dy), gamma, mean, var, EPS,
                                                    batch_stats)
        assert dx.shape == shape
        assert_close(dx, _unrows(dx_ref, shape).astype(dtype), tol=tol, floor=0.1)
        assert_close(dg, (dg_ref + 0.5).astype(dtype), tol=tol, floor=0.1)
        assert_close(db, (db_ref - 1.0).astype(dtype), tol=tol, floor=0.1)
    # Inference: the given statistics, copied (the caller's stay as they were).
    m_in, v_in = rng.standard_normal(shape[1]).astype(dtype), rng.uniform(0.5, 2, shape[1])
    v_in = v_in.astype(dtype)
    y_inf, m_out, v_out = norm.batchnorm_forward_strided(x, gamma, beta, EPS, m_in, v_in)
    y_inf_ref = reference_forward(_rows(x), gamma, beta, EPS, m_in, v_in)[0]
    assert_close(y_inf, _unrows(y_inf_ref, shape).astype(dtype), tol=tol, floor=0.1)
    assert m_out is not m_in and (m_out == m_in).all() and (v_out == v_in).all()
    assert norm.batchnorm_backward_strided(x, dy, None, mean, var, EPS, need_dx=False) is None


def test_strided_results_do_not_depend_on_threads(rng):
    from fastnn import threads
    for shape in ((32, 64, 100), (200, 8, 3)):
        x, gamma, beta = _strided_data(rng, shape, numpy.float32)
        dy = rng.standard_normal(shape).astype(numpy.float32)
        cap, outs = threads.get_num_threads(), []
        try:
            for n in (1, 2, 3):
                threads.set_num_threads(n, adapt=False)
                y, mean, var = norm.batchnorm_forward_strided(x, gamma, beta, EPS)
                dg = numpy.zeros(shape[1], numpy.float32)
                db = numpy.zeros(shape[1], numpy.float32)
                dx = norm.batchnorm_backward_strided(x, dy, gamma, mean, var, EPS, dg, db)
                outs.append((y, mean, var, dx, dg, db))
        finally:
            threads.set_num_threads(cap)
        for other in outs[1:]:
            for a, b in zip(outs[0], other):
                numpy.testing.assert_array_equal(a, b)


def test_strided_bad_arguments_raise_before_the_kernel(rng):
    x, gamma, beta = _strided_data(rng, (4, 3, 5), numpy.float32)
    f, b = norm.batchnorm_forward_strided, norm.batchnorm_backward_strided
    with pytest.raises(ValueError, match="batchnorm_forward_strided: x"):
        f(x.reshape(12, 5), gamma, beta, EPS)
    with pytest.raises(ValueError, match="contiguous"):
        f(x[:, :, ::2], gamma, beta, EPS)
    with pytest.raises(ValueError, match=r"gamma has shape \(4,\) but x has 3 features"):
        f(x, numpy.ones(4, numpy.float32), beta, EPS)
    with pytest.raises(TypeError):
        f(x, gamma.astype(numpy.float64), beta, EPS)
    with pytest.raises(ValueError, match="both mean and variance"):
        f(x, gamma, beta, EPS, mean=gamma)
    with pytest.raises(ValueError, match="negative"):
        f(x, gamma, beta, EPS, gamma * 0, -numpy.ones(3, numpy.float32))
    with pytest.raises(ValueError, match="at least one value"):
        f(x[:0], gamma, beta, EPS)
    with pytest.raises(ValueError, match="epsilon"):
        f(x, gamma, beta, 0.0)
    _, mean, var = f(x, gamma, beta, EPS)
    with pytest.raises(ValueError, match=r"dy has shape \(4, 3, 4\) but x has shape"):
        b(x, x[:, :, :4].copy(), gamma, mean, var, EPS)
    with pytest.raises(ValueError, match="dgamma"):
        b(x, x, gamma, mean, var, EPS, dgamma=numpy.zeros(2, numpy.float32))
    with pytest.raises(ValueError, match="writeable|read-only"):
        g = numpy.zeros(3, numpy.float32)
        g.flags.writeable = False
        b(x, x, gamma, mean, var, EPS, dgamma=g)


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
def test_strided_numpy_ops_and_reference_agree(dtype, rng):
    from fastnn.backend import NumpyOps, Ops
    x, gamma, beta = _strided_data(rng, (5, 6, 23), dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    results = []
    for ops in (NumpyOps(), Ops()):
        y, mean, var = ops.batchnorm_forward_strided(x, gamma, beta, EPS)
        dg, db = numpy.zeros(6, dtype), numpy.zeros(6, dtype)
        dx = ops.batchnorm_backward_strided(x, dy, gamma, mean, var, EPS, dg, db)
        results.append((y, mean, var, dx, dg, db))
    for a, b in zip(*results):
        assert a.shape == b.shape
        assert_close(a, b, tol=_tol(dtype), floor=0.1)
    # A non-contiguous input is copied by the backend, not refused.
    y, _, _ = NumpyOps().batchnorm_forward_strided(x[:, :, ::2], gamma, beta, EPS)
    assert_close(y, Ops().batchnorm_forward_strided(x[:, :, ::2], gamma, beta, EPS)[0],
                 tol=_tol(dtype), floor=0.1)


@settings(max_examples=40, deadline=None)
@given(p=st.integers(1, 70), n=st.integers(1, 12), q=st.integers(1, 90),
       dtype=st.sampled_from(["float32", "float64"]), loc=st.floats(-100, 100),
       seed=st.integers(0, 2**16), inference=st.booleans(), bad=st.sampled_from(
           [None, "2d", "dy shape", "gamma shape", "dtype"]))
def test_strided_property_equals_formula_or_raises(p, n, q, dtype, loc, seed, inference, bad):
    rng = numpy.random.default_rng(seed)
    x = (rng.standard_normal((p, n, q)) * 2 + loc).astype(dtype)
    gamma = rng.standard_normal(n).astype(dtype)
    beta = rng.standard_normal(n).astype(dtype)
    dy = rng.standard_normal((p, n, q)).astype(dtype)
    if bad == "2d":
        with pytest.raises(ValueError, match="x"):
            norm.batchnorm_forward_strided(x.reshape(p, n * q), gamma, beta, EPS)
        return
    if bad == "gamma shape":
        with pytest.raises(ValueError, match="gamma has shape"):
            norm.batchnorm_forward_strided(x, numpy.ones(n + 1, dtype), beta, EPS)
        return
    if bad == "dtype":
        other = "float64" if dtype == "float32" else "float32"
        with pytest.raises(TypeError):
            norm.batchnorm_forward_strided(x, gamma.astype(other), beta, EPS)
        return
    stats = ((rng.standard_normal(n) + loc).astype(dtype),
             rng.uniform(0.1, 4, n).astype(dtype)) if inference else (None, None)
    y, mean, var = norm.batchnorm_forward_strided(x, gamma, beta, EPS, *stats)
    y_ref = reference_forward(_rows(x), gamma, beta, EPS,
                              *(None if s is None else s.astype(numpy.float64) for s in stats))[0]
    tol = 1e-4 * (1 + abs(loc)) if dtype == "float32" else 1e-9
    assert_close(y, _unrows(y_ref, x.shape).astype(dtype), tol=tol, floor=1.0)
    if bad == "dy shape":
        with pytest.raises(ValueError, match="dy has shape"):
            norm.batchnorm_backward_strided(x, dy[:, :, :-1].copy() if q > 1 else dy[:0],
                                            gamma, mean, var, EPS)
        return
    dx = norm.batchnorm_backward_strided(x, dy, gamma, mean, var, EPS,
                                         batch_stats=not inference)
    dx_ref = reference_backward(_rows(x), _rows(dy), gamma, mean, var, EPS, not inference)[0]
    assert_close(dx, _unrows(dx_ref, x.shape).astype(dtype), tol=tol, floor=1.0)


# ------------------------------------------------- fixed statistics, inf x
@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("strided", [False, True])
def test_inference_dx_does_not_read_x(ops, ref, dtype, strided, rng):
    # With fixed statistics dx = dy * gamma / sqrt(var + eps) whatever x is: an
    # inf or NaN x must not reach dx (the fused pass once computed 0 * (x - mean),
    # NaN for x = inf). dgamma = sum(dy * xhat) does read x: non-finite there.
    m, n, q = 70, 3, 5   # more than one 64-row block
    shape = (m, n, q) if strided else (m, n)
    x = rng.standard_normal(shape).astype(dtype)
    x[(3, 1) + ((2,) if strided else ())] = numpy.inf
    x[(66, 1) + ((0,) if strided else ())] = -numpy.inf
    x[(10, 2) + ((4,) if strided else ())] = numpy.nan
    dy = rng.standard_normal(shape).astype(dtype)
    gamma = rng.standard_normal(n).astype(dtype)
    mean = rng.standard_normal(n).astype(dtype)
    var = rng.uniform(0.1, 2, n).astype(dtype)
    k = gamma.astype(numpy.float64) / numpy.sqrt(var.astype(numpy.float64) + EPS)
    want = dy * (k[:, None] if strided else k)   # written here, not the Ops fallback
    kern = norm.batchnorm_backward_strided if strided else norm.batchnorm_backward
    dg = numpy.zeros(n, dtype)
    dx = kern(x, dy, gamma, mean, var, EPS, dg, None, batch_stats=False)
    assert numpy.isfinite(dx).all()
    assert_close(dx, want.astype(dtype), tol=_tol(dtype))
    assert numpy.isfinite(dg[0]) and not numpy.isfinite(dg[1:]).any()
    # The backend (NumpyOps -> kernel) and the Ops reference agree on it.
    for o in (ops, ref):
        f = o.batchnorm_backward_strided if strided else o.batchnorm_backward
        with numpy.errstate(invalid="ignore"):   # the reference's xhat sums: NaN
            got = f(x, dy, gamma, mean, var, EPS, None, None, batch_stats=False)
        assert_close(got, want.astype(dtype), tol=_tol(dtype))


@pytest.mark.parametrize("strided", [False, True])
def test_dtype_messages_name_x(strided, rng):
    # A dtype mismatch names the argument it must match as the caller wrote it
    # (x), not "the other operands".
    shape = (6, 3, 2) if strided else (6, 3)
    x = rng.standard_normal(shape).astype(numpy.float32)
    f32 = numpy.ones(3, numpy.float32)
    f64 = numpy.ones(3, numpy.float64)
    fwd = norm.batchnorm_forward_strided if strided else norm.batchnorm_forward
    bwd = norm.batchnorm_backward_strided if strided else norm.batchnorm_backward
    calls = {
        "gamma": lambda: fwd(x, f64, None, EPS),
        "beta": lambda: fwd(x, None, f64, EPS),
        "mean": lambda: fwd(x, None, None, EPS, f64, f32),
        "variance": lambda: fwd(x, None, None, EPS, f32, f64),
        "dy": lambda: bwd(x, x.astype(numpy.float64), None, f32, f32, EPS),
        "dgamma": lambda: bwd(x, x, None, f32, f32, EPS, numpy.zeros(3), None),
        "dbeta": lambda: bwd(x, x, None, f32, f32, EPS, None, numpy.zeros(3)),
    }
    for name, call in calls.items():
        with pytest.raises(TypeError) as e:
            call()
        msg = str(e.value)
        assert f"{name} has dtype float64 but x has float32" in msg, msg
        assert "other operands" not in msg, msg
