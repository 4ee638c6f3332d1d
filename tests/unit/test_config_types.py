"""The value types of the configuration: durations, listen addresses, URLs, zones, ids, keys."""

from __future__ import annotations

import zoneinfo
from datetime import time
from pathlib import Path

import pytest
import tzdata
from pydantic import BaseModel, ValidationError

from syncd.config import Settings, parse_duration, parse_listen
from syncd.config._types import AesKey, HttpUrl, Ident, Timezone
from syncd.errors import ConfigError

OFFICIAL_AES_KEY = "Yue0EfdN5900c1ce5cf6A152c63DDe1808a60c5ecd7"  # DingTalk's example key


class _Probe(BaseModel):
    url: HttpUrl | None = None
    zone: Timezone | None = None
    ident: Ident | None = None
    aes: AesKey | None = None


def _error(**fields: object) -> str:
    with pytest.raises(ValidationError) as info:
        _Probe.model_validate(fields)
    (error,) = info.value.errors()
    return str(error["msg"])


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("1h30m", 5400.0),
        ("1h 30m", 5400.0),
        ("250ms", 0.25),
        ("1.5s", 1.5),
        ("2d", 172800.0),
        (45, 45.0),
        (0.5, 0.5),
    ],
)
def test_duration_parses_to_seconds(text: str | float, seconds: float) -> None:
    """Durations with units (and plain numbers of seconds) become float seconds."""
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["5 minutes", "30", "m", "1x", "", "-5s", True, None, [1]])
def test_duration_rejects_nonsense_with_a_clear_message(bad: object) -> None:
    """Anything that is not a positive duration is refused, and the message shows the syntax."""
    with pytest.raises(ValueError, match=r"expected a duration such as 30s, 5m, 1h or 1h30m"):
        parse_duration(bad)


@pytest.mark.parametrize("zero", ["0s", 0, "0m0s"])
def test_duration_must_be_positive(zero: object) -> None:
    """A zero duration would mean polling in a busy loop: refused."""
    with pytest.raises(ValueError, match="longer than zero"):
        parse_duration(zero)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:8080", ("127.0.0.1", 8080)),
        ("0.0.0.0:0", ("0.0.0.0", 0)),  # noqa: S104 - a listen address, not a bind here
        ("[::1]:9000", ("::1", 9000)),
        ("localhost:65535", ("localhost", 65535)),
    ],
)
def test_parse_listen(text: str, expected: tuple[str, int]) -> None:
    """HOST:PORT (IPv6 in brackets) splits into host and port."""
    assert parse_listen(text) == expected


@pytest.mark.parametrize("bad", ["8080", ":8080", "host:", "host:http", "host:70000", ""])
def test_parse_listen_rejects_bad_addresses(bad: str) -> None:
    """A listen address without a host or a valid port is a ConfigError (exit 2 in the CLI)."""
    with pytest.raises(ConfigError, match="HOST:PORT"):
        parse_listen(bad)


@pytest.mark.parametrize(
    "good", ["http://127.0.0.1:5232/alice/work/", "https://dav.example.org", "https://h:8443/x"]
)
def test_http_urls_accepted(good: str) -> None:
    """http and https URLs with a host pass unchanged."""
    assert _Probe(url=good).url == good


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("ftp://x.example", "must be an http:// or https:// URL with a host"),
        ("dav.example.org/x", "must be an http:// or https:// URL with a host"),
        ("http://", "must be an http:// or https:// URL with a host"),
        ("http://a b/", "must be an http:// or https:// URL with a host"),
        ("https://h:port/", "the URL has an invalid port"),
    ],
)
def test_other_urls_refused(bad: str, message: str) -> None:
    """Only http(s) URLs with a host (and a numeric port) are accepted."""
    assert _error(url=bad) == message


def test_url_message_does_not_echo_the_url() -> None:
    """A URL may hold a feed secret, so the message names the rule, not the value."""
    message = _error(url="ftp://user:hunter22@feed.example/private-token")
    assert "hunter22" not in message
    assert "private-token" not in message


@pytest.mark.parametrize("zone", ["UTC", "Asia/Shanghai", "Europe/Berlin", "America/New_York"])
def test_iana_zones_accepted(zone: str) -> None:
    """IANA zone names validate."""
    assert _Probe(zone=zone).zone == zone


@pytest.mark.parametrize("zone", ["Mars/Olympus", "China Standard Time", "../etc/passwd", ""])
def test_unknown_zones_refused(zone: str) -> None:
    """Unknown or path-like zone names are refused, naming the zone."""
    assert _error(zone=zone) == f"unknown IANA time zone '{zone}'"


def _zone_files() -> set[str]:
    """Every file name under the zone databases ZoneInfo reads (system and tzdata)."""
    roots = [*zoneinfo.TZPATH, str(Path(tzdata.__file__).parent / "zoneinfo")]
    return {
        str(path.relative_to(root))
        for root in map(Path, roots)
        if root.is_dir()
        for path in root.rglob("*")
        if path.is_file()
    }


def test_zones_accepted_are_exactly_the_available_ones() -> None:
    """The cheap check (ZoneInfo loads it, and it is not a posix/, right/ or posixrules
    copy) accepts exactly zoneinfo.available_timezones() among the installed files."""
    available = zoneinfo.available_timezones()
    for name in _zone_files() | {"posix/Asia/Shanghai", "right/UTC", "posixrules"}:
        try:
            _Probe(zone=name)
        except ValidationError:
            accepted = False
        else:
            accepted = True
        assert accepted == (name in available), name


@pytest.mark.parametrize("good", ["acme", "alice-work", "a_1", "0x", "a" * 64])
def test_ids_accepted(good: str) -> None:
    """Ids are lowercase letters, digits, '-' and '_' (safe in URLs, Redis keys, metrics)."""
    assert _Probe(ident=good).ident == good


@pytest.mark.parametrize("bad", ["Acme", "-x", "a/b", "a:b", "", "a" * 65, "alice work"])
def test_bad_ids_refused(bad: str) -> None:
    """Anything else is refused with the rule spelled out."""
    assert _error(ident=bad).startswith("must be 1-64 characters of a-z, 0-9")


def test_aes_key_official_vector_accepted() -> None:
    """The official 43-character EncodingAESKey is valid."""
    probe = _Probe(aes=OFFICIAL_AES_KEY)
    assert probe.aes is not None
    assert probe.aes.get_secret_value() == OFFICIAL_AES_KEY


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (OFFICIAL_AES_KEY[:-1], "EncodingAESKey must be 43 characters, got 42"),
        (OFFICIAL_AES_KEY + "=", "EncodingAESKey must be 43 characters, got 44"),
        ("!" + OFFICIAL_AES_KEY[1:], "EncodingAESKey is not base64 text"),
    ],
)
def test_bad_aes_keys_refused_without_echo(bad: str, message: str) -> None:
    """A malformed EncodingAESKey is refused; the message never contains the key."""
    got = _error(aes=bad)
    assert got == message
    assert bad not in got


def test_time_of_day_and_level_normalised() -> None:
    """full_reconcile_at is HH:MM; log level is case-insensitive."""
    settings = Settings.model_validate({"full_reconcile_at": "4:05", "log": {"level": "DEBUG"}})
    assert settings.full_reconcile_at == time(4, 5)
    assert settings.log.level == "debug"


@pytest.mark.parametrize("bad", ["24:00", "3pm", "03:60", 180])
def test_time_of_day_refused(bad: object) -> None:
    """An impossible time of day is refused."""
    with pytest.raises(ValidationError):
        Settings.model_validate({"full_reconcile_at": bad})
