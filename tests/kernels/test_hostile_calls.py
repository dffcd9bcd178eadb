"""Reproducers of crashes and silent wrong answers found by fuzzing the kernels:
each now raises a ValueError naming the argument. Crash-prone calls run in a
child process, so a regression fails the test instead of killing the run."""
import subprocess
import sys
import tempfile
import textwrap

import numpy
import pytest
import scipy.sparse

from fastnn._C import activations as A
from fastnn._C import blas, dense
from fastnn._C import sparse as S
from fastnn.recsys import sparse_ops


def _in_child(code):
    """Run ``code`` in a fresh interpreter; returns (returncode, stderr)."""
    # From a neutral folder: at the repository root, `python -c` would import
    # the uncompiled sources instead of the fastnn under test.
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                       text=True, timeout=120, cwd=tempfile.gettempdir())
    return r.returncode, r.stderr


def _csr(rng, n=6, m=5, density=0.5, dtype=numpy.float32):
    a = scipy.sparse.random(n, m, density=density, format="csr", random_state=1, dtype=dtype)
    a.sort_indices()
    return a.indptr.astype(numpy.int32), a.indices.astype(numpy.int32), a.data


def test_bad_transpose_permutation_is_refused_not_a_segfault():
    rc, err = _in_child("""
        import numpy as np, scipy.sparse
        from fastnn._C import sparse as S
        a = scipy.sparse.random(6, 5, density=0.5, format="csr", random_state=1, dtype=np.float32)
        ip, ix = a.indptr.astype(np.int32), a.indices.astype(np.int32)
        tp, ti, perm = S.csr_transpose(ip, ix, 5)
        bad = perm.copy(); bad[0] = 10**9
        G = np.ones((6, 3), np.float32); out = np.zeros((5, 3), np.float32)
        for fn in ("t_matmul", "t_matmul_adam"):
            try:
                if fn == "t_matmul":
                    S.csr_t_matmul(ip, ix, a.data, G, out, transpose=(tp, ti, bad))
                else:
                    z = np.zeros((5, 3), np.float32)
                    S.csr_t_matmul_adam(ip, ix, a.data, G, z.copy(), z.copy(), z.copy(), 1e-3,
                                        0.9, 0.999, 1e-7, 1, transpose=(tp, ti, bad))
            except ValueError as e:
                assert "transpose perm holds 1000000000" in str(e), e
            else:
                raise SystemExit(fn + " accepted a bad permutation")
    """)
    assert rc == 0, err


@pytest.mark.parametrize("value", [-1, 10**6])
def test_transpose_permutation_values_are_checked(rng, value):
    ip, ix, data = _csr(rng)
    tp, ti, perm = S.csr_transpose(ip, ix, 5)
    bad = perm.copy()
    bad[-1] = value
    G = numpy.ones((6, 3), numpy.float32)
    with pytest.raises(ValueError, match=f"transpose perm holds {value}"):
        S.csr_t_matmul(ip, ix, data, G, numpy.zeros((5, 3), numpy.float32), transpose=(tp, ti, bad))


@pytest.mark.parametrize("indptr,message", [
    ([0, 2, -5, 4], "decreases at row 1"),
    ([0, 2, 10**9, 10**9], "decreases|must be equal"),
    ([1, 2, 3, 4], "start with 0"),
    ([0, 1, 2, 3], "must be equal"),
    ([], "start with 0")])
def test_csr_take_rows_validates_the_structure(indptr, message):
    indices = numpy.arange(4, dtype=numpy.int32)
    data = numpy.ones(4, numpy.float32)
    rc, err = _in_child(f"""
        import numpy as np
        from fastnn._C import sparse as S
        try:
            S.csr_take_rows(np.array({indptr!r}, np.int32), np.arange(4, dtype=np.int32),
                            np.ones(4, np.float32), np.array([0, 1, 2], np.int64)[:{len(indptr) - 1}])
        except ValueError as e:
            print(e)
        else:
            raise SystemExit("accepted")
    """)
    assert rc == 0, err
    with pytest.raises(ValueError, match=message):
        S.csr_take_rows(numpy.array(indptr, numpy.int32), indices, data,
                        numpy.arange(max(len(indptr) - 1, 0)))


def test_csr_take_rows_still_matches_scipy(rng):
    a = scipy.sparse.random(9, 7, density=0.4, format="csr", random_state=2, dtype=numpy.float64)
    rows = numpy.array([8, 0, 0, 3])
    ip, ix, d = S.csr_take_rows(a.indptr.astype(numpy.int64), a.indices.astype(numpy.int64),
                                a.data, rows)
    ref = a[rows]
    numpy.testing.assert_array_equal(ip, ref.indptr)
    numpy.testing.assert_array_equal(ix, ref.indices)
    numpy.testing.assert_array_equal(d, ref.data)


def test_int64_column_index_beyond_int32_is_refused_not_wrapped():
    # 2**32 + 1 narrowed to int32 is 1: spmm would have used column 1's row of B.
    indptr = numpy.array([0, 1], numpy.int64)
    indices = numpy.array([2**32 + 1], numpy.int64)
    m = scipy.sparse.csr_matrix((numpy.ones(1, numpy.float32), numpy.array([1]), indptr),
                                shape=(1, 3))
    m.indices = indices  # what a caller's hand-built int64 CSR may hold
    with pytest.raises(ValueError, match=r"matrix.indices holds column 4294967297"):
        sparse_ops.as_pattern(m)
    with pytest.raises(ValueError, match="4294967297"):
        sparse_ops.spmm(m, numpy.ones((3, 2), numpy.float32))


class TestOverlappingOutputs:
    def test_gemm_out_is_an_input(self, rng):
        a = rng.standard_normal((4, 4)).astype(numpy.float32)
        b = rng.standard_normal((4, 4)).astype(numpy.float32)
        for out, name in ((a, "a"), (b, "b")):
            with pytest.raises(ValueError, match=f"out is the same memory as {name}"):
                blas.gemm(a, b, out=out)
        big = numpy.zeros((8, 4), numpy.float32)
        big[:4] = a
        with pytest.raises(ValueError, match="out overlaps a"):
            blas.gemm(big[:4], b, out=big[2:6])
        numpy.testing.assert_allclose(blas.gemm(a, b, out=numpy.empty((4, 4), numpy.float32)),
                                      a @ b, rtol=1e-5)

    def test_dense_forward_out_is_x(self, rng):
        x = rng.standard_normal((5, 5)).astype(numpy.float32)
        W = rng.standard_normal((5, 5)).astype(numpy.float32)
        with pytest.raises(ValueError, match="out is the same memory as x"):
            dense.dense_forward(x, W, None, "relu", out=x)
        with pytest.raises(ValueError, match="out is the same memory as W"):
            dense.dense_forward(x, W, None, "relu", out=W)

    def test_csr_matmul_out_is_B(self, rng):
        ip, ix, data = _csr(rng, n=5, m=5)
        B = rng.standard_normal((5, 5)).astype(numpy.float32)
        with pytest.raises(ValueError, match="out is the same memory as B"):
            S.csr_matmul(ip, ix, data, B, B)

    def test_activation_out_may_be_x_but_not_overlap_it(self, rng):
        base = rng.standard_normal(20).astype(numpy.float32)
        x = base.copy()
        expect = numpy.maximum(x, 0)
        A.activation_forward("relu", x, out=x)  # in place: documented, allowed
        numpy.testing.assert_array_equal(x, expect)
        y = base.copy()
        with pytest.raises(ValueError, match="out overlaps x"):
            A.activation_forward("sigmoid", y[:10], out=y[5:15])
        with pytest.raises(ValueError, match="out overlaps x"):
            A.softmax(y[:10], out=y[5:15])
        with pytest.raises(ValueError, match="out overlaps y"):
            A.activation_backward("tanh", y[:10], y[:10].copy(), out=y[2:12])

    # Found by tests/fuzz: these kernels wrote in place over their own inputs.
    def test_dense_backward_gradients_are_not_inputs(self, rng):
        x = rng.standard_normal((3, 3)).astype(numpy.float32)
        W, y, dy = (rng.standard_normal((3, 3)).astype(numpy.float32) for _ in range(3))
        with pytest.raises(ValueError, match="dW is the same memory as x"):
            dense.dense_backward(x, W, y, dy, x, None)
        with pytest.raises(ValueError, match="db overlaps dy"):
            dense.dense_backward(x, W, y, dy, numpy.zeros_like(W), dy[0])

    @pytest.mark.parametrize("kernel", ["sgd", "rmsprop", "adagrad", "adam", "sparse_adam"])
    def test_optimizer_state_is_not_the_param_or_grad(self, kernel):
        from fastnn._C import optim
        p = numpy.ones(6, numpy.float32)
        g = numpy.full(6, 0.5, numpy.float32)
        call = {"sgd": lambda s: optim.sgd_update(p, g, s, 0.1, 0.9),
                "rmsprop": lambda s: optim.rmsprop_update(p, g, s, 0.1),
                "adagrad": lambda s: optim.adagrad_update(p, g, s, 0.1),
                "adam": lambda s: optim.adam_update(p, g, s, numpy.zeros(6, numpy.float32),
                                                    0.1, 0.9, 0.999, 1e-7, 1),
                "sparse_adam": lambda s: S.adam_update(p, g, s, numpy.zeros(6, numpy.float32),
                                                       0.1, 0.9, 0.999, 1e-7, 1)}[kernel]
        with pytest.raises(ValueError, match="param is the same memory as"):
            call(p)
        with pytest.raises(ValueError, match="the same memory as grad|overlaps grad"):
            call(g)

    def test_sparse_outputs_are_not_inputs(self, rng):
        ip, ix, data = _csr(rng, n=5, m=5)
        nnz = data.shape[0]
        H = rng.standard_normal((5, 3)).astype(numpy.float32)
        c = numpy.zeros(nnz, numpy.float32)
        ipc, ixc = ip.copy(), ix.copy()
        # c as long as the pattern's nnz, so that out_vals=c has the right length.
        ixc[:] = numpy.minimum(ixc, nnz - 1)
        Vt = rng.standard_normal((nnz, 3)).astype(numpy.float32)
        with pytest.raises(ValueError, match="out_vals is the same memory as c"):
            S.sddmm(ipc, ixc, H, Vt, c, c)
        with pytest.raises(ValueError, match="out is the same memory as vals"):
            S.column_sums(ix, data, data)
        with pytest.raises(ValueError, match="out is the same memory as G"):
            G = rng.standard_normal((5, 5)).astype(numpy.float32)
            S.csr_t_matmul(ip, ix, data, G, G)
        with pytest.raises(ValueError, match="out_vals is the same memory as grad_vals"):
            out = numpy.empty(nnz, numpy.float32)
            S.sddmm_sq_error(ip, ix, H, rng.standard_normal((5, 3)).astype(numpy.float32),
                             None, data, out, out, numpy.zeros_like(H))
        # The gradient may overwrite the predictions (elementwise, documented).
        pred = data.copy() + 1
        loss, grad = S.masked_sq_error(pred, data, grad_out=pred)
        assert grad is pred and numpy.allclose(grad, 2.0)

    def test_autorec_step_moments_are_not_weights(self, rng):
        from fastnn._C import autorec_step as AR
        ip, ix, data = _csr(rng, n=6, m=5)
        W, Vt = (rng.standard_normal((5, 3)).astype(numpy.float32) for _ in range(2))
        z = {k: numpy.zeros(s, numpy.float32) for k, s in
             (("b", 3), ("c", 5), ("mb", 3), ("vb", 3), ("mc", 5), ("vc", 5))}
        with pytest.raises(ValueError, match="W is the same memory as mW"):
            AR.autorec_adam_step(ip, ix, data, W, z["b"], Vt, z["c"], W, numpy.zeros_like(W),
                                 z["mb"], z["vb"], numpy.zeros_like(W), numpy.zeros_like(W),
                                 z["mc"], z["vc"], 1e-3, 0.9, 0.999, 1e-8, 1, 0.0)


# ------------------------------------------------------- the last unclear errors
@pytest.mark.parametrize("pieces", [2**31, 2**40, -1, 0])
def test_maxout_pieces_out_of_range_is_a_value_error(pieces):
    x = numpy.ones((2, 4), numpy.float32)
    with pytest.raises(ValueError, match="pieces"):
        A.maxout_forward(x, pieces)
    with pytest.raises(ValueError, match="pieces"):
        A.maxout_backward(x, numpy.zeros((2, 4), numpy.int32), pieces)
    with pytest.raises(TypeError, match="pieces must be an integer"):
        A.maxout_forward(x, 2.0)


@pytest.mark.parametrize("arg", ["n_rows", "n_cols"])
def test_check_csr_negative_sizes_name_the_argument(arg):
    ip, ix = numpy.zeros(1, numpy.int32), numpy.zeros(0, numpy.int32)
    sizes = {"n_rows": 0, "n_cols": 0, arg: -1}
    with pytest.raises(ValueError, match=f"{arg} is -1; expected a non-negative integer"):
        S.check_csr(ip, ix, sizes["n_rows"], sizes["n_cols"])


def test_csr_transpose_negative_n_cols_is_refused_not_a_heap_write():
    # An empty pattern with n_cols=-1 made a zero-length t_indptr and wrote t_indptr[0].
    rc, err = _in_child("""
        import numpy as np
        from fastnn._C import sparse as S
        try:
            S.csr_transpose(np.zeros(3, np.int32), np.zeros(0, np.int32), -1)
        except ValueError as e:
            assert "n_cols is -1" in str(e), e
        else:
            raise SystemExit("accepted n_cols=-1")
    """)
    assert rc == 0, err


def test_kernel_messages_name_the_callers_arguments(rng):
    ip, ix, data = _csr(rng, n=4, m=5)
    B = numpy.ones((5, 2), numpy.float32)
    # No argument is called "A": the arrays are named as passed.
    with pytest.raises(ValueError, match=r"^indices has \d+ stored entries but data has"):
        S.csr_matmul(ip, ix, data[:-1], B, numpy.zeros((4, 2), numpy.float32))
    bad = ix.copy()
    bad[0] = 99
    with pytest.raises(ValueError, match=r"^indices holds column 99"):
        S.csr_matmul(ip, bad, data, B, numpy.zeros((4, 2), numpy.float32))
    with pytest.raises(ValueError, match=r"stored entries but target has"):
        from fastnn._C import autorec_step as AR
        W = numpy.ones((5, 2), numpy.float32)
        AR.autorec_adam_step(ip, ix, data[:-1], W, numpy.zeros(2, numpy.float32), W.copy(),
                             numpy.zeros(5, numpy.float32), *(numpy.zeros(s, numpy.float32) for s in (
                                 (5, 2), (5, 2), 2, 2, (5, 2), (5, 2), 5, 5)),
                             1e-3, 0.9, 0.999, 1e-8, 1, 0.0)
    with pytest.raises(TypeError, match="W has dtype float64 but x has float32"):
        dense.dense_forward(numpy.ones((2, 2), numpy.float32), numpy.ones((2, 2)))


@pytest.mark.parametrize("call", [
    lambda: blas.gemm([[1.0]], numpy.ones((1, 1))),
    lambda: dense.dense_forward(numpy.ones((1, 1), numpy.float32), [[1.0]]),
    lambda: A.activation_forward("relu", [1.0, 2.0]),
    lambda: S.masked_sq_error([1.0], numpy.ones(1)),
    lambda: S.column_sums([0], numpy.ones(1), numpy.zeros(1)),
])
def test_a_list_where_an_array_is_expected_is_refused_by_name(call):
    with pytest.raises((TypeError, ValueError), match=r"must be a numpy.ndarray, got list"):
        call()


def test_optimizer_state_given_as_a_list_is_a_type_error():
    from fastnn._C import optim
    p = numpy.ones(3, numpy.float32)
    with pytest.raises(TypeError, match="velocity must be a numpy.ndarray, got list"):
        optim.sgd_update(p, p.copy(), [0.0, 0.0, 0.0], 0.1, 0.9)


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
def test_sparse_relu_epilogue_keeps_nan(dtype):
    # Found by the long fuzz run: the fused ReLU of csr_matmul turned NaN into 0
    # (y > 0 ? y : 0), hiding a NaN that NumPy's maximum(y, 0) and the dense
    # kernels propagate.
    ip, ix = numpy.array([0, 1, 2], numpy.int32), numpy.array([0, 1], numpy.int32)
    data = numpy.array([numpy.nan, -1.0], dtype)
    B = numpy.ones((2, 3), dtype)
    out = S.csr_matmul(ip, ix, data, B, numpy.zeros((2, 3), dtype), activation="relu")
    assert numpy.isnan(out[0]).all()
    numpy.testing.assert_array_equal(out[1], 0)


# ------------------------------------------- found by fuzzing the CNN/RNN kernels
# (tests/fuzz/test_fuzz_cnn.py, test_fuzz_rnn.py): each was an OverflowError
# naming nothing, an argument no call could use accepted, or an output
# overlapping what the kernel still reads after writing it (a wrong result, no
# error).
@pytest.mark.parametrize("kw", [dict(strides=(2**63, 1)), dict(pads=(0, 2**63, 0, 0)),
                                dict(dilation=(1, 2**31)), dict(groups=2**63)])
def test_conv_geometry_past_int32_is_a_value_error_naming_it(kw):
    from fastnn._C import conv
    x, W = numpy.ones((1, 3, 3, 1)), numpy.ones((1, 1, 1, 1))
    with pytest.raises(ValueError, match=next(iter(kw))):
        conv.conv2d_forward(x, W, **kw)


def test_conv_messages_name_the_argument_whose_dtype_differs():
    from fastnn._C import conv
    x, W = numpy.ones((1, 3, 3, 1), numpy.float32), numpy.ones((1, 1, 1, 1))
    with pytest.raises(TypeError, match="W has dtype float64 but x has float32"):
        conv.conv2d_forward(x, W)
    dy = numpy.ones((1, 3, 3, 1), numpy.float32)
    with pytest.raises(TypeError, match="x has dtype float64 but dy has float32"):
        conv.conv2d_backward(numpy.ones((1, 3, 3, 1)), W.astype(numpy.float32), None, dy,
                             None, None)
    # Pads too large for the BLAS limit: the message names them.
    with pytest.raises(ValueError, match=r"pads \(0, 2147483000, 0, 0\)"):
        conv.conv2d_forward(x, W.astype(numpy.float32), pads=(0, 2147483000, 0, 0))


@pytest.mark.parametrize("i,name", [(0, "ph"), (3, "sw"), (7, "pr")])
@pytest.mark.parametrize("v", [2**31, -2**40, 2**63])
def test_pool_geometry_past_int32_is_a_value_error_naming_it(i, name, v):
    from fastnn._C import pool
    x = numpy.ones((1, 4, 4, 2))
    ints = [2, 2, 2, 2, 0, 0, 0, 0]
    ints[i] = v
    with pytest.raises(ValueError, match=name):
        pool.pool2d_forward(x, *ints)
    with pytest.raises(ValueError, match=name):
        pool.pool2d_backward(numpy.ones((1, 2, 2, 2)), None, x.shape, *ints, mode="avg")
    k = numpy.ones((2, 2, 2, 1))
    dw = [1, 1, 1, 1, 0, 0, 0, 0]
    dw[i] = v
    dname = ["sh", "sw", "dh", "dw", "pt", "pb", "pl", "pr"][i]
    with pytest.raises(ValueError, match=dname):
        pool.depthwise_conv2d_forward(x, k, None, *dw)
    with pytest.raises(TypeError, match="sh .*integer"):
        pool.depthwise_conv2d_forward(x, k, None, 1.5, 1, 1, 1, 0, 0, 0, 0)


def test_max_pool_backward_checks_argmax_even_with_nothing_to_scatter():
    from fastnn._C import pool
    dy = numpy.ones((0, 2, 2, 3))
    with pytest.raises(ValueError, match="argmax"):
        pool.pool2d_backward(dy, numpy.zeros((1, 0, 2, 2, 3), numpy.int32), (0, 4, 4, 3),
                             2, 2, 2, 2, 0, 0, 0, 0)


def test_depthwise_backward_refuses_gradients_overlapping_its_inputs(rng):
    from fastnn._C import pool
    x = rng.standard_normal((1, 3, 3, 2))
    k = rng.standard_normal((3, 3, 2, 1))
    y = pool.depthwise_conv2d_forward(x, k, None, 1, 1, 1, 1, 1, 1, 1, 1)
    with pytest.raises(ValueError, match="dkernel is the same memory as kernel"):
        pool.depthwise_conv2d_backward(x, k, y, y, k, None, 1, 1, 1, 1, 1, 1, 1, 1)
    dk = numpy.zeros_like(k)
    with pytest.raises(ValueError, match="dbias overlaps dkernel"):
        pool.depthwise_conv2d_backward(x, k, y, y, dk, dk.reshape(-1)[:2], 1, 1, 1, 1, 1, 1,
                                       1, 1)


def test_batchnorm_backward_refuses_gradients_overlapping_its_inputs(rng):
    from fastnn._C import norm
    x, dy = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    mean, var = x.mean(0), x.var(0)
    # dbeta written into mean before dx reads mean gave a wrong dx, silently.
    with pytest.raises(ValueError, match="dbeta is the same memory as mean"):
        norm.batchnorm_backward(x, dy, None, mean, var, 1e-3, None, mean)
    with pytest.raises(ValueError, match="dgamma is the same memory as variance"):
        norm.batchnorm_backward(x, dy, None, mean, var, 1e-3, var, None)
    with pytest.raises(ValueError, match="dgamma overlaps x"):
        norm.batchnorm_backward(x, dy, None, mean, var, 1e-3, x[1], None)


def test_rnn_backward_refuses_gradients_overlapping_its_inputs(rng):
    from fastnn._C import recurrent
    T, N, U = 2, 3, 2
    R = rng.standard_normal((U, 3 * U))
    b = rng.standard_normal(3 * U)
    Y, H, C, A, E = recurrent.rnn_forward("gru", rng.standard_normal((T, N, 3 * U)), R,
                                          rng.standard_normal((N, U)), b_rec=b)
    dY = rng.standard_normal((N, T, U))
    # dR inside H: the weight gradient's GEMM read H while writing over it.
    dR = H.reshape(-1)[:R.size].reshape(R.shape)
    with pytest.raises(ValueError, match="dR overlaps H"):
        recurrent.rnn_backward("gru", R, H, C, A, E, dY, dR=dR)
    dR = numpy.zeros_like(R)
    with pytest.raises(ValueError, match="db_rec overlaps dR"):
        recurrent.rnn_backward("gru", R, H, C, A, E, dY, dR=dR, db_rec=dR[0])
    with pytest.raises(ValueError, match="dR is the same memory as R"):
        recurrent.rnn_backward("gru", R, H, C, A, E, dY, dR=R)


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
def test_max_pool_propagates_nan_wherever_it_is_in_the_window(dtype):
    # Found by the fuzzer: "v > best" kept a NaN only when it came first in its
    # window (0.5 < NaN is false), so max pooling hid the NaN that numpy.max
    # (and PyTorch's max_pool2d) propagate. Both backends now agree with numpy.
    from fastnn._C import pool
    from fastnn.backend import NumpyOps, Ops
    x = numpy.array([0.5, numpy.nan, 2.0, numpy.nan, 1.0, 3.0], dtype).reshape(1, 1, 6, 1)
    for y, arg in (pool.pool2d_forward(x, 1, 3, 1, 3, 0, 0, 0, 0),
                   Ops().pool2d_forward(x, (1, 3), (1, 3)),
                   NumpyOps().pool2d_forward(x, (1, 3), (1, 3))):
        assert numpy.isnan(y.reshape(-1)).all()
        numpy.testing.assert_array_equal(arg.reshape(-1), [1, 0])  # the first NaN
    # Windows without NaN are untouched; a channel run long enough to vectorise.
    x = numpy.arange(2 * 40, dtype=dtype).reshape(1, 1, 2, 40)
    x[0, 0, 1, 7] = numpy.nan
    y, arg = pool.pool2d_forward(x, 1, 2, 1, 2, 0, 0, 0, 0)
    want = x[0, 0, 1].copy()
    numpy.testing.assert_array_equal(y.reshape(-1), want)
    assert (arg.reshape(-1) == 1).all()
