"""An ICS feed as a read-only :class:`~syncd.sync.ports.CalendarSide`.

Each :meth:`IcsSide.changes` is one conditional GET. A 304 is an empty incremental change
set; a 200 is a complete listing, so an event missing from a *healthy* feed reads as
deleted. A feed that fails (HTTP error, timeout, empty body, HTML page, truncated
VCALENDAR) raises, so the planner never sees it and nothing is deleted; a valid feed that
lists no events at all while events are mapped is held by the planner's "source emptied"
rule. Item ids and uids come from :mod:`.identity`; items are translated by
:mod:`syncd.translate.feed`, the same translation as CalDAV. The cursor is a
:class:`~syncd.adapters.ics.identity.FeedState` (validators, mode, items).

Writes raise ``PermissionDenied``: an ICS binding is one-way into DingTalk
(``direction: to_dingtalk``, enforced by configuration), so the planner never asks.
"""

from __future__ import annotations

import dataclasses
import hashlib

import structlog

from syncd.adapters.ics.client import IcsClient
from syncd.adapters.ics.identity import (
    FeedState,
    Identity,
    Keyed,
    assign,
    choose_mode,
    state_of,
)
from syncd.errors import PermissionDenied, SyncdError
from syncd.model import BindingRef, Changes, Event, Remote, Side
from syncd.observability import ICS_FETCHES
from syncd.sync.ports import Written
from syncd.translate import Context
from syncd.translate.feed import split_feed

log = structlog.get_logger(__name__)


class IcsSide:
    """One ICS feed as the non-DingTalk side of a binding (it takes the CalDAV slot)."""

    side = Side.CALDAV
    writable = False

    def __init__(
        self,
        client: IcsClient,
        ctx: Context,
        identity: Identity = "auto",
        ref: BindingRef | None = None,
    ) -> None:
        self.client = client
        self.ctx = ctx
        self.identity: Identity = identity
        self.ref = ref or BindingRef("-", "-")  # metric labels

    async def changes(self, cursor: str | None) -> Changes:
        """Since ``cursor``: nothing when the feed is unchanged, else the whole feed.

        Counts each fetch in ``syncd_ics_fetches_total`` (not_modified, fetched, failed).
        """
        try:
            found = await self._changes(cursor)
        except SyncdError:
            self._count("failed")
            raise
        self._count("fetched" if found.complete else "not_modified")
        return found

    def _count(self, outcome: str) -> None:
        ICS_FETCHES.labels(self.ref.tenant, self.ref.binding, outcome).inc()

    async def _changes(self, cursor: str | None) -> Changes:
        previous = FeedState.loads(cursor) if cursor is not None else None
        fetched = await self.client.fetch(
            previous.etag if previous else None, previous.last_modified if previous else None
        )
        if fetched.text is None:
            assert cursor is not None  # no validators were sent without a cursor
            return Changes((), (), cursor, complete=False)
        items = split_feed(fetched.text, self.ctx)
        mode = choose_mode(self.identity, items, previous)
        if previous is not None and previous.mode != mode:
            log.warning("ics_identity_switched", host=self.client.host, mode=mode)
        keyed = assign(items, mode, previous)
        state = state_of(keyed, mode, fetched.etag, fetched.last_modified)
        remotes = tuple(_remote(k) for k in keyed)
        broken = sum(1 for r in remotes if r.event is None)
        log.info("ics_listed", host=self.client.host, items=len(remotes), broken=broken, mode=mode)
        return Changes(remotes, (), state.dumps(), complete=True)

    async def create(self, event: Event) -> Written:
        raise _read_only("create", event.uid)

    async def update(self, item_id: str, event: Event, etag: str | None) -> Written:
        raise _read_only("update", item_id)

    async def delete(self, item_id: str, etag: str | None) -> None:
        raise _read_only("delete", item_id)


def _remote(keyed: Keyed) -> Remote:
    """The item as the planner sees it: events carry the uid identity gave them."""
    item = keyed.item
    if item.event is None:
        return Remote(keyed.id, None, None, error=item.error)
    event = item.event
    if event.uid != keyed.uid:
        event = _with_uid(event, keyed.uid)
    return Remote(keyed.id, _etag(keyed), event)


def _etag(keyed: Keyed) -> str:
    """A stand-in etag: the content key (it changes exactly when what syncd maps does)."""
    return hashlib.sha256(keyed.key.encode()).hexdigest()[:16]


def _with_uid(event: Event, uid: str) -> Event:
    overrides = tuple(dataclasses.replace(o, uid=uid) for o in event.overrides)
    return dataclasses.replace(event, uid=uid, overrides=overrides)


def _read_only(what: str, item: str) -> PermissionDenied:
    return PermissionDenied(f"an ICS feed is read-only: cannot {what} {item}")
