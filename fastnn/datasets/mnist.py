"""Reader for MNIST and Fashion-MNIST in the standard IDX ``.gz`` files.

The files are not shipped (licence and size): ``bash shared/data/fetch.sh``
puts them under ``$FASTNN_DATA`` (default ``~/.cache/fastnn-data``). Every
header field is checked, so a damaged download gives a ValueError naming the
file instead of a wrong array.
"""
import gzip
import os
import struct
import zlib

import numpy

# IDX type codes (third byte of the magic number) and their big-endian dtypes.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_KIND_DIRS = {"mnist": "mnist", "fashion": "fashion-mnist"}
_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
FETCH_HINT = ("run `bash ../shared/data/fetch.sh` from the repository (add --fashion for "
              "Fashion-MNIST), or put the four IDX .gz files "
              "{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz in that folder")


def default_data_dir(kind="mnist"):
    """Where ``load_mnist`` looks by default: ``$FASTNN_DATA/<kind dir>``."""
    if kind not in _KIND_DIRS:
        raise ValueError(f"kind must be one of {sorted(_KIND_DIRS)}, got {kind!r}")
    root = os.environ.get("FASTNN_DATA") or os.path.join(
        os.path.expanduser("~"), ".cache", "fastnn-data")
    return os.path.join(root, _KIND_DIRS[kind])


def read_idx(path, expect_ndim=None, expect_dtype=None):
    """Read one IDX file (gzip-compressed if the name ends in ``.gz``).

    Checks the magic number, the type code, the number of dimensions and that
    the payload holds exactly the bytes the header promises. Returns a native
    byte-order NumPy array.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"IDX file not found: {path}")
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"{path}: cannot decompress ({exc}); the file is damaged or "
                         f"truncated, download it again") from None
    if len(raw) < 4:
        raise ValueError(f"{path}: {len(raw)} bytes, too short for an IDX header")
    zero, code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or code not in _IDX_DTYPES:
        raise ValueError(f"{path}: bad IDX magic number 0x{raw[:4].hex()} (expected "
                         f"0x0000 then a type code in "
                         f"{[hex(c) for c in _IDX_DTYPES]} and the number of dimensions)")
    if expect_ndim is not None and ndim != expect_ndim:
        raise ValueError(f"{path}: IDX header says {ndim} dimensions, expected {expect_ndim}")
    dtype = numpy.dtype(_IDX_DTYPES[code])
    if expect_dtype is not None and dtype != numpy.dtype(expect_dtype):
        raise ValueError(f"{path}: IDX type code 0x{code:02x} ({dtype}), expected "
                         f"{numpy.dtype(expect_dtype)}")
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise ValueError(f"{path}: truncated IDX header ({len(raw)} bytes, need {header_len})")
    shape = struct.unpack(f">{ndim}I", raw[4:header_len])
    expected = int(numpy.prod(shape, dtype=numpy.int64)) * dtype.itemsize
    got = len(raw) - header_len
    if got != expected:
        what = "truncated" if got < expected else "has trailing bytes"
        raise ValueError(f"{path}: payload {what}: header shape {shape} needs {expected} "
                         f"bytes, file has {got}")
    data = numpy.frombuffer(raw, dtype=dtype, offset=header_len).reshape(shape)
    return data.astype(dtype.newbyteorder("="), copy=True)


def _load_pair(folder, images_name, labels_name):
    paths = [os.path.join(folder, name) for name in (images_name, labels_name)]
    for p in paths:
        if not os.path.isfile(p):
            raise FileNotFoundError(f"MNIST file not found: {p}. To get it, {FETCH_HINT}.")
    images = read_idx(paths[0], expect_ndim=3, expect_dtype=numpy.uint8)
    labels = read_idx(paths[1], expect_ndim=1, expect_dtype=numpy.uint8)
    if images.shape[1:] != (28, 28):
        raise ValueError(f"{paths[0]}: images are {images.shape[1]}x{images.shape[2]}, "
                         f"expected 28x28")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{paths[0]} has {images.shape[0]} images but {paths[1]} has "
                         f"{labels.shape[0]} labels; the files do not belong together")
    if labels.size and labels.max() > 9:
        raise ValueError(f"{paths[1]}: label {int(labels.max())} out of range 0..9")
    return images, labels


def load_mnist(path=None, kind="mnist"):
    """Load MNIST (``kind="mnist"``) or Fashion-MNIST (``kind="fashion"``).

    Parameters
    ----------
    path : str, optional
        Folder with the four IDX ``.gz`` files. Default: ``default_data_dir(kind)``,
        i.e. ``$FASTNN_DATA/mnist`` or ``~/.cache/fastnn-data/mnist``
        (``fashion-mnist`` for Fashion-MNIST).

    Returns
    -------
    (x_train, y_train), (x_test, y_test)
        uint8 arrays of shape (N, 28, 28) and (N,), as ``keras.datasets.mnist``.

    Raises
    ------
    FileNotFoundError
        A file is missing; the message says how to fetch it.
    ValueError
        A file is malformed (magic, type, dimensions, length, counts).
    """
    folder = default_data_dir(kind) if path is None else os.fspath(path)
    train = _load_pair(folder, *_FILES["train"])
    test = _load_pair(folder, *_FILES["test"])
    return train, test
