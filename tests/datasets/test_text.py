"""The embedded public-domain text and the helpers that cut it into index
sequences for a character language model, checked against slicing by hand."""
import numpy
import pytest

from fastnn.datasets import CharVocabulary, char_sequences, load_text


def test_the_embedded_text_is_the_kjv_genesis_and_exodus():
    text = load_text()
    assert len(text) == 366194
    assert text.startswith("In the beginning God created the heaven and the earth.\n")
    assert text.rstrip().endswith("throughout all their journeys.")
    assert len(set(text)) == 62
    # No licence boilerplate or verse references left in it.
    assert "Gutenberg" not in text and "Ge1:1" not in text
    with pytest.raises(ValueError, match="unknown text 'shakespeare'"):
        load_text("shakespeare")


def test_vocabulary_round_trip_and_bad_input():
    vocab = CharVocabulary("hello world")
    assert vocab.chars == sorted(set("hello world")) and len(vocab) == 8
    codes = vocab.encode("low")
    assert codes.dtype == numpy.int64 and vocab.decode(codes) == "low"
    with pytest.raises(ValueError, match="'z' is not in the vocabulary of 8"):
        vocab.encode("lozy")
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 8\), got values in \[0, 8\]"):
        vocab.decode([0, 8])


@pytest.mark.parametrize("seq_length,step", [(1, None), (4, None), (3, 1), (5, 2)])
def test_sequences_are_windows_and_next_characters(seq_length, step):
    text = "the quick brown fox jumps"
    x, y, vocab = char_sequences(text, seq_length, step)
    step = seq_length if step is None else step
    starts = list(range(0, len(text) - seq_length, step))
    assert x.shape == y.shape == (len(starts), seq_length)
    for row, s in enumerate(starts):
        assert vocab.decode(x[row]) == text[s:s + seq_length]
        assert vocab.decode(y[row]) == text[s + 1:s + seq_length + 1]


def test_sequences_refuse_bad_arguments():
    with pytest.raises(ValueError, match="seq_length and step must be >= 1"):
        char_sequences("abc", 0)
    with pytest.raises(ValueError, match="a text of 3 characters holds no sequence of 3"):
        char_sequences("abc", 3)
