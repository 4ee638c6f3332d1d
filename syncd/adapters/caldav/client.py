"""The raw CalDAV client: one calendar collection, iCalendar text in and out.

Built on ``caldav.aio.AsyncDAVClient`` (niquests underneath; ``_http.DavHttp`` sends).
Its high-level helpers do not fit: ``get_objects_by_sync_token(load_objects=True)``
fetches changed objects with one GET each and ``save()`` bumps SEQUENCE, so this client
uses the library's request methods (``report``, ``propfind``, ``put``, ``delete``) and
answer parsers
(``parse_sync_collection``, ``parse_calendar_query``, ``parse_propfind``) directly.

Reading costs one sync-collection REPORT when nothing changed (the changed items come
inline); a full listing is one REPORT (or PROPFIND) for hrefs and etags plus one
calendar-multiget per ``chunk_size`` items. Some servers (DAViCal) answer a token they no
longer know with a plain listing of everything instead of an error; an answer that may be
such a listing is checked (:meth:`CalDAVClient._lists_every_member`), so deletions are
found in the same run: first by asking for a few hrefs the caller knows (``known``, e.g.
mapped ones) that the answer leaves out (one small calendar-multiget: one of them still
there proves the answer incremental), and only when none is there by one PROPFIND of all
the collection's members.
Credentials go with the first request (see ``_http``). Every request goes through
``_errors.map_errors``: callers only ever see ``syncd.errors``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self
from urllib.parse import urljoin, urlsplit

import icalendar
import structlog

from syncd import errors
from syncd.adapters.caldav import _collection, _wire, quirks
from syncd.adapters.caldav._errors import Op, map_errors
from syncd.adapters.caldav._http import DavHttp
from syncd.adapters.caldav._wire import RawItem, Unreadable
from syncd.adapters.caldav.push import Subscription, subscribe

__all__ = ["CalDAVClient", "KnownHrefs", "RawChanges", "RawItem", "Unreadable"]

log = structlog.get_logger(__name__)

_SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")
_MAX_SYNC_PAGES = 100
_PROBES = 3  # known hrefs asked for before listing every member

# Hrefs the caller believes are members (e.g. those its store maps), asked for lazily.
KnownHrefs = Callable[[], Awaitable[Collection[str]]]


@dataclass(frozen=True, slots=True)
class RawChanges:
    """What one :meth:`CalDAVClient.sync` saw.

    ``complete`` is True for a full listing (then ``deleted`` is empty and an absent href
    is gone), also when a sync with a token was answered with one. ``unreadable`` items
    were listed but could not be fetched: report them, never treat them as deleted.
    ``token`` is None when the server cannot do sync-collection (the next call must list
    in full again).
    """

    items: tuple[RawItem, ...]
    deleted: tuple[str, ...]
    unreadable: tuple[Unreadable, ...]
    token: str | None
    complete: bool


class CalDAVClient:
    """Reads and writes the calendar collection at ``url`` (trailing slash optional)."""

    def __init__(
        self,
        url: str,
        username: str | None,
        password: str | None,
        *,
        timeout: float = 30.0,
        chunk_size: int = 100,
        create: bool = False,
    ) -> None:
        self.url = url if url.endswith("/") else url + "/"
        self.create = create
        self.path = urlsplit(self.url).path
        self.chunk_size = chunk_size
        self._http = DavHttp(self.url, username, password, timeout=timeout)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session."""
        await self._http.close()

    async def subscribe_push(self, push_resource: str, expires: float) -> Subscription | None:
        """Register a WebDAV-Push subscription of the collection (:mod:`.push`); None when
        the server does not offer it."""
        return await subscribe(self._http, push_resource, expires)

    def href_for_uid(self, uid: str) -> str:
        """Where an item with ``uid`` is created: ``<collection>/<uid or its hash>.ics``."""
        name = uid if _SAFE_NAME.fullmatch(uid) else hashlib.sha256(uid.encode()).hexdigest()[:40]
        return f"{self.path}{name}.ics"

    def _abs(self, href: str) -> str:
        return urljoin(self.url, _wire.quote_href(href))

    # --- reading -------------------------------------------------------------------

    async def sync(self, token: str | None, *, known: KnownHrefs | None = None) -> RawChanges:
        """Changes since ``token``, or a full listing (``complete=True``) when it is None.

        ``known`` gives hrefs believed to be members; they make telling an incremental
        answer from a full listing cheap (see :meth:`_lists_every_member`). Raises
        ``SyncTokenInvalid`` when the server no longer knows ``token``, and
        ``CalendarMissing`` when the collection does not exist (unless ``create``: then it
        is made with MKCALENDAR and read).
        """
        try:
            return await self._sync(token, known)
        except errors.NotFound as exc:
            if not self.create:
                raise _collection.missing(self.url) from exc
        await _collection.create(self._http, self.url)
        return await self._sync(token, known)

    async def _sync(self, token: str | None, known: KnownHrefs | None) -> RawChanges:
        if token is None:
            return await self._full_listing()
        page = await self._sync_pages(token, with_data=True)
        complete = await self._lists_every_member(page, token, known)
        inline = {h: (e, d) for h, (e, d) in page.changed.items() if d is not None}
        bare = {h: e for h, (e, d) in page.changed.items() if d is None}
        items = [RawItem(h, e, d) for h, (e, d) in inline.items()]
        fetched, unreadable = await self.fetch(bare)
        return RawChanges(
            items=tuple(items + fetched),
            deleted=tuple(sorted(page.deleted)),
            unreadable=tuple(unreadable),
            token=page.token,
            complete=complete,
        )

    async def _lists_every_member(
        self, page: _wire.SyncPage, token: str, known: KnownHrefs | None
    ) -> bool:
        """Whether an answer to a sync with ``token`` names every member of the collection.

        Asked only when the answer could be a full listing in disguise
        (:func:`quirks.may_be_full_listing`). A known href the answer leaves out that is
        still there proves it does not (:meth:`_leaves_out_a_member`: one multiget of a
        few, whatever the collection's size). Otherwise one PROPFIND lists the members
        now there: if each of them is in the answer, every href missing from the answer
        is missing from the collection, so reading the answer as complete can only find
        real deletions, whether the server meant it as a full listing or not.
        """
        if not quirks.may_be_full_listing(page.changed, page.deleted, token, page.token):
            return False
        if await self._leaves_out_a_member(page, known):
            return False
        members = await self._propfind_etags()
        if not members.keys() <= page.changed.keys():
            return False
        log.info("caldav_sync_answer_is_full_listing", url=self.url, items=len(page.changed))
        return True

    async def _leaves_out_a_member(self, page: _wire.SyncPage, known: KnownHrefs | None) -> bool:
        """Is one of a few ``known`` hrefs the answer does not name still in the collection?

        Then the answer is not a listing of every member (a member created between the
        REPORT and this multiget reads the same: as a full PROPFIND would). False when
        there is nothing to ask or none is there: the caller then lists every member.
        """
        if known is None:
            return False
        probes = sorted(h for h in await known() if h not in page.changed)[:_PROBES]
        if not probes:
            return False
        try:
            found = await self._multiget_all(probes)
        except errors.SourceError as exc:
            if isinstance(exc, errors.Retryable):
                raise
            log.info("caldav_member_probe_failed", url=self.url, error=str(exc))
            return False
        return bool(found)

    async def _full_listing(self) -> RawChanges:
        listing, token = await self._list_etags()
        items, unreadable = await self.fetch(listing)
        log.debug("caldav_listed", url=self.url, items=len(items), unreadable=len(unreadable))
        return RawChanges(tuple(items), (), tuple(unreadable), token, complete=True)

    async def _list_etags(self) -> tuple[dict[str, str | None], str | None]:
        try:
            page = await self._sync_pages(None, with_data=False)
        except errors.SourceError as exc:
            if not _sync_unsupported(exc):
                raise
            log.info("caldav_sync_unsupported", url=self.url, status=exc.status)
            return await self._propfind_etags(), None
        return {h: e for h, (e, _) in page.changed.items()}, page.token

    async def _sync_pages(self, token: str | None, *, with_data: bool) -> _wire.SyncPage:
        """One sync-collection, followed while the server truncates (RFC 6578 3.6)."""
        op = Op.SYNC if token else Op.LIST
        changed: dict[str, tuple[str | None, str | None]] = {}
        deleted: set[str] = set()
        for _ in range(_MAX_SYNC_PAGES):
            body = _wire.sync_collection_body(token, with_data=with_data)
            response = await self._http.report(op, body, depth=1)
            with map_errors(op, self.url):
                page = _wire.parse_sync_page(response, self.path)
            changed.update(page.changed)
            deleted = (deleted | page.deleted) - page.changed.keys()
            for href in page.deleted:
                changed.pop(href, None)
            if not page.truncated:
                return _wire.SyncPage(changed, deleted, page.token, truncated=False)
            if not page.token or page.token == token:
                # Going on would repeat this page forever; stopping would pass a partial
                # listing off as the whole calendar (and read absent items as deleted).
                raise errors.BadResponse(f"CalDAV sync {self.url}: truncated without a new token")
            token = page.token
        raise errors.BadResponse(f"CalDAV sync {self.url}: still truncated after many pages")

    async def _propfind_etags(self) -> dict[str, str | None]:
        response = await self._http.propfind(Op.LIST, _wire.etag_listing_body())
        with map_errors(Op.LIST, self.url):
            return _wire.parse_etag_listing(response, self.path)

    async def fetch(self, listing: dict[str, str | None]) -> tuple[list[RawItem], list[Unreadable]]:
        """Data of the listed hrefs (href -> etag seen in the listing) by chunked multiget.

        Hrefs the server leaves out are asked for once more; those still missing come
        back as ``Unreadable``.
        """
        found = await self._multiget_all(list(listing))
        missing = [h for h in listing if h not in found]
        if missing:
            log.warning("caldav_multiget_short", url=self.url, missing=len(missing))
            found.update(await self._multiget_all(missing))
        items = [RawItem(h, found[h][0] or listing[h], found[h][1]) for h in listing if h in found]
        unreadable = [
            Unreadable(h, listing[h], "the server did not return this item in calendar-multiget")
            for h in listing
            if h not in found
        ]
        return items, unreadable

    async def _multiget_all(self, hrefs: list[str]) -> dict[str, tuple[str | None, str]]:
        found: dict[str, tuple[str | None, str]] = {}
        for chunk in _chunks(hrefs, self.chunk_size):
            response = await self._http.report(Op.READ, _wire.multiget_body(chunk), depth=None)
            with map_errors(Op.READ, self.url):
                answer = _wire.parse_multiget(response)
            wanted = set(chunk)
            found.update((h, v) for h, v in answer.items() if h in wanted)
        return found

    async def get(self, href: str) -> RawItem:
        """One item's text and etag by GET; ``NotFound`` when it is gone."""
        url = self._abs(href)
        response = await self._http.get(href, url)
        with map_errors(Op.READ, href):
            body = response._raw_body or b""  # caldav keeps the undecoded body here
            text = body.decode("utf-8")
        return RawItem(href, response.headers.get("ETag"), text)

    # --- writing -------------------------------------------------------------------

    async def put(
        self, href: str | None, text: str, *, etag: str | None, create: bool
    ) -> tuple[str, str | None]:
        """Write ``text``; returns ``(href, new etag or None)``. Never touches SEQUENCE.

        ``create``: ``If-None-Match: *`` at ``href`` (default: from the UID in ``text``),
        ``AlreadyExists`` when taken. Otherwise ``If-Match: etag`` when an etag is given,
        ``EtagMismatch`` when somebody else changed the item.
        """
        if href is None:
            if not create:
                raise errors.InvalidRequest("CalDAV update needs the item's href")
            href = self.href_for_uid(_uid_of(text))
        headers = {"Content-Type": "text/calendar; charset=utf-8"}
        if create:
            headers["If-None-Match"] = "*"
        elif etag:
            headers["If-Match"] = _quoted(etag)
        url = self._abs(href)
        op = Op.CREATE if create else Op.UPDATE
        response = await self._http.put(op, href, url, text, headers)
        return _location(response, href), response.headers.get("ETag")

    async def delete(self, href: str, etag: str | None) -> None:
        """Delete ``href`` (only if it still has ``etag``, when given); already gone is fine."""
        headers = {"If-Match": _quoted(etag)} if etag else {}
        url = self._abs(href)
        await self._http.delete(href, url, headers)


def _sync_unsupported(exc: errors.SourceError) -> bool:
    return quirks.is_sync_unsupported(exc.status, [exc.code] if exc.code else [])


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), max(1, size)):
        yield items[start : start + size]


def _quoted(etag: str) -> str:
    return etag if etag.startswith(('"', "W/")) else f'"{etag}"'


def _location(response: Any, href: str) -> str:
    location = response.headers.get("Location")
    return urlsplit(location).path if location else href


def _uid_of(text: str) -> str:
    try:
        calendar = icalendar.Calendar.from_ical(text)
    except ValueError as exc:
        raise errors.InvalidRequest(f"CalDAV create: not iCalendar: {exc}") from exc
    for component in calendar.walk():
        if component.name in {"VEVENT", "VTODO", "VJOURNAL"} and component.get("UID"):
            return str(component["UID"])
    raise errors.InvalidRequest("CalDAV create: the iCalendar text has no UID")
