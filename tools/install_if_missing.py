"""Install this checkout of fastnn (``pip install .``) unless the same version
is already installed and its kernels import: the README's test command runs
this after installing the test dependencies, so after ``pip install .`` the
kernels are not compiled a second time, and on a fresh machine the command
still installs fastnn on its own.

Run it as ``python tools/install_if_missing.py`` from anywhere: Python puts
tools/ (not the checkout) first on ``sys.path``, so ``import fastnn`` finds
the installed package, never the uncompiled sources beside it.
"""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def checkout_version(root=ROOT):
    """The ``version`` of pyproject.toml's ``[project]`` table."""
    with open(os.path.join(root, "pyproject.toml"), encoding="utf-8") as f:
        text = f.read()
    project = text.split("[project]", 1)[1].split("\n[", 1)[0]
    return re.search(r'^version\s*=\s*"([^"]+)"', project, re.M).group(1)


def installed_version():
    """The version of the fastnn whose kernels import here, or None."""
    try:
        import fastnn
        import fastnn._C  # noqa: F401  (the compiled kernels, not only the sources)
    except ImportError:
        return None
    if os.path.dirname(os.path.dirname(os.path.abspath(fastnn.__file__))) == ROOT:
        return None  # this checkout itself (on PYTHONPATH): not an installed copy
    return fastnn.__version__


def main(root=ROOT):
    want, have = checkout_version(root), installed_version()
    if have == want:
        print(f"fastnn {have} is installed; not building it again")
        return 0
    print(f"fastnn {want}: installing this checkout (found {have or 'none'})", flush=True)
    return subprocess.call([sys.executable, "-m", "pip", "install", root])


if __name__ == "__main__":
    sys.exit(main())
