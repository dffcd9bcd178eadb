"""bench/compare_charlm.py trains PyTorch's char-LM from fastnn's initial
weights: the mapping between the two layouts must give the same model. Same
weights -> same next-character probabilities and the same mean cross-entropy,
for the LSTM, the GRU (gates reordered, two bias rows) and the SimpleRNN."""
import os
import sys

import numpy
import pytest

import fastnn
from fastnn.recipes_rnn import char_lm

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench")
torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(not os.path.isdir(BENCH), reason="bench/ not beside the tests")


@pytest.fixture(scope="module")
def compare():
    sys.path.insert(0, BENCH)
    try:
        import compare_charlm
        yield compare_charlm
    finally:
        sys.path.remove(BENCH)


@pytest.mark.parametrize("cell", ["lstm", "gru", "simplernn"])
def test_torch_model_from_fastnn_weights_is_the_same_model(compare, cell):
    import _data
    c = _data.CHARLM
    x, y, _, _, vocab = _data.charlm_data()
    x, y = x[:6], y[:6]
    fastnn.set_seed(1)
    model = char_lm(vocab, c["seq"], c["embedding"], c["units"], cell, c["lr"])
    weights = model.get_weights()
    # Non-zero biases, so that a bias put in the wrong place shows.
    rng = numpy.random.default_rng(0)
    weights = [w + 0.1 * rng.standard_normal(w.shape).astype(w.dtype) if i in (3, 5) else w
               for i, w in enumerate(weights)]
    model.set_weights(weights)
    tm = compare.torch_char_lm(vocab, cell, weights)
    with torch.no_grad():
        logits = tm(torch.from_numpy(x))
        probs = torch.softmax(logits, -1).numpy()
        loss = float(torch.nn.functional.cross_entropy(logits.reshape(-1, vocab),
                                                       torch.from_numpy(y).reshape(-1)))
    numpy.testing.assert_allclose(model.predict(x), probs, rtol=2e-4, atol=2e-6)
    assert model.evaluate(x, y) == pytest.approx(loss, rel=1e-4)
    # With PyTorch's redundant second bias frozen at zero: the same outputs,
    # and only Keras's parameters train.
    frozen = compare.torch_char_lm(vocab, cell, weights, freeze_bias_hh=True)
    with torch.no_grad():
        numpy.testing.assert_array_equal(frozen(torch.from_numpy(x)).numpy(), logits.numpy())
    n_trained = sum(p.numel() for p in frozen.parameters() if p.requires_grad)
    assert n_trained == model.count_params()
