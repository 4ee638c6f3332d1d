"""syncd.reconcile._memory: C heap pages freed by a parse go back to the system."""

from __future__ import annotations

import subprocess
import sys

import pytest

from syncd.reconcile import _memory

# In a fresh interpreter: an lxml tree of 300,000 elements (C memory), something small
# allocated after it (so the freed tree sits below the top of glibc's heap and is not
# trimmed by free() alone), the tree freed; RSS before and after release_freed().
_PROBE = """
from lxml import etree
from syncd.reconcile._memory import release_freed

def rss_mb():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20

tree = etree.fromstring(b"<r>" + b"<a><b>x</b></a>" * 150_000 + b"</r>")
keep = etree.fromstring(b"<k/>")
del tree
before = rss_mb()
print(release_freed(), before, rss_mb())
"""


def test_freed_parse_tree_pages_are_returned() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True, timeout=120
    )
    released, before, after = out.stdout.split()
    assert released == "True"
    assert float(before) - float(after) > 10  # the tree was ≈ 30 MB of C memory


def test_without_malloc_trim_nothing_is_done(monkeypatch: pytest.MonkeyPatch) -> None:
    """A C library without malloc_trim (musl, macOS): a no-op that says so."""

    class NoTrim:
        def __init__(self, name: str | None) -> None:
            pass

        def __getattr__(self, name: str) -> object:
            raise AttributeError(name)

    with monkeypatch.context() as patched:
        patched.setattr("ctypes.CDLL", NoTrim)
        _memory._trim.cache_clear()
        assert _memory.release_freed() is False
    _memory._trim.cache_clear()
    assert _memory.release_freed() is True
