"""Event JSON as DingTalk answers it, per viewer and per operation (reference §3.4).

``freeBusyStatus`` is stored but never rendered: no response model of the official SDK
carries it. ``GET /_sandbox/state`` shows it in the event's ``fields``.
"""

from __future__ import annotations

from typing import Any

from syncd_lab.sandbox.seed import Seed
from syncd_lab.sandbox.state import StoredEvent
from syncd_lab.sandbox.times import iso_utc_ms

# Fields each response model does NOT carry (reference §3.4).
_HIDDEN: dict[str, frozenset[str]] = {
    "create": frozenset({"status", "seriesMasterId", "originStart", "meetingRooms"}),
    "patch": frozenset({"status", "seriesMasterId", "originStart", "meetingRooms", "eventConfig"}),
    "get": frozenset({"eventConfig"}),
    "list": frozenset({"uiConfigs", "cardInstances", "eventConfig"}),
    "view": frozenset({"uiConfigs", "cardInstances", "eventConfig", "reminders"}),
    "instances": frozenset({"uiConfigs", "cardInstances", "eventConfig"}),
}
_PLAIN = (
    "summary",
    "description",
    "isAllDay",
    "recurrence",
    "richTextDescription",
    "categories",
    "uiConfigs",
    "cardInstances",
    "eventConfig",
)


def display_name(seed: Seed, union_id: str) -> str:
    """The seeded name of a user, else the unionId itself."""
    user = seed.user(union_id)
    return user.name if user and user.name else union_id


def _people(ev: StoredEvent, viewer: str, seed: Seed, cap: int) -> dict[str, Any]:
    attendees = [
        {
            "id": a["id"],
            "displayName": display_name(seed, a["id"]),
            "responseStatus": a.get("responseStatus", "needsAction"),
            "self": a["id"] == viewer,
            "isOptional": bool(a.get("isOptional", False)),
        }
        for a in ev.attendees[:cap]
    ]
    organizer = {
        "id": ev.organizer,
        "displayName": display_name(seed, ev.organizer),
        "responseStatus": "accepted",
        "self": ev.organizer == viewer,
    }
    return {"attendees": attendees, "organizer": organizer}


def _extras(ev: StoredEvent, corp_id: str, shape: str) -> dict[str, Any]:
    fields, out = ev.fields, dict[str, Any]()
    rooms = [dict(r) for r in fields.get("meetingRooms") or []]
    if "location" in fields or rooms:
        out["location"] = {
            "displayName": str((fields.get("location") or {}).get("displayName", "")),
            "meetingRooms": [r["roomId"] for r in rooms],
        }
    if "reminders" in fields:
        out["reminders"] = [
            {"method": r["method"], "minutes": str(r["minutes"])} for r in fields["reminders"]
        ]
    if "onlineMeetingInfo" in fields:
        out["onlineMeetingInfo"] = {
            "type": str(fields["onlineMeetingInfo"].get("type", "dingtalk")),
            "conferenceId": f"conf-{ev.id[:12]}",
            "url": f"https://meeting.dingtalk.com/j/{ev.id[:12]}",
            "extraInfo": {},
        }
    props: dict[str, Any] = {"sharedProperties": {"belongCorpId": corp_id}}
    if shape == "view":
        props["privateProperties"] = {
            "dingtalkDetailUrl": f"dingtalk://dingtalkclient/page/calendar?eventId={ev.id}"
        }
    out["extendedProperties"] = props
    return out


def render(
    ev: StoredEvent,
    viewer: str,
    seed: Seed,
    *,
    corp_id: str,
    shape: str,
    max_attendees: int = 100,
    cancelled: bool = False,
) -> dict[str, Any]:
    """The event as ``viewer`` sees it in the response of operation ``shape``."""
    fields = ev.fields
    out: dict[str, Any] = {"id": ev.id}
    out.update({k: fields[k] for k in _PLAIN if fields.get(k) is not None})
    out["start"], out["end"] = dict(fields["start"]), dict(fields["end"])
    out.update(_people(ev, viewer, seed, max_attendees))
    out.update(_extras(ev, corp_id, shape))
    out["status"] = "cancelled" if cancelled or ev.status == "cancelled" else "confirmed"
    if ev.series_master_id:
        out["seriesMasterId"] = ev.series_master_id
    if ev.origin_start:
        out["originStart"] = {"dateTime": ev.origin_start}
    out["meetingRooms"] = [dict(r) for r in fields.get("meetingRooms") or []]
    out["createTime"] = iso_utc_ms(ev.create_ms)
    out["updateTime"] = iso_utc_ms(ev.update_ms)
    hidden = _HIDDEN[shape]
    return {k: v for k, v in out.items() if k not in hidden}
