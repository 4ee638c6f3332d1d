"""The aiohttp application of the sandbox: routes, auth, faults, idempotency, callbacks.

Request pipeline for DingTalk API routes (every route is named by its SDK action):
count → authenticate (``x-acs-dingtalk-access-token``) → faults (latency, throttling, 500)
→ ``x-client-token`` replay → handler → persist → callbacks pushed in the background →
injected 504 (after the change happened).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web

from syncd_lab.sandbox import (
    routes_admin,
    routes_attendees,
    routes_auth,
    routes_contacts,
    routes_events,
    routes_stream,
)
from syncd_lab.sandbox._http import (
    APP_KEY,
    CHANGES_KEY,
    CLIENT_TOKEN_KEY,
    FINGERPRINT_KEY,
    MUTATING,
    PUBLIC,
    SANDBOX_KEY,
    sandbox_of,
)
from syncd_lab.sandbox.errors import (
    DUPLICATE_CLIENT_TOKEN,
    INTERNAL,
    INVALID_TOKEN,
    MISSING_TOKEN,
    ApiError,
)
from syncd_lab.sandbox.sandbox import Sandbox
from syncd_lab.sandbox.seed import Seed

__all__ = ["SANDBOX_KEY", "Sandbox", "create_app"]

log = structlog.get_logger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _authenticate(request: web.Request, sandbox: Sandbox) -> None:
    token = request.headers.get("x-acs-dingtalk-access-token")
    if not token:
        raise ApiError(400, MISSING_TOKEN, "missing parameter x-acs-dingtalk-access-token")
    app_key = sandbox.state.app_of_token(token)
    if app_key is None:
        raise ApiError(400, INVALID_TOKEN, "the access token is invalid or has expired")
    request[APP_KEY] = app_key


async def _fingerprint(request: web.Request) -> str:
    digest = hashlib.sha256(await request.read()).hexdigest()
    return f"{request.method} {request.path} {digest}"


async def _replay(request: web.Request, sandbox: Sandbox, op: str) -> web.Response | None:
    """The stored answer for a repeated ``x-client-token``; 409 if reused for another call."""
    token = request.headers.get("x-client-token")
    if op not in MUTATING or not token:
        return None
    sandbox.state.prune()
    request[CLIENT_TOKEN_KEY] = f"{request[APP_KEY]}:{token}"
    request[FINGERPRINT_KEY] = await _fingerprint(request)
    seen = sandbox.state.client_tokens.get(request[CLIENT_TOKEN_KEY])
    if seen is None:
        return None
    if seen["fingerprint"] != request[FINGERPRINT_KEY]:
        raise ApiError(409, DUPLICATE_CLIENT_TOKEN, "x-client-token was used for another request")
    return web.Response(status=seen["status"], text=seen["body"], content_type="application/json")


def _remember(request: web.Request, sandbox: Sandbox, response: web.StreamResponse) -> None:
    key = request.get(CLIENT_TOKEN_KEY)
    if key and isinstance(response, web.Response) and 200 <= response.status < 300:
        body = response.text or ""
        sandbox.state.client_tokens[key] = {
            "fingerprint": request[FINGERPRINT_KEY],
            "status": response.status,
            "body": body,
            "at": time.time(),
        }


async def _api(request: web.Request, handler: Handler, sandbox: Sandbox, op: str) -> Any:
    if op not in PUBLIC:
        _authenticate(request, sandbox)
    late_timeout = await sandbox.faults.before(request.get(APP_KEY, ""), op)
    replayed = await _replay(request, sandbox, op)
    if replayed is not None:
        return replayed
    response = await handler(request)
    _remember(request, sandbox, response)
    if op in MUTATING:
        sandbox.persist()
    sandbox.notify(request.get(CHANGES_KEY, []))
    if late_timeout:
        raise sandbox.faults.timeout_error()
    return response


async def _unknown_api(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Unknown DingTalk paths and methods get a DingTalk-style JSON error, not plain text."""
    try:
        return await handler(request)
    except web.HTTPMethodNotAllowed:
        return ApiError(405, "InvalidAction.MethodNotAllowed", "method not allowed").response()
    except web.HTTPNotFound:
        return ApiError(404, "InvalidAction.NotFound", f"no API at {request.path}").response()


@web.middleware
async def api_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count, authenticate, inject faults, replay idempotent calls, map errors."""
    op = request.match_info.route.name
    if op is None and request.path.startswith("/v1.0/"):
        return await _unknown_api(request, handler)
    if op is None or op.startswith("_sandbox"):
        return await handler(request)
    sandbox = sandbox_of(request)
    sandbox.requests[op] += 1
    try:
        response: web.StreamResponse = await _api(request, handler, sandbox, op)
    except ApiError as exc:
        log.info("sandbox_api_error", op=op, status=exc.status, code=exc.code)
        return exc.response()
    except web.HTTPException:
        raise
    except Exception as exc:  # the fake must answer like a server, never crash
        log.exception("sandbox_internal_error", op=op)
        return ApiError(500, INTERNAL, f"internal error: {exc!r}").response()
    return response


def create_app(
    seed: Seed,
    *,
    state_file: Path | None = None,
    token_ttl: int = 7200,
    camel_case: bool = False,
    retry_delays: tuple[float, ...] = (0.2, 0.5, 1.0),
    callback_timeout: float = 1.5,
    random_seed: int = 0,
    stream_ack_timeout: float = 5.0,
) -> web.Application:
    """The sandbox web application; its :class:`Sandbox` is ``app[SANDBOX_KEY]``."""
    sandbox = Sandbox(
        seed,
        state_file=state_file,
        token_ttl=token_ttl,
        camel_case=camel_case,
        retry_delays=retry_delays,
        callback_timeout=callback_timeout,
        random_seed=random_seed,
        stream_ack_timeout=stream_ack_timeout,
    )
    app = web.Application(middlewares=[api_middleware])
    app[SANDBOX_KEY] = sandbox
    for module in (
        routes_auth,
        routes_events,
        routes_attendees,
        routes_admin,
        routes_stream,
        routes_contacts,
    ):
        module.add_routes(app)

    async def _close(_: web.Application) -> None:
        await sandbox.close()

    app.on_cleanup.append(_close)
    return app
