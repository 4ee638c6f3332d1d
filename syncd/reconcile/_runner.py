"""One reconcile of one binding: read both sides, plan, apply, commit cursors, record status."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import structlog

from syncd.errors import CalendarMissing, StoreError, SyncdError, SyncError, SyncTokenInvalid
from syncd.model import BindingRef, Changes, PairState, Side
from syncd.reconcile._apply import Applied, Applier, Progress
from syncd.reconcile._memory import release_freed
from syncd.reconcile._report import Report
from syncd.sync import Delete, Plan, Policy, Skip, make_plan
from syncd.sync.ports import CalendarSide, MappingStore
from syncd.sync.records import RunStatus

log = structlog.get_logger(__name__)


async def reconcile(
    ref: BindingRef,
    dingtalk: CalendarSide,
    caldav: CalendarSide,
    store: MappingStore,
    policy: Policy,
    *,
    full: bool = False,
    dry_run: bool = False,
    on_progress: Progress | None = None,
    concurrency: int = 4,
    list_dingtalk: bool = True,
) -> Report:
    """Bring one binding's two calendars into agreement and report what was done.

    Reads both sides since their cursors (in full when ``full``, or when a cursor is
    stale), plans with :func:`syncd.sync.make_plan`, and applies the plan; ``dry_run`` returns
    the plan without writing anything, not even cursors or status. Failed actions are
    collected in the report, not raised; cursors advance only when every change read was
    applied (or dead-lettered as unwritable) and no deletion was held, so a cursor never
    skips an unapplied change. Raises what reading or planning raises (``Retryable``
    errors, ``SourceEmptied``, ...) and store errors, after recording a failed status.

    ``list_dingtalk=False`` (a run no DingTalk push asked for, see
    :func:`syncd.queue.take_dingtalk`) lists DingTalk only if it must: on a full or first
    run, or when the other side's delta holds more than echoes of our own writes (that side
    is read first, and DingTalk is then listed before anything is planned, so a
    concurrent DingTalk edit is seen and merged three-way). Otherwise the plan sees an
    empty DingTalk delta, and DingTalk's cursor and pairs are left untouched
    (``Report.dingtalk_listed`` is then False).
    """
    started = time.monotonic()
    sides = {Side.DINGTALK: dingtalk, Side.CALDAV: caldav}
    try:
        changes, plan, pairs = await _read_and_plan(
            ref, sides, store, policy, full=full, list_dingtalk=list_dingtalk
        )
    except SyncdError as exc:
        if not dry_run:
            await _failed_status(ref, store, exc, time.monotonic() - started)
        raise
    complete = any(c.complete for c in changes.values())
    listed = Side.DINGTALK in changes
    if dry_run:
        duration = time.monotonic() - started
        return Report(
            ref,
            plan,
            duration,
            plan.per_side(),
            dry_run=True,
            full=complete,
            dingtalk_listed=listed,
        )
    applier = Applier(ref, sides, store, concurrency=concurrency, on_progress=on_progress)
    applied = await applier.run(plan)
    commit = await _commit_cursors(ref, store, changes, plan, applied)
    await _resolve_dead_letters(ref, store, applied)
    report = Report(
        ref,
        plan,
        time.monotonic() - started,
        applied.per_side,
        tuple(applied.errors),
        full=complete,
        cursors_committed=commit,
        dingtalk_listed=listed,
    )
    await store.set_status(ref, report.status(_now(), pairs_before=pairs))
    _log_run(report)
    return report


async def _commit_cursors(
    ref: BindingRef, store: MappingStore, changes: dict[Side, Changes], plan: Plan, done: Applied
) -> bool:
    """Advance the cursors of the sides read unless some change read is still unapplied
    (then neither: one pair's decision can depend on both sides, so both must be read again)."""
    unapplied = any(e.disposition != "dead_letter" for e in done.errors) or plan.held_deletions
    if not unapplied:
        await store.set_cursors(ref, {side: read.cursor for side, read in changes.items()})
    return not unapplied


async def _resolve_dead_letters(ref: BindingRef, store: MappingStore, done: Applied) -> None:
    """Heal what this run proved fine: the binding-level dead letters once a run reads and
    applies without a transient failure, the item-level ones of every item settled now."""
    binding = not any(e.retryable for e in done.errors)
    resolved = await store.resolve_dead_letters(ref, binding=binding, uids=sorted(done.settled))
    if resolved:
        log.info(
            "dead_letters_resolved",
            count=len(resolved),
            errors=sorted({letter.error for letter in resolved}),
        )


async def _read_and_plan(
    ref: BindingRef,
    sides: dict[Side, CalendarSide],
    store: MappingStore,
    policy: Policy,
    *,
    full: bool,
    list_dingtalk: bool,
) -> tuple[dict[Side, Changes], Plan, int]:
    """Read, load the pairs concerned, plan. The returned changes hold only the sides read
    (DingTalk is missing when it was not listed); the plan saw an empty delta for it."""
    cursors = {s: None if full else await store.get_cursor(ref, s) for s in Side}
    if list_dingtalk or cursors[Side.DINGTALK] is None:
        read = await asyncio.gather(*(_changes(sides[s], cursors[s], ref) for s in Side))
        changes = dict(zip(Side, read, strict=True))
    else:
        changes = await _other_first(ref, sides, store, cursors)
    if any(c.complete for c in changes.values()):
        release_freed()  # the listings' parse trees, before every pair is decoded
    seen = {**changes}
    seen.setdefault(Side.DINGTALK, _unread(cursors[Side.DINGTALK]))
    pairs, total = await _pairs_for(ref, store, seen)
    dt, dav = seen[Side.DINGTALK], seen[Side.CALDAV]
    plan = make_plan(pairs, dt, dav, policy, now=_clock(), paired=total)
    return changes, plan, total


async def _other_first(
    ref: BindingRef,
    sides: dict[Side, CalendarSide],
    store: MappingStore,
    cursors: dict[Side, str | None],
) -> dict[Side, Changes]:
    """Read the CalDAV/ICS side; list DingTalk only if that delta may be written to it.

    Anything the other side reports (a change, a deletion, a complete listing) may be
    copied to DingTalk, so DingTalk is listed before planning: the three-way merge must
    see a DingTalk edit of the same event whose push has not arrived yet. Only our own
    writes coming back (echoes: the fingerprint stored for the pair) need no listing.
    """
    other = await _changes(sides[Side.CALDAV], cursors[Side.CALDAV], ref)
    if not await _may_write_dingtalk(ref, store, other):
        log.debug("dingtalk_not_listed", echoes=len(other.items))
        return {Side.CALDAV: other}
    dingtalk = await _changes(sides[Side.DINGTALK], cursors[Side.DINGTALK], ref)
    return {Side.DINGTALK: dingtalk, Side.CALDAV: other}


async def _may_write_dingtalk(ref: BindingRef, store: MappingStore, other: Changes) -> bool:
    """Whether the other side's delta holds anything but echoes of our own writes.

    A complete listing (some servers answer a small delta so) is quiet only if every
    mapped item is still in it: an absent one may be a deletion to copy.
    """
    if other.deleted or any(item.event is None for item in other.items):
        return True
    if not other.items and not other.complete:
        return False
    hrefs = {item.id for item in other.items}
    if other.complete:
        pairs = list((await store.load_pairs(ref)).values())
        if any(p.caldav_href is not None and p.caldav_href not in hrefs for p in pairs):
            return True
    else:
        uids = {item.event.uid for item in other.items if item.event is not None}
        touched = await store.load_touched(ref, dingtalk_ids=set(), hrefs=hrefs, uids=uids)
        pairs = list(touched.pairs.values())
    stored = {p.caldav_href: p.caldav_fp for p in pairs}
    return any(
        item.event is None or stored.get(item.id) != item.event.fingerprint()
        for item in other.items
    )


def _unread(cursor: str | None) -> Changes:
    """The DingTalk delta of a run that did not list DingTalk: nothing changed."""
    return Changes(items=(), deleted=(), cursor=cursor, complete=False)


async def _pairs_for(
    ref: BindingRef, store: MappingStore, changes: dict[Side, Changes]
) -> tuple[dict[str, PairState], int]:
    """Every pair when a side listed in full; else only the pairs the changes name."""
    if any(c.complete for c in changes.values()):
        pairs = await store.load_pairs(ref)
        return pairs, len(pairs)
    dt, dav = changes[Side.DINGTALK], changes[Side.CALDAV]
    touched = await store.load_touched(
        ref,
        dingtalk_ids=_ids(dt),
        hrefs=_ids(dav),
        uids={i.event.uid for c in (dt, dav) for i in c.items if i.event is not None},
    )
    return touched.pairs, touched.total


def _ids(changes: Changes) -> set[str]:
    return {i.id for i in changes.items} | set(changes.deleted)


async def _changes(side: CalendarSide, cursor: str | None, ref: BindingRef) -> Changes:
    """Changes since ``cursor``; a stale cursor means a full listing instead."""
    if cursor is None:
        return await side.changes(None)
    try:
        return await side.changes(cursor)
    except SyncTokenInvalid:
        log.info("cursor_stale", side=str(side.side))
        return await side.changes(None)


async def _failed_status(
    ref: BindingRef, store: MappingStore, exc: SyncdError, duration: float
) -> None:
    """Record a run that could not read or plan (blocked: the planner refused)."""
    log.warning("reconcile_failed", error=type(exc).__name__, message=str(exc))
    status = RunStatus(
        state="blocked" if isinstance(exc, SyncError) else "failed",
        last_run=_now(),
        duration=round(duration, 3),
        # A missing calendar's message is the whole reason ("calendar not found: URL").
        last_error=str(exc) if isinstance(exc, CalendarMissing) else _named(exc),
    )
    try:
        await store.set_status(ref, status)
    except StoreError:
        log.warning("status_not_recorded")


def _named(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


def _log_run(report: Report) -> None:
    """The canonical line of the run, plus one line per item left alone (with its reason)."""
    for action in report.plan.actions:
        if isinstance(action, Skip):
            (log.info if action.filtered else log.warning)(
                "item_skipped",
                item=action.ref,
                side=str(action.side) if action.side else None,
                reason=action.reason,
            )
        elif isinstance(action, Delete) and action.filtered:
            log.info(
                "item_filtered",
                item=action.uid,
                side=str(action.target),
                reason=action.reason,
            )
    c = report.counts
    log.info(
        "reconciled",
        created=c.created,
        updated=c.updated,
        deleted=c.deleted,
        conflicts=c.conflicts,
        skipped=c.skipped,
        errors=len(report.errors),
        held=len(report.held_deletions),
        full=report.full,
        cursors_committed=report.cursors_committed,
        dingtalk_listed=report.dingtalk_listed,
        duration=round(report.duration, 3),
    )


def _clock() -> datetime:
    return datetime.now(UTC)


def _now() -> str:
    return _clock().isoformat()
