"""Which events a read operation returns: pure selection over the state.

A *ref* names one item of a result list: ``{"id": ...}`` for a stored event,
``{"master": ..., "origin": "yyyymmddThhmmssZ"}`` for a virtual occurrence of a series.
Results are lists of refs so that paging (nextToken) can keep the rest of a listing.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from syncd_lab.sandbox import recurrence
from syncd_lab.sandbox.state import State, StoredEvent
from syncd_lab.sandbox.times import compact_utc, iso_utc, parse_compact_utc, parse_instant

Ref = dict[str, Any]


def _in(moment: datetime, low: datetime | None, high: datetime | None) -> bool:
    return (low is None or moment >= low) and (high is None or moment < high)


def _master_in(ev: StoredEvent, low: datetime | None, high: datetime | None) -> bool:
    if high is not None and recurrence.start_of(ev.fields) >= high:
        return False
    if low is None:
        return True
    last = recurrence.last_occurrence(ev.fields)
    return last is None or last >= low


def _time_ok(ev: StoredEvent, low: datetime | None, high: datetime | None) -> bool:
    if ev.fields.get("recurrence"):
        return _master_in(ev, low, high)
    if ev.origin_start and _in(parse_instant(ev.origin_start, "originStart"), low, high):
        return True
    return _in(recurrence.start_of(ev.fields), low, high)


def _listable(state: State, ev: StoredEvent, user: str, show_deleted: bool) -> bool:
    if not ev.visible_to(user):
        return show_deleted and ev.gone_for(user)
    if ev.status != "cancelled" or show_deleted:
        return True
    master = state.events.get(ev.series_master_id or "")
    # A cancelled occurrence of a live series is listed like Google does (an EXDATE).
    return master is not None and master.status != "cancelled" and master.visible_to(user)


def _order(events: Iterable[StoredEvent]) -> list[Ref]:
    ranked = sorted(events, key=lambda e: (recurrence.start_of(e.fields), e.id))
    return [{"id": e.id} for e in ranked]


def list_refs(
    state: State,
    user: str,
    low: datetime | None,
    high: datetime | None,
    *,
    show_deleted: bool,
    series_master_id: str | None = None,
) -> list[Ref]:
    """ListEvents without syncToken: masters, single events and materialised exceptions."""
    chosen = []
    for ev in state.events.values():
        if series_master_id and series_master_id not in (ev.id, ev.series_master_id):
            continue
        if _listable(state, ev, user, show_deleted) and _time_ok(ev, low, high):
            chosen.append(ev)
    return _order(chosen)


def delta_refs(state: State, user: str, since: int) -> list[Ref]:
    """ListEvents with a syncToken: every event of ``user`` changed after ``since``."""
    changed = [
        ev
        for ev in state.events.values()
        if ev.seq > since and (ev.visible_to(user) or ev.gone_for(user))
    ]
    return [{"id": e.id} for e in sorted(changed, key=lambda e: e.seq)]


def exceptions_of(state: State, master_id: str) -> dict[str, StoredEvent]:
    """Materialised exceptions of a series, keyed by compact origin start."""
    out = {}
    for ev in state.events.values():
        if ev.series_master_id == master_id and ev.origin_start:
            out[compact_utc(parse_instant(ev.origin_start, "originStart"))] = ev
    return out


def _series_refs(
    state: State, master: StoredEvent, low: datetime | None, high: datetime | None
) -> list[tuple[datetime, Ref]]:
    """Occurrences of ``master`` in the window, exceptions substituted, cancelled ones left out."""
    taken = exceptions_of(state, master.id)
    out = []
    for origin in recurrence.occurrences_between(master.fields, low, high):
        key = compact_utc(origin)
        ex = taken.get(key)
        if ex is None:
            out.append((origin, {"master": master.id, "origin": key}))
        elif ex.status != "cancelled":
            out.append((origin, {"id": ex.id}))
    return out


def view_refs(state: State, user: str, low: datetime | None, high: datetime | None) -> list[Ref]:
    """ListEventsView: what is on the calendar, recurrences expanded virtually."""
    items: list[tuple[datetime, str, Ref]] = []
    for ev in state.events.values():
        if ev.status == "cancelled" or not ev.visible_to(user):
            continue
        if ev.fields.get("recurrence"):
            for when, ref in _series_refs(state, ev, low, high):
                start = recurrence.start_of(state.events[ref["id"]].fields) if "id" in ref else when
                items.append((start, ev.id, ref))
        elif not ev.series_master_id:
            start = recurrence.start_of(ev.fields)
            if _in(start, low, high):
                items.append((start, ev.id, {"id": ev.id}))
    return [ref for _, _, ref in sorted(items, key=lambda t: (t[0], t[1]))]


def instance_refs(
    state: State, master: StoredEvent, low: datetime | None, high: datetime | None
) -> list[Ref]:
    """ListInstances / ListEventsInstances: occurrences of one series by original start."""
    return [ref for _, ref in _series_refs(state, master, low, high)]


def virtual(master: StoredEvent, origin_key: str) -> StoredEvent | None:
    """The unmaterialised occurrence of ``master`` at ``origin_key`` (None if not one)."""
    origin = parse_compact_utc(origin_key)
    if origin is None or not master.fields.get("recurrence"):
        return None
    if not recurrence.is_occurrence(master.fields, origin):
        return None
    fields = {k: copy.deepcopy(v) for k, v in master.fields.items() if k != "recurrence"}
    fields["start"], fields["end"] = recurrence.instance_times(master.fields, origin)
    return StoredEvent(
        id=f"{master.id}_{origin_key}",
        organizer=master.organizer,
        fields=fields,
        attendees=copy.deepcopy(master.attendees),
        create_ms=master.create_ms,
        update_ms=master.update_ms,
        seq=master.seq,
        series_master_id=master.id,
        origin_start=iso_utc(origin),
        hidden_for=list(master.hidden_for),
        legacy_id=master.legacy_id,
    )


def resolve_ref(state: State, ref: Ref) -> StoredEvent | None:
    """The stored or virtual event a ref names (None if it vanished meanwhile)."""
    if "id" in ref:
        return state.events.get(ref["id"])
    master = state.events.get(ref["master"])
    return virtual(master, ref["origin"]) if master is not None else None


def busy_items(state: State, user: str, low: datetime, high: datetime) -> list[dict[str, Any]]:
    """querySchedule: the user's non-declined events overlapping ``[low, high)``."""
    items = []
    for ref in view_refs(state, user, None, high):
        ev = resolve_ref(state, ref)
        if ev is None:
            continue
        start = recurrence.start_of(ev.fields)
        if start + recurrence.duration_of(ev.fields) <= low:
            continue
        mine = next((a for a in ev.attendees if a["id"] == user), None)
        answer = mine["responseStatus"] if mine else "accepted"
        if answer == "declined":
            continue
        status = "TENTATIVE" if answer == "tentative" else "BUSY"
        items.append({"status": status, "start": ev.fields["start"], "end": ev.fields["end"]})
    return items
