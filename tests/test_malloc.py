"""fastnn._malloc: glibc's thresholds raised once at import (so the recurrent
layers' sequence-sized arrays are not faulted in again on every call), unless
the user opted out or set glibc's own tunables."""
import platform

import pytest

import fastnn
from fastnn import _malloc

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")
def test_applied_at_import_on_glibc(monkeypatch):
    assert fastnn._malloc.applied or any(
        k in __import__("os").environ for k in ("FASTNN_MALLOPT", "GLIBC_TUNABLES",
                                                 "MALLOC_MMAP_THRESHOLD_",
                                                 "MALLOC_TRIM_THRESHOLD_"))
    assert _malloc.configure({}) is True


@pytest.mark.parametrize("env", [{"FASTNN_MALLOPT": "0"},
                                 {"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=1"},
                                 {"MALLOC_MMAP_THRESHOLD_": "4096"},
                                 {"MALLOC_TRIM_THRESHOLD_": "4096"}])
def test_left_alone_when_the_user_chose(env, monkeypatch):
    monkeypatch.setattr(_malloc, "applied", "untouched")
    assert _malloc.configure(env) is False
    assert _malloc.applied == "untouched"   # mallopt was not called


def test_nothing_off_linux(monkeypatch):
    monkeypatch.setattr(platform, "system", lambda: "Darwin")
    assert _malloc.configure({}) is False
