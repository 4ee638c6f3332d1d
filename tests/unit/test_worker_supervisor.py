"""How the worker supervisor reads the end of arq's loop: Redis trouble is weather, the rest is not.

arq's ``Worker.main()`` ends with whatever its first failing Redis call raised. Losing the
connection in the middle of the WATCH arq puts on a job's in-progress key surfaces as
``WatchError`` (found by ``tests/faults/test_redis_restart.py``), a demoted master as a
``READONLY`` reply: all of them must restart the worker, not end the process.
"""

from __future__ import annotations

import asyncio

import pytest
import structlog.testing
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError, WatchError

from syncd.errors import StoreUnavailable, SyncdError
from syncd.store.guard import REACHABILITY
from syncd.worker.supervisor import _quiet_redis_trouble, _run


async def _ended_with(exc: BaseException | None) -> asyncio.Task[None]:
    async def main() -> None:
        if exc is not None:
            raise exc

    task = asyncio.create_task(main())
    await asyncio.wait([task])
    return task


@pytest.mark.parametrize(
    "exc",
    [
        WatchError("A ConnectionError occurred on while watching one or more keys"),
        RedisConnectionError("Error 111 connecting to 127.0.0.1:6379."),
        ReadOnlyError("You can't write against a read only replica."),
        ConnectionResetError(104, "Connection reset by peer"),
        StoreUnavailable("redis unavailable during ping"),
    ],
    ids=["watch", "connection", "readonly", "reset", "store"],
)
async def test_redis_trouble_means_restart(exc: BaseException) -> None:
    """A loop ended by any Redis failure reads "lost" and marks Redis unreachable."""
    REACHABILITY.back()
    assert await _run(await _ended_with(exc), asyncio.Event()) == "lost"
    assert not REACHABILITY.up
    REACHABILITY.back()


async def test_other_failures_end_the_process() -> None:
    """A loop ended by anything else (a bug) is a SyncdError: one line, exit 1."""
    with pytest.raises(SyncdError, match="worker failed: KeyError"):
        await _run(await _ended_with(KeyError("ctx")), asyncio.Event())


async def test_stop_wins_over_a_running_loop() -> None:
    """With the loop still running, a set stop event reads "stop"."""
    stop = asyncio.Event()
    main = asyncio.create_task(asyncio.sleep(30))
    stop.set()
    assert await _run(main, stop) == "stop"  # type: ignore[arg-type]
    main.cancel()


def test_an_unawaited_task_dying_of_redis_trouble_is_one_line() -> None:
    """arq's job-finishing task failing on a lost Redis logs one line, not a traceback;
    anything else still reaches asyncio's default handler (found by test_redis_restart)."""
    loop = asyncio.new_event_loop()
    passed_on: list[dict[str, object]] = []
    loop.default_exception_handler = passed_on.append  # type: ignore[method-assign]
    try:
        with structlog.testing.capture_logs() as logs:
            _quiet_redis_trouble(loop, {"exception": RedisConnectionError("Error 111")})
            _quiet_redis_trouble(loop, {"exception": ValueError("a bug")})
    finally:
        loop.close()
    assert [e["event"] for e in logs] == ["worker_task_redis_error"]
    assert logs[0]["error"] == "ConnectionError: Error 111"
    assert [type(c["exception"]) for c in passed_on] == [ValueError]
