"""Helpers that turn our DingTalk request bodies into the shape DingTalk answers with.

DingTalk answers with: the organizer (the user in the create path) as ``organizer`` and
in ``attendees`` with ``self``; attendees with ``displayName`` and ``responseStatus``;
reminder minutes as strings; ``location.meetingRooms``; server fields (``id``,
``createTime``, ``updateTime``, ``status``, ``extendedProperties``); never ``extra``.
Exception instances carry ``seriesMasterId`` and ``originStart`` (UTC; all-day at
midnight UTC, as the sandbox does). Other tests import these helpers.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from typing import Any

from syncd.model import When
from syncd.translate import Context, Directory, event_from_dingtalk

NAMES = {"u-alice": "Alice", "u-bob": "Bob", "u-carol": "Carol", "u-dave": "Dave"}
DIRECTORY = Directory(
    {
        "u-alice": "alice@acme.example",
        "u-bob": "bob@acme.example",
        "u-carol": "Carol@Acme.Example",
        "u-dave": "dave@acme.example",
    }
)
CTX = Context(directory=DIRECTORY, user="u-alice", timezone="Asia/Shanghai")


def dingtalk_response(
    body: Mapping[str, Any],
    ctx: Context,
    *,
    event_id: str = "evt-1",
    names: Mapping[str, str] = NAMES,
) -> dict[str, Any]:
    """The GetEvent answer for an event created by ``ctx.user`` with ``body``."""
    me = ctx.user
    out: dict[str, Any] = {
        k: body[k] for k in ("summary", "description", "isAllDay", "recurrence") if k in body
    }
    out.update(id=event_id, start=dict(body["start"]), end=dict(body["end"]))
    out["organizer"] = _person(me, me, names, "accepted")
    out["attendees"] = [_person(me, me, names, "accepted")] + [
        {**_person(a["id"], me, names, "needsAction"), "isOptional": bool(a.get("isOptional"))}
        for a in body.get("attendees", ())
    ]
    if "location" in body:
        out["location"] = {"displayName": body["location"]["displayName"], "meetingRooms": []}
    if "reminders" in body:
        out["reminders"] = [
            {"method": r["method"], "minutes": str(r["minutes"])} for r in body["reminders"]
        ]
    out.update(
        status="confirmed",
        meetingRooms=[],
        createTime="2025-01-01T00:00:00.000Z",
        updateTime="2025-01-02T03:04:05.678Z",
        extendedProperties={"sharedProperties": {"belongCorpId": "dingcorp1"}},
    )
    return out


def _person(union_id: str, me: str, names: Mapping[str, str], status: str) -> dict[str, Any]:
    return {
        "id": union_id,
        "displayName": names.get(union_id, union_id),
        "responseStatus": status,
        "self": union_id == me,
    }


def origin_start(rid: When) -> str:
    """``originStart.dateTime`` of an occurrence: UTC, all-day at midnight UTC."""
    moment = rid if isinstance(rid, datetime) else datetime.combine(rid, time(), tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def instance_response(
    master: Mapping[str, Any],
    rid: When,
    body: Mapping[str, Any] | None,
    ctx: Context,
    names: Mapping[str, str] = NAMES,
) -> dict[str, Any]:
    """An exception instance of ``master``: moved/edited (``body``) or cancelled (None)."""
    key = origin_start(rid).replace("-", "").replace(":", "")
    base = dict(master) if body is None else dingtalk_response(body, ctx, names=names)
    base.pop("recurrence", None)
    base.update(id=f"{master['id']}_{key}", seriesMasterId=master["id"])
    base["originStart"] = {"dateTime": origin_start(rid)}
    if body is None:
        base["status"] = "cancelled"
    return base


def test_response_shape_has_string_minutes_and_organizer() -> None:
    """The helper answers like DingTalk: string minutes, organizer = creator, no extra."""
    body = {
        "summary": "s",
        "start": {"date": "2024-06-01"},
        "end": {"date": "2024-06-02"},
        "isAllDay": True,
        "reminders": [{"method": "dingtalk", "minutes": 15}],
        "extra": {"noPushNotification": "true"},
    }
    resp = dingtalk_response(body, CTX)
    assert resp["reminders"] == [{"method": "dingtalk", "minutes": "15"}]
    assert resp["organizer"]["id"] == "u-alice"
    assert "extra" not in resp
    event = event_from_dingtalk(resp, [], CTX)
    assert event.start == date(2024, 6, 1)
    assert event.reminders == (15,)
    assert event.organizer == "alice@acme.example"
    assert event.attendees == ()  # the organizer is not also an attendee


def test_instance_response_marks_series_and_origin() -> None:
    """A cancelled instance carries seriesMasterId, a UTC originStart and status cancelled."""
    master = {"id": "m1", "summary": "x"}
    inst = instance_response(master, date(2024, 6, 8), None, CTX)
    assert inst["seriesMasterId"] == "m1"
    assert inst["originStart"] == {"dateTime": "2024-06-08T00:00:00Z"}
    assert inst["status"] == "cancelled"
