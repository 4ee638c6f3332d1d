"""Waiting for something to become true, with a deadline and a readable failure."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from syncd_lab.demo._errors import DemoFailed

T = TypeVar("T")


async def wait_until(
    check: Callable[[], Awaitable[T | None]],
    *,
    limit: float,
    what: str,
    interval: float = 0.05,
    alive: Callable[[], None] | None = None,
) -> T:
    """The first truthy result of ``check()``, polled every ``interval`` seconds.

    ``alive`` is called between tries and may raise (a child process died) to fail fast.
    Raises :class:`DemoFailed` naming ``what`` when ``limit`` seconds pass first.
    """
    deadline = time.monotonic() + limit
    while True:
        result = await check()
        if result:
            return result
        if alive is not None:
            alive()
        if time.monotonic() >= deadline:
            raise DemoFailed(f"timed out after {limit:g} s waiting for {what}")
        await asyncio.sleep(interval)
