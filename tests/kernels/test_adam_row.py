"""The one Adam row kernel (csrc/common/adam_row.h): the dense optimizer's
adam_update, the sparse kernels' adam_update and csr_t_matmul_adam, and the
AutoRec step's row update all run it, so they agree bit for bit and all flush
denormal moments to 0 as the dense optimizer documents (fastnn_fpenv.h)."""
import platform

import numpy
import pytest

from fastnn._C import autorec_step, optim, sparse
from fastnn.testing import DTYPES, make

X86 = platform.machine().lower() in ("x86_64", "amd64", "i686", "x86")
needs_x86 = pytest.mark.skipif(not X86, reason="denormals are flushed through the x86 "
                               "MXCSR only; elsewhere the kernels keep IEEE denormals")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 37, 1 << 17])  # serial, odd, parallel
@pytest.mark.parametrize("wd,decoupled", [(0.0, False), (0.1, False), (0.1, True)])
def test_dense_and_sparse_adam_are_bitwise_one_kernel(rng, dtype, n, wd, decoupled):
    p = make(rng, (n,), dtype)
    m = numpy.abs(make(rng, (n,), dtype)) * 0.1
    v = numpy.abs(make(rng, (n,), dtype)) * 0.1
    dense_state = [p.copy(), m.copy(), v.copy()]
    sparse_state = [p.copy(), m.copy(), v.copy()]
    for step in (1, 2, 3):
        g = make(rng, (n,), dtype)
        optim.adam_update(dense_state[0], g, dense_state[1], dense_state[2], 1e-2, 0.9,
                          0.999, 1e-7, step, wd, decoupled)
        sparse.adam_update(sparse_state[0], g, sparse_state[1], sparse_state[2], 1e-2, 0.9,
                           0.999, 1e-7, step, wd, decoupled)
    for got, want in zip(sparse_state, dense_state):
        numpy.testing.assert_array_equal(got, want)
    assert not numpy.array_equal(dense_state[0], p)  # the steps did something


def _denormal_state(dtype, shape):
    tiny = numpy.finfo(dtype).tiny
    return (numpy.ones(shape, dtype), numpy.zeros(shape, dtype),
            numpy.full(shape, 1.05 * tiny, dtype), numpy.full(shape, 1.05 * tiny, dtype))


@needs_x86
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [5, 1 << 17])
def test_sparse_adam_update_flushes_a_decaying_moment(dtype, n):
    # A zero gradient (a dead unit): with beta 0.5 the moments would halve into
    # the denormals, which are slow on x86; flushed, they become 0.
    p, g, m, v = _denormal_state(dtype, (n,))
    sparse.adam_update(p, g, m, v, 1e-3, 0.5, 0.5, 1e-7, 3)
    assert (m == 0).all() and (v == 0).all() and (p == 1).all()


@needs_x86
@pytest.mark.parametrize("dtype", DTYPES)
def test_fused_sparse_adam_paths_flush_a_decaying_moment(dtype):
    rows, k = 6, 19
    # An empty pattern: every row's gradient is 0 (plus L2 on the AutoRec path).
    indptr = numpy.zeros(4, numpy.int32)
    indices = numpy.zeros(0, numpy.int32)
    data = numpy.zeros(0, dtype)
    G = numpy.zeros((3, k), dtype)
    p, _, m, v = _denormal_state(dtype, (rows, k))
    sparse.csr_t_matmul_adam(indptr, indices, data, G, p, m, v, 1e-3, 0.5, 0.5, 1e-7, 3)
    assert (m == 0).all() and (v == 0).all() and (p == 1).all()

    p, _, m, v = _denormal_state(dtype, (rows, k))
    t_indptr, t_indices, perm = sparse.csr_transpose(indptr, indices, rows)
    lr_t, eps_t, _, _ = sparse._adam_coefficients(1e-3, 0.5, 0.5, 1e-7, 3, 0.0, False)
    buf, stride = autorec_step._row_buffers(2, k, dtype)
    sq = numpy.empty(rows)
    autorec_step._csr_perm_matmul_adam_sq(t_indptr, t_indices, perm, data, G, p, m, v, lr_t,
                                          0.5, 0.5, eps_t, 0.0, buf, stride, 2, sq)
    assert (m == 0).all() and (v == 0).all() and (p == 1).all()
    numpy.testing.assert_array_equal(sq, k)  # the norms before the step: rows of ones


@needs_x86
def test_flush_flags_do_not_leak_out_of_the_sparse_kernels():
    p, g, m, v = _denormal_state(numpy.float32, (8,))
    sparse.adam_update(p, g, m, v, 1e-3, 0.5, 0.5, 1e-7, 1)
    tiny = numpy.finfo(numpy.float32).tiny
    half = numpy.float32(tiny) * numpy.float32(0.5)  # a denormal under IEEE rules
    assert 0 < half < tiny
