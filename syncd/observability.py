"""Logging and metrics: structlog set-up and the Prometheus counters syncd exports.

Logs are key/value events (JSON in production, console in development) with one
canonical line per job. Metrics live in one registry so ``/metrics`` and tests read the
same numbers. Nothing here knows about DingTalk or CalDAV.

**Context.** A reconcile binds ``tenant`` and ``binding`` (``tenant/binding``), and a
worker job also its arq ``job_id``, once (:func:`bound_to_binding`, structlog context
variables); every line logged while it runs carries them, the adapters' and the
translators' included, and tasks it starts inherit them. Log calls do not pass
``binding=`` by hand where that context covers them.

**Event names** are ``snake_case``, area first where there is one
(``dingtalk_token_fetched``, ``caldav_updated``, ``reconcile_failed``): no dots.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal, TextIO, cast

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from syncd.model import BindingRef

REGISTRY = CollectorRegistry(auto_describe=True)

CALLBACKS = Counter(
    "syncd_callbacks_total",
    "DingTalk callbacks received, by tenant and outcome (queued, check_url, rejected_*)",
    ["tenant", "outcome"],
    registry=REGISTRY,
)
STREAM_EVENTS = Counter(
    "syncd_stream_events_total",
    "DingTalk events received over Stream connections, by tenant and outcome",
    ["tenant", "outcome"],
    registry=REGISTRY,
)
STREAM_CONNECTED = Gauge(
    "syncd_stream_connected",
    "1 while this process holds an open DingTalk Stream connection of the tenant",
    ["tenant"],
    registry=REGISTRY,
)
FAILED_PULLED = Counter(
    "syncd_failed_results_total",
    "Events pulled from DingTalk's failedResults API, by tenant and outcome",
    ["tenant", "outcome"],
    registry=REGISTRY,
)
WEBDAV_PUSHES = Counter(
    "syncd_webdav_pushes_total",
    "WebDAV-Push messages from CalDAV servers, by tenant and outcome (queued, rejected_unknown, "
    "store_unavailable)",
    ["tenant", "outcome"],
    registry=REGISTRY,
)
WEBDAV_PUSH_REGISTRATIONS = Counter(
    "syncd_webdav_push_registrations_total",
    "WebDAV-Push subscriptions registered with CalDAV servers, by tenant and outcome "
    "(registered, renewed, unsupported, failed)",
    ["tenant", "outcome"],
    registry=REGISTRY,
)
RECONCILES = Counter(
    "syncd_reconciles_total",
    "Reconcile runs by tenant and outcome (ok, failed, retried, locked)",
    ["tenant", "outcome"],
    registry=REGISTRY,
)
ACTIONS = Counter(
    "syncd_actions_total",
    "Writes applied by reconciles, by target side and kind (create, update, delete)",
    ["tenant", "side", "kind"],
    registry=REGISTRY,
)
ITEM_ERRORS = Counter(
    "syncd_item_errors_total",
    "Items that could not be read, translated or written, by side and error class",
    ["tenant", "side", "error"],
    registry=REGISTRY,
)
FILTERED = Counter(
    "syncd_items_filtered_total",
    "Events a binding's filter kept on their side (skipped) or whose copy it removed "
    "(removed), by the side the event lives on",
    ["tenant", "side", "outcome"],
    registry=REGISTRY,
)
ICS_FETCHES = Counter(
    "syncd_ics_fetches_total",
    "ICS feed fetches by binding and outcome (not_modified, fetched, failed)",
    ["tenant", "binding", "outcome"],
    registry=REGISTRY,
)
DIRECTORY_IMPORTS = Counter(
    "syncd_directory_imports_total",
    "DingTalk directory imports by tenant and outcome (imported, failed)",
    ["tenant", "outcome"],
    registry=REGISTRY,
)
DIRECTORY_USERS = Gauge(
    "syncd_directory_users",
    "Users in the tenant's directory as last imported (extra entries not counted)",
    ["tenant"],
    registry=REGISTRY,
)
CONFLICTS = Counter(
    "syncd_conflicts_total", "Conflicts decided by policy", ["tenant"], registry=REGISTRY
)
RECONCILE_SECONDS = Histogram(
    "syncd_reconcile_seconds",
    "Duration of reconcile runs",
    ["tenant"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
    registry=REGISTRY,
)
REQUESTS = Counter(
    "syncd_requests_total",
    "HTTP requests syncd made, by side (dingtalk, caldav) and answer code "
    "(the HTTP status, or 'error' when no answer came)",
    ["side", "code"],
    registry=REGISTRY,
)
# The per-binding gauges (sync lag, last success, dead letters, conflicts, health) and the
# queue depth are read from Redis at scrape time: syncd.webhook.see.


@contextmanager
def bound_to_binding(ref: BindingRef, job_id: str | None = None) -> Iterator[None]:
    """Every line logged inside the block (and in tasks it starts) names ``ref`` (and the job)."""
    fields = {"tenant": ref.tenant, "binding": str(ref)}
    if job_id is not None:
        fields["job_id"] = job_id
    with structlog.contextvars.bound_contextvars(**fields):
        yield


def metrics_text() -> bytes:
    """The registry in Prometheus text exposition format."""
    return generate_latest(REGISTRY)


# The stdlib handler configure_logging installs on the root logger (found again by name,
# so configuring twice replaces it instead of adding a second one).
_STDLIB_HANDLER = "syncd-structlog"


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is when a record comes (test runners swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def configure_logging(
    fmt: Literal["json", "console"] = "console", level: str = "info", *, stream: object = None
) -> None:
    """Set up structlog (and stdlib logging beneath it) once, at the process edge.

    Third-party libraries that log through the stdlib go through the same renderer, so a
    JSON log holds nothing but JSON lines; their records carry the ``logger`` name. The
    stdlib threshold is WARNING at least, so libraries' info chatter stays out.
    """
    log_level = getattr(logging, level.upper(), logging.INFO)
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(log_level),
        logger_factory=structlog.PrintLoggerFactory(file=stream or sys.stderr),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(cast(TextIO, stream)) if stream else _StderrHandler()
    _route_stdlib(shared, renderer, max(log_level, logging.WARNING), handler)


def _route_stdlib(
    shared: list[structlog.typing.Processor],
    renderer: structlog.typing.Processor,
    level: int,
    handler: logging.Handler,
) -> None:
    """Render stdlib records with structlog's processors, on one root handler of ours."""
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler.set_name(_STDLIB_HANDLER)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _STDLIB_HANDLER]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
