"""Benchmark — the DingTalk directory import for a 2,000-user organisation.

The sandbox (in-process) is seeded with ``users`` people in two shapes: ``tree`` (10
top-level departments with 3 sub-departments each; people spread over all 40, every
seventh in a second one) and ``flat`` (everyone in one department: the paging case). For
each, ``repeat`` imports (:func:`syncd.adapters.dingtalk.contacts.import_directory`, the
workers' call, token cached in a real Redis after the first) are timed, and requests
counted by operation. Baseline in the same run: reading the same people written by hand as
a static ``directory:`` list of a tenant file (``load_config``), the way without import.
Also timed: expanding one ``{department: ...}``/``all`` binding template over them (pure,
what a worker does after each refresh).
"""

from __future__ import annotations

import time
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import aiohttp
import redis.asyncio as aredis

from bench._report import table
from bench._stats import median, ms
from syncd.adapters.dingtalk.contacts import ContactsClient, import_directory
from syncd.adapters.dingtalk.tokens import TokenCache
from syncd.config import Tenant, load_config
from syncd.config.templates import expand
from syncd_lab.sandbox.seed import seed_from_data
from syncd_lab.stack import config as lab_config
from tests.fixtures.redis_server import start_redis
from tests.fixtures.sandbox import APP_KEY, APP_SECRET, CORP_ID, start_sandbox

DEFAULTS: dict[str, Any] = {"users": 2000, "repeat": 5}
TOP, SUBS = 10, 3


def _departments(shape: str) -> tuple[list[int], list[dict[str, int]]]:
    if shape == "flat":
        return [10], []
    tops = [100 + t for t in range(TOP)]
    subs = [{"id": 1000 + t * 10 + s, "parent": 100 + t} for t in range(TOP) for s in range(SUBS)]
    return tops + [d["id"] for d in subs], [{"id": t} for t in tops] + subs


def seed_data(users: int, shape: str) -> dict[str, Any]:
    """The sandbox seed: one app, ``users`` people in the ``shape`` of departments."""
    ids, declared = _departments(shape)
    people = [
        {
            "union_id": f"u-{n:05d}",
            "name": f"Person {n}",
            "email": f"p{n}@acme.example",
            "departments": [ids[n % len(ids)]]
            + ([ids[(n + 1) % len(ids)]] if n % 7 == 0 and len(ids) > 1 else []),
        }
        for n in range(users)
    ]
    app = {"app_key": APP_KEY, "app_secret": APP_SECRET, "corp_id": CORP_ID}
    return {"apps": [app], "users": people, "departments": declared}


def _tenant(url: str, directory: Any, template_users: Any) -> dict[str, Any]:
    return {
        "id": "acme",
        "dingtalk": {
            "api_base": url,
            "app_key": APP_KEY,
            "app_secret": APP_SECRET,
            "delivery": "stream",
        },
        "directory": directory,
        "binding_templates": [
            {
                "id": "{local}-work",
                "users": template_users,
                "caldav": {"url": "http://127.0.0.1:1/{email}/work/", "create": True},
            }
        ],
    }


def _static_load_s(data: dict[str, Any], repeat: int) -> float:
    """Median seconds to load the same people as a hand-written static directory."""
    listed = [{"union_id": u["union_id"], "email": u["email"]} for u in data["users"]]
    with TemporaryDirectory() as tmp:
        root = lab_config.write_config_dir(
            Path(tmp), {}, [_tenant("http://127.0.0.1:1", listed, "all")]
        )
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            load_config(root, {})
            times.append(time.perf_counter() - started)
    return median(times)


async def _shape(shape: str, users: int, repeat: int, redis: aredis.Redis) -> dict[str, Any]:
    data = seed_data(users, shape)
    out: dict[str, Any] = {"shape": shape, "departments": len(_departments(shape)[0])}
    async with start_sandbox(seed_from_data(data)) as sb, aiohttp.ClientSession() as session:
        times, counts = [], []
        for i in range(repeat):
            await redis.flushdb()  # the first import of each round fetches its token
            client = ContactsClient(session, sb.url, APP_KEY, APP_SECRET, TokenCache(redis))
            before = dict(sb.sandbox.requests)
            started = time.perf_counter()
            org, skipped = await import_directory(client)
            times.append(time.perf_counter() - started)
            after = sb.sandbox.requests
            counts.append(
                {op: after[op] - before.get(op, 0) for op in after if after[op] - before.get(op, 0)}
            )
            if len(org.users) != users or skipped:
                raise RuntimeError(f"import {i}: {len(org.users)} users, skipped {skipped}")
        tenant = Tenant.model_validate(_tenant(sb.url, {"source": "dingtalk"}, "all"))
        dept = Tenant.model_validate(
            _tenant(sb.url, {"source": "dingtalk"}, {"department": _departments(shape)[0][0]})
        )
        expand_all, expand_dept = [], []
        for _ in range(repeat):
            started = time.perf_counter()
            bindings_all = len(expand(tenant, org).tenant.bindings)
            expand_all.append(time.perf_counter() - started)
            started = time.perf_counter()
            bindings_dept = len(expand(dept, org).tenant.bindings)
            expand_dept.append(time.perf_counter() - started)
    out |= {
        "import_s": times,
        "import_median_s": median(times),
        "requests": counts[0],
        "requests_total": sum(counts[0].values()),
        "static_load_median_s": _static_load_s(data, repeat),
        "expand_all_median_s": median(expand_all),
        "expand_all_bindings": bindings_all,
        "expand_department_median_s": median(expand_dept),
        "expand_department_bindings": bindings_dept,
    }
    return out


async def run(opts: dict[str, Any]) -> dict[str, Any]:
    """Both shapes over the same number of people."""
    users, repeat = opts.get("users", DEFAULTS["users"]), opts.get("repeat_dir", DEFAULTS["repeat"])
    server = start_redis()
    try:
        redis = aredis.Redis.from_url(server.url)
        try:
            shapes = [await _shape(s, users, repeat, redis) for s in ("tree", "flat")]
        finally:
            await redis.aclose()
    finally:
        server.stop()
    return {"users": users, "repeat": repeat, "shapes": shapes}


def render(result: dict[str, Any]) -> str:
    """Markdown: import time and requests per shape, against the static-YAML baseline."""
    rows = []
    for s in result["shapes"]:
        reqs = ", ".join(f"{op} {n}" for op, n in sorted(s["requests"].items()))
        rows.append(
            [
                f"{s['shape']} ({s['departments']} departments)",
                f"{s['requests_total']} ({reqs})",
                ms(s["import_median_s"]),
                ms(s["static_load_median_s"]),
                f"{s['import_median_s'] / s['static_load_median_s']:.2f}",
                f"{ms(s['expand_all_median_s'])} ({s['expand_all_bindings']} bindings)",
                f"{ms(s['expand_department_median_s'])} ({s['expand_department_bindings']})",
            ]
        )
    return table(
        [
            f"{result['users']:,} users",
            "requests (first import of a round, token included)",
            "import, median",
            "static YAML load (baseline), median",
            "import ÷ baseline",
            "template `all` expansion",
            "template `{department}` expansion",
        ],
        rows,
    )
