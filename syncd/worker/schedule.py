"""When each binding is polled: the worker's side of :mod:`syncd.store.schedule`.

The poll cron asks :func:`take_polls` for the bindings due now (at most the room it has);
their next poll time is chosen here: an ICS feed every ``ics.refresh``; a CalDAV binding by
the ``poll_cadence`` settings (:class:`syncd.config.PollCadence`) from when a run last saw
a change of it, which :func:`after_run` records. Next times keep each binding's stable
phase (:func:`syncd.queue.next_poll_at`), so polls stay spread over their interval.

The schedule follows the configuration: the first tick after start or after a reload
(the served :class:`~syncd.config.Config` is a new object) syncs its members, and so does a
tick :data:`RESYNC_S` after the last sync (a Redis that lost its data gets them back). While
workers disagree (one reloaded, another not yet) they may add and drop a binding in turn;
they agree again once every worker has reloaded, within seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import structlog
from redis.asyncio import Redis

from syncd import queue
from syncd.config import Binding, Config, PollCadence
from syncd.errors import StoreError
from syncd.model import BindingRef
from syncd.store import schedule

log = structlog.get_logger(__name__)

RESYNC_S = 300.0
"""A worker re-syncs the schedule to its configuration at least this often."""


@dataclass(eq=False)
class PollScheduler:
    """Per worker process: the configuration the shared schedule was last synced to."""

    synced: Config | None = None
    synced_at: float = 0.0
    bindings: dict[BindingRef, Binding] = field(default_factory=dict)

    async def follow(self, redis: Redis, config: Config, now: float) -> None:
        """Sync the schedule's members to ``config`` unless done for it in the last
        :data:`RESYNC_S`."""
        if config is self.synced and now - self.synced_at < RESYNC_S:
            return
        cadence = config.settings.poll_cadence
        found = {BindingRef(t.id, b.id): b for t, b in config.bindings()}
        latest = {
            r: queue.next_poll_at(r, longest_interval(b, cadence), now) for r, b in found.items()
        }
        added, removed = await schedule.sync_members(redis, latest, now)
        self.synced, self.synced_at, self.bindings = config, now, found
        log.info("poll_schedule_synced", bindings=len(found), added=added, removed=removed)


def steady_interval(binding: Binding) -> float:
    """Seconds between two polls of ``binding`` when nothing changes: ``poll_interval``, or
    ``ics.refresh`` for a feed."""
    return binding.ics.refresh if binding.ics is not None else binding.poll_interval


def longest_interval(binding: Binding, cadence: PollCadence) -> float:
    """The longest time ``binding`` may wait for its next poll."""
    if binding.ics is not None:
        return binding.ics.refresh
    return cadence.interval(binding.poll_interval, None)


def interval(binding: Binding, cadence: PollCadence, since_change: float | None) -> float:
    """Seconds to ``binding``'s next poll, its last change ``since_change`` s ago."""
    if binding.ics is not None:
        return binding.ics.refresh
    return cadence.interval(binding.poll_interval, since_change)


async def take_polls(
    redis: Redis, scheduler: PollScheduler, config: Config, now: float, room: int
) -> list[tuple[BindingRef, Binding]]:
    """Take at most ``room`` bindings due at ``now`` (atomically across workers) and
    schedule each one's next poll."""
    await scheduler.follow(redis, config, now)
    taken = await schedule.take_due(redis, now, room)
    changed = await schedule.last_changes(redis, taken)
    cadence, polls, next_due = config.settings.poll_cadence, [], {}
    for ref, at in zip(taken, changed, strict=True):
        binding = scheduler.bindings.get(ref)
        if binding is None:  # another worker's newer configuration has it; it stays held
            continue
        since = None if at is None else max(0.0, now - at)
        next_due[ref] = queue.next_poll_at(ref, interval(binding, cadence, since), now)
        polls.append((ref, binding))
    await schedule.reschedule(redis, next_due)
    return polls


async def after_run(
    redis: Redis, config: Config, ref: BindingRef, changes: int, now: float
) -> None:
    """A run of ``ref`` applied ``changes`` changes: if any, poll it fast from now on."""
    if not changes:
        return
    binding = next((b for t, b in config.bindings() if BindingRef(t.id, b.id) == ref), None)
    if binding is None or binding.ics is not None:
        return
    cadence = config.settings.poll_cadence
    soon = queue.next_poll_at(ref, interval(binding, cadence, 0.0), now)
    try:
        await schedule.note_change(redis, ref, now, cadence.idle_after)
        await schedule.bring_forward(redis, ref, soon)
    except StoreError as exc:  # the run itself succeeded; only its next poll stays slow
        log.warning("poll_schedule_not_updated", error=str(exc))
