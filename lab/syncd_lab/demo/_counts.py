"""Request counters the demo reads: the sandbox's, Radicale's request log, syncd's metrics."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from syncd.observability import REGISTRY
from syncd_lab.sandbox.sandbox import Sandbox

# Radicale at --logging-level info: "[INFO] PUT request for '/alice/work/x.ics' received ..."
_RADICALE_REQUEST = re.compile(r"\[INFO\] (?P<method>[A-Z]+) request for '(?P<path>[^']*)'")
_DINGTALK_WRITES = ("Create", "Patch", "Delete", "Add", "Remove", "Respond")
_FINISHED = {"ok", "partial"}  # reconcile outcomes that ran to the end (not skipped/locked)


def radicale_requests(log_path: Path, path_prefix: str) -> Counter[str]:
    """Requests per method Radicale has logged so far under ``path_prefix``."""
    text = log_path.read_text(errors="replace")
    return Counter(
        m.group("method")
        for m in _RADICALE_REQUEST.finditer(text)
        if m.group("path").startswith(path_prefix)
    )


def reconciles_finished(tenant: str) -> int:
    """Reconcile runs of ``tenant`` this process finished (syncd_reconciles_total)."""
    total = 0.0
    for metric in REGISTRY.collect():
        if metric.name != "syncd_reconciles":
            continue
        for sample in metric.samples:
            labels = sample.labels
            if (
                sample.name.endswith("_total")
                and labels.get("tenant") == tenant
                and labels.get("outcome") in _FINISHED
            ):
                total += sample.value
    return int(total)


@dataclass(frozen=True)
class Snapshot:
    """Counters at one moment: DingTalk API calls by operation, CalDAV requests by method."""

    dingtalk: Counter[str]
    caldav: Counter[str]
    reconciles: int

    @classmethod
    def take(cls, sandbox: Sandbox, radicale_log: Path, path: str, tenant: str) -> Snapshot:
        """Read every counter now."""
        return cls(
            Counter(sandbox.stats()["requests"]),
            radicale_requests(radicale_log, path),
            reconciles_finished(tenant),
        )

    def since(self, before: Snapshot) -> Snapshot:
        """What happened between ``before`` and this snapshot."""
        return Snapshot(
            self.dingtalk - before.dingtalk,
            self.caldav - before.caldav,
            self.reconciles - before.reconciles,
        )

    def writes(self) -> int:
        """Write requests in this snapshot (DingTalk changes, CalDAV PUT/DELETE)."""
        dingtalk = sum(n for op, n in self.dingtalk.items() if op.startswith(_DINGTALK_WRITES))
        return dingtalk + self.caldav["PUT"] + self.caldav["DELETE"]


def describe(counts: Counter[str]) -> str:
    """``"2 (ListEvents 1, GetEvent 1)"``, or ``"0"``."""
    total = sum(counts.values())
    if not total:
        return "0"
    parts = ", ".join(f"{name} {n}" for name, n in sorted(counts.items()) if n)
    return f"{total} ({parts})"
