"""Shared request helpers of the sandbox's route modules."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from syncd_lab.sandbox.errors import invalid, new_request_id
from syncd_lab.sandbox.reader import Reader
from syncd_lab.sandbox.sandbox import Sandbox
from syncd_lab.sandbox.writer import Change, Writer

SANDBOX_KEY = web.AppKey("sandbox", Sandbox)
APP_KEY = web.RequestKey("app_key", str)  # the authenticated app
CHANGES_KEY = web.RequestKey("changes", list)  # Change records to push after the handler
CLIENT_TOKEN_KEY = web.RequestKey("client_token", str)
FINGERPRINT_KEY = web.RequestKey("fingerprint", str)

# Operations that change something: x-client-token applies, state is persisted after.
MUTATING = frozenset(
    {"CreateEvent", "PatchEvent", "DeleteEvent", "AddAttendee", "RemoveAttendee", "RespondEvent"}
)
# Operations that need no access token.
# The contact topapi calls take ``?access_token=`` and answer errcode bodies themselves.
PUBLIC = frozenset(
    {"GetAccessToken", "GetToken", "OpenConnection", "ListSubDepartmentIds", "ListUsersV2"}
)


def sandbox_of(request: web.Request) -> Sandbox:
    """The :class:`Sandbox` serving this request."""
    return request.app[SANDBOX_KEY]


async def body_of(request: web.Request) -> dict[str, Any]:
    """The JSON object body (``{}`` when empty); 400 ``invalidParameter.body`` otherwise."""
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise invalid("body", "request body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise invalid("body", "request body must be a JSON object")
    return data


def user_of(request: web.Request) -> str:
    """The ``{userId}`` (unionId); ``{calendarId}`` must be ``primary`` where present."""
    calendar = request.match_info.get("calendarId")
    if calendar is not None and calendar != "primary":
        raise invalid("calendarId", "only the primary calendar exists (calendarId=primary)")
    return request.match_info["userId"]


def corp_of(request: web.Request) -> str:
    """The organisation of the app that made the request."""
    sandbox = sandbox_of(request)
    app = sandbox.seed.app(request.get(APP_KEY, ""))
    return app.corp_id if app is not None else ""


def reader(request: web.Request) -> Reader:
    """A :class:`Reader` for this request."""
    sandbox = sandbox_of(request)
    return Reader(sandbox.state, sandbox.seed, corp_of(request))


def writer(request: web.Request) -> Writer:
    """A :class:`Writer` for this request."""
    sandbox = sandbox_of(request)
    return Writer(sandbox.state, sandbox.seed)


def changed(request: web.Request, changes: list[Change]) -> None:
    """Remember changes; the middleware pushes callbacks once the handler is done."""
    request[CHANGES_KEY] = changes


def no_body() -> web.Response:
    """What DingTalk answers for operations without a response model."""
    return web.json_response({"requestId": new_request_id()})
