"""TZIDs as Outlook and Exchange write them: display names, custom zones, missing VTIMEZONEs."""

from __future__ import annotations

import importlib.util
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from syncd.errors import BrokenCalendarData
from syncd.translate import Context, event_from_ical, event_to_ical
from syncd.translate._time import display_zone
from syncd.translate._winnames import DISPLAY_TO_WINDOWS
from tests.fixtures.dingtalk_shapes import CTX

DATA = Path(__file__).parent.parent / "data" / "ics"
ROOT = Path(__file__).parent.parent.parent
BANGKOK = ZoneInfo("Asia/Bangkok")
UTC = ZoneInfo("UTC")


def read(name: str) -> str:
    return (DATA / name).read_text()


def test_exchange_display_name_with_its_vtimezone_is_the_named_zone() -> None:
    """'(UTC+07:00) Bangkok, Hanoi, Jakarta' with its VTIMEZONE: Asia/Bangkok, 09:00 +07."""
    event = event_from_ical(read("exchange-display-name.ics"), CTX)  # tenant zone is +08
    assert event.start == datetime(2025, 6, 2, 9, tzinfo=BANGKOK)
    assert event.start.tzinfo == BANGKOK  # type: ignore[union-attr]
    assert event.end == datetime(2025, 6, 2, 10, tzinfo=BANGKOK)
    assert event.recurrence is not None
    assert event.recurrence.exdates == (datetime(2025, 6, 16, 9, tzinfo=BANGKOK),)
    (moved,) = event.overrides
    assert moved.recurrence_id == datetime(2025, 6, 23, 9, tzinfo=BANGKOK)
    assert moved.start == datetime(2025, 6, 24, 14, tzinfo=BANGKOK)
    again = event_from_ical(event_to_ical(event, CTX), CTX)
    assert again.fingerprint() == event.fingerprint()


def test_exchange_display_name_without_vtimezone_uses_the_cldr_table() -> None:
    """No VTIMEZONE: the display name alone gives America/New_York (EDT in July)."""
    event = event_from_ical(read("exchange-display-name-no-vtimezone.ics"), CTX)
    new_york = ZoneInfo("America/New_York")
    assert event.start == datetime(2025, 7, 10, 9, tzinfo=new_york)
    assert event.start.tzinfo == new_york  # type: ignore[union-attr]
    assert event.start.utcoffset().total_seconds() == -4 * 3600  # type: ignore[union-attr]


def test_a_stale_vtimezone_decides_the_instant_over_the_display_name() -> None:
    """Brasilia under pre-2019 DST rules: the VTIMEZONE says -02 in January, so 12:00 UTC.

    America/Sao_Paulo no longer has DST; reading the name would move the event an hour.
    """
    event = event_from_ical(read("exchange-stale-brasilia.ics"), CTX)
    assert event.start == datetime(2020, 1, 15, 12, tzinfo=UTC)


def test_same_tzid_with_other_rules_in_a_later_resource_is_read_with_its_own_rules() -> None:
    """icalendar caches VTIMEZONEs per process by TZID; each resource keeps its own rules."""
    berlin = event_from_ical(read("outlook-customized-zone-berlin.ics"), CTX)
    sydney = event_from_ical(read("outlook-customized-zone-sydney.ics"), CTX)
    assert berlin.start == datetime(2025, 6, 12, 7, tzinfo=UTC)  # 09:00 +02
    assert sydney.start == datetime(2025, 6, 12, 9, tzinfo=ZoneInfo("Australia/Sydney"))
    assert sydney.start == datetime(2025, 6, 11, 23, tzinfo=UTC)  # 09:00 +10, not +02
    again = event_from_ical(read("outlook-customized-zone-berlin.ics"), CTX)
    assert again.start == berlin.start


def test_vendor_prefixed_tzid_is_the_iana_zone() -> None:
    """/mozilla.org/20050126_1/Europe/Berlin is Europe/Berlin."""
    event = event_from_ical(read("mozilla-prefix.ics"), CTX)
    assert event.start == datetime(2025, 3, 20, 10, tzinfo=ZoneInfo("Europe/Berlin"))
    assert event.timezone == "Europe/Berlin"


@pytest.mark.parametrize(
    ("name", "zone"),
    [
        ("(UTC+07:00) Bangkok, Hanoi, Jakarta", "Asia/Bangkok"),
        ('"(GMT+07.00) Bangkok, Hanoi, Jakarta"', "Asia/Bangkok"),  # pre-Vista spelling
        ("(UTC+07:00) Bangkok\\, Hanoi\\, Jakarta", "Asia/Bangkok"),  # escaped as TEXT
        ("(UTC+01:00)  amsterdam, Berlin, Bern, Rome, Stockholm, Vienna", "Europe/Berlin"),
        ("(UTC-05:00) Eastern Time (US & Canada)", "America/New_York"),
        ("(UTC) Coordinated Universal Time", "UTC"),
        ("(UTC+07:00) Nowhere in particular", None),
        ("Bangkok", None),
    ],
)
def test_display_names(name: str, zone: str | None) -> None:
    """Display names resolve through CLDR's Windows names; unknown ones do not guess."""
    found = display_zone(name)
    assert (found.key if found else None) == zone


def test_display_name_table_covers_every_windows_zone_of_icalendar() -> None:
    """Every CLDR display name maps to a Windows id icalendar knows, and that to a zone."""
    assert len(DISPLAY_TO_WINDOWS) > 130
    assert {v for v in DISPLAY_TO_WINDOWS.values() if v not in WINDOWS_TO_OLSON} == set()
    assert all(display_zone(name) is not None for name in DISPLAY_TO_WINDOWS)


def test_display_name_table_is_what_the_generator_makes(tmp_path: Path) -> None:
    """tools/gen_windows_names.py pairs each CLDR comment with the next mapZone's id."""
    spec = importlib.util.spec_from_file_location("gen", ROOT / "tools" / "gen_windows_names.py")
    assert spec is not None
    assert spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    sample = tmp_path / "windowsZones.xml"
    sample.write_text(
        '<mapTimezones otherVersion="7e11800" typeVersion="2021a">\n'
        "<!-- (UTC+07:00) Bangkok, Hanoi, Jakarta -->\n"
        '<mapZone other="SE Asia Standard Time" territory="001" type="Asia/Bangkok"/>\n'
        '<mapZone other="SE Asia Standard Time" territory="TH" type="Asia/Bangkok"/>\n'
        "<!-- (UTC) Coordinated Universal Time -->\n"
        '<mapZone other="UTC" territory="001" type="Etc/UTC"/>\n'
    )
    namespace: dict[str, object] = {}
    exec(gen.main(sample), namespace)  # noqa: S102 - the generated module, run in isolation
    assert namespace["DISPLAY_TO_WINDOWS"] == {
        "(UTC) Coordinated Universal Time": "UTC",
        "(UTC+07:00) Bangkok, Hanoi, Jakarta": "SE Asia Standard Time",
    }
    committed = (ROOT / "syncd" / "translate" / "_winnames.py").read_text()
    assert '"(UTC+07:00) Bangkok, Hanoi, Jakarta": "SE Asia Standard Time",' in committed


def test_unknown_tzid_without_vtimezone_is_reported_not_guessed() -> None:
    """RFC 5545 requires a VTIMEZONE per TZID: an unknown name alone has no instant."""
    text = (
        "BEGIN:VCALENDAR\nVERSION:2.0\nBEGIN:VEVENT\nUID:w\n"
        'DTSTART;TZID="Western/Central Europe":20211101T160000\n'
        'DTEND;TZID="Western/Central Europe":20211101T163000\nEND:VEVENT\nEND:VCALENDAR\n'
    )
    with pytest.raises(BrokenCalendarData, match="'Western/Central Europe' is not a known"):
        event_from_ical(text, CTX)
    with pytest.raises(BrokenCalendarData):
        event_from_ical(text, Context(timezone="Europe/Berlin"))


def test_a_tzid_another_resource_defined_is_not_borrowed() -> None:
    """Without its own VTIMEZONE, 'Customized Time Zone' is unknown, even after a resource
    defined it (icalendar's process-wide cache would lend that resource's rules)."""
    event_from_ical(read("outlook-customized-zone-sydney.ics"), CTX)
    text = read("outlook-customized-zone-berlin.ics")
    alone = text[: text.index("BEGIN:VTIMEZONE")] + text[text.index("BEGIN:VEVENT") :]
    with pytest.raises(BrokenCalendarData, match="'Customized Time Zone' is not a known"):
        event_from_ical(alone, CTX)
