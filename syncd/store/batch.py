"""Group commit: the concurrent calls of one Lua script sent to Redis as one pipeline.

Every push the webhook acknowledges costs one script call (:func:`syncd.queue.queue_delivery`),
and through redis-py one call costs far more client CPU than the round trip itself (pool
checkout, retry wrapper, timeouts: BENCHMARKS.md section 4c). A :class:`ScriptBatch` lets
the calls that arrive in the same event-loop iteration share that cost: the first call into
an empty batch schedules a flush for the next iteration, every call made until then joins the
batch, and the flush sends them all as one non-transactional pipeline of ``EVALSHA`` (one
connection checkout, one write, one read loop). Each caller awaits its own reply, so an
acknowledgement still follows its own durable write, and sees exactly what a lone call would:

* its script's reply, or its own ``ResponseError`` (another call's error is not its error);
* ``NOSCRIPT`` (Redis restarted and lost its script cache): the script is sent again with
  ``EVAL`` for just those calls, as a lone call would fall back;
* a connection error or timeout of the pipeline: every call of the batch gets it (as a lone
  call would, nothing tells which scripts ran; each caller answers as if its own failed, and
  a script that did run is still safe to repeat: its dedupe key says so).

A lone call (a batch of one) is sent as a plain ``EVALSHA``, so with no concurrency nothing
changes. Callers wrap the call in :func:`syncd.store.guard.redis_errors` as before.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from weakref import WeakKeyDictionary

from redis.asyncio import Redis
from redis.exceptions import NoScriptError, ResponseError

from syncd.store.guard import awaited

Call = tuple[Sequence[Any], Sequence[Any], "asyncio.Future[Any]"]
"""One waiting call: its KEYS, its ARGV and the future its caller awaits."""


@dataclass(eq=False)
class ScriptBatch:
    """The calls of ``script`` waiting for the next flush, per Redis client."""

    script: str
    sha: str = field(init=False)
    _pending: WeakKeyDictionary[Redis, list[Call]] = field(
        default_factory=WeakKeyDictionary, init=False
    )
    _flushing: set[asyncio.Task[None]] = field(default_factory=set, init=False)
    flushes: int = field(default=0, init=False)
    """Batches sent so far (with :attr:`calls`: the mean batch size)."""
    calls: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.sha = hashlib.sha1(self.script.encode(), usedforsecurity=False).hexdigest()

    async def call(self, redis: Redis, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """The script's reply for ``keys`` and ``args``, sent with the calls around it.

        Raises what redis-py raises for the call (see the module docstring).
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        pending = self._pending.setdefault(redis, [])
        pending.append((keys, args, future))
        if len(pending) == 1:  # its first step runs in the next iteration
            task = loop.create_task(self._flush(redis))
            self._flushing.add(task)
            task.add_done_callback(self._flushing.discard)
        return await future

    async def _flush(self, redis: Redis) -> None:
        batch = self._pending.pop(redis, [])
        self.flushes += 1
        self.calls += len(batch)
        live = [call for call in batch if not call[2].done()]  # a caller may be cancelled
        if not live:
            return
        try:
            replies = await self._send(redis, live)
        except asyncio.CancelledError:
            for _, _, future in live:
                future.cancel()
            raise
        except Exception as exc:  # every caller gets it, as a lone call would
            for _, _, future in live:
                _settle(future, exc)
            return
        for (_, _, future), reply in zip(live, replies, strict=True):
            _settle(future, reply)

    async def _send(self, redis: Redis, batch: list[Call]) -> list[Any]:
        """Per call, its reply or its ``ResponseError``."""
        if len(batch) == 1:
            keys, args, _ = batch[0]
            return [await self._alone(redis, keys, args)]
        replies = await self._pipeline(redis, "EVALSHA", batch)
        lost = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if lost:  # Redis lost its script cache: send those again with the script itself
            again = await self._pipeline(redis, "EVAL", [batch[i] for i in lost])
            for i, reply in zip(lost, again, strict=True):
                replies[i] = reply
        return replies

    async def _alone(self, redis: Redis, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        try:
            try:
                return await awaited(redis.evalsha(self.sha, len(keys), *keys, *args))
            except NoScriptError:
                return await awaited(redis.eval(self.script, len(keys), *keys, *args))
        except ResponseError as exc:  # this call's own error, as in a pipeline
            return exc

    async def _pipeline(self, redis: Redis, command: str, batch: list[Call]) -> list[Any]:
        body = self.sha if command == "EVALSHA" else self.script
        pipe = redis.pipeline(transaction=False)
        for keys, args, _ in batch:
            pipe.execute_command(command, body, len(keys), *keys, *args)
        return list(await pipe.execute(raise_on_error=False))


def _settle(future: asyncio.Future[Any], outcome: Any) -> None:
    if future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
