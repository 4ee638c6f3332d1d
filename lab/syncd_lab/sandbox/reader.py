"""Read operations: GetEvent, ListEvents (paging, syncToken), views, instances, attendees.

Query parameters arrive as strings (the SDK stringifies booleans as ``True``/``False``);
they are checked here with DingTalk's limits.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from syncd_lab.sandbox import queries
from syncd_lab.sandbox.errors import BAD_NEXT_TOKEN, BAD_SYNC_TOKEN, ApiError, invalid, not_found
from syncd_lab.sandbox.render import render
from syncd_lab.sandbox.seed import Seed
from syncd_lab.sandbox.state import State, StoredEvent
from syncd_lab.sandbox.times import ONE_YEAR, parse_compact_utc, parse_instant

PAGE_TOKEN_TTL = 3600.0


def flag(query: Mapping[str, str], name: str) -> bool:
    """A boolean query parameter, ``true``/``True``/``false``/``False`` (case-insensitive)."""
    raw = query.get(name)
    if raw is None or raw == "":
        return False
    if raw.lower() in {"true", "1"}:
        return True
    if raw.lower() in {"false", "0"}:
        return False
    raise invalid(name, f"{name} must be true or false")


def number(query: Mapping[str, str], name: str, default: int, maximum: int) -> int:
    """An integer query parameter in ``1..maximum``."""
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise invalid(name, f"{name} must be an integer") from exc
    if not 1 <= value <= maximum:
        raise invalid(name, f"{name} must be between 1 and {maximum}")
    return value


def window(query: Mapping[str, str]) -> tuple[datetime | None, datetime | None]:
    """``timeMin``/``timeMax`` as instants; their span may not exceed one year."""
    low = parse_instant(query["timeMin"], "timeMin") if query.get("timeMin") else None
    high = parse_instant(query["timeMax"], "timeMax") if query.get("timeMax") else None
    if low is not None and high is not None:
        if high <= low:
            raise invalid("timeMax", "timeMax must be after timeMin")
        if high - low > ONE_YEAR:
            raise invalid("timeMax", "timeMin..timeMax may not span more than one year")
    return low, high


class Reader:
    """Read operations for one request (``corp_id`` is the calling app's organisation)."""

    def __init__(self, state: State, seed: Seed, corp_id: str) -> None:
        self.state = state
        self.seed = seed
        self.corp_id = corp_id

    def _render(self, ev: StoredEvent, user: str, shape: str, cap: int) -> dict[str, Any]:
        return render(
            ev,
            user,
            self.seed,
            corp_id=self.corp_id,
            shape=shape,
            max_attendees=cap,
            cancelled=ev.gone_for(user),
        )

    def _page(self, refs: list[queries.Ref], page: dict[str, Any], size: int) -> dict[str, Any]:
        """Render one page of ``refs``; the rest is remembered under a nextToken."""
        user, shape, cap = page["user"], page["shape"], page["cap"]
        items = []
        for ref in refs[:size]:
            ev = queries.resolve_ref(self.state, ref)
            if ev is not None:
                items.append(self._render(ev, user, shape, cap))
        out: dict[str, Any] = {"events": items}
        if len(refs) > size:
            rest = dict(page, refs=refs[size:], at=time.time())
            out["nextToken"] = self.state.issue_page_token(rest)
        elif page.get("sync_seq") is not None:
            out["syncToken"] = self.state.issue_sync_token(user, page["sync_seq"])
        return out

    def _resume(self, token: str, user: str, kind: str) -> dict[str, Any]:
        self.state.page_tokens = {
            k: v
            for k, v in self.state.page_tokens.items()
            if v["at"] + PAGE_TOKEN_TTL > time.time()
        }
        page = self.state.page_tokens.get(token)
        if page is None or page["user"] != user or page["kind"] != kind:
            raise ApiError(400, BAD_NEXT_TOKEN, "nextToken is invalid or expired")
        return page

    def get(self, user: str, event_id: str, query: Mapping[str, str]) -> dict[str, Any]:
        """GetEvent: a live event or occurrence; deleted ones are ``instanceNotExist``."""
        cap = number(query, "maxAttendees", 100, 500)
        ev = self.state.events.get(event_id)
        if ev is None:
            master_id, _, key = event_id.rpartition("_")
            master = self.state.events.get(master_id)
            ev = queries.virtual(master, key) if master is not None else None
        if ev is None or ev.status == "cancelled" or not ev.visible_to(user):
            raise not_found(event_id)
        master = self.state.events.get(ev.series_master_id or "")
        if master is not None and master.status == "cancelled":
            raise not_found(event_id)
        return self._render(ev, user, "get", cap)

    def list_events(self, user: str, query: Mapping[str, str]) -> dict[str, Any]:
        """ListEvents: full listing or syncToken delta, paged; syncToken on the last page."""
        size = number(query, "maxResults", 100, 100)
        cap = number(query, "maxAttendees", 100, 100)
        if query.get("nextToken"):
            page = self._resume(query["nextToken"], user, "events")
            return self._page(page["refs"], page, size)
        page = {
            "user": user,
            "kind": "events",
            "shape": "list",
            "cap": cap,
            "sync_seq": self.state.seq,
        }
        if query.get("syncToken"):
            known = self.state.sync_tokens.get(query["syncToken"])
            if known is None or known["user"] != user:
                raise ApiError(400, BAD_SYNC_TOKEN, "syncToken is invalid or expired")
            refs = queries.delta_refs(self.state, user, known["seq"])
        else:
            low, high = window(query)
            refs = queries.list_refs(
                self.state,
                user,
                low,
                high,
                show_deleted=flag(query, "showDeleted"),
                series_master_id=query.get("seriesMasterId") or None,
            )
        return self._page(refs, page, size)

    def list_view(self, user: str, query: Mapping[str, str]) -> dict[str, Any]:
        """ListEventsView: occurrences expanded over the window, no reminders, no syncToken."""
        size = number(query, "maxResults", 100, 100)
        cap = number(query, "maxAttendees", 100, 100)
        if query.get("nextToken"):
            page = self._resume(query["nextToken"], user, "view")
            return self._page(page["refs"], page, size)
        low, high = window(query)
        page = {"user": user, "kind": "view", "shape": "view", "cap": cap}
        return self._page(queries.view_refs(self.state, user, low, high), page, size)

    def _master(self, user: str, master_id: str) -> StoredEvent:
        master = self.state.events.get(master_id)
        if master is None or master.status == "cancelled" or not master.visible_to(user):
            raise not_found(master_id)
        if not master.fields.get("recurrence"):
            raise invalid("eventId", "the event is not a recurring series")
        return master

    def list_instances(self, user: str, event_id: str, query: Mapping[str, str]) -> dict[str, Any]:
        """ListInstances: occurrences of one series in ``timeMin..timeMax``, paged."""
        size = number(query, "maxResults", 100, 100)
        cap = number(query, "maxAttendees", 100, 100)
        kind = f"instances:{event_id}"
        if query.get("nextToken"):
            page = self._resume(query["nextToken"], user, kind)
            return self._page(page["refs"], page, size)
        master = self._master(user, event_id)
        low, high = window(query)
        page = {"user": user, "kind": kind, "shape": "instances", "cap": cap}
        return self._page(queries.instance_refs(self.state, master, low, high), page, size)

    def list_series_instances(self, user: str, query: Mapping[str, str]) -> dict[str, Any]:
        """ListEventsInstances: occurrences from ``startRecurrenceId`` on (no paging)."""
        if not query.get("seriesMasterId"):
            raise invalid("seriesMasterId", "seriesMasterId is required")
        size = number(query, "maxResults", 100, 100)
        cap = number(query, "maxAttendees", 100, 100)
        master = self._master(user, query["seriesMasterId"])
        low = None
        if query.get("startRecurrenceId"):
            text = query["startRecurrenceId"]
            low = parse_compact_utc(text.rpartition("_")[2]) or parse_instant(
                text, "startRecurrenceId"
            )
        refs = queries.instance_refs(self.state, master, low, None)
        page = {"user": user, "kind": "series", "shape": "instances", "cap": cap}
        return {"events": self._page(refs[:size], page, size)["events"]}

    def list_attendees(self, user: str, event_id: str, query: Mapping[str, str]) -> dict[str, Any]:
        """ListAttendees: the attendee list, paged by ``maxResults`` (≤ 500)."""
        size = number(query, "maxResults", 100, 500)
        offset = 0
        if query.get("nextToken"):
            offset = int(self._resume(query["nextToken"], user, f"att:{event_id}")["offset"])
        ev = self.state.events.get(event_id)
        if ev is None or ev.status == "cancelled" or not ev.visible_to(user):
            raise not_found(event_id)
        people = render(
            ev, user, self.seed, corp_id=self.corp_id, shape="get", max_attendees=len(ev.attendees)
        )["attendees"]
        out: dict[str, Any] = {"attendees": people[offset : offset + size]}
        if offset + size < len(people):
            page = {
                "user": user,
                "kind": f"att:{event_id}",
                "offset": offset + size,
                "at": time.time(),
            }
            out["nextToken"] = self.state.issue_page_token(page)
        return out

    def schedule(self, body: dict[str, Any]) -> dict[str, Any]:
        """GetSchedule (querySchedule): busy items of up to 20 users in a window."""
        users = body.get("userIds")
        if not isinstance(users, list) or not users or len(users) > 20:
            raise invalid("userIds", "userIds must list 1 to 20 unionIds")
        for name in ("startTime", "endTime"):
            if not isinstance(body.get(name), str):
                raise invalid(name, f"{name} is required")
        low = parse_instant(body["startTime"], "startTime")
        high = parse_instant(body["endTime"], "endTime")
        if high <= low:
            raise invalid("endTime", "endTime must be after startTime")
        info = [
            {
                "userId": uid,
                "error": "",
                "scheduleItems": queries.busy_items(self.state, str(uid), low, high),
            }
            for uid in users
        ]
        return {"scheduleInformation": info}

    def calendars(self, user: str) -> dict[str, Any]:
        """ListCalendars: the user's primary calendar (with the ``response`` wrapper)."""
        mine = [e.seq for e in self.state.events.values() if e.visible_to(user) or e.gone_for(user)]
        name = self.seed.user(user)
        calendar = {
            "id": "primary",
            "summary": name.name if name and name.name else user,
            "description": "",
            "timeZone": "Asia/Shanghai",
            "eTag": f"{max(mine, default=0)}",
            "type": "primary",
            "privilege": "owner",
        }
        return {"response": {"calendars": [calendar]}}
