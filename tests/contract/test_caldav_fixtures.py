"""The CalDAV server fixtures: real servers, fresh calendars, request logs."""

from __future__ import annotations

from tests.fixtures.caldav_servers import CalendarHandle, http, make_calendar

_LISTING = (
    b'<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:getetag/></D:prop></D:propfind>'
)


def _send(cal: CalendarHandle, url: str, method: str, body: bytes = b"") -> tuple[int, bytes]:
    kind = "text/calendar" if method == "PUT" else "application/xml"
    status, _, answer = http(url, method, body, {"Depth": "1", "Content-Type": kind})
    return status, answer


_EVENT = (
    b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:fx-1\r\n"
    b"DTSTAMP:20250101T000000Z\r\nDTSTART:20250301T100000Z\r\nDTEND:20250301T110000Z\r\n"
    b"SUMMARY:fixture\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


def test_fresh_calendar_is_empty_and_writable(caldav_calendar: CalendarHandle) -> None:
    """A new calendar lists no items, accepts a PUT, and then lists exactly that item."""
    cal = caldav_calendar
    assert cal.url.endswith("/")
    status, body = _send(cal, cal.url, "PROPFIND", _LISTING)
    assert status == 207
    assert b".ics" not in body
    status, _ = _send(cal, cal.url + "fx-1.ics", "PUT", _EVENT)
    assert status in (200, 201, 204)
    _, body = _send(cal, cal.url, "PROPFIND", _LISTING)
    assert body.count(b"fx-1.ics") == 1


def test_each_test_gets_its_own_calendar(caldav_calendar: CalendarHandle) -> None:
    """Two calendars made on one server have different URLs on the same server."""
    other = make_calendar(caldav_calendar.dav)
    assert other.url != caldav_calendar.url
    assert other.base_url == caldav_calendar.base_url


def test_request_log_counts_requests(caldav_calendar: CalendarHandle) -> None:
    """The server log shows each request to the calendar with its method and path."""
    cal = caldav_calendar
    _send(cal, cal.url, "PROPFIND", _LISTING)
    _send(cal, cal.url + "fx-1.ics", "PUT", _EVENT)
    seen = cal.settled_requests()
    assert ("MKCALENDAR", cal.path) in seen
    assert ("PROPFIND", cal.path) in seen
    assert ("PUT", cal.path + "fx-1.ics") in seen
    assert len(seen) == 3
