"""The contact API the directory import uses, served from the seed's users and departments.

DingTalk's v1.0 contact API has no call listing an organisation's users with unionId and
e-mail, so syncd uses the two topapi calls DingTalk documents for a contact sync (on
``oapi.dingtalk.com``; the sandbox serves them on its one port):

- ``POST /topapi/v2/department/listsubid?access_token=T`` ``{dept_id}`` ->
  ``{"errcode": 0, "errmsg": "ok", "result": {"dept_id_list": [...]}}`` (direct children);
- ``POST /topapi/v2/user/list?access_token=T`` ``{dept_id, cursor, size<=100}`` ->
  ``{"errcode": 0, "result": {"has_more", "next_cursor", "list": [{userid, unionid, name,
  email, org_email, dept_id_list, active}]}}`` (the department's direct members, paged).

As on oapi, answers are HTTP 200 with ``errcode`` (88 with ``sub_code`` 40014 for a bad
token, 40035 for a bad parameter). Plus ``POST /_sandbox/users`` ``{union_id, name, email,
departments}`` (add or update, as an administrator would) and ``DELETE
/_sandbox/users/{union_id}`` (the person leaves the organisation).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import ValidationError

from syncd_lab.sandbox._http import body_of, sandbox_of
from syncd_lab.sandbox.errors import ApiError, new_request_id
from syncd_lab.sandbox.seed import DepartmentSeed, Seed, UserSeed

ROOT = 1
MAX_PAGE = 100
BAD_PARAMETER = 40035
BAD_TOKEN = 88


def _errcode(code: int, message: str, sub_code: str = "") -> web.Response:
    body: dict[str, Any] = {"errcode": code, "errmsg": message, "request_id": new_request_id()}
    if sub_code:
        body["sub_code"] = sub_code
    return web.json_response(body)


def _ok(result: dict[str, Any]) -> web.Response:
    return web.json_response(
        {"errcode": 0, "errmsg": "ok", "result": result, "request_id": new_request_id()}
    )


def departments(seed: Seed) -> dict[int, int]:
    """Every known department -> its parent (the root 1 is its own parent's absence)."""
    tree = {d.id: d.parent for d in seed.departments if d.id != ROOT}
    for user in seed.users:
        for dept in user.departments:
            if dept != ROOT:
                tree.setdefault(dept, ROOT)
    return tree


def members(seed: Seed, dept: int) -> list[UserSeed]:
    """The department's direct members by userid (users with no department are in the root)."""
    found = [u for u in seed.users if dept in (u.departments or (ROOT,))]
    return sorted(found, key=lambda u: u.staff_id)


def _render(user: UserSeed) -> dict[str, Any]:
    return {
        "userid": user.staff_id,
        "unionid": user.union_id,
        "name": user.name,
        "email": "",
        "org_email": user.email,
        "dept_id_list": list(user.departments or (ROOT,)),
        "active": True,
    }


async def _authorised(request: web.Request) -> web.Response | None:
    token = request.query.get("access_token", "")
    if not token or sandbox_of(request).state.app_of_token(token) is None:
        return _errcode(BAD_TOKEN, "不合法的access_token", sub_code="40014")
    return None


def _int(body: dict[str, Any], name: str, default: int | None = None) -> int | None:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


async def list_sub_ids(request: web.Request) -> web.Response:
    """ListSubDepartmentIds: the direct children of ``dept_id``."""
    if (denied := await _authorised(request)) is not None:
        return denied
    dept = _int(await body_of(request), "dept_id")
    tree = departments(sandbox_of(request).seed)
    if dept is None or (dept != ROOT and dept not in tree):
        return _errcode(BAD_PARAMETER, "不合法的参数: dept_id")
    children = sorted(child for child, parent in tree.items() if parent == dept)
    return _ok({"dept_id_list": children})


async def list_users(request: web.Request) -> web.Response:
    """ListUsersV2: one page of ``dept_id``'s direct members from ``cursor``."""
    if (denied := await _authorised(request)) is not None:
        return denied
    body = await body_of(request)
    dept, cursor, size = _int(body, "dept_id"), _int(body, "cursor", 0), _int(body, "size")
    seed = sandbox_of(request).seed
    if dept is None or (dept != ROOT and dept not in departments(seed)):
        return _errcode(BAD_PARAMETER, "不合法的参数: dept_id")
    if cursor is None or cursor < 0 or size is None or not 1 <= size <= MAX_PAGE:
        return _errcode(BAD_PARAMETER, "不合法的参数: cursor/size (size 1..100)")
    found = members(seed, dept)
    page = found[cursor : cursor + size]
    more = cursor + size < len(found)
    result: dict[str, Any] = {"has_more": more, "list": [_render(u) for u in page]}
    if more:
        result["next_cursor"] = cursor + size
    return _ok(result)


def _bad(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=f'{{"error": "{message}"}}', content_type="application/json")


async def put_user(request: web.Request) -> web.Response:
    """POST /_sandbox/users {union_id, name, email, departments}: add or update a user."""
    try:
        data = await body_of(request)
        user = UserSeed.model_validate(data)
    except (ValidationError, ApiError) as exc:
        raise _bad(type(exc).__name__) from exc
    sandbox = sandbox_of(request)
    others = tuple(u for u in sandbox.seed.users if u.union_id != user.union_id)
    sandbox.seed = sandbox.seed.model_copy(update={"users": (*others, user)})
    return web.json_response({"ok": True})


async def delete_user(request: web.Request) -> web.Response:
    """DELETE /_sandbox/users/{union_id}: the user leaves the organisation."""
    sandbox = sandbox_of(request)
    gone = request.match_info["union_id"]
    before = sandbox.seed.users
    users = tuple(u for u in before if u.union_id != gone)
    sandbox.seed = sandbox.seed.model_copy(update={"users": users})
    return web.json_response({"ok": True, "removed": len(users) < len(before)})


def add_routes(app: web.Application) -> None:
    """Register the contact routes and their ``/_sandbox/`` helpers."""
    r = app.router
    r.add_post("/topapi/v2/department/listsubid", list_sub_ids, name="ListSubDepartmentIds")
    r.add_post("/topapi/v2/user/list", list_users, name="ListUsersV2")
    r.add_post("/_sandbox/users", put_user, name="_sandbox.users")
    r.add_delete("/_sandbox/users/{union_id}", delete_user, name="_sandbox.delete_user")


__all__ = ["DepartmentSeed", "add_routes", "departments", "members"]
