"""Errors the sandbox answers with: DingTalk's ``{code, message, requestid}`` bodies.

Codes DingTalk is known to use are spelled as observed (reference §4.2). Codes the
reference could not pin down are invented here, in DingTalk's style, and listed in the
package docstring so clients can rely on them.
"""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

# Known DingTalk codes (reference §4.2).
MISSING_TOKEN = "AuthenticationFailed.MissingParameter"  # noqa: S105 - an error code, not a secret
INVALID_TOKEN = "InvalidAuthentication"  # noqa: S105 - an error code, not a secret
BAD_CLIENT = "invalidClientIdOrSecret"
BAD_TIME = "InvalidParameter.ParsedISO8601TimestampError"
THROTTLED = "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi"
DUPLICATE_CLIENT_TOKEN = "invalidRequest.duplicateClientToken"  # noqa: S105 - an error code, not a secret
NOT_FOUND = "instanceNotExist"
# Invented (documented in syncd_lab.sandbox's docstring).
BAD_SYNC_TOKEN = "invalidParameter.syncToken"  # noqa: S105 - an error code, not a secret
BAD_NEXT_TOKEN = "invalidParameter.nextToken"  # noqa: S105 - an error code, not a secret
NO_PERMISSION = "forbidden.noPermission"
ATTENDEE_LIMIT = "invalidParameter.attendeesExceedLimit"
INTERNAL = "InternalError"
GATEWAY_TIMEOUT = "GatewayTimeout"


def new_request_id() -> str:
    """A DingTalk-looking request id (upper-case UUID)."""
    return str(uuid.uuid4()).upper()


class ApiError(Exception):
    """Raised by sandbox handlers; rendered as a DingTalk error body with ``status``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message

    def response(self) -> web.Response:
        """The JSON error response DingTalk's gateway would send."""
        body: dict[str, Any] = {
            "code": self.code,
            "message": self.message,
            "requestid": new_request_id(),
        }
        return web.json_response(body, status=self.status)


def invalid(field: str, message: str) -> ApiError:
    """400 ``invalidParameter.<field>`` for a request that fails validation."""
    return ApiError(400, f"invalidParameter.{field}", message)


def not_found(event_id: str) -> ApiError:
    """404 ``instanceNotExist`` for an event that is gone or not visible to the user."""
    return ApiError(404, NOT_FOUND, f"event {event_id} does not exist")
