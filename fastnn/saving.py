"""Saving and loading models: one file holding the architecture (JSON), the
weights (NumPy ``.npy`` arrays) and, optionally, the optimizer state, in a zip
archive. Never pickle: loading reads JSON and plain arrays
(``allow_pickle=False``) and runs no code from the file. Writes are atomic: the
archive is written to a temporary file beside the target, synced, then renamed
over it, so a crash mid-save leaves the previous file intact.
"""
import io
import json
import os
import secrets
import zipfile

import numpy

from . import layers as layers_mod
from . import losses, optimizers
from ._registry import serialize
from .random import get_rng

FORMAT = "fastnn-model"
VERSION = 1
AUTOREC_FORMAT = "fastnn-autorec"  # fastnn.recsys.AutoRec.save's files
AUTOREC_VERSION = 1
_CONFIG = "fastnn.json"


class ModelFileError(ValueError):
    """A model file that is missing parts, corrupt, or not a fastnn file."""


# ------------------------------------------------------------------ writing
def _array_bytes(a):
    buf = io.BytesIO()
    numpy.lib.format.write_array(buf, numpy.ascontiguousarray(a), allow_pickle=False)
    return buf.getvalue()


def _atomic_write(path, write):
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    # Not tempfile.mkstemp: its file is 0600, and a saved model should get the
    # mode of any file the user writes (0666 less the umask, applied by open).
    while True:
        tmp = os.path.join(directory, f".fastnn-{os.getpid()}-{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                         0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def model_config(model):
    """The JSON-able architecture of a built model."""
    from .model import Sequential
    model._require_built("save")
    all_layers = list(model._input_layers) + [l for l in model._layers]
    index = {id(l): i for i, l in enumerate(all_layers)}
    node_index = {id(n.output): i for i, n in enumerate(model._nodes)}
    input_index = {id(t): i for i, t in enumerate(model.inputs)}

    def ref(t):
        return ["input", input_index[id(t)]] if id(t) in input_index else ["node", node_index[id(t)]]

    return {
        "class_name": "Sequential" if isinstance(model, Sequential) else "Model",
        "name": model.name,
        "layers": [{"class_name": type(l).__name__, "config": l.get_config()} for l in all_layers],
        "inputs": [index[id(l)] for l in model._input_layers],
        "nodes": [{"layer": index[id(n.layer)], "inputs": [ref(t) for t in n.inputs]}
                  for n in model._nodes],
        "output": ref(model.outputs[0]),
    }


def save_model(model, path, include_optimizer=True):
    config = {"format": FORMAT, "version": VERSION, "model": model_config(model),
              "compile": None}
    weights = model.get_weights()
    state = None
    if model.loss is not None:
        config["compile"] = {"loss": serialize(model.loss),
                             "optimizer": serialize(model.optimizer),
                             "metrics": [m for m in model._metric_specs if isinstance(m, str)]}
        if include_optimizer and model.optimizer._state is not None:
            state = model.optimizer.get_state()
            config["compile"]["optimizer_iterations"] = state["iterations"]
            config["compile"]["optimizer_slots"] = sorted(state["arrays"])
    config["n_weights"] = len(weights)
    arrays = _weight_arrays(weights)
    if state is not None:
        arrays.update({f"optimizer/{key}.npy": a for key, a in state["arrays"].items()})
    write_archive(path, config, arrays)


def save_weights(model, path):
    weights = model.get_weights()
    config = {"format": FORMAT, "version": VERSION, "weights_only": True,
              "n_weights": len(weights)}
    write_archive(path, config, _weight_arrays(weights))


def _weight_arrays(weights):
    return {f"weights/{i:05d}.npy": w for i, w in enumerate(weights)}


def write_archive(path, config, arrays):
    """Write one model file atomically: ``config`` (JSON-able; NumPy scalars
    become floats) as fastnn.json, then ``arrays`` ({name: ndarray}) as
    ``.npy`` members. Shared by ``save_model``, ``save_weights`` and
    ``fastnn.recsys.AutoRec.save``."""
    text = json.dumps(config, indent=1, default=float)

    def write(f):
        with zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr(_CONFIG, text)
            for name, a in arrays.items():
                z.writestr(name, _array_bytes(a))

    _atomic_write(path, write)


# ------------------------------------------------------------------ reading
class _Archive:
    """Checked access to a model file; every failure names the file."""

    def __init__(self, path, format=FORMAT, version=VERSION, what="fastnn model file"):
        self.path = os.fspath(path)
        if not os.path.exists(self.path):
            raise FileNotFoundError(f"no model file at {self.path!r}")
        try:
            self.zip = zipfile.ZipFile(self.path)
            names = set(self.zip.namelist())
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            raise ModelFileError(f"{self.path}: not a {what} or truncated/corrupt "
                                 f"({e})") from None
        if _CONFIG not in names:
            raise ModelFileError(f"{self.path}: not a {what} (no {_CONFIG} inside)")
        self.names = names
        try:
            self.config = json.loads(self.zip.read(_CONFIG).decode("utf-8"))
        except (ValueError, UnicodeDecodeError, zipfile.BadZipFile, OSError) as e:
            raise ModelFileError(f"{self.path}: corrupt model description ({e})") from None
        found = self.config.get("format") if isinstance(self.config, dict) else None
        if found != format:
            hint = {FORMAT: " (a Keras-style model: load it with fastnn.load_model)",
                    AUTOREC_FORMAT: " (an AutoRec: load it with "
                                    "fastnn.recsys.AutoRec.load)"}.get(found, "")
            raise ModelFileError(f"{self.path}: not a {what} (format {found!r}){hint}")
        if self.config.get("version") != version:
            raise ModelFileError(f"{self.path}: file format version {self.config.get('version')} "
                                 f"is not supported (this fastnn reads version {version})")

    def array(self, name):
        if name not in self.names:
            raise ModelFileError(f"{self.path}: missing {name}")
        try:
            return numpy.load(io.BytesIO(self.zip.read(name)), allow_pickle=False)
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
            raise ModelFileError(f"{self.path}: corrupt array {name} ({e})") from None

    def weights(self):
        n = self.config.get("n_weights")
        if not isinstance(n, int) or n < 0:
            raise ModelFileError(f"{self.path}: bad weight count {n!r}")
        return [self.array(f"weights/{i:05d}.npy") for i in range(n)]

    def close(self):
        self.zip.close()


def _build_model(config, path, backend=None):
    """Rebuild the graph. Building draws initial weights (overwritten next); the
    global random state is put back afterwards, so that loading a model in the
    middle of a run leaves the run's shuffling and dropout draws unchanged."""
    rng_state = get_rng().bit_generator.state
    try:
        return _build_graph(config, path, backend)
    finally:
        get_rng().bit_generator.state = rng_state


def _build_graph(config, path, backend=None):
    from .model import Model, Sequential
    try:
        layer_objs = []
        for spec in config["layers"]:
            cls = layers_mod.layer_class(spec["class_name"])
            layer_objs.append(cls.from_config(dict(spec["config"])))
        inputs = [layer_objs[i].output for i in config["inputs"]]
        tensors = []

        def resolve(ref):
            kind, i = ref
            return inputs[i] if kind == "input" else tensors[i]

        for node in config["nodes"]:
            layer = layer_objs[node["layer"]]
            ins = [resolve(r) for r in node["inputs"]]
            tensors.append(layer(ins if layer.multi_input else ins[0]))
        output = resolve(config["output"])
        if config["class_name"] == "Sequential":
            model = Sequential([inputs[0]] + [layer_objs[n["layer"]] for n in config["nodes"]],
                               name=config["name"], backend=backend)
        else:
            model = Model(inputs, output, name=config["name"], backend=backend)
    except (KeyError, IndexError, TypeError) as e:
        raise ModelFileError(f"{path}: malformed model description ({type(e).__name__}: {e})") from None
    return model


def load_model(path, compile=True, backend=None):
    """Rebuild a model saved with ``model.save(path)``: architecture, weights and
    (when saved) the compiled loss, metrics and optimizer with its state, so that
    training resumes exactly where it stopped. ``backend`` places it (default:
    the active backend); the file is the same whichever backend saved it."""
    archive = _Archive(path)
    try:
        if archive.config.get("weights_only"):
            raise ModelFileError(f"{archive.path}: holds weights only (from save_weights); "
                                 "build the model and call model.load_weights(path)")
        model = _build_model(archive.config.get("model", {}), archive.path, backend)
        _set_weights(model, archive.weights(), archive.path)
        spec = archive.config.get("compile")
        if compile and spec:
            model.compile(optimizer=optimizers.get(spec["optimizer"]),
                          loss=losses.get(spec["loss"]), metrics=spec.get("metrics", []))
            if "optimizer_slots" in spec:
                arrays = {k: archive.array(f"optimizer/{k}.npy") for k in spec["optimizer_slots"]}
                try:
                    model.optimizer.set_state({"iterations": spec["optimizer_iterations"],
                                               "arrays": arrays}, model._params(True))
                except (ValueError, KeyError, IndexError) as e:
                    raise ModelFileError(f"{archive.path}: optimizer state does not fit the "
                                         f"model ({e})") from None
        return model
    finally:
        archive.close()


def load_weights(model, path):
    archive = _Archive(path)
    try:
        _set_weights(model, archive.weights(), archive.path)
    finally:
        archive.close()


def _set_weights(model, weights, path):
    try:
        model.set_weights(weights)
    except ValueError as e:
        raise ModelFileError(f"{path}: weights do not fit the model ({e})") from None
