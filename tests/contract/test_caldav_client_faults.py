"""CalDAVClient against a scripted HTTP server: answers real servers here never give.

Each test scripts the status, headers and body a misbehaving server sends and checks the
client turns it into the right ``syncd.errors`` class (raised ``from`` the cause), or
falls back the way the quirks table says.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from syncd import errors
from syncd.adapters.caldav.client import CalDAVClient
from syncd_lab.stack.ports import free_port
from tests.fixtures.scripted_dav import (
    COLLECTION,
    NS,
    XML,
    ScriptedServer,
    answer,
    member,
    multistatus,
    scripted_server,
)


@pytest.fixture
async def server() -> AsyncIterator[ScriptedServer]:
    """A scripted server on a free loopback port."""
    async with scripted_server() as scripted:
        yield scripted


@pytest.fixture
async def client(server: ScriptedServer) -> AsyncIterator[CalDAVClient]:
    """A client with a short timeout pointed at the scripted server."""
    async with CalDAVClient(server.url, "alice", "secret", timeout=1.0) as dav:
        yield dav


ICS = "BEGIN:VCALENDAR\nVERSION:2.0\nBEGIN:VEVENT\nUID:x\nEND:VEVENT\nEND:VCALENDAR\n"


async def test_rejected_credentials_raise_auth_failed(
    server: ScriptedServer, client: CalDAVClient
) -> None:
    """401 with a Basic challenge, also after credentials were sent: AuthFailed."""
    sent: list[str | None] = []

    async def refuse(request: web.Request, _body: str) -> web.StreamResponse:
        sent.append(request.headers.get("Authorization"))
        return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="x"'})

    server.handler = refuse
    with pytest.raises(errors.AuthFailed) as caught:
        await client.sync(None)
    assert caught.value.status == 401
    assert caught.value.__cause__ is not None
    assert any(s and s.startswith("Basic ") for s in sent)  # credentials were tried


@pytest.mark.parametrize(
    ("status", "create", "expected"),
    [
        (403, True, errors.PermissionDenied),
        (403, False, errors.PermissionDenied),
        (404, False, errors.NotFound),
        (400, True, errors.InvalidRequest),
        (412, True, errors.AlreadyExists),
        (412, False, errors.EtagMismatch),
        (500, False, errors.SourceUnavailable),
        (503, True, errors.SourceUnavailable),
        (423, True, errors.SourceUnavailable),  # Xandikos: its repository is locked
        (423, False, errors.SourceUnavailable),
    ],
)
async def test_write_statuses_map_to_syncd_errors(
    server: ScriptedServer,
    client: CalDAVClient,
    status: int,
    create: bool,
    expected: type[errors.SourceError],
) -> None:
    """Each failing PUT status becomes its syncd error, raised from the library's exception."""
    server.handler = answer(status, "nope")
    with pytest.raises(expected) as caught:
        await client.put(COLLECTION + "x.ics", ICS, etag='"e1"', create=create)
    assert type(caught.value) is expected
    assert caught.value.status == status
    assert caught.value.__cause__ is not None
    method, _, _ = server.seen[-1]
    assert method == "PUT"


@pytest.mark.parametrize(("status", "seconds"), [(429, 7.0), (503, 3.0), (429, None)])
async def test_throttling_raises_rate_limited_with_retry_after(
    server: ScriptedServer, client: CalDAVClient, status: int, seconds: float | None
) -> None:
    """429, or 503 with Retry-After, is RateLimited carrying the server's delay (or None)."""
    headers = {"Retry-After": str(int(seconds))} if seconds is not None else {}
    server.handler = answer(status, "slow down", headers)
    with pytest.raises(errors.RateLimited) as caught:
        await client.sync("tok")
    assert caught.value.retry_after == seconds
    assert len(server.seen) == 1  # the library did not sleep and retry on its own


async def test_uid_conflict_on_create_is_already_exists(
    server: ScriptedServer, client: CalDAVClient
) -> None:
    """A 409 with CalDAV no-uid-conflict (same UID at another href) is AlreadyExists."""
    body = f"<D:error {NS}><C:no-uid-conflict/></D:error>"
    server.handler = answer(409, body, {"Content-Type": XML})
    with pytest.raises(errors.AlreadyExists):
        await client.put(None, ICS, etag=None, create=True)


async def test_nobody_listening_is_source_unavailable() -> None:
    """Connection refused is SourceUnavailable (retryable)."""
    async with CalDAVClient(f"http://127.0.0.1:{free_port()}/cal/", "a", "b", timeout=2) as dav:
        with pytest.raises(errors.SourceUnavailable) as caught:
            await dav.sync(None)
    assert isinstance(caught.value, errors.Retryable)


async def test_slow_server_times_out_as_source_unavailable(server: ScriptedServer) -> None:
    """A server slower than the client's timeout is SourceUnavailable."""

    async def slow(_request: web.Request, _body: str) -> web.StreamResponse:
        await asyncio.sleep(1.0)
        return web.Response(status=207)

    server.handler = slow
    async with CalDAVClient(server.url, "alice", "secret", timeout=0.2) as dav:
        with pytest.raises(errors.SourceUnavailable):
            await dav.sync("tok")


async def test_malformed_xml_is_bad_response(server: ScriptedServer, client: CalDAVClient) -> None:
    """A 207 whose XML does not parse is BadResponse, not a crash or an empty listing."""
    server.handler = answer(207, "<D:multistatus xmlns:D='DAV:'><D:resp", {"Content-Type": XML})
    with pytest.raises(errors.BadResponse):
        await client.sync(None)


@pytest.mark.parametrize("status", [418, 507, 409, 410])
async def test_quirky_token_answers_mean_invalid_token(
    server: ScriptedServer, client: CalDAVClient, status: int
) -> None:
    """Statuses servers use for a dead token (quirks table) raise SyncTokenInvalid."""
    server.handler = answer(status, "token?")
    with pytest.raises(errors.SyncTokenInvalid):
        await client.sync("old-token")


async def test_server_without_sync_collection_is_listed_by_propfind(
    server: ScriptedServer, client: CalDAVClient
) -> None:
    """sync-collection refused with 415: list by PROPFIND + multiget, complete, no token."""

    async def handle(request: web.Request, body: str) -> web.StreamResponse:
        if "sync-collection" in body:
            return web.Response(status=415)
        if request.method == "PROPFIND":
            listing = multistatus(member(COLLECTION, '"c"'), member(COLLECTION + "a.ics", '"ea"'))
            return web.Response(status=207, text=listing, content_type="application/xml")
        got = multistatus(member(COLLECTION + "a.ics", '"ea"', ICS))
        return web.Response(status=207, text=got, content_type="application/xml")

    server.handler = handle
    listing = await client.sync(None)
    assert listing.complete
    assert listing.token is None
    assert [(i.href, i.etag) for i in listing.items] == [(COLLECTION + "a.ics", '"ea"')]
    assert [m for m, _, _ in server.seen] == ["REPORT", "PROPFIND", "REPORT"]


async def test_multiget_that_drops_items_reports_them_unreadable(
    server: ScriptedServer, client: CalDAVClient
) -> None:
    """Listed hrefs a multiget leaves out are asked again once, then reported, not dropped."""

    async def handle(_request: web.Request, body: str) -> web.StreamResponse:
        if "sync-collection" in body:
            both = multistatus(
                member(COLLECTION + "a.ics", '"ea"'),
                member(COLLECTION + "b.ics", '"eb"'),
                token="t1",
            )
            return web.Response(status=207, text=both, content_type="application/xml")
        only_a = multistatus(member(COLLECTION + "a.ics", '"ea"', ICS))
        return web.Response(status=207, text=only_a, content_type="application/xml")

    server.handler = handle
    listing = await client.sync(None)
    assert [i.href for i in listing.items] == [COLLECTION + "a.ics"]
    assert [(u.href, u.etag) for u in listing.unreadable] == [(COLLECTION + "b.ics", '"eb"')]
    multigets = [b for m, _, b in server.seen if "calendar-multiget" in b]
    assert len(multigets) == 2
    assert "b.ics" in multigets[1]
    assert "a.ics" not in multigets[1]


async def test_truncated_sync_is_followed_to_the_end(
    server: ScriptedServer, client: CalDAVClient
) -> None:
    """A sync-collection reply truncated with 507 (RFC 6578 3.6) is continued with its token."""

    async def handle(_request: web.Request, body: str) -> web.StreamResponse:
        if "<D:sync-token>t0</D:sync-token>" in body:
            cut = (
                f"<D:response><D:href>{COLLECTION}</D:href>"
                "<D:status>HTTP/1.1 507 Insufficient Storage</D:status></D:response>"
            )
            page = multistatus(member(COLLECTION + "a.ics", '"ea"', ICS), cut, token="t1")
        else:
            gone = (
                f"<D:response><D:href>{COLLECTION}b.ics</D:href>"
                "<D:status>HTTP/1.1 404 Not Found</D:status></D:response>"
            )
            page = multistatus(gone, token="t2")
        return web.Response(status=207, text=page, content_type="application/xml")

    server.handler = handle
    changes = await client.sync("t0")
    assert [i.href for i in changes.items] == [COLLECTION + "a.ics"]
    assert changes.deleted == (COLLECTION + "b.ics",)
    assert changes.token == "t2"
    assert len(server.seen) == 2


async def test_truncation_without_a_new_token_is_bad_response(
    server: ScriptedServer, client: CalDAVClient
) -> None:
    """A truncated listing that cannot be continued is an error, never a 'complete' listing."""
    cut = (
        f"<D:response><D:href>{COLLECTION}</D:href>"
        "<D:status>HTTP/1.1 507 Insufficient Storage</D:status></D:response>"
    )
    page = multistatus(member(COLLECTION + "a.ics", '"ea"'), cut, token="t0")

    async def handle(_request: web.Request, body: str) -> web.StreamResponse:
        return web.Response(status=207, text=page, content_type="application/xml")

    server.handler = handle
    with pytest.raises(errors.BadResponse):
        await client.sync("t0")
    with pytest.raises(errors.BadResponse):
        await client.sync(None)
