"""Applying a plan through the ports: up to ``concurrency`` pairs at once, each saved once.

Pairs are independent (one pair is one item on each side: a recurring series, master and
exceptions, is one pair), so ``concurrency`` workers take them in plan order and write
them side by side; DingTalk calls still wait for the app's pace (``dingtalk.qps``), so
concurrency never exceeds it. The actions of one pair run in plan order, one after
another; the pair is saved (or dropped) as soon as all of them succeeded, with the
fingerprints of what each written side now holds (echo suppression), so a run killed
midway has recorded every write that landed. A failed action stops its pair and leaves
that pair's stored state as it was, so the next run re-reads and re-decides it; other
pairs carry on. An action that cannot be written at all is also kept as an item-level
dead letter (``kind: item``, with its ``uid``); the pairs that committed are noted in
``Applied.settled``, so the runner can resolve earlier dead letters of those items.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog

from syncd.errors import NotFound, SyncdError
from syncd.model import BindingRef, PairState, Side
from syncd.reconcile._report import ActionError, disposition
from syncd.sync import (
    Action,
    Conflict,
    Counts,
    Create,
    Delete,
    Forget,
    Plan,
    Record,
    Skip,
    Update,
    settle,
)
from syncd.sync.plan import by_uid, count
from syncd.sync.ports import CalendarSide, ConflictRecord, MappingStore

log = structlog.get_logger(__name__)
Progress = Callable[[int, int], None]


@dataclass(slots=True)
class Applied:
    """Running totals of an apply pass."""

    per_side: dict[Side, Counts] = field(
        default_factory=lambda: {Side.DINGTALK: Counts(), Side.CALDAV: Counts()}
    )
    errors: list[ActionError] = field(default_factory=list)
    done: int = 0
    settled: set[str] = field(default_factory=set)  # uids written, recorded or forgotten

    def add(self, side: Side | None, counts: Counts) -> None:
        if side is not None:
            self.per_side[side] = self.per_side[side] + counts


@dataclass(slots=True)
class _PairRun:
    """The state of one pair while its actions run."""

    pair: PairState | None = None  # to save at the end
    drop: bool = False
    conflicts: list[ConflictRecord] = field(default_factory=list)
    counted: list[Action] = field(default_factory=list)


class Applier:
    """Applies a plan's actions for one binding through its two sides and its store."""

    def __init__(
        self,
        ref: BindingRef,
        sides: Mapping[Side, CalendarSide],
        store: MappingStore,
        *,
        concurrency: int = 4,
        on_progress: Progress | None = None,
    ) -> None:
        self.ref = ref
        self.sides = sides
        self.store = store
        self.on_progress = on_progress
        self.concurrency = max(1, concurrency)
        self.result = Applied()

    async def run(self, plan: Plan) -> Applied:
        """Apply every action of ``plan``; failures are collected, never raised.

        A :class:`~syncd.errors.StoreError` is the exception: without the store nothing
        can be recorded, so it propagates (the other writes in flight are cancelled) and
        the run ends with its cursors unmoved.
        """
        groups = by_uid(plan.actions)
        total = len(groups)
        todo = iter(groups.items())  # shared: each worker takes the next pair in plan order
        first: BaseException | None = None
        try:
            async with asyncio.TaskGroup() as tasks:
                for _ in range(min(self.concurrency, total)):
                    tasks.create_task(self._worker(todo, total))
        except BaseExceptionGroup as failed:
            first = failed.exceptions[0]
        if first is not None:  # re-raised as itself, keeping its own cause
            raise first
        return self.result

    async def _worker(self, todo: Iterator[tuple[str, tuple[Action, ...]]], total: int) -> None:
        for uid, group in todo:
            await self._pair(uid, group)
            self.result.done += 1
            if self.on_progress is not None:
                self.on_progress(self.result.done, total)

    async def _pair(self, uid: str, group: tuple[Action, ...]) -> None:
        run = _PairRun()
        for action in group:
            try:
                await self._one(action, run)
            except SyncdError as exc:
                if isinstance(exc, NotFound) and isinstance(action, Delete):
                    run.drop = True  # already gone: that is what we wanted
                    run.counted.append(action)
                    continue
                await self._failed(uid, action, exc)
                return  # leave the pair as stored: the next run re-decides it
        await self._commit(uid, run)

    async def _one(self, action: Action, run: _PairRun) -> None:
        if isinstance(action, Create):
            written = await self.sides[action.target].create(action.event)
            run.pair = settle(run.pair or action.pair, action.target, written)
        elif isinstance(action, Update):
            side = self.sides[action.target]
            written = await side.update(action.target_id, action.event, action.etag)
            run.pair = settle(run.pair or action.pair, action.target, written)
        elif isinstance(action, Delete):
            await self.sides[action.target].delete(action.target_id, action.etag)
            run.drop = True
        elif isinstance(action, Record):
            run.pair = action.pair
        elif isinstance(action, Forget):
            run.drop = True
        elif isinstance(action, Conflict):
            run.conflicts.append(action.record)
        run.counted.append(action)

    async def _commit(self, uid: str, run: _PairRun) -> None:
        if run.drop:
            await self.store.drop_pair(self.ref, uid)
        elif run.pair is not None:
            await self.store.save_pair(self.ref, run.pair)
        for record in run.conflicts:
            await self.store.add_conflict(self.ref, record)
        for action in run.counted:
            self.result.add(*count(action))
            if not isinstance(action, Skip | Conflict):
                self.result.settled.add(uid)
            if not isinstance(action, Skip):
                log.debug("applied", action=action.describe())

    async def _failed(self, uid: str, action: Action, exc: SyncdError) -> None:
        side = action.target if isinstance(action, Create | Update | Delete) else None
        error = ActionError(
            uid=uid,
            side=side,
            action=action.describe(),
            error=type(exc).__name__,
            message=str(exc),
            disposition=disposition(exc),
        )
        self.result.errors.append(error)
        self.result.add(side, Counts(errors=1))
        log.warning("action_failed", **error.as_dict())
        if error.disposition == "dead_letter":
            letter = error.dead_letter(datetime.now(UTC).isoformat())
            await self.store.add_dead_letter(self.ref, letter)
