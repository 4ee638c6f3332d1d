"""One rooted exception tree for syncd.

Everything syncd raises on purpose derives from :class:`SyncdError`. Adapters turn the
exceptions of their libraries (aiohttp, caldav, redis) into these classes with
``raise ... from exc`` in one place each; nothing above the adapters catches a foreign
exception type. Whether an error is worth retrying is a property of its class:
every subclass of :class:`Retryable` may succeed when tried again later.

::

    SyncdError
    ├── ConfigError (ValueError)          invalid YAML, unknown keys, missing ${ENV} secrets
    ├── CallbackError                     an inbound DingTalk callback is rejected
    │   ├── BadSignature                  signature does not match (forged or wrong token)
    │   ├── BadEnvelope                   ciphertext is not valid base64 / AES / PKCS#7
    │   │   ├── BadPadding                PKCS#7 pad byte outside 1..32 or inconsistent
    │   │   ├── BadLength                 the length field overruns the plaintext
    │   │   ├── OwnerKeyMismatch          the trailing owner key is not the expected one
    │   │   └── BadEncoding               the message is not UTF-8
    │   ├── BadPayload                    decrypted JSON is malformed or lacks fields
    │   ├── StaleTimestamp                timestamp outside the accepted window (replay)
    │   └── UnknownTenant                 no tenant with that id
    ├── SourceError                       talking to DingTalk or a CalDAV/ICS server failed
    │   ├── Retryable                     may succeed later (backoff and retry)
    │   │   ├── SourceUnavailable         connection errors, timeouts, 5xx, 504
    │   │   └── RateLimited               DingTalk 403 Forbidden.AccessDenied.Qps*, HTTP 429
    │   ├── AuthFailed                    bad credentials, expired token that cannot refresh
    │   ├── PermissionDenied              the app lacks a scope; never retried
    │   ├── BadResponse                   non-JSON (an IP-ban page), wrong shape
    │   ├── InvalidRequest                the server rejected what we sent (4xx with a code)
    │   ├── SyncTokenInvalid              the incremental cursor is stale: re-list in full
    │   ├── CalendarMissing               the bound CalDAV collection does not exist (404)
    │   └── PreconditionFailed            a conditional write lost a race
    │       ├── NotFound                  the item is gone
    │       ├── AlreadyExists             create found the target taken (If-None-Match)
    │       └── EtagMismatch              If-Match failed: re-read and re-decide
    ├── TranslationError                  an item cannot be mapped to the other side
    │   ├── BrokenCalendarData            unparseable iCalendar / DingTalk JSON
    │   └── Unrepresentable               valid, but the other side cannot express it
    ├── SyncError                         the planner refuses to act
    │   ├── SourceEmptied                 one side suddenly empty while pairs exist
    │   ├── DeletionsHeld                 planned deletions above the safety threshold
    │   └── IdentConflict                 two items on one side share one identity
    └── StoreError                        the mapping store (Redis) failed
        ├── StoreUnavailable (Retryable)  Redis unreachable
        └── LockLost                      a write of a run whose binding lock is no longer its own
"""

from __future__ import annotations


class SyncdError(Exception):
    """Root of every error syncd raises on purpose."""


class ConfigError(SyncdError, ValueError):
    """Raised when configuration is invalid; ``problems`` holds one line per problem."""

    def __init__(self, message: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems or (message,)


# --- inbound callbacks ----------------------------------------------------------------


class CallbackError(SyncdError):
    """Raised when an inbound DingTalk callback is rejected."""


class BadSignature(CallbackError):
    """Raised when a callback signature does not match the recomputed one."""


class BadEnvelope(CallbackError):
    """Raised when the encrypted envelope cannot be decrypted."""


class BadPadding(BadEnvelope):
    """Raised when the PKCS#7 pad is outside 1..32 or its bytes disagree."""


class BadLength(BadEnvelope):
    """Raised when the plaintext's length field points past its end."""


class OwnerKeyMismatch(BadEnvelope):
    """Raised when the owner key after the message is not the tenant's."""


class BadEncoding(BadEnvelope):
    """Raised when the decrypted message or owner key is not UTF-8."""


class BadPayload(CallbackError):
    """Raised when decrypted JSON is malformed or lacks required fields."""


class StaleTimestamp(CallbackError):
    """Raised when a callback's timestamp is outside the accepted window."""


class UnknownTenant(CallbackError):
    """Raised when a callback names a tenant that is not configured."""


# --- remote sources ---------------------------------------------------------------------


class SourceError(SyncdError):
    """Raised when talking to DingTalk, a CalDAV server or an ICS feed fails."""

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.code = code
        self.status = status


class Retryable(SourceError):
    """Base of errors that may succeed when tried again later."""


class SourceUnavailable(Retryable):
    """Raised on connection errors, timeouts and 5xx answers."""


class RateLimited(Retryable):
    """Raised when the server throttles us; ``retry_after`` is in seconds if known."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, code=code, status=status)
        self.retry_after = retry_after


class AuthFailed(SourceError):
    """Raised when credentials are rejected (and a token refresh did not help)."""


class PermissionDenied(SourceError):
    """Raised when the app lacks a permission scope; retrying cannot help."""


class BadResponse(SourceError):
    """Raised when an answer is not what the protocol promises (HTML ban page, bad JSON)."""


class InvalidRequest(SourceError):
    """Raised when the server rejects a request as invalid (4xx with a code)."""


class SyncTokenInvalid(SourceError):
    """Raised when an incremental cursor is unknown or expired; re-list in full."""


class CalendarMissing(SourceError):
    """Raised when a binding's CalDAV calendar collection does not exist (404 on it).

    A per-binding failure, not a dead letter: the binding is polled as usual and heals by
    itself once the calendar appears (or ``caldav.create: true`` makes it with MKCALENDAR).
    """


class PreconditionFailed(SourceError):
    """Raised when a conditional request's precondition does not hold."""


class NotFound(PreconditionFailed):
    """Raised when the item addressed no longer exists."""


class AlreadyExists(PreconditionFailed):
    """Raised when a create finds its target already taken."""


class EtagMismatch(PreconditionFailed):
    """Raised when If-Match fails because somebody else changed the item."""


# --- translation ------------------------------------------------------------------------


class TranslationError(SyncdError):
    """Raised when an item cannot be translated; ``field`` names the culprit if known."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class BrokenCalendarData(TranslationError):
    """Raised when iCalendar text or DingTalk JSON cannot be parsed at all."""


class Unrepresentable(TranslationError):
    """Raised when valid data cannot be expressed on the other side (policy: reported)."""


# --- planning ---------------------------------------------------------------------------


class SyncError(SyncdError):
    """Raised when the planner refuses to act on what it sees."""


class SourceEmptied(SyncError):
    """Raised when one side reads empty while mapped pairs exist (never mass-delete)."""


class DeletionsHeld(SyncError):
    """Raised when planned deletions exceed the binding's safety threshold."""


class IdentConflict(SyncError):
    """Raised when two items on one side claim the same identity (UID)."""


# --- mapping store ----------------------------------------------------------------------


class StoreError(SyncdError):
    """Raised when the mapping store fails."""


class StoreUnavailable(StoreError, Retryable):
    """Raised when Redis cannot be reached."""

    def __init__(self, message: str) -> None:
        Retryable.__init__(self, message)


class LockLost(StoreError):
    """Raised when a run's store write is refused because its binding lock is not its own.

    The lock expired (the worker stalled, was paused, or could not reach Redis for longer
    than the lock's ttl) and maybe another worker holds it now: the run must stop.
    """
