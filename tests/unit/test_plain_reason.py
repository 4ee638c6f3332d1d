"""``plain_reason``: the few words an error line gives for a failed connection."""

from __future__ import annotations

import asyncio
import errno
import socket

import aiohttp
import niquests
import pytest
import redis.asyncio as aredis

from syncd.store.reasons import plain_reason
from syncd_lab.stack.ports import free_port


def _wrapped(inner: BaseException) -> Exception:
    """An error holding ``inner`` the way urllib3 does: as an argument, with its repr."""
    middle = ConnectionError(f"<urllib3.connection.HTTPConnection object at 0x7f00>: {inner}")
    middle.__cause__ = inner
    return RuntimeError(middle)


@pytest.mark.parametrize(
    ("inner", "reason"),
    [
        (ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed"), "connection refused"),
        (ConnectionResetError(errno.ECONNRESET, "reset"), "connection reset by peer"),
        (TimeoutError(), "timed out"),
        (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), "name not resolved"),
    ],
)
def test_innermost_os_error_named(inner: BaseException, reason: str) -> None:
    """The innermost OS-level error of the chain decides, whatever wraps it."""
    assert plain_reason(_wrapped(inner)).startswith(reason)


def test_without_os_error_object_reprs_are_removed() -> None:
    """No OS error in the chain: the type and text, minus object reprs."""
    exc = ValueError("<urllib3.response.HTTPResponse object at 0xdeadbeef>: bad chunk")
    assert plain_reason(exc) == "ValueError: bad chunk"


async def test_real_clients_to_a_closed_port() -> None:
    """aiohttp, niquests (what caldav uses) and redis-py all come out the same."""
    url = f"http://127.0.0.1:{free_port()}/"
    caught: list[BaseException] = []
    async with aiohttp.ClientSession() as session:
        try:
            await session.get(url)
        except aiohttp.ClientError as exc:
            caught.append(exc)
    try:
        await niquests.AsyncSession().get(url, timeout=5)
    except niquests.exceptions.RequestException as exc:
        caught.append(exc)
    client = aredis.Redis(port=free_port(), socket_connect_timeout=5)
    try:
        await asyncio.wait_for(client.ping(), 10)
    except aredis.ConnectionError as exc:
        caught.append(exc)
    finally:
        await client.aclose()
    assert [plain_reason(exc) for exc in caught] == ["connection refused"] * 3
