"""``/_sandbox/`` routes: stats, reset, state, faults, callback registration, token expiry."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from syncd.errors import ConfigError
from syncd_lab.sandbox._http import sandbox_of


def _bad(message: str) -> web.HTTPBadRequest:
    """A 400 with a JSON body ``{"error": message}``."""
    return web.HTTPBadRequest(text=json.dumps({"error": message}), content_type="application/json")


async def _json(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    try:
        data = json.loads(raw) if raw.strip() else {}
    except ValueError as exc:
        raise _bad("body is not JSON") from exc
    if not isinstance(data, dict):
        raise _bad("body must be a JSON object")
    return data


async def stats(request: web.Request) -> web.Response:
    """GET /_sandbox/stats."""
    return web.json_response(sandbox_of(request).stats())


async def reset(request: web.Request) -> web.Response:
    """POST /_sandbox/reset: empty every calendar and counter."""
    sandbox_of(request).reset()
    return web.json_response({"ok": True})


async def state(request: web.Request) -> web.Response:
    """GET /_sandbox/state: JSON dump of everything."""
    return web.json_response(sandbox_of(request).dump())


async def faults(request: web.Request) -> web.Response:
    """POST /_sandbox/faults {latency_ms, error_rate, throttle_rate, callback_drop_rate, ...}."""
    try:
        updated = sandbox_of(request).set_faults(**await _json(request))
    except (TypeError, ValueError) as exc:
        raise _bad(str(exc)) from exc
    return web.json_response(updated.as_dict())


async def get_faults(request: web.Request) -> web.Response:
    """GET /_sandbox/faults: the current settings."""
    return web.json_response(sandbox_of(request).faults.faults.as_dict())


async def callbacks(request: web.Request) -> web.Response:
    """POST /_sandbox/callbacks {app_key, url, token?, aes_key?, check?}: (re)register a URL.

    With ``check: true`` (default) the URL is verified with a ``check_url`` push first and
    only kept if the receiver answers ``success`` (400 otherwise), like DingTalk's console.
    """
    data = await _json(request)
    sandbox = sandbox_of(request)
    app_key, url = str(data.get("app_key", "")), data.get("url")
    token, aes_key = data.get("token"), data.get("aes_key")
    try:
        if data.get("check", True) and url:
            ok = await sandbox.register_callback(app_key, str(url), token, aes_key)
        else:
            sandbox.set_callback(app_key, url, token, aes_key)
            ok = True
    except (KeyError, ValueError, ConfigError) as exc:
        raise _bad(str(exc)) from exc
    if not ok:
        raise _bad("check_url push was not answered with success")
    return web.json_response({"ok": True})


async def expire(request: web.Request) -> web.Response:
    """POST /_sandbox/expire {"what": "sync_tokens"|"access_tokens"}."""
    what = (await _json(request)).get("what", "sync_tokens")
    sandbox = sandbox_of(request)
    if what == "sync_tokens":
        sandbox.expire_sync_tokens()
    elif what == "access_tokens":
        sandbox.expire_access_tokens()
    else:
        raise _bad("what must be sync_tokens or access_tokens")
    return web.json_response({"ok": True})


async def drain(request: web.Request) -> web.Response:
    """POST /_sandbox/drain: returns once every pending callback push has finished."""
    await sandbox_of(request).drain()
    return web.json_response(sandbox_of(request).stats()["callbacks"])


def add_routes(app: web.Application) -> None:
    """Register the admin routes (names start with ``_sandbox``; never counted)."""
    r = app.router
    r.add_get("/_sandbox/stats", stats, name="_sandbox.stats")
    r.add_post("/_sandbox/reset", reset, name="_sandbox.reset")
    r.add_get("/_sandbox/state", state, name="_sandbox.state")
    r.add_post("/_sandbox/faults", faults, name="_sandbox.faults")
    r.add_get("/_sandbox/faults", get_faults, name="_sandbox.get_faults")
    r.add_post("/_sandbox/callbacks", callbacks, name="_sandbox.callbacks")
    r.add_post("/_sandbox/expire", expire, name="_sandbox.expire")
    r.add_post("/_sandbox/drain", drain, name="_sandbox.drain")
