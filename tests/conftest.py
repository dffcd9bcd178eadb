"""Shared fixtures: every test that takes ``ops`` runs on each CPU backend;
one that takes ``model_ops`` also on the strict backend (fastnn/backend/strict.py),
whose arrays refuse implicit host conversion: model-level tests, which hand
in and get back host NumPy, must pass there unchanged."""
import sys
from pathlib import Path

import numpy
import pytest

import fastnn
from fastnn.backend import use_backend

# Hypothesis profiles (pytest --hypothesis-profile=NAME). "default" is
# hypothesis's own (100 examples where a test does not set its own; the kernel
# fuzzer, tests/fuzz, runs 200 per kernel). "ci": the same, derandomized so a CI
# failure reproduces. "long": 10,000 examples per kernel fuzz test, the
# campaign to run before a release or after changing a kernel (about 20-40
# minutes on 2 cores: tests/README.md).
from hypothesis import settings as _hyp_settings

_hyp_settings.register_profile("ci", derandomize=True, print_blob=True)
_hyp_settings.register_profile("long", max_examples=10_000, deadline=None, print_blob=True)

# The test files import the layers they share (_recurrence.py) by name: this
# folder goes on sys.path, never the checkout root (fastnn stays the installed one).
sys.path.insert(0, str(Path(__file__).resolve().parent))

CPU_BACKENDS = ["numpy", "reference"]


@pytest.fixture(params=CPU_BACKENDS)
def ops(request):
    with use_backend(request.param) as backend:
        yield backend


MODEL_BACKENDS = CPU_BACKENDS + ["strict"]


@pytest.fixture(params=MODEL_BACKENDS)
def model_ops(request):
    with use_backend(request.param) as backend:
        yield backend


@pytest.fixture
def rng():
    return numpy.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _seed():
    fastnn.set_seed(0)
    yield


# ------------------------------------------------------------- skips in CI
# A test that skips tests nothing. Locally a skip (no MNIST fetched, no
# matplotlib) is reported and fine; with FASTNN_NO_SKIPS=1 (set by .ci/run)
# every skip fails the run unless its reason matches FASTNN_ALLOWED_SKIPS (a
# regular expression; by default only the GPU's absence and the speed guards'
# skip when the machine is overloaded), so a data fetch that
# silently failed cannot turn the real-data tests into green skips.
_DEFAULT_ALLOWED_SKIPS = r"(?i)\b(gpu|cupy|cuda)\b|machine overloaded"


def _unexpected_skips(terminalreporter):
    import os
    import re
    if os.environ.get("FASTNN_NO_SKIPS") != "1":
        return []
    allowed = re.compile(os.environ.get("FASTNN_ALLOWED_SKIPS") or _DEFAULT_ALLOWED_SKIPS)
    bad = []
    for report in terminalreporter.stats.get("skipped", []):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        if not allowed.search(reason):
            bad.append(f"{report.nodeid}: {reason}")
    return bad


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    bad = _unexpected_skips(terminalreporter)
    if bad:
        terminalreporter.section("skips not allowed in this run (FASTNN_NO_SKIPS=1)", red=True)
        for line in bad:
            terminalreporter.line(line)


def pytest_sessionfinish(session, exitstatus):
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and exitstatus == 0 and _unexpected_skips(reporter):
        session.exitstatus = 1
