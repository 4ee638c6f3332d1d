"""The narrated demo: a meeting made in DingTalk reaches CalDAV, an edit in CalDAV comes back.

Three steps, each printed as it happens and timed from the moment the change was made:

1. DingTalk -> CalDAV: CreateEvent in the sandbox; the sandbox pushes a callback, syncd's
   webhook queues a reconcile, the worker writes the event to Radicale.
2. CalDAV -> DingTalk: the event is renamed and moved by an hour with a PUT (If-Match), as
   a calendar client would; syncd's CalDAV poll finds it and patches DingTalk.
3. Quiet: the requests one reconcile makes when nothing has changed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import icalendar

from syncd import errors
from syncd.adapters.caldav.client import CalDAVClient, RawItem
from syncd_lab.demo import _config
from syncd_lab.demo._counts import Snapshot, describe, reconciles_finished
from syncd_lab.demo._dingtalk import ZONE, DingTalkUser, meeting, start_of, tomorrow_at
from syncd_lab.demo._errors import DemoFailed
from syncd_lab.demo._wait import wait_until
from syncd_lab.demo.stack import Stack

Echo = Callable[[str], None]

SUMMARY = "Design review"
NEW_SUMMARY = "Design review (moved to 11:00)"
_SHOWN = ("SUMMARY", "DTSTART", "DTEND", "LOCATION", "ORGANIZER", "ATTENDEE")
_LOG_SETTLE_S = 0.3  # Radicale writes its request log line a moment after answering


@dataclass(frozen=True)
class Results:
    """What the demo measured."""

    to_caldav_ms: float  # DingTalk change -> visible in Radicale (callback path)
    to_dingtalk_ms: float  # CalDAV change -> visible in DingTalk (poll path)
    idle: Snapshot  # requests during idle reconciles (``idle.reconciles`` of them)


class CalendarWatch:
    """Follows the demo calendar with sync-collection, as a calendar client would."""

    def __init__(self, client: CalDAVClient) -> None:
        self.client = client
        self.token: str | None = None
        self.items: dict[str, RawItem] = {}

    async def refresh(self) -> None:
        """Apply the changes since the last call (a full listing the first time)."""
        try:
            changes = await self.client.sync(self.token)
        except errors.SyncTokenInvalid:
            self.token = None
            changes = await self.client.sync(None)
        if changes.complete:
            self.items = {}
        for href in changes.deleted:
            self.items.pop(href, None)
        self.items.update((item.href, item) for item in changes.items)
        self.token = changes.token

    async def find_new(self, summary: str, old: frozenset[str]) -> RawItem | None:
        """After a refresh, an item not among the hrefs ``old`` with an event ``summary``."""
        await self.refresh()
        for item in self.items.values():
            if item.href not in old and any(
                str(ev.get("SUMMARY")) == summary for ev in _events(item.text)
            ):
                return item
        return None


def _events(text: str) -> list[icalendar.cal.Component]:
    try:
        return list(icalendar.Calendar.from_ical(text).walk("VEVENT"))
    except ValueError:
        return []


def _ms_since(started: float) -> float:
    return (time.monotonic() - started) * 1000


def _show_item(item: RawItem, echo: Echo) -> None:
    """The href and the interesting VEVENT lines, as the server stores them."""
    echo(f"    {item.href}")
    depth = 0  # 1 inside the VEVENT
    for line in item.text.replace("\r\n ", "").replace("\n ", "").splitlines():
        depth += {"BEGIN:VEVENT": 1, "END:VEVENT": -1}.get(line, 0)
        if depth and line.split(";", 1)[0].split(":", 1)[0] in _SHOWN:
            echo(f"      {line if len(line) <= 120 else line[:117] + '...'}")


def _show_event(event: dict[str, Any], echo: Echo) -> None:
    attendees = ", ".join(str(a.get("displayName") or a.get("id")) for a in event["attendees"])
    echo(f'    id {event["id"]}: "{event["summary"]}"')
    echo(f"      start {event['start'].get('dateTime')} ({event['start'].get('timeZone')})")
    echo(f"      end   {event['end'].get('dateTime')}   attendees: {attendees or '-'}")


async def dingtalk_to_caldav(
    stack: Stack, user: DingTalkUser, watch: CalendarWatch, echo: Echo, limit: float
) -> tuple[str, RawItem, float]:
    """Step 1: create in DingTalk, wait for Radicale; ``(event id, item, latency ms)``."""
    echo("\n[1/3] DingTalk -> CalDAV")
    await watch.refresh()
    old = frozenset(watch.items)  # a reused --workdir may hold earlier runs' events
    start = tomorrow_at(10)
    body = meeting(SUMMARY, start, _config.ATTENDEE)
    echo(f'  DingTalk: Alice creates "{SUMMARY}", {start:%a %Y-%m-%d} 10:00-11:00 {ZONE},')
    echo("            inviting Bob (CreateEvent on the sandbox's Open API)")
    created = await user.create_event(_config.ORGANIZER, body)
    started = time.monotonic()
    item = await wait_until(
        lambda: watch.find_new(SUMMARY, old),
        limit=limit,
        what=f'"{SUMMARY}" to appear in Radicale',
        interval=0.02,
        alive=stack.alive,
    )
    latency = _ms_since(started)
    echo("  Radicale: it is there (callback -> webhook -> Redis -> worker -> PUT):")
    _show_item(item, echo)
    echo(f"  DingTalk -> CalDAV latency: {latency:.0f} ms")
    return str(created["id"]), item, latency


def edited(text: str, summary: str, shift: timedelta) -> str:
    """``text`` with the event renamed and moved by ``shift``, as a calendar client edits it."""
    calendar = icalendar.Calendar.from_ical(text)
    now = datetime.now(UTC).replace(microsecond=0)
    for event in calendar.walk("VEVENT"):
        for key in ("DTSTART", "DTEND"):
            if key in event:
                when = event.decoded(key)
                del event[key]
                event.add(key, when + shift)
        for key, value in (("SUMMARY", summary), ("DTSTAMP", now), ("LAST-MODIFIED", now)):
            event.pop(key, None)
            event.add(key, value)
    return str(calendar.to_ical().decode())


async def _put_edit(watch: CalendarWatch, item: RawItem, echo: Echo) -> None:
    """PUT the edit with If-Match; re-read and try again if syncd wrote in between."""
    for _ in range(3):
        text = edited(item.text, NEW_SUMMARY, timedelta(hours=1))
        try:
            await watch.client.put(item.href, text, etag=item.etag, create=False)
            return
        except errors.EtagMismatch:
            echo("  (the item changed meanwhile; reading it again)")
            await watch.refresh()
            item = watch.items.get(item.href) or item
    raise DemoFailed(f"the CalDAV edit of {item.href} kept losing If-Match races")


async def caldav_to_dingtalk(
    stack: Stack, watch: CalendarWatch, event_id: str, item: RawItem, echo: Echo, limit: float
) -> float:
    """Step 2: edit in CalDAV, wait for DingTalk; returns the latency in ms."""
    echo("\n[2/3] CalDAV -> DingTalk")
    new_start = tomorrow_at(11)
    echo(f'  CalDAV client: renames it "{NEW_SUMMARY}" and moves it to 11:00-12:00')
    echo("            (PUT with If-Match, as a calendar client saves an edit)")
    await _put_edit(watch, item, echo)
    started = time.monotonic()

    async def shows_change() -> dict[str, Any] | None:
        for event in stack.sandbox.events_of(_config.ORGANIZER):
            if event["id"] == event_id and event.get("summary") == NEW_SUMMARY:
                return event if start_of(event) == new_start else None
        return None

    event = await wait_until(
        shows_change,
        limit=limit,
        what=f'"{NEW_SUMMARY}" to reach DingTalk',
        interval=0.02,
        alive=stack.alive,
    )
    latency = _ms_since(started)
    echo(
        f"  DingTalk: changed (CalDAV has no push; syncd polls it: interval"
        f" {_config.POLL_INTERVAL}):"
    )
    _show_event(event, echo)
    echo(f"  CalDAV -> DingTalk latency: {latency:.0f} ms")
    return latency


async def _next_reconcile(stack: Stack, after: int, limit: float) -> None:
    async def done() -> bool:
        return reconciles_finished(_config.TENANT) > after

    await wait_until(done, limit=limit, what="a reconcile to finish", alive=stack.alive)
    await asyncio.sleep(_LOG_SETTLE_S)


def _snapshot_args(stack: Stack) -> tuple[Any, ...]:
    return (stack.sandbox, stack.radicale.log_path, _config.CALENDAR_PATH, _config.TENANT)


async def idle_reconcile(stack: Stack, echo: Echo, limit: float) -> Snapshot:
    """Step 3: count the requests between two reconcile completions with nothing to do."""
    echo("\n[3/3] Nothing changed: what one reconcile costs")
    await _next_reconcile(stack, reconciles_finished(_config.TENANT), limit)
    before = Snapshot.take(*_snapshot_args(stack))
    await _next_reconcile(stack, before.reconciles, limit)
    idle = Snapshot.take(*_snapshot_args(stack)).since(before)
    runs = max(idle.reconciles, 1)
    echo(f"  {idle.reconciles} poll reconcile(s), {idle.writes()} write(s):")
    echo(f"    DingTalk requests: {describe(idle.dingtalk)}")
    echo(f"    CalDAV requests:   {describe(idle.caldav)}")
    total = sum(idle.dingtalk.values()) + sum(idle.caldav.values())
    echo(f"  Requests per idle reconcile: {total / runs:g}")
    return idle


async def run_scenario(stack: Stack, echo: Echo, limit: float) -> Results:
    """All three steps against a running :class:`Stack`."""
    async with (
        aiohttp.ClientSession() as session,
        CalDAVClient(stack.calendar_url, _config.CALDAV_USER, "demo") as client,
    ):
        user = DingTalkUser(session, stack.sandbox_url)
        await user.login(_config.APP_KEY, stack.creds.app_secret)
        watch = CalendarWatch(client)
        event_id, item, to_caldav = await dingtalk_to_caldav(stack, user, watch, echo, limit)
        to_dingtalk = await caldav_to_dingtalk(stack, watch, event_id, item, echo, limit)
    idle = await idle_reconcile(stack, echo, limit)
    return Results(to_caldav, to_dingtalk, idle)
