"""The directory import against the sandbox's contact API: paging, departments, failures."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

import aiohttp
import pytest
import redis.asyncio as aredis
from arq.connections import ArqRedis

from syncd.adapters.dingtalk.contacts import ContactsClient, import_directory, oapi_base
from syncd.adapters.dingtalk.tokens import TokenCache
from syncd.config import Tenant
from syncd.observability import DIRECTORY_IMPORTS
from syncd.store.directory import load_directory
from syncd.store.tokens import TokenStore
from syncd.worker.directory import import_now, refresh_due
from syncd_lab.sandbox.seed import seed_from_data
from tests.fixtures.sandbox import APP_KEY, APP_SECRET, CORP_ID, SandboxHandle, start_sandbox

PEOPLE = 450


def org_seed(people: int, *, depts: int = 3) -> dict[str, Any]:
    """``people`` users spread over departments 10.. (11 under 10), some in two."""
    users = [
        {
            "union_id": f"u-{n:04d}",
            "name": f"User {n}",
            "email": f"user{n}@acme.example",
            "departments": [10 + n % depts] + ([99] if n % 7 == 0 else []),
        }
        for n in range(people)
    ]
    return {
        "apps": [{"app_key": APP_KEY, "app_secret": APP_SECRET, "corp_id": CORP_ID}],
        "users": users,
        "departments": [{"id": 11, "parent": 10}, {"id": 99, "parent": 11}],
    }


@pytest.fixture
async def org() -> AsyncIterator[SandboxHandle]:
    """A sandbox with 450 users in four departments (150 in each of 10, 11, 12: two pages)."""
    async with start_sandbox(seed_from_data(org_seed(PEOPLE))) as handle:
        yield handle


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def tenant(url: str) -> Tenant:
    return Tenant.model_validate(
        {
            "id": "acme",
            "dingtalk": {
                "api_base": url,
                "app_key": APP_KEY,
                "app_secret": APP_SECRET,
                "delivery": "stream",
            },
            "directory": {"source": "dingtalk", "refresh": "1h"},
        }
    )


def test_oapi_host_for_dingtalk_itself() -> None:
    assert oapi_base("https://api.dingtalk.com/") == "https://oapi.dingtalk.com"
    assert oapi_base("http://127.0.0.1:9/") == "http://127.0.0.1:9"


async def test_import_pages_every_department(
    org: SandboxHandle, session: aiohttp.ClientSession, redis_client: aredis.Redis
) -> None:
    """Every user once, with every department; pages of 100 followed; the tree kept."""
    client = ContactsClient(
        session, org.url, APP_KEY, APP_SECRET, TokenCache(TokenStore(redis_client))
    )
    found, skipped = await import_directory(client)
    assert skipped == []
    assert [u.union_id for u in found.users] == [f"u-{n:04d}" for n in range(PEOPLE)]
    assert found.users[7].departments == (11, 99)  # 7 % 3 == 1 -> 11, and 99
    assert found.users[7].email == "user7@acme.example"
    assert found.users[7].userid == "u-0007"
    assert sorted(found.parents) == [(10, 1), (11, 10), (12, 1), (99, 11)]
    assert found.descendants(10) == {10, 11, 99}
    # 150 users in each of 10, 11, 12 (2 pages each), 65 in 99, none in the root: 8 pages.
    assert client.requests["ListUsersV2"] == 2 + 2 + 2 + 1 + 1
    assert client.requests["ListSubDepartmentIds"] == 5


async def test_user_without_email_is_skipped_with_reason(
    session: aiohttp.ClientSession, redis_client: aredis.Redis
) -> None:
    data = org_seed(3)
    data["users"][1]["email"] = ""
    async with start_sandbox(seed_from_data(data)) as sb:
        client = ContactsClient(
            session, sb.url, APP_KEY, APP_SECRET, TokenCache(TokenStore(redis_client))
        )
        found, skipped = await import_directory(client)
    assert [u.union_id for u in found.users] == ["u-0000", "u-0002"]
    assert skipped == ["user 'u-0001': no e-mail address"]


async def test_failed_import_keeps_the_last_directory(
    org: SandboxHandle, session: aiohttp.ClientSession, redis_client: aredis.Redis
) -> None:
    """A failing contact API leaves the cached directory as it was; counted and retried."""
    acme, tokens = tenant(org.url), TokenCache(TokenStore(redis_client))
    first = await import_now(redis_client, session, tokens, acme)
    assert first is not None
    assert len(first.users) == PEOPLE
    failed = DIRECTORY_IMPORTS.labels("acme", "failed")
    before = failed._value.get()
    org.sandbox.set_faults(error_rate=1.0)
    assert await import_now(redis_client, session, tokens, acme) is None
    assert failed._value.get() == before + 1
    kept = await load_directory(redis_client, "acme")
    assert kept is not None
    assert kept.users == first.users
    # Through the refresh path too: the turn is taken, the import fails, the last stays.
    await redis_client.delete("syncd:acme:directory_due")
    found = await refresh_due(redis_client, session, tokens, _config(acme))
    assert found["acme"] is not None
    assert len(found["acme"].users) == PEOPLE
    ttl = await redis_client.pttl("syncd:acme:directory_due")
    assert 0 < ttl <= 60_000  # retried within a minute, not after the hour


async def test_empty_answer_is_not_an_empty_directory(
    org: SandboxHandle, session: aiohttp.ClientSession, redis_client: aredis.Redis
) -> None:
    """An organisation that suddenly lists no one keeps its last directory."""
    acme, tokens = tenant(org.url), TokenCache(TokenStore(redis_client))
    assert await import_now(redis_client, session, tokens, acme) is not None
    org.sandbox.seed = org.sandbox.seed.model_copy(update={"users": ()})
    assert await import_now(redis_client, session, tokens, acme) is None
    kept = await load_directory(redis_client, "acme")
    assert kept is not None
    assert len(kept.users) == PEOPLE


async def test_bad_token_answers_errcode_and_is_refreshed(
    org: SandboxHandle, session: aiohttp.ClientSession, redis_client: aredis.Redis
) -> None:
    """topapi answers errcode 88 for a dead token; the client fetches a new one once."""
    async with session.post(f"{org.url}/topapi/v2/user/list?access_token=nope", json={}) as r:
        body = await r.json()
    assert r.status == 200
    assert body["errcode"] == 88
    assert body["sub_code"] == "40014"
    tokens = TokenCache(TokenStore(redis_client))
    client = ContactsClient(session, org.url, APP_KEY, APP_SECRET, tokens)
    await client.sub_departments(1)
    org.sandbox.expire_access_tokens()
    assert await client.sub_departments(10) == [11]
    assert org.sandbox.requests["GetAccessToken"] == 2


async def test_page_size_over_100_is_refused(
    org: SandboxHandle, session: aiohttp.ClientSession
) -> None:
    from tests.fixtures.sandbox import sandbox_token

    token = await sandbox_token(org)
    url = f"{org.url}/topapi/v2/user/list?access_token={token}"
    async with session.post(url, json={"dept_id": 10, "cursor": 0, "size": 101}) as r:
        assert (await r.json())["errcode"] == 40035


async def test_sandbox_users_route_adds_and_removes(
    org: SandboxHandle, session: aiohttp.ClientSession, redis_client: aredis.Redis
) -> None:
    new = {"union_id": "u-new", "name": "New", "email": "new@acme.example", "departments": [12]}
    async with session.post(f"{org.url}/_sandbox/users", json=new) as r:
        assert r.status == 200
    async with session.delete(f"{org.url}/_sandbox/users/u-0000") as r:
        assert (await r.json())["removed"] is True
    async with session.post(f"{org.url}/_sandbox/users", json={"name": "x"}) as r:
        assert r.status == 400
    client = ContactsClient(
        session, org.url, APP_KEY, APP_SECRET, TokenCache(TokenStore(redis_client))
    )
    found, _ = await import_directory(client)
    ids = {u.union_id for u in found.users}
    assert "u-new" in ids
    assert "u-0000" not in ids
    assert len(ids) == PEOPLE


def _config(acme: Tenant) -> Any:
    from syncd.config import Config, Settings

    return Config(Settings(), {"acme": acme})


async def test_a_change_for_a_template_user_queues_their_binding(redis_url: str) -> None:
    """Webhook, Stream and failedResults find the affected template bindings through the
    cached directory; before any import there is none (and no error)."""
    from arq.connections import create_pool

    from syncd import queue
    from syncd.delivery.intake import queue_change
    from syncd.model import DirectoryUser, OrgDirectory
    from syncd.store.directory import save_directory
    from syncd.webhook.payload import CALENDAR_CHANGE, CallbackEvent

    acme = Tenant.model_validate(
        {
            **tenant("http://127.0.0.1:1").model_dump(mode="json", exclude={"directory"}),
            "dingtalk": {"app_key": "k", "app_secret": "s", "delivery": "stream"},
            "directory_import": {"source": "dingtalk"},
            "binding_templates": [
                {"id": "{local}-work", "caldav": {"url": "http://127.0.0.1:1/{local}/"}}
            ],
        }
    )
    pool = await create_pool(queue.redis_settings(redis_url))
    try:
        await pool.flushdb()
        event = CallbackEvent(CALENDAR_CHANGE, "push-1", ("u-bob",))
        assert await queue_change(pool, acme, event, "stream") == "no_binding"
        org = OrgDirectory((DirectoryUser("u-bob", "bob@acme.example"),), (), 1.0)
        await save_directory(pool, "acme", org)
        event = CallbackEvent(CALENDAR_CHANGE, "push-2", ("u-bob",))
        assert await queue_change(pool, acme, event, "stream") == "queued"
        assert await pool.exists("syncd:acme:binding:bob-work:dirty")
    finally:
        await pool.aclose()


async def test_refresh_with_redis_away_keeps_serving(session: aiohttp.ClientSession) -> None:
    """Redis unreachable at a refresh tick: one warning, the served bindings stay as they were."""
    from syncd.config.templates import expand_config
    from syncd.store.ratelimit import RequestPace
    from syncd.store.redis import RedisStore
    from syncd.worker.context import CTX_KEY, WorkerContext, worker_context
    from syncd.worker.directory import refresh_directories
    from syncd_lab.stack.ports import free_port

    acme = tenant("http://127.0.0.1:1")
    base = _config(acme)
    served, _ = expand_config(base, {})
    away = aredis.Redis(port=free_port(), socket_connect_timeout=0.5)
    shared = WorkerContext(
        config=served,
        redis=cast(ArqRedis, away),
        session=session,
        tokens=TokenCache(TokenStore(away)),
        store=RedisStore(away),
        pace=RequestPace(away),
        lock_ttl_s=15.0,
        base_config=base,
    )
    ctx: dict[str, Any] = {CTX_KEY: shared}
    try:
        assert await refresh_directories(ctx) == 0
        assert worker_context(ctx).config is served
    finally:
        await away.aclose()


async def test_web_status_lists_template_bindings(redis_client: aredis.Redis) -> None:
    """/status and /metrics read the served configuration: template bindings included."""
    from syncd.delivery.served import served_config
    from syncd.model import DirectoryUser, OrgDirectory
    from syncd.store.directory import save_directory

    acme = Tenant.model_validate(
        {
            **tenant("http://127.0.0.1:1").model_dump(mode="json", exclude={"directory"}),
            "dingtalk": {"app_key": "k", "app_secret": "s", "delivery": "stream"},
            "directory_import": {"source": "dingtalk"},
            "binding_templates": [
                {"id": "{local}-work", "caldav": {"url": "http://127.0.0.1:1/{local}/"}}
            ],
        }
    )
    config = _config(acme)
    assert [b.id for _, b in (await served_config(redis_client, config)).bindings()] == []
    org = OrgDirectory((DirectoryUser("u-bob", "bob@acme.example"),), (), 2.0)
    await save_directory(redis_client, "acme", org)
    served = await served_config(redis_client, config)
    assert [b.id for _, b in served.bindings()] == ["bob-work"]


def _tokens(redis: aredis.Redis) -> TokenCache:
    """A token cache shared through ``redis``, as the workers' is."""
    return TokenCache(TokenStore(redis))
