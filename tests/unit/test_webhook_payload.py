"""The decrypted callback plaintext parser (syncd.webhook.payload): pure, case-insensitive."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncd.errors import BadPayload
from syncd.webhook.payload import CALENDAR_CHANGE, CHECK_URL, CallbackEvent, parse_event

PASCAL = {
    "EventType": "calendar_event_change",
    "EventTime": 1668735924640,
    "CorpId": "dingcorp1",
    "BizId": "biz-1",
    "CalendarEventId": "ev-1",
    "CalendarEventUpdateTime": 1668735924619,
    "CalendarId": "NzE3",
    "UnionIdList": ["u-alice", "u-bob"],
    "ChangeType": "updated",
    "LegacyCalendarEventId": "1C1B",
    "operator": {"type": "user"},
}

# The official event page's form: PascalCase envelope, camelCase calendar fields, eventId.
CAMEL = {
    "EventType": "calendar_event_change",
    "EventTime": 1668735924640,
    "CorpId": "dingcorp1",
    "BizId": "biz-2",
    "calendarEventId": "ev-2",
    "calendarId": "NzE3",
    "unionIdList": ["u-carol"],
    "changeType": "create",
    "eventId": "biz-2",
}


def test_pascal_case_push() -> None:
    """A PascalCase push (captured production form) yields type, BizId, users, id, change."""
    event = parse_event(json.dumps(PASCAL))
    assert event == CallbackEvent(CALENDAR_CHANGE, "biz-1", ("u-alice", "u-bob"), "ev-1", "updated")


def test_camel_case_push_and_create_spelling() -> None:
    """camelCase calendar fields parse the same way; the doc example's 'create' reads 'created'."""
    event = parse_event(json.dumps(CAMEL))
    assert event == CallbackEvent(CALENDAR_CHANGE, "biz-2", ("u-carol",), "ev-2", "created")


def test_all_lower_and_all_upper_keys() -> None:
    """Key casing does not matter at all, envelope keys included."""
    lower = {k.lower(): v for k, v in PASCAL.items()}
    upper = {k.upper(): v for k, v in PASCAL.items()}
    assert parse_event(json.dumps(lower)) == parse_event(json.dumps(upper))
    assert parse_event(json.dumps(lower)).union_ids == ("u-alice", "u-bob")


def test_event_id_is_the_dedupe_key_without_biz_id() -> None:
    """Without BizId the push's eventId is its id; a numeric id is taken as text."""
    body = {k: v for k, v in CAMEL.items() if k != "BizId"} | {"eventId": 12345}
    assert parse_event(json.dumps(body)).push_id == "12345"


def test_push_without_any_id_gets_a_stable_content_hash() -> None:
    """No BizId/eventId: the id is a hash of the plaintext, equal for equal text only."""
    body = {k: v for k, v in PASCAL.items() if k != "BizId"}
    text = json.dumps(body)
    first, again = parse_event(text), parse_event(text)
    other = parse_event(json.dumps(body | {"CalendarEventId": "ev-9"}))
    assert first.push_id.startswith("sha1:")
    assert first.push_id == again.push_id
    assert other.push_id != first.push_id


def test_check_url() -> None:
    """DingTalk's URL verification push parses as check_url with no users."""
    event = parse_event('{"EventType":"check_url"}')
    assert event.event_type == CHECK_URL
    assert event.union_ids == ()


def test_other_event_types_pass_through_without_user_list() -> None:
    """An event type we do not handle parses (the webhook ignores it) even without users."""
    event = parse_event('{"EventType":"user_add_org","BizId":"b"}')
    assert (event.event_type, event.push_id, event.union_ids) == ("user_add_org", "b", ())


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('"check_url"', "not a JSON object"),
        ("{}", "no EventType"),
        ('{"EventType": ""}', "no EventType"),
        ('{"EventType": 7}', "no EventType"),
        ('{"EventType": "calendar_event_change"}', "UnionIdList"),
        ('{"EventType": "calendar_event_change", "UnionIdList": "u-alice"}', "UnionIdList"),
        ('{"EventType": "calendar_event_change", "UnionIdList": [1]}', "UnionIdList"),
    ],
)
def test_malformed_plaintext_is_bad_payload(text: str, reason: str) -> None:
    """Every malformed plaintext raises BadPayload with a one-line reason, nothing else."""
    with pytest.raises(BadPayload) as info:
        parse_event(text)
    assert reason in str(info.value)
    assert "\n" not in str(info.value)


def test_non_string_optional_fields_are_dropped() -> None:
    """A non-string CalendarEventId or ChangeType is left out rather than passed on."""
    body = PASCAL | {"CalendarEventId": 5, "ChangeType": None}
    event = parse_event(json.dumps(body))
    assert (event.calendar_event_id, event.change_type) == (None, None)


@given(st.text(max_size=200))
def test_arbitrary_text_never_crashes(text: str) -> None:
    """Any text either parses or raises BadPayload; no other exception escapes."""
    try:
        event = parse_event(text)
    except BadPayload:
        return
    assert event.event_type


@given(
    st.dictionaries(
        st.sampled_from(["EventType", "BizId", "UnionIdList", "ChangeType", "eventid", "x"]),
        st.one_of(
            st.none(),
            st.integers(),
            st.text(max_size=8),
            st.lists(st.text(max_size=4), max_size=3),
            st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
        ),
    )
)
def test_arbitrary_objects_never_crash(body: dict[str, object]) -> None:
    """Any JSON object with odd value types parses or raises BadPayload."""
    try:
        event = parse_event(json.dumps(body))
    except BadPayload:
        return
    assert isinstance(event.push_id, str)
    assert event.push_id
