"""The README's quick start compiles fastnn once: its test command installs
the test dependencies as a dependency group (the same list as the ``test``
extra) and runs tools/install_if_missing.py, which installs the checkout only
when this version's kernels are not importable yet. Skipped, with a reason,
when tools/ is not beside the tests (an installed copy)."""
import importlib.util
import os
import re
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "tools", "install_if_missing.py")
pytestmark = pytest.mark.skipif(not os.path.exists(SCRIPT),
                                reason="tools/ not beside the tests (installed copy)")


def _script():
    spec = importlib.util.spec_from_file_location("install_if_missing", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _toml_list(text, table, key):
    body = text.split(f"[{table}]", 1)[1].split("\n[", 1)[0]
    value = re.search(rf"^{key}\s*=\s*\[(.*?)\]", body, re.S | re.M).group(1)
    return re.findall(r'"([^"]+)"', re.sub(r"#.*", "", value))


def test_the_test_group_is_the_test_extra():
    with open(os.path.join(ROOT, "pyproject.toml"), encoding="utf-8") as f:
        text = f.read()
    group = _toml_list(text, "dependency-groups", "test")
    extra = _toml_list(text, "project.optional-dependencies", "test")
    assert group == extra and "sphinx>=7" in group and "nbclient>=0.7" in group
    if sys.version_info >= (3, 11):
        import tomllib
        data = tomllib.loads(text)
        assert data["dependency-groups"]["test"] == data["project"]["optional-dependencies"]["test"]


def test_the_readme_test_command_installs_the_group_then_fastnn_if_missing():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        section = f.read().split("## Quick start", 1)[1]
    block = re.search(r"```[a-z]*\n(.*?)```", section, re.S).group(1)
    test_line = [l for l in block.splitlines() if l.strip()][1]
    assert "pip install --group test" in test_line and ".[test]" not in test_line
    assert test_line.index("tools/install_if_missing.py") < test_line.index("pytest")


def test_install_if_missing_builds_only_when_needed(monkeypatch, capsys):
    script = _script()
    assert script.checkout_version() == script.checkout_version(ROOT)
    with open(os.path.join(ROOT, "pyproject.toml"), encoding="utf-8") as f:
        assert f'version = "{script.checkout_version()}"' in f.read()
    calls = []
    monkeypatch.setattr(script.subprocess, "call", lambda cmd: calls.append(cmd) or 0)
    want = script.checkout_version()
    for have, builds in [(want, False), (None, True), ("0.0.1", True)]:
        calls.clear()
        monkeypatch.setattr(script, "installed_version", lambda: have)
        assert script.main() == 0
        assert bool(calls) == builds, (have, calls)
        if builds:
            assert calls[0] == [sys.executable, "-m", "pip", "install", ROOT]
    assert "not building it again" in capsys.readouterr().out


def test_a_checkout_on_the_path_is_not_an_installed_copy(monkeypatch):
    # Under PYTHONPATH=checkout (an in-place build) fastnn imports from ROOT:
    # that is not an installation, so the script reports none.
    import fastnn
    script = _script()
    from_checkout = os.path.dirname(os.path.dirname(os.path.abspath(fastnn.__file__))) == ROOT
    assert (script.installed_version() is None) == from_checkout
