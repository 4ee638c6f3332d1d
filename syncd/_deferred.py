"""Modules imported where syncd never uses them, loaded on first use instead of at import.

redis-py (5.x) imports PyJWT at import time, for one token-auth class syncd never uses;
PyJWT imports ``cryptography.x509``: together ≈ 11 MB of RSS after importing what
``syncd sync`` and the worker use, ≈ 2 MB of a ``syncd sync`` run's peak (much of the
import-time garbage is reused later; BENCHMARKS.md section 12c).

:func:`defer` puts a stand-in in ``sys.modules``: ``import jwt`` then binds the stand-in
at once, and the first attribute read from it imports the real module (which replaces
the stand-in in ``sys.modules``), so code that does use the module still works.
(``importlib.util.LazyLoader`` does not do here: the ``import`` statement itself reads
the module's ``__spec__``, which loads a lazy module at once.)
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import Any

DEFERRED = ("jwt",)


class _Deferred(types.ModuleType):
    """Stands for a module not imported yet; any attribute it lacks imports the module."""

    def __getattr__(self, attr: str) -> Any:
        name = self.__name__
        if sys.modules.get(name) is self:
            del sys.modules[name]
        real = sys.modules.get(name) or importlib.import_module(name)
        self.__dict__.update(real.__dict__)
        return getattr(real, attr)


def defer(name: str) -> None:
    """Import ``name`` on its first use; nothing if it is imported already or not installed."""
    if name in sys.modules or importlib.util.find_spec(name) is None:
        return
    sys.modules[name] = _Deferred(name)


def defer_all() -> None:
    """:func:`defer` every module of :data:`DEFERRED`."""
    for name in DEFERRED:
        defer(name)
