"""IcsClient against the local feed server: conditional GET, limits and every fault."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from syncd import errors
from syncd.adapters.ics.client import IcsClient, http_url
from tests.fixtures.feed_server import FeedServer, vevent


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def client(feed: FeedServer, session: aiohttp.ClientSession, **kw: object) -> IcsClient:
    return IcsClient(session, feed.feed_url, **kw)  # type: ignore[arg-type]


async def test_second_fetch_is_conditional_and_answered_304(
    feed_server: FeedServer, session: aiohttp.ClientSession
) -> None:
    """The validators of the first answer make the second request a 304 without a body."""
    feed_server.events = {"a": vevent("a", "One")}
    c = client(feed_server, session)
    first = await c.fetch()
    assert first.text is not None
    assert "UID:a" in first.text
    assert first.etag
    second = await c.fetch(first.etag, first.last_modified)
    assert second.text is None
    assert feed_server.statuses() == [200, 304]


async def test_changed_feed_is_fetched_again(
    feed_server: FeedServer, session: aiohttp.ClientSession
) -> None:
    """A changed body has a new ETag: the conditional GET returns it in full."""
    feed_server.events = {"a": vevent("a", "One")}
    c = client(feed_server, session)
    first = await c.fetch()
    feed_server.events["a"] = vevent("a", "One, edited")
    second = await c.fetch(first.etag, first.last_modified)
    assert second.text is not None
    assert "One, edited" in second.text
    assert second.etag != first.etag


async def test_gzip_redirects_auth_and_webcal(
    feed_server: FeedServer, session: aiohttp.ClientSession
) -> None:
    """A gzip body behind 5 redirects and Basic auth is read; webcal:// means https://."""
    feed_server.events = {"a": vevent("a", "Zipped")}
    feed_server.gzip = True
    feed_server.auth = ("feed", "pw")
    c = IcsClient(session, f"{feed_server.url}/hop/4", username="feed", password="pw")
    got = await c.fetch()
    assert got.text is not None
    assert "SUMMARY:Zipped" in got.text
    assert [p for p, _ in feed_server.requests][-1] == "/feed.ics"
    assert http_url("WEBCAL://example.org/x.ics") == "https://example.org/x.ics"
    assert http_url("http://example.org/x.ics") == "http://example.org/x.ics"


async def test_wrong_credentials_fail_as_auth(
    feed_server: FeedServer, session: aiohttp.ClientSession
) -> None:
    """A 401 is AuthFailed with the status and host, not the secret path."""
    feed_server.auth = ("feed", "pw")
    with pytest.raises(errors.AuthFailed, match="answered 401") as info:
        await client(feed_server, session, username="feed", password="nope").fetch()
    assert "feed.ics" not in str(info.value)


@pytest.mark.parametrize(
    ("fault", "error", "reason"),
    [
        ("404", errors.BadResponse, "answered 404"),
        ("500", errors.SourceUnavailable, "answered 500"),
        ("redirect-loop", errors.BadResponse, "more than 5 redirects"),
        ("oversize", errors.BadResponse, "over the 10,485,760-byte limit"),
    ],
)
async def test_http_faults_are_one_line_errors(
    feed_server: FeedServer,
    session: aiohttp.ClientSession,
    fault: str,
    error: type[errors.SyncdError],
    reason: str,
) -> None:
    """Each fault is its syncd error class with a one-line reason."""
    feed_server.fault = fault
    with pytest.raises(error, match=reason) as info:
        await client(feed_server, session).fetch()
    assert "\n" not in str(info.value)


async def test_small_limit_refuses_a_body_with_content_length(
    feed_server: FeedServer, session: aiohttp.ClientSession
) -> None:
    """A declared Content-Length above the limit is refused before the body is read."""
    feed_server.events = {f"e{i}": vevent(f"e{i}", "x" * 200) for i in range(20)}
    with pytest.raises(errors.BadResponse, match="Content-Length"):
        await client(feed_server, session, max_bytes=1000).fetch()


async def test_a_feed_that_never_answers_fails_within_the_timeout(
    feed_server: FeedServer, session: aiohttp.ClientSession
) -> None:
    """A configured timeout of 0.5 s ends a hanging request in about that time."""
    feed_server.fault = "timeout"
    started = time.monotonic()
    with pytest.raises(errors.SourceUnavailable, match=r"did not answer within 0\.5s"):
        await client(feed_server, session, timeout=0.5).fetch()
    assert time.monotonic() - started < 5


def test_timeout_is_capped_at_60_seconds() -> None:
    """Whatever is asked, one fetch never waits more than 60 s."""
    c = IcsClient(None, "https://example.org/f.ics", timeout=3600)  # type: ignore[arg-type]
    assert c.timeout == 60


async def test_unreachable_host_is_retryable(session: aiohttp.ClientSession) -> None:
    """Nothing listening: SourceUnavailable (retryable)."""
    from syncd_lab.stack.ports import free_port

    c = IcsClient(session, f"http://127.0.0.1:{free_port()}/f.ics")
    with pytest.raises(errors.SourceUnavailable):
        await c.fetch()


async def test_credentials_never_follow_a_redirect_to_another_origin(
    feed_server: FeedServer, session: aiohttp.ClientSession
) -> None:
    """Redirected from 127.0.0.1 to localhost, the Basic credentials are not sent along:
    the feed (which wants them) answers 401."""
    feed_server.events = {"a": vevent("a", "A")}
    feed_server.auth = ("feed", "pw")
    c = IcsClient(session, f"{feed_server.url}/away", username="feed", password="pw")
    with pytest.raises(errors.AuthFailed, match="401"):
        await c.fetch()
    assert feed_server.requests[-1] == ("/feed.ics", 401)
    same_origin = IcsClient(session, f"{feed_server.url}/hop/1", username="feed", password="pw")
    assert (await same_origin.fetch()).text is not None


async def test_the_limit_counts_decoded_bytes_of_a_gzip_body(
    feed_server: FeedServer, session: aiohttp.ClientSession
) -> None:
    """A gzip body far under the limit that decodes past it is refused while it streams."""
    feed_server.events = {f"e{i}": vevent(f"e{i}", "x" * 500) for i in range(40)}
    feed_server.gzip = True
    with pytest.raises(errors.BadResponse, match="more than"):
        await client(feed_server, session, max_bytes=8000).fetch()
    assert feed_server.statuses() == [200]
    got = await client(feed_server, session, max_bytes=100_000).fetch()
    assert got.text is not None
    assert len(got.text) > 8000


async def test_credentials_in_the_url_and_in_the_config_are_one_line_error(
    feed_server: FeedServer, session: aiohttp.ClientSession
) -> None:
    """aiohttp refuses both at once: a BadResponse naming the host, not a crash."""
    url = feed_server.feed_url.replace("http://", "http://u:p@")
    c = IcsClient(session, url, username="feed", password="pw")
    with pytest.raises(errors.BadResponse, match=r"ICS feed at 127\.0\.0\.1:\d+: ") as info:
        await c.fetch()
    assert "u:p" not in str(info.value)


async def test_an_unknown_charset_is_read_as_utf8(
    feed_server: FeedServer, session: aiohttp.ClientSession
) -> None:
    """A Content-Type naming a charset Python does not know: the body is read as UTF-8."""
    feed_server.events = {"a": vevent("a", "Café 北京")}
    feed_server.charset = "x-no-such-charset"
    got = await client(feed_server, session).fetch()
    assert got.text is not None
    assert "SUMMARY:Café 北京" in got.text
