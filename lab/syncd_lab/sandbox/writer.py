"""Changes to the calendars: create, patch, delete, attendees, respond.

Each operation mutates :class:`~syncd_lab.sandbox.state.State` synchronously and returns the
:class:`Change` records the callback pusher turns into ``calendar_event_change`` pushes.
"""

from __future__ import annotations

import copy
import secrets
import string
from dataclasses import dataclass
from typing import Any

from syncd_lab.sandbox import recurrence, validate
from syncd_lab.sandbox.errors import ATTENDEE_LIMIT, NO_PERMISSION, ApiError, invalid, not_found
from syncd_lab.sandbox.seed import Seed
from syncd_lab.sandbox.state import State, StoredEvent
from syncd_lab.sandbox.times import iso_utc, parse_compact_utc

_ALNUM = string.ascii_letters + string.digits


@dataclass(frozen=True)
class Change:
    """One event change, as a ``calendar_event_change`` push reports it."""

    event_id: str
    update_ms: int
    union_ids: tuple[str, ...]
    change_type: str  # created | updated | cancelled | deleteView
    organizer: str
    legacy_id: str


def _change(ev: StoredEvent, kind: str, extra: tuple[str, ...] = ()) -> Change:
    ids = tuple(dict.fromkeys((*ev.involved(), *extra)))
    return Change(ev.id, ev.update_ms, ids, kind, ev.organizer, ev.legacy_id)


def new_event_id() -> str:
    """An opaque, URL-safe, base64-looking event id (letters and digits only)."""
    return "".join(secrets.choice(_ALNUM) for _ in range(24))


class Writer:
    """The mutating operations of the calendar API over one :class:`State`."""

    def __init__(self, state: State, seed: Seed) -> None:
        self.state = state
        self.seed = seed

    # --- helpers ---------------------------------------------------------------------

    def _attendees(self, raw: Any, field: str, organizer: str) -> list[dict[str, Any]]:
        if not isinstance(raw, list):
            raise invalid(field, f"{field} must be an array")
        if len(raw) > validate.ATTENDEES_PER_CALL:
            raise invalid(field, f"at most {validate.ATTENDEES_PER_CALL} attendees per call")
        out: dict[str, dict[str, Any]] = {}
        for item in raw:
            if not isinstance(item, dict):
                raise invalid(field, f"each of {field} must be an object")
            uid = item.get("id")
            if not uid and item.get("email"):
                user = self.seed.user_by_email(str(item["email"]))
                if user is None:
                    raise invalid(field, f"no user with email {item['email']!r}")
                uid = user.union_id
            if not isinstance(uid, str) or not uid:
                raise invalid(field, f"each of {field} needs an id")
            if uid != organizer:
                out[uid] = {
                    "id": uid,
                    "isOptional": bool(item.get("isOptional", False)),
                    "responseStatus": "needsAction",
                }
        return list(out.values())

    @staticmethod
    def _check_total(ev: StoredEvent) -> None:
        if len(ev.attendees) > validate.ATTENDEES_PER_EVENT:
            raise ApiError(
                400,
                ATTENDEE_LIMIT,
                f"an event holds at most {validate.ATTENDEES_PER_EVENT} attendees",
            )

    def _materialise(self, user: str, event_id: str, organizer_only: bool) -> StoredEvent | None:
        master_id, _, suffix = event_id.rpartition("_")
        master = self.state.events.get(master_id)
        origin = parse_compact_utc(suffix)
        if master is None or origin is None or not master.fields.get("recurrence"):
            return None
        if master.status == "cancelled" or not master.visible_to(user):
            return None
        if not recurrence.is_occurrence(master.fields, origin):
            return None
        if organizer_only:
            self._organizer_only(master, user)
        fields = {k: copy.deepcopy(v) for k, v in master.fields.items() if k != "recurrence"}
        fields["start"], fields["end"] = recurrence.instance_times(master.fields, origin)
        seq, ms = self.state.bump()
        ev = StoredEvent(
            id=event_id,
            organizer=master.organizer,
            fields=fields,
            attendees=copy.deepcopy(master.attendees),
            create_ms=ms,
            update_ms=ms,
            seq=seq,
            series_master_id=master.id,
            origin_start=iso_utc(origin),
            hidden_for=list(master.hidden_for),
            legacy_id=secrets.token_hex(16),
        )
        self.state.events[event_id] = ev
        return ev

    def resolve(self, user: str, event_id: str, *, organizer_only: bool = False) -> StoredEvent:
        """The live event ``user`` sees under ``event_id``; occurrences are materialised."""
        ev = self.state.events.get(event_id)
        if ev is None:
            ev = self._materialise(user, event_id, organizer_only)
        if ev is None or ev.status == "cancelled" or not ev.visible_to(user):
            raise not_found(event_id)
        if organizer_only:
            self._organizer_only(ev, user)
        return ev

    @staticmethod
    def _organizer_only(ev: StoredEvent, user: str) -> None:
        if ev.organizer != user:
            raise ApiError(403, NO_PERMISSION, "only the organizer may change this event")

    def _touch(self, ev: StoredEvent) -> None:
        ev.seq, ev.update_ms = self.state.bump()

    # --- operations ------------------------------------------------------------------

    def create(self, user: str, body: dict[str, Any]) -> tuple[StoredEvent, list[Change]]:
        """CreateEvent in ``user``'s primary calendar; ``user`` becomes the organizer."""
        fields = validate.create_fields(body)
        attendees = self._attendees(body.get("attendees") or [], "attendees", user)
        seq, ms = self.state.bump()
        ev = StoredEvent(
            id=new_event_id(),
            organizer=user,
            fields=fields,
            attendees=attendees,
            create_ms=ms,
            update_ms=ms,
            seq=seq,
            legacy_id=secrets.token_hex(16),
        )
        self._check_total(ev)
        self.state.events[ev.id] = ev
        return ev, [_change(ev, "created")]

    def patch(
        self, user: str, event_id: str, body: dict[str, Any]
    ) -> tuple[StoredEvent, list[Change]]:
        """PatchEvent (PUT): a partial update; ``attendees`` replaces the whole list."""
        if body.get("id") != event_id:
            raise invalid("id", "body id is required and must equal the event id in the path")
        ev = self.resolve(user, event_id, organizer_only=True)
        if ev.series_master_id and body.get("recurrence") is not None:
            raise invalid("recurrence", "an occurrence of a series cannot carry a recurrence")
        fields = validate.patch_fields(body, ev.fields)
        removed: tuple[str, ...] = ()
        if body.get("attendees") is not None:
            new = self._attendees(body["attendees"], "attendees", ev.organizer)
            old = {a["id"]: a for a in ev.attendees}
            for a in new:
                a["responseStatus"] = old.get(a["id"], a)["responseStatus"]
            removed = tuple(i for i in old if i not in {a["id"] for a in new})
            ev.attendees = new
            self._check_total(ev)
        ev.fields = fields
        self._touch(ev)
        self._forget(ev, removed)
        return ev, [_change(ev, "updated", removed)]

    def _forget(self, ev: StoredEvent, removed: tuple[str, ...]) -> None:
        for uid in removed:
            ev.former[uid] = ev.seq
        for uid in ev.attendee_ids():
            ev.former.pop(uid, None)

    def delete(self, user: str, event_id: str) -> list[Change]:
        """DeleteEvent: the organizer cancels it for all; an attendee removes it from view."""
        ev = self.resolve(user, event_id)
        if ev.organizer != user:
            ev.hidden_for.append(user)
            self._touch(ev)
            ev.former[user] = ev.seq
            return [Change(ev.id, ev.update_ms, (user,), "deleteView", ev.organizer, ev.legacy_id)]
        changes = []
        for other in self.state.events.values():
            if other.series_master_id == ev.id and other.status != "cancelled":
                other.status = "cancelled"
                self._touch(other)
                changes.append(_change(other, "cancelled"))
        ev.status = "cancelled"
        self._touch(ev)
        return [_change(ev, "cancelled"), *changes]

    def add_attendees(self, user: str, event_id: str, body: dict[str, Any]) -> list[Change]:
        """AddAttendee: add ``attendeesToAdd`` (existing attendees are left as they are)."""
        ev = self.resolve(user, event_id)
        if not (ev.fields.get("eventConfig") or {}).get("allowAttendeeAddParticipants"):
            self._organizer_only(ev, user)
        if not body.get("attendeesToAdd"):
            raise invalid("attendeesToAdd", "attendeesToAdd is required")
        new = self._attendees(body["attendeesToAdd"], "attendeesToAdd", ev.organizer)
        known = set(ev.attendee_ids())
        ev.attendees = ev.attendees + [a for a in new if a["id"] not in known]
        self._check_total(ev)
        for a in new:
            if a["id"] in ev.hidden_for:
                ev.hidden_for.remove(a["id"])
        self._touch(ev)
        self._forget(ev, ())
        return [_change(ev, "updated")]

    def remove_attendees(self, user: str, event_id: str, body: dict[str, Any]) -> list[Change]:
        """RemoveAttendee (batchRemove): drop ``attendeesToRemove`` from the event."""
        ev = self.resolve(user, event_id, organizer_only=True)
        raw = body.get("attendeesToRemove") or []
        gone = {a["id"] for a in self._attendees(raw, "attendeesToRemove", "")}
        removed = tuple(i for i in ev.attendee_ids() if i in gone)
        ev.attendees = [a for a in ev.attendees if a["id"] not in gone]
        self._touch(ev)
        self._forget(ev, removed)
        return [_change(ev, "updated", removed)]

    def add_rooms(self, user: str, event_id: str, body: dict[str, Any]) -> list[Change]:
        """AddMeetingRooms: book ``meetingRoomsToAdd`` [{roomId}] (the organizer only).

        Rooms live in the event's fields (``meetingRooms``), which no PatchEvent body can
        write, so a patch never drops them; their display name is the room id.
        """
        ev = self.resolve(user, event_id, organizer_only=True)
        raw = body.get("meetingRoomsToAdd")
        if not isinstance(raw, list) or not raw:
            raise invalid("meetingRoomsToAdd", "meetingRoomsToAdd is required")
        rooms = list(ev.fields.get("meetingRooms") or [])
        known = {r["roomId"] for r in rooms}
        for item in raw:
            room = item.get("roomId") if isinstance(item, dict) else None
            if not isinstance(room, str) or not room:
                raise invalid("meetingRoomsToAdd", "each room needs a roomId")
            if room not in known:
                known.add(room)
                rooms.append({"roomId": room, "displayName": room, "responseStatus": "accepted"})
        ev.fields["meetingRooms"] = rooms
        self._touch(ev)
        return [_change(ev, "updated")]

    def respond(self, user: str, event_id: str, body: dict[str, Any]) -> list[Change]:
        """RespondEvent: ``user`` (an attendee) sets their responseStatus."""
        ev = self.resolve(user, event_id)
        status = body.get("responseStatus")
        if status not in validate.RESPONSES:
            raise invalid("responseStatus", f"responseStatus must be one of {validate.RESPONSES}")
        for a in ev.attendees:
            if a["id"] == user:
                a["responseStatus"] = status
                break
        else:
            if user != ev.organizer:
                raise ApiError(403, NO_PERMISSION, "only attendees can respond")
        self._touch(ev)
        return [_change(ev, "updated")]
