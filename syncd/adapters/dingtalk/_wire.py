"""Sans-I/O wire format of the DingTalk v1.0 calendar API.

Builds :class:`Request` values (method, percent-encoded path, query, body, whether the call
needs the access token and an ``x-client-token``) and decodes answers. Errors are
classified by the body's ``code`` first and the HTTP status second (DingTalk throttles with
403, not 429); :func:`raise_for` is the single place that turns an answer into
``syncd.errors``. Nothing here does I/O. Paths, query and body names are those of
DingTalk's published calendar v1.0 API, as its official SDK names them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from syncd.adapters.dingtalk._errors import error_for, raise_for, success_json
from syncd.errors import BadResponse

__all__ = [
    "ATTENDEES_PER_CALL",
    "ATTENDEES_PER_EVENT",
    "CLIENT_TOKEN_HEADER",
    "LIST_PAGE",
    "TOKEN_HEADER",
    "Page",
    "Request",
    "add_attendees",
    "create_event",
    "decode",
    "decode_page",
    "decode_token",
    "delete_event",
    "failed_callbacks",
    "format_time",
    "get_event",
    "list_attendees",
    "list_calendars",
    "list_events",
    "list_instances",
    "patch_event",
    "query_schedule",
    "raise_for",
    "remove_attendees",
    "respond",
    "token_request",
]

TOKEN_HEADER = "x-acs-dingtalk-access-token"  # noqa: S105 - a header name, not a secret
CLIENT_TOKEN_HEADER = "x-client-token"  # noqa: S105 - a header name, not a secret
CALENDAR = "/v1.0/calendar"
ATTENDEES_PER_CALL = 500  # per create/patch/add/remove call
ATTENDEES_PER_EVENT = 5000  # per event
LIST_PAGE = 100  # ListEvents maxResults and maxAttendees ceiling
GET_MAX_ATTENDEES = 500  # GetEvent maxAttendees ceiling
LIST_ATTENDEES_PAGE = 500  # ListAttendees maxResults ceiling


@dataclass(frozen=True, slots=True)
class Request:
    """One API call, ready to send: ``path`` is already percent-encoded.

    ``auth`` says whether the access-token header is needed; ``write`` whether the call is
    a mutation that carries an ``x-client-token`` (reused across retries of the call).
    """

    op: str
    method: str
    path: str
    query: Mapping[str, str] = field(default_factory=dict)
    body: Mapping[str, Any] | None = None
    auth: bool = True
    write: bool = False

    def headers(self, access_token: str | None, client_token: str | None) -> dict[str, str]:
        """Request headers for this call with the given tokens."""
        out = {"accept": "application/json"}
        if self.body is not None:
            out["content-type"] = "application/json; charset=utf-8"
        if access_token is not None:
            out[TOKEN_HEADER] = access_token
        if client_token is not None:
            out[CLIENT_TOKEN_HEADER] = client_token
        return out

    def payload(self) -> bytes | None:
        """The JSON body as UTF-8 bytes, or None when the call has no body."""
        if self.body is None:
            return None
        return json.dumps(self.body, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a listing: its items and the continuation / sync tokens, if any."""

    items: list[dict[str, Any]]
    next_token: str | None
    sync_token: str | None


# --- formatting helpers --------------------------------------------------------------------


def format_time(value: datetime) -> str:
    """An aware datetime as the API's preferred ``YYYY-MM-DDTHH:MM:SS.000Z`` (UTC)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"format_time needs an aware datetime, got {value.isoformat()}")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _seg(value: str) -> str:
    if not value:
        raise ValueError("an empty id cannot be used in a DingTalk path")
    return quote(value, safe="")


def _events(user: str, *tail: str) -> str:
    path = f"{CALENDAR}/users/{_seg(user)}/calendars/primary/events"
    return "/".join([path, *(_seg(t) if i == 0 else t for i, t in enumerate(tail))])


def _query(**params: str | int | bool | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in params.items():
        if value is None:
            continue
        out[key] = _bool(value) if isinstance(value, bool) else str(value)
    return out


# --- requests ------------------------------------------------------------------------------


def token_request(app_key: str, app_secret: str) -> Request:
    """POST /v1.0/oauth2/accessToken for an internal app."""
    body = {"appKey": app_key, "appSecret": app_secret}
    return Request("accessToken", "POST", "/v1.0/oauth2/accessToken", body=body, auth=False)


def list_events(
    user: str,
    *,
    sync_token: str | None = None,
    time_min: datetime | None = None,
    time_max: datetime | None = None,
    show_deleted: bool | None = None,
    next_token: str | None = None,
    series_master_id: str | None = None,
) -> Request:
    """GET one page of ListEvents."""
    query = _query(
        timeMin=format_time(time_min) if time_min else None,
        timeMax=format_time(time_max) if time_max else None,
        showDeleted=show_deleted,
        maxResults=LIST_PAGE,
        maxAttendees=LIST_PAGE,
        nextToken=next_token,
        syncToken=sync_token,
        seriesMasterId=series_master_id,
    )
    return Request("ListEvents", "GET", _events(user), query)


def get_event(user: str, event_id: str) -> Request:
    """GET one event with as many attendees as the API allows (500)."""
    query = _query(maxAttendees=GET_MAX_ATTENDEES)
    return Request("GetEvent", "GET", _events(user, event_id), query)


def create_event(user: str, body: Mapping[str, Any]) -> Request:
    """POST a new event into the user's primary calendar."""
    return Request("CreateEvent", "POST", _events(user), body=dict(body), write=True)


def patch_event(user: str, event_id: str, body: Mapping[str, Any]) -> Request:
    """PUT a partial update (``id`` repeated in the body, as the API requires)."""
    payload = {**body, "id": event_id}
    return Request("PatchEvent", "PUT", _events(user, event_id), body=payload, write=True)


def delete_event(user: str, event_id: str, *, push_notification: bool = False) -> Request:
    """DELETE an event; by default without notifying attendees (no invitation spam)."""
    query = _query(pushNotification=push_notification)
    return Request("DeleteEvent", "DELETE", _events(user, event_id), query, write=True)


def list_attendees(user: str, event_id: str, next_token: str | None = None) -> Request:
    """GET one page of an event's attendees (500 per page)."""
    query = _query(maxResults=LIST_ATTENDEES_PAGE, nextToken=next_token)
    return Request("ListAttendees", "GET", _events(user, event_id, "attendees"), query)


def add_attendees(
    user: str, event_id: str, attendees: Sequence[Mapping[str, Any]], *, notify: bool = False
) -> Request:
    """POST one batch (≤ 500) of attendees ``{id, isOptional}`` to add."""
    _check_batch(attendees)
    body = {
        "attendeesToAdd": [dict(a) for a in attendees],
        "chatNotification": notify,
        "pushNotification": notify,
    }
    path = _events(user, event_id, "attendees")
    return Request("AddAttendee", "POST", path, body=body, write=True)


def remove_attendees(user: str, event_id: str, attendee_ids: Sequence[str]) -> Request:
    """POST one batch (≤ 500) of attendee unionIds to remove."""
    _check_batch(attendee_ids)
    body = {"attendeesToRemove": [{"id": a} for a in attendee_ids]}
    path = _events(user, event_id, "attendees/batchRemove")
    return Request("RemoveAttendee", "POST", path, body=body, write=True)


def _check_batch(batch: Sequence[object]) -> None:
    if len(batch) > ATTENDEES_PER_CALL:
        raise ValueError(f"{len(batch)} attendees in one call; the limit is {ATTENDEES_PER_CALL}")


def respond(user: str, event_id: str, status: str) -> Request:
    """POST the user's answer (needsAction, accepted, declined, tentative)."""
    body = {"responseStatus": status}
    path = _events(user, event_id, "respond")
    return Request("RespondEvent", "POST", path, body=body, write=True)


def list_instances(
    user: str,
    series_id: str,
    *,
    time_min: datetime | None = None,
    time_max: datetime | None = None,
    next_token: str | None = None,
) -> Request:
    """GET one page of a series' occurrences (ListInstances)."""
    query = _query(
        timeMin=format_time(time_min) if time_min else None,
        timeMax=format_time(time_max) if time_max else None,
        maxResults=LIST_PAGE,
        maxAttendees=LIST_PAGE,
        nextToken=next_token,
    )
    return Request("ListInstances", "GET", _events(user, series_id, "instances"), query)


def query_schedule(user: str, user_ids: Sequence[str], start: datetime, end: datetime) -> Request:
    """POST GetSchedule: free/busy of up to 20 users (a read, despite the POST)."""
    if not 0 < len(user_ids) <= 20:
        raise ValueError(f"querySchedule takes 1..20 users, got {len(user_ids)}")
    body = {"userIds": list(user_ids), "startTime": format_time(start), "endTime": format_time(end)}
    return Request("GetSchedule", "POST", f"{CALENDAR}/users/{_seg(user)}/querySchedule", body=body)


def list_calendars(user: str) -> Request:
    """GET the user's calendars (answer wrapped in ``response.calendars``)."""
    return Request("ListCalendars", "GET", f"{CALENDAR}/users/{_seg(user)}/calendars")


def failed_callbacks(begin_ms: int | None = None, end_ms: int | None = None) -> Request:
    """GET pushes DingTalk failed to deliver (≤ 200 per call, ``hasMore``)."""
    query = _query(beginTime=begin_ms, endTime=end_ms)
    return Request("GetCallBackFaileResult", "GET", "/v1.0/event/callbacks/failedResults", query)


# --- answers -------------------------------------------------------------------------------


def decode(
    status: int, body: bytes, content_type: str, *, retry_after: str | None = None
) -> dict[str, Any]:
    """The JSON object of a 2xx answer (``{}`` when empty); raises ``syncd.errors`` otherwise."""
    if 200 <= status < 300:
        return success_json(body, content_type)
    raise error_for(status, body, retry_after=retry_after)


def decode_page(data: Mapping[str, Any], key: str = "events") -> Page:
    """A listing page: ``data[key]`` must be a list of objects; tokens are optional strings."""
    items = data.get(key) or []
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise BadResponse(f"DingTalk listing field {key!r} is not a list of objects")
    return Page(items, _opt_str(data, "nextToken"), _opt_str(data, "syncToken"))


def decode_token(data: Mapping[str, Any]) -> tuple[str, int]:
    """``(accessToken, expireIn seconds)`` of a token answer."""
    token, expire_in = data.get("accessToken"), data.get("expireIn")
    if not isinstance(token, str) or not token or not isinstance(expire_in, int):
        raise BadResponse("DingTalk token answer lacks accessToken/expireIn")
    return token, expire_in


def _opt_str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BadResponse(f"DingTalk field {key!r} is not a string")
    return value
