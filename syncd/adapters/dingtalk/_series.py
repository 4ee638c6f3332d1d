"""Pure helpers of ``DingTalkSide``: listing windows and grouping series with their instances.

DingTalk lists a recurring series as its master plus one item per *materialised*
occurrence (an edited or cancelled instance: ``seriesMasterId`` set, ``originStart`` its
original start). The canonical model holds a series as one :class:`~syncd.model.Event`,
so items are grouped by master id here before translation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from syncd.model import When

MAX_SPAN = timedelta(days=365)  # ListEvents/ListInstances: timeMin..timeMax at most a year

Item = dict[str, Any]


def windows(
    low: datetime, high: datetime, span: timedelta = MAX_SPAN
) -> list[tuple[datetime, datetime]]:
    """``[low, high)`` cut into consecutive windows of at most ``span``."""
    out: list[tuple[datetime, datetime]] = []
    start = low
    while start < high:
        end = min(start + span, high)
        out.append((start, end))
        start = end
    return out


def series_of(item: Mapping[str, Any]) -> str | None:
    """The master id of an instance item; None for masters and single events."""
    master = item.get("seriesMasterId")
    if isinstance(master, str) and master and master != item.get("id"):
        return master
    return None


def is_cancelled(item: Mapping[str, Any]) -> bool:
    """True for a deleted event or cancelled occurrence (``status: cancelled``)."""
    return item.get("status") == "cancelled"


def is_series(item: Mapping[str, Any]) -> bool:
    """True for a series master (it carries a ``recurrence``)."""
    return isinstance(item.get("recurrence"), Mapping)


def is_single(item: Mapping[str, Any]) -> bool:
    """True for a top item that translates on its own: neither cancelled nor a series."""
    return not is_cancelled(item) and not is_series(item)


@dataclass
class Grouped:
    """Items of a listing sorted into tops (masters and singles) and instances by master."""

    tops: dict[str, Item] = field(default_factory=dict)
    instances: dict[str, dict[str, Item]] = field(default_factory=dict)

    def add(self, item: Item) -> None:
        """File one item (later duplicates of an id replace earlier ones)."""
        item_id = str(item.get("id") or "")
        if not item_id:
            return
        master = series_of(item)
        if master is None:
            self.tops[item_id] = item
        else:
            self.instances.setdefault(master, {})[item_id] = item

    def orphans(self) -> set[str]:
        """Master ids that have instances here but no master item."""
        return set(self.instances) - set(self.tops)


def group(items: Iterable[Item]) -> Grouped:
    """Group a listing's items (see :class:`Grouped`)."""
    out = Grouped()
    for item in items:
        out.add(item)
    return out


def instance_window(rid: When) -> tuple[datetime, datetime]:
    """A ListInstances window surely holding the occurrence originally at ``rid``."""
    if isinstance(rid, datetime):
        moment = rid.astimezone(UTC)
    else:
        moment = datetime(rid.year, rid.month, rid.day, tzinfo=UTC)
    return moment - timedelta(days=2), moment + timedelta(days=2)


def rid_windows(rids: Iterable[When]) -> list[tuple[datetime, datetime]]:
    """As few ListInstances windows (each under a year) as cover every recurrence id."""
    spans = sorted(instance_window(r) for r in rids)
    merged: list[tuple[datetime, datetime]] = []
    for low, high in spans:
        if merged and high - merged[-1][0] <= MAX_SPAN:
            merged[-1] = (merged[-1][0], max(high, merged[-1][1]))
        else:
            merged.append((low, high))
    return merged


def rid_key(value: When) -> str:
    """A comparable text of a recurrence id (instants in UTC, dates as dates)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    assert isinstance(value, date)
    return value.isoformat()
