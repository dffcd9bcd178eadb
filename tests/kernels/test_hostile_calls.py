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
