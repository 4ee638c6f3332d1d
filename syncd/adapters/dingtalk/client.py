"""Async DingTalk calendar client used by the workers.

Every operation builds a request with :mod:`._wire` and sends it through the single
:meth:`Transport._request` (tokens, ``x-client-token``, retries, error mapping). Listings
are paged to the end here; attendee lists are split into the API's 500-per-call batches,
and an event may never hold more than 5,000 attendees (checked before anything is sent).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from syncd.adapters.dingtalk import _wire as wire
from syncd.adapters.dingtalk._transport import Transport
from syncd.errors import BadResponse, InvalidRequest, NotFound

log = structlog.get_logger(__name__)

ATTENDEE_LIMIT_CODE = "syncd.attendeeLimit"
RESPONSES = frozenset({"needsAction", "accepted", "declined", "tentative"})
_MAX_PAGES = 10_000


@dataclass(frozen=True, slots=True)
class ListResult:
    """All events of a (paged) ListEvents and the ``syncToken`` of its last page.

    ``sync_token`` is None only when the server sent none (listings by series).
    """

    events: list[dict[str, Any]]
    sync_token: str | None


@dataclass(frozen=True, slots=True)
class FailedCallbacks:
    """One answer of the failed-push API: up to 200 entries and whether more remain."""

    items: list[dict[str, Any]]
    has_more: bool


def check_attendee_total(count: int) -> None:
    """Raise ``InvalidRequest`` (code ``syncd.attendeeLimit``) above 5,000 attendees."""
    if count > wire.ATTENDEES_PER_EVENT:
        raise InvalidRequest(
            f"an event may hold at most {wire.ATTENDEES_PER_EVENT} attendees, got {count}",
            code=ATTENDEE_LIMIT_CODE,
        )


def _batches(items: Sequence[Any]) -> list[Sequence[Any]]:
    size = wire.ATTENDEES_PER_CALL
    return [items[i : i + size] for i in range(0, len(items), size)]


class DingTalkClient(Transport):
    """Calendar v1.0 operations for one DingTalk app (``user`` is always a unionId)."""

    async def _pages(
        self, build: Callable[[str | None], wire.Request], key: str
    ) -> tuple[list[dict[str, Any]], wire.Page]:
        items: list[dict[str, Any]] = []
        async for page in self._page_stream(build, key):
            items.extend(page.items)
        return items, page

    async def _page_stream(
        self, build: Callable[[str | None], wire.Request], key: str
    ) -> AsyncIterator[wire.Page]:
        """Each page of a listing as it arrives, following ``nextToken``; the last page is
        the one without a ``nextToken`` (its ``syncToken`` is the listing's)."""
        seen: set[str] = set()
        next_token: str | None = None
        for _ in range(_MAX_PAGES):
            page = wire.decode_page(await self._request(build(next_token)), key)
            yield page
            if page.next_token is None:
                return
            if page.next_token in seen:
                raise BadResponse(f"DingTalk repeated nextToken {page.next_token!r}")
            seen.add(page.next_token)
            next_token = page.next_token
        raise BadResponse(f"DingTalk listing did not end after {_MAX_PAGES} pages")

    async def list_events(
        self,
        user: str,
        *,
        sync_token: str | None = None,
        time_min: datetime | None = None,
        time_max: datetime | None = None,
        show_deleted: bool = True,
        series_master_id: str | None = None,
    ) -> ListResult:
        """Every event of a ListEvents, paged through ``nextToken`` (100 per page)."""

        def build(next_token: str | None) -> wire.Request:
            return wire.list_events(
                user,
                sync_token=sync_token,
                time_min=time_min,
                time_max=time_max,
                show_deleted=show_deleted,
                next_token=next_token,
                series_master_id=series_master_id,
            )

        events, last = await self._pages(build, "events")
        return ListResult(events, last.sync_token)

    def event_pages(
        self, user: str, *, time_min: datetime, time_max: datetime, show_deleted: bool = True
    ) -> AsyncIterator[wire.Page]:
        """The pages of a ListEvents over ``[time_min, time_max)`` as they arrive (100 events
        each), so a caller can translate a page and drop it before the next one is read."""

        def build(next_token: str | None) -> wire.Request:
            return wire.list_events(
                user,
                time_min=time_min,
                time_max=time_max,
                show_deleted=show_deleted,
                next_token=next_token,
            )

        return self._page_stream(build, "events")

    async def get_event(self, user: str, event_id: str) -> dict[str, Any]:
        """One event (up to 500 attendees inline); ``NotFound`` when it is gone."""
        return await self._request(wire.get_event(user, event_id))

    async def create_event(self, user: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Create an event; attendees beyond the first 500 are added in further batches."""
        attendees = list(body.get("attendees") or ())
        check_attendee_total(len(attendees))
        first = {**body, "attendees": attendees[: wire.ATTENDEES_PER_CALL]} if attendees else body
        created = await self._request(wire.create_event(user, first))
        rest = attendees[wire.ATTENDEES_PER_CALL :]
        if rest:
            event_id = _id_of(created)
            await self.add_attendees(user, event_id, rest)
            created = {**created, "attendees": await self.list_attendees(user, event_id)}
        return created

    async def patch_event(
        self, user: str, event_id: str, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        """PUT a partial update; over 500 attendees the list is applied by add/remove batches."""
        attendees = body.get("attendees")
        if attendees is None or len(attendees) <= wire.ATTENDEES_PER_CALL:
            return await self._request(wire.patch_event(user, event_id, body))
        check_attendee_total(len(attendees))
        rest = {k: v for k, v in body.items() if k != "attendees"}
        patched = await self._request(wire.patch_event(user, event_id, rest))
        await self.set_attendees(user, event_id, attendees)
        return {**patched, "attendees": await self.list_attendees(user, event_id)}

    async def delete_event(self, user: str, event_id: str) -> None:
        """Delete an event without notifying anyone; an event already gone is fine."""
        try:
            await self._request(wire.delete_event(user, event_id))
        except NotFound:
            log.info("dingtalk_delete_already_gone", user=user, event_id=event_id)

    async def list_attendees(self, user: str, event_id: str) -> list[dict[str, Any]]:
        """Every attendee of an event (500 per page)."""
        items, _ = await self._pages(
            lambda tok: wire.list_attendees(user, event_id, tok), "attendees"
        )
        return items

    async def add_attendees(
        self, user: str, event_id: str, attendees: Sequence[Mapping[str, Any]]
    ) -> None:
        """Add attendees ``{id, isOptional}`` in batches of 500 (each its own write)."""
        check_attendee_total(len(attendees))
        for batch in _batches(attendees):
            await self._request(wire.add_attendees(user, event_id, batch))

    async def remove_attendees(self, user: str, event_id: str, attendee_ids: Sequence[str]) -> None:
        """Remove attendees by unionId in batches of 500."""
        for batch in _batches(attendee_ids):
            await self._request(wire.remove_attendees(user, event_id, batch))

    async def set_attendees(
        self, user: str, event_id: str, attendees: Sequence[Mapping[str, Any]]
    ) -> None:
        """Make the event's attendees exactly ``attendees`` (never removing ``user``)."""
        check_attendee_total(len(attendees))
        current = {a.get("id") for a in await self.list_attendees(user, event_id)}
        wanted = {str(a["id"]) for a in attendees}
        await self.remove_attendees(
            user, event_id, sorted(i for i in current - wanted if isinstance(i, str) and i != user)
        )
        await self.add_attendees(user, event_id, [a for a in attendees if a["id"] not in current])

    async def respond(self, user: str, event_id: str, status: str) -> None:
        """Set ``user``'s answer: needsAction, accepted, declined or tentative."""
        if status not in RESPONSES:
            raise InvalidRequest(f"unknown response status {status!r}", code="syncd.badStatus")
        await self._request(wire.respond(user, event_id, status))

    async def list_instances(
        self,
        user: str,
        series_id: str,
        *,
        time_min: datetime | None = None,
        time_max: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """The occurrences of a series (ListInstances), paged to the end."""
        items, _ = await self._pages(
            lambda tok: wire.list_instances(
                user, series_id, time_min=time_min, time_max=time_max, next_token=tok
            ),
            "events",
        )
        return items

    async def query_schedule(
        self, user: str, user_ids: Sequence[str], start: datetime, end: datetime
    ) -> list[dict[str, Any]]:
        """Free/busy ``scheduleInformation`` of any number of users (20 per call)."""
        out: list[dict[str, Any]] = []
        for i in range(0, len(user_ids), 20):
            data = await self._request(wire.query_schedule(user, user_ids[i : i + 20], start, end))
            out.extend(wire.decode_page(data, "scheduleInformation").items)
        return out

    async def list_calendars(self, user: str) -> list[dict[str, Any]]:
        """The user's calendars (unwrapping the answer's ``response`` object)."""
        data = await self._request(wire.list_calendars(user))
        inner = data.get("response")
        if not isinstance(inner, dict):
            raise BadResponse("ListCalendars answer lacks the 'response' object")
        return wire.decode_page(inner, "calendars").items

    async def failed_callbacks(
        self, begin_ms: int | None = None, end_ms: int | None = None
    ) -> FailedCallbacks:
        """Pushes DingTalk could not deliver between the two epoch-ms bounds (one answer)."""
        data = await self._request(wire.failed_callbacks(begin_ms, end_ms))
        items = wire.decode_page(data, "failedList").items
        return FailedCallbacks(items, bool(data.get("hasMore")))


def _id_of(event: Mapping[str, Any]) -> str:
    event_id = event.get("id")
    if not isinstance(event_id, str) or not event_id:
        raise BadResponse("DingTalk event answer lacks an id")
    return event_id
