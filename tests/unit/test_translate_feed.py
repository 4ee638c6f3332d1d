"""Pure feed handling: validation, the split per UID, and item identity (uid/content/auto)."""

from __future__ import annotations

from datetime import date

import pytest

from syncd.adapters.ics.identity import FeedState, assign, choose_mode, content_key, state_of
from syncd.errors import BrokenCalendarData, SyncTokenInvalid
from syncd.translate import Context, Directory
from syncd.translate.feed import check_feed, split_feed
from tests.fixtures.feed_server import BERLIN, FeedServer, vevent

CTX = Context(directory=Directory({}), user="u-alice", timezone="Asia/Shanghai")

SERIES = """UID:weekly
DTSTART;TZID=Europe/Berlin:20270105T100000
DTEND;TZID=Europe/Berlin:20270105T110000
RRULE:FREQ=WEEKLY;COUNT=5
EXDATE;TZID=Europe/Berlin:20270112T100000
SUMMARY:Weekly"""
MOVED = """UID:weekly
RECURRENCE-ID;TZID=Europe/Berlin:20270119T100000
DTSTART;TZID=Europe/Berlin:20270119T120000
DTEND;TZID=Europe/Berlin:20270119T130000
SUMMARY:Weekly (moved)"""
ALL_DAY = "UID:holiday\nDTSTART;VALUE=DATE:20270101\nDTEND;VALUE=DATE:20270102\nSUMMARY:New Year"


def feed(**events: str) -> FeedServer:
    server = FeedServer(zones=BERLIN)
    server.events = dict(events)
    return server


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("  \r\n", "empty"),
        ("<!DOCTYPE html><html><body>Sorry</body></html>", "HTML"),
        ("<html><body>Sorry</body></html>", "HTML"),
        ("HELLO", "does not start with BEGIN:VCALENDAR"),
        ("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\n", "truncated"),
    ],
)
def test_what_is_not_a_whole_calendar_is_refused(text: str, reason: str) -> None:
    """Empty, HTML, foreign and truncated bodies are refused with a one-line reason."""
    with pytest.raises(BrokenCalendarData, match=reason) as info:
        check_feed(text)
    assert "\n" not in str(info.value)


def test_unbalanced_components_are_refused_even_with_a_final_end() -> None:
    """A VEVENT left open before END:VCALENDAR is a broken feed, not a smaller calendar."""
    text = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\nEND:VCALENDAR\r\n"
    with pytest.raises(BrokenCalendarData, match="not one complete VCALENDAR"):
        split_feed(text, CTX)


def test_truncated_feed_text_is_refused() -> None:
    """The first two thirds of a real feed: refused, not read as fewer events."""
    text = feed(a=vevent("a", "A"), b=vevent("b", "B")).text()
    with pytest.raises(BrokenCalendarData, match="truncated"):
        split_feed(text[: len(text) * 2 // 3], CTX)


def test_split_groups_series_overrides_all_day_and_zones() -> None:
    """One item per UID: the master with its EXDATE and moved occurrence, in its zone."""
    server = feed(weekly=SERIES, holiday=ALL_DAY)
    server.events["weekly"] = SERIES + "\nEND:VEVENT\nBEGIN:VEVENT\n" + MOVED
    items = {i.uid: i for i in split_feed(server.text(), CTX)}
    assert sorted(items) == ["holiday", "weekly"]
    weekly = items["weekly"].event
    assert weekly is not None
    assert weekly.timezone == "Europe/Berlin"
    assert weekly.recurrence is not None
    assert weekly.recurrence.rrule.startswith("FREQ=WEEKLY;COUNT=5")
    assert len(weekly.recurrence.exdates) == 1
    assert [o.summary for o in weekly.overrides] == ["Weekly (moved)"]
    assert "BEGIN:VTIMEZONE" in items["weekly"].text
    assert "BEGIN:VTIMEZONE" not in items["holiday"].text  # only the zones an item uses
    holiday = items["holiday"].event
    assert holiday is not None
    assert (holiday.all_day, holiday.start) == (True, date(2027, 1, 1))


def test_an_untranslatable_item_is_reported_and_the_others_are_read() -> None:
    """A VEVENT without DTSTART gets a reason; its neighbours translate."""
    server = feed(ok=vevent("ok", "Fine"), bad="UID:bad\nSUMMARY:No start")
    items = {i.uid: i for i in split_feed(server.text(), CTX)}
    assert items["ok"].event is not None
    assert items["bad"].event is None
    assert items["bad"].error


def test_volatile_properties_do_not_change_content_keys() -> None:
    """DTSTAMP, LAST-MODIFIED, SEQUENCE, PRODID and X-…-EXPORTED-AT rewritten: same keys."""
    server = feed(a=vevent("a", "A"), b=vevent("b", "B", "20270106T100000Z"))
    server.volatile = True
    first, second = server.text(), server.text()
    assert first != second
    keys = [[content_key(i) for i in split_feed(t, CTX)] for t in (first, second)]
    assert keys[0] == keys[1]


def test_content_keys_change_with_what_syncd_maps() -> None:
    """A new summary or time is a new content key."""
    base = content_key(split_feed(feed(a=vevent("a", "A")).text(), CTX)[0])
    renamed = content_key(split_feed(feed(a=vevent("a", "B")).text(), CTX)[0])
    moved = content_key(split_feed(feed(a=vevent("a", "A", "20270105T120000Z")).text(), CTX)[0])
    assert len({base, renamed, moved}) == 3


def _fetch(server: FeedServer, previous: FeedState | None, identity: str = "auto") -> FeedState:
    items = split_feed(server.text(), CTX)
    mode = choose_mode(identity, items, previous)  # type: ignore[arg-type]
    return state_of(assign(items, mode, previous), mode, None, None)


def test_auto_keeps_uids_for_a_stable_feed() -> None:
    """A feed whose UIDs survive stays in uid mode, ids are the UIDs."""
    server = feed(a=vevent("a", "A"), b=vevent("b", "B"))
    first = _fetch(server, None)
    server.events["a"] = vevent("a", "A edited")
    second = _fetch(server, first)
    assert (first.mode, second.mode) == ("uid", "uid")
    assert sorted(second.items) == ["a", "b"]


def test_auto_detects_regenerated_uids_and_keeps_the_first_uids() -> None:
    """New UIDs with the same contents: content mode, each item keeps its first uid."""
    server = feed(a=vevent("a", "A"), b=vevent("b", "B", "20270106T100000Z"))
    server.regenerate_uids = True
    first = _fetch(server, None)
    second = _fetch(server, first)
    third = _fetch(server, second)
    assert (first.mode, second.mode, third.mode) == ("uid", "content", "content")
    assert sorted(uid for uid, _ in second.items.values()) == sorted(first.items)
    assert second.items == third.items  # stable from then on


def test_auto_does_not_switch_when_contents_were_replaced() -> None:
    """All UIDs gone and contents different: a replaced calendar, not regenerated UIDs."""
    first = _fetch(feed(a=vevent("a", "A")), None)
    second = _fetch(feed(z=vevent("z", "Z")), first)
    assert second.mode == "uid"


def test_content_identity_numbers_repeated_content() -> None:
    """Two items with identical content get distinct ids and uids."""
    server = feed(a=vevent("a", "Same"), b=vevent("b", "Same"))
    state = _fetch(server, None, "content")
    assert len(state.items) == 2
    assert len({uid for uid, _ in state.items.values()}) == 2


def test_cursor_round_trips_and_refuses_garbage() -> None:
    """A FeedState survives dumps/loads; an unusable cursor means a full re-fetch."""
    state = FeedState('"e1"', "Tue, 01 Dec 2026 00:00:00 GMT", "content", {"i": ("u", "k")})
    assert FeedState.loads(state.dumps()) == state
    for bad in ("not json", "{}", '{"v": 9, "mode": "uid", "items": {}}'):
        with pytest.raises(SyncTokenInvalid):
            FeedState.loads(bad)
