"""Embedding: lookup against NumPy indexing, the scatter-add backward against
a loop reference (repeated indices), range errors, mask_zero."""
import numpy
import pytest

import fastnn
from fastnn import layers as L
from fastnn.backend import Ops
from fastnn.gradcheck import gradcheck
from fastnn.testing import assert_close, run_layer_test


def test_embedding_runs_the_layer_harness(rng):
    idx = rng.integers(0, 7, (4, 5))
    layer = run_layer_test(lambda dt: L.Embedding(7, 3, dtype=dt), (4, 5), (4, 5, 3), rng,
                           n_weights=1, input_data=idx)
    numpy.testing.assert_array_equal(layer(idx), layer.get_weights()[0][idx])


@pytest.mark.parametrize("shape", [(1, 1), (3,), (4, 9), (2, 3, 5)])
def test_embedding_backward_sums_repeated_rows(ops, shape, rng):
    layer = L.Embedding(6, 4, dtype="float64")
    idx = rng.integers(0, 6, shape)
    idx.flat[0] = idx.flat[-1]  # at least one repeat where there are two entries
    layer._ensure_built(shape[1:])
    y, backprop = layer.forward(idx, training=True)
    dy = rng.standard_normal(y.shape)
    assert backprop(dy) is None
    expected = numpy.zeros((6, 4))
    for i, row in zip(idx.reshape(-1), dy.reshape(-1, 4)):
        expected[i] += row
    assert_close(ops.to_numpy(layer.grads["embeddings"]), expected)
    numpy.testing.assert_array_equal(ops.to_numpy(y), ops.to_numpy(layer.params["embeddings"])[idx])


def test_scatter_add_reference_matches_a_loop(rng):
    table = numpy.zeros((5, 3))
    idx = numpy.array([[0, 4], [4, 4]])
    rows = rng.standard_normal((2, 2, 3))
    Ops().embedding_backward(idx, rows, table)
    numpy.testing.assert_allclose(table[4], rows[0, 1] + rows[1, 0] + rows[1, 1])
    numpy.testing.assert_allclose(table[0], rows[0, 0])
    assert not table[1:4].any()


@pytest.mark.parametrize("bad", [-1, 7, 100])
def test_out_of_range_index_names_layer_value_and_range(bad):
    layer = L.Embedding(7, 2, name="words")
    with pytest.raises(ValueError, match=rf"'words'.*index {bad} .*\[0, 7\)"):
        layer(numpy.array([[0, bad, 3]]))


def test_non_integer_indices_are_refused():
    with pytest.raises(ValueError, match="integer indices"):
        L.Embedding(7, 2)(numpy.array([[0.5, 1.0]]))
    with pytest.raises(TypeError, match="integer indices"):
        L.Embedding(7, 2)(numpy.array([[True, False]]))


@pytest.mark.parametrize("args", [(0, 3), (5, -1), (2.5, 3)])
def test_bad_sizes(args):
    with pytest.raises(ValueError, match="positive integer"):
        L.Embedding(*args)


def test_float_indices_holding_integers_work_in_a_model(rng):
    # A float32 Input (the default) holding indices, as Keras users often write.
    inp = fastnn.Input((4,))
    emb = L.Embedding(9, 2, embeddings_regularizer="l2", name="emb")
    model = fastnn.Model(inp, L.Dense(1)(L.Flatten()(emb(inp))))
    model.compile("adam", "mse")
    idx = rng.integers(0, 9, (10, 4)).astype("float32")
    before = emb.get_weights()[0].copy()
    model.fit(idx, rng.standard_normal((10, 1)), epochs=2, verbose=0)
    after = emb.get_weights()[0]
    used = numpy.unique(idx.astype(int))
    assert not numpy.allclose(before[used], after[used])


def test_integer_input_model_gradcheck(rng):
    inp = fastnn.Input((3,), dtype="int64")
    model = fastnn.Model(inp, L.Dense(2, dtype="float64")(
        L.Flatten(dtype="float64")(L.Embedding(5, 4, dtype="float64")(inp))))
    model.compile("sgd", "mse")
    assert gradcheck(model, rng.integers(0, 5, (6, 3)), rng.standard_normal((6, 2))).ok


def test_mask_zero_makes_a_mask():
    layer = L.Embedding(5, 2, mask_zero=True)
    idx = numpy.array([[3, 1, 0, 0], [0, 2, 0, 4]])
    numpy.testing.assert_array_equal(layer.compute_mask(idx), idx != 0)
    assert L.Embedding(5, 2).compute_mask(idx) is None
    t = layer(fastnn.Input((4,)))
    assert t.mask is not None and t.mask.shape == (4,)


def test_config_round_trip_keeps_mask_zero():
    layer = L.Embedding(5, 2, mask_zero=True, embeddings_initializer="uniform", input_length=3)
    clone = L.Embedding.from_config(layer.get_config())
    assert clone.mask_zero and clone.input_dim == 5 and clone.output_dim == 2


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("n, vocab, dim, layout", [(0, 3, 2, "C"), (1, 1, 1, "C"), (13, 5, 7, "C"),
                                                   (40, 3, 6, "strided"), (9, 11, 4, "F")])
def test_numpy_ops_scatter_add_equals_the_reference(n, vocab, dim, layout, dtype, rng):
    from fastnn.backend.numpy_ops import NumpyOps
    from fastnn.testing import make
    idx = rng.integers(0, vocab, n)
    dy = make(rng, (n, dim), dtype, layout) if n else numpy.zeros((0, dim), dtype)
    start = rng.standard_normal((vocab, dim)).astype(dtype)
    fast, ref = start.copy(), start.copy()
    NumpyOps().embedding_backward(idx, dy, fast)
    Ops().embedding_backward(idx, dy, ref)
    assert_close(fast, ref, tol=1e-5 if dtype == numpy.float32 else 1e-12)
