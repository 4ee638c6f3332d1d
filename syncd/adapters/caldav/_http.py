"""The requests the CalDAV client sends, on ``caldav.aio.AsyncDAVClient`` (niquests beneath).

Credentials go out with the first request: with a username and password the library is
given ``auth_type="basic"``, which builds the Basic auth object up front. Left to itself
it sends each new client's first request without credentials, takes the 401 and only
then retries (a wasted round trip per poll, and on servers whose 401 carries an HTML
body, such as Cyrus, a warning from the library every time). A server that refuses
Basic (a Digest-only server, say) gets one retry with the library's own negotiation.

Every request goes through :func:`_errors.map_errors` and :func:`_errors.raise_for_status`,
so callers only ever see ``syncd.errors``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Container, Mapping
from functools import partial
from typing import Any

import structlog
from caldav import aio
from caldav.lib import error as dav_error

from syncd.adapters.caldav._errors import Op, map_errors, raise_for_status
from syncd.observability import REQUESTS

log = structlog.get_logger(__name__)

_MULTISTATUS = (200, 207)


class DavHttp:
    """One HTTP session to one CalDAV server; ``url`` is the calendar collection."""

    def __init__(
        self, url: str, username: str | None, password: str | None, *, timeout: float
    ) -> None:
        self.url = url
        self._preemptive = username is not None and password is not None
        self._dav = aio.AsyncDAVClient(
            url=url,
            username=username,
            password=password,
            auth_type="basic" if self._preemptive else None,
            timeout=timeout,  # type: ignore[arg-type]  # niquests takes float seconds
            enable_rfc6764=False,
            rate_limit_handle=False,  # we raise RateLimited and let the job queue back off
        )

    async def close(self) -> None:
        """Close the HTTP session."""
        await self._dav.close()

    async def report(self, op: Op, body: str, depth: int | None) -> Any:
        """A REPORT on the collection; the 207 answer."""
        call = partial(self._dav.report, self.url, body, depth=depth)
        return await self.send(op, self.url, self.url, _MULTISTATUS, call)

    async def propfind(self, op: Op, body: str) -> Any:
        """A depth-1 PROPFIND on the collection; the 207 answer."""
        call = partial(self._dav.propfind, self.url, body=body, depth=1)
        return await self.send(op, self.url, self.url, _MULTISTATUS, call)

    async def propfind_self(self) -> Any:
        """A depth-0 PROPFIND of the collection itself (``NotFound`` when it is missing)."""
        body = '<?xml version="1.0"?><propfind xmlns="DAV:"><prop><resourcetype/></prop></propfind>'
        call = partial(self._dav.propfind, self.url, body=body, depth=0)
        return await self.send(Op.LIST, self.url, self.url, _MULTISTATUS, call)

    async def propfind_collection(self, op: Op, body: str) -> Any:
        """A depth-0 PROPFIND of the collection with ``body``; the 207 answer."""
        call = partial(self._dav.propfind, self.url, body=body, depth=0)
        return await self.send(op, self.url, self.url, _MULTISTATUS, call)

    async def post(self, op: Op, body: str, headers: Mapping[str, str]) -> Any:
        """A POST of ``body`` to the collection; the 200 or 201 answer."""
        call = partial(self._dav.post, self.url, body, headers)
        return await self.send(op, self.url, self.url, (200, 201), call)

    async def mkcalendar(self) -> Any:
        """MKCALENDAR the collection; the 201 answer."""
        call = partial(self._dav.mkcalendar, self.url)
        return await self.send(Op.CREATE, self.url, self.url, (201,), call)

    async def get(self, href: str, url: str) -> Any:
        """A GET of one item at ``url``; the 200 answer (``NotFound`` when it is gone)."""
        call = partial(self._dav.request, url, "GET", "", {"Accept": "text/calendar"})
        return await self.send(Op.READ, href, url, (200,), call)

    async def put(self, op: Op, href: str, url: str, text: str, headers: Mapping[str, str]) -> Any:
        """A PUT of ``text`` at ``url``; the answer (200, 201 or 204)."""
        call = partial(self._dav.put, url, text, headers)
        return await self.send(op, href, url, (200, 201, 204), call, _condition(headers))

    async def delete(self, href: str, url: str, headers: Mapping[str, str]) -> None:
        """A DELETE of ``url``; 404 (already gone) is fine."""
        call = partial(self._dav.delete, url, headers)
        await self.send(Op.DELETE, href, url, (200, 202, 204, 404), call, _condition(headers))

    async def send(
        self,
        op: Op,
        what: str,
        url: str,
        ok: Container[int],
        call: Callable[[], Awaitable[Any]],
        condition: str | None = None,
    ) -> Any:
        """The answer to ``call()``, raised as ``syncd.errors`` unless its status is in ``ok``."""
        with map_errors(op, what, condition):
            try:
                response = await _counted(call)
            except dav_error.AuthorizationError as exc:
                if not self._give_up_preemptive_basic(exc):
                    raise
                response = await _counted(call)
            raise_for_status(response, ok, url)
        return response

    def _give_up_preemptive_basic(self, exc: dav_error.AuthorizationError) -> bool:
        """After a 401 to our unasked-for Basic: let the library negotiate (once per client)."""
        if exc.status != 401 or not self._preemptive:
            return False
        self._preemptive = False
        self._dav.auth = None
        self._dav.auth_type = None
        log.info("caldav_basic_refused", url=self.url)
        return True


def _condition(headers: Mapping[str, str]) -> str | None:
    """The etag a conditional request depends on (``If-Match``, or ``If-None-Match``)."""
    return headers.get("If-Match") or headers.get("If-None-Match")


async def _counted(call: Callable[[], Awaitable[Any]]) -> Any:
    """``call()``, counted in ``syncd_requests_total`` by its HTTP status ('error': none)."""
    try:
        response = await call()
    except dav_error.DAVError as exc:  # the library raises some statuses (401, 429)
        REQUESTS.labels("caldav", str(exc.status) if exc.status else "error").inc()
        raise
    except Exception:
        REQUESTS.labels("caldav", "error").inc()
        raise
    REQUESTS.labels("caldav", str(response.status)).inc()
    return response
