"""The sans-I/O half of the DingTalk client: request shapes and answer classification."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from syncd.adapters.dingtalk import _wire as wire
from syncd.adapters.dingtalk._errors import parse_retry_after
from syncd.adapters.dingtalk._transport import backoff_delay
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


def _err(code: str, message: str = "m") -> bytes:
    return json.dumps({"code": code, "message": message, "requestid": "r1"}).encode()


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (403, "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi", RateLimited),
        (403, "Forbidden.AccessDenied.QpsLimitForApi", RateLimited),
        (403, "Forbidden.AccessDenied.QpmLimitForAppkeyAndApi", RateLimited),
        (403, "Forbidden.AccessDenied.QpsLimitForSuitekeyAndOrgAndApi", RateLimited),
        (400, "InvalidAuthentication", AuthFailed),
        (400, "AuthenticationFailed.MissingParameter", AuthFailed),
        (400, "invalidClientIdOrSecret", AuthFailed),
        (403, "Forbidden.AccessDenied.AccessTokenPermissionDenied", PermissionDenied),
        (403, "Forbidden.AccessDenied.IpNotInWhiteList", PermissionDenied),
        (403, "Forbidden.AccessDenied.ApiCountLimitForOrg", PermissionDenied),
        (500, "ServiceUnavailable", SourceUnavailable),
        (504, "GatewayTimeout", SourceUnavailable),
        (400, "invalidParameter.syncToken", SyncTokenInvalid),
        (410, "Gone", InvalidRequest),
        (400, "instanceNotExist", NotFound),
        (404, "eventNotFound", NotFound),
        (409, "invalidRequest.duplicateClientToken", AlreadyExists),
        (400, "InvalidParameter.ParsedISO8601TimestampError", InvalidRequest),
    ],
)
def test_error_codes_are_classified_by_code(
    status: int, code: str, expected: type[SourceError]
) -> None:
    """Each documented DingTalk code maps to its syncd error class, keeping code and status."""
    with pytest.raises(SourceError) as info:
        wire.decode(status, _err(code), "application/json")
    assert type(info.value) is expected
    assert info.value.code == code
    assert info.value.status == status
    assert "\n" not in str(info.value)


def test_message_mentioning_sync_token_is_sync_token_invalid() -> None:
    """An unknown code whose message names syncToken still means 're-list in full'."""
    with pytest.raises(SyncTokenInvalid):
        wire.decode(400, _err("InvalidParameter", "The syncToken is expired"), "application/json")


def test_capitalised_error_keys_are_understood() -> None:
    """The gateway's Code/Message/RequestId spelling is classified like the lower-case one."""
    body = json.dumps({"Code": "Forbidden.AccessDenied.QpsLimitForApi", "Message": "slow"})
    with pytest.raises(RateLimited, match="slow"):
        wire.decode(403, body.encode(), "application/json")


@pytest.mark.parametrize(
    ("status", "body", "ctype"),
    [
        (200, b"<html><body>banned</body></html>", "text/html"),
        (200, b'{"status":1111,"punish":"deny","msg":"ip limited"}', "application/json"),
        (200, b"[1, 2]", "application/json"),
        (403, b"<html>denied</html>", "text/html"),
    ],
)
def test_unusable_answers_are_bad_response(status: int, body: bytes, ctype: str) -> None:
    """HTML, IP-ban JSON and non-object bodies raise BadResponse, not a parse error."""
    with pytest.raises(BadResponse):
        wire.decode(status, body, ctype)


def test_html_5xx_is_source_unavailable_and_429_rate_limited() -> None:
    """A proxy's HTML error page is retryable; a bare 429 is throttling with Retry-After."""
    with pytest.raises(SourceUnavailable):
        wire.decode(502, b"<html>bad gateway</html>", "text/html")
    with pytest.raises(RateLimited) as info:
        wire.decode(429, b"", "", retry_after="3")
    assert info.value.retry_after == 3.0


def test_empty_success_body_is_empty_object() -> None:
    """Operations that answer with no body decode to an empty dict."""
    assert wire.decode(200, b"", "") == {}
    assert wire.decode(204, b"  ", "application/json") == {}


def test_retry_after_forms() -> None:
    """Retry-After is read as seconds or an HTTP date, clamped to 0..300, garbage ignored."""
    assert parse_retry_after("2.5") == 2.5
    assert parse_retry_after("100000") == 300.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


def test_times_are_utc_milliseconds_and_naive_is_refused() -> None:
    """Query times use YYYY-MM-DDTHH:MM:SS.000Z in UTC; a naive datetime is an error."""
    shanghai = timezone(timedelta(hours=8))
    assert wire.format_time(datetime(2025, 1, 1, 8, 0, 5, 999, shanghai)) == (
        "2025-01-01T00:00:05.000Z"
    )
    with pytest.raises(ValueError, match="aware"):
        wire.format_time(datetime(2025, 1, 1))


def test_list_events_query() -> None:
    """ListEvents sends lower-case booleans, 100-item pages and the millisecond time form."""
    req = wire.list_events(
        "u-alice",
        time_min=datetime(2025, 1, 1, tzinfo=UTC),
        time_max=datetime(2025, 12, 31, tzinfo=UTC),
        show_deleted=True,
        next_token="n1",
    )
    assert (req.method, req.path) == (
        "GET",
        "/v1.0/calendar/users/u-alice/calendars/primary/events",
    )
    assert dict(req.query) == {
        "timeMin": "2025-01-01T00:00:00.000Z",
        "timeMax": "2025-12-31T00:00:00.000Z",
        "showDeleted": "true",
        "maxResults": "100",
        "maxAttendees": "100",
        "nextToken": "n1",
    }
    assert not req.write
    assert req.auth
    assert req.payload() is None


def test_event_ids_are_percent_encoded_in_paths() -> None:
    """Base64-ish ids with '/', '+' and '=' stay one path segment."""
    req = wire.patch_event("u-alice", "ab/c+d=", {"summary": "x"})
    assert req.path.endswith("/events/ab%2Fc%2Bd%3D")
    assert req.method == "PUT"
    assert req.write
    assert json.loads(req.payload() or b"") == {"summary": "x", "id": "ab/c+d="}
    remove = wire.remove_attendees("u-alice", "e1", ["u-bob"])
    assert remove.path.endswith("/events/e1/attendees/batchRemove")


def test_writes_carry_client_token_header_and_json_content_type() -> None:
    """Write requests are flagged for x-client-token and send the SDK's content type."""
    req = wire.create_event("u-alice", {"summary": "s"})
    headers = req.headers("tok", "ct-1")
    assert headers["x-acs-dingtalk-access-token"] == "tok"
    assert headers["x-client-token"] == "ct-1"
    assert headers["content-type"] == "application/json; charset=utf-8"
    delete = wire.delete_event("u-alice", "e1")
    assert delete.write
    assert dict(delete.query) == {"pushNotification": "false"}


def test_attendee_batches_over_500_are_refused_by_the_builder() -> None:
    """The wire layer refuses a single add call with more than 500 attendees."""
    with pytest.raises(ValueError, match="500"):
        wire.add_attendees("u", "e", [{"id": f"u{i}"} for i in range(501)])


def test_page_decoding_checks_shapes() -> None:
    """Listing pages need a list of objects; tokens are optional strings."""
    page = wire.decode_page({"events": [{"id": "a"}], "nextToken": "", "syncToken": "s"})
    assert (page.items, page.next_token, page.sync_token) == ([{"id": "a"}], None, "s")
    with pytest.raises(BadResponse):
        wire.decode_page({"events": {"id": "a"}})
    with pytest.raises(BadResponse):
        wire.decode_token({"accessToken": "", "expireIn": 7200})


def test_backoff_has_full_jitter_and_grows() -> None:
    """Backoff delays stay below base*2^n, spread out (jitter), and their ceiling grows."""
    rng = random.Random(7)
    exc = SourceUnavailable("x")
    samples = {n: [backoff_delay(n, exc, 0.5, 30.0, rng) for _ in range(200)] for n in range(6)}
    for n, values in samples.items():
        assert all(0 <= v <= min(30.0, 0.5 * 2**n) for v in values)
        assert len(set(values)) > 150  # jitter, not a constant
    means = [sum(v) / len(v) for v in samples.values()]
    assert means == sorted(means)
    throttled = RateLimited("slow", retry_after=4.0)
    assert backoff_delay(0, throttled, 0.5, 30.0, rng) == 4.0
