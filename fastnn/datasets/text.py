"""An embedded public-domain text for character-level language models, and the
helpers that turn a text into index sequences.

The text is the King James Version of the Bible (1611), books of Genesis and
Exodus, one verse per line without verse numbers: 366,194 characters of 62
distinct ones (``data/kjv-genesis-exodus.txt.gz``, 102 KB). Its source is the
Debian package ``bible-kjv-text`` 4.38 (the Bible Retrieval System's data
file, read with that package's ``bible -f`` program and stripped of the
``Ge1:1`` references). The translation's copyright expired long ago and the
text is in the public domain (the Debian package's copyright file says so);
the one exception is the United Kingdom, where the Crown's letters patent
still govern printing it. No Project Gutenberg text or licence is involved.
"""
import gzip
import os

import numpy

from .._types import Any, Iterable, Optional, Tuple

_DATA_DIR = os.path.join(os.path.dirname(__file__), "data")
TEXTS = {"kjv": ("kjv-genesis-exodus.txt.gz", 366194)}
TEXT_SOURCE = ("King James Version of the Bible (1611), Genesis and Exodus; public domain "
               "(Crown letters patent in the UK); from Debian's bible-kjv-text 4.38")


def load_text(name: str = "kjv") -> str:
    """The embedded text ``name`` as one string (``"kjv"``: Genesis and
    Exodus of the King James Bible, 366,194 characters, one verse a line).

    Parameters
    ----------
    name : str, default "kjv"
        An embedded text's name.

    Returns
    -------
    str
    """
    if name not in TEXTS:
        raise ValueError(f"load_text: unknown text {name!r}; embedded texts: {sorted(TEXTS)}")
    filename, length = TEXTS[name]
    path = os.path.join(_DATA_DIR, filename)
    with gzip.open(path, "rt", encoding="utf-8") as f:
        text = f.read()
    if len(text) != length:
        raise ValueError(f"{path}: expected {length} characters, got {len(text)}; the package "
                         "data file is damaged")
    return text


class CharVocabulary:
    """The characters of a text, sorted, each with its index: ``encode``
    maps a string to an int64 index array and ``decode`` back.

    Parameters
    ----------
    chars : iterable of str
        The characters (duplicates are dropped), e.g. a whole text.
    """

    def __init__(self, chars: Iterable[str]) -> None:
        chars = sorted(set(chars))
        if not chars:
            raise ValueError("CharVocabulary: needs at least one character, got none")
        self.chars = chars
        self.index = {c: i for i, c in enumerate(chars)}

    def __len__(self):
        return len(self.chars)

    def encode(self, text: str) -> numpy.ndarray:
        """``text`` as an int64 array of character indices.

        Parameters
        ----------
        text : str
            Characters of the vocabulary.

        Raises
        ------
        ValueError
            If a character is not in the vocabulary.
        """
        try:
            return numpy.fromiter((self.index[c] for c in text), numpy.int64, len(text))
        except KeyError as e:
            raise ValueError(f"CharVocabulary.encode: character {e.args[0]!r} is not in the "
                             f"vocabulary of {len(self)} characters") from None

    def decode(self, indices: Any) -> str:
        """The string of character ``indices``.

        Parameters
        ----------
        indices : array_like of int
            Indices in ``[0, len(self))``.
        """
        indices = numpy.asarray(indices).ravel()
        if indices.size and (indices.min() < 0 or indices.max() >= len(self)):
            raise ValueError(f"CharVocabulary.decode: indices must lie in [0, {len(self)}), got "
                             f"values in [{indices.min()}, {indices.max()}]")
        return "".join(self.chars[i] for i in indices)


def char_sequences(text: str, seq_length: int, step: Optional[int] = None,
                   vocabulary: Optional[CharVocabulary] = None
                   ) -> Tuple[Any, Any, CharVocabulary]:
    """Cut ``text`` into (input, target) index sequences for a character
    language model: row i of ``x`` holds characters [s, s + seq_length) and
    row i of ``y`` the next ones, [s + 1, s + seq_length + 1), with s = i *
    ``step`` (default ``seq_length``: windows that do not overlap). Returns
    ``(x, y, vocabulary)``, both int64 of shape (n, seq_length); the
    vocabulary is the text's own characters unless one is given.

    Parameters
    ----------
    text : str
        The text.
    seq_length : int
        Characters per sequence.
    step : int, optional
        Characters between sequence starts (default ``seq_length``).
    vocabulary : CharVocabulary, optional
        The vocabulary to encode with (default: the text's).

    Returns
    -------
    x, y : ndarray of int64
        ``(n, seq_length)`` inputs and targets.
    vocabulary : CharVocabulary
    """
    seq_length = int(seq_length)
    step = seq_length if step is None else int(step)
    if seq_length < 1 or step < 1:
        raise ValueError(f"char_sequences: seq_length and step must be >= 1, got "
                         f"seq_length={seq_length}, step={step}")
    if len(text) < seq_length + 1:
        raise ValueError(f"char_sequences: a text of {len(text)} characters holds no "
                         f"sequence of {seq_length} characters plus its target")
    vocabulary = CharVocabulary(text) if vocabulary is None else vocabulary
    codes = vocabulary.encode(text)
    starts = numpy.arange(0, len(codes) - seq_length, step)
    window = numpy.arange(seq_length)
    x = codes[starts[:, None] + window]
    y = codes[starts[:, None] + window + 1]
    return x, y, vocabulary
