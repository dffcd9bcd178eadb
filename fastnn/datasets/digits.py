"""The UCI optical recognition of handwritten digits data, shipped in the package.

1,797 images of 8x8 pixels with integer values 0..16, ten classes. CC BY 4.0,
E. Alpaydin and C. Kaynak; see ``data/LICENSE-digits.txt``. Small enough
(57 KB) to make demos and tests run without a download.
"""
import gzip
import os

import numpy

_DATA_FILE = os.path.join(os.path.dirname(__file__), "data", "digits.csv.gz")
_N_SAMPLES, _N_PIXELS = 1797, 64
_MAX_PIXEL = 16.0


def _read_digits_csv(path=_DATA_FILE):
    with gzip.open(path, "rt") as f:
        table = numpy.loadtxt(f, delimiter=",", dtype=numpy.int64)
    if table.shape != (_N_SAMPLES, _N_PIXELS + 1):
        raise ValueError(f"{path}: expected a {_N_SAMPLES}x{_N_PIXELS + 1} table, "
                         f"got shape {table.shape}; the package data file is damaged")
    return table[:, :_N_PIXELS], table[:, _N_PIXELS]


def load_digits(return_split=False, images=False, test_size=0.25, seed=0):
    """Load the embedded 8x8 handwritten digits (1,797 samples, 10 classes).

    Parameters
    ----------
    return_split : bool
        If True, return ``(x_train, y_train), (x_test, y_test)`` split with
        ``fastnn.preprocessing.train_test_split`` (stratified, seeded), like
        ``load_mnist``. Otherwise return ``(x, y)``.
    images : bool
        If True, ``x`` has shape ``(N, 8, 8)``; otherwise ``(N, 64)``.
    test_size, seed
        Used only with ``return_split=True``.

    Returns
    -------
    x : float32 array with values in [0, 1] (pixel counts divided by 16)
    y : int64 array of labels 0..9

    Examples
    --------
    >>> x, y = load_digits()
    >>> x.shape, x.dtype, y.shape
    ((1797, 64), dtype('float32'), (1797,))
    """
    pixels, labels = _read_digits_csv()
    x = (pixels / _MAX_PIXEL).astype(numpy.float32)
    if images:
        x = x.reshape(-1, 8, 8)
    y = labels.astype(numpy.int64)
    if not return_split:
        return x, y
    from ..preprocessing import train_test_split
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_size, seed=seed, stratify=y)
    return (x_train, y_train), (x_test, y_test)
