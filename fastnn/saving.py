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
import re
import secrets
import zipfile

import numpy

from . import layers as layers_mod
from . import losses, optimizers
from ._registry import serialize
from ._types import Any
from .layers.base import weight_budget
from .random import get_rng

FORMAT = "fastnn-model"
VERSION = 1
AUTOREC_FORMAT = "fastnn-autorec"  # fastnn.recsys.AutoRec.save's files
AUTOREC_VERSION = 1
_CONFIG = "fastnn.json"
MAX_CONFIG_BYTES = 16 << 20  # a model description is a few KB of JSON


class ModelFileError(ValueError):
    """A model file that is missing parts, corrupt, or not a fastnn file."""


# ------------------------------------------------------------------ writing
def _array_bytes(a):
    buf = io.BytesIO()
    numpy.lib.format.write_array(buf, numpy.ascontiguousarray(a), allow_pickle=False)
    return buf.getvalue()


_TMP_NAME = re.compile(r"\.fastnn-(\d+)-[0-9a-f]{12}\.tmp")


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # someone else's live process, or a pid we cannot judge: keep
    return True


def _remove_stale_temporaries(directory):
    """Delete the temporary files of saves whose process died mid-write (killed
    between creating and renaming them), so they cannot pile up. Only names
    this module makes, and only of processes that no longer exist."""
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        m = _TMP_NAME.fullmatch(name)
        if m and int(m.group(1)) != os.getpid() and not _pid_alive(int(m.group(1))):
            try:
                os.unlink(os.path.join(directory, name))
            except OSError:
                pass  # another saver removed it first, or no permission: harmless


def _atomic_write(path, write):
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if os.name == "posix":  # os.kill(pid, 0) probes a pid only on POSIX
        _remove_stale_temporaries(directory)
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
    """The JSON-able architecture of a built model.

    Parameters
    ----------
    model : Model
        A built model.

    Returns
    -------
    dict
        Its layers' classes and configs, inputs, graph nodes and outputs.
    """
    from .model import Sequential
    model._require_built("save")
    all_layers = list(model._input_layers) + [l for l in model._layers]
    index = {id(l): i for i, l in enumerate(all_layers)}
    node_index = {id(t): (i, t.index) for i, n in enumerate(model._nodes) for t in n.outputs}
    input_index = {id(t): i for i, t in enumerate(model.inputs)}

    def ref(t):
        # ["node", i] is node i's (first) output; ["node", i, k] its k-th output.
        if id(t) in input_index:
            return ["input", input_index[id(t)]]
        i, k = node_index[id(t)]
        return ["node", i] if k == 0 else ["node", i, k]

    def node_spec(n):
        spec = {"layer": index[id(n.layer)], "inputs": [ref(t) for t in n.inputs]}
        if n.tensor_kwargs:
            spec["tensor_kwargs"] = {k: [ref(t) for t in v] if isinstance(v, list) else ref(v)
                                     for k, v in n.tensor_kwargs.items()}
        if n.call_kwargs:
            spec["call_kwargs"] = n.call_kwargs
        return spec

    config = {
        "class_name": "Sequential" if isinstance(model, Sequential) else "Model",
        "name": model.name,
        "layers": [{"class_name": type(l).__name__, "config": l.get_config()} for l in all_layers],
        "inputs": [index[id(l)] for l in model._input_layers],
        "nodes": [node_spec(n) for n in model._nodes],
        "output": ref(model.outputs[0]),
    }
    if len(model.outputs) > 1:
        config["outputs"] = [ref(t) for t in model.outputs]
    return config


def save_model(model: Any, path: Any, include_optimizer: bool = True) -> None:
    """Write ``model`` to ``path`` (what ``Model.save`` does).

    Parameters
    ----------
    model : Model
        A built model.
    path : str or os.PathLike
        The file to write, atomically.
    include_optimizer : bool, default True
        Also write the optimizer's state (when it has one).
    """
    config = {"format": FORMAT, "version": VERSION, "model": model_config(model),
              "compile": None}
    weights = model.get_weights()
    state = None
    if model.loss is not None:
        if len(model.outputs) == 1:
            config["compile"] = {"loss": serialize(model.loss),
                                 "metrics": [m for m in model._metric_specs if isinstance(m, str)]}
        else:
            config["compile"] = {
                "loss": [serialize(l) for l in model._losses], "loss_weights": model._loss_weights,
                "metrics": [[m for m in ms if isinstance(m, str)] for ms in model._metric_specs]}
        config["compile"]["optimizer"] = serialize(model.optimizer)
        if include_optimizer and model.optimizer.built:
            state = model.optimizer.get_state()
            config["compile"]["optimizer_iterations"] = state["iterations"]
            config["compile"]["optimizer_slots"] = sorted(state["arrays"])
    config["n_weights"] = len(weights)
    arrays = _weight_arrays(weights)
    if state is not None:
        arrays.update({f"optimizer/{key}.npy": a for key, a in state["arrays"].items()})
    write_archive(path, config, arrays)


def save_weights(model: Any, path: Any) -> None:
    """Write ``model``'s weights only to ``path`` (what ``Model.save_weights`` does).

    Parameters
    ----------
    model : Model
        A built model.
    path : str or os.PathLike
        The file to write, atomically.
    """
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
    ``fastnn.recsys.AutoRec.save``.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write; a partial file is never left under this name.
    config : dict
        JSON-able description.
    arrays : dict of str to ndarray
        The arrays, by member name.
    """
    text = json.dumps(config, indent=1, default=float)

    def write(f):
        with zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr(_CONFIG, text)
            for name, a in arrays.items():
                z.writestr(name, _array_bytes(a))

    _atomic_write(path, write)


# ------------------------------------------------------------------ reading
class Archive:
    """Checked read access to a file written by ``write_archive``: its JSON
    config (``.config``) and its arrays (``.array(name)``); every failure names
    the file. ``format``/``version`` are what the reader expects (a file of
    another format or version is refused), ``what`` names the file kind in
    errors. A context manager; ``close()`` otherwise.

    Parameters
    ----------
    path : str or os.PathLike
        The file to read.
    format : str
        The format name the file must declare.
    version : int
        The format version the file must declare.
    what : str
        The file kind, as errors name it.

    Raises
    ------
    ModelFileError
        If the file is missing, not a zip, too large, or of another format or version.
    """

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
        info = self.zip.getinfo(_CONFIG)
        if info.file_size > MAX_CONFIG_BYTES:
            raise ModelFileError(f"{self.path}: model description of {info.file_size:,} bytes; "
                                 f"at most {MAX_CONFIG_BYTES:,} expected")
        try:
            self.config = json.loads(self._read(_CONFIG, info.file_size).decode("utf-8"))
        except RecursionError:
            raise ModelFileError(f"{self.path}: model description nested too deeply") from None
        except (ValueError, UnicodeDecodeError, zipfile.BadZipFile, OSError, EOFError) as e:
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

    def _read(self, name, size):
        """A member's bytes, never more than its declared size: a member whose
        data inflates beyond what its header says is corrupt, and is refused
        before it can fill memory."""
        with self.zip.open(name) as f:
            data = f.read(size + 1)
        if len(data) != size:
            raise ModelFileError(f"{self.path}: {name} holds {'more' if len(data) > size else 'fewer'}"
                                 f" bytes than its zip header declares ({size:,})")
        return data

    def array_header(self, name, kinds="biufU"):
        """(shape, dtype) of a stored ``.npy`` array, read from its header only,
        checked to be a plain array of one of the dtype ``kinds`` (model weights:
        ``"f"``) whose data exactly fills the member.

        Parameters
        ----------
        name : str
            The member's name.
        kinds : str, default "biufU"
            The dtype kinds accepted.
        """
        if name not in self.names:
            raise ModelFileError(f"{self.path}: missing {name}")
        info = self.zip.getinfo(name)
        try:
            with self.zip.open(name) as f:
                version = numpy.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, fortran, dtype = numpy.lib.format.read_array_header_1_0(f)
                elif version == (2, 0):
                    shape, fortran, dtype = numpy.lib.format.read_array_header_2_0(f)
                else:
                    raise ValueError(f"unsupported .npy version {version}")
                header_end = f.tell()
        except (ValueError, OSError, EOFError, zipfile.BadZipFile, SyntaxError) as e:
            raise ModelFileError(f"{self.path}: corrupt array {name} ({e})") from None
        if dtype.kind not in kinds or dtype.fields is not None or dtype.subdtype is not None:
            expected = "real floating point" if kinds == "f" else f"one of the kinds {kinds!r}"
            raise ModelFileError(f"{self.path}: array {name} has dtype {dtype}; expected "
                                 f"{expected}")
        nbytes = int(numpy.prod(shape, dtype=object)) * dtype.itemsize
        if header_end + nbytes != info.file_size:
            raise ModelFileError(f"{self.path}: array {name} declares shape {tuple(shape)} "
                                 f"({nbytes:,} bytes of {dtype}), but the member holds "
                                 f"{info.file_size - header_end:,} bytes of data")
        return tuple(shape), dtype

    def array(self, name, kinds="biufU", finite=False):
        """A stored array, its header checked first (``array_header``).

        Parameters
        ----------
        name : str
            The member's name.
        kinds : str, default "biufU"
            The dtype kinds accepted.
        finite : bool, default False
            Refuse NaN and infinities (model weights).
        """
        self.array_header(name, kinds)
        size = self.zip.getinfo(name).file_size
        try:
            a = numpy.load(io.BytesIO(self._read(name, size)), allow_pickle=False)
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
            raise ModelFileError(f"{self.path}: corrupt array {name} ({e})") from None
        if finite and not numpy.isfinite(a).all():
            raise ModelFileError(f"{self.path}: array {name} holds "
                                 f"{int((~numpy.isfinite(a)).sum())} NaN or infinite value(s)")
        return a

    def weights(self):
        """The stored weight arrays, in order (finite floats, checked)."""
        n = self.config.get("n_weights")
        if not isinstance(n, int) or n < 0:
            raise ModelFileError(f"{self.path}: bad weight count {n!r}")
        return [self.array(f"weights/{i:05d}.npy", "f", finite=True) for i in range(n)]

    def close(self):
        """Close the file."""
        self.zip.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


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
            if ref[0] == "input":
                return inputs[ref[1]]
            out = tensors[ref[1]]
            k = ref[2] if len(ref) > 2 else 0
            return out[k] if isinstance(out, list) else out

        for node in config["nodes"]:
            layer = layer_objs[node["layer"]]
            ins = [resolve(r) for r in node["inputs"]]
            kwargs = dict(node.get("call_kwargs", {}))
            for key, r in node.get("tensor_kwargs", {}).items():
                many = bool(r) and isinstance(r[0], list)
                kwargs[key] = [resolve(x) for x in r] if many else resolve(r)
            tensors.append(layer(ins if layer.multi_input else ins[0], **kwargs))
        output = [resolve(r) for r in config["outputs"]] if "outputs" in config \
            else resolve(config["output"])
        if config["class_name"] == "Sequential":
            model = Sequential([inputs[0]] + [layer_objs[n["layer"]] for n in config["nodes"]],
                               name=config["name"], backend=backend)
        else:
            model = Model(inputs, output, name=config["name"], backend=backend)
    except (KeyError, IndexError, TypeError) as e:
        raise ModelFileError(f"{path}: malformed model description ({type(e).__name__}: {e})") from None
    return model


def load_model(path: Any, compile: bool = True, backend: Any = None) -> Any:
    """Rebuild a model saved with ``model.save(path)``: architecture, weights and
    (when saved) the compiled loss, metrics and optimizer with its state, so that
    training resumes exactly where it stopped. ``backend`` places it (default:
    the active backend); the file is the same whichever backend saved it.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by ``model.save``.
    compile : bool, default True
        Restore the loss, metrics and optimizer (state included); with False
        the model comes back uncompiled.
    backend : str or Ops, optional
        Where the model computes (default: the active backend).

    Returns
    -------
    Model or Sequential

    Raises
    ------
    ModelFileError
        If the file is missing, corrupt or not a fastnn model file (a
        ``ValueError``; the message names the file).

    Examples
    --------
    >>> model.save("mlp.fastnn")
    >>> model = fastnn.load_model("mlp.fastnn")
    """
    archive = Archive(path)
    try:
        return _load_model(archive, compile, backend)
    except ModelFileError:
        raise
    except (KeyError, IndexError, TypeError, AttributeError, ValueError, OverflowError,
            RecursionError, MemoryError) as e:
        # Whatever a crafted description trips over deeper down is still a bad
        # file, and is reported as one.
        raise ModelFileError(f"{archive.path}: malformed model description "
                             f"({type(e).__name__}: {e})") from None
    finally:
        archive.close()


def _load_model(archive, compile, backend=None):
    """The body of load_model; its callers turn stray errors into ModelFileError."""
    if archive.config.get("weights_only"):
        raise ModelFileError(f"{archive.path}: holds weights only (from save_weights); "
                             "build the model and call model.load_weights(path)")
    n = archive.config.get("n_weights")
    headers = []  # a bad count is reported by archive.weights() below
    for i in range(n if isinstance(n, int) and 0 <= n <= len(archive.names) else 0):
        headers.append(archive.array_header(f"weights/{i:05d}.npy", "f"))
    stored = sum(int(numpy.prod(shape, dtype=object)) * dtype.itemsize
                 for shape, dtype in headers)
    # A model file holds every weight of its model; the layers it describes may
    # allocate that much (float64 layers from float32 arrays: twice), no more.
    with weight_budget(2 * stored, f"{archive.path} (its weight arrays)"):
        model = _build_model(archive.config.get("model", {}), archive.path, backend)
    # Shapes from the headers before any array is read: a member cannot make
    # the loader inflate data the model has no room for.
    params = model._params()
    if len(headers) == len(params):
        for i, ((shape, _), p) in enumerate(zip(headers, params)):
            if tuple(shape) != tuple(p.shape):
                raise ModelFileError(f"{archive.path}: weights/{i:05d}.npy has shape "
                                     f"{tuple(shape)}; the model's weight {i} has shape "
                                     f"{tuple(p.shape)}")
    _set_weights(model, archive.weights(), archive.path)
    spec = archive.config.get("compile")
    if compile and spec:
        loss = spec["loss"]
        loss = [None if l is None else losses.get(l) for l in loss] \
            if isinstance(loss, list) else losses.get(loss)
        model.compile(optimizer=optimizers.get(spec["optimizer"]), loss=loss,
                      metrics=spec.get("metrics", []), loss_weights=spec.get("loss_weights"))
        if "optimizer_slots" in spec:
            arrays = {k: archive.array(f"optimizer/{k}.npy", "f", finite=True)
                      for k in spec["optimizer_slots"]}
            try:
                model.optimizer.set_state({"iterations": spec["optimizer_iterations"],
                                           "arrays": arrays}, model._params(True))
            except (ValueError, KeyError, IndexError) as e:
                raise ModelFileError(f"{archive.path}: optimizer state does not fit the "
                                     f"model ({e})") from None
    return model


def load_weights(model: Any, path: Any) -> None:
    """Read weights from ``path`` into ``model`` (what ``Model.load_weights`` does).

    Parameters
    ----------
    model : Model
        A built model with the file's weight shapes.
    path : str or os.PathLike
        A file written by ``save_weights`` or ``save``.
    """
    archive = Archive(path)
    try:
        _set_weights(model, archive.weights(), archive.path)
    finally:
        archive.close()


def _set_weights(model, weights, path):
    try:
        model.set_weights(weights)
    except ValueError as e:
        raise ModelFileError(f"{path}: weights do not fit the model ({e})") from None


# ------------------------------------------------------- Keras's JSON and suffixes
# Keras's own file formats (HDF5, the .keras zip of Keras 3) are not what
# fastnn writes; a fastnn archive under one of those names would look like a
# Keras file to every other tool and fail there, so those names are refused.
KERAS_SUFFIXES = (".h5", ".hdf5", ".keras")
SUFFIX = ".fastnn"


def check_suffix(path: Any, what: str = "model") -> None:
    """Refuse a Keras file name (.h5, .hdf5, .keras) with the supported one.

    Parameters
    ----------
    path : str or os.PathLike
        The name to check (other objects, such as open files, pass).
    what : str, default "model"
        What is being saved, as the error names it.

    Raises
    ------
    ValueError
        If ``path`` ends in a Keras suffix.
    """
    name = os.fspath(path) if isinstance(path, (str, os.PathLike)) else None
    if name is not None and name.lower().endswith(KERAS_SUFFIXES):
        suffix = next(s for s in KERAS_SUFFIXES if name.lower().endswith(s))
        raise ValueError(f"cannot save the {what} as {name!r}: fastnn does not write Keras's "
                         f"{suffix} format. It writes its own format (a zip of JSON and .npy "
                         f"arrays, readable by fastnn.load_model); name the file with the "
                         f"{SUFFIX!r} suffix, e.g. {name[:-len(suffix)] + SUFFIX!r}")


def model_to_json(model: Any, **dumps_kwargs: Any) -> str:
    """The architecture of a built model as a JSON string (no weights), as
    Keras's ``model.to_json()``; ``model_from_json`` rebuilds it.

    Parameters
    ----------
    model : Model
        A built model.
    **dumps_kwargs
        Passed to ``json.dumps``.

    Returns
    -------
    str
    """
    return json.dumps({"format": FORMAT, "version": VERSION, "model": model_config(model)},
                      default=float, **dumps_kwargs)


def model_from_json(json_string: str) -> Any:
    """A new model (fresh weights) from ``model.to_json()``'s string.

    Parameters
    ----------
    json_string : str
        What ``model.to_json()`` returned.

    Returns
    -------
    Model or Sequential
        Uncompiled, with newly initialized weights.

    Raises
    ------
    ValueError
        If the string is not fastnn's model JSON (Keras's own is not read).
    """
    try:
        config = json.loads(json_string)
    except (TypeError, ValueError) as e:
        raise ValueError(f"model_from_json needs the string model.to_json() returns; it is "
                         f"not JSON ({e})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT or "model" not in config:
        raise ValueError("model_from_json needs the string fastnn's model.to_json() returns "
                         f"(a JSON object with format {FORMAT!r} and a 'model' entry); "
                         "Keras's own JSON is not read")
    if config.get("version") != VERSION:
        raise ValueError(f"model JSON has version {config.get('version')!r}; this fastnn "
                         f"reads version {VERSION}")
    try:
        return _build_model(config["model"], "model JSON")
    except ModelFileError as e:
        raise ValueError(str(e)) from None
    except (KeyError, IndexError, TypeError, AttributeError) as e:
        raise ValueError(f"model JSON: malformed model description "
                         f"({type(e).__name__}: {e})") from None
