"""``DingTalkSide``: one user's DingTalk primary calendar as a :class:`CalendarSide`.

Reading
    ``changes(None)`` lists the calendar in full: ListEvents (``showDeleted=true``) over
    ``past_days`` before now to ``window_days`` after now, cut into windows of at most one
    year as the API requires (defaults: 183 + 365 days, i.e. two calls, plus paging), and
    keeps the ``syncToken`` of the *first* window, so nothing changed while the later
    windows were read can be missed. Events starting outside that range are not listed.
    ``changes(token)`` is one ListEvents with the ``syncToken`` (plus paging); a stale
    token raises ``SyncTokenInvalid`` for the caller to re-list. Cancelled items become
    deleted ids. Every recurring series touched is re-read whole (master plus its
    materialised exceptions, one ListEvents by ``seriesMasterId``) so a series translates
    the same however it was reached; items listed with the 100-attendee cap are completed
    with ListAttendees. Nothing changed → exactly one request.
    ``Remote.etag`` is the event's ``updateTime`` (DingTalk has no etags).

Writing
    ``create`` sends :func:`event_to_dingtalk` (a full body). ``update`` reads DingTalk's
    current copy (one GetEvent, or the series' ListEvents) and sends :func:`patch_body`:
    only the mapped keys whose value differs, so what syncd does not map (categories,
    rich text, meeting rooms, cards, ...) is never cleared; nothing to change, no PUT.
    Then the series' exceptions (see ``_overrides``). ``Written.event`` is what DingTalk
    answered, translated back — for a series the series re-read — so its fingerprint equals
    what ``changes`` reports next. ``update`` raises ``EtagMismatch`` when an ``etag`` is
    given and the ``updateTime`` read moved; ``delete`` with an ``etag`` GETs first.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from syncd.adapters.dingtalk import _series
from syncd.adapters.dingtalk._overrides import apply_overrides
from syncd.adapters.dingtalk._series import Grouped, Item
from syncd.adapters.dingtalk.client import DingTalkClient
from syncd.errors import BadResponse, EtagMismatch, NotFound, SourceError, TranslationError
from syncd.model import Changes, Event, Remote, Side
from syncd.sync.ports import Written
from syncd.translate import (
    Context,
    as_dingtalk_keeps,
    dingtalk_warnings,
    editable_in_dingtalk,
    event_from_dingtalk,
    event_to_dingtalk,
    is_empty_patch,
    patch_body,
    user_response,
)

log = structlog.get_logger(__name__)

LIST_ATTENDEE_CAP = 100  # ListEvents (and write answers) carry at most this many attendees
Series = tuple[Item | None, list[Item]]


class DingTalkSide:
    """The bound user's DingTalk ``primary`` calendar, read and written as canonical events."""

    side = Side.DINGTALK

    def __init__(
        self,
        client: DingTalkClient,
        user: str,
        ctx: Context,
        *,
        window_days: int = 365,
        past_days: int = 183,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._client = client
        self._user = user
        self._ctx = ctx
        self._ahead = timedelta(days=window_days)
        self._behind = timedelta(days=past_days)
        self._now = now

    # --- reading -------------------------------------------------------------------------

    async def changes(self, cursor: str | None) -> Changes:
        """Full listing when ``cursor`` is None, else the delta since that syncToken."""
        if cursor is None:
            return await self._full()
        result = await self._client.list_events(self._user, sync_token=cursor, show_deleted=True)
        grouped = _series.group(result.events)
        items, deleted = await self._build(grouped)
        token = result.sync_token
        if token is None:
            log.warning("dingtalk_delta_no_sync_token", user=self._user)
            token = cursor
        return Changes(tuple(items), tuple(deleted), token, complete=False)

    async def _full(self) -> Changes:
        """Every window's pages, each page's single events translated as it arrives (peak
        memory: the raw JSON of one page, not of the whole calendar, beside the events);
        series and cancellations are grouped and settled at the end, as in a delta."""
        now = self._now()
        grouped, singles, token = Grouped(), dict[str, Remote](), None
        window = (now - self._behind, now + self._ahead)
        for low, high in _series.windows(*window):
            last = None
            pages = self._client.event_pages(
                self._user, time_min=low, time_max=high, show_deleted=True
            )
            async for last in pages:
                _file(last.items, grouped, singles)
                await self._translate_singles(grouped, singles)
            token = token or (last.sync_token if last is not None else None)
        if token is None:
            raise BadResponse("DingTalk ListEvents returned no syncToken on its last page")
        items, deleted = await self._build(grouped, translated=singles.keys())
        items = [*singles.values(), *items]
        log.info("dingtalk_full_list", user=self._user, items=len(items), deleted=len(deleted))
        return Changes(tuple(items), tuple(deleted), token, complete=True, window=window)

    async def _translate_singles(self, grouped: Grouped, done: dict[str, Remote]) -> None:
        """Translate the single events (no series, not cancelled) filed so far into ``done``
        and drop their raw items from ``grouped``."""
        for item_id in [i for i, top in grouped.tops.items() if _series.is_single(top)]:
            done[item_id] = await self._remote(grouped.tops.pop(item_id), [])

    async def _build(
        self, grouped: Grouped, translated: Collection[str] = ()
    ) -> tuple[list[Remote], list[str]]:
        """Translate ``grouped``: tops, series (each re-read whole) and cancellations.
        ``translated``: tops already translated and taken out of ``grouped`` (not orphans)."""
        items: list[Remote] = []
        deleted: list[str] = []
        series_ids = grouped.orphans() - set(translated)
        for item_id, top in grouped.tops.items():
            if _series.is_cancelled(top):
                deleted.append(item_id)
            elif _series.is_series(top):
                series_ids.add(item_id)
            else:
                items.append(await self._remote(top, []))
        for series_id in sorted(series_ids - set(deleted)):
            master, instances = await self._load_series(series_id)
            if master is None:  # the master is not visible: report instances on their own
                for inst in grouped.instances.get(series_id, {}).values():
                    if _series.is_cancelled(inst):
                        deleted.append(str(inst["id"]))
                    else:
                        items.append(await self._remote(inst, []))
            elif _series.is_cancelled(master):
                deleted.append(series_id)
            else:
                items.append(await self._remote(master, instances))
        return items, deleted

    async def _load_series(self, series_id: str) -> Series:
        """A series' master and all its materialised instances (one ListEvents)."""
        result = await self._client.list_events(
            self._user, series_master_id=series_id, show_deleted=True
        )
        grouped = _series.group(result.events)
        instances = list(grouped.instances.get(series_id, {}).values())
        return grouped.tops.get(series_id), instances

    async def _complete(self, item: Item) -> Item:
        """The item with every attendee, when the listing's cap may have cut some off."""
        if len(item.get("attendees") or ()) < LIST_ATTENDEE_CAP:
            return item
        people = await self._client.list_attendees(self._user, str(item["id"]))
        return {**item, "attendees": people}

    async def _remote(self, top: Item, instances: Iterable[Item]) -> Remote:
        top = await self._complete(top)
        done = [await self._complete(i) for i in instances]
        item_id = str(top["id"])
        etag = top.get("updateTime")
        try:
            event = event_from_dingtalk(top, done, self._ctx)
        except (TranslationError, ValueError, KeyError, TypeError) as exc:
            log.warning("dingtalk_untranslatable", user=self._user, event_id=item_id,
                        error=str(exc), kind=type(exc).__name__)  # fmt: skip
            return Remote(item_id, None, None, error=f"{type(exc).__name__}: {exc}")
        return Remote(item_id, str(etag) if etag else None, event)

    # --- writing -------------------------------------------------------------------------

    async def create(self, event: Event) -> Written:
        """Create the event (and its exceptions) in the user's primary calendar."""
        self._warn(event, "create")
        created = await self._client.create_event(self._user, event_to_dingtalk(event, self._ctx))
        event_id = created.get("id")
        if not isinstance(event_id, str) or not event_id:
            raise BadResponse("DingTalk CreateEvent answer lacks an id")
        try:
            return await self._written(event_id, created, event, None)
        except SourceError:
            # Exceptions or the read-back failed: undo the create (best effort) so that the
            # caller's retry cannot leave a duplicate series behind.
            await self._rollback(event_id)
            raise

    async def _rollback(self, event_id: str) -> None:
        try:
            await self._client.delete_event(self._user, event_id)
        except SourceError as exc:
            log.error("dingtalk_create_rollback_failed", event_id=event_id, error=str(exc))
        else:
            log.warning("dingtalk_create_rolled_back", event_id=event_id)

    async def update(self, item_id: str, event: Event, etag: str | None) -> Written:
        """Patch the fields that changed; ``etag`` is an ``updateTime`` to check.

        DingTalk's current copy is read first (GetEvent, or the series' ListEvents), then
        :func:`patch_body` sends only the mapped keys whose value differs from it, so fields
        syncd does not read are never cleared; a body with nothing to change is not sent.
        When the bound user only attends the event (someone else organizes it), DingTalk
        lets them change nothing but their own answer: that is sent through RespondEvent,
        and ``Written.event`` is what DingTalk holds, so the rest of the edit stays on the
        CalDAV side (logged as ``dingtalk_update_attendee_only``).
        """
        self._warn(event, "update")
        if not editable_in_dingtalk(event, self._ctx):
            return await self._answer_only(item_id, event)
        current = await self._current(item_id, event)
        raw = current[0]
        assert raw is not None
        if etag is not None and raw.get("updateTime") != etag:
            raise _changed(item_id, etag, raw.get("updateTime"))
        before = self._translate_quietly(current)
        body = event_to_dingtalk(event, self._ctx)
        if before is not None:
            body = patch_body(before, event, self._ctx, held=raw)
        if is_empty_patch(body):
            log.info("dingtalk_update_nothing_to_send", event_id=item_id, user=self._user)
            patched = raw
        else:
            patched = _with_rooms(await self._client.patch_event(self._user, item_id, body), raw)
        series_before = before if event.recurrence is not None else None
        return await self._written(item_id, patched, event, series_before)

    async def _current(self, item_id: str, event: Event) -> Series:
        """What DingTalk holds now: the event (GetEvent), or a series with its instances."""
        if event.recurrence is None:
            return await self._complete(await self._client.get_event(self._user, item_id)), []
        master, instances = await self._load_series(item_id)
        if master is None:
            raise NotFound(
                f"DingTalk series {item_id} is gone", code="instanceNotExist", href=item_id
            )
        return await self._complete(master), instances

    async def delete(self, item_id: str, etag: str | None) -> None:
        """Delete the event (a whole series when ``item_id`` is a master); gone is fine."""
        if etag is not None:
            try:
                await self._check_etag(item_id, etag, None)
            except NotFound:
                return
        await self._client.delete_event(self._user, item_id)

    async def _check_etag(self, item_id: str, etag: str, known: Item | None) -> None:
        current = known or await self._client.get_event(self._user, item_id)
        if current.get("updateTime") != etag:
            raise _changed(item_id, etag, current.get("updateTime"))

    async def _answer_only(self, item_id: str, event: Event) -> Written:
        """The bound user attends someone else's event: only their answer goes to DingTalk."""
        current = await self._client.get_event(self._user, item_id)
        answer = user_response(event, self._ctx)
        mine: Mapping[str, Any] = next(
            (a for a in current.get("attendees") or [] if a.get("self")), {}
        )
        if answer is not None and mine.get("responseStatus") != answer:
            await self._client.respond(self._user, item_id, answer)
            current = await self._client.get_event(self._user, item_id)
        log.warning(
            "dingtalk_update_attendee_only", event_id=item_id, user=self._user, answer=answer
        )
        return await self._read_back(item_id, current, event)

    async def _written(
        self, event_id: str, answer: Mapping[str, Any], event: Event, before: Event | None
    ) -> Written:
        """Apply a series' exceptions, then read back what DingTalk now holds."""
        if event.recurrence is not None or _series.is_series(answer):
            await apply_overrides(self._client, self._user, self._ctx, event_id, event, before)
        return await self._read_back(event_id, answer, event)

    async def _read_back(self, event_id: str, answer: Mapping[str, Any], event: Event) -> Written:
        """What DingTalk holds now, as ``Written`` (a series is re-read with its exceptions)."""
        if event.recurrence is not None or _series.is_series(answer):
            master, instances = await self._load_series(event_id)
            if master is None:
                raise BadResponse(f"DingTalk series {event_id} vanished right after writing")
            remote = await self._remote(master, instances)
        else:
            remote = await self._remote(dict(answer), [])
        if remote.event is None:  # a translation bug: predict instead of failing the write
            log.error("dingtalk_readback_untranslatable", event_id=event_id, error=remote.error)
            held = as_dingtalk_keeps(event, self._ctx)
        else:
            held = _with_uid(remote.event, event.uid)
        return Written(event_id, remote.etag, held)

    def _translate_quietly(self, series: Series) -> Event | None:
        master, instances = series
        try:
            return event_from_dingtalk(master or {}, instances, self._ctx)
        except (TranslationError, ValueError, KeyError, TypeError):
            return None

    def _warn(self, event: Event, op: str) -> None:
        for note in dingtalk_warnings(event, self._ctx):
            log.warning("dingtalk_lossy_write", op=op, user=self._user, uid=event.uid, note=note)


def _with_rooms(answer: dict[str, Any], held: Mapping[str, Any]) -> dict[str, Any]:
    """A PatchEvent answer with the booked rooms the event held (the answer omits their
    names, a patch cannot change them, and reading the location appends them)."""
    if "meetingRooms" in answer or not held.get("meetingRooms"):
        return answer
    return {**answer, "meetingRooms": held["meetingRooms"]}


def _with_uid(event: Event, uid: str) -> Event:
    """The event (and its overrides) under the caller's uid; uids are not fingerprinted."""
    overrides = tuple(dataclasses.replace(o, uid=uid) for o in event.overrides)
    return dataclasses.replace(event, uid=uid, overrides=overrides)


def _changed(item_id: str, etag: str, now: Any) -> EtagMismatch:
    """The error of a write conditional on ``updateTime`` ``etag`` that no longer holds."""
    current = str(now) if now is not None else None
    return EtagMismatch(
        f"DingTalk event {item_id} changed since {etag} (now {now})",
        href=item_id,
        etag=etag,
        current_etag=current,
    )


def _file(items: Iterable[Item], grouped: Grouped, singles: dict[str, Remote]) -> None:
    """Group a page's items; a top item replaces an earlier copy of its id (translated or
    not), as a later duplicate does in :class:`Grouped`."""
    for item in items:
        if _series.series_of(item) is None:
            singles.pop(str(item.get("id") or ""), None)
        grouped.add(item)
