import gzip
import os
import struct

import numpy
import pytest

from fastnn.datasets import default_data_dir, load_mnist, read_idx
from fastnn.datasets.mnist import _FILES


def _idx_bytes(array, code=0x08):
    header = struct.pack(">HBB", 0, code, array.ndim) + struct.pack(f">{array.ndim}I",
                                                                   *array.shape)
    return header + array.astype(">u1").tobytes()


def _write(path, data):
    with gzip.open(path, "wb") as f:
        f.write(data)


def _make_set(folder, n_train=5, n_test=3, seed=0):
    rng = numpy.random.default_rng(seed)
    arrays = {}
    for split, n in (("train", n_train), ("test", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=numpy.uint8)
        labels = rng.integers(0, 10, size=n, dtype=numpy.uint8)
        img_name, lbl_name = _FILES[split]
        _write(os.path.join(folder, img_name), _idx_bytes(images))
        _write(os.path.join(folder, lbl_name), _idx_bytes(labels))
        arrays[split] = (images, labels)
    return arrays


def test_reads_valid_files(tmp_path):
    expected = _make_set(tmp_path)
    (x_train, y_train), (x_test, y_test) = load_mnist(tmp_path)
    numpy.testing.assert_array_equal(x_train, expected["train"][0])
    numpy.testing.assert_array_equal(y_train, expected["train"][1])
    numpy.testing.assert_array_equal(x_test, expected["test"][0])
    numpy.testing.assert_array_equal(y_test, expected["test"][1])
    assert x_train.dtype == numpy.uint8 and x_train.shape == (5, 28, 28)
    assert y_test.dtype == numpy.uint8 and y_test.shape == (3,)
    assert x_train.flags.writeable


def test_missing_file_names_it_and_says_how_to_fetch(tmp_path):
    _make_set(tmp_path)
    os.remove(tmp_path / "t10k-labels-idx1-ubyte.gz")
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte.gz.*fetch.sh"):
        load_mnist(tmp_path)


def test_default_path_uses_env_and_kind(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTNN_DATA", str(tmp_path))
    assert default_data_dir() == os.path.join(str(tmp_path), "mnist")
    assert default_data_dir("fashion") == os.path.join(str(tmp_path), "fashion-mnist")
    os.makedirs(tmp_path / "fashion-mnist")
    expected = _make_set(tmp_path / "fashion-mnist")
    (x_train, _), _ = load_mnist(kind="fashion")
    numpy.testing.assert_array_equal(x_train, expected["train"][0])
    with pytest.raises(ValueError, match="kind"):
        load_mnist(kind="cifar")


def test_truncated_payload(tmp_path):
    _make_set(tmp_path)
    name = "train-images-idx3-ubyte.gz"
    images = numpy.zeros((5, 28, 28), numpy.uint8)
    _write(tmp_path / name, _idx_bytes(images)[:-10])
    with pytest.raises(ValueError, match=f"{name}.*truncated"):
        load_mnist(tmp_path)


def test_trailing_bytes(tmp_path):
    _make_set(tmp_path)
    name = "t10k-labels-idx1-ubyte.gz"
    _write(tmp_path / name, _idx_bytes(numpy.zeros(3, numpy.uint8)) + b"xx")
    with pytest.raises(ValueError, match=f"{name}.*trailing"):
        load_mnist(tmp_path)


def test_truncated_gzip_stream(tmp_path):
    _make_set(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz"):
        load_mnist(tmp_path)


def test_bad_magic(tmp_path):
    _make_set(tmp_path)
    name = "train-labels-idx1-ubyte.gz"
    _write(tmp_path / name, b"\x12\x34\x08\x01" + struct.pack(">I", 5) + bytes(5))
    with pytest.raises(ValueError, match=f"{name}.*magic"):
        load_mnist(tmp_path)


def test_wrong_dtype_code_and_dimensions(tmp_path):
    _make_set(tmp_path)
    name = "train-labels-idx1-ubyte.gz"
    _write(tmp_path / name, struct.pack(">HBBI", 0, 0x0C, 1, 5) + bytes(20))
    with pytest.raises(ValueError, match=f"{name}.*type code"):
        load_mnist(tmp_path)
    _write(tmp_path / name, _idx_bytes(numpy.zeros((5, 1), numpy.uint8)))
    with pytest.raises(ValueError, match=f"{name}.*dimensions"):
        load_mnist(tmp_path)


def test_wrong_image_size(tmp_path):
    _make_set(tmp_path)
    _write(tmp_path / "train-images-idx3-ubyte.gz",
           _idx_bytes(numpy.zeros((5, 27, 28), numpy.uint8)))
    with pytest.raises(ValueError, match="27x28"):
        load_mnist(tmp_path)


def test_mismatched_counts(tmp_path):
    _make_set(tmp_path)
    _write(tmp_path / "train-labels-idx1-ubyte.gz", _idx_bytes(numpy.zeros(4, numpy.uint8)))
    with pytest.raises(ValueError, match="5 images but .* 4 labels"):
        load_mnist(tmp_path)


def test_read_idx_other_dtypes(tmp_path):
    a = numpy.arange(6, dtype=">i4").reshape(2, 3)
    raw = struct.pack(">HBB", 0, 0x0C, 2) + struct.pack(">2I", 2, 3) + a.tobytes()
    (tmp_path / "a.idx").write_bytes(raw)
    out = read_idx(str(tmp_path / "a.idx"))
    numpy.testing.assert_array_equal(out, numpy.arange(6).reshape(2, 3))
    assert out.dtype == numpy.int32 and out.dtype.isnative


_REAL = default_data_dir("mnist")
_HAVE_REAL = os.path.isfile(os.path.join(_REAL, "t10k-labels-idx1-ubyte.gz"))


@pytest.mark.slow
@pytest.mark.skipif(not _HAVE_REAL, reason=f"real MNIST not found in {_REAL}; fetch it with "
                    "`bash ../shared/data/fetch.sh` (or set FASTNN_DATA)")
def test_real_mnist():
    (x_train, y_train), (x_test, y_test) = load_mnist()
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert y_train.shape == (60000,) and y_test.shape == (10000,)
    assert x_train.dtype == numpy.uint8 and y_train.dtype == numpy.uint8
    assert numpy.bincount(y_train).tolist() == [5923, 6742, 5958, 6131, 5842,
                                                5421, 5918, 6265, 5851, 5949]
    assert y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
