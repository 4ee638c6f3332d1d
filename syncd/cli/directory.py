"""``syncd directory TENANT [--json]``: the tenant's directory and its templates' bindings.

For ``directory: {source: dingtalk}`` the directory is the last good import cached in
Redis (the workers refresh it every ``refresh``); when none was ever made, one is made
now and kept. ``--json`` prints ``{"users": [{union_id, email, name, departments}...],
"bindings": [{id, dingtalk_user, caldav_url, from_template}...]}`` (CONTRACT.md).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import click

from syncd.cli._ops_setup import load_quietly, resources
from syncd.cli._root import common_options, fail, main
from syncd.config import Config, Tenant
from syncd.config.templates import Expansion, expand
from syncd.errors import SyncdError
from syncd.model import OrgDirectory
from syncd.store.directory import load_directory
from syncd.worker.directory import import_now


def listing(out: Expansion) -> dict[str, Any]:
    """The JSON shape of ``syncd directory --json``."""
    users = [
        {
            "union_id": u.union_id,
            "email": u.email,
            "name": u.name,
            "departments": list(u.departments),
        }
        for u in out.users
    ]
    bindings = [
        {
            "id": b.id,
            "dingtalk_user": b.dingtalk_user,
            "caldav_url": str(b.caldav.url) if b.caldav is not None else None,
            "from_template": b.id in out.from_template,
        }
        for b in out.tenant.bindings
    ]
    return {"users": users, "bindings": bindings}


async def _load(config: Config, tenant: Tenant) -> OrgDirectory | None:
    async with resources(config) as ctx:
        found = await load_directory(ctx.redis, tenant.id)
        if found is None:
            found = await import_now(ctx.redis, ctx.session, ctx.tokens, tenant, ctx.pace)
        return found


@main.command("directory")
@common_options
@click.argument("tenant")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def directory_command(config_dir: str, debug: bool, tenant: str, as_json: bool) -> None:
    """The tenant's unionId <-> e-mail directory and the bindings its templates expand to."""
    config = load_quietly(config_dir, debug, serve=False)
    try:
        chosen = config.tenant(tenant)
        org = None
        if chosen.directory_import is not None:
            org = asyncio.run(_load(config, chosen))
    except SyncdError as exc:
        fail(exc, debug)
        raise  # unreachable: fail() exits
    out = expand(chosen, org)
    data = listing(out)
    if as_json:
        click.echo(json.dumps(data, indent=2))
    else:
        for user in data["users"]:
            depts = ",".join(str(d) for d in user["departments"]) or "-"
            click.echo(f"user {user['union_id']} {user['email']} {user['name']!r} depts={depts}")
        for b in data["bindings"]:
            origin = "template" if b["from_template"] else "static"
            click.echo(f"binding {b['id']} {b['dingtalk_user']} {b['caldav_url']} ({origin})")
    for problem in out.problems:
        click.echo(f"syncd: {tenant}: {problem}", err=True)
