"""Pushes ``calendar_event_change`` to registered callback URLs, as DingTalk does.

Each push is ``POST url?signature=&timestamp=&nonce=`` with body ``{"encrypt": ...}``,
encrypted and signed with the app's token and EncodingAESKey (owner key = app key). The
receiver must answer 200 with an encrypted, correctly signed ``success`` within
:attr:`Pusher.timeout` seconds; anything else is a failed attempt. Failed attempts are
retried after each delay of :attr:`Pusher.retry_delays`; after the last one the push is
stored for ``GET /v1.0/event/callbacks/failedResults``. Pushes run in background tasks and
never delay the API call that caused them.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import structlog
from yarl import URL

from syncd import crypto
from syncd.errors import CallbackError
from syncd_lab.sandbox.writer import Change

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Target:
    """Where and how to push for one app."""

    app_key: str
    corp_id: str
    url: str
    token: str
    aes_key: str
    owner_key: str


def calendar_id_of(union_id: str) -> str:
    """An opaque calendar id for a user's primary calendar (never the literal ``primary``)."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"dingtalk-calendar:{union_id}").hex


def payload(change: Change, target: Target, now_ms: int, *, camel: bool) -> dict[str, Any]:
    """The decrypted ``calendar_event_change`` body (PascalCase, or camelCase fields)."""
    biz_id = uuid.uuid4().hex
    fields = {
        "CalendarEventId": change.event_id,
        "CalendarEventUpdateTime": change.update_ms,
        "CalendarId": calendar_id_of(change.organizer),
        "UnionIdList": list(change.union_ids),
        "ChangeType": change.change_type,
        "LegacyCalendarEventId": change.legacy_id,
    }
    if camel:
        fields = {k[0].lower() + k[1:]: v for k, v in fields.items()}
        fields["eventId"] = biz_id
    return {
        "EventType": "calendar_event_change",
        "EventTime": now_ms,
        "CorpId": target.corp_id,
        "BizId": biz_id,
        **fields,
        "operator": {"type": "user"},
    }


class Pusher:
    """Sends pushes in background tasks, retries, and records the outcome."""

    def __init__(
        self,
        *,
        retry_delays: tuple[float, ...] = (0.2, 0.5, 1.0),
        timeout: float = 1.5,
        rng: random.Random | None = None,
        on_failed: Callable[[Target, dict[str, Any]], None] | None = None,
    ) -> None:
        self.retry_delays = retry_delays
        self.timeout = timeout
        self.rng = rng or random.Random(0)
        self.drop_rate = 0.0
        self.on_failed = on_failed
        self.counts = {"sent": 0, "failed": 0, "attempts": 0, "retries": 0, "dropped": 0}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        """Cancel pending pushes and close the HTTP session."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        """Run ``coro`` in the background, tracked so :meth:`drain` can wait for it."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def drain(self) -> None:
        """Wait until every pending push, retries included, has finished."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def pending(self) -> int:
        """Number of pushes still in flight."""
        return len(self._tasks)

    async def attempt(self, target: Target, message: str) -> bool:
        """One POST of ``message``; True if the receiver answered a valid ``success``."""
        sealed = crypto.seal(message, target.token, target.aes_key, target.owner_key)
        url = URL(target.url).update_query(
            signature=sealed["signature"], timestamp=sealed["timestamp"], nonce=sealed["nonce"]
        )
        self.counts["attempts"] += 1
        try:
            async with self._client().post(
                url,
                json={"encrypt": sealed["encrypt"]},
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            ) as resp:
                if resp.status != 200:
                    return False
                return _is_success(await resp.json(content_type=None), target)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.info("callback_attempt_failed", url=target.url, error=repr(exc))
            return False

    async def deliver(self, target: Target, body: dict[str, Any]) -> bool:
        """Push with retries; a final failure is handed to ``on_failed``."""
        message = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
        if self.drop_rate and self.rng.random() < self.drop_rate:
            self.counts["dropped"] += 1
            log.info("callback_dropped", app_key=target.app_key, biz_id=body.get("BizId"))
            return False
        for delay in (0.0, *self.retry_delays):
            if delay:
                self.counts["retries"] += 1
                await asyncio.sleep(delay)
            if await self.attempt(target, message):
                self.counts["sent"] += 1
                return True
        self.counts["failed"] += 1
        log.warning("callback_failed", app_key=target.app_key, url=target.url)
        if self.on_failed is not None:
            self.on_failed(target, body)
        return False


def _is_success(reply: Any, target: Target) -> bool:
    if not isinstance(reply, dict):
        return False
    try:
        text = crypto.open_callback(
            target.token,
            target.aes_key,
            target.owner_key,
            signature=str(reply.get("msg_signature", "")),
            timestamp=str(reply.get("timeStamp", "")),
            nonce=str(reply.get("nonce", "")),
            encrypt=str(reply.get("encrypt", "")),
        )
    except CallbackError:
        return False
    return text == "success"
