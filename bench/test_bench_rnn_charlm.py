"""One training epoch of the character LM of `fastnn rnn --kind charlm`
(Embedding 32 -> LSTM 128 -> softmax over 62 characters, windows of 64
characters, batch 64, Adam 2e-3) on the embedded King James text (5,149
training windows): fastnn's Sequential.fit and the same model in a plain
PyTorch loop (bench/compare_charlm.py's, in the PyTorch child process).
One warm-up epoch, then FASTNN_BENCH_EPOCHS (3) timed epochs each way.
Target (issue #17): fastnn's epoch no slower than PyTorch's.

    python -m pytest bench/test_bench_rnn_charlm.py --benchmark-only
    python bench/compare_charlm.py      # both trained: bits/char side by side
"""
import pytest

import _data
import fastnn
from _epochs import fit_epoch
from fastnn.recipes_rnn import char_lm


def fastnn_epoch(x, y, vocab, cell):
    c = _data.CHARLM
    fastnn.set_seed(0)
    model = char_lm(vocab, c["seq"], c["embedding"], c["units"], cell, c["lr"])
    return fit_epoch(model, x, y, c["batch"])


@pytest.fixture(scope="module")
def charlm_data():
    return _data.charlm_data()


@pytest.mark.parametrize("way", ["fastnn", "torch"])
def test_charlm_epoch(benchmark, request, charlm_data, way):
    benchmark.group = ("char-LM epoch: Embedding 32 -> LSTM 128 -> softmax 62, 5,149 windows "
                       "of 64 characters, batch 64, Adam")
    if way == "torch":
        return request.getfixturevalue("torch_case")("charlm_epoch", epochs=True, cell="lstm")
    x, y, _, _, vocab = charlm_data
    request.getfixturevalue("epoch_case")(fastnn_epoch(x, y, vocab, "lstm"))
