"""The Sphinx site (docs/): it builds with warnings as errors, and every
``.. code-block:: python`` of the user guide runs, page by page, in order, in
one namespace per page (as a reader would paste them). Blocks shown without a
language (``::``, those that download data) are not run. Skipped, with a
reason, when docs/ is not beside the tests (an installed copy)."""
import linecache
import os
import re
import subprocess
import sys
import textwrap

import pytest

DOCS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs")
pytestmark = pytest.mark.skipif(not os.path.isdir(DOCS),
                                reason="docs/ not beside the tests (installed copy)")
GUIDE = ["index", "quickstart", "keras_users", "backends", "cnn", "rnn", "recommendation"]


def python_blocks(text):
    """The ``.. code-block:: python`` blocks of reStructuredText ``text``,
    dedented, in order, each as ``(line number, source)``."""
    lines = text.splitlines()
    blocks, i = [], 0
    while i < len(lines):
        m = re.match(r"^(\s*)\.\. code-block::\s*python\s*$", lines[i])
        i += 1
        if not m:
            continue
        indent = len(m.group(1))
        while i < len(lines) and re.match(r"^\s+:\w[\w-]*:", lines[i]):
            i += 1  # the directive's options
        start, body = i, []
        while i < len(lines) and (not lines[i].strip()
                                  or len(lines[i]) - len(lines[i].lstrip()) > indent):
            body.append(lines[i])
            i += 1
        source = textwrap.dedent("\n".join(body)).strip("\n")
        if source:
            blocks.append((start + 1, source))
    return blocks


def test_python_blocks_finds_the_blocks_and_only_them():
    text = ("Title\n=====\n\n.. code-block:: python\n   :caption: x\n\n    a = 1\n\n"
            "    b = a + 1\nText after.\n\n::\n\n    not_run()\n\n"
            ".. code-block:: text\n\n    neither()\n\n  .. code-block:: python\n\n"
            "      c = 3\n")
    assert python_blocks(text) == [(6, "a = 1\n\nb = a + 1"), (21, "c = 3")]


def test_every_guide_page_is_in_the_toctree_and_has_examples():
    pages = sorted(f[:-4] for f in os.listdir(DOCS) if f.endswith(".rst"))
    assert pages == sorted(GUIDE)
    for page in GUIDE[1:]:
        with open(os.path.join(DOCS, page + ".rst")) as f:
            assert python_blocks(f.read()), f"docs/{page}.rst has no python example"


@pytest.mark.parametrize("page", GUIDE[1:])
def test_guide_examples_run(page, tmp_path, monkeypatch, capsys):
    pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)  # the examples save files
    monkeypatch.setenv("FASTNN_DATA", str(tmp_path / "no-data"))  # never a download
    with open(os.path.join(DOCS, page + ".rst")) as f:
        blocks = python_blocks(f.read())
    namespace = {"__name__": f"docs_{page}"}
    for line, source in blocks:
        name = f"docs/{page}.rst, block at line {line}"
        linecache.cache[name] = (len(source), None, source.splitlines(True), name)
        code = compile(source, name, "exec")
        exec(code, namespace)  # a failure's traceback names the page and line
    out = capsys.readouterr().out
    if page in ("quickstart", "cnn"):
        assert re.search(r"test accuracy 0\.\d{4}", out), out


def test_the_site_builds_with_warnings_as_errors(tmp_path):
    pytest.importorskip("sphinx", reason="sphinx is in the test extra: pip install '.[test]'")
    # Run from tmp_path: a checkout's uncompiled sources must not shadow the
    # fastnn under test (the installed one, or PYTHONPATH's in-place build).
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", DOCS,
         str(tmp_path / "html")], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    for page in GUIDE + ["api/index", "api/layers", "api/recsys"]:
        assert (tmp_path / "html" / (page + ".html")).is_file()
    with open(tmp_path / "html" / "api" / "layers.html") as f:
        assert "fastnn.layers.Dense" in f.read()
