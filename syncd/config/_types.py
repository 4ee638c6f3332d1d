"""Value types of the configuration: durations, URLs, zones, ids, secrets, listen addresses.

Each is an ``Annotated`` pydantic type whose validator raises ``PydanticCustomError`` with a
message that never repeats a secret; the JSON Schema of each describes what the YAML holds.
"""

from __future__ import annotations

import re
from datetime import time
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BeforeValidator, Field, SecretStr, WithJsonSchema
from pydantic_core import PydanticCustomError

from syncd.errors import ConfigError

__all__ = [
    "AesKey",
    "Duration",
    "Email",
    "HttpUrl",
    "Ident",
    "Listen",
    "LogLevel",
    "NonEmptyStr",
    "RedisUrl",
    "Regex",
    "Secret",
    "TimeOfDay",
    "Timezone",
    "parse_duration",
    "parse_listen",
]

SENTINEL_SCHEME = "redis+sentinel"  # = syncd.store.connection.SENTINEL_SCHEME (arq, redis-py:
# imported only to parse a Sentinel URL, so that `syncd check` starts without them)
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_PART = r"(\d+(?:\.\d+)?)(ms|s|m|h|d)"
DURATION_PATTERN = rf"^\s*(?:{_DURATION_PART}\s*)+$"
ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
_TIME_OF_DAY = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _fail(kind: str, message: str, **context: Any) -> PydanticCustomError:
    return PydanticCustomError(kind, message, context or None)


def parse_duration(value: object) -> float:
    """Seconds of ``30s``, ``5m``, ``1h30m``, ``250ms``, ``1d`` or a plain number of seconds."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _fail("duration", "expected a duration such as 30s, 5m, 1h or 1h30m")
    if isinstance(value, str):
        if not re.fullmatch(DURATION_PATTERN, value):
            raise _fail(
                "duration",
                "expected a duration such as 30s, 5m, 1h or 1h30m, got '{text}'",
                text=value[:40],
            )
        seconds = sum(float(n) * _UNITS[u] for n, u in re.findall(_DURATION_PART, value))
    else:
        seconds = float(value)
    if seconds <= 0:
        raise _fail("duration", "a duration must be longer than zero")
    return seconds


def _check_http_url(value: str) -> str:
    parts = urlsplit(value)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or any(c.isspace() for c in value)
    ):
        raise _fail("url", "must be an http:// or https:// URL with a host")
    try:
        parts.port  # noqa: B018 - evaluating it validates the port
    except ValueError as exc:
        raise _fail("url", "the URL has an invalid port") from exc
    return value


def _check_redis_url(value: str) -> str:
    if value.startswith(SENTINEL_SCHEME + "://"):
        from syncd.store.connection import redis_settings

        try:
            redis_settings(value)
        except ConfigError as exc:
            raise _fail("url", str(exc)) from None
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("redis", "rediss", "unix") or not (parts.hostname or parts.path):
        raise _fail("url", f"must be a redis://, rediss://, unix:// or {SENTINEL_SCHEME}:// URL")
    return value


# What zoneinfo.available_timezones() leaves out of the files ZoneInfo() would load: the
# posix/ and right/ copies and posixrules. Checking the name against these is the same
# test without walking the zone database (60 ms, much of `syncd check`'s time);
# tests/unit/test_config_types.py compares the two over every zone file installed.
_NOT_ZONES = frozenset({"posixrules"})
_NOT_ZONE_TREES = ("posix/", "right/")


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        known = False
    else:
        known = value not in _NOT_ZONES and not value.startswith(_NOT_ZONE_TREES)
    if not known:
        raise _fail("timezone", "unknown IANA time zone '{zone}'", zone=value[:60])
    return value


def _check_id(value: str) -> str:
    if not re.fullmatch(ID_PATTERN, value):
        raise _fail(
            "ident",
            "must be 1-64 characters of a-z, 0-9, '-' and '_', starting with a letter or digit",
        )
    return value


def _check_email(value: str) -> str:
    if not _EMAIL.fullmatch(value):
        raise _fail("email", "not an e-mail address")
    return value


def _check_aes_key(value: SecretStr) -> SecretStr:
    from syncd import crypto  # cryptography: only when a tenant file is validated

    try:
        crypto.aes_key_from_encoding_key(value.get_secret_value())
    except ConfigError as exc:  # its messages never include the key itself
        raise _fail("aes_key", "{reason}", reason=str(exc)) from exc
    return value


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8080`` for IPv6) as ``(host, port)``; :class:`ConfigError` if not."""
    host, sep, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"listen address must be HOST:PORT with a port 0-65535, got '{text}'")
    return host, int(port)


def _check_listen(value: str) -> str:
    try:
        parse_listen(value)
    except ConfigError as exc:
        raise _fail("listen", "{reason}", reason=str(exc)) from exc
    return value


def _parse_time_of_day(value: object) -> object:
    if isinstance(value, time):
        return value
    match = _TIME_OF_DAY.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise _fail("time", "expected a time of day as HH:MM (24-hour), got '{text}'", text=value)
    return time(int(match[1]), int(match[2]))


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


NonEmptyStr = Annotated[str, Field(min_length=1)]
Secret = Annotated[SecretStr, Field(min_length=1)]
AesKey = Annotated[
    SecretStr,
    AfterValidator(_check_aes_key),
    WithJsonSchema(
        {
            "type": "string",
            "format": "password",
            "writeOnly": True,
            "minLength": 43,
            "maxLength": 43,
        }
    ),
]
Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": DURATION_PATTERN},
                {"type": "number", "exclusiveMinimum": 0},
            ],
            "description": "a duration: 30s, 5m, 1h, 1h30m, 250ms, 1d, or seconds",
        }
    ),
]
HttpUrl = Annotated[
    str,
    AfterValidator(_check_http_url),
    WithJsonSchema({"type": "string", "format": "uri", "pattern": "^https?://"}),
]
RedisUrl = Annotated[str, AfterValidator(_check_redis_url)]
Timezone = Annotated[str, AfterValidator(_check_timezone)]


def _check_regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise _fail("regex", "not a valid regular expression: {why}", why=str(exc)) from None
    return value


Regex = Annotated[
    str, AfterValidator(_check_regex), WithJsonSchema({"type": "string", "format": "regex"})
]
Ident = Annotated[
    str, AfterValidator(_check_id), WithJsonSchema({"type": "string", "pattern": ID_PATTERN})
]
Email = Annotated[
    str, AfterValidator(_check_email), WithJsonSchema({"type": "string", "format": "email"})
]
Listen = Annotated[str, AfterValidator(_check_listen)]
TimeOfDay = Annotated[
    time,
    BeforeValidator(_parse_time_of_day),
    WithJsonSchema({"type": "string", "pattern": _TIME_OF_DAY.pattern}),
]
LogLevel = Annotated[
    Literal["debug", "info", "warning", "error", "critical"], BeforeValidator(_lower)
]
