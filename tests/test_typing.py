"""mypy passes on the package (issue 20, item 4: a typed API, checked in CI).

Runs ``python -m mypy`` on the fastnn package that the tests import (found from
``fastnn.__file__``, so an installed copy is checked the same way as a
checkout) with the ``[tool.mypy]`` settings of the repository's pyproject.toml.
"""
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import fastnn

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


# Skipped only where mypy is not installed: it is in the ``test`` extra, so the
# README's ``pip install ".[test]" && pytest`` (and CI) runs this check.
@pytest.mark.skipif(importlib.util.find_spec("mypy") is None,
                    reason="mypy is not installed (it is in the test extra: "
                           "pip install '.[test]')")
def test_mypy_passes_on_the_package(tmp_path):
    # A copy of the package in a folder of its own: checked in place inside
    # site-packages (an installed copy, as in CI), mypy would take the other
    # top-level modules there (mypy_extensions.py) for sources of ours.
    package = tmp_path / "src" / "fastnn"
    shutil.copytree(Path(fastnn.__file__).resolve().parent, package,
                    ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.c"))
    env = {k: v for k, v in os.environ.items() if k not in ("MYPYPATH", "PYTHONPATH")}
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(PYPROJECT),
         "--cache-dir", str(tmp_path / "mypy_cache"), str(package)],
        cwd=package.parent, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"mypy found problems:\n{result.stdout}{result.stderr}"
