"""The command line: every command's --help, --version, the program name as
invoked, one-line errors for missing data in every command (in a real
subprocess: no traceback), --limit, ``datasets list/fetch`` against a loopback
server, the demo end to end, and the MNIST commands on a small slice of the
real data (skipped without it)."""
import gzip
import hashlib
import os
import re
import socket
import struct
import subprocess
import sys

import numpy
import pytest

import fastnn
from fastnn.__main__ import _prog, _version, build_parser, main
from fastnn.datasets import download as dl
from fastnn.datasets import mnist as mnist_module
from fastnn.datasets._loopback import LoopbackServer
from fastnn.datasets.mnist import default_data_dir

HAVE_MNIST = os.path.exists(os.path.join(default_data_dir("mnist"), "t10k-labels-idx1-ubyte.gz"))
needs_mnist = pytest.mark.skipif(not HAVE_MNIST, reason=(
    f"MNIST not found in {default_data_dir('mnist')}; fetch it with "
    "`bash ../shared/data/fetch.sh` (or set FASTNN_DATA)"))


def _commands():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return sorted(sub.choices)


@pytest.mark.parametrize("command", [None] + _commands())
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"] if command is None else [command, "--help"])
    assert exit_info.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_unknown_command_fails_clearly(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["trian"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_demo_runs_on_embedded_data(capsys):
    assert main(["demo", "--epochs", "5", "--verbose", "0"]) == 0
    out = capsys.readouterr().out
    accuracy = float(out.split("test accuracy")[1].split()[0])
    assert accuracy > 0.85
    assert "SYNTHETIC ratings" in out
    rmse = float(out.split("test RMSE")[1].split()[0])
    baseline = float(out.split("predicting the mean rating: RMSE")[1].split(")")[0])
    assert rmse < baseline  # AutoRec beats the mean rating
    line = out.split("top 5 items outside its training ratings ")[1].split("\n")[0]
    items = [int(i) for i in line.split("]")[0].strip("[").split(",")]
    assert len(set(items)) == 5
    rated = [float(p) for p in line.split("predicted ratings ")[1].split(" (")[0].split(", ")]
    assert len(rated) == 5 and all(1 <= p <= 5 for p in rated)
    convnet = float(out.split("convnet: test loss")[1].split("test accuracy")[1].split()[0])
    assert convnet > 0.85


def test_demo_skips_its_parts(capsys):
    assert main(["demo", "--epochs", "1", "--verbose", "0", "--skip-cnn",
                 "--skip-autorec"]) == 0
    out = capsys.readouterr().out
    assert out.count("test accuracy") == 1 and "convnet" not in out and "RMSE" not in out


@needs_mnist
def test_mnist_command_on_a_slice(capsys, tmp_path):
    path = tmp_path / "mlp.fastnn"
    assert main(["mnist", "--epochs", "3", "--limit", "3000", "--verbose", "0",
                 "--save", str(path)]) == 0
    out = capsys.readouterr().out
    assert float(out.split("test accuracy")[1].split()[0]) > 0.8
    assert path.exists()


@needs_mnist
def test_autoencoder_command_on_a_slice(capsys):
    assert main(["autoencoder", "--kind", "dense", "--epochs", "3", "--limit", "2000",
                 "--verbose", "0"]) == 0
    out = capsys.readouterr().out
    bce = float(out.split("binary cross-entropy")[1].split(",")[0])
    mse = float(out.split("MSE")[1].split()[0])
    # Measured 0.387 (MSE 0.096) after 24 steps; predicting 0.5 everywhere gives
    # BCE 0.693 and MSE 0.19 on MNIST, so a model that learned nothing fails.
    assert 0 < bce < 0.5 and 0 < mse < 0.15


def test_missing_data_dir_names_the_file(tmp_path, capsys):
    with pytest.raises(SystemExit, match=r"^python -m fastnn mnist: error: MNIST file not "
                                         r"found: .*train-images-idx3-ubyte.gz"):
        main(["mnist", "--data", str(tmp_path), "--epochs", "1"])


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"fastnn {_version()}\n"
    assert _version() == fastnn.__version__


def test_pyproject_and_package_agree_on_the_version():
    pyproject = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                             "pyproject.toml")
    if not os.path.exists(pyproject):
        pytest.skip("pyproject.toml not beside the tests (installed copy)")
    with open(pyproject, encoding="utf-8") as f:
        assert f'version = "{fastnn.__version__}"' in f.read()


def test_program_name_is_as_invoked(capsys):
    assert _prog("/usr/local/bin/fastnn") == "fastnn"
    assert _prog("C:\\Python\\Scripts\\fastnn.exe".replace("\\", "/")) == "fastnn"
    assert _prog("/src/fastnn/__main__.py") == "python -m fastnn"
    with pytest.raises(SystemExit):
        build_parser("fastnn").parse_args(["mnist", "--help"])
    assert capsys.readouterr().out.startswith("usage: fastnn mnist ")


def _closed_port_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.mark.parametrize("args", [
    ["mnist", "--data", "{missing}"],
    ["mnist", "--kind", "fashion", "--data", "{missing}"],
    ["autoencoder", "--data", "{missing}"],
    ["cnn", "--data", "{missing}"],
    ["cnn", "--kind", "fashion", "--data", "{missing}"],
    ["autorec", "--data", "{missing}/u.data"],
    ["mnist"],                                    # empty cache, no network: download fails
    ["autorec", "--data", "ml-100k"],
    ["datasets", "fetch", "ml-1m"],
])
def test_missing_data_is_one_line_not_a_traceback(tmp_path, args):
    missing = str(tmp_path / "nonexistent")
    env = dict(os.environ, FASTNN_DATA=str(tmp_path / "cache"),
               FASTNN_DATA_MIRROR=_closed_port_url(),
               PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(fastnn.__file__))))
    cmd = [sys.executable, "-m", "fastnn"] + [a.format(missing=missing) for a in args]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120,
                          cwd=str(tmp_path))
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [l for l in proc.stderr.splitlines() if l.strip() and not l.startswith("Downloading")]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"python -m fastnn {args[0]}: error: ")
    assert ("nonexistent" in lines[0]) or ("cannot download" in lines[0] and
                                           str(tmp_path / "cache") in lines[0])


def _idx_gz(array):
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I",
                                                                   *array.shape)
    return gzip.compress(header + array.astype(">u1").tobytes(), mtime=0)


def _fixture_mnist(n_train=30, n_test=9, seed=0):
    """{file name: gzipped IDX bytes} of a tiny random MNIST-shaped set."""
    rng = numpy.random.default_rng(seed)
    files = {}
    for split, n in (("train", n_train), ("test", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=numpy.uint8)
        labels = rng.integers(0, 10, size=n, dtype=numpy.uint8)
        for name, array in zip(mnist_module._FILES[split], (images, labels)):
            files[name] = _idx_gz(array)
    return files


def _write_fixture_mnist(folder, **kw):
    os.makedirs(folder, exist_ok=True)
    for name, body in _fixture_mnist(**kw).items():
        with open(os.path.join(folder, name), "wb") as f:
            f.write(body)


def test_limit_cuts_only_the_training_images(tmp_path, capsys):
    _write_fixture_mnist(tmp_path)
    assert main(["mnist", "--data", str(tmp_path), "--limit", "10", "--epochs", "1",
                 "--hidden", "8", "--verbose", "0"]) == 0
    assert "mnist: 10 training and 9 test images" in capsys.readouterr().out
    assert main(["autoencoder", "--data", str(tmp_path), "--limit", "12", "--epochs", "1",
                 "--code", "4", "--verbose", "0"]) == 0
    assert "mnist: 12 training and 9 test images" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["mnist", "--data", str(tmp_path), "--limit", "0"])
    assert "must be an integer >= 1" in capsys.readouterr().err


def test_datasets_list_and_fetch(tmp_path, monkeypatch, capsys):
    root = tmp_path / "cache"
    assert main(["datasets", "list", "--data", str(root)]) == 0
    out = capsys.readouterr().out
    for name in ("mnist", "fashion-mnist", "ml-100k", "ml-1m", "ml-10m", "ml-latest-small"):
        assert f"  {name} " in out
    assert "cached " not in out.replace("not cached", "")
    assert "https://files.grouplens.org/datasets/movielens/ml-1m.zip" in out

    files = _fixture_mnist()
    monkeypatch.setitem(mnist_module._CHECKSUMS, "mnist", {
        name: (len(body), hashlib.sha256(body).hexdigest()) for name, body in files.items()})
    with LoopbackServer() as server:
        for name, body in files.items():
            server.add(f"/mnist/{name}", body)
        monkeypatch.setenv(dl.MIRROR_ENV, server.url)
        assert main(["datasets", "fetch", "mnist", "--data", str(root), "--verbose", "0"]) == 0
        assert capsys.readouterr().out == f"mnist: {root / 'mnist'}\n"
        assert len(server.hits) == 4
        assert main(["datasets", "fetch", "mnist", "--data", str(root)]) == 0   # cached
        assert len(server.hits) == 4
    for name, body in files.items():
        assert (root / "mnist" / name).read_bytes() == body
    capsys.readouterr()
    assert main(["datasets", "list", "--data", str(root)]) == 0
    line = next(l for l in capsys.readouterr().out.splitlines() if "  mnist " in l)
    assert " cached " in line and str(root / "mnist") in line

    with pytest.raises(SystemExit) as exit_info:
        main(["datasets", "fetch", "imagenet"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_autorec_takes_a_movielens_name(tmp_path, monkeypatch, capsys):
    from fastnn.recsys import synthetic_ratings
    r = synthetic_ratings(30, 20, density=0.3, seed=0)
    u, i, v = r.to_triples()
    (tmp_path / "ml-100k").mkdir()
    (tmp_path / "ml-100k" / "u.data").write_text("".join(
        f"{a + 1}\t{b + 1}\t{int(c)}\t{881250949 + n}\n"
        for n, (a, b, c) in enumerate(zip(u, i, v))))
    monkeypatch.setenv("FASTNN_DATA", str(tmp_path))
    monkeypatch.setenv(dl.MIRROR_ENV, _closed_port_url())
    monkeypatch.chdir(tmp_path / "ml-100k")       # no ./ml-100k here: the name is meant
    assert main(["autorec", "--data", "ml-100k", "--json", "--hidden", "4", "--lam", "1",
                 "--epochs", "2", "--patience", "1", "--seeds", "0"]) == 0
    import json
    assert json.loads(capsys.readouterr().out)["protocol"]["ratings"] == r.nnz


@pytest.mark.parametrize("kind", ["mnist", "fashion", "residual", "autoencoder"])
def test_cnn_kinds_print_only_their_result_at_verbose_0(kind, tmp_path, capsys):
    _write_fixture_mnist(tmp_path / "data")
    plot = tmp_path / "recon.png"
    assert main(["cnn", "--kind", kind, "--data", str(tmp_path / "data"), "--epochs", "1",
                 "--verbose", "0", "--plot", str(plot)]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) == 1, captured.out
    if kind == "autoencoder":
        assert re.fullmatch(r"test BCE \d\.\d{4}  test MSE \d\.\d{4}  \(noisy test digits "
                            r"against the originals; [\d.]+ s training, fastest epoch "
                            r"[\d.]+ s\)", lines[0]), lines[0]
        if _have_matplotlib():
            assert plot.stat().st_size > 0
    else:
        assert re.fullmatch(r"test accuracy [01]\.\d{4}  test loss \d+\.\d{4}  \([\d.]+ s "
                            r"training, fastest epoch [\d.]+ s\)", lines[0]), lines[0]
        assert not plot.exists()


def _have_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def test_cnn_verbose_header_limit_and_save(tmp_path, capsys):
    _write_fixture_mnist(tmp_path / "data")
    path = tmp_path / "cnn.fastnn"
    assert main(["cnn", "--data", str(tmp_path / "data"), "--limit", "20", "--epochs", "2",
                 "--verbose", "2", "--save", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("mnist: 20 training and 9 test images; mnist_convnet, Adam, "
                          "batch 128, 2 epochs\n")
    assert "Epoch 2/2" in out and f"saved the model to {path}" in out
    assert out.splitlines()[-1].startswith("test accuracy ")
    model = fastnn.load_model(str(path))
    assert [l.__class__.__name__ for l in model.layers] == [
        "Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Flatten", "Dropout", "Dense"]
    x = numpy.random.default_rng(0).random((3, 28, 28, 1), dtype=numpy.float32)
    assert model.predict(x).shape == (3, 10)


def test_cnn_options_reach_the_network(tmp_path, capsys, monkeypatch):
    # The flags become the builder's keyword arguments (over the kind's
    # defaults), and the trained network has them.
    from fastnn import recipes
    _write_fixture_mnist(tmp_path / "data")
    seen = {}
    real = recipes.train_cnn

    def spy(data, **kwargs):
        seen.update(kwargs)
        return real(data, **kwargs)
    monkeypatch.setattr(recipes, "train_cnn", spy)
    path = tmp_path / "res.fastnn"
    assert main(["cnn", "--kind", "residual", "--data", str(tmp_path / "data"), "--epochs", "1",
                 "--verbose", "0", "--dropout", "0.25", "--translation", "0.08",
                 "--label-smoothing", "0.1", "--weight-decay", "0.01",
                 "--save", str(path)]) == 0
    assert {k: seen[k] for k in ("dropout", "translation", "label_smoothing",
                                 "weight_decay")} == {
        "dropout": 0.25, "translation": 0.08, "label_smoothing": 0.1, "weight_decay": 0.01}
    model = fastnn.load_model(str(path))
    kinds = {l.__class__.__name__: l for l in model.layers}
    assert kinds["Dropout"].rate == 0.25
    assert kinds["RandomTranslation"].height_factor == 0.08
    assert model.loss.label_smoothing == 0.1
    assert "test accuracy" in capsys.readouterr().out
    # Not given: the kind's defaults (fashion shifts by 0.04).
    seen.clear()
    monkeypatch.setattr(recipes, "train_cnn", lambda data, **kw: seen.update(kw) or
                        (_ for _ in ()).throw(SystemExit(0)))
    with pytest.raises(SystemExit):
        main(["cnn", "--kind", "fashion", "--data", str(tmp_path / "data"), "--epochs", "1",
              "--verbose", "0"])
    assert not {"dropout", "translation", "label_smoothing", "weight_decay"} & set(seen)


@pytest.mark.parametrize("args,message", [
    (["--kind", "mnist", "--translation", "0.1"],
     "--translation applies to --kind fashion or residual, not mnist"),
    (["--kind", "autoencoder", "--dropout", "0.1"],
     "--dropout applies to --kind mnist or fashion or residual, not autoencoder"),
    (["--kind", "mnist", "--weight-decay", "0.1"],
     "--weight-decay applies to --kind fashion or residual, not mnist")])
def test_cnn_options_of_another_kind_are_refused_before_the_data(args, message, tmp_path,
                                                                 capsys):
    with pytest.raises(SystemExit) as e:
        main(["cnn", "--data", str(tmp_path / "nothing-here")] + args)
    assert str(e.value).endswith(f"error: {message}")


def test_cnn_rejects_bad_arguments(capsys):
    for args in (["--kind", "vgg"], ["--epochs", "0"], ["--batch-size", "-1"],
                 ["--dropout", "1"], ["--translation", "1.5"], ["--label-smoothing", "nan"],
                 ["--weight-decay", "-0.1"], ["--dropout", "half"]):
        with pytest.raises(SystemExit) as exit_info:
            main(["cnn"] + args)
        assert exit_info.value.code == 2
        assert "error:" in capsys.readouterr().err


@needs_mnist
def test_cnn_command_on_a_slice(capsys):
    assert main(["cnn", "--epochs", "3", "--limit", "3000", "--verbose", "0"]) == 0
    out = capsys.readouterr().out
    assert float(out.split("test accuracy")[1].split()[0]) > 0.8


def test_cnn_epochs_match_the_recipes_defaults():
    from fastnn import recipes
    from fastnn.__main__ import CNN_EPOCHS
    assert CNN_EPOCHS == {kind: epochs for kind, (epochs, _) in recipes.CNN_DEFAULTS.items()}
