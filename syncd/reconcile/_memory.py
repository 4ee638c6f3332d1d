"""Give the C heap's free pages back to the system after a full listing (glibc only).

Parsing a CalDAV listing of 10,000 members builds libxml2 trees (C memory, outside
Python's allocator); once they are freed, glibc keeps those pages resident in the middle
of its heap, and the Python objects allocated next (the decoded pairs) come from new
pymalloc arenas elsewhere: the freed pages never serve them and still count in the RSS
(≈ 17 MB at 10,000 events, BENCHMARKS.md section 12). ``malloc_trim(0)`` releases them.
Where libc has no ``malloc_trim`` (musl, macOS) nothing is done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable
from functools import cache

import structlog

log = structlog.get_logger(__name__)


@cache
def _trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError, TypeError):
        return None
    return trim


def release_freed() -> bool:
    """Return the C heap's free pages to the system; False where that is not possible."""
    trim = _trim()
    if trim is None:
        log.debug("malloc_trim_unavailable")
        return False
    trim(0)
    return True
