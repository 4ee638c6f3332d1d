"""The few words an error line gives for a failed connection (HTTP and Redis clients).

Shared by the Redis guard (:mod:`syncd.store.guard`) and the HTTP adapters; kept out of
:mod:`syncd.errors` (the leaf of the layers) because it inspects the operating system's
socket errors.
"""

from __future__ import annotations

import os
import re
import socket

_OBJECT_REPR = re.compile(r"<[\w.]+ object at 0x[0-9a-f]+>:?\s*")


def plain_reason(exc: BaseException) -> str:
    """Why a connection failed, in a few words, for a one-line error message.

    HTTP and Redis libraries wrap the operating system's error several times over
    (niquests' ``ConnectionError`` holds urllib3's ``MaxRetryError`` holding a
    ``NewConnectionError`` whose cause is ``ConnectionRefusedError``), and their texts
    repeat one another with object reprs. This finds the innermost OS-level error of the
    chain and names it: ``connection refused``, ``timed out``, ``name not resolved``;
    otherwise ``Type: text`` of ``exc`` itself, with object reprs removed.
    """
    innermost: BaseException | None = None
    for link in _chain(exc):
        if isinstance(link, OSError | TimeoutError):
            innermost = link
    if isinstance(innermost, TimeoutError):
        return "timed out"
    if isinstance(innermost, socket.gaierror):
        return f"name not resolved ({innermost.strerror or innermost})"
    if isinstance(innermost, OSError) and innermost.errno is not None:
        return os.strerror(innermost.errno).lower()
    text = _OBJECT_REPR.sub("", str(exc)).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it wraps: causes, contexts, and exceptions held as args or reason."""
    seen: list[BaseException] = []
    todo: list[BaseException] = [exc]
    while todo and len(seen) < 20:
        link = todo.pop(0)  # breadth first: the last OSError found is the innermost
        if any(link is s for s in seen):
            continue
        seen.append(link)
        held = [getattr(link, "reason", None), *link.args[:1], link.__context__, link.__cause__]
        todo.extend(h for h in held if isinstance(h, BaseException))
    return seen
