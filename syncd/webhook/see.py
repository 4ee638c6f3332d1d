"""``GET /metrics`` and ``GET /status``: what an operator sees, read from Redis per request.

The per-binding gauges are not kept in the process (a worker knows only the runs it
made): each scrape reads every binding's state from Redis in one script call
(:func:`syncd.store.gauges.read_snapshot`) and turns it into Prometheus families
(:func:`gauges_text`) or a small HTML page (:func:`render_status`). Both the web
process and workers (``syncd worker --listen``) serve them. With Redis unreachable,
``/metrics`` still answers (``syncd_redis_up 0`` and the process's counters) and
``/status`` answers 503 with a page that says so.
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web

from syncd.config import Config
from syncd.errors import StoreError
from syncd.model import BindingRef
from syncd.observability import metrics_text
from syncd.store.gauges import BindingView, Snapshot, lag_seconds, read_snapshot
from syncd.store.health import binding_health
from syncd.webhook.keys import ARQ_KEY, config_of

SCRAPE_GAUGES: dict[str, tuple[str, ...]] = {
    "syncd_redis_up": (),
    "syncd_queue_depth": (),
    "syncd_bindings_waiting": (),
    "syncd_sync_lag_seconds": ("tenant", "binding"),
    "syncd_last_success_timestamp_seconds": ("tenant", "binding"),
    "syncd_dead_letters": ("tenant", "binding"),
    "syncd_open_conflicts": ("tenant", "binding"),
    "syncd_binding_failed": ("tenant", "binding"),
}
"""The gauges :func:`gauges_text` exports, with their labels (the dashboard's check)."""

REFRESH_S = 10
"""How often the status page reloads itself (``<meta http-equiv="refresh">``)."""


@dataclass(frozen=True, slots=True)
class Row:
    """One binding as shown: everything already decided, nothing left to compute."""

    tenant: str
    binding: str
    kind: str
    health: str
    reason: str | None
    last_success: float | None
    lag: float | None
    dead_letters: int
    conflicts: int
    waiting: bool


def rows(config: Config, snapshot: Snapshot) -> list[Row]:
    """The snapshot's bindings as rows (kind from the configuration, health decided)."""
    kinds = {
        BindingRef(t.id, b.id): ("caldav" if b.caldav is not None else "ics")
        for t, b in config.bindings()
    }
    return [_row(view, kinds.get(view.ref, "?"), snapshot.taken_at) for view in snapshot.bindings]


def _row(view: BindingView, kind: str, now: float) -> Row:
    letters = [view.last_letter] if view.dead_letters and view.last_letter else []
    health, reason = binding_health(view.status, letters)
    return Row(
        view.ref.tenant,
        view.ref.binding,
        kind,
        health,
        reason,
        view.last_success,
        lag_seconds(view, now),
        view.dead_letters,
        view.conflicts,
        view.dirty,
    )


_HELP = {
    "syncd_redis_up": "1 when Redis answered this scrape",
    "syncd_queue_depth": "Jobs waiting in arq's queue",
    "syncd_bindings_waiting": "Bindings with a change not yet served (dirty)",
    "syncd_sync_lag_seconds": "Seconds since the binding's last success (or, never synced, "
    "since its first waiting change)",
    "syncd_last_success_timestamp_seconds": "Unix time of the binding's last successful reconcile",
    "syncd_dead_letters": "Dead letters waiting per binding",
    "syncd_open_conflicts": "Recorded conflicts per binding",
    "syncd_binding_failed": "1 when the binding's last run failed (see /status for why)",
}


def gauges_text(table: list[Row] | None, queue_depth: int) -> bytes:
    """The scrape-time gauges in Prometheus text format (``None``: Redis was unreadable).

    Written directly rather than through prometheus_client's ``generate_latest``, which
    took ~80 ms for the 2,500 samples of 500 bindings (BENCHMARKS.md, "scrape").
    """
    lines: list[str] = []
    _family(lines, "syncd_redis_up", [("", 0.0 if table is None else 1.0)])
    if table is not None:
        _family(lines, "syncd_queue_depth", [("", float(queue_depth))])
        _family(lines, "syncd_bindings_waiting", [("", float(sum(r.waiting for r in table)))])
        labels = {id(r): _labels(r) for r in table}
        per_binding: dict[str, list[tuple[str, float]]] = {
            "syncd_sync_lag_seconds": [(labels[id(r)], r.lag) for r in table if r.lag is not None],
            "syncd_last_success_timestamp_seconds": [
                (labels[id(r)], r.last_success) for r in table if r.last_success is not None
            ],
            "syncd_dead_letters": [(labels[id(r)], float(r.dead_letters)) for r in table],
            "syncd_open_conflicts": [(labels[id(r)], float(r.conflicts)) for r in table],
            "syncd_binding_failed": [
                (labels[id(r)], 1.0 if r.health == "failed" else 0.0) for r in table
            ],
        }
        for name, samples in per_binding.items():
            _family(lines, name, samples)
    return ("\n".join(lines) + "\n").encode()


def _family(lines: list[str], name: str, samples: list[tuple[str, float]]) -> None:
    lines.append(f"# HELP {name} {_HELP[name]}")
    lines.append(f"# TYPE {name} gauge")
    lines.extend(f"{name}{labels} {value!r}" for labels, value in samples)


def _labels(row: Row) -> str:
    return f'{{tenant="{_escape(row.tenant)}",binding="{_escape(row.binding)}"}}'


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


async def _snapshot(app: web.Application) -> tuple[Config, Snapshot | None]:
    config = config_of(app)
    refs = [BindingRef(t.id, b.id) for t, b in config.bindings()]
    try:
        return config, await read_snapshot(app[ARQ_KEY], refs, time.time())
    except StoreError:
        return config, None


async def metrics(request: web.Request) -> web.Response:
    """``GET /metrics``: the process's counters plus the gauges read from Redis now."""
    config, snap = await _snapshot(request.app)
    table = rows(config, snap) if snap is not None else None
    body = metrics_text() + gauges_text(table, snap.queue_depth if snap is not None else 0)
    return web.Response(body=body, content_type="text/plain", charset="utf-8")


async def status_page(request: web.Request) -> web.Response:
    """``GET /status``: the per-binding table as HTML (503 when Redis cannot be read)."""
    config, snap = await _snapshot(request.app)
    if snap is None:
        page = render_status(None, 0, time.time())
        return web.Response(text=page, status=503, content_type="text/html")
    page = render_status(rows(config, snap), snap.queue_depth, snap.taken_at)
    return web.Response(text=page, content_type="text/html")


_COLUMNS = (
    "Tenant",
    "Binding",
    "Kind",
    "State",
    "Reason",
    "Last success",
    "Lag",
    "Dead letters",
    "Conflicts",
)
_STYLE = (
    "body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}"
    "th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top;"
    "white-space:nowrap}td:nth-child(5){white-space:normal}"
    ".failed{background:#fdd}.degraded{background:#ffd}"
)


def render_status(table: list[Row] | None, queue_depth: int, now: float) -> str:
    """The status page: every value escaped, refreshing itself, no scripts."""
    taken = _when(now)
    head = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="{REFRESH_S}">'
        f"<title>syncd status</title><style>{_STYLE}</style></head><body>"
        f"<h1>syncd status</h1><p>As of {taken}. Refreshes every {REFRESH_S} s.</p>"
    )
    if table is None:
        return (
            head + "<p><strong>Redis is unreachable</strong>: no binding state.</p></body></html>"
        )
    failed = sum(r.health == "failed" for r in table)
    summary = (
        f"<p>{len(table)} bindings: {failed} failed, {sum(r.waiting for r in table)} "
        f"waiting for a run. Jobs queued: {queue_depth}.</p>"
    )
    header = "".join(f"<th>{name}</th>" for name in _COLUMNS)
    body = "".join(_tr(row) for row in table)
    table_html = f"<table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>"
    return f"{head}{summary}{table_html}</body></html>"


def _tr(row: Row) -> str:
    cells = (
        row.tenant,
        row.binding,
        row.kind,
        row.health,
        row.reason or "",
        _when(row.last_success) if row.last_success is not None else "never",
        f"{row.lag:.0f} s" if row.lag is not None else "-",
        str(row.dead_letters),
        str(row.conflicts),
    )
    tds = "".join(f"<td>{html.escape(cell)}</td>" for cell in cells)
    return f'<tr class="{html.escape(row.health)}">{tds}</tr>'


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
