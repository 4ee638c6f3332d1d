"""The directory import: an organisation's users (unionId, userid, name, e-mail, departments).

DingTalk's v1.0 contact API (``/v1.0/contact/...``) has no call that lists an
organisation's users with their unionId and e-mail, so the import uses the two topapi
calls DingTalk documents for a contact sync, on ``oapi.dingtalk.com`` with the same app
access token (passed as ``?access_token=``):

- ``POST /topapi/v2/department/listsubid`` ``{dept_id}``: the direct sub-departments,
  walked breadth-first from the root department 1;
- ``POST /topapi/v2/user/list`` ``{dept_id, cursor, size: 100}``: a department's direct
  members, 100 a page, following ``next_cursor`` while ``has_more``.

A user in several departments is listed once per department and kept once. The e-mail
is ``org_email`` (the enterprise mailbox) or else ``email``; a user with neither, or with
no unionid, is skipped with a reason. Answers are HTTP 200 with an ``errcode``; a
rejected token (errcode 88 / 40014 / 42001) is refreshed once. Any other failure raises
:class:`~syncd.errors.SourceError`: the caller keeps its last good directory.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import structlog

from syncd.adapters.dingtalk._transport import Transport
from syncd.errors import BadResponse, SourceUnavailable
from syncd.model import DirectoryUser, OrgDirectory

log = structlog.get_logger(__name__)

ROOT_DEPARTMENT = 1
PAGE_SIZE = 100
OAPI = "https://oapi.dingtalk.com"
TOKEN_ERRORS = frozenset({"88", "40014", "42001"})


def oapi_base(api_base: str) -> str:
    """Where the topapi calls go: ``oapi.dingtalk.com`` for DingTalk's own API host, else
    ``api_base`` itself (the sandbox, a proxy) serves both."""
    base = api_base.rstrip("/")
    return OAPI if urlsplit(base).hostname == "api.dingtalk.com" else base


class ContactsClient(Transport):
    """The two contact calls, with the app's cached token (shared with the calendar calls)."""

    def __init__(self, session: aiohttp.ClientSession, api_base: str, *args: Any, **kw: Any):
        super().__init__(session, api_base, *args, **kw)
        self._oapi = oapi_base(api_base)

    async def sub_departments(self, dept: int) -> list[int]:
        """The direct sub-departments of ``dept``."""
        result = await self._topapi(
            "ListSubDepartmentIds", "/topapi/v2/department/listsubid", {"dept_id": dept}
        )
        ids = result.get("dept_id_list")
        if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
            raise BadResponse("DingTalk ListSubDepartmentIds: no dept_id_list")
        return ids

    async def users_page(self, dept: int, cursor: int) -> tuple[list[dict[str, Any]], int | None]:
        """One page of ``dept``'s direct members and the next cursor (None at the end)."""
        body = {"dept_id": dept, "cursor": cursor, "size": PAGE_SIZE}
        result = await self._topapi("ListUsersV2", "/topapi/v2/user/list", body)
        users = result.get("list", [])
        if not isinstance(users, list):
            raise BadResponse("DingTalk ListUsersV2: list is not a list")
        following = result.get("next_cursor")
        more = bool(result.get("has_more")) and isinstance(following, int)
        return [u for u in users if isinstance(u, dict)], following if more else None

    async def _topapi(self, op: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        stale: str | None = None
        for attempt in range(2):
            token = await self._token(stale)
            data = await self._post(op, path, token, body)
            code = str(data.get("errcode", ""))
            if code == "0":
                result = data.get("result")
                return result if isinstance(result, dict) else {}
            reason = f"errcode {code} {data.get('sub_code', '')}: {data.get('errmsg', '')}"
            if attempt == 0 and {code, str(data.get("sub_code", ""))} & TOKEN_ERRORS:
                log.info("dingtalk.token.rejected", op=op, app_key=self.app_key)
                stale = token
                continue
            raise BadResponse(f"DingTalk {op}: {reason.strip()}")
        raise BadResponse(f"DingTalk {op}: the token was rejected twice")  # pragma: no cover

    async def _post(self, op: str, path: str, token: str, body: dict[str, Any]) -> dict[str, Any]:
        if self._pace is not None:
            await self._pace()
        self.requests[op] += 1
        url = f"{self._oapi}{path}"
        try:
            async with self._session.post(url, params={"access_token": token}, json=body) as resp:
                raw, status = await resp.read(), resp.status
        except TimeoutError as exc:
            raise SourceUnavailable(f"DingTalk {op} timed out") from exc
        except aiohttp.ClientError as exc:
            raise SourceUnavailable(f"DingTalk {op}: {type(exc).__name__}: {exc}") from exc
        if status != 200:
            raise SourceUnavailable(f"DingTalk {op}: HTTP {status}")
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise BadResponse(f"DingTalk {op}: answer is not JSON") from exc
        if not isinstance(data, dict):
            raise BadResponse(f"DingTalk {op}: answer is not a JSON object")
        return data


def _user_of(record: dict[str, Any]) -> DirectoryUser | str:
    """The user of one ``user/list`` record, or why it is skipped."""
    union_id = record.get("unionid")
    email = record.get("org_email") or record.get("email")
    who = record.get("userid") or union_id or "?"
    if not isinstance(union_id, str) or not union_id:
        return f"user {who!r}: no unionid"
    if not isinstance(email, str) or "@" not in email:
        return f"user {union_id!r}: no e-mail address"
    depts = record.get("dept_id_list")
    return DirectoryUser(
        union_id=union_id,
        email=email.strip(),
        name=str(record.get("name") or ""),
        userid=str(record.get("userid") or ""),
        departments=tuple(sorted(d for d in depts if isinstance(d, int)))
        if isinstance(depts, list)
        else (),
    )


async def _departments(client: ContactsClient) -> list[tuple[int, int]]:
    """(department, parent) for every department below the root, breadth first."""
    parents: list[tuple[int, int]] = []
    todo, seen = [ROOT_DEPARTMENT], {ROOT_DEPARTMENT}
    while todo:
        dept = todo.pop(0)
        for child in await client.sub_departments(dept):
            if child not in seen:
                seen.add(child)
                parents.append((child, dept))
                todo.append(child)
    return parents


async def _members(client: ContactsClient, dept: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor: int | None = 0
    while cursor is not None:
        page, cursor = await client.users_page(dept, cursor)
        found.extend(page)
    return found


async def import_directory(client: ContactsClient) -> tuple[OrgDirectory, list[str]]:
    """The whole organisation, and the one-line reasons of users left out."""
    parents = await _departments(client)
    users: dict[str, DirectoryUser] = {}
    skipped: dict[str, str] = {}
    departments: Iterable[int] = [ROOT_DEPARTMENT, *(child for child, _ in parents)]
    for dept in departments:
        for record in await _members(client, dept):
            user = _user_of(record)
            if isinstance(user, str):
                skipped[user] = user
            else:
                users.setdefault(user.union_id, user)
    ordered = tuple(users[uid] for uid in sorted(users))
    return OrgDirectory(ordered, tuple(parents), time.time()), list(skipped)
