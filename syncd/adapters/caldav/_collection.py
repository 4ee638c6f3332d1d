"""A bound calendar collection that is not there: a clear error, or MKCALENDAR when asked.

A 404 on the collection itself means the calendar does not exist (yet). Without
``caldav.create`` that is :class:`~syncd.errors.CalendarMissing`, one per-binding reason
(``calendar not found: URL``) that clears itself once somebody creates the calendar. With
it, the collection is made by MKCALENDAR. A refused MKCALENDAR is not the end: another
worker (or a person) may have created the calendar in between, which a PROPFIND of the
collection tells; only if it is still missing does the refusal become the reason.
"""

from __future__ import annotations

from xml.etree import ElementTree

import structlog

from syncd import errors
from syncd.adapters.caldav._errors import Op, map_errors
from syncd.adapters.caldav._http import DavHttp

log = structlog.get_logger(__name__)

_CALDAV = "urn:ietf:params:xml:ns:caldav"


def missing(url: str, why: str = "") -> errors.CalendarMissing:
    """The error of a calendar collection that does not exist."""
    return errors.CalendarMissing(f"calendar not found: {url}" + (f" ({why})" if why else ""))


async def exists(http: DavHttp, url: str) -> bool:
    """Whether a calendar collection exists at ``url`` (a depth-0 PROPFIND).

    Its resource type must say ``calendar``: Xandikos answers a PROPFIND of a missing
    collection with 207 and a 404 inside, others with a plain 404.
    """
    try:
        response = await http.propfind_self()
    except errors.NotFound:
        return False
    body = response._raw_body or response._raw or b""  # caldav keeps the body here
    with map_errors(Op.LIST, url):
        root = ElementTree.fromstring(body)  # noqa: S314  # a server we are configured to trust
    return root.find(f".//{{DAV:}}resourcetype/{{{_CALDAV}}}calendar") is not None


async def create(http: DavHttp, url: str) -> None:
    """MKCALENDAR ``url``; ``CalendarMissing`` only if it is refused and still missing."""
    try:
        await http.mkcalendar()
    except errors.SourceError as exc:
        if isinstance(exc, errors.Retryable) or not await exists(http, url):
            answer = f"{exc.status} " if exc.status else ""
            raise missing(url, f"MKCALENDAR refused: {answer}{type(exc).__name__}") from exc
        log.info("caldav_calendar_exists", url=url, mkcalendar=str(exc))
        return
    log.warning("caldav_calendar_created", url=url)
