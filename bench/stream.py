"""Benchmark — DingTalk → CalDAV latency over Stream mode against the HTTP callback path.

Two rigs, one after the other in the same run (same machine, same Redis/Radicale/sandbox
code): the HTTP path (the sandbox pushes to the real webhook; an arq worker) and the Stream
path (a tenant with ``delivery: stream`` and no webhook: the worker process's delivery
service holds the Stream connection, :mod:`syncd.delivery`). The binding's
``poll_interval`` is one hour, so only the event path brings a change across. For each,
``changes`` creates and as many edits are made through the sandbox API; the clock runs from
just before the API call until a GET on Radicale shows the change (as in ``latency``,
whose pacing and measuring this reuses).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

from bench._report import table
from bench._rig import Rig, open_rig
from bench._stats import ms
from bench.latency import _until, _warm_up, dingtalk_to_caldav, running_syncd
from syncd.delivery.service import run_delivery
from syncd.worker.settings import create_worker

DEFAULTS: dict[str, Any] = {"changes": 20}
POLL_INTERVAL_S = 3600.0


@asynccontextmanager
async def running_stream(rig: Rig) -> AsyncIterator[None]:
    """What ``syncd worker`` runs for a stream tenant: an arq worker and the delivery service."""
    stop = asyncio.Event()
    worker = create_worker(rig.config)
    tasks = [
        asyncio.create_task(worker.async_run()),
        asyncio.create_task(run_delivery(rig.config, stop)),
    ]
    try:

        async def connected() -> bool:
            return bool(rig.sandbox.sandbox.stream.open_conns(rig.sandbox.app_key))

        await _until(connected, "the Stream connection")
        yield
    finally:
        stop.set()
        await tasks[1]
        tasks[0].cancel()
        with suppress(asyncio.CancelledError):
            await tasks[0]
        await worker.close()


async def _measure(rig: Rig, changes: int, rng: random.Random) -> dict[str, Any]:
    await _warm_up(rig)
    result = await dingtalk_to_caldav(rig, changes, rng)
    return dict(result)


async def run(opts: dict[str, Any]) -> dict[str, Any]:
    """HTTP callbacks first, then Stream, each over ``changes`` creates and edits."""
    changes = opts["changes"]
    out: dict[str, Any] = {"changes": changes, "poll_interval_s": POLL_INTERVAL_S}
    async with (
        open_rig(poll_interval=POLL_INTERVAL_S) as rig,
        running_syncd(rig, None),
    ):
        out["http"] = await _measure(rig, changes, random.Random(20261203))
    async with (
        open_rig(poll_interval=POLL_INTERVAL_S, delivery="stream") as rig,
        running_stream(rig),
    ):
        out["stream"] = await _measure(rig, changes, random.Random(20261203))
        out["stream_counters"] = rig.sandbox.sandbox.stats()["stream"]
    return out


def render(result: dict[str, Any]) -> str:
    """Markdown table: median, p95, p99, max per path, and the Stream/HTTP ratio."""
    rows = []
    for path in ("http", "stream"):
        s = result[path]["all"]
        rows.append(
            [
                "HTTP callback → webhook" if path == "http" else "Stream connection",
                s["n"],
                ms(s["median"]),
                ms(s["p95"]),
                ms(s["p99"]),
                ms(s["max"]),
            ]
        )
    http, stream = result["http"]["all"], result["stream"]["all"]
    ratio = stream["median"] / http["median"] if http["median"] else 0.0
    return (
        table(["DingTalk → CalDAV path", "changes", "p50", "p95", "p99", "max"], rows)
        + f"\n\nStream p50 / HTTP p50 = {ratio:.2f} (poll_interval "
        f"{result['poll_interval_s']:g} s: every change came by its event)."
    )
