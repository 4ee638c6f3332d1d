"""The benchmark rig: Radicale, Redis, the sandbox and a loaded syncd config on loopback.

Reuses the test fixtures' start functions (``start_caldav_server``, ``make_calendar``,
``start_redis``, ``start_sandbox``) and the spine's config writer, so the benchmarks run
exactly what the integration tests run. ``Rig.reconcile`` is one reconcile of binding
``acme/alice-work`` with a worker's shared resources (``syncd.worker.tasks.run_once``).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import structlog
from arq.connections import ArqRedis, create_pool

from syncd import queue
from syncd.config import Config, load_config
from syncd.reconcile import Report
from syncd.worker import tasks
from syncd.worker.context import WorkerContext
from tests.fixtures.caldav_servers import (
    CalDAVServer,
    CalendarHandle,
    http,
    make_calendar,
    start_caldav_server,
)
from tests.fixtures.redis_server import RedisServer, start_redis
from tests.fixtures.sandbox import (
    SandboxApi,
    SandboxHandle,
    default_seed,
    sandbox_token,
    start_sandbox,
)
from tests.fixtures.spine import REF, to_stream_delivery, write_config

log = structlog.get_logger(__name__)

USER = "u-alice"
SHANGHAI = ZoneInfo("Asia/Shanghai")


def first_slot() -> datetime:
    """Tomorrow 00:00 UTC: seeded events start here, one hour apart (inside every window)."""
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0, hour=0)
    return now + timedelta(days=1)


@dataclass
class Rig:
    """Every running part of one benchmark, and the moves benchmarks make."""

    dav: CalDAVServer
    redis: RedisServer
    sandbox: SandboxHandle
    calendar: CalendarHandle
    config: Config
    pool: ArqRedis
    ctx: WorkerContext
    api: SandboxApi
    root: Path

    async def reconcile(self, *, full: bool = False) -> Report:
        """One reconcile of ``acme/alice-work`` (what one worker job runs under its lock)."""
        return await tasks.run_once(self.ctx, REF, full=full)

    def dingtalk_requests(self) -> dict[str, int]:
        """Requests the sandbox has answered so far, per API operation."""
        return dict(self.sandbox.sandbox.stats()["requests"])

    def caldav_requests(self, prefix: str | None = None) -> dict[str, int]:
        """Requests Radicale logged so far under ``prefix`` (default: the calendar), per method."""
        self.calendar.settled_requests(timeout=1.0)  # Radicale logs after replying
        counts: dict[str, int] = {}
        for method, _ in self.dav.requests(prefix or self.calendar.path):
            counts[method] = counts.get(method, 0) + 1
        return counts

    def caldav_server_ms(self, prefix: str | None = None) -> int:
        """Milliseconds Radicale reports having spent answering requests under ``prefix``."""
        return server_ms(self.dav, prefix or self.calendar.path)

    async def request_reconcile(self, reason: str = "bench") -> None:
        """Queue a reconcile job as the webhook or the poll cron would."""
        await queue.request_reconcile(self.pool, REF, reason)


# Radicale: "[INFO] PROPFIND response status for '/p/' with depth '1' in 0.324 seconds ..."
_RESPONSE = re.compile(
    r"\[INFO\] [A-Z]+ response status for '(?P<path>[^']*)'[^\n]*? in (?P<s>[0-9.]+) seconds"
)


def server_ms(dav: CalDAVServer, prefix: str) -> int:
    """Sum of the response times Radicale logged for paths under ``prefix``, in ms."""
    text = dav.log_path.read_text(errors="replace")
    found = (m for m in _RESPONSE.finditer(text) if m.group("path").startswith(prefix))
    return round(sum(float(m.group("s")) for m in found) * 1000)


@asynccontextmanager
async def open_rig(
    *,
    poll_interval: float | None = None,
    dav: CalDAVServer | None = None,
    delivery: str = "http",
    qps: float | None = None,
    concurrency: int | None = None,
) -> AsyncIterator[Rig]:
    """Start Redis, Radicale (unless given), the sandbox; write and load the config.

    ``delivery: stream`` seeds the sandbox app and the tenant for Stream mode (no callback).
    ``qps`` (the app's ``dingtalk.qps``) and ``concurrency`` (the binding's) default to
    syncd's defaults.
    """
    root = Path(tempfile.mkdtemp(prefix="syncd-bench-"))
    redis = start_redis()
    own_dav = dav is None
    server = dav or start_caldav_server("radicale", authenticate=False)
    extra = {} if poll_interval is None else {"poll_interval": str(poll_interval)}
    if concurrency is not None:
        extra["concurrency"] = str(concurrency)
    try:
        seed = default_seed(delivery=delivery)
        async with start_sandbox(seed) as sandbox, aiohttp.ClientSession() as session:
            calendar = make_calendar(server)
            auth = (calendar.username, calendar.password)
            write_config(
                root / "config", sandbox, calendar.url, redis.url, auth=auth, qps=qps, **extra
            )
            if delivery == "stream":
                to_stream_delivery(root / "config")
            config = load_config(root / "config", {})
            pool = await create_pool(queue.redis_settings(redis.url))
            ctx = WorkerContext.open(config, pool)
            api = SandboxApi(sandbox, session, await sandbox_token(sandbox))
            try:
                yield Rig(server, redis, sandbox, calendar, config, pool, ctx, api, root)
            finally:
                await ctx.close()
                await pool.aclose()
    finally:
        redis.stop()
        if own_dav:
            server.stop()
            shutil.rmtree(server.workdir, ignore_errors=True)
        shutil.rmtree(redis.workdir, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)


# --- seeding ------------------------------------------------------------------------------


def _stamp(at: datetime) -> str:
    return at.strftime("%Y%m%dT%H%M%SZ")


def vevent(i: int, start: datetime, summary: str | None = None) -> str:
    """A one-hour VEVENT, ``i`` hours after ``start``, as a CalDAV client would write it."""
    begin = start + timedelta(hours=i)
    return (
        "BEGIN:VEVENT\r\n"
        f"UID:bench-{i:05d}@client.example\r\n"
        "DTSTAMP:20260101T000000Z\r\n"
        f"DTSTART:{_stamp(begin)}\r\n"
        f"DTEND:{_stamp(begin + timedelta(hours=1))}\r\n"
        f"SUMMARY:{summary or f'Bench meeting {i}'}\r\n"
        f"LOCATION:Room {i % 17}\r\n"
        f"DESCRIPTION:Agenda item {i}\r\n"
        "END:VEVENT\r\n"
    )


def vcalendar(body: str) -> str:
    """Wrap VEVENT text in a VCALENDAR."""
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//syncd bench//EN\r\n{body}END:VCALENDAR\r\n"


def seed_caldav(calendar: CalendarHandle, n: int, start: datetime) -> None:
    """Fill ``calendar`` with ``n`` events with one PUT of a VCALENDAR to the collection URL.

    Radicale splits it into one item per UID (``bench-00000@client.example.ics``, ...).
    """
    if n == 0:
        return
    text = vcalendar("".join(vevent(i, start) for i in range(n)))
    headers = {"Content-Type": "text/calendar; charset=utf-8"}
    status, _, body = http(calendar.url, "PUT", text.encode(), headers, timeout=600)
    if status not in (200, 201, 204):
        raise RuntimeError(f"seeding {calendar.url} answered {status}: {body[:200]!r}")


def dingtalk_body(
    i: int, start: datetime, summary: str | None = None, *, step: timedelta = timedelta(hours=1)
) -> dict[str, Any]:
    """A CreateEvent body: one hour, ``i`` steps (default hours) after ``start``, Asia/Shanghai."""
    begin = (start + i * step).astimezone(SHANGHAI)

    def at(t: datetime) -> dict[str, str]:
        return {"dateTime": t.isoformat(), "timeZone": "Asia/Shanghai"}

    return {
        "summary": summary or f"DingTalk meeting {i}",
        "description": f"Agenda item {i}",
        "location": {"displayName": f"Room {i % 17}"},
        "start": at(begin),
        "end": at(begin + timedelta(hours=1)),
    }


def spread(n: int) -> timedelta:
    """Hours apart, or less, so that ``n`` events all start within 300 days (the window)."""
    return min(timedelta(hours=1), timedelta(days=300) / max(n, 1))


async def seed_dingtalk(api: SandboxApi, n: int, start: datetime, *, parallel: int = 8) -> None:
    """Create ``n`` events in u-alice's DingTalk calendar through the sandbox API.

    One hour apart, closer for more than 7,200 (``spread``): all inside the sync window.
    """
    todo = iter(range(n))
    step = spread(n)

    async def creator() -> None:
        for i in todo:
            await api.create(USER, dingtalk_body(i, start, step=step))

    await asyncio.gather(*(creator() for _ in range(parallel)))
