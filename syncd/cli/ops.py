"""Operator commands: ``sync``, ``status``, ``conflicts``, ``replay``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import aiohttp
import click
from arq.connections import create_pool

from syncd import queue
from syncd.adapters.dingtalk.tokens import TokenCache
from syncd.cli._root import common_options, fail, load, main, setup_logging
from syncd.config import Config
from syncd.errors import ConfigError, SyncdError
from syncd.model import BindingRef
from syncd.model import to_jsonable as event_json
from syncd.reconcile import Report
from syncd.store.redis import RedisStore
from syncd.worker.tasks import run_once


def _refs(config: Config, tenant: str | None, binding: str | None) -> Iterator[BindingRef]:
    if tenant is not None and tenant not in config.tenants:
        raise ConfigError(f"no tenant {tenant!r} in the configuration")
    for t, b in config.bindings():
        if (tenant is None or t.id == tenant) and (binding is None or b.id == binding):
            yield BindingRef(t.id, b.id)
    if binding is not None and tenant is not None:
        config.tenant(tenant).binding(binding)  # raises ConfigError when unknown


@asynccontextmanager
async def _resources(config: Config) -> AsyncIterator[dict[str, Any]]:
    """What a foreground reconcile shares with the workers: Redis, tokens, the store."""
    redis = await create_pool(queue.redis_settings(config.settings.redis_url))
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        try:
            yield {
                "config": config,
                "redis": redis,
                "session": session,
                "tokens": TokenCache(redis),
                "store": RedisStore(redis),
            }
        finally:
            await redis.aclose()


@main.command("sync")
@common_options
@click.argument("tenant")
@click.argument("binding", required=False)
@click.option("--full", is_flag=True, help="Re-list both sides instead of using cursors.")
@click.option("--dry-run", is_flag=True, help="Print the plan; write nothing.")
@click.option("--force-delete", is_flag=True, help="Execute deletions held by the safety limits.")
def sync_command(
    config_dir: str,
    debug: bool,
    tenant: str,
    binding: str | None,
    full: bool,
    dry_run: bool,
    force_delete: bool,
) -> None:
    """One reconcile now, in the foreground, with progress."""
    config = load(config_dir, debug)
    setup_logging(config, debug)
    try:
        refs = list(_refs(config, tenant, binding))
        reports = asyncio.run(_sync(config, refs, full, dry_run, force_delete))
    except SyncdError as exc:
        fail(exc, debug)
        return
    for report in reports:
        if dry_run:
            for action in report.plan.actions:
                click.echo(f"  plan: {action.describe()}")
        for warning in report.warnings:
            click.echo(f"  warning: {warning}")
        for error in report.errors:
            click.echo(f"  error: {error.uid}: {error.error}: {error.message}", err=True)
        click.echo(report.summary_line())
    if any(r.errors for r in reports):
        raise SystemExit(1)


async def _sync(
    config: Config, refs: list[BindingRef], full: bool, dry_run: bool, force_delete: bool
) -> list[Report]:
    reports = []
    async with _resources(config) as ctx:
        for ref in refs:
            with click.progressbar(length=1, label=f"{ref}", file=None) as bar:

                def progress(done: int, total: int, bar: Any = bar) -> None:
                    bar.length = max(total, 1)
                    bar.update(done - bar.pos)

                reports.append(
                    await run_once(
                        ctx,
                        ref,
                        full=full,
                        dry_run=dry_run,
                        force_delete=force_delete,
                        on_progress=progress,
                    )
                )
    return reports


@main.command("status")
@common_options
@click.argument("tenant", required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status_command(config_dir: str, debug: bool, tenant: str | None, as_json: bool) -> None:
    """Per binding: state, last success, lag, mapped pairs, open conflicts, dead letters."""
    config = load(config_dir, debug)
    try:
        rows = asyncio.run(_status(config, list(_refs(config, tenant, None))))
    except SyncdError as exc:
        fail(exc, debug)
        return
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    for row in rows:
        click.echo(
            f"{row['binding']}: state={row.get('state', 'never-run')} "
            f"last_success={row.get('last_success', '-')} lag={row.get('lag', '-')} "
            f"pairs={row['pairs']} conflicts={row['conflicts']} dead_letters={row['dead_letters']}"
        )


async def _status(config: Config, refs: list[BindingRef]) -> list[dict[str, Any]]:
    async with _resources(config) as ctx:
        store: RedisStore = ctx["store"]
        rows = []
        for ref in refs:
            status = await store.get_status(ref)
            rows.append(
                {
                    "binding": str(ref),
                    **status,
                    "lag": queue_lag(status),
                    "pairs": len(await store.load_pairs(ref)),
                    "conflicts": len(await store.list_conflicts(ref)),
                    "dead_letters": len(await store.list_dead_letters(ref)),
                }
            )
        return rows


def queue_lag(status: dict[str, Any]) -> str:
    """Seconds since the last successful run, as text ('-' when never)."""
    last = status.get("last_success")
    if not last:
        return "-"
    return f"{(datetime.now(UTC) - datetime.fromisoformat(str(last))).total_seconds():.0f}s"


@main.command("conflicts")
@common_options
@click.argument("tenant", required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def conflicts_command(config_dir: str, debug: bool, tenant: str | None, as_json: bool) -> None:
    """Recorded conflicts with both versions and how they were decided."""
    config = load(config_dir, debug)
    try:
        rows = asyncio.run(_conflicts(config, list(_refs(config, tenant, None))))
    except SyncdError as exc:
        fail(exc, debug)
        return
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    for row in rows:
        click.echo(
            f"{row['binding']}: {row['uid']} fields={','.join(row['fields'])} "
            f"winner={row['winner']} at={row['decided_at']}\n"
            f"  dingtalk: {row['dingtalk']['summary']!r}  caldav: {row['caldav']['summary']!r}"
        )


async def _conflicts(config: Config, refs: list[BindingRef]) -> list[dict[str, Any]]:
    rows = []
    async with _resources(config) as ctx:
        for ref in refs:
            for rec in await ctx["store"].list_conflicts(ref):
                rows.append(
                    {
                        "binding": str(ref),
                        "uid": rec.uid,
                        "fields": list(rec.fields),
                        "winner": str(rec.winner),
                        "decided_at": rec.decided_at,
                        "dingtalk": event_json(rec.dingtalk),
                        "caldav": event_json(rec.caldav),
                        "base": event_json(rec.base) if rec.base else None,
                    }
                )
    return rows


@main.command("replay")
@common_options
@click.argument("tenant", required=False)
def replay_command(config_dir: str, debug: bool, tenant: str | None) -> None:
    """Re-run dead-lettered jobs: queue a full reconcile of each binding that has any."""
    config = load(config_dir, debug)
    try:
        replayed = asyncio.run(_replay(config, list(_refs(config, tenant, None))))
    except SyncdError as exc:
        fail(exc, debug)
        return
    for ref, count in replayed:
        click.echo(f"{ref}: replayed {count} dead letter(s)")
    total = sum(n for _, n in replayed)
    click.echo(f"replayed {total} dead letter(s) in {len(replayed)} binding(s)")


async def _replay(config: Config, refs: list[BindingRef]) -> list[tuple[BindingRef, int]]:
    out = []
    async with _resources(config) as ctx:
        store: RedisStore = ctx["store"]
        for ref in refs:
            letters = await store.list_dead_letters(ref)
            if not letters:
                continue
            await queue.request_reconcile(ctx["redis"], ref, "full")
            await store.clear_dead_letters(ref)
            out.append((ref, len(letters)))
    return out
