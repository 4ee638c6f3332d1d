"""A recording in-memory :class:`~syncd.sync.ports.CalendarSide` for tests (not a mock).

:class:`MemorySide` behaves like a calendar server: ids and etags it assigns itself (a
new etag on every write), a change log behind its cursors (a cursor older than the log's
horizon, or one it never issued, is stale and raises ``SyncTokenInvalid``), conditional
writes (``EtagMismatch``, ``NotFound``, ``AlreadyExists``), optional DingTalk-like traits
(ids instead of hrefs, no UIDs kept: an item reads back with a UID derived from its id,
while ``Written`` keeps the caller's; tombstones: a full listing names deleted items too),
a ``normalize`` hook for servers that rewrite or cannot hold what they are sent, injected
failures, and counters of every call. It runs the same contract suite as the real sides
(``tests/contract/test_calendar_side.py``).

Edits made "by the user" (``user_*`` methods) go through the same storage path but are
not counted as syncd's writes. ``between`` holds user edits waiting for syncd's next write
(on either side, when both share the list): they land after a run read both sides and
before it writes, the interleaving in which a plan made from stale reads must lose its
conditional write (``EtagMismatch``/``NotFound``) instead of overwriting or deleting the edit.

The second half holds one-line builders for the planner's table tests.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from syncd.errors import AlreadyExists, EtagMismatch, NotFound, SyncdError, SyncTokenInvalid
from syncd.model import Attendee, BindingRef, Changes, Event, PairState, Recurrence, Remote, Side
from syncd.reconcile import Report, reconcile
from syncd.store.memory import MemoryStore
from syncd.sync import Plan, Policy, make_plan
from syncd.sync.ports import Written

Normalize = Callable[[Event], Event]


class Clock:
    """A shared logical clock: each tick is one second after the last (for ``updated``)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2025, 1, 1, tzinfo=UTC)

    def tick(self) -> datetime:
        self._now += timedelta(seconds=1)
        return self._now


def drop_description(event: Event) -> Event:
    """What a DingTalk that cannot keep descriptions (a field it does not map) holds."""
    return dataclasses.replace(event, description="")


def dingtalk_uid(item_id: str) -> str:
    """The UID a DingTalk-like side reports for an item (it cannot store one)."""
    return f"dingtalk-{item_id}@syncd.test"


@dataclass
class _Item:
    etag: str
    event: Event | None  # None: present but untranslatable
    error: str | None = None


@dataclass
class MemorySide:
    """One calendar in memory implementing the CalendarSide port faithfully.

    ``dingtalk_like`` makes it behave like DingTalk: ids ``dt-N``, UIDs not kept (an item
    reads back with :func:`dingtalk_uid` of its id; ``Written.event`` keeps the caller's
    UID, as DingTalkSide's does), deleted ids named by full listings too. Otherwise it
    behaves like CalDAV: hrefs ``<uid>.ics``, UIDs kept. Either way a delta lists deleted
    ids in ``Changes.deleted``. ``normalize`` is applied to everything stored (by syncd or
    the user). ``etag_on_write=False`` models servers that answer a write without an ETag.
    """

    side: Side
    dingtalk_like: bool | None = None
    normalize: Normalize | None = None
    etag_on_write: bool = True  # False: writes answer without an ETag (Cyrus, when it
    # rewrites what it stores)
    clock: Clock = field(default_factory=Clock)
    calls: Counter[str] = field(default_factory=Counter)
    items: dict[str, _Item] = field(default_factory=dict)
    _log: list[tuple[int, str]] = field(default_factory=list)
    _tombstones: set[str] = field(default_factory=set)
    _seq: int = 0
    _horizon: int = 0
    _epoch: int = 0
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _failures: list[tuple[str, SyncdError]] = field(default_factory=list)
    between: list[Callable[[], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.dingtalk_like is None:
            self.dingtalk_like = self.side is Side.DINGTALK

    # --- the port -----------------------------------------------------------------------

    async def changes(self, cursor: str | None) -> Changes:
        """Everything since ``cursor`` (a full listing when None)."""
        self.calls["changes"] += 1
        self._maybe_fail("changes", "")
        if cursor is None:
            items = tuple(self._remote(i) for i in sorted(self.items))
            gone = tuple(sorted(self._tombstones)) if self.dingtalk_like else ()
            return Changes(items, gone, self._cursor(), complete=True)
        since = self._parse(cursor)
        touched = sorted({item_id for seq, item_id in self._log if seq > since})
        present = tuple(self._remote(i) for i in touched if i in self.items)
        gone = tuple(i for i in touched if i not in self.items)
        return Changes(present, gone, self._cursor(), complete=False)

    async def create(self, event: Event) -> Written:
        """Create a new item; CalDAV-like sides refuse a taken href."""
        self.calls["create"] += 1
        self.land()
        item_id = self._new_id(event)
        self._maybe_fail("create", item_id)
        if item_id in self.items:
            raise AlreadyExists(f"{item_id} exists")
        return self._store(item_id, event)

    async def update(self, item_id: str, event: Event, etag: str | None) -> Written:
        """Replace an item if it still has ``etag``."""
        self.calls["update"] += 1
        self.land()
        self._maybe_fail("update", item_id)
        self._check(item_id, etag)
        return self._store(item_id, event)

    async def delete(self, item_id: str, etag: str | None) -> None:
        """Delete an item if it still has ``etag``; deleting a missing item is fine."""
        self.calls["delete"] += 1
        self.land()
        self._maybe_fail("delete", item_id)
        if item_id not in self.items:
            return
        self._check(item_id, etag)
        self._remove(item_id)

    # --- what tests look at and do ------------------------------------------------------

    def land(self) -> None:
        """Apply the user edits waiting in ``between`` (in order), as syncd writes next."""
        while self.between:
            self.between.pop(0)()

    @property
    def writes(self) -> int:
        """Writes syncd made (create, update, delete)."""
        return self.calls["create"] + self.calls["update"] + self.calls["delete"]

    def events(self) -> dict[str, Event]:
        """Every translatable item, by id."""
        return {i: it.event for i, it in self.items.items() if it.event is not None}

    def fail(self, op: str, error: SyncdError, item_id: str = "", times: int = 1) -> None:
        """Make the next ``times`` calls of ``op`` (on ``item_id``, if given) raise ``error``."""
        self._failures += [(f"{op}:{item_id}", error)] * times

    @property
    def pending_failures(self) -> int:
        """Injected failures not yet raised."""
        return len(self._failures)

    def user_create(self, event: Event) -> str:
        """Create an item as the calendar's user would; returns its id."""
        item_id = self._new_id(event)
        self._store(item_id, event)
        return item_id

    def user_update(self, item_id: str, **changes: object) -> None:
        """Edit fields of an item as the user would."""
        current = self.items[item_id].event
        assert current is not None
        self._store(item_id, dataclasses.replace(current, **changes))  # type: ignore[arg-type]

    def user_put(self, item_id: str, event: Event) -> None:
        """Replace an item with ``event`` as the user would."""
        self._store(item_id, event)

    def user_delete(self, item_id: str) -> None:
        """Delete an item as the user would."""
        self._remove(item_id)

    def user_move(self, item_id: str, new_id: str) -> None:
        """Rename an item's href (same UID, same content, new etag)."""
        item = self.items[item_id]
        self._remove(item_id)
        self._touch(new_id, _Item(self._etag(), item.event, item.error))

    def user_touch(self, item_id: str) -> None:
        """A server-side rewrite: new etag, same canonical content."""
        item = self.items[item_id]
        self._touch(item_id, _Item(self._etag(), item.event, item.error))

    def user_break(self, item_id: str, error: str = "unparseable") -> None:
        """Make an item untranslatable (it stays present)."""
        self._touch(item_id, _Item(self._etag(), None, error))

    def expire_cursors(self) -> None:
        """Every cursor handed out so far becomes stale (``SyncTokenInvalid``)."""
        self._epoch += 1
        self._horizon = self._seq

    # --- internals ----------------------------------------------------------------------

    def _maybe_fail(self, op: str, item_id: str) -> None:
        for key in (f"{op}:{item_id}", f"{op}:"):
            for n, (wanted, error) in enumerate(self._failures):
                if wanted == key:
                    del self._failures[n]
                    raise error

    def _new_id(self, event: Event) -> str:
        return f"dt-{next(self._ids)}" if self.dingtalk_like else f"{event.uid}.ics"

    def _etag(self) -> str:
        return f'"{self.side}-{self._seq + 1}"'

    def _check(self, item_id: str, etag: str | None) -> None:
        if item_id not in self.items:
            raise NotFound(f"{item_id} is gone")
        if etag is not None and self.items[item_id].etag != etag:
            current = self.items[item_id].etag
            raise EtagMismatch(
                f"{item_id} has {current}, not {etag}",
                href=item_id,
                etag=etag,
                current_etag=current,
            )

    def _store(self, item_id: str, event: Event) -> Written:
        stored = dataclasses.replace(event, updated=self.clock.tick())
        if self.dingtalk_like:
            stored = dataclasses.replace(stored, uid=dingtalk_uid(item_id))
        if self.normalize is not None:
            stored = self.normalize(stored)
        item = _Item(self._etag(), stored)
        self._touch(item_id, item)
        held = _with_uid(stored, event.uid) if self.dingtalk_like else stored
        return Written(item_id, item.etag if self.etag_on_write else None, held)

    def _touch(self, item_id: str, item: _Item) -> None:
        self._seq += 1
        self.items[item_id] = item
        self._tombstones.discard(item_id)
        self._log.append((self._seq, item_id))

    def _remove(self, item_id: str) -> None:
        del self.items[item_id]
        self._tombstones.add(item_id)
        self._seq += 1
        self._log.append((self._seq, item_id))

    def _remote(self, item_id: str) -> Remote:
        item = self.items[item_id]
        return Remote(item_id, item.etag, item.event, item.error)

    def _cursor(self) -> str:
        return f"{self.side}:{self._epoch}:{self._seq}"

    def _parse(self, cursor: str) -> int:
        """The log position of a cursor this side issued and has not expired."""
        side, _, rest = cursor.partition(":")
        epoch, _, seq = rest.partition(":")
        issued = side == str(self.side) and epoch.isdigit() and seq.isdigit()
        if not issued or int(epoch) != self._epoch or int(seq) < self._horizon:
            raise SyncTokenInvalid(f"stale or unknown cursor {cursor!r}")
        return int(seq)


def _with_uid(event: Event, uid: str) -> Event:
    """The event (and its overrides) under the caller's uid, as DingTalkSide writes answer."""
    overrides = tuple(dataclasses.replace(o, uid=uid) for o in event.overrides)
    return dataclasses.replace(event, uid=uid, overrides=overrides)


# --- a binding to reconcile: two sides and a store ------------------------------------

REF = BindingRef("acme", "alice-work")


@dataclasses.dataclass
class World:
    """Two sides and a store, plus a one-call reconcile."""

    dingtalk: MemorySide
    caldav: MemorySide
    store: MemoryStore

    async def sync(
        self,
        policy: Policy | None = None,
        *,
        full: bool = False,
        dry_run: bool = False,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> Report:
        """One reconcile of the binding ``REF``."""
        return await reconcile(
            REF,
            self.dingtalk,
            self.caldav,
            self.store,
            policy or Policy(),
            full=full,
            dry_run=dry_run,
            on_progress=on_progress,
        )

    def writes(self) -> int:
        """Writes syncd made on both sides."""
        return self.dingtalk.writes + self.caldav.writes

    def reset_counts(self) -> None:
        """Zero both sides' call counters."""
        self.dingtalk.calls.clear()
        self.caldav.calls.clear()


def new_world() -> World:
    """Empty DingTalk-like and CalDAV-like sides sharing one clock, and an empty store."""
    clock, between = Clock(), []
    return World(
        MemorySide(Side.DINGTALK, clock=clock, between=between),
        MemorySide(Side.CALDAV, clock=clock, between=between),
        MemoryStore(),
    )


def summaries(side: MemorySide) -> list[str]:
    """Sorted summaries of a side's events."""
    return sorted(e.summary for e in side.events().values())


# --- builders for planner table tests ---------------------------------------------------

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2025, 3, 1, 12, tzinfo=UTC)
NOTHING = Changes((), (), "c1", complete=False)


def ev(uid: str = "u1", summary: str = "Standup", **kw: object) -> Event:
    """A timed event on 2025-03-03 10:00-10:30 Shanghai time."""
    start = datetime(2025, 3, 3, 10, tzinfo=SH)
    end = datetime(2025, 3, 3, 10, 30, tzinfo=SH)
    return dataclasses.replace(Event(uid, summary, start, end), **kw)  # type: ignore[arg-type]


def at(hour: int) -> datetime:
    """An ``updated`` stamp on 2025-03-01 at ``hour`` UTC."""
    return datetime(2025, 3, 1, hour, tzinfo=UTC)


def r(item_id: str, event: Event | None, etag: str | None = None, error: str = "") -> Remote:
    """A remote item."""
    return Remote(item_id, etag, event, error or None)


def inc(*items: Remote, deleted: tuple[str, ...] = ()) -> Changes:
    """An incremental listing."""
    return Changes(items, deleted, "c2", complete=False)


def full(*items: Remote) -> Changes:
    """A complete listing."""
    return Changes(items, (), "c2", complete=True)


def paired(
    event: Event,
    *,
    dt: str = "dt-1",
    href: str = "u1.ics",
    etag: str | None = '"e1"',
    caldav_event: Event | None = None,
) -> PairState:
    """A pair in agreement on ``event`` (CalDAV may hold ``caldav_event``, e.g. normalized)."""
    c = caldav_event or event
    return PairState(event.uid, dt, href, event.fingerprint(), c.fingerprint(), etag, event)


def pairs(*states: PairState) -> dict[str, PairState]:
    """Pairs keyed by uid."""
    return {p.uid: p for p in states}


def run(
    states: dict[str, PairState],
    dingtalk: Changes = NOTHING,
    caldav: Changes = NOTHING,
    policy: Policy | None = None,
) -> Plan:
    """The planner with a fixed clock."""
    return make_plan(states, dingtalk, caldav, policy or Policy(), now=NOW)


def kinds(plan: Plan) -> list[str]:
    """Action class names, in plan order."""
    return [type(a).__name__ for a in plan]


def sides(plan: Plan) -> list[tuple[str, Side | None]]:
    """(action, target side) in plan order."""
    return [(type(a).__name__, getattr(a, "target", None)) for a in plan]


# --- records the stores keep --------------------------------------------------------------


def rich_event(uid: str = "u1", summary: str = "Weekly sync") -> Event:
    """An event using every field kind the store must keep (zones, dates, overrides)."""
    override = Event(
        uid=uid,
        summary=f"{summary} (moved)",
        start=datetime(2025, 3, 10, 11, 0, tzinfo=SH),
        end=datetime(2025, 3, 10, 12, 0, tzinfo=SH),
        recurrence_id=datetime(2025, 3, 10, 10, 0, tzinfo=SH),
    )
    return Event(
        uid=uid,
        summary=summary,
        start=datetime(2025, 3, 3, 10, 0, tzinfo=SH),
        end=datetime(2025, 3, 3, 11, 0, tzinfo=SH),
        description="Agenda: 议程",
        location="Room 1",
        organizer="alice@acme.example",
        attendees=(Attendee("bob@acme.example", "Bob", "accepted", optional=True),),
        reminders=(10, 30),
        online_meeting_url="https://meet.example/x",
        recurrence=Recurrence("FREQ=WEEKLY;COUNT=10;BYDAY=MO", (date(2025, 3, 17),)),
        overrides=(override,),
        updated=datetime(2025, 3, 1, 8, 0, tzinfo=UTC),
    )


def stored_pair(i: int) -> PairState:
    """Pair number ``i``, its base a :func:`rich_event`."""
    return PairState(
        f"uid-{i}", f"dt-{i}", f"/cal/{i}.ics", "fp-a", "fp-b", f'"{i}"', rich_event(f"uid-{i}")
    )
