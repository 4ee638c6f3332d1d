"""The CalDAV side of a binding: :class:`CalDAVClient` text translated to canonical events.

Implements :class:`syncd.sync.ports.CalendarSide`. Reading never drops an item: one that
cannot be translated (or fetched) is reported as ``Remote(href, etag, None, error=...)``,
so the planner leaves it alone instead of taking it for deleted. An item without a UID
(RFC 5545 requires one, yet Xandikos stores such items) is given one derived from its href,
so several of them never share the empty UID.

Creating sends the text ``event_to_ical`` made. Updating changes the object *as stored*:
:func:`~syncd.translate.patch_ical` rewrites only the mapped properties that differ and
keeps everything else (unknown properties, parameters, components, alarms) byte for byte.
The stored text comes from what :meth:`changes` read in this run (kept per href with its
etag, only for this side object's lifetime) or else from a GET; when the caller's etag
differs from the stored one the update raises ``EtagMismatch`` without writing, so a
concurrent client edit is never overwritten. No write bumps SEQUENCE. ``Written.event`` is
what the next read of the item will say: an update's text parsed back; a create's
component read as it is (``event_from_written``: the same event, without parsing our own
text again; ``tests/unit/test_translate_written.py`` checks that over the corpus).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib

import structlog

from syncd.adapters.caldav.client import CalDAVClient, KnownHrefs, RawItem
from syncd.errors import EtagMismatch, TranslationError
from syncd.model import Changes, Event, Remote, Side
from syncd.sync.ports import Written
from syncd.translate import Context, event_from_ical, patch_ical
from syncd.translate.ical import calendar_for, event_from_written, ical_text

log = structlog.get_logger(__name__)

# Items translated between two yields to the event loop: a listing of thousands is seconds
# of CPU, and the run's lock must be refreshed meanwhile (syncd.store.lock).
_YIELD_EVERY = 100


class CalDAVSide:
    """One CalDAV calendar collection as a ``CalendarSide``; item ids are hrefs.

    ``known`` (e.g. hrefs the binding's store maps) is passed to every ``sync`` so that
    an incremental answer is told from a full listing without listing every member.
    """

    side = Side.CALDAV

    def __init__(self, client: CalDAVClient, ctx: Context, known: KnownHrefs | None = None) -> None:
        self.client = client
        self.ctx = ctx
        self.known = known
        self._read: dict[str, RawItem] = {}  # href -> item as read by changes() in this run

    async def aclose(self) -> None:
        """Close the underlying HTTP session."""
        await self.client.close()

    async def changes(self, cursor: str | None) -> Changes:
        """Changed and deleted items since ``cursor`` (a sync token); a full listing for None."""
        raw = await self.client.sync(cursor, known=self.known)
        self._read.update((item.href, item) for item in raw.items)
        for href in raw.deleted:
            self._read.pop(href, None)
        items = []
        for n, item in enumerate(raw.items):
            if n and not n % _YIELD_EVERY:
                await asyncio.sleep(0)
            items.append(self._remote(item))
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
        cal = calendar_for(event)
        text = ical_text(cal)
        href = self.client.href_for_uid(event.uid)
        href, etag = await self.client.put(href, text, etag=None, create=True)
        log.info("caldav_created", href=href, uid=event.uid)
        return Written(href, etag, event_from_written(cal, text, self.ctx))

    async def update(self, item_id: str, event: Event, etag: str | None) -> Written:
        """Change the stored item at ``item_id`` to hold ``event``, touching only what differs.

        ``EtagMismatch`` when the item no longer has ``etag`` (checked against the stored
        copy before writing, and by ``If-Match`` on the PUT).
        """
        stored = self._read.pop(item_id, None) or await self.client.get(item_id)
        if etag is not None and stored.etag is not None and _bare(etag) != _bare(stored.etag):
            raise EtagMismatch(
                f"CalDAV {item_id} changed since {etag} (now {stored.etag})",
                href=item_id,
                etag=etag,
                current_etag=stored.etag,
            )
        text = patch_ical(stored.text, event, self.ctx)
        href, new_etag = await self.client.put(
            item_id, text, etag=stored.etag or etag, create=False
        )
        log.info("caldav_updated", href=href, uid=event.uid)
        written = event_from_ical(text, self.ctx)
        if not written.uid:
            written = _with_uid(written, uid_for_href(item_id))
        return Written(href, new_etag, written)

    async def delete(self, item_id: str, etag: str | None) -> None:
        """Delete the item if it still has ``etag``; an item already gone is fine."""
        await self.client.delete(item_id, etag)
        log.info("caldav_deleted", href=item_id)


def _bare(etag: str) -> str:
    """An etag without weak marker and quotes, for comparing what servers spell differently."""
    return etag.removeprefix("W/").strip('"')


def uid_for_href(href: str) -> str:
    """The stable UID given to an item stored without one: derived from its href."""
    return f"caldav-{hashlib.sha256(href.encode()).hexdigest()[:32]}@syncd"


def _with_uid(event: Event, uid: str) -> Event:
    overrides = tuple(dataclasses.replace(o, uid=uid) for o in event.overrides)
    return dataclasses.replace(event, uid=uid, overrides=overrides)
