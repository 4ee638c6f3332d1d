"""Request bodies and answer parsing for the CalDAV REPORTs and PROPFIND the client sends.

Pure functions over caldav's element classes and its ``DAVResponse`` parsers: no I/O.
Hrefs are kept the way caldav's parsers give them (unquoted paths) and quoted only when
they go back on the wire.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from caldav.elements import cdav, dav

# RFC 3986 pchar minus "%": what may stay unencoded in a path segment.
_PATH_SAFE = "/:@!$&'()*+,;=~"


@dataclass(frozen=True, slots=True)
class RawItem:
    """One calendar object resource as text: where it is, its etag, its iCalendar data."""

    href: str
    etag: str | None
    text: str


@dataclass(frozen=True, slots=True)
class Unreadable:
    """An item the server listed but would not hand over (missing from every multiget)."""

    href: str
    etag: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class SyncPage:
    """One sync-collection answer: href -> (etag, data or None), removed hrefs, token."""

    changed: dict[str, tuple[str | None, str | None]]
    deleted: set[str]
    token: str | None
    truncated: bool


def quote_href(href: str) -> str:
    """An href as it goes on the wire (percent-encoded path)."""
    return quote(href, safe=_PATH_SAFE)


def _node(parent: Any, *children: Any) -> Any:
    """``parent`` with ``children`` appended (caldav's own annotation of append is too narrow)."""
    return parent.append(list(children))


def _serialize(element: Any) -> str:
    return str(element)  # caldav renders the XML document, declaration included


def sync_collection_body(token: str | None, *, with_data: bool) -> str:
    """A sync-collection REPORT asking for etags (and calendar data when ``with_data``)."""
    props = [dav.GetEtag(), cdav.CalendarData()] if with_data else [dav.GetEtag()]
    root = _node(
        dav.SyncCollection(),
        dav.SyncToken(value=token or ""),
        dav.SyncLevel(value="1"),
        _node(dav.Prop(), *props),
    )
    return _serialize(root)


def multiget_body(hrefs: list[str]) -> str:
    """A calendar-multiget REPORT for ``hrefs``, asking for etag and calendar data."""
    prop = _node(dav.Prop(), dav.GetEtag(), cdav.CalendarData())
    hrefs_xml = [dav.Href(value=quote_href(h)) for h in hrefs]
    return _serialize(_node(cdav.CalendarMultiGet(), prop, *hrefs_xml))


def etag_listing_body() -> str:
    """A PROPFIND asking each member for its etag and resource type."""
    prop = _node(dav.Prop(), dav.GetEtag(), dav.ResourceType())
    return _serialize(_node(dav.Propfind(), prop))


def _is_member(href: str, collection_path: str) -> bool:
    return href != collection_path and not href.endswith("/")


def parse_sync_page(response: Any, collection_path: str) -> SyncPage:
    """Changed and removed members, the new token and the truncation flag of one answer."""
    parsed = response.parse_sync_collection()
    changed = {
        r.href: (r.etag, r.calendar_data)
        for r in parsed.changed
        if _is_member(r.href, collection_path)
    }
    deleted = {h for h in parsed.deleted if _is_member(h, collection_path)} - changed.keys()
    return SyncPage(changed, deleted, parsed.sync_token, bool(parsed.truncated))


def parse_etag_listing(response: Any, collection_path: str) -> dict[str, str | None]:
    """href -> etag of every non-collection member in a depth-1 PROPFIND answer."""
    listing: dict[str, str | None] = {}
    for result in response.parse_propfind():
        etag = result.properties.get("{DAV:}getetag")
        if _is_member(result.href, collection_path) and result.status == 200:
            listing[result.href] = str(etag) if etag else None
    return listing


def parse_multiget(response: Any) -> dict[str, tuple[str | None, str]]:
    """href -> (etag, data) of every object the multiget answer carries data for."""
    found: dict[str, tuple[str | None, str]] = {}
    for result in response.parse_calendar_query():
        if result.status == 200 and result.calendar_data:
            found[result.href] = (result.etag, result.calendar_data)
    return found
