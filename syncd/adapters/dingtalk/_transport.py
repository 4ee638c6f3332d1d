"""The one way a DingTalk call is made: tokens, idempotency keys, retries, error mapping.

:meth:`Transport._request` sends a :class:`~syncd.adapters.dingtalk._wire.Request` over an
injected ``aiohttp.ClientSession``:

* adds ``x-acs-dingtalk-access-token`` (from the :class:`TokenCache`) and, for writes, an
  ``x-client-token`` generated once per logical call and **reused by every retry of it**,
  so a create retried after a timeout cannot create a second event;
* retries ``Retryable`` errors (throttling, 5xx, timeouts, dropped connections) up to
  ``max_retries`` times with exponential backoff and full jitter (a ``Retry-After`` from
  the server wins);
* on ``InvalidAuthentication`` replaces the token and retries once; if the new token is
  rejected too, ``AuthFailed`` propagates;
* never retries ``PermissionDenied``, ``InvalidRequest``, ``NotFound``, ``BadResponse``;
* awaits ``pace`` (the app's shared request pace, :mod:`syncd.store.ratelimit`) before
  every HTTP request it sends, retries and token fetches included, so all workers of one
  app together stay under its configured calls per second.

:meth:`Transport._send` is the only place where aiohttp exceptions become ``syncd.errors``.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import structlog
from yarl import URL

from syncd.adapters.dingtalk import _wire as wire
from syncd.adapters.dingtalk._errors import INVALID_AUTHENTICATION
from syncd.adapters.dingtalk.tokens import TokenCache
from syncd.errors import (
    AuthFailed,
    BadResponse,
    InvalidRequest,
    RateLimited,
    Retryable,
    SourceError,
    SourceUnavailable,
)
from syncd.observability import REQUESTS

log = structlog.get_logger(__name__)

Sleep = Callable[[float], Awaitable[None]]
Pace = Callable[[], Awaitable[None]]


def backoff_delay(
    attempt: int, exc: Retryable, base: float, cap: float, rng: random.Random
) -> float:
    """Full-jitter exponential backoff, uniform in [0, min(cap, base * 2**attempt)].

    A server-sent ``Retry-After`` (on ``RateLimited``) is honoured as is instead.
    """
    if isinstance(exc, RateLimited) and exc.retry_after is not None:
        return exc.retry_after
    return rng.uniform(0, min(cap, base * 2**attempt))


class Transport:
    """Authenticated, retrying access to one DingTalk app's API (base of the client)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        api_base: str,
        app_key: str,
        app_secret: str,
        tokens: TokenCache,
        *,
        max_retries: int = 5,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        pace: Pace | None = None,
    ) -> None:
        self._session = session
        self._base = api_base.rstrip("/")
        self.app_key = app_key
        self._secret = app_secret
        self._tokens = tokens
        self._max_retries = max_retries
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._pace = pace
        self.requests: Counter[str] = Counter()  # HTTP requests sent, by operation

    def backoff(self, attempt: int, exc: Retryable) -> float:
        """Seconds to wait before retry number ``attempt + 1`` (see :func:`backoff_delay`)."""
        return backoff_delay(attempt, exc, self._backoff_base, self._backoff_cap, self._rng)

    async def _request(self, req: wire.Request) -> dict[str, Any]:
        """Send ``req`` with token, idempotency key and retries; return the JSON answer."""
        client_token = str(uuid.uuid4()) if req.write else None
        attempt, stale, refreshed = 0, None, False
        while True:
            token = await self._token(stale) if req.auth else None
            try:
                return await self._send(req, token, client_token)
            except AuthFailed as exc:
                if not req.auth or refreshed or exc.code != INVALID_AUTHENTICATION:
                    raise
                log.info("dingtalk.token.rejected", op=req.op, app_key=self.app_key)
                refreshed, stale = True, token
            except Retryable as exc:
                if attempt >= self._max_retries:
                    log.warning(
                        "dingtalk.retry.gave_up", op=req.op, attempts=attempt + 1, error=str(exc)
                    )
                    raise
                delay = self.backoff(attempt, exc)
                attempt += 1
                log.info(
                    "dingtalk.retry",
                    op=req.op,
                    attempt=attempt,
                    delay_s=round(delay, 3),
                    code=exc.code,
                    status=exc.status,
                )
                await self._sleep(delay)

    async def _token(self, stale: str | None) -> str:
        return await self._tokens.get(self.app_key, self._fetch_token, stale=stale)

    async def _fetch_token(self) -> tuple[str, int]:
        data = await self._request(wire.token_request(self.app_key, self._secret))
        return wire.decode_token(data)

    async def _send(
        self, req: wire.Request, token: str | None, client_token: str | None
    ) -> dict[str, Any]:
        """One HTTP exchange; the single place mapping aiohttp exceptions to syncd.errors."""
        url = URL(self._base + req.path, encoded=True)
        if req.query:
            url = url.with_query(dict(req.query))
        if self._pace is not None:
            await self._pace()
        started = time.monotonic()
        self.requests[req.op] += 1
        try:
            async with self._session.request(
                req.method, url, data=req.payload(), headers=req.headers(token, client_token)
            ) as resp:
                body = await resp.read()
                status, ctype = resp.status, resp.content_type
                retry_after = resp.headers.get("Retry-After")
        except aiohttp.InvalidURL as exc:
            raise InvalidRequest(f"DingTalk {req.op}: invalid URL {exc}") from exc
        except TimeoutError as exc:
            REQUESTS.labels("dingtalk", "error").inc()
            raise SourceUnavailable(f"DingTalk {req.op} timed out") from exc
        except aiohttp.ClientResponseError as exc:  # incl. ContentTypeError
            REQUESTS.labels("dingtalk", "error").inc()
            raise BadResponse(f"DingTalk {req.op}: unreadable answer: {exc}") from exc
        except aiohttp.ClientError as exc:  # connection refused/reset, payload errors, ...
            REQUESTS.labels("dingtalk", "error").inc()
            raise SourceUnavailable(f"DingTalk {req.op}: {type(exc).__name__}: {exc}") from exc
        log.debug(
            "dingtalk.http",
            op=req.op,
            status=status,
            ms=round((time.monotonic() - started) * 1000, 1),
        )
        return _decode_counted(status, body, ctype, retry_after)


def _decode_counted(
    status: int, body: bytes, ctype: str, retry_after: str | None
) -> dict[str, Any]:
    """Decode an answer, counting it by its DingTalk error code (else its HTTP status)."""
    try:
        data = wire.decode(status, body, ctype, retry_after=retry_after)
    except SourceError as exc:
        REQUESTS.labels("dingtalk", exc.code or str(status)).inc()
        raise
    REQUESTS.labels("dingtalk", str(status)).inc()
    return data
