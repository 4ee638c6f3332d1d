"""An initial copy with several writes in flight (the binding's ``concurrency``).

Through the real parts: Redis, Radicale, the DingTalk sandbox and syncd's own sides, store
and worker wiring (``tasks.run_once``, what one reconcile job runs). Writing pairs side by
side must change nothing but the time it takes: the same mapping and the same contents as
one write at a time, a recurring series (master, then its moved occurrence) intact, and a
write that fails leaves every other item mapped as soon as it landed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aredis
from arq.connections import ArqRedis, create_pool

from syncd import queue
from syncd.adapters.caldav.client import CalDAVClient
from syncd.config import load_config
from syncd.model import Event, Side
from syncd.reconcile import Report, reconcile
from syncd.sync.ports import CalendarSide, Written
from syncd.translate.dingtalk import uid_for_dingtalk_id
from syncd.worker import tasks
from syncd.worker.context import WorkerContext
from syncd.worker.wiring import wire
from tests.fixtures.caldav_servers import CalDAVServer, CalendarHandle, make_calendar
from tests.fixtures.sandbox import SandboxApi, SandboxHandle, sandbox_token, start_sandbox
from tests.fixtures.spine import REF, timed_event, write_config

EACH_SIDE = 12  # plain events seeded on each side, plus two series on CalDAV


def _vevent(uid: str, summary: str, start: str, *, extra: str = "") -> str:
    end = start[:9] + f"{int(start[9:11]) + 1:02d}" + start[11:]
    return (
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\n{extra}"
        f"DTSTART:{start}\r\nDTEND:{end}\r\nSUMMARY:{summary}\r\nEND:VEVENT\r\n"
    )


def _calendar(*events: str) -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n"
        + "".join(events)
        + ("END:VCALENDAR\r\n")
    )


def _series(name: str, day: int) -> str:
    """A daily series of five with its third occurrence moved three hours later."""
    uid = f"series-{name}@test"
    first, moved = f"202701{day:02d}T020000Z", f"202701{day + 2:02d}T020000Z"
    master = _vevent(uid, f"Series {name}", first, extra="RRULE:FREQ=DAILY;COUNT=5\r\n")
    exception = _vevent(
        uid,
        f"Series {name} moved",
        f"202701{day + 2:02d}T050000Z",
        extra=f"RECURRENCE-ID:{moved}\r\n",
    )
    return _calendar(master, exception)


async def _seed(api: SandboxApi, calendar: CalendarHandle) -> None:
    """The same items in every world: DingTalk events, CalDAV events and two series."""
    for i in range(EACH_SIDE):
        await api.create("u-alice", timed_event(f"DT meeting {i}", day=1 + i))
    for i in range(EACH_SIDE):
        text = _calendar(_vevent(f"dav-{i}@test", f"DAV meeting {i}", f"202701{1 + i:02d}T060000Z"))
        assert calendar.put_raw(f"dav-{i}.ics", text)[0] == 201
    for name, day in (("a", 3), ("b", 10)):
        assert calendar.put_raw(f"series-{name}.ics", _series(name, day))[0] == 201


@dataclasses.dataclass
class World:
    """One sandbox, one calendar, one config: an initial copy's whole universe."""

    sandbox: SandboxHandle
    api: SandboxApi
    calendar: CalendarHandle
    ctx: WorkerContext

    async def copy(self) -> Report:
        """The initial (full) reconcile, as a worker job runs it."""
        return await tasks.run_once(self.ctx, REF, full=True)

    def dingtalk_events(self) -> list[dict[str, Any]]:
        return [
            e for e in self.sandbox.sandbox.events_of("u-alice") if e.get("status") != "cancelled"
        ]

    async def caldav_texts(self) -> dict[str, str]:
        cal = self.calendar
        async with CalDAVClient(cal.url, cal.username, cal.password) as client:
            listing = await client.sync(None)
        return {item.href.rsplit("/", 1)[1]: item.text for item in listing.items}


@asynccontextmanager
async def world(
    tmp_path: Path, server: CalDAVServer, pool: ArqRedis, redis_url: str, concurrency: int
) -> AsyncIterator[World]:
    """A fresh sandbox and calendar, seeded alike, bound with ``concurrency``."""
    calendar = make_calendar(server)
    async with start_sandbox() as sandbox, aiohttp.ClientSession() as session:
        api = SandboxApi(sandbox, session, await sandbox_token(sandbox))
        await _seed(api, calendar)
        root = write_config(
            tmp_path / f"c{concurrency}",
            sandbox,
            calendar.url,
            redis_url,
            auth=calendar.auth,
            concurrency=str(concurrency),
        )
        ctx = WorkerContext.open(load_config(root, {}), pool)
        try:
            assert ctx.config.tenant("acme").binding("alice-work").concurrency == concurrency
            yield World(sandbox, api, calendar, ctx)
        finally:
            await ctx.close()


_VOLATILE_ICS = re.compile(r"^(DTSTAMP|LAST-MODIFIED|CREATED|SEQUENCE)[:;].*\r?\n", re.M)
_VOLATILE_DINGTALK = {"id", "createTime", "updateTime", "seriesMasterId", "iCalUID", "etag"}
_UPDATED = re.compile(r'"updated": "[^"]*"')
_VOLATILE_PAIR = {"dingtalk_id", "caldav_etag", "dingtalk_etag", "dingtalk_fp", "caldav_fp"}


async def snapshot(w: World) -> dict[str, Any]:
    """The copy's result with every id DingTalk made up replaced by a stable name.

    DingTalk (the sandbox) gives events random ids and syncd derives the UID (and so the
    CalDAV href) of an event born there from its id; everything else must match exactly.
    """
    events = w.dingtalk_events()
    names: dict[str, str] = {}
    for e in events:
        name = f"{e['summary']}|{json.dumps(e.get('originStart'), sort_keys=True)}"
        names[e["id"]] = name
        names[uid_for_dingtalk_id(e["id"])] = f"uid({name})"
    cal = w.calendar
    async with CalDAVClient(cal.url, cal.username, cal.password) as client:
        for e in events:
            uid = uid_for_dingtalk_id(e["id"])
            names[client.href_for_uid(uid).rsplit("/", 1)[1]] = f"href({names[e['id']]})"
    pairs = await w.ctx.store.load_pairs(REF)
    raw = {
        "dingtalk": sorted(
            json.dumps({k: v for k, v in e.items() if k not in _VOLATILE_DINGTALK}, sort_keys=True)
            for e in events
        ),
        "caldav": {
            href: _VOLATILE_ICS.sub("", text) for href, text in (await w.caldav_texts()).items()
        },
        "pairs": {
            uid: {k: v for k, v in dataclasses.asdict(p).items() if k not in _VOLATILE_PAIR}
            for uid, p in pairs.items()
        },
    }
    names[cal.path] = "{calendar}/"
    text = json.dumps(raw, sort_keys=True, default=str)
    for made_up in sorted(names, key=len, reverse=True):
        text = text.replace(made_up, names[made_up])
    text = _UPDATED.sub('"updated": "-"', text)  # when DingTalk stored it (wall clock)
    result: dict[str, Any] = json.loads(text)
    return result


async def _flush(redis_url: str) -> None:
    client = aredis.Redis.from_url(redis_url)
    try:
        await client.flushall()
    finally:
        await client.aclose()


async def test_initial_copy_at_concurrency_matches_one_at_a_time(
    radicale_server: CalDAVServer, tmp_path: Path, redis_url: str
) -> None:
    """Both directions at once (12 DingTalk events, 12 CalDAV events, 2 series with a moved
    occurrence): at concurrency 6 the mapping, the CalDAV items and the DingTalk events are
    exactly those of a copy at concurrency 1, and the follow-up run writes nothing."""
    pool = await create_pool(queue.redis_settings(redis_url))
    shots: dict[int, dict[str, Any]] = {}
    try:
        for concurrency in (1, 6):
            await _flush(redis_url)
            async with world(tmp_path, radicale_server, pool, redis_url, concurrency) as w:
                report = await w.copy()
                assert report.errors == ()
                assert report.counts.created == 2 * EACH_SIDE + 2
                assert report.cursors_committed
                follow = await tasks.run_once(w.ctx, REF)
                assert (follow.counts.created, follow.counts.updated) == (0, 0)
                shots[concurrency] = await snapshot(w)
    finally:
        await pool.aclose()
    one, many = shots[1], shots[6]
    assert len(one["pairs"]) == 2 * EACH_SIDE + 2
    assert len(one["caldav"]) == 2 * EACH_SIDE + 2
    # DingTalk holds each series' master and its moved occurrence, written in that order.
    assert sum(1 for e in one["dingtalk"] if "Series a moved" in e) == 1
    assert many["pairs"] == one["pairs"]
    assert many["caldav"] == one["caldav"]
    assert many["dingtalk"] == one["dingtalk"]


class InFlight:
    """A real side, counting how many of its writes are under way at once."""

    def __init__(self, inner: CalendarSide, counter: dict[str, int]) -> None:
        self.inner = inner
        self.side: Side = inner.side
        self.counter = counter

    async def changes(self, cursor: str | None) -> Any:
        return await self.inner.changes(cursor)

    async def _counted(self, write: Any) -> Any:
        self.counter["now"] += 1
        self.counter["most"] = max(self.counter["most"], self.counter["now"])
        try:
            await asyncio.sleep(0)  # let the other workers start theirs
            return await write
        finally:
            self.counter["now"] -= 1

    async def create(self, event: Event) -> Written:
        result: Written = await self._counted(self.inner.create(event))
        return result

    async def update(self, item_id: str, event: Event, etag: str | None) -> Written:
        result: Written = await self._counted(self.inner.update(item_id, event, etag))
        return result

    async def delete(self, item_id: str, etag: str | None) -> None:
        await self._counted(self.inner.delete(item_id, etag))


async def test_one_failed_write_among_concurrent_ones_loses_no_other_mapping(
    radicale_server: CalDAVServer, tmp_path: Path, redis_url: str
) -> None:
    """Another client already holds the href one DingTalk event's copy must be created at:
    that PUT fails (If-None-Match), the five writes in flight beside it land and are mapped,
    the cursors stay. Once the squatter is gone the next run writes just the missing one."""
    pool = await create_pool(queue.redis_settings(redis_url))
    try:
        async with world(tmp_path, radicale_server, pool, redis_url, 6) as w:
            victim = next(e for e in w.dingtalk_events() if e["summary"] == "DT meeting 5")
            async with CalDAVClient(w.calendar.url, *w.calendar.auth) as client:
                href = client.href_for_uid(uid_for_dingtalk_id(victim["id"]))
            name = href.rsplit("/", 1)[1]
            squatter = _calendar(_vevent("squatter@test", "Squatter", "20270120T060000Z"))
            assert w.calendar.put_raw(name, squatter)[0] == 201
            counter = {"now": 0, "most": 0}
            async with wire(
                w.ctx.config, REF, w.ctx.session, w.ctx.tokens, pace=w.ctx.pace
            ) as wired:
                report = await reconcile(
                    REF,
                    InFlight(wired.dingtalk, counter),
                    InFlight(wired.other, counter),
                    w.ctx.store,
                    wired.policy,
                    full=True,
                    concurrency=wired.concurrency,
                )
            assert 2 <= counter["most"] <= 6, counter
            (error,) = report.errors
            assert (error.uid, error.side, error.error) == (
                uid_for_dingtalk_id(victim["id"]),
                Side.CALDAV,
                "AlreadyExists",
            )
            assert not report.cursors_committed
            pairs = await w.ctx.store.load_pairs(REF)
            # Every other item (and the squatter, copied to DingTalk) is mapped on both sides.
            assert len(pairs) == 2 * EACH_SIDE + 2
            assert uid_for_dingtalk_id(victim["id"]) not in pairs
            assert all(p.dingtalk_id and p.caldav_href for p in pairs.values())
            on_caldav = await w.caldav_texts()
            assert len(on_caldav) == 2 * EACH_SIDE + 2  # 11 copies + 12 + 2 seeded + squatter
            # DingTalk: its 12, the 12 CalDAV events, 2 series (+ 2 moved occurrences), squatter.
            assert len(w.dingtalk_events()) == 2 * EACH_SIDE + 2 + 2 + 1

            assert w.calendar.delete_raw(name) in (200, 204)
            again = await tasks.run_once(w.ctx, REF)
            assert again.errors == ()
            assert again.counts.created == 1
            on_caldav = await w.caldav_texts()
            assert name in on_caldav
            assert "DT meeting 5" in on_caldav[name]
            summaries = [e["summary"] for e in w.dingtalk_events()]
            assert "Squatter" not in summaries  # its deletion went to DingTalk too
            # No duplicates: 12 + 12 events, 2 series masters and their 2 moved occurrences.
            assert len(summaries) == len(set(summaries)) == 2 * EACH_SIDE + 4
    finally:
        await pool.aclose()
