"""Classify DingTalk answers into ``syncd.errors`` (sans-I/O; used by ``_wire``).

DingTalk signals most trouble through the JSON body's ``code`` (throttling is a 403, an
expired token a 400), so the code decides first and the HTTP status only breaks ties:

==========================================================  =====================
code / answer                                               raised
==========================================================  =====================
``Forbidden.AccessDenied.Qps*`` / ``Qpm*``, HTTP 429        ``RateLimited``
``InvalidAuthentication`` (refresh the token, retry once)   ``AuthFailed``
``AuthenticationFailed.*``, ``invalidClientIdOrSecret``     ``AuthFailed``
``...AccessTokenPermissionDenied``, ``IpNotInWhiteList``,   ``PermissionDenied``
``ApiCountLimitForOrg``, any other ``Forbidden.*``, 403
HTTP 5xx (any body)                                         ``SourceUnavailable``
anything mentioning ``syncToken``                           ``SyncTokenInvalid``
``instanceNotExist`` and other ``*NotExist``/``*NotFound``  ``NotFound``
``invalidRequest.duplicateClientToken``                     ``AlreadyExists``
other 4xx with a code                                       ``InvalidRequest``
non-JSON / HTML, ``{"status":1111,"punish":"deny"}``        ``BadResponse``
==========================================================  =====================
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from syncd.errors import (
    AlreadyExists,
    AuthFailed,
    BadResponse,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    RateLimited,
    SourceError,
    SourceUnavailable,
    SyncTokenInvalid,
)

INVALID_AUTHENTICATION = "InvalidAuthentication"
_PERMISSION = ("accesstokenpermissiondenied", "ipnotinwhitelist", "apicountlimitfororg")
_AUTH = ("invalidauthentication", "invalidclientidorsecret")
_MAX_RETRY_AFTER = 300.0

Rule = tuple[Callable[[int, str, str], bool], type[SourceError]]

# First matching rule wins; arguments are (status, lower-cased code, lower-cased message).
_RULES: tuple[Rule, ...] = (
    (
        lambda s, c, m: c.startswith(("forbidden.accessdenied.qps", "forbidden.accessdenied.qpm")),
        RateLimited,
    ),
    (lambda s, c, m: s == 429, RateLimited),
    (lambda s, c, m: c in _AUTH or c.startswith("authenticationfailed"), AuthFailed),
    (lambda s, c, m: c.rsplit(".", 1)[-1] in _PERMISSION, PermissionDenied),
    (lambda s, c, m: s >= 500, SourceUnavailable),
    (lambda s, c, m: c.startswith("forbidden") or s == 403, PermissionDenied),
    (lambda s, c, m: "synctoken" in c or "synctoken" in m, SyncTokenInvalid),
    (lambda s, c, m: c.endswith(("notexist", "notfound", "notexists")), NotFound),
    (lambda s, c, m: c.endswith("duplicateclienttoken"), AlreadyExists),
)


def raise_for(
    status: int, body: bytes, content_type: str, *, retry_after: str | None = None
) -> None:
    """Return for a usable 2xx answer; otherwise raise the matching ``syncd.errors`` class."""
    if 200 <= status < 300:
        success_json(body, content_type)  # raises BadResponse on a ban page / HTML
        return
    raise error_for(status, body, retry_after=retry_after)


def error_for(status: int, body: bytes, *, retry_after: str | None = None) -> SourceError:
    """The ``syncd.errors`` instance describing a non-2xx answer."""
    parsed = _json(body)
    if isinstance(parsed, dict) and _field(parsed, "code"):
        return _error(status, parsed, retry_after)
    if status >= 500:
        return SourceUnavailable(f"DingTalk answered HTTP {status}", status=status)
    if status == 429:
        return RateLimited(
            "DingTalk answered HTTP 429", status=429, retry_after=parse_retry_after(retry_after)
        )
    return BadResponse(f"DingTalk answered HTTP {status} without a JSON error body", status=status)


def _error(status: int, body: dict[str, Any], retry_after: str | None) -> SourceError:
    code = _field(body, "code")
    message = " ".join(_field(body, "message").split())  # one line
    request_id = _field(body, "requestid") or _field(body, "requestId")
    text = f"DingTalk HTTP {status} {code}: {message}" + (
        f" (request {request_id})" if request_id else ""
    )
    cls = _classify(status, code, message)
    if cls is RateLimited:
        return RateLimited(
            text, code=code, status=status, retry_after=parse_retry_after(retry_after)
        )
    return cls(text, code=code, status=status)


def _classify(status: int, code: str, message: str) -> type[SourceError]:
    low_code, low_msg = code.lower(), message.lower()
    for matches, cls in _RULES:
        if matches(status, low_code, low_msg):
            return cls
    return InvalidRequest


def _field(body: dict[str, Any], name: str) -> str:
    for key in (name, name[:1].upper() + name[1:], name.lower()):
        value = body.get(key)
        if value is not None:
            return str(value)
    return ""


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def success_json(body: bytes, content_type: str) -> dict[str, Any]:
    """The JSON object of a 2xx answer; ``{}`` for an empty body; ``BadResponse`` otherwise."""
    if not body.strip():
        return {}
    parsed = _json(body)
    if not isinstance(parsed, dict):
        kind = content_type or "unknown content type"
        raise BadResponse(f"DingTalk answered 2xx with a non-JSON-object body ({kind})")
    if "punish" in parsed or parsed.get("status") == 1111:
        raise BadResponse(f"DingTalk refused the caller's IP: {parsed.get('punish', 'deny')}")
    return parsed


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date), capped at 300 s."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return min(max(seconds, 0.0), _MAX_RETRY_AFTER)
