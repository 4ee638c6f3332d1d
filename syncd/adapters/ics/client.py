"""Fetching an iCalendar feed over HTTP(S): one conditional GET, bounded in size and time.

- ``If-None-Match`` / ``If-Modified-Since`` from the last good fetch; a 304 is "unchanged".
- ``webcal://`` is read as ``https://``; optional HTTP Basic credentials.
- gzip/deflate bodies are accepted (and the limit counts the *decoded* bytes, so a small
  compressed bomb is refused too); at most :data:`MAX_REDIRECTS` redirects are followed.
- The body is refused above ``max_bytes`` (default 10 MB) while it streams, whether or
  not the server sent a ``Content-Length``; the whole fetch (redirects and body) must end
  within ``timeout`` seconds (at most 60).

Every failure is a ``syncd.errors`` class with a one-line reason naming the URL's host
(never its path or query, which for private feeds carry a secret):
``SourceUnavailable`` for timeouts, connection errors and 5xx (retryable), ``RateLimited``
for 429, ``AuthFailed`` for 401/403, ``BadResponse`` for any other status, too many
redirects, or an oversized body.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
import structlog

from syncd.errors import AuthFailed, BadResponse, RateLimited, SourceError, SourceUnavailable

log = structlog.get_logger(__name__)

MAX_BYTES = 10 * 1024 * 1024
MAX_REDIRECTS = 5
MAX_TIMEOUT = 60.0
_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class Fetched:
    """One fetch's answer: ``text`` None means 304 Not Modified (validators unchanged)."""

    text: str | None
    etag: str | None
    last_modified: str | None


def http_url(url: str) -> str:
    """``webcal://`` (any case) read as ``https://``; other URLs unchanged."""
    if url[:9].lower() == "webcal://":
        return "https://" + url[9:]
    return url


class IcsClient:
    """Fetches one feed through a shared aiohttp session (the caller owns the session)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        timeout: float = MAX_TIMEOUT,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self.session = session
        self.url = http_url(url)
        self.host = urlsplit(self.url).netloc.rsplit("@", 1)[-1]
        self._auth = aiohttp.encode_basic_auth(username, password or "") if username else None
        self.timeout = min(timeout, MAX_TIMEOUT)
        self.max_bytes = max_bytes

    async def fetch(self, etag: str | None = None, last_modified: str | None = None) -> Fetched:
        """GET the feed, conditionally when validators are given."""
        headers = {"Accept": "text/calendar, */*;q=0.1", "Accept-Encoding": "gzip, deflate"}
        if self._auth:
            headers["Authorization"] = self._auth
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        with self._errors():
            async with asyncio.timeout(self.timeout):
                return await self._get(headers)
        raise AssertionError("unreachable")  # pragma: no cover  (mypy: _errors re-raises)

    async def _get(self, headers: dict[str, str]) -> Fetched:
        async with self.session.get(
            self.url,
            headers=headers,
            max_redirects=MAX_REDIRECTS,
            timeout=aiohttp.ClientTimeout(total=self.timeout),
        ) as resp:
            self._check_status(resp)
            validators = resp.headers.get("ETag"), resp.headers.get("Last-Modified")
            if resp.status == 304:
                log.info("ics_not_modified", host=self.host)
                return Fetched(None, etag=validators[0], last_modified=validators[1])
            body = await self._body(resp)
            text = _decode(body, resp.charset)
            log.info("ics_fetched", host=self.host, bytes=len(body))
            return Fetched(text, *validators)

    def _check_status(self, resp: aiohttp.ClientResponse) -> None:
        status = resp.status
        if status in (200, 304):
            return
        where = f"ICS feed at {self.host} answered {status} {resp.reason or ''}".rstrip()
        if status in (401, 403):
            raise AuthFailed(where, status=status)
        if status == 429:
            retry = resp.headers.get("Retry-After", "")
            after = float(retry) if retry.isdigit() else None
            raise RateLimited(where, status=status, retry_after=after)
        if status >= 500:
            raise SourceUnavailable(where, status=status)
        raise BadResponse(where, status=status)

    async def _body(self, resp: aiohttp.ClientResponse) -> bytes:
        """The decoded body, refused as soon as it passes ``max_bytes``."""
        declared = resp.content_length
        if (
            declared is not None
            and declared > self.max_bytes
            and not resp.headers.get("Content-Encoding")
        ):
            raise self._too_big(f"Content-Length {declared:,}")
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.content.iter_chunked(_CHUNK):
            size += len(chunk)
            if size > self.max_bytes:
                raise self._too_big(f"more than {size:,} bytes read")
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_big(self, found: str) -> BadResponse:
        return BadResponse(
            f"ICS feed at {self.host} is over the {self.max_bytes:,}-byte limit ({found})"
        )

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """aiohttp's and asyncio's exceptions as ``syncd.errors`` (the one place)."""
        try:
            yield
        except SourceError:
            raise
        except TimeoutError as exc:
            raise SourceUnavailable(
                f"ICS feed at {self.host} did not answer within {self.timeout:g}s"
            ) from exc
        except aiohttp.TooManyRedirects as exc:
            raise BadResponse(
                f"ICS feed at {self.host}: more than {MAX_REDIRECTS} redirects"
            ) from exc
        except aiohttp.ClientPayloadError as exc:
            raise SourceUnavailable(f"ICS feed at {self.host}: broken body: {exc}") from exc
        except aiohttp.InvalidURL as exc:
            raise BadResponse(f"ICS feed at {self.host}: invalid URL or redirect target") from exc
        except aiohttp.ClientError as exc:
            raise SourceUnavailable(f"ICS feed at {self.host}: {_first_line(exc)}") from exc
        except ValueError as exc:  # aiohttp refuses credentials both in the URL and given
            raise BadResponse(f"ICS feed at {self.host}: {_first_line(exc)}") from exc


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _decode(body: bytes, charset: str | None) -> str:
    """The body as text in its declared charset (UTF-8 when none, or an unknown one)."""
    try:
        return body.decode(charset or "utf-8", errors="replace")
    except LookupError:
        return body.decode("utf-8", errors="replace")
