"""What a CalDAV create wrote, known without parsing the written text back.

``CalDAVSide.create`` stores the fingerprint of ``event_from_written(calendar_for(e), ...)``
(the component it serialised, read as it is) instead of that of
``event_from_ical(event_to_ical(e))`` (its text parsed again). That is only sound if the two
are the same event for everything syncd writes; these tests check it for every corpus item
(as read from CalDAV, and as it comes back from DingTalk, which is what most creates
write) and for generated events.
"""

from __future__ import annotations

import collections
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from syncd.errors import BrokenCalendarData, Unrepresentable
from syncd.model import Event
from syncd.translate import event_from_ical
from syncd.translate.ical import calendar_for, event_from_written, ical_text
from syncd.translate.limits import MAX_RESOURCE_BYTES
from tests.fixtures.dingtalk_shapes import CTX
from tests.unit.test_translate_corpus import corpus_files, resources, through_dingtalk
from tests.unit.test_translate_roundtrip import events


def _same_as_parsed(event: Event) -> None:
    """The component's event is the text's event: equal fields, fingerprint, ``updated``."""
    cal = calendar_for(event)
    text = ical_text(cal)
    built, parsed = event_from_written(cal, text, CTX), event_from_ical(text, CTX)
    assert built.fingerprint() == parsed.fingerprint(), (built, parsed)
    assert built == parsed
    assert built.updated == parsed.updated  # not compared by ==, stored in held copies
    assert ical_text(cal) == text  # reading the component left it as it was


@pytest.mark.corpus
def test_every_corpus_item_read_from_its_component_equals_its_text_parsed() -> None:
    counts: collections.Counter[str] = collections.Counter()
    for path in corpus_files():
        for label, text in resources(path):
            try:
                event = event_from_ical(text, CTX)
            except (Unrepresentable, BrokenCalendarData):
                counts["not an event syncd reads"] += 1
                continue
            try:
                _same_as_parsed(event)
                counts["checked"] += 1
                _same_as_parsed(through_dingtalk(event))
                counts["checked via DingTalk"] += 1
            except Unrepresentable:  # DingTalk cannot hold it: never written from there
                counts["not in DingTalk"] += 1
            except AssertionError as exc:
                raise AssertionError(f"{label}: {str(exc)[:2000]}") from exc
    assert counts["checked"] > 1000, counts
    assert counts["checked via DingTalk"] > 900, counts


def test_the_limits_still_apply_to_what_was_written() -> None:
    """A text over syncd's limits is refused as ``event_from_ical`` refuses it."""
    event = event_from_ical(next(t for _, t in resources(corpus_files()[0])), CTX)
    cal = calendar_for(event)
    with pytest.raises(Unrepresentable):
        event_from_written(cal, ical_text(cal) + "X" * (MAX_RESOURCE_BYTES + 1), CTX)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events(dingtalk=False))
def test_generated_events_read_from_their_component_equal_their_text_parsed(event: Any) -> None:
    _same_as_parsed(event)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events(dingtalk=True))
def test_dingtalk_shaped_events_read_from_their_component_equal_their_text_parsed(
    event: Any,
) -> None:
    _same_as_parsed(event)
