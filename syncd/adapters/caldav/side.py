"""The CalDAV side of a binding: :class:`CalDAVClient` text translated to canonical events.

Implements :class:`syncd.sync.ports.CalendarSide`. Reading never drops an item: one that
cannot be translated (or fetched) is reported as ``Remote(href, etag, None, error=...)``,
so the planner leaves it alone instead of taking it for deleted. An item without a UID
(RFC 5545 requires one, yet Xandikos stores such items) is given one derived from its href,
so several of them never share the empty UID. Writing sends exactly
the text ``event_to_ical`` made (no SEQUENCE bump) and reports that text parsed back as
``Written.event``, which is what the next read of the item will say.
"""

from __future__ import annotations

import dataclasses
import hashlib

import structlog

from syncd.adapters.caldav.client import CalDAVClient, RawItem
from syncd.errors import TranslationError
from syncd.model import Changes, Event, Remote, Side
from syncd.sync.ports import Written
from syncd.translate import Context, event_from_ical, event_to_ical

log = structlog.get_logger(__name__)


class CalDAVSide:
    """One CalDAV calendar collection as a ``CalendarSide``; item ids are hrefs."""

    side = Side.CALDAV

    def __init__(self, client: CalDAVClient, ctx: Context) -> None:
        self.client = client
        self.ctx = ctx

    async def aclose(self) -> None:
        """Close the underlying HTTP session."""
        await self.client.close()

    async def changes(self, cursor: str | None) -> Changes:
        """Changed and deleted items since ``cursor`` (a sync token); a full listing for None."""
        raw = await self.client.sync(cursor)
        items = [self._remote(item) for item in raw.items]
        items += [Remote(u.href, u.etag, None, error=u.reason) for u in raw.unreadable]
        return Changes(tuple(items), raw.deleted, raw.token, raw.complete)

    def _remote(self, item: RawItem) -> Remote:
        try:
            event = event_from_ical(item.text, self.ctx)
            if not event.uid:
                event = _with_uid(event, uid_for_href(item.href))
                log.info("caldav_item_without_uid", href=item.href, uid=event.uid)
            return Remote(item.href, item.etag, event)
        except TranslationError as exc:
            reason = f"{type(exc).__name__}: {exc}"
            log.warning("caldav_item_untranslatable", href=item.href, error=reason)
        except Exception as exc:  # a translator bug must not sink the other items
            reason = f"internal error translating the item: {type(exc).__name__}: {exc}"
            log.exception("caldav_item_translation_crashed", href=item.href)
        return Remote(item.href, item.etag, None, error=reason)

    async def create(self, event: Event) -> Written:
        """PUT ``event`` at ``<collection>/<uid>.ics``, never overwriting (``AlreadyExists``)."""
        text = event_to_ical(event, self.ctx)
        href = self.client.href_for_uid(event.uid)
        href, etag = await self.client.put(href, text, etag=None, create=True)
        log.info("caldav_created", href=href, uid=event.uid)
        return Written(href, etag, event_from_ical(text, self.ctx))

    async def update(self, item_id: str, event: Event, etag: str | None) -> Written:
        """Replace the item at ``item_id`` if it still has ``etag`` (``EtagMismatch`` if not)."""
        text = event_to_ical(event, self.ctx)
        href, new_etag = await self.client.put(item_id, text, etag=etag, create=False)
        log.info("caldav_updated", href=href, uid=event.uid)
        return Written(href, new_etag, event_from_ical(text, self.ctx))

    async def delete(self, item_id: str, etag: str | None) -> None:
        """Delete the item if it still has ``etag``; an item already gone is fine."""
        await self.client.delete(item_id, etag)
        log.info("caldav_deleted", href=item_id)


def uid_for_href(href: str) -> str:
    """The stable UID given to an item stored without one: derived from its href."""
    return f"caldav-{hashlib.sha256(href.encode()).hexdigest()[:32]}@syncd"


def _with_uid(event: Event, uid: str) -> Event:
    overrides = tuple(dataclasses.replace(o, uid=uid) for o in event.overrides)
    return dataclasses.replace(event, uid=uid, overrides=overrides)
