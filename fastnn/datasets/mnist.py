"""MNIST and Fashion-MNIST: where the standard IDX ``.gz`` files come from,
and their reader.

The files are not shipped (licence and size): ``load_mnist()`` downloads them
on first use into ``$FASTNN_DATA/mnist`` (default ``~/.cache/fastnn-data``),
checking each file's SHA-256, and reads the cache afterwards; files put there
by ``bash shared/data/fetch.sh`` or by hand are read as they are. Every header
field is checked, so a damaged file gives a ValueError naming it instead of a
wrong array.
"""
import gzip
import os
import struct
import zlib

import numpy

from .download import RemoteFile, data_home, fetch
from .._types import Any, Optional, Tuple

# IDX type codes (third byte of the magic number) and their big-endian dtypes.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_KIND_DIRS = {"mnist": "mnist", "fashion": "fashion-mnist"}
_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
# Where the files come from, canonical location first; ``fetch`` tries the next
# URL when one fails (down, or serving other bytes). Sizes and SHA-256 are the
# ones TensorFlow Datasets records for the same files
# (tensorflow_datasets/url_checksums/mnist.txt and fashion_mnist.txt); the
# MNIST files are LeCun's originals (torchvision's MD5s for the ossci copies,
# f68b3c2d... for train images, name the same 9912422-byte file).
_MNIST_URLS = ("https://ossci-datasets.s3.amazonaws.com/mnist/",       # PyTorch's copy
               "https://storage.googleapis.com/cvdf-datasets/mnist/")  # TFDS's copy
# TFDS's hashes are of Zalando's files; Keras's https copy is taken first and
# expected to hold the same bytes (one that does not fails the check, and
# Zalando's own http location is tried next).
_FASHION_URLS = ("https://storage.googleapis.com/tensorflow/tf-keras-datasets/",  # Keras's
                 "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/")   # Zalando's
_CHECKSUMS = {
    "mnist": {
        "train-images-idx3-ubyte.gz":
            (9912422, "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
        "train-labels-idx1-ubyte.gz":
            (28881, "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
        "t10k-images-idx3-ubyte.gz":
            (1648877, "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
        "t10k-labels-idx1-ubyte.gz":
            (4542, "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
    },
    "fashion": {
        "train-images-idx3-ubyte.gz":
            (26421880, "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"),
        "train-labels-idx1-ubyte.gz":
            (29515, "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"),
        "t10k-images-idx3-ubyte.gz":
            (4422102, "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"),
        "t10k-labels-idx1-ubyte.gz":
            (5148, "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"),
    },
}


def remote_files(kind="mnist"):
    """The four ``RemoteFile`` of MNIST (``kind="mnist"``) or Fashion-MNIST."""
    _check_kind(kind)
    bases = _MNIST_URLS if kind == "mnist" else _FASHION_URLS
    return [RemoteFile(_KIND_DIRS[kind], name, tuple(b + name for b in bases), sha256=sha,
                       size=size)
            for name, (size, sha) in _CHECKSUMS[kind].items()]


FETCH_HINT = ("run `bash ../shared/data/fetch.sh` from the repository (add --fashion for "
              "Fashion-MNIST), or put the four IDX .gz files "
              "{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz in that folder")


def _check_kind(kind):
    if kind not in _KIND_DIRS:
        raise ValueError(f"kind must be one of {sorted(_KIND_DIRS)}, got {kind!r}")


def default_data_dir(kind: str = "mnist") -> str:
    """Where ``load_mnist`` looks by default: ``$FASTNN_DATA/<kind dir>``.

    Parameters
    ----------
    kind : {"mnist", "fashion"}, default "mnist"
        Which data set.

    Returns
    -------
    str
    """
    _check_kind(kind)
    return os.path.join(data_home(), _KIND_DIRS[kind])


def fetch_mnist(kind: str = "mnist", path: Any = None, url: Optional[str] = None,
                verbose: int = 1, timeout: Optional[float] = None) -> str:
    """Download whichever of the four IDX files is missing from ``path``
    (default ``default_data_dir(kind)``) and return that folder.

    Each file is checked against its published size and SHA-256 and written
    atomically; ``url`` is a folder URL holding the four files (a mirror),
    tried instead of the canonical locations (``$FASTNN_DATA_MIRROR`` does the
    same for every data set). Raises ``fastnn.datasets.DownloadError`` naming
    the file, its URL and the folder to put it in when it cannot be fetched.

    Parameters
    ----------
    kind : {"mnist", "fashion"}, default "mnist"
        Which data set.
    path : str or os.PathLike, optional
        The folder to fill (default ``default_data_dir(kind)``).
    url : str, optional
        A mirror's folder URL.
    verbose : int, default 1
        0 silent; 1 a download progress bar on stderr.
    timeout : float, optional
        Seconds before a stalled connection fails.

    Returns
    -------
    str
        The folder.
    """
    _check_kind(kind)
    folder = default_data_dir(kind) if path is None else os.fspath(path)
    options = {} if timeout is None else {"timeout": timeout}
    for remote in remote_files(kind):
        fetch(remote, os.path.join(folder, remote.name), base_url=url, verbose=verbose,
              **options)
    return folder


def read_idx(path, expect_ndim=None, expect_dtype=None):
    """Read one IDX file (gzip-compressed if the name ends in ``.gz``).

    Checks the magic number, the type code, the number of dimensions and that
    the payload holds exactly the bytes the header promises. Returns a native
    byte-order NumPy array.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    expect_ndim : int, optional
        The number of dimensions it must have.
    expect_dtype : dtype, optional
        The element type it must have.

    Returns
    -------
    ndarray

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If the file is malformed or not what was expected.
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


def _load_pair(folder, images_name, labels_name, kind):
    paths = [os.path.join(folder, name) for name in (images_name, labels_name)]
    remotes = {r.name: r for r in remote_files(kind)}
    for p in paths:
        if not os.path.isfile(p):
            raise FileNotFoundError(
                f"MNIST file not found: {p}. To get it, download "
                f"{remotes[os.path.basename(p)].urls[0]} into {folder} (load_mnist(path, "
                f"download=True) does it), or {FETCH_HINT}.")
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


def load_mnist(path: Any = None, kind: str = "mnist", download: Optional[bool] = None,
               url: Optional[str] = None, verbose: int = 1) -> Tuple[Any, Any]:
    """Load MNIST (``kind="mnist"``) or Fashion-MNIST (``kind="fashion"``),
    downloading it on first use as ``keras.datasets.mnist.load_data()`` does.

    Parameters
    ----------
    path : str, optional
        Folder with the four IDX ``.gz`` files. Default: ``default_data_dir(kind)``,
        i.e. ``$FASTNN_DATA/mnist`` or ``~/.cache/fastnn-data/mnist``
        (``fashion-mnist`` for Fashion-MNIST).
    kind : {"mnist", "fashion"}, default "mnist"
        Which data set.
    download : bool, optional
        Fetch missing files (``fetch_mnist``: SHA-256 checked, atomic writes,
        progress bar). Default: True for the cache folder, False for a
        ``path`` you name (a missing file there is an error saying how to get
        it, so a typo in a path never starts a download).
    url : str, optional
        Folder URL of a mirror holding the four files, tried instead of the
        canonical locations.
    verbose : int
        0 silent; 1 a download progress bar on stderr.

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
    fastnn.datasets.DownloadError
        A download failed (no network, HTTP error, truncated, wrong checksum);
        the message names the file, its URL and the folder to put it in.

    Examples
    --------
    >>> from fastnn.datasets import load_mnist
    >>> (x_train, y_train), (x_test, y_test) = load_mnist()  # doctest: +SKIP
    """
    _check_kind(kind)
    folder = default_data_dir(kind) if path is None else os.fspath(path)
    if download is None:
        download = path is None
    if download:
        fetch_mnist(kind, folder, url=url, verbose=verbose)
    train = _load_pair(folder, *_FILES["train"], kind)
    test = _load_pair(folder, *_FILES["test"], kind)
    return train, test


def load_fashion_mnist(path: Any = None, download: Optional[bool] = None,
                       url: Optional[str] = None, verbose: int = 1) -> Tuple[Any, Any]:
    """Load Fashion-MNIST: ``load_mnist(path, kind="fashion", ...)``, as
    ``keras.datasets.fashion_mnist.load_data()``; labels 0..9 are T-shirt/top,
    Trouser, Pullover, Dress, Coat, Sandal, Shirt, Sneaker, Bag, Ankle boot.

    Parameters
    ----------
    path, download, url, verbose
        As for ``load_mnist``.

    Returns
    -------
    (x_train, y_train), (x_test, y_test)
        uint8 arrays of shape (N, 28, 28) and (N,).
    """
    return load_mnist(path, kind="fashion", download=download, url=url, verbose=verbose)


def load_data(path=None):
    """Keras's spelling: ``from fastnn.datasets import mnist; mnist.load_data()``
    is ``load_mnist(path)`` (``path``: a folder with the four IDX files, not
    Keras's ``mnist.npz`` name; default the cache, downloaded on first use)."""
    return load_mnist(path)
