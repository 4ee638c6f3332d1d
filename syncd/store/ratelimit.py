"""One request pace per DingTalk app, shared by every worker: a token bucket in Redis.

DingTalk throttles each app (``Forbidden.AccessDenied.QpsLimitForAppkeyAndApi``). If
every worker only backed off after being throttled, N workers would keep hitting the
limit N times as often. Instead every DingTalk call first takes a token from its app's
bucket (key ``syncd:@dingtalk:<app key>:rate``, see :mod:`syncd.store.keys`); the whole
fleet then starts at most ``qps`` calls in any one second, however many workers there
are. The bucket refills a little slower than ``qps`` (``qps / (1 + JITTER_S)``): calls
granted exactly ``1/qps`` apart would reach DingTalk as ``qps + 1`` calls within one
second as soon as network or scheduling delays bunch two of them; with the margin they
may bunch by up to :data:`JITTER_S` and still stay within ``qps``.

The bucket is one Lua script (:data:`_TAKE`), so concurrent takers never race: it refills
by the time elapsed on Redis' own clock (``TIME``, the one clock all machines share),
takes one token even when there is none (a *reservation*: the balance goes negative) and
answers how long the caller must wait for its token. Waiters are therefore spaced
``1/qps`` apart without polling. The bucket holds at most :data:`BURST` token, so an idle
app cannot save up a burst either.

When Redis is unreachable the pace does not fail the call: it falls back to a bucket in
process memory with the same arithmetic (each worker then keeps to ``qps`` on its own)
and tries Redis again after ``retry_s``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
from redis.asyncio import Redis

from syncd.errors import StoreError
from syncd.store import keys
from syncd.store.guard import redis_errors

log = structlog.get_logger(__name__)

BURST = 1.0
"""Tokens a bucket holds when full: one call may go at once, the rest are paced."""

JITTER_S = 0.1
"""How much delivery delays may bunch paced calls without exceeding ``qps`` in a second."""


def refill_rate(qps: float) -> float:
    """Tokens per second of the bucket of an app allowed ``qps`` calls per second."""
    return qps / (1.0 + JITTER_S)


# KEYS: the bucket (hash: tokens, ts in microseconds).  ARGV: rate (tokens/s), burst.
# Returns the microseconds the caller must wait before its call.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local held = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens, ts = tonumber(held[1]), tonumber(held[2])
if tokens == nil or ts == nil then tokens, ts = burst, now end
if now > ts then
  tokens = math.min(burst, tokens + (now - ts) * rate / 1000000)
  ts = now
end
tokens = tokens - 1
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(ts))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) * 1000 / rate) + 1000)
if tokens >= 0 then return 0 end
return math.ceil(-tokens * 1000000 / rate)
"""

Pace = Callable[[], Awaitable[None]]
"""Waits until one more call may be sent (what the DingTalk transport awaits)."""


@dataclass(slots=True)
class LocalBucket:
    """The same token bucket in process memory (the fallback while Redis is away)."""

    rate: float
    tokens: float = BURST
    ts: float | None = None

    def reserve(self, now: float) -> float:
        """Take one token at ``now`` (seconds); returns the seconds to wait for it."""
        if self.ts is None:
            self.ts = now
        if now > self.ts:
            self.tokens = min(BURST, self.tokens + (now - self.ts) * self.rate)
            self.ts = now
        self.tokens -= 1
        return max(0.0, -self.tokens / self.rate)


class RequestPace:
    """Token buckets per DingTalk app: in Redis when reachable, else in memory."""

    def __init__(
        self,
        redis: Redis | None,
        *,
        retry_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._redis = redis
        self._take = redis.register_script(_TAKE) if redis is not None else None
        self._retry_s = retry_s
        self._clock = clock
        self._sleep = sleep
        self._local: dict[str, LocalBucket] = {}
        self._local_until = 0.0  # use the local buckets until then (Redis was unreachable)
        self.waited = 0.0  # seconds this instance made callers wait, in total

    def for_app(self, app_key: str, qps: float) -> Pace:
        """The pace of one app's calls at ``qps`` calls per second."""
        if qps <= 0:
            raise ValueError(f"qps must be positive, got {qps}")

        async def pace() -> None:
            await self.acquire(app_key, qps)

        return pace

    async def acquire(self, app_key: str, qps: float) -> float:
        """Wait until ``app_key`` may send one more call; returns the seconds waited."""
        wait = await self._reserve(app_key, qps)
        if wait > 0:
            self.waited += wait
            await self._sleep(wait)
        return wait

    async def _reserve(self, app_key: str, qps: float) -> float:
        rate = refill_rate(qps)
        if self._take is not None and self._clock() >= self._local_until:
            try:
                key = keys.app_key(app_key, keys.RATE)
                with redis_errors("rate_limit"):
                    micros = await self._take(keys=[key], args=[rate, BURST])
            except StoreError as exc:
                self._local_until = self._clock() + self._retry_s
                log.warning("dingtalk_pace_local", app_key=app_key, error=str(exc))
            else:
                if self._local_until:
                    self._local_until = 0.0
                    log.info("dingtalk_pace_shared_again", app_key=app_key)
                return int(micros) / 1_000_000
        bucket = self._local.setdefault(app_key, LocalBucket(rate))
        bucket.rate = rate
        return bucket.reserve(self._clock())
