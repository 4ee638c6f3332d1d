"""DingTalkClient over real HTTP against tiny scripted aiohttp servers (answers the sandbox
cannot give on purpose: HTML pages, Retry-After, hangs, dead ports, raw paths)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from syncd.adapters.dingtalk import DingTalkClient, TokenCache
from syncd.errors import (
    AuthFailed,
    BadResponse,
    PermissionDenied,
    RateLimited,
    SourceUnavailable,
)
from syncd_lab.stack.ports import free_port

Answer = Callable[[web.Request], web.StreamResponse]


def _json(status: int, body: object, **headers: str) -> web.Response:
    return web.Response(
        status=status, text=json.dumps(body), content_type="application/json", headers=headers
    )


@dataclass
class Scripted:
    """A fake endpoint: token issuing plus a queue of answers for every other request."""

    answers: list[Answer] = field(default_factory=list)
    seen: list[web.Request] = field(default_factory=list)
    tokens_issued: int = 0
    reject_tokens: set[str] = field(default_factory=set)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.path == "/v1.0/oauth2/accessToken":
            self.tokens_issued += 1
            return _json(200, {"accessToken": f"tok{self.tokens_issued}", "expireIn": 7200})
        await request.read()
        self.seen.append(request)
        if request.headers.get("x-acs-dingtalk-access-token") in self.reject_tokens:
            return _json(400, {"code": "InvalidAuthentication", "message": "bad token"})
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        result = answer(request)
        if asyncio.iscoroutine(result):
            return await result  # type: ignore[no-any-return]
        return result


@dataclass
class Harness:
    """A client wired to a scripted server, with a recording sleep."""

    client: DingTalkClient
    server: Scripted
    sleeps: list[float]


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    """A scripted server on loopback and a client with max_retries=3 and a recording sleep."""
    scripted = Scripted()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", scripted.handle)
    sleeps: list[float] = []

    async def sleep(delay: float) -> None:
        sleeps.append(delay)

    async with (
        TestServer(app) as server,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.5)) as session,
    ):
        client = DingTalkClient(
            session,
            str(server.make_url("")),
            "app",
            "secret",
            TokenCache(None),
            max_retries=3,
            sleep=sleep,
        )
        yield Harness(client, scripted, sleeps)


async def test_html_answer_is_bad_response_and_not_retried(harness: Harness) -> None:
    """An HTML page (IP ban) raises BadResponse after exactly one request."""
    harness.server.answers = [
        lambda r: web.Response(text="<html>banned</html>", content_type="text/html")
    ]
    with pytest.raises(BadResponse):
        await harness.client.get_event("u-alice", "e1")
    assert len(harness.server.seen) == 1
    assert harness.sleeps == []


async def test_retry_after_is_honoured(harness: Harness) -> None:
    """A throttled answer with Retry-After: 2 waits exactly 2 s, then succeeds."""
    throttle = {"code": "Forbidden.AccessDenied.QpsLimitForApi", "message": "slow down"}
    harness.server.answers = [
        lambda r: _json(403, throttle, **{"Retry-After": "2"}),
        lambda r: _json(200, {"id": "e1", "summary": "ok"}),
    ]
    event = await harness.client.get_event("u-alice", "e1")
    assert event["summary"] == "ok"
    assert harness.sleeps == [2.0]


async def test_throttling_that_never_ends_gives_up(harness: Harness) -> None:
    """After max_retries throttled retries RateLimited propagates; 4 requests were sent."""
    throttle = {"code": "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi", "message": "no"}
    harness.server.answers = [lambda r: _json(403, throttle)]
    with pytest.raises(RateLimited):
        await harness.client.get_event("u-alice", "e1")
    assert len(harness.server.seen) == 4
    assert len(harness.sleeps) == 3
    assert all(0 <= d <= 0.5 * 2**i for i, d in enumerate(harness.sleeps))


async def test_permission_denied_is_not_retried(harness: Harness) -> None:
    """A missing scope is final: one request, no sleeps."""
    denied = {"code": "Forbidden.AccessDenied.AccessTokenPermissionDenied", "message": "scope"}
    harness.server.answers = [lambda r: _json(403, denied)]
    with pytest.raises(PermissionDenied):
        await harness.client.list_calendars("u-alice")
    assert len(harness.server.seen) == 1
    assert harness.sleeps == []


async def test_retried_write_reuses_its_client_token(harness: Harness) -> None:
    """Retries of one create carry the same x-client-token; the next create gets a new one."""
    harness.server.answers = [
        lambda r: _json(503, {"code": "ServiceUnavailable", "message": "busy"}),
        lambda r: web.Response(status=502, text="<html>bad gateway</html>"),
        lambda r: _json(200, {"id": "e1", "summary": "s"}),
    ]
    await harness.client.create_event("u-alice", {"summary": "s"})
    first = {r.headers["x-client-token"] for r in harness.server.seen}
    assert len(first) == 1
    assert len(harness.server.seen) == 3
    uuid.UUID(first.pop())
    await harness.client.create_event("u-alice", {"summary": "s"})
    assert harness.server.seen[-1].headers["x-client-token"] not in {
        r.headers["x-client-token"] for r in harness.server.seen[:-1]
    }


async def test_hanging_server_times_out_as_source_unavailable(harness: Harness) -> None:
    """A server that does not answer within the session timeout raises SourceUnavailable."""

    async def hang(request: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return _json(200, {})

    harness.server.answers = [hang]
    with pytest.raises(SourceUnavailable, match="timed out"):
        await harness.client.get_event("u-alice", "e1")
    assert len(harness.sleeps) == 3


async def test_rejected_token_is_refreshed_once(harness: Harness) -> None:
    """InvalidAuthentication makes the client fetch a new token and retry once, successfully."""
    harness.server.reject_tokens = {"tok1"}
    harness.server.answers = [lambda r: _json(200, {"id": "e1"})]
    assert (await harness.client.get_event("u-alice", "e1"))["id"] == "e1"
    used = [r.headers["x-acs-dingtalk-access-token"] for r in harness.server.seen]
    assert used == ["tok1", "tok2"]


async def test_token_rejected_twice_is_auth_failed(harness: Harness) -> None:
    """When the fresh token is rejected too, AuthFailed propagates after one refresh."""
    harness.server.reject_tokens = {"tok1", "tok2", "tok3"}
    harness.server.answers = [lambda r: _json(200, {"id": "e1"})]
    with pytest.raises(AuthFailed):
        await harness.client.get_event("u-alice", "e1")
    assert harness.server.tokens_issued == 2
    assert len(harness.server.seen) == 2


async def test_ids_reach_the_server_percent_encoded(harness: Harness) -> None:
    """An id containing '/', '+' and '=' arrives as one encoded path segment."""
    harness.server.answers = [lambda r: _json(200, {"id": r.match_info["tail"]})]
    await harness.client.get_event("u-alice", "a/b+c=")
    assert harness.server.seen[0].raw_path.endswith("/events/a%2Fb%2Bc%3D?maxAttendees=500")
    assert "x-client-token" not in harness.server.seen[0].headers  # reads carry none


async def test_listing_that_repeats_next_token_is_bad_response(harness: Harness) -> None:
    """A server looping on the same nextToken cannot make the client page forever."""
    harness.server.answers = [lambda r: _json(200, {"events": [], "nextToken": "same"})]
    with pytest.raises(BadResponse, match="repeated"):
        await harness.client.list_events("u-alice")
    assert len(harness.server.seen) == 2


async def test_connection_refused_is_retried_then_source_unavailable() -> None:
    """A dead port raises SourceUnavailable after max_retries backoff sleeps."""
    sleeps: list[float] = []

    async def sleep(delay: float) -> None:
        sleeps.append(delay)

    async with aiohttp.ClientSession() as session:
        client = DingTalkClient(
            session,
            f"http://127.0.0.1:{free_port()}",
            "app",
            "s",
            TokenCache(None),
            max_retries=2,
            sleep=sleep,
        )
        with pytest.raises(SourceUnavailable):
            await client.get_event("u-alice", "e1")
    assert len(sleeps) == 2
    assert client.requests["accessToken"] == 3
