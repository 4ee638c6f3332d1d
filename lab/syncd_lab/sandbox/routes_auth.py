"""OAuth2 token routes and the failed-callback pull (``/v1.0/event/callbacks/failedResults``)."""

from __future__ import annotations

from aiohttp import web

from syncd_lab.sandbox._http import APP_KEY, body_of, sandbox_of
from syncd_lab.sandbox.errors import BAD_CLIENT, ApiError, invalid

FAILED_PAGE = 200


async def get_access_token(request: web.Request) -> web.Response:
    """GetAccessToken: POST /v1.0/oauth2/accessToken {appKey, appSecret}."""
    body = await body_of(request)
    sandbox = sandbox_of(request)
    app = sandbox.seed.app(str(body.get("appKey", "")))
    if app is None or body.get("appSecret") != app.app_secret:
        raise ApiError(400, BAD_CLIENT, "appKey or appSecret is wrong")
    token = sandbox.issue_token(app.app_key)
    return web.json_response({"accessToken": token, "expireIn": sandbox.token_ttl})


async def get_token(request: web.Request) -> web.Response:
    """GetToken: POST /v1.0/oauth2/{corpId}/token (client-credentials, snake_case)."""
    body = await body_of(request)
    sandbox = sandbox_of(request)
    app = sandbox.seed.app(str(body.get("client_id", "")))
    if (
        app is None
        or body.get("client_secret") != app.app_secret
        or app.corp_id != request.match_info["corpId"]
    ):
        raise ApiError(400, BAD_CLIENT, "client_id or client_secret is wrong")
    token = sandbox.issue_token(app.app_key)
    return web.json_response({"access_token": token, "expires_in": sandbox.token_ttl})


def _millis(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError as exc:
        raise invalid(name, f"{name} must be epoch milliseconds") from exc


async def failed_results(request: web.Request) -> web.Response:
    """GetCallBackFaileResult: up to 200 failed pushes of the app; fetched ones are removed."""
    sandbox = sandbox_of(request)
    begin, end = _millis(request, "beginTime"), _millis(request, "endTime")
    stored = sandbox.state.failed.get(request[APP_KEY], [])

    def wanted(item: dict[str, object]) -> bool:
        at = int(str(item["eventTime"]))
        return (begin is None or at >= begin) and (end is None or at <= end)

    matching = [item for item in stored if wanted(item)]
    page = matching[:FAILED_PAGE]
    taken = {id(item) for item in page}
    sandbox.state.failed[request[APP_KEY]] = [i for i in stored if id(i) not in taken]
    sandbox.persist()
    return web.json_response({"failedList": page, "hasMore": len(matching) > len(page)})


def add_routes(app: web.Application) -> None:
    """Register the token and failed-result routes."""
    app.router.add_post("/v1.0/oauth2/accessToken", get_access_token, name="GetAccessToken")
    app.router.add_post("/v1.0/oauth2/{corpId}/token", get_token, name="GetToken")
    app.router.add_get(
        "/v1.0/event/callbacks/failedResults", failed_results, name="GetCallBackFaileResult"
    )
