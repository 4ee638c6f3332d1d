"""Credentials go with the first request, and the caldav library logs only into syncd's log.

Against the real servers (their own logs count the requests and the 401s), and a
scripted server for a server that refuses Basic.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog
from aiohttp import web

from syncd import errors
from syncd.adapters.caldav.client import CalDAVClient
from syncd.observability import configure_logging
from syncd_lab.stack.caldav_base import http
from tests.fixtures.caldav_servers import CalendarHandle
from tests.fixtures.scripted_dav import member, multistatus, scripted_server


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """syncd's JSON log in a buffer; the root logger and structlog restored afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    saved = structlog.get_config()
    out = io.StringIO()
    configure_logging("json", "info", stream=out)
    yield out
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.configure(**saved)


async def _two_polls(cal: CalendarHandle, username: str | None, password: str | None) -> None:
    """A first listing, then an idle poll, each by a new client (as each worker run makes)."""
    async with CalDAVClient(cal.url, username, password) as dav:
        token = (await dav.sync(None)).token
    async with CalDAVClient(cal.url, username, password) as dav:
        assert (await dav.sync(token)).items == ()


async def test_each_request_carries_credentials_from_the_first_one(
    caldav_calendar: CalendarHandle,
) -> None:
    """A listing and an idle poll are one REPORT each: no 401, no retried request."""
    cal = caldav_calendar
    if cal.dav.authenticates:  # the server does refuse requests without credentials
        assert http(cal.url, "PROPFIND", headers={"Depth": "0"}, auth=None)[0] == 401
    before = cal.settled_exchanges()
    await _two_polls(cal, cal.username, cal.password)
    assert [(e.method, e.status) for e in cal.since(before)] == [("REPORT", 207)] * 2


async def test_without_credentials_the_library_warning_lands_in_the_json_log(
    cyrus_calendar: CalendarHandle, json_log: io.StringIO
) -> None:
    """Cyrus' HTML 401 makes caldav warn; the warning is a JSON line of syncd's log."""
    with pytest.raises(errors.AuthFailed):
        await _two_polls(cyrus_calendar, None, None)
    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    warned = [e for e in lines if e.get("logger") == "caldav"]
    assert warned
    assert warned[0]["level"] == "warning"
    assert "No authentication object was provided" in str(warned[0]["event"])


async def test_a_poll_with_credentials_logs_nothing_from_the_library(
    cyrus_calendar: CalendarHandle, json_log: io.StringIO
) -> None:
    """With credentials, polling Cyrus leaves no caldav record in the log at all."""
    await _two_polls(cyrus_calendar, cyrus_calendar.username, cyrus_calendar.password)
    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    assert [e for e in lines if e.get("logger")] == []
    assert [e.status for e in cyrus_calendar.settled_exchanges() if e.status == 401] == []


async def test_a_server_refusing_basic_gets_the_scheme_it_asks_for() -> None:
    """Basic answered by a Digest challenge: one retry negotiates Digest, and it works."""
    challenge = {"WWW-Authenticate": 'Digest realm="r", nonce="abc", qop="auth", algorithm=MD5'}
    async with scripted_server() as server:

        async def digest_only(request: web.Request, _body: str) -> web.StreamResponse:
            if not request.headers.get("Authorization", "").startswith("Digest "):
                return web.Response(status=401, headers=challenge)
            listing = multistatus(member(server.url + "a.ics", '"e"'), token="t1")
            return web.Response(status=207, text=listing, content_type="application/xml")

        server.handler = digest_only
        async with CalDAVClient(server.url, "alice", "secret") as dav:
            assert (await dav.sync("t0")).token == "t1"
            assert (await dav.sync("t1")).token == "t1"
    schemes = [h.get("Authorization", "none").split()[0] for h in server.headers]
    assert schemes[0] == "Basic"
    assert "Digest" in schemes
    assert schemes[-1] == "Digest"  # the second poll of this client goes straight to Digest
    assert schemes.count("Basic") <= 2  # given up after the refusal, not per request
