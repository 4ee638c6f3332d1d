"""Real-world iCalendar files read as feeds: the same items as the per-resource translation.

Every .ics in ``tests/data/ics`` and in the icalendar / recurring-ical-events wheels is
read whole by :func:`split_feed`. A file is either refused with a one-line
``BrokenCalendarData`` reason, or each of its items has exactly the fingerprint (or the
failure) that :func:`event_from_ical` gives the same UID's resource on its own: a feed
is translated as CalDAV items are, and no UID is lost or invented.
"""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

import pytest

from syncd.errors import BrokenCalendarData, TranslationError
from syncd.translate import event_from_ical
from syncd.translate.feed import split_feed
from tests.unit.test_translate_corpus import CTX, corpus_files, resources

DATA = Path(__file__).parent.parent / "data" / "ics"


def per_resource(path: Path) -> dict[str, str]:
    """UID -> fingerprint (or 'error') of each resource of the file, translated alone."""
    out: dict[str, str] = {}
    for label, text in resources(path):
        uid = label.rsplit(":", 1)[-1] if "#" in label else label
        try:
            out[uid] = event_from_ical(text, CTX).fingerprint()
        except TranslationError:
            out[uid] = "error"
    return out


def check_file(path: Path) -> str:
    """'refused: reason', or 'items: N' after comparing every item with its resource."""
    text = path.read_text(errors="replace")
    try:
        items = split_feed(text, CTX)
    except BrokenCalendarData as exc:
        return "refused" if "\n" not in str(exc) else f"reason on several lines: {exc!r}"
    alone = per_resource(path)
    for item in items:
        if item.uid.startswith("ics-nouid-"):
            continue  # the per-resource splitter names UID-less events differently
        ours = item.event.fingerprint() if item.event is not None else "error"
        assert alone.get(item.uid) == ours, (path.name, item.uid, item.error)
    return "read"


def test_repository_ics_files_read_as_feeds() -> None:
    """Every file in tests/data/ics is a valid feed whose items match their resources."""
    outcomes = {p.name: check_file(p) for p in sorted(DATA.glob("*.ics"))}
    assert len(outcomes) >= 10
    assert set(outcomes.values()) == {"read"}, outcomes


@pytest.mark.corpus
def test_wheel_corpora_read_as_feeds(record_property: Any) -> None:
    """Every corpus file is read as a feed matching its resources, or refused with a reason."""
    counts = collections.Counter(check_file(p) for p in corpus_files())
    record_property("feed_corpus_counts", dict(counts))
    assert set(counts) <= {"read", "refused"}, counts
    assert counts["read"] > 150, counts
