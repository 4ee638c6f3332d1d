"""The CalDAV side: ``caldav.aio`` underneath, ``syncd.errors`` and canonical events on top.

- ``client.CalDAVClient``: raw layer, iCalendar text in and out (sync-collection, chunked
  calendar-multiget, conditional PUT/DELETE).
- ``side.CalDAVSide``: the ``CalendarSide`` port over the client and ``syncd.translate``.
- ``quirks``: per-server behaviour as data. ``_errors.map_errors``: the one error map.
"""

from syncd.adapters.caldav.client import CalDAVClient, RawChanges, RawItem, Unreadable
from syncd.adapters.caldav.side import CalDAVSide

__all__ = ["CalDAVClient", "CalDAVSide", "RawChanges", "RawItem", "Unreadable"]
