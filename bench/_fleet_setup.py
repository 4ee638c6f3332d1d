"""The fleet benchmark's set-up: N sandbox users, N Radicale calendars, one tenant, synced.

* **Users**: the sandbox is seeded in-process with ``u-f00000`` ... (one app, no callback
  URL: the initial sync pushes no callbacks anywhere).
* **Calendars**: made as Radicale's own collection folders on disk (``.Radicale.props``
  copied from one made by MKCALENDAR, as ``tests/integration/test_scale.py`` does), each
  holding ``events`` one-hour items written as Radicale stores them (one ``.ics`` file per
  item). Radicale reads its storage on every request, so this is what a client would have
  made with N × ``events`` PUTs, without the ~20-70 ms each of those.
* **Config**: one tenant, one binding per user (``poll_interval`` as given), written with
  the lab's config writer; ``dingtalk.qps`` is raised for the in-process initial sync and
  back to syncd's default for the measured worker.
* **Initial sync**: every binding reconciled in-process (``syncd.worker.tasks.run_once``,
  the worker's own code) ``concurrency`` at a time (:func:`reconcile_all`), twice: the
  first run copies the CalDAV items to DingTalk, the second reads those creates back
  (echoes, no writes), so later polls are idle ones.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from arq.connections import create_pool

from bench._rig import first_slot
from syncd import queue
from syncd.config import load_config
from syncd.errors import Retryable
from syncd.model import BindingRef
from syncd.worker import tasks
from syncd.worker.context import WorkerContext
from syncd_lab.sandbox.seed import Seed, seed_from_data
from syncd_lab.stack import config as lab_config
from tests.fixtures.caldav_servers import CalDAVServer, make_calendar
from tests.fixtures.sandbox import AES_KEY, APP_KEY, APP_SECRET, CALLBACK_TOKEN, CORP_ID

TENANT = "fleet"
RETRIES = 3  # tries after a retryable failure of one run
SYNC_QPS = 5_000.0  # the initial sync's dingtalk.qps (the sandbox has no limit unless told)


def users(n: int) -> list[str]:
    """The benchmark's DingTalk users."""
    return [f"u-f{i:05d}" for i in range(n)]


def seed(names: list[str]) -> Seed:
    """One app without a callback URL, and ``names`` as its users."""
    app = {
        "app_key": APP_KEY,
        "app_secret": APP_SECRET,
        "corp_id": CORP_ID,
        "callback": {"url": None, "token": CALLBACK_TOKEN, "aes_key": AES_KEY},
    }
    people = [{"union_id": u, "name": u, "email": f"{u[2:]}@fleet.example"} for u in names]
    return seed_from_data({"apps": [app], "users": people})


def _item(uid: str, start: datetime, summary: str) -> str:
    fmt = "%Y%m%dT%H%M%SZ"
    end = start + timedelta(hours=1)
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//syncd bench fleet//EN\r\n"
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:{start.strftime(fmt)}\r\n"
        f"DTSTART:{start.strftime(fmt)}\r\nDTEND:{end.strftime(fmt)}\r\n"
        f"SUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def make_calendars(dav: CalDAVServer, names: list[str], events: int) -> dict[str, str]:
    """One collection per user in Radicale's storage, ``events`` items each; user -> URL."""
    model = make_calendar(dav, "model")
    home = dav.workdir / "storage" / "collection-root" / dav.username
    props = (home / "model" / ".Radicale.props").read_text()
    base = model.url.removesuffix("model/")
    slot = first_slot()
    urls = {}
    for k, user in enumerate(names):
        folder = home / f"fleet-{user[2:]}"
        folder.mkdir()
        (folder / ".Radicale.props").write_text(props)
        for j in range(events):
            uid = f"fleet-{k}-{j}"
            text = _item(uid, slot + timedelta(hours=j + 24 * (k % 7)), f"Fleet {k}.{j}")
            (folder / f"{uid}.ics").write_text(text, newline="")
        urls[user] = f"{base}fleet-{user[2:]}/"
    return urls


def tenant_data(
    api_base: str, urls: dict[str, str], poll_interval: float, qps: float | None
) -> dict[str, Any]:
    """The tenant mapping: one binding ``b-<user>`` per user's calendar."""
    app = lab_config.dingtalk(api_base, APP_KEY, APP_SECRET, token=CALLBACK_TOKEN, aes_key=AES_KEY)
    if qps is not None:
        app["qps"] = qps
    binds = [
        lab_config.binding(f"b-{u[2:]}", u, url, poll_interval=f"{poll_interval:g}s")
        for u, url in urls.items()
    ]
    people = [(u, f"{u[2:]}@fleet.example") for u in urls]
    return lab_config.tenant(TENANT, app, binds, directory=people)


def write_config(root: Path, redis_url: str, tenant: dict[str, Any]) -> Path:
    """``root`` as a syncd config directory (JSON logs at info, as in production)."""
    settings = {"redis_url": redis_url, "log": {"format": "json", "level": "info"}}
    return lab_config.write_config_dir(root, settings, [tenant])


@dataclass
class PassResult:
    """One in-process reconcile of every binding."""

    runs: int
    seconds: float
    cpu_s: float  # this process: syncd's code *and* the in-process sandbox serving it
    created: int
    errors: int


async def reconcile_all(
    config_dir: Path, redis_url: str, concurrency: int, *, first: int = 0, every: int = 1
) -> PassResult:
    """One reconcile of every ``every``-th binding of the ``first`` ones (0: all) in config
    order, in-process, ``concurrency`` at a time."""
    config = load_config(config_dir, {})
    refs = [BindingRef(t.id, b.id) for t, b in config.bindings()]
    refs = refs[: first or len(refs)][::every]
    pool = await create_pool(queue.redis_settings(redis_url))
    ctx = WorkerContext.open(config, pool)
    gate = asyncio.Semaphore(concurrency)
    created = errors = 0

    async def one(ref: BindingRef) -> None:
        nonlocal created, errors
        for attempt in range(RETRIES + 1):
            try:
                async with gate:
                    report = await tasks.run_once(ctx, ref)
            except Retryable:  # the worker retries such runs too (e.g. an overloaded Radicale)
                errors += 1
                await asyncio.sleep(attempt + 1)
                continue
            created += report.counts.created
            errors += len(report.errors)
            return

    try:
        cpu0, started = time.process_time(), time.monotonic()
        await asyncio.gather(*(one(ref) for ref in refs))
        seconds, cpu = time.monotonic() - started, time.process_time() - cpu0
    finally:
        await ctx.close()
        await pool.aclose()
    return PassResult(len(refs), round(seconds, 2), round(cpu, 2), created, errors)
