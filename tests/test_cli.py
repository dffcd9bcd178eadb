"""The command line: every command's --help, the demo end to end, and the
MNIST commands on a small slice of the real data (skipped without it)."""
import os

import pytest

from fastnn.__main__ import build_parser, main
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
    assert main(["autoencoder", "--kind", "sparse", "--epochs", "1", "--limit", "2000",
                 "--verbose", "0"]) == 0
    assert "binary cross-entropy" in capsys.readouterr().out


def test_missing_data_dir_names_the_file(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte.gz"):
        main(["mnist", "--data", str(tmp_path), "--epochs", "1"])
