"""The planner's state machine against real sides: the sandbox and Radicale.

The same rules and oracles as ``tests/unit/test_engine_state_machine.py`` (random creates,
edits, deletes and renames on both sides, edit-vs-delete with one change landing between a
run's reads and its first write, incremental and full runs, a lost store), but syncd talks
to the real ``DingTalkSide`` (over HTTP to the sandbox) and ``CalDAVSide`` (over HTTP to
Radicale). The users change the calendars the way their clients would: DingTalk through
the sandbox's own state machinery, CalDAV by plain HTTP PUT, MOVE-like re-PUT and DELETE.
Fewer examples than the in-memory machine: each step costs real requests.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from syncd.adapters.caldav.client import CalDAVClient
from syncd.adapters.caldav.side import CalDAVSide
from syncd.adapters.dingtalk import DingTalkClient, TokenCache
from syncd.adapters.dingtalk.side import DingTalkSide
from syncd.model import Changes, Event, Side
from syncd.store.memory import MemoryStore
from syncd.sync.policy import Policy
from syncd.sync.ports import CalendarSide, Written
from syncd.translate import (
    Context,
    Directory,
    as_dingtalk_keeps,
    event_from_dingtalk,
    event_from_ical,
    event_to_dingtalk,
    event_to_ical,
)
from syncd_lab.sandbox.writer import Writer
from tests.fakes import SH, World
from tests.fixtures.caldav_servers import CalDAVServer, CalendarHandle, http, make_calendar
from tests.fixtures.sandbox import USERS, SandboxHandle, start_sandbox
from tests.unit.test_engine_state_machine import LostStoreMachine

CTX = Context(Directory(USERS), user="u-alice", timezone="Asia/Shanghai")
SERVERS: dict[str, CalDAVServer] = {}


@pytest.fixture(autouse=True, scope="module")
def _radicale(radicale_server: CalDAVServer) -> Iterator[None]:
    """The session's Radicale, for the machine (Hypothesis builds it outside fixtures)."""
    SERVERS["radicale"] = radicale_server
    yield
    SERVERS.clear()


class RealSide:
    """A real adapter as syncd's side, plus what the machine's users do to its calendar.

    Syncd's writes are counted and first let the user edits waiting in ``between`` land;
    user edits are synchronous (they may land inside a running write).
    """

    def __init__(self, inner: CalendarSide, user: Any, between: list[Callable[[], None]]):
        self.inner, self.user, self.between, self.side = inner, user, between, inner.side
        self.calls: Counter[str] = Counter()
        self.pending_failures = 0

    def land(self) -> None:
        while self.between:
            self.between.pop(0)()

    async def changes(self, cursor: str | None) -> Changes:
        return await self.inner.changes(cursor)

    async def create(self, event: Event) -> Written:
        self.calls["create"] += 1
        self.land()
        return await self.inner.create(event)

    async def update(self, item_id: str, event: Event, etag: str | None) -> Written:
        self.calls["update"] += 1
        self.land()
        return await self.inner.update(item_id, event, etag)

    async def delete(self, item_id: str, etag: str | None) -> None:
        self.calls["delete"] += 1
        self.land()
        await self.inner.delete(item_id, etag)

    @property
    def writes(self) -> int:
        return self.calls["create"] + self.calls["update"] + self.calls["delete"]

    @property
    def items(self) -> dict[str, Event]:
        return self.events()

    def events(self) -> dict[str, Event]:
        return dict(self.user.events())

    def user_create(self, event: Event) -> str:
        return str(self.user.create(event))

    def user_update(self, item_id: str, **changes: object) -> None:
        current = self.events()[item_id]
        self.user.put(item_id, dataclasses.replace(current, **changes))  # type: ignore[arg-type]

    def user_delete(self, item_id: str) -> None:
        self.user.delete(item_id)

    def user_move(self, item_id: str, new_id: str) -> None:
        self.user.move(item_id, new_id)

    def user_touch(self, item_id: str) -> None:
        self.user.put(item_id, self.events()[item_id])


@dataclasses.dataclass
class DingTalkUser:
    """Alice in the sandbox, through its own state machinery (no HTTP: may run mid-write)."""

    handle: SandboxHandle

    def _writer(self) -> Writer:
        return Writer(self.handle.sandbox.state, self.handle.sandbox.seed)

    def events(self) -> dict[str, Event]:
        live = [
            e for e in self.handle.sandbox.events_of("u-alice") if e.get("status") != "cancelled"
        ]
        return {str(e["id"]): event_from_dingtalk(e, [], CTX) for e in live}

    def create(self, event: Event) -> str:
        created, _ = self._writer().create("u-alice", event_to_dingtalk(event, CTX))
        return created.id

    def put(self, item_id: str, event: Event) -> None:
        self._writer().patch("u-alice", item_id, {**event_to_dingtalk(event, CTX), "id": item_id})

    def delete(self, item_id: str) -> None:
        self._writer().delete("u-alice", item_id)


@dataclasses.dataclass
class CalDAVUser:
    """Alice's CalDAV client: plain HTTP PUT and DELETE on Radicale."""

    calendar: CalendarHandle

    def _texts(self) -> dict[str, str]:
        body = b'<d:propfind xmlns:d="DAV:"><d:prop><d:getetag/></d:prop></d:propfind>'
        status, _, answer = http(self.calendar.url, "PROPFIND", body, {"Depth": "1"})
        assert status == 207
        hrefs = set(re.findall(r"<(?:\w+:)?href>([^<]+\.ics)</(?:\w+:)?href>", answer.decode()))
        out = {}
        for href in sorted(hrefs):
            status, _, text = http(self.calendar.base_url + href, "GET")
            if status == 200:
                out[href] = text.decode()
        return out

    def events(self) -> dict[str, Event]:
        return {href: event_from_ical(text, CTX) for href, text in self._texts().items()}

    def create(self, event: Event) -> str:
        href = f"{self.calendar.path}{event.uid}.ics"
        self.put(href, event)
        return href

    def put(self, href: str, event: Event) -> None:
        text = event_to_ical(event, CTX).encode()
        headers = {"Content-Type": "text/calendar; charset=utf-8"}
        status, _, body = http(self.calendar.base_url + quote(href), "PUT", text, headers)
        assert status in (200, 201, 204), body[:200]

    def delete(self, href: str) -> None:
        status, _, _ = http(self.calendar.base_url + quote(href), "DELETE")
        assert status in (200, 204)

    def move(self, href: str, new: str) -> None:
        event = self.events()[href]
        self.delete(href)
        self.put(new, event)


async def _clients(calendar: CalendarHandle) -> tuple[aiohttp.ClientSession, CalDAVClient]:
    """An HTTP session and a CalDAV client made inside the machine's own event loop."""
    return aiohttp.ClientSession(), CalDAVClient(calendar.url, *calendar.auth)


def _words(text: str) -> str:
    return " ".join(text.split())


class RealSidesMachine(LostStoreMachine):
    """The in-memory machine's rules against the sandbox and Radicale."""

    day = (datetime.now(SH) + timedelta(days=20)).replace(minute=0, second=0, microsecond=0)

    def __init__(self) -> None:
        super().__init__()
        self.handle_cm = start_sandbox()
        handle = self.loop.run_until_complete(self.handle_cm.__aenter__())
        calendar = make_calendar(SERVERS["radicale"])
        self.session, self.dav = self.loop.run_until_complete(_clients(calendar))
        client = DingTalkClient(
            self.session, handle.url, handle.app_key, handle.app_secret, TokenCache()
        )
        between: list[Callable[[], None]] = []
        dingtalk = RealSide(DingTalkSide(client, "u-alice", CTX), DingTalkUser(handle), between)
        caldav = RealSide(CalDAVSide(self.dav, CTX), CalDAVUser(calendar), between)
        self.world = World(dingtalk, caldav, MemoryStore())  # type: ignore[arg-type]

    def teardown(self) -> None:
        self.loop.run_until_complete(self.dav.close())
        self.loop.run_until_complete(self.session.close())
        self.loop.run_until_complete(self.handle_cm.__aexit__(None, None, None))
        super().teardown()

    def _policy(self, conflict: str = "newest") -> Policy:
        """As the worker builds it: DingTalk keeps what ``as_dingtalk_keeps`` says."""
        policy = super()._policy(conflict)
        return dataclasses.replace(policy, dingtalk_keeps=partial(as_dingtalk_keeps, ctx=CTX))

    def _norm(self, event: Event) -> Event:
        """What both sides hold alike: text (whitespace folded) and times; DingTalk adds
        the bound user as organizer, and each side keeps its own bookkeeping."""
        return Event(
            "",
            _words(event.summary),
            event.start,
            event.end,
            _words(event.description),
            _words(event.location),
        )

    # Not rules here (overridden without @rule): real servers' sync tokens cannot be
    # expired on demand, and failures are not scripted.
    def expire_cursors(self, side: Side) -> None:  # type: ignore[override]
        raise AssertionError("not a rule here")

    def fail_next_write(self, *args: object) -> None:  # type: ignore[override]
        raise AssertionError("not a rule here")

    @precondition(lambda self: self.world.caldav.items)
    @rule(data=st.data(), rename=st.booleans())
    def rewrite_or_rename_on_caldav(self, data: st.DataObject, rename: bool) -> None:
        """A client re-saves an item unchanged, or moves it to another href (same UID)."""
        href = data.draw(st.sampled_from(sorted(self.world.caldav.items)))
        if not rename:
            self.world.caldav.user_touch(href)
            return
        self.serial += 1
        moved = f"{href.rsplit('/', 1)[0]}/moved-{self.serial}.ics"
        self.world.caldav.user_move(href, moved)
        if href in self.snap[Side.CALDAV]:
            self.snap[Side.CALDAV][moved] = self.snap[Side.CALDAV].pop(href)

    @rule()
    def full_run_finds_nothing_to_do(self) -> None:
        """A full run right after a converged run writes nothing either."""
        self.reconcile("newest", full=True)


TestRealSides = RealSidesMachine.TestCase
TestRealSides.settings = settings(
    max_examples=10,
    stateful_step_count=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestRealSides.__doc__ = "Random edits and runs converge through the real adapters and servers."
pytestmark = pytest.mark.slow
