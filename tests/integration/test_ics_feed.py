"""ICS feed bindings end to end: local feed server → real arq worker → the DingTalk sandbox.

The binding ``acme/alice-holidays`` imports the feed into u-alice's DingTalk calendar.
Runs go through the worker's own code: the poll cron (:func:`tasks.poll_due`), a burst
arq worker, and :func:`tasks.reconcile_binding` as its final try for the faults (so a
failure is recorded, not retried with backoff). The figures the issue asks for (requests
and writes per idle refresh, churn of volatile and UID-regenerating feeds, the fault
table) are asserted here and printed by ``-s``.
"""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from arq.connections import ArqRedis, create_pool

from syncd import queue
from syncd.adapters.caldav.client import CalDAVClient
from syncd.adapters.dingtalk.tokens import TokenCache
from syncd.config import Config, load_config
from syncd.model import BindingRef
from syncd.store.redis import RedisStore
from syncd.webhook.app import create_app
from syncd.worker import tasks
from syncd.worker.settings import create_worker
from syncd_lab.stack.ports import free_port
from tests.fixtures.caldav_servers import CalendarHandle
from tests.fixtures.feed_server import BERLIN, FeedServer, vevent
from tests.fixtures.sandbox import SandboxApi, SandboxHandle, sandbox_token, timed_event
from tests.fixtures.spine import caldav_yaml
from tests.integration.test_cli_ops import syncd

REF = BindingRef("acme", "alice-holidays")
WRITES = ("Create", "Patch", "Delete", "Add", "Remove", "Respond")

SERIES = """UID:weekly
DTSTART;TZID=Europe/Berlin:20270105T100000
DTEND;TZID=Europe/Berlin:20270105T110000
RRULE:FREQ=WEEKLY;COUNT=5
EXDATE;TZID=Europe/Berlin:20270112T100000
SUMMARY:Weekly
END:VEVENT
BEGIN:VEVENT
UID:weekly
RECURRENCE-ID;TZID=Europe/Berlin:20270119T100000
DTSTART;TZID=Europe/Berlin:20270119T120000
DTEND;TZID=Europe/Berlin:20270119T130000
SUMMARY:Weekly (moved)"""
ALL_DAY = "UID:holiday\nDTSTART;VALUE=DATE:20270101\nDTEND;VALUE=DATE:20270102\nSUMMARY:New Year"


def write_config(
    root: Path, sandbox: SandboxHandle, feed_url: str, redis_url: str, **ics: str
) -> Path:
    """A config dir: tenant acme, binding alice-holidays importing ``feed_url``."""
    options = "".join(f", {k}: {v}" for k, v in ics.items())
    (root / "tenants").mkdir(parents=True, exist_ok=True)
    (root / "syncd.yaml").write_text(f"redis_url: {redis_url}\nlog: {{format: console}}\n")
    (root / "tenants" / "acme.yaml").write_text(
        textwrap.dedent(
            f"""\
            id: acme
            timezone: Asia/Shanghai
            dingtalk:
              api_base: {sandbox.url}
              app_key: {sandbox.app_key}
              app_secret: {sandbox.app_secret}
              callback: {{token: {sandbox.callback_token}, aes_key: {sandbox.aes_key}}}
            directory:
              - {{union_id: u-alice, email: alice@acme.example}}
            bindings:
              - id: alice-holidays
                dingtalk_user: u-alice
                ics: {{url: "{feed_url}", refresh: 1h{options}}}
            """
        )
    )
    return root


@dataclass
class Rig:
    """Every running part of an ICS binding, and the moves the tests make."""

    config: Config
    sandbox: SandboxHandle
    feed: FeedServer
    pool: ArqRedis
    store: RedisStore
    api: SandboxApi

    async def refresh(self) -> None:
        """What the worker does when the feed's refresh is due: queue, then one burst worker."""
        await queue.request_reconcile(self.pool, REF, "refresh")
        worker = create_worker(self.config, burst=True, poll=False)
        try:
            await worker.main()
        finally:
            await worker.close()

    async def final_try(self) -> str:
        """The reconcile job as the worker runs it on its last try (no retry: recorded)."""
        await queue.mark_dirty(self.pool, REF)
        async with aiohttp.ClientSession() as session:
            ctx: dict[str, Any] = {
                "config": self.config,
                "redis": self.pool,
                "session": session,
                "tokens": TokenCache(self.pool),
                "store": self.store,
                "job_try": tasks.MAX_TRIES,
            }
            return await tasks.reconcile_binding(ctx, REF.tenant, REF.binding, "test")

    def events(self) -> dict[str, str]:
        """u-alice's DingTalk events: id -> summary."""
        return {e["id"]: e["summary"] for e in self.sandbox.sandbox.events_of("u-alice")}

    def requests(self) -> dict[str, int]:
        return dict(self.sandbox.sandbox.stats()["requests"])

    def writes(self) -> int:
        return sum(n for op, n in self.requests().items() if op.startswith(WRITES))


@pytest.fixture
async def rig(
    tmp_path: Path, sandbox: SandboxHandle, feed_server: FeedServer, redis_url: str
) -> AsyncIterator[Rig]:
    """Sandbox, Redis and feed server, wired for tenant acme / binding alice-holidays."""
    yield_rig = await _rig(tmp_path / "config", sandbox, feed_server, redis_url)
    async with aiohttp.ClientSession() as session:
        yield_rig.api = SandboxApi(sandbox, session, await sandbox_token(sandbox))
        yield yield_rig
    await yield_rig.pool.aclose()


async def _rig(
    root: Path, sandbox: SandboxHandle, feed: FeedServer, redis_url: str, **ics: str
) -> Rig:
    config = load_config(write_config(root, sandbox, feed.feed_url, redis_url, **ics), {})
    pool = await create_pool(queue.redis_settings(redis_url))
    return Rig(config, sandbox, feed, pool, RedisStore(pool), None)  # type: ignore[arg-type]


def soon_event(summary: str) -> dict[str, Any]:
    """A one-hour DingTalk event body inside the sync window (2027-02-10, Shanghai)."""
    when = {"dateTime": "2027-02-10T10:00:00+08:00", "timeZone": "Asia/Shanghai"}
    end = {"dateTime": "2027-02-10T11:00:00+08:00", "timeZone": "Asia/Shanghai"}
    return {"summary": summary, "start": when, "end": end}


def seed_feed(feed: FeedServer) -> None:
    feed.zones = BERLIN
    feed.events = {
        "a": vevent("a", "Alpha", "20270201T020000Z"),
        "b": vevent("b", "Bravo", "20270202T020000Z"),
        "weekly": SERIES,
        "holiday": ALL_DAY,
    }


async def test_feed_is_imported_and_an_idle_refresh_costs_one_304(rig: Rig) -> None:
    """First refresh creates every feed event; an idle one is 1 GET answered 304, 0 writes."""
    seed_feed(rig.feed)
    await rig.refresh()
    assert sorted(rig.events().values()) == [
        "Alpha",
        "Bravo",
        "New Year",
        "Weekly",
        "Weekly (moved)",
    ]
    before, feed_before = rig.requests(), len(rig.feed.requests)
    await rig.refresh()
    after = rig.requests()
    feed_requests = rig.feed.statuses()[feed_before:]
    delta = {op: n - before.get(op, 0) for op, n in after.items() if n != before.get(op, 0)}
    print(f"\nidle refresh: feed={feed_requests} dingtalk={delta}")
    assert feed_requests == [304]
    assert not any(op.startswith(WRITES) for op in delta)
    status = await rig.store.get_status(REF)
    assert status["state"] == "ok"


async def test_feed_edits_update_in_place_and_removals_delete(rig: Rig) -> None:
    """A summary edit patches the same DingTalk event; an event gone from a healthy feed
    is deleted; a feed event edited in DingTalk is put back; the user's own DingTalk event
    is never touched; an emptied feed is held."""
    seed_feed(rig.feed)
    await rig.refresh()
    own = await rig.api.create("u-alice", timed_event("My own meeting", day=22))
    ids = {summary: i for i, summary in rig.events().items()}
    rig.feed.events["a"] = vevent("a", "Alpha (moved to 3pm)", "20270201T070000Z")
    del rig.feed.events["b"]
    await rig.refresh()
    events = rig.events()
    assert events[ids["Alpha"]] == "Alpha (moved to 3pm)"  # same id: updated, not re-created
    assert ids["Bravo"] not in events
    assert events[own["id"]] == "My own meeting"
    status, _ = await rig.api.call(
        "PUT",
        rig.api.events("u-alice", f"/{ids['New Year']}"),
        json={"id": ids["New Year"], "summary": "Renamed in DingTalk"},
    )
    assert status == 200
    await rig.refresh()  # a 304: the DingTalk edit of the feed's event is put back
    assert rig.events()[ids["New Year"]] == "New Year"
    assert rig.events()[own["id"]] == "My own meeting"
    rig.feed.events = {}  # a valid feed with no events: held, not "delete everything"
    assert "SourceEmptied" in await rig.final_try()
    assert len(rig.events()) == 5  # Alpha, the series (2 entries), New Year, the user's own
    status = await rig.store.get_status(REF)
    assert (status["state"], "SourceEmptied" in status["last_error"]) == ("blocked", True)


@pytest.mark.parametrize("kind", ["volatile", "regenerate_uids"])
async def test_volatile_and_uid_regenerating_feeds_cause_no_writes(rig: Rig, kind: str) -> None:
    """Five refreshes of a feed that rewrites its stamps (or its UIDs) every time: after the
    first import, 0 DingTalk writes and no duplicate."""
    seed_feed(rig.feed)
    setattr(rig.feed, kind, True)
    await rig.refresh()
    imported, writes = len(rig.events()), rig.writes()
    for _ in range(5):
        await rig.refresh()
    churn = rig.writes() - writes
    print(f"\n{kind}: 5 refreshes, {churn} DingTalk writes, events {imported}->{len(rig.events())}")
    assert rig.feed.statuses().count(200) == 6  # the feed really changed every time
    assert churn == 0
    assert len(rig.events()) == imported == 5


FAULTS = {
    "404": "answered 404",
    "500": "answered 500",
    "timeout": "did not answer within 1s",
    "empty": "the feed is empty",
    "truncated": "truncated",
    "html": "HTML",
    "oversize": "byte limit",
    "redirect-loop": "redirects",
}


async def test_fault_table_failing_feeds_delete_nothing_and_heal(
    tmp_path: Path, sandbox: SandboxHandle, feed_server: FeedServer, redis_url: str
) -> None:
    """Each fault: 0 deletions, state failed with the reason in the status; the next good
    fetch heals the binding (state ok, its dead letter resolved)."""
    rig = await _rig(tmp_path / "config", sandbox, feed_server, redis_url, timeout="1s")
    try:
        seed_feed(rig.feed)
        await rig.refresh()
        imported = rig.events()
        table = []
        for fault, reason in FAULTS.items():
            rig.feed.fault = fault
            outcome = await rig.final_try()
            status = await rig.store.get_status(REF)
            deleted = len(imported) - len(rig.events())
            table.append((fault, deleted, status["state"], status["last_error"]))
            assert deleted == 0, fault
            assert status["state"] == "failed", (fault, status)
            assert reason in status["last_error"], (fault, status)
            assert outcome.startswith("failed"), outcome
            assert await rig.store.list_dead_letters(REF), fault
            rig.feed.fault = None
            await rig.refresh()
            healed = await rig.store.get_status(REF)
            assert healed["state"] == "ok", (fault, healed)
            assert not await rig.store.list_dead_letters(REF), fault
        assert rig.events() == imported
        print("\nfault table:")
        for fault, deleted, state, error in table:
            print(f"  {fault:<14} deletions={deleted} state={state} reason={error}")
    finally:
        await rig.pool.aclose()


async def test_poll_cron_requests_ics_bindings_by_refresh(rig: Rig) -> None:
    """The poll cron asks for an ICS binding once per refresh period, and the queued run
    fetches the feed."""
    seed_feed(rig.feed)
    ctx = {"config": rig.config, "redis": rig.pool}
    assert await tasks.poll_due(ctx) == 1
    assert await tasks.poll_due(ctx) == 0  # refresh: 1h
    worker = create_worker(rig.config, burst=True, poll=False)
    try:
        await worker.main()
    finally:
        await worker.close()
    assert rig.feed.statuses() == [200]
    assert len(rig.events()) == 5  # the series' moved occurrence is an entry of its own


async def test_syncd_sync_fetches_now_and_status_shows_a_failing_feed(
    rig: Rig, tmp_path: Path
) -> None:
    """``syncd sync`` fetches the feed now (refresh is 1h); a second one is a 304 and writes
    nothing; with the feed failing, ``syncd status`` shows the binding failed with the
    reason, and a good sync heals it."""
    config = tmp_path / "config"
    seed_feed(rig.feed)
    first = await syncd(config, "sync", "acme", "alice-holidays")
    assert first.code == 0, first
    assert first.lines[-1].startswith("acme/alice-holidays: created=4 updated=0 deleted=0")
    second = await syncd(config, "sync", "acme", "alice-holidays")
    assert second.lines[-1].startswith("acme/alice-holidays: created=0 updated=0 deleted=0")
    assert rig.feed.statuses() == [200, 304]
    rig.feed.fault = "html"
    failed = await syncd(config, "sync", "acme", "alice-holidays")
    assert failed.code == 1
    assert "BrokenCalendarData: the feed is an HTML/XML page" in failed.stderr
    status = await syncd(config, "status", "acme")
    assert status.code == 1
    assert "failed" in status.stdout
    assert "HTML/XML page" in status.stdout
    rig.feed.fault = None
    assert (await syncd(config, "sync", "acme", "alice-holidays")).code == 0
    assert (await syncd(config, "status", "acme")).code == 0
    assert len(rig.events()) == 5


DATA = Path(__file__).parent.parent / "data" / "ics"


async def test_corpus_files_import_and_stay_quiet(rig: Rig) -> None:
    """Each file of tests/data/ics served as the feed: its events reach DingTalk (or are
    skipped with a reason); then an idle refresh (304) and a full re-fetch (200, same
    content) write nothing."""
    seen = 0
    for path in sorted(DATA.glob("*.ics")):
        rig.feed.raw = path.read_text()
        await rig.refresh()
        status = await rig.store.get_status(REF)
        assert status["state"] == "ok", (path.name, status)
        counts = status["counts"]  # a broken file's item is skipped with its reason
        assert counts["created"] + counts["skipped"] >= 1, (path.name, status)
        seen += counts["created"]
        writes, fetches = rig.writes(), len(rig.feed.requests)
        await rig.refresh()
        await queue.mark_full(rig.pool, REF)  # the daily full reconcile's mark
        await rig.refresh()
        assert rig.feed.statuses()[fetches:] == [304, 200], path.name
        assert rig.writes() == writes, path.name
    assert seen >= 9  # events created in DingTalk over the files


async def test_dingtalk_callbacks_do_not_fetch_feeds(rig: Rig) -> None:
    """A DingTalk change for u-alice reaches the real webhook (acknowledged), yet queues
    nothing for her feed binding: feeds follow their refresh only."""
    runner = web.AppRunner(create_app(rig.config, rig.pool))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        rig.sandbox.sandbox.set_callback(
            rig.sandbox.app_key, f"http://127.0.0.1:{port}/callbacks/acme"
        )
        await rig.api.create("u-alice", timed_event("Lunch", day=23))
        await rig.sandbox.sandbox.drain()
        callbacks = rig.sandbox.sandbox.stats()["callbacks"]
        assert callbacks["sent"] >= 1, callbacks
        assert callbacks["failed"] == 0, callbacks
        assert await rig.pool.zcard("arq:queue") == 0
        assert rig.feed.requests == []
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("caldav_calendar", ["radicale"], indirect=True)
async def test_a_sibling_caldav_binding_leaves_feed_events_alone(
    rig: Rig, tmp_path: Path, caldav_calendar: CalendarHandle
) -> None:
    """u-alice also syncs a CalDAV calendar both ways: the feed's events, imported into her
    DingTalk calendar, are not copied into it; her own DingTalk event is."""
    cal = caldav_calendar
    tenant = tmp_path / "config" / "tenants" / "acme.yaml"
    tenant.write_text(
        tenant.read_text()
        + "  - id: alice-work\n"
        + "    dingtalk_user: u-alice\n"
        + f"    caldav: {caldav_yaml(cal.url, (cal.username, cal.password))}\n"
    )
    rig.config = load_config(tmp_path / "config", {})
    seed_feed(rig.feed)
    await rig.refresh()
    await rig.api.create("u-alice", soon_event("My own meeting"))
    work = BindingRef("acme", "alice-work")
    await queue.request_reconcile(rig.pool, work, "poll")
    await rig.refresh()
    async with CalDAVClient(cal.url, cal.username, cal.password) as client:
        items = (await client.sync(None)).items
    summaries = sorted(
        line for i in items for line in i.text.splitlines() if line.startswith("SUMMARY")
    )
    assert summaries == ["SUMMARY:My own meeting"]
    assert (await rig.store.get_status(work))["state"] == "ok"


async def test_series_edits_reach_the_same_dingtalk_series(rig: Rig) -> None:
    """A new EXDATE and another moved occurrence in the feed update the imported series in
    place (no delete, no create); a full re-fetch afterwards writes nothing, so DingTalk
    holds exactly what the feed says."""
    seed_feed(rig.feed)
    await rig.refresh()
    master = next(i for i, s in rig.events().items() if s == "Weekly")
    rig.feed.events["weekly"] = (
        SERIES.replace(
            "EXDATE;TZID=Europe/Berlin:20270112T100000",
            "EXDATE;TZID=Europe/Berlin:20270112T100000,20270126T100000",
        )
        + "\nEND:VEVENT\nBEGIN:VEVENT\nUID:weekly\n"
        + "RECURRENCE-ID;TZID=Europe/Berlin:20270202T100000\n"
        + "DTSTART;TZID=Europe/Berlin:20270202T150000\n"
        + "DTEND;TZID=Europe/Berlin:20270202T160000\nSUMMARY:Weekly (late)"
    )
    await rig.refresh()
    status = await rig.store.get_status(REF)
    assert status["state"] == "ok", status
    counts = status["per_side"]["dingtalk"]
    assert (counts["created"], counts["deleted"], counts["updated"]) == (0, 0, 1), status
    events = rig.events()
    assert events[master] == "Weekly"
    assert "Weekly (late)" in events.values()
    writes = rig.writes()
    await queue.mark_full(rig.pool, REF)
    await rig.refresh()
    assert rig.writes() == writes
