"""What the users of the realistic-history harness do, and how the harness looks at it.

Two users, alice and bob, each with a DingTalk calendar (the sandbox) and a CalDAV calendar
(alice on Radicale, bob on Xandikos). Every event the harness makes is titled
``E<n> v<version>``: ``n`` names the logical event on every side it reaches, ``version``
grows with each title edit, so duplicates and lost edits are visible in the titles alone.
DingTalk changes go through the sandbox's HTTP API; CalDAV changes are plain HTTP PUT and
DELETE of iCalendar text, as a client would send them (ORGANIZER, ATTENDEEs with PARTSTAT,
an external attendee, CLASS, TRANSP and VALARMs, all of which DingTalk cannot hold exactly).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import icalendar

from tests.fixtures.caldav_servers import CalendarHandle, http
from tests.fixtures.sandbox import SandboxApi, SandboxHandle

ALICE, BOB, CAROL = "u-alice", "u-bob", "u-carol"
EMAIL = {ALICE: "alice@acme.example", BOB: "bob@acme.example", CAROL: "carol@acme.example"}
EXTERNAL = "dave@partner.example"  # in no directory: DingTalk cannot invite him
SHANGHAI = ZoneInfo("Asia/Shanghai")
TITLE = re.compile(r"^E(\d+) v(\d+)$")
BASE_DAY = (datetime.now(UTC) + timedelta(days=10)).replace(
    hour=0, minute=0, second=0, microsecond=0
)

Key = tuple[str, datetime, datetime]  # title, start and end in UTC


@dataclass
class Logical:
    """One event the harness made: who organizes it and its current title version."""

    n: int
    organizer: str
    version: int = 1

    @property
    def title(self) -> str:
        return f"E{self.n} v{self.version}"


def number_of(title: str) -> int | None:
    """The ``n`` of an ``E<n> v<version>`` title (None for anything else)."""
    found = TITLE.match(title.strip())
    return int(found.group(1)) if found else None


def _slot(rng: random.Random) -> tuple[datetime, datetime]:
    start = BASE_DAY + timedelta(days=rng.randrange(0, 40), hours=rng.randrange(8, 18))
    return start, start + timedelta(minutes=rng.choice((30, 60, 90)))


def _dt(value: datetime) -> dict[str, str]:
    local = value.astimezone(SHANGHAI).isoformat(timespec="seconds")
    return {"dateTime": local, "timeZone": "Asia/Shanghai"}


@dataclass
class DingTalkUser:
    """One user's DingTalk calendar, changed through the sandbox API."""

    user: str
    api: SandboxApi
    handle: SandboxHandle

    def events(self) -> list[dict[str, Any]]:
        """The user's live events, as ListEvents renders them."""
        return [
            e for e in self.handle.sandbox.events_of(self.user) if e.get("status") != "cancelled"
        ]

    def listing(self) -> list[Key]:
        return [_dingtalk_key(e) for e in self.events()]

    async def create(self, ev: Logical, rng: random.Random) -> None:
        start, end = _slot(rng)
        others = [u for u in (ALICE, BOB, CAROL) if u != self.user and rng.random() < 0.4]
        body: dict[str, Any] = {"summary": ev.title, "start": _dt(start), "end": _dt(end)}
        if others:
            body["attendees"] = [{"id": u} for u in others]
        if rng.random() < 0.3:
            body["reminders"] = [{"method": "dingtalk", "minutes": 15}]
        await self.api.create(self.user, body)

    async def edit(
        self, event_id: str, ev: Logical, rng: random.Random, what: str | None = None
    ) -> str:
        """Edit title, time or attendees of an event the user organizes (always a real
        change: a new title version, a new slot, another set of attendees); says what."""
        body: dict[str, Any] = {"id": event_id}
        what = what or rng.choice(("title", "time", "attendees"))
        current = next(e for e in self.events() if str(e["id"]) == event_id)
        people = {a["id"] for a in current.get("attendees") or ()} - {self.user}
        others = {u for u in (ALICE, BOB, CAROL) if u != self.user and rng.random() < 0.5}
        if what == "attendees" and others != people:
            body["attendees"] = [{"id": u} for u in sorted(others)]
        elif what == "time":
            start, end = _slot(rng)
            body["start"], body["end"] = _dt(start), _dt(end)
        else:
            what = "title"
            ev.version += 1
            body["summary"] = ev.title
        status, data = await self.api.call(
            "PUT", self.api.events(self.user, f"/{event_id}"), json=body
        )
        assert status == 200, data
        return what

    async def delete(self, event_id: str) -> None:
        status, data = await self.api.call("DELETE", self.api.events(self.user, f"/{event_id}"))
        assert status == 200, data

    def find(self, n: int) -> dict[str, Any] | None:
        """The user's live DingTalk event of logical event ``n``."""
        found = [e for e in self.events() if number_of(str(e.get("summary", ""))) == n]
        return found[0] if found else None


def _dingtalk_key(event: dict[str, Any]) -> Key:
    def at(part: dict[str, Any]) -> datetime:
        return datetime.fromisoformat(part["dateTime"]).astimezone(UTC)

    return str(event.get("summary", "")), at(event["start"]), at(event["end"])


@dataclass
class CalDAVUser:
    """One user's CalDAV calendar, changed with plain HTTP PUT and DELETE."""

    user: str
    calendar: CalendarHandle
    texts: dict[str, str] = field(default_factory=dict)  # href -> text, refreshed by load()

    def load(self) -> dict[str, str]:
        """Every item of the calendar: href -> iCalendar text (PROPFIND, then GET each)."""
        body = (
            b'<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop><d:getetag/>'
            b"</d:prop></d:propfind>"
        )
        status, _, answer = http(
            self.calendar.url, "PROPFIND", body, {"Depth": "1", "Content-Type": "application/xml"}
        )
        assert status == 207, answer[:200]
        hrefs = re.findall(r"<(?:\w+:)?href>([^<]+\.ics)</(?:\w+:)?href>", answer.decode())
        out: dict[str, str] = {}
        for href in sorted(set(hrefs)):
            status, _, text = http(self.calendar.base_url + href, "GET")
            if status == 200:
                out[href] = text.decode()
        self.texts = out
        return out

    def listing(self) -> list[Key]:
        out: list[Key] = []
        for text in self.load().values():
            for vevent in icalendar.Calendar.from_ical(text).walk("VEVENT"):
                start = vevent.decoded("DTSTART").astimezone(UTC)
                end = vevent.decoded("DTEND").astimezone(UTC)
                out.append((str(vevent.get("SUMMARY", "")), start, end))
        return out

    def find(self, n: int) -> str | None:
        """The href of logical event ``n`` in this calendar."""
        for href, text in self.load().items():
            for vevent in icalendar.Calendar.from_ical(text).walk("VEVENT"):
                if number_of(str(vevent.get("SUMMARY", ""))) == n:
                    return href
        return None

    def create(self, ev: Logical, rng: random.Random) -> None:
        start, end = _slot(rng)
        vevent = icalendar.Event()
        vevent.add("UID", f"h-{ev.n}-{rng.randrange(10**9)}@client.example")
        vevent.add("DTSTAMP", datetime(2025, 1, 1, tzinfo=UTC))
        vevent.add("DTSTART", start)
        vevent.add("DTEND", end)
        vevent.add("SUMMARY", ev.title)
        if rng.random() < 0.5:
            vevent.add("ORGANIZER", f"mailto:{EMAIL[self.user]}", parameters={"CN": self.user[2:]})
        self._attendees(vevent, rng)
        if rng.random() < 0.25:
            vevent.add("CLASS", rng.choice(("PRIVATE", "CONFIDENTIAL")))
        if rng.random() < 0.25:
            vevent.add("TRANSP", "TRANSPARENT")
        if rng.random() < 0.3:
            alarm = icalendar.Alarm()
            alarm.add("ACTION", "DISPLAY")
            alarm.add("DESCRIPTION", "reminder")
            alarm.add("TRIGGER", timedelta(minutes=-rng.choice((10, 15, 30))))
            vevent.add_component(alarm)
        self._put(f"{self.calendar.path}h{ev.n}.ics", _wrap(vevent))

    def _attendees(self, vevent: icalendar.Event, rng: random.Random) -> None:
        if "ATTENDEE" in vevent:
            del vevent["ATTENDEE"]
        for who in (ALICE, BOB, CAROL):
            if who != self.user and rng.random() < 0.4:
                partstat = rng.choice(("NEEDS-ACTION", "ACCEPTED", "TENTATIVE"))
                vevent.add(
                    "ATTENDEE",
                    f"mailto:{EMAIL[who]}",
                    parameters={"CN": who[2:].capitalize(), "PARTSTAT": partstat, "RSVP": "TRUE"},
                )
        if rng.random() < 0.25:
            vevent.add("ATTENDEE", f"mailto:{EXTERNAL}", parameters={"PARTSTAT": "NEEDS-ACTION"})

    def edit(self, href: str, ev: Logical, rng: random.Random, what: str | None = None) -> str:
        """Edit title, time or attendees of the item at ``href`` (always a real change);
        says what."""
        text = self.load()[href]
        cal = icalendar.Calendar.from_ical(text)
        vevent = next(iter(cal.walk("VEVENT")))
        what = what or rng.choice(("title", "time", "attendees"))
        before = _people(vevent)
        if what == "attendees":
            self._attendees(vevent, rng)
            what = "attendees" if _people(vevent) != before else "title"
        if what == "time":
            start, end = _slot(rng)
            for name, value in (("DTSTART", start), ("DTEND", end)):
                del vevent[name]
                vevent.add(name, value)
        elif what == "title":
            ev.version += 1
            vevent["SUMMARY"] = icalendar.vText(ev.title)
        if "SEQUENCE" in vevent:
            vevent["SEQUENCE"] = int(vevent["SEQUENCE"]) + 1
        self._put(href, cal.to_ical().decode())
        return what

    def delete(self, href: str) -> None:
        status, _, body = http(self.calendar.base_url + quote(href), "DELETE")
        assert status in (200, 204), (status, body[:200])

    def _put(self, href: str, text: str) -> None:
        headers = {"Content-Type": "text/calendar; charset=utf-8"}
        status, _, body = http(self.calendar.base_url + quote(href), "PUT", text.encode(), headers)
        assert status in (200, 201, 204), (status, body[:300])


def _people(vevent: icalendar.Event) -> list[str]:
    found = vevent.get("ATTENDEE") or []
    return sorted(str(a) for a in (found if isinstance(found, list) else [found]))


def _wrap(vevent: icalendar.Event) -> str:
    cal = icalendar.Calendar()
    cal.add("PRODID", "-//harness//history//EN")
    cal.add("VERSION", "2.0")
    cal.add_component(vevent)
    return cal.to_ical().decode()
