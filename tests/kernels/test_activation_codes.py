"""The one activation numbering: the name table every kernel module exposes
(ACTIVATION_CODES) against the C enum of csrc/common/fastnn_activations.h, and
each code against what the C loops that branch on it compute."""
import numpy
import pytest

from fastnn._C import activations, autorec_step, dense, sparse
from fastnn.testing import DTYPES, assert_close, make

MODULES = [activations, dense, sparse, autorec_step]


def test_name_table_is_the_c_enum():
    codes, enum = activations.ACTIVATION_CODES, activations.C_ACTIVATION_ENUM
    assert {"FASTNN_" + name.upper() for name in codes} == set(enum)
    for name, code in codes.items():
        assert code == enum["FASTNN_" + name.upper()], name
    assert len(set(codes.values())) == len(codes)


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_every_module_has_the_same_table(module):
    assert module.ACTIVATION_CODES == activations.ACTIVATION_CODES


def test_fused_sparse_activations_are_in_the_table():
    assert set(sparse.FUSED_ACTIVATIONS) <= set(sparse.ACTIVATION_CODES)


FORWARD = {"linear": lambda x: x, "sigmoid": lambda x: 1 / (1 + numpy.exp(-x)),
           "relu": lambda x: numpy.maximum(x, 0), "tanh": numpy.tanh}
BACKWARD = {"linear": lambda y: numpy.ones_like(y), "sigmoid": lambda y: y * (1 - y),
            "relu": lambda y: (y > 0).astype(y.dtype), "tanh": lambda y: 1 - y * y}


@pytest.mark.parametrize("name", sorted(FORWARD))
@pytest.mark.parametrize("dtype", DTYPES)
def test_each_code_selects_its_activation_in_the_sparse_loops(rng, name, dtype):
    # csr_matmul passes the code of the name to simd_rows.h's epilogue; the
    # AutoRec step's backward takes the code itself. A code that meant another
    # activation in C than in the table gives another function here.
    n, m, k = 5, 7, 19
    dense_a = make(rng, (n, m), dtype, scale=2.0) * (rng.random((n, m)) < 0.6)
    indptr = numpy.concatenate([[0], numpy.cumsum((dense_a != 0).sum(1))]).astype(numpy.int32)
    indices = numpy.nonzero(dense_a)[1].astype(numpy.int32)
    data = dense_a[dense_a != 0].astype(dtype)
    B = make(rng, (m, k), dtype, scale=2.0)
    out = numpy.empty((n, k), dtype)
    sparse.csr_matmul(indptr, indices, data, B, out, activation=name)
    y = FORWARD[name](dense_a.astype(numpy.float64) @ B.astype(numpy.float64))
    assert_close(out, y.astype(dtype))
    dy = make(rng, (1, n, k), dtype)
    dz = numpy.empty((n, k), dtype)
    autorec_step._sum_parts_act_grad(dy, out, dz, autorec_step.ACTIVATION_CODES[name])
    assert_close(dz, (dy[0] * BACKWARD[name](out)).astype(dtype))
