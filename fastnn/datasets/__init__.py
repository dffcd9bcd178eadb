"""Data sets: MNIST/Fashion-MNIST (downloaded on first use into the cache, then
read from it), the embedded digits set, the embedded public-domain text for
character language models (``load_text``), and the download helper they share.

Only loaders live here; splitting and scaling are in ``fastnn.preprocessing``.
Downloaded data is never shipped: it goes to ``$FASTNN_DATA`` (default
``~/.cache/fastnn-data``), each file checked against its published checksum.
"""
from . import fashion_mnist, mnist   # Keras's spelling: mnist.load_data()
from .digits import load_digits
from .download import DownloadError, data_home
from .mnist import default_data_dir, fetch_mnist, load_fashion_mnist, load_mnist, read_idx

__all__ = ["DownloadError", "data_home", "default_data_dir", "fetch_mnist", "load_digits",
           "load_fashion_mnist", "load_mnist", "read_idx"]

# The embedded text for character language models (the RNN chapter).
from .text import CharVocabulary, char_sequences, load_text  # noqa: E402

__all__ += ["CharVocabulary", "char_sequences", "load_text"]
