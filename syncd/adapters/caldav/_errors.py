"""The one place where caldav/niquests exceptions and HTTP statuses become ``syncd.errors``.

The client wraps every request in :func:`map_errors`, and turns an unwanted status into a
caldav ``DAVError`` with :func:`raise_for_status`, so statuses and library exceptions take
the same road. ``Op`` says what the request was for, because the same status means
different things: 412 is a lost race on update, a taken href on create, a stale cursor
on sync.
"""

from __future__ import annotations

import enum
from collections.abc import Container, Iterator
from contextlib import contextmanager
from typing import Any

import niquests
import structlog
from caldav.lib import error as dav_error

from syncd import errors
from syncd.adapters.caldav import quirks
from syncd.store.reasons import plain_reason

log = structlog.get_logger(__name__)


class Op(enum.StrEnum):
    """What a request was for."""

    SYNC = "sync"  # sync-collection with a token
    LIST = "list"  # a full listing (sync-collection without token, PROPFIND)
    READ = "read"  # multiget
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    SUBSCRIBE = "subscribe"  # WebDAV-Push discovery and registration


_BY_STATUS: dict[int, type[errors.SourceError]] = {
    400: errors.InvalidRequest,
    401: errors.AuthFailed,
    403: errors.PermissionDenied,
    404: errors.NotFound,
    408: errors.SourceUnavailable,
    409: errors.InvalidRequest,
    # Locked (WebDAV): Xandikos answers it while another write holds its repository's
    # lock; it passes, so the write is retried (it is no reason to dead-letter the item).
    423: errors.SourceUnavailable,
    429: errors.RateLimited,
}

_PRECONDITION_BY_OP: dict[Op, type[errors.SourceError]] = {
    Op.CREATE: errors.AlreadyExists,
    Op.UPDATE: errors.EtagMismatch,
    Op.DELETE: errors.EtagMismatch,
}


def raise_for_status(response: Any, ok: Container[int], url: str) -> None:
    """Raise a caldav ``DAVError`` (status, body, DAV:error preconditions) unless ``ok``."""
    status = int(response.status)
    if status in ok:
        return
    body = response._raw_body or response._raw or None  # caldav keeps the body here
    raise dav_error.DAVError(
        url=url,
        reason=f"{status} {response.reason}",
        preconditions=dav_error.parse_preconditions(body),
        body=body,
        status=status,
    )


def classify(op: Op, status: int | None, preconditions: list[str]) -> type[errors.SourceError]:
    """The ``syncd.errors`` class for an HTTP answer ``status`` to an ``op`` request."""
    if status is None:
        return errors.BadResponse
    if op is Op.SYNC and quirks.is_invalid_token(status, preconditions):
        return errors.SyncTokenInvalid
    if op is Op.CREATE and quirks.NO_UID_CONFLICT in preconditions:
        return errors.AlreadyExists
    if op is Op.CREATE and quirks.UID_TAKEN_ELSEWHERE.intersection(preconditions):
        return errors.InvalidRequest
    if status == 412:
        return _PRECONDITION_BY_OP.get(op, errors.InvalidRequest)
    if status >= 500:
        return errors.SourceUnavailable
    return _BY_STATUS.get(status, errors.InvalidRequest if status >= 400 else errors.BadResponse)


def _from_dav_error(
    op: Op, what: str, exc: dav_error.DAVError, condition: str | None = None
) -> errors.SourceError:
    status = exc.status
    cls = classify(op, status, exc.preconditions)
    reasons = [
        quirks.PRECONDITION_REASONS[p]
        for p in exc.preconditions
        if p in quirks.PRECONDITION_REASONS
    ]
    message = f"CalDAV {op} {what}: {exc.reason}" + "".join(f" ({r})" for r in reasons)
    code = exc.preconditions[0] if exc.preconditions else None  # e.g. {DAV:}valid-sync-token
    if cls is errors.RateLimited:
        return errors.RateLimited(message, code=code, status=status, retry_after=_retry_after(exc))
    if issubclass(cls, errors.PreconditionFailed):
        return cls(message, code=code, status=status, href=what, etag=condition)
    return cls(message, code=code, status=status)


def _retry_after(exc: dav_error.DAVError) -> float | None:
    seconds = getattr(exc, "retry_after_seconds", None)
    return float(seconds) if seconds is not None else None


@contextmanager
def map_errors(op: Op, what: str, condition: str | None = None) -> Iterator[None]:
    """Turn whatever the block raises into a ``syncd.errors.SourceError`` (``from`` the cause).

    ``what`` is the href (or URL) addressed; ``condition`` the ``If-Match`` etag (or the
    ``If-None-Match`` value) the request carried: a ``PreconditionFailed`` holds both.
    """
    try:
        yield
    except errors.SyncdError:
        raise
    except dav_error.RateLimitError as exc:
        message = f"CalDAV {op} {what}: throttled ({exc.status})"
        raise errors.RateLimited(message, status=exc.status, retry_after=_retry_after(exc)) from exc
    except dav_error.DAVError as exc:
        mapped = _from_dav_error(op, what, exc, condition)
        log.info(
            "caldav_error", op=str(op), what=what, status=exc.status, error=type(mapped).__name__
        )
        raise mapped from exc
    except (TimeoutError, niquests.exceptions.RequestException, OSError) as exc:
        message = f"CalDAV {op} {what}: {plain_reason(exc)}"  # no urllib3 reprs
        raise errors.SourceUnavailable(message) from exc
    except (SyntaxError, UnicodeDecodeError) as exc:  # lxml's XMLSyntaxError is a SyntaxError
        raise errors.BadResponse(f"CalDAV {op} {what}: unreadable answer: {exc}") from exc
