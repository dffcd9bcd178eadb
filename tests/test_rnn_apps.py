"""The RNN chapter's jobs (fastnn/recipes_rnn.py), `fastnn rnn` and the
examples: tiny settings here (seconds); the real-size runs, with the metric
each should reach, are marked slow. Measured on the shared 2-core machine at
load 14 (about a fifth of a core each): sine 111 s (LSTM) and 91 s (GRU),
classify 28 s (with the layers' plain step loop, before the Cython kernels),
charlm 5 epochs 179 s (with the kernels); an idle
machine takes several times less."""
import math
import os
import runpy
import sys

import numpy
import pytest

import fastnn
from fastnn import layers as L
from fastnn.__main__ import main
from fastnn import recipes_rnn as R

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
needs_examples = pytest.mark.skipif(not os.path.isdir(EXAMPLES),
                                    reason="examples/ not beside the tests (installed copy)")


# ------------------------------------------------------------------ recipes
def test_char_lm_data_windows_follow_the_text():
    (x, y), (xv, yv), vocab = R.char_lm_data(seq_length=10, limit=1000)
    text = fastnn.datasets.load_text()[:1000]
    assert x.shape == (89, 10) and xv.shape == (9, 10)
    assert vocab.decode(x[3]) == text[30:40] and vocab.decode(y[3]) == text[31:41]
    assert vocab.decode(xv[0]) == text[900:910]


def test_char_lm_trains_and_samples_reproducibly():
    kwargs = dict(seq_length=16, batch_size=32, epochs=2, units=16, embedding_dim=8,
                  limit=6000, verbose=0, sample_length=30, temperature=0.7)
    r = R.train_char_lm(**kwargs)
    vocab = r["vocabulary"]
    assert math.isclose(r["val_bpc"], r["val_loss"] / math.log(2))
    losses = r["history"].history["loss"]
    assert losses[-1] < losses[0] and r["val_bpc"] < math.log2(len(vocab))
    assert len(r["sample"]) == 30 and set(r["sample"]) <= set(vocab.chars)
    again = R.sample_chars(r["model"], vocab, vocab.decode(R.char_lm_data(
        seq_length=16, limit=6000)[1][0][0]), 30, 0.7, seed=0)
    assert again == r["sample"]   # seeded
    # A low temperature concentrates the draws on the likeliest characters.
    cold = R.sample_chars(r["model"], vocab, "And", 200, 0.05, seed=1)
    hot = R.sample_chars(r["model"], vocab, "And", 200, 5.0, seed=1)
    assert len(set(cold)) < len(set(hot))
    with pytest.raises(ValueError, match="temperature must be > 0"):
        R.sample_chars(r["model"], vocab, "And", 5, 0.0)


def test_sine_forecaster_learns_on_a_small_run():
    x, y = R.sine_data(n=50, steps=40)
    assert x.shape == (50, 40, 1) and y.shape == (50, 1) and x.dtype == numpy.float32
    r = R.train_sine(n=400, epochs=4, units=12, verbose=0)
    losses = r["history"].history["loss"]
    assert losses[-1] < losses[0] and numpy.isfinite(r["test_mse"])


def test_masked_sequences_labels_count_real_tokens_only():
    x, lengths, y = R.masked_sequences(n=200, max_len=12, seed=3)
    for row, n, label in zip(x, lengths, y):
        assert (row[n:] == 0).all() and (row[:n] > 0).all()
        assert label == int((row[:n] < 10).sum() > (row[:n] >= 10).sum())


@pytest.mark.parametrize("cell", ["lstm", "gru", "simplernn"])
def test_padded_steps_do_not_change_the_prediction(cell, rng):
    fastnn.set_seed(0)
    model = R.sequence_classifier(max_len=12, units=8, cell=cell)
    x, lengths, y = R.masked_sequences(n=64, max_len=12, seed=1)
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    base = model.predict(x)
    # The same weights reading 19 steps: 7 more padded ones.
    longer = R.sequence_classifier(max_len=19, units=8, cell=cell)
    longer.set_weights(model.get_weights())
    numpy.testing.assert_allclose(longer.predict(numpy.pad(x, ((0, 0), (0, 7)))), base,
                                  rtol=1e-5, atol=1e-6)
    # One sequence alone, unpadded, in a model of exactly its length.
    k = int(numpy.argmin(lengths))
    exact = R.sequence_classifier(max_len=int(lengths[k]), units=8, cell=cell)
    exact.set_weights(model.get_weights())
    numpy.testing.assert_allclose(exact.predict(x[k:k + 1, :lengths[k]]), base[k:k + 1],
                                  rtol=1e-5, atol=1e-6)
    # Whereas what lies at a real step does change it.
    changed = x.copy()
    changed[:, 0] = numpy.where(changed[:, 0] == 1, 15, 1)
    assert not numpy.allclose(model.predict(changed), base)


def test_unknown_cell_is_refused():
    with pytest.raises(ValueError, match="unknown recurrent cell 'lstn'"):
        R.recurrent_layer("lstn", 4)


# ---------------------------------------------------------------------- CLI
@pytest.mark.parametrize("kind,args,metric", [
    ("charlm", ["--limit", "4000", "--seq-length", "16", "--units", "16", "--epochs", "1"],
     "validation bits per character"),
    ("sine", ["--limit", "200", "--units", "8", "--epochs", "1"], "test MSE"),
    ("classify", ["--limit", "200", "--units", "8", "--epochs", "1", "--cell", "gru"],
     "test accuracy"),
])
def test_rnn_command_prints_one_line_at_verbose_0(kind, args, metric, capsys, tmp_path):
    assert main(["rnn", "--kind", kind, "--verbose", "0", "--save",
                 str(tmp_path / "m.fastnn")] + args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].startswith(metric), lines
    value = float(lines[0][len(metric):].split()[0])
    assert numpy.isfinite(value)
    assert fastnn.load_model(tmp_path / "m.fastnn").count_params() > 0


def test_rnn_charlm_prints_a_sample_when_verbose(capsys):
    assert main(["rnn", "--kind", "charlm", "--limit", "4000", "--seq-length", "16",
                 "--units", "16", "--epochs", "1", "--verbose", "2", "--sample-length", "25",
                 "--temperature", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "King James" in out and "sample at temperature 0.5 (seed 0):" in out
    sample = out.split("(seed 0):\n")[1].split("\n")[0]
    assert len(sample) <= 25
    assert out.splitlines()[-1].startswith("validation bits per character")


@pytest.mark.parametrize("args,message", [
    (["--temperature", "0"], "--temperature must be > 0, got 0.0"),
    (["--limit", "100"], "--limit 100 leaves too little text"),
])
def test_rnn_command_refuses_bad_settings(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["rnn", "--kind", "charlm", "--verbose", "0"] + args)
    assert message in str(exit_info.value.code)


# ----------------------------------------------------------------- examples
def _run_example(name, args, monkeypatch):
    monkeypatch.setattr(sys, "argv", [name] + args)
    return runpy.run_path(os.path.join(EXAMPLES, name), run_name="__example__")["main"](args)


@needs_examples
def test_examples_run_on_tiny_settings(monkeypatch, capsys):
    r = _run_example("char_lm.py", ["--epochs", "1", "--limit", "4000", "--seq-length", "16",
                                    "--units", "16", "--verbose", "0"], monkeypatch)
    assert numpy.isfinite(r["val_bpc"]) and len(r["sample"]) == 300
    r = _run_example("sine_forecast.py", ["--epochs", "1", "--samples", "200", "--verbose", "0"],
                     monkeypatch)
    assert numpy.isfinite(r["test_mse"])
    r = _run_example("sequence_classification.py",
                     ["--epochs", "1", "--samples", "200", "--verbose", "0"], monkeypatch)
    assert r["padding_gap"] < 1e-5
    assert "test accuracy" in capsys.readouterr().out


# ------------------------------------------------------- real size (slow)
@pytest.mark.slow
def test_char_lm_real_size_reaches_its_bits_per_character():
    r = R.train_char_lm(epochs=5, verbose=0, sample_length=0)
    # Measured: 2.98 after 3 epochs, 2.78 after 5 (179 s at load 14); uniform
    # guessing: log2(62) = 5.95.
    assert r["val_bpc"] < 2.9


@pytest.mark.slow
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_sine_real_size_beats_the_naive_forecast(cell):
    r = R.train_sine(epochs=20, cell=cell, verbose=0)
    assert r["test_mse"] < 0.5 * r["naive_mse"]


@pytest.mark.slow
def test_classifier_real_size_is_accurate():
    r = R.train_classifier(epochs=10, verbose=0)
    assert r["test_accuracy"] > 0.85
