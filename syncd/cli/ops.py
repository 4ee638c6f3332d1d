"""Operator commands: ``sync``, ``status``, ``conflicts``, ``replay``.

Output is for people and scripts: results on stdout, logs and progress on stderr, so
``--json`` output and the summary lines of ``sync`` can be piped.
"""

from __future__ import annotations

import asyncio
import functools
import json
import sys
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

import click
import structlog
from arq.connections import ArqRedis

from syncd import queue
from syncd.cli._health import UNHEALTHY, binding_health, status_line
from syncd.cli._ops_setup import binding_refs, load_quietly, resources
from syncd.cli._root import EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, common_options, fail, main
from syncd.config import Config
from syncd.errors import ConfigError, SyncdError
from syncd.model import BindingRef
from syncd.model import to_jsonable as event_json
from syncd.reconcile import Report
from syncd.store.redis import RedisStore
from syncd.worker.tasks import run_once

log = structlog.get_logger(__name__)

LOCK_WAIT_S = 60.0
"""How long ``syncd sync`` waits for a worker's running reconcile of the binding to end."""
_LOCK_POLL_S = 0.25


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
    config = load_quietly(config_dir, debug, progress=True)
    try:
        refs = list(binding_refs(config, tenant, binding))
        results = asyncio.run(_sync(config, refs, full, dry_run, force_delete, debug))
    except SyncdError as exc:
        fail(exc, debug)
        return
    codes = [_print_result(result, dry_run) for result in results]
    if max(codes, default=EXIT_OK) != EXIT_OK:
        raise SystemExit(max(codes))


def _print_result(result: Report | tuple[BindingRef, SyncdError], dry_run: bool) -> int:
    """Print one binding's outcome; returns its exit code."""
    if not isinstance(result, Report):
        ref, exc = result
        click.echo(f"syncd: {ref}: {type(exc).__name__}: {exc}", err=True)
        return EXIT_USAGE if isinstance(exc, ConfigError) else EXIT_RUNTIME
    if dry_run:
        for action in result.plan.actions:
            click.echo(f"  plan: {action.describe()}")
    for warning in result.warnings:
        click.echo(f"  warning: {warning}")
    for error in result.errors:
        click.echo(f"  error: {error.uid}: {error.error}: {error.message}", err=True)
    click.echo(result.summary_line())
    return EXIT_RUNTIME if result.errors else EXIT_OK


async def _sync(
    config: Config,
    refs: list[BindingRef],
    full: bool,
    dry_run: bool,
    force_delete: bool,
    debug: bool,
) -> list[Report | tuple[BindingRef, SyncdError]]:
    """Each binding in turn; one that fails is reported and the others still run."""
    results: list[Report | tuple[BindingRef, SyncdError]] = []
    async with resources(config) as ctx:
        for ref in refs:
            work = functools.partial(
                run_once, ctx, ref, full=full, dry_run=dry_run, force_delete=force_delete
            )
            try:
                results.append(await _sync_one(ctx["redis"], ref, work, dry_run))
            except SyncdError as exc:
                if debug:
                    raise
                log.error("sync_failed", binding=str(ref), error=f"{type(exc).__name__}: {exc}")
                results.append((ref, exc))
    return results


async def _sync_one(
    pool: ArqRedis, ref: BindingRef, work: Callable[..., Coroutine[Any, Any, Report]], dry_run: bool
) -> Report:
    """``work(on_progress=...)`` with a progress bar on stderr (stdout is for the results).

    A real run holds the binding's lock, so it never races a worker; a dry run writes
    nothing, takes no lock and never delays one.
    """
    with click.progressbar(length=1, label=str(ref), file=sys.stderr) as bar:

        def progress(done: int, total: int) -> None:
            bar.length = max(total, 1)
            bar.update(done - bar.pos)

        run = functools.partial(work, on_progress=progress)
        return await (run() if dry_run else _exclusive(pool, ref, run))


async def _exclusive(
    pool: ArqRedis, ref: BindingRef, work: Callable[[], Coroutine[Any, Any, Report]]
) -> Report:
    """Run ``work`` under the binding's lock, waiting up to LOCK_WAIT_S for a running job."""
    deadline = time.monotonic() + LOCK_WAIT_S
    for attempt in range(sys.maxsize):
        outcome = await queue.run_exclusive(pool, ref, work, force=True)
        if outcome.ran and outcome.result is not None:
            return outcome.result
        if time.monotonic() > deadline:
            break
        if attempt == 0:
            log.warning("sync_waiting_for_lock", binding=str(ref), max_wait_s=LOCK_WAIT_S)
        await asyncio.sleep(_LOCK_POLL_S)
    raise SyncdError(f"{ref}: a worker is still reconciling it after {LOCK_WAIT_S:.0f}s; try again")


Gather = Callable[[Config, list[BindingRef]], Coroutine[Any, Any, list[dict[str, Any]]]]


def _gather(
    config_dir: str, debug: bool, tenant: str | None, gather: Gather
) -> list[dict[str, Any]]:
    """Rows about the tenant's (or every) binding from the store; one-line errors, exit 1/2."""
    config = load_quietly(config_dir, debug)
    try:
        return asyncio.run(gather(config, list(binding_refs(config, tenant, None))))
    except SyncdError as exc:
        fail(exc, debug)
        raise  # unreachable: fail() exits


@main.command("status")
@common_options
@click.argument("tenant", required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status_command(config_dir: str, debug: bool, tenant: str | None, as_json: bool) -> None:
    """Per binding: state, last success, lag, mapped pairs, open conflicts, dead letters.

    A binding that is not healthy also shows the reason of its last failure; the exit
    status is 1 when any binding is failed or degraded (partial, held, blocked, or with
    dead letters), 0 otherwise.
    """
    rows = _gather(config_dir, debug, tenant, _status)
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
    else:
        for row in rows:
            click.echo(status_line(row))
    unhealthy = [row["binding"] for row in rows if row["health"] in UNHEALTHY]
    if unhealthy:
        click.echo(f"syncd: failed or degraded: {', '.join(unhealthy)}", err=True)
        raise SystemExit(EXIT_RUNTIME)


async def _status(config: Config, refs: list[BindingRef]) -> list[dict[str, Any]]:
    async with resources(config) as ctx:
        store: RedisStore = ctx["store"]
        rows = []
        for ref in refs:
            status = await store.get_status(ref)
            letters = await store.list_dead_letters(ref)
            health, reason = binding_health(status, letters)
            rows.append(
                {
                    "binding": str(ref),
                    **status,
                    "lag": queue_lag(status),
                    "pairs": len(await store.load_pairs(ref)),
                    "conflicts": len(await store.list_conflicts(ref)),
                    "dead_letters": len(letters),
                    "health": health,
                    "reason": reason,
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
    rows = _gather(config_dir, debug, tenant, _conflicts)
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not rows:
        click.echo("no conflicts")
    for row in rows:
        click.echo(
            f"{row['binding']}: {row['uid']} fields={','.join(row['fields'])} "
            f"winner={row['winner']} at={row['decided_at']}\n"
            f"  dingtalk: {row['dingtalk']['summary']!r}  caldav: {row['caldav']['summary']!r}"
        )


async def _conflicts(config: Config, refs: list[BindingRef]) -> list[dict[str, Any]]:
    rows = []
    async with resources(config) as ctx:
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
    config = load_quietly(config_dir, debug)
    try:
        replayed = asyncio.run(_replay(config, list(binding_refs(config, tenant, None))))
    except SyncdError as exc:
        fail(exc, debug)
        return
    for ref, count in replayed:
        click.echo(f"{ref}: replayed {count} dead letter(s)")
    total = sum(n for _, n in replayed)
    click.echo(f"replayed {total} dead letter(s) in {len(replayed)} binding(s)")


async def _replay(config: Config, refs: list[BindingRef]) -> list[tuple[BindingRef, int]]:
    out = []
    async with resources(config) as ctx:
        store: RedisStore = ctx["store"]
        for ref in refs:
            letters = await store.list_dead_letters(ref)
            if not letters:
                continue
            await queue.request_reconcile(ctx["redis"], ref, "replay", full=True)
            await store.clear_dead_letters(ref, len(letters))
            out.append((ref, len(letters)))
    return out
