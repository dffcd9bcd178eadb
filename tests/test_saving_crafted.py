"""A corpus of crafted model files: load_model (and AutoRec.load) must refuse
each with a ModelFileError naming the file, quickly and without claiming the
memory the file declares."""
import io
import json
import time
import tracemalloc
import zipfile

import numpy
import pytest

import fastnn
from fastnn import layers as L
from fastnn.recsys import AutoRec
from fastnn.saving import ModelFileError

MEMORY_BOUND = 64 << 20   # bytes a refused load may allocate (the files are KBs)
TIME_BOUND = 10.0         # seconds, generous for a loaded machine


def _good(tmp_path):
    model = fastnn.Sequential([fastnn.Input((4,)), L.Dense(3, activation="relu"), L.Dense(2)])
    model.compile("adam", "mse")
    model.fit(numpy.ones((8, 4), "float32"), numpy.ones((8, 2), "float32"), verbose=0)
    path = tmp_path / "good.fastnn"
    model.save(path)
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


def _npy(a):
    buf = io.BytesIO()
    numpy.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def _npy_header_only(shape, dtype="<f4"):
    buf = io.BytesIO()
    numpy.lib.format.write_array_header_1_0(
        buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buf.getvalue() + b"\0" * 64


def _edit_config(entries, edit):
    config = json.loads(entries["fastnn.json"])
    edit(config)
    entries["fastnn.json"] = json.dumps(config).encode()
    return entries


def _dense_config(config):
    return [spec for spec in config["model"]["layers"] if spec["class_name"] == "Dense"][0]


def _set_units(config):
    _dense_config(config)["config"]["units"] = 10**12


def _huge_input(config):
    for spec in config["model"]["layers"]:
        if spec["class_name"] == "InputLayer":
            for key in ("shape", "input_shape", "batch_shape"):
                if key in spec["config"]:
                    spec["config"][key] = [125_000_000]


CASES = {
    "nested json": lambda e: {**e, "fastnn.json": b'{"format": "fastnn-model", "x": '
                              + b"[" * 100_000 + b"]" * 100_000 + b"}"},
    "config is a list": lambda e: {**e, "fastnn.json": b"[1, 2]"},
    "model is a list": lambda e: _edit_config(e, lambda c: c.update(model=[])),
    "layers is a number": lambda e: _edit_config(e, lambda c: c["model"].update(layers=5)),
    "unknown layer class": lambda e: _edit_config(
        e, lambda c: _dense_config(c).update(class_name="os.system")),
    "layer config is a string": lambda e: _edit_config(
        e, lambda c: _dense_config(c).update(config="x")),
    "units 10**12": lambda e: _edit_config(e, _set_units),
    "input of 125M features": lambda e: _edit_config(e, _huge_input),
    "compile spec is a number": lambda e: _edit_config(e, lambda c: c.update(compile=3)),
    "optimizer is a list": lambda e: _edit_config(
        e, lambda c: c["compile"].update(optimizer=[1])),
    "n_weights huge": lambda e: _edit_config(e, lambda c: c.update(n_weights=10**9)),
    "npy header declares 1e9 floats": lambda e: {
        **e, "weights/00000.npy": _npy_header_only((10**9,))},
    "npy header declares 2**62 floats": lambda e: {
        **e, "weights/00000.npy": _npy_header_only((2**31, 2**31))},
    "weights hold NaN": lambda e: {**e, "weights/00000.npy": _npy(numpy.full((4, 3), numpy.nan, "f4"))},
    "weights hold inf": lambda e: {**e, "weights/00001.npy": _npy(numpy.full(3, numpy.inf, "f4"))},
    "complex weights": lambda e: {**e, "weights/00000.npy": _npy(numpy.zeros((4, 3), "c8"))},
    "string weights": lambda e: {**e, "weights/00000.npy": _npy(numpy.zeros((4, 3), "U3"))},
    "structured weights": lambda e: {**e, "weights/00000.npy": _npy(
        numpy.zeros((4, 3), [("a", "f4"), ("b", "f4")]))},
    "integer weights": lambda e: {**e, "weights/00000.npy": _npy(numpy.zeros((4, 3), "i4"))},
    "weights of the wrong shape": lambda e: {**e, "weights/00000.npy": _npy(numpy.zeros((3, 4), "f4"))},
    "a large member for a small weight": lambda e: {
        **e, "weights/00000.npy": _npy(numpy.zeros((4, 3 * 2**21), "f4"))},
    "truncated npy": lambda e: {**e, "weights/00000.npy": _npy(numpy.zeros((4, 3), "f4"))[:-5]},
    "garbage npy": lambda e: {**e, "weights/00000.npy": b"\x93NUMPY\x01\x00garbage"},
    "missing weight": lambda e: {k: v for k, v in e.items() if k != "weights/00001.npy"},
    "optimizer slot of the wrong shape": lambda e: {
        **e, **{k: _npy(numpy.zeros(7, "f4")) for k in e if k.startswith("optimizer/")}},
}


def _write(path, entries):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries.items():
            z.writestr(name, data)


@pytest.mark.parametrize("case", sorted(CASES))
def test_crafted_model_file_is_refused_within_bounds(case, tmp_path):
    path = tmp_path / "crafted.fastnn"
    _write(path, CASES[case](_good(tmp_path)))
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(ModelFileError, match="crafted.fastnn"):
            fastnn.load_model(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < TIME_BOUND
    assert peak < MEMORY_BOUND, f"{case}: the refused load allocated {peak:,} bytes"


def test_the_untouched_file_loads(tmp_path):
    path = tmp_path / "ok.fastnn"
    _write(path, _good(tmp_path))
    assert fastnn.load_model(path).count_params() == 4 * 3 + 3 + 3 * 2 + 2


def test_crafted_autorec_file_is_refused(tmp_path):
    from fastnn.recsys import synthetic_ratings
    model = AutoRec(hidden=4, seed=0)
    model.fit(synthetic_ratings(n_users=20, n_items=15, density=0.3, seed=0), epochs=1,
              verbose=0)
    path = tmp_path / "m.autorec"
    model.save(path)
    with zipfile.ZipFile(path) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    weight = next(n for n in entries if n.startswith("weights/") or n.startswith("params/")
                  or n.endswith("W.npy"))
    for bad in (_npy_header_only((10**9,)), _npy(numpy.zeros(3, "c8")),
                b'{"format": "fastnn-autorec", "x": ' + b"[" * 100_000):
        crafted = dict(entries)
        if bad.startswith(b"{"):
            crafted["fastnn.json"] = bad
        else:
            crafted[weight] = bad
        _write(tmp_path / "crafted.autorec", crafted)
        tracemalloc.start()
        try:
            with pytest.raises(ModelFileError, match="crafted.autorec"):
                AutoRec.load(tmp_path / "crafted.autorec")
            assert tracemalloc.get_traced_memory()[1] < MEMORY_BOUND
        finally:
            tracemalloc.stop()
