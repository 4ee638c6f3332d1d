"""The free/busy field: default busy, invisible to fingerprints at its default.

Fingerprints of events stored before the field existed must not change after an upgrade,
or every stored pair would read as changed on both sides. The two pinned values below were
computed by the model before ``free_busy`` was added (commit c769013).
"""

from __future__ import annotations

import dataclasses
import json
from datetime import date, datetime
from zoneinfo import ZoneInfo

from syncd.model import Attendee, Event, PairState, Recurrence, from_jsonable, to_jsonable
from syncd.store.codec import pair_from_json, pair_to_json

TZ = ZoneInfo("Asia/Shanghai")


def _series() -> Event:
    master = Event(
        uid="fp-1@test",
        summary="Weekly",
        start=datetime(2027, 1, 4, 9, tzinfo=TZ),
        end=datetime(2027, 1, 4, 10, tzinfo=TZ),
        description="d",
        location="Room",
        organizer="alice@acme.example",
        attendees=(Attendee("bob@acme.example", "Bob", "accepted", False),),
        reminders=(15,),
        recurrence=Recurrence(
            "FREQ=WEEKLY;COUNT=5;BYDAY=MO", (datetime(2027, 1, 18, 9, tzinfo=TZ),)
        ),
    )
    moved = dataclasses.replace(
        master,
        summary="Moved",
        start=datetime(2027, 1, 11, 14, tzinfo=TZ),
        end=datetime(2027, 1, 11, 15, tzinfo=TZ),
        recurrence=None,
        recurrence_id=datetime(2027, 1, 11, 9, tzinfo=TZ),
    )
    return dataclasses.replace(master, overrides=(moved,))


def test_default_is_busy_and_fingerprints_match_the_pre_upgrade_ones() -> None:
    """Busy events (series with an override, all-day) keep their old fingerprints."""
    allday = Event(uid="fp-2@test", summary="Holiday", start=date(2027, 5, 1), end=date(2027, 5, 2))
    assert _series().free_busy == "busy"
    assert _series().fingerprint() == "c17be6760d4b210e549c763bb86b2ed2"
    assert allday.fingerprint() == "89d78a9ec194f149895bf61a8cf7eb6a"


def test_free_changes_the_fingerprint_of_a_master_and_of_an_override() -> None:
    """Free is a real difference, on the master and on an override alike."""
    series = _series()
    free = dataclasses.replace(series, free_busy="free")
    free_override = dataclasses.replace(
        series, overrides=(dataclasses.replace(series.overrides[0], free_busy="free"),)
    )
    prints = {series.fingerprint(), free.fingerprint(), free_override.fingerprint()}
    assert len(prints) == 3


def test_stored_pair_without_the_field_reads_as_busy_with_its_old_fingerprint() -> None:
    """A pair saved by an older version (no ``free_busy`` key anywhere) decodes unchanged."""
    old = to_jsonable(_series())
    old.pop("free_busy")
    for override in old["overrides"]:
        override.pop("free_busy")
    event = from_jsonable(old)
    assert event.free_busy == "busy"
    assert event.overrides[0].free_busy == "busy"
    assert event.fingerprint() == "c17be6760d4b210e549c763bb86b2ed2"
    pair = PairState("fp-1@test", "dt-1", "/c/1.ics", "a", "b", None, event)
    # The store form of that older version (codec version 1: long keys, the base in full).
    v1 = {
        "uid": "fp-1@test",
        "dingtalk_id": "dt-1",
        "caldav_href": "/c/1.ics",
        "dingtalk_fp": "a",
        "caldav_fp": "b",
        "caldav_etag": None,
        "base": old,
        "origin": "dingtalk",
    }
    assert pair_from_json(json.dumps(v1)) == pair
    assert "free_busy" not in json.loads(pair_to_json(pair))["b"]  # today: left out at busy


def test_free_round_trips_through_the_store_form() -> None:
    """``free`` survives to_jsonable/from_jsonable."""
    free = dataclasses.replace(_series(), free_busy="free")
    assert from_jsonable(to_jsonable(free)).free_busy == "free"
