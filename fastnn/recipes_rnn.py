"""Ready-made recurrent models and training runs that ``fastnn rnn``, the
examples and the tests share (the RNN chapter's three jobs), kept beside
``fastnn.recipes`` (the MLP and autoencoders) in a module of their own:

* ``charlm``: a character language model, Embedding -> LSTM (or GRU,
  SimpleRNN) -> Dense softmax over the characters, on the embedded King
  James text (``fastnn.datasets.load_text``), reporting validation bits per
  character and sampling text with a temperature;
* ``sine``: sine-wave forecasting, many-to-one regression of the next value;
* ``classify``: classification of variable-length token sequences, padded
  with 0 and masked (``Embedding(mask_zero=True)``), so that padding changes
  nothing.

Each builder returns a compiled model; each ``train_*`` returns a dict of
results (the model, its history, the metric, the training seconds).
"""
import math
import time

import numpy

from . import layers as L
from . import optimizers
from .layers import Input
from .model import Sequential

RNN_KINDS = ("charlm", "sine", "classify")
CELLS = {"lstm": "LSTM", "gru": "GRU", "simplernn": "SimpleRNN"}


def recurrent_layer(cell, units, **kwargs):
    """``LSTM``/``GRU``/``SimpleRNN`` by its ``--cell`` name."""
    if cell not in CELLS:
        raise ValueError(f"unknown recurrent cell {cell!r}; expected one of {sorted(CELLS)}")
    return getattr(L, CELLS[cell])(units, **kwargs)


# ------------------------------------------------------------------ char LM
def char_lm(vocab_size, seq_length=64, embedding_dim=32, units=128, cell="lstm",
            learning_rate=2e-3):
    """Embedding -> recurrent layer (every step's output) -> Dense softmax
    over the characters: the next character's distribution at every step."""
    model = Sequential([Input((seq_length,), dtype="int64"),
                        L.Embedding(vocab_size, embedding_dim),
                        recurrent_layer(cell, units, return_sequences=True),
                        L.Dense(vocab_size, activation="softmax")], name="char_lm")
    model.compile(optimizers.Adam(learning_rate), "sparse_categorical_crossentropy")
    return model


def char_lm_data(text=None, seq_length=64, val_fraction=0.1, limit=None):
    """((x_train, y_train), (x_val, y_val), vocabulary): the text's first
    1 - ``val_fraction`` for training and the rest for validation, each cut
    into windows of ``seq_length`` characters that do not overlap, the target
    being the window shifted by one character. ``limit`` keeps only the
    text's first ``limit`` characters (tests, quick runs). The vocabulary is
    the whole text's characters."""
    from .datasets.text import CharVocabulary, char_sequences, load_text
    text = load_text() if text is None else text
    if limit:
        text = text[:limit]
    vocab = CharVocabulary(text)
    cut = int(len(text) * (1 - val_fraction))
    x, y, _ = char_sequences(text[:cut], seq_length, vocabulary=vocab)
    xv, yv, _ = char_sequences(text[cut:], seq_length, vocabulary=vocab)
    return (x, y), (xv, yv), vocab


def sample_chars(model, vocabulary, prompt, length=200, temperature=1.0, seed=0):
    """``length`` characters drawn one at a time from the model's next-
    character distribution (probabilities raised to 1/``temperature`` and
    renormalized: below 1 more conservative, above 1 more surprising), each
    conditioned on the last ``seq_length`` characters so far; ``prompt``
    starts it (at least one character of the vocabulary)."""
    if temperature <= 0:
        raise ValueError(f"sample_chars: temperature must be > 0, got {temperature}")
    if not prompt:
        raise ValueError("sample_chars: the prompt needs at least one character")
    seq_length = model.inputs[0].shape[0]
    rng = numpy.random.default_rng(seed)
    codes = list(vocabulary.encode(prompt))
    out = []
    for _ in range(length):
        # A prompt shorter than the window is left-padded with its first
        # character, so the last position is always the newest character.
        window = codes[-seq_length:]
        window = [window[0]] * (seq_length - len(window)) + window
        probs = model.predict(numpy.array([window]), verbose=0)
        p = numpy.asarray(probs[0, -1], numpy.float64)
        logits = numpy.log(numpy.maximum(p, 1e-12)) / temperature
        logits -= logits.max()
        p = numpy.exp(logits)
        p /= p.sum()
        nxt = int(rng.choice(len(p), p=p))
        codes.append(nxt)
        out.append(nxt)
    return vocabulary.decode(out)


def train_char_lm(text=None, seq_length=64, batch_size=64, epochs=10, cell="lstm", units=128,
                  embedding_dim=32, learning_rate=2e-3, val_fraction=0.1, limit=None, seed=0,
                  verbose=1, temperature=0.8, sample_length=200, callbacks=None):
    """Train the character LM; returns the model, its history, the
    validation loss (nats per character) and bits per character, the
    vocabulary, a sample of ``sample_length`` characters at ``temperature``
    (seeded) and the training seconds."""
    from .random import set_seed
    (x, y), (xv, yv), vocab = char_lm_data(text, seq_length, val_fraction, limit)
    set_seed(seed)
    model = char_lm(len(vocab), seq_length, embedding_dim, units, cell, learning_rate)
    start = time.perf_counter()
    history = model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=verbose,
                        validation_data=(xv, yv), callbacks=callbacks)
    seconds = time.perf_counter() - start
    val_loss = float(model.evaluate(xv, yv, batch_size=256, verbose=0))
    sample = ""
    if sample_length:
        prompt = vocab.decode(xv[0])
        sample = sample_chars(model, vocab, prompt, sample_length, temperature, seed)
    return {"model": model, "history": history, "vocabulary": vocab, "val_loss": val_loss,
            "val_bpc": val_loss / math.log(2), "sample": sample, "train_seconds": seconds}


# --------------------------------------------------------------------- sine
def sine_data(n=3000, steps=40, noise=0.05, seed=0):
    """Noisy sums of two sine waves of random frequency and phase: ``x`` of
    shape (n, steps, 1), ``y`` the next value, shape (n, 1)."""
    rng = numpy.random.default_rng(seed)
    f1, f2 = rng.uniform(0.1, 0.5, (2, n, 1))
    p1, p2 = rng.uniform(0, 2 * numpy.pi, (2, n, 1))
    t = numpy.arange(steps + 1)[None, :]
    series = 0.5 * numpy.sin(f1 * t + p1) + 0.2 * numpy.sin(f2 * t + p2)
    series += noise * rng.standard_normal(series.shape)
    series = series.astype(numpy.float32)
    return series[:, :steps, None], series[:, steps:]


def sine_forecaster(steps=40, units=32, cell="lstm", learning_rate=5e-3):
    """Recurrent layer over the series (last state only) -> Dense(1)."""
    model = Sequential([Input((steps, 1)), recurrent_layer(cell, units), L.Dense(1)],
                       name="sine_forecaster")
    model.compile(optimizers.Adam(learning_rate), "mse")
    return model


def train_sine(n=3000, steps=40, epochs=20, batch_size=32, cell="lstm", units=32,
               learning_rate=5e-3, seed=0, verbose=1, callbacks=None):
    """Train the forecaster on 70% of the series, validate on 10%, test on
    20%; returns the model, history, test MSE and the MSE of predicting the
    last value seen (the naive forecast to beat)."""
    from .random import set_seed
    x, y = sine_data(n, steps, seed=seed)
    a, b = int(0.7 * n), int(0.8 * n)
    set_seed(seed)
    model = sine_forecaster(steps, units, cell, learning_rate)
    start = time.perf_counter()
    history = model.fit(x[:a], y[:a], batch_size=batch_size, epochs=epochs, verbose=verbose,
                        validation_data=(x[a:b], y[a:b]), callbacks=callbacks)
    seconds = time.perf_counter() - start
    pred = model.predict(x[b:], verbose=0)
    mse = float(numpy.mean((pred - y[b:]) ** 2, dtype=numpy.float64))
    naive = float(numpy.mean((x[b:, -1] - y[b:]) ** 2, dtype=numpy.float64))
    return {"model": model, "history": history, "test_mse": mse, "naive_mse": naive,
            "train_seconds": seconds}


# ----------------------------------------------------------------- classify
def masked_sequences(n=3000, max_len=30, min_len=3, vocab_size=20, seed=0):
    """Token sequences of random length in [min_len, max_len], padded with 0
    after their end: ``x`` (n, max_len) int64, ``lengths`` (n,), and ``y``
    (n,) 1 where the sequence holds more "low" tokens (1 .. vocab_size/2 - 1)
    than "high" ones, else 0. Only order-free counting decides the class, but
    the model must read every real step and no padded one to count."""
    rng = numpy.random.default_rng(seed)
    lengths = rng.integers(min_len, max_len + 1, n)
    x = rng.integers(1, vocab_size, (n, max_len))
    x[numpy.arange(max_len)[None, :] >= lengths[:, None]] = 0
    low = ((x > 0) & (x < vocab_size // 2)).sum(1)
    high = (x >= vocab_size // 2).sum(1)
    return x.astype(numpy.int64), lengths, (low > high).astype(numpy.int64)


def sequence_classifier(max_len=30, vocab_size=20, embedding_dim=16, units=32, cell="lstm",
                        learning_rate=5e-3):
    """Embedding(mask_zero=True) -> recurrent layer (last real step's state)
    -> Dense(1, sigmoid)."""
    model = Sequential([Input((max_len,), dtype="int64"),
                        L.Embedding(vocab_size, embedding_dim, mask_zero=True),
                        recurrent_layer(cell, units),
                        L.Dense(1, activation="sigmoid")], name="sequence_classifier")
    model.compile(optimizers.Adam(learning_rate), "binary_crossentropy", metrics=["accuracy"])
    return model


def train_classifier(n=3000, max_len=30, epochs=10, batch_size=32, cell="lstm", units=32,
                     learning_rate=5e-3, seed=0, verbose=1, callbacks=None):
    """Train on 80% of the sequences (a tenth of it for validation), test on
    20%; returns the model, history, test accuracy and loss."""
    from .random import set_seed
    x, _, y = masked_sequences(n, max_len, seed=seed)
    a = int(0.8 * n)
    set_seed(seed)
    model = sequence_classifier(max_len, units=units, cell=cell, learning_rate=learning_rate)
    start = time.perf_counter()
    history = model.fit(x[:a], y[:a], batch_size=batch_size, epochs=epochs, verbose=verbose,
                        validation_split=0.1, callbacks=callbacks)
    seconds = time.perf_counter() - start
    result = model.evaluate(x[a:], y[a:], batch_size=256, return_dict=True, verbose=0)
    return {"model": model, "history": history, "test_accuracy": result["accuracy"],
            "test_loss": result["loss"], "train_seconds": seconds}
