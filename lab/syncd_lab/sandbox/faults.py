"""Injected faults: latency, server errors, throttling, dropped callbacks, a QPS limit.

Random decisions come from one seeded :class:`random.Random`, so a test that sets the
same faults with the same seed sees the same sequence of failures.

* ``error_rate`` — that share of API calls fails: ``500 InternalError`` *before* the
  operation runs, or ``504 GatewayTimeout`` *after* it ran (the change happened, the caller
  cannot know: the case ``x-client-token`` exists for). ``error_status`` pins one of the two.
* ``throttle_rate`` — that share answers ``403 Forbidden.AccessDenied.QpsLimitForAppkeyAndApi``.
* ``qps_limit`` — a real per-app-per-operation limit of calls per second (DingTalk: 20).
* ``callback_drop_rate`` — that share of pushes is silently lost (not even stored as failed).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from syncd_lab.sandbox.errors import GATEWAY_TIMEOUT, INTERNAL, THROTTLED, ApiError


@dataclass(frozen=True)
class Faults:
    """The fault settings (all off by default)."""

    latency_ms: float = 0.0
    error_rate: float = 0.0
    error_status: int | None = None  # 500, 504 or None for either
    throttle_rate: float = 0.0
    callback_drop_rate: float = 0.0
    qps_limit: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON form."""
        return asdict(self)


def _check(faults: Faults) -> None:
    for name in ("error_rate", "throttle_rate", "callback_drop_rate"):
        if not 0.0 <= float(getattr(faults, name)) <= 1.0:
            raise ValueError(f"{name} must be between 0 and 1")
    if faults.latency_ms < 0:
        raise ValueError("latency_ms must not be negative")
    if faults.error_status not in (None, 500, 504):
        raise ValueError("error_status must be 500, 504 or null")
    if faults.qps_limit is not None and faults.qps_limit < 1:
        raise ValueError("qps_limit must be a positive integer or null")


class FaultInjector:
    """Decides, per API call, whether and how it fails."""

    def __init__(self, seed: int = 0) -> None:
        self.faults = Faults()
        self.rng = random.Random(seed)
        self._calls: dict[tuple[str, str], deque[float]] = {}

    def set(self, *, seed: int | None = None, **changes: Any) -> Faults:
        """Change some settings (unknown names raise ValueError); ``seed`` reseeds the RNG."""
        known = {f.name for f in fields(Faults)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown fault settings: {sorted(unknown)}")
        updated = replace(self.faults, **changes)
        _check(updated)
        self.faults = updated
        if seed is not None:
            self.rng.seed(seed)
        return updated

    def reset(self) -> None:
        """All faults off."""
        self.faults = Faults()
        self._calls.clear()

    def _over_limit(self, app_key: str, op: str) -> bool:
        limit = self.faults.qps_limit
        if limit is None:
            return False
        now = time.monotonic()
        calls = self._calls.setdefault((app_key, op), deque())
        while calls and calls[0] <= now - 1.0:
            calls.popleft()
        if len(calls) >= limit:
            return True
        calls.append(now)
        return False

    async def before(self, app_key: str, op: str) -> bool:
        """Sleep the latency, raise throttling/500 errors; True if the call should 504 after."""
        f = self.faults
        if f.latency_ms:
            await asyncio.sleep(f.latency_ms / 1000)
        if self._over_limit(app_key, op) or (
            f.throttle_rate and self.rng.random() < f.throttle_rate
        ):
            raise ApiError(403, THROTTLED, "request rate exceeds the limit for this app and API")
        if not (f.error_rate and self.rng.random() < f.error_rate):
            return False
        status = f.error_status or self.rng.choice((500, 504))
        if status == 500:
            raise ApiError(500, INTERNAL, "the service encountered an internal error")
        return True

    @staticmethod
    def timeout_error() -> ApiError:
        """The 504 answered after an operation ran."""
        return ApiError(504, GATEWAY_TIMEOUT, "the gateway timed out waiting for the service")
