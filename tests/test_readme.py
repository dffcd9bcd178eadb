"""The README stays true: its Python example runs and learns, and its quick
start holds exactly two commands."""
import os
import re

import pytest

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")
pytestmark = pytest.mark.skipif(not os.path.exists(README),
                                reason="README.md not beside the tests (installed copy)")


def _text():
    with open(README, encoding="utf-8") as f:
        return f.read()


def test_quick_start_has_two_commands():
    section = _text().split("## Quick start", 1)[1]
    block = re.search(r"```[a-z]*\n(.*?)```", section, re.S).group(1)
    lines = [l for l in block.splitlines() if l.strip()]
    assert len(lines) == 2
    assert "fastnn demo" in lines[0] and "pytest" in lines[1]


def test_keras_example_runs(tmp_path, monkeypatch, capsys):
    code = re.search(r"## A Keras-style example\n\n```python\n(.*?)```", _text(), re.S).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README example", "exec"), {})
    printed = capsys.readouterr().out
    assert float(printed.split("'accuracy': ")[1].split("}")[0]) > 0.9
    assert (tmp_path / "model.fastnn").exists()


def test_recommendation_example_runs_and_learns(tmp_path, monkeypatch, capsys):
    import numpy
    code = re.search(r"## A recommendation example\n\n.*?```python\n(.*?)```", _text(),
                     re.S).group(1)
    monkeypatch.chdir(tmp_path)
    scope = {}
    exec(compile(code, "README recommendation example", "exec"), scope)
    rmse = float(capsys.readouterr().out.split("test RMSE ")[1].split(",")[0])
    # better than predicting the training mean for every test rating
    baseline = numpy.sqrt(numpy.mean((scope["test"].matrix.data
                                      - scope["train"].matrix.data.mean()) ** 2))
    assert rmse < 0.9 * baseline
    assert (tmp_path / "autorec.fastnn").exists()
    numpy.testing.assert_array_equal(scope["same"].recommend(0, k=5)[0], scope["items"])
