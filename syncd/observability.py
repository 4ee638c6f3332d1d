"""Logging and metrics: structlog set-up and the Prometheus counters syncd exports.

Logs are key/value events (JSON in production, console in development) with one
canonical line per job. Metrics live in one registry so ``/metrics`` and tests read the
same numbers. Nothing here knows about DingTalk or CalDAV.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)

CALLBACKS = Counter(
    "syncd_callbacks_total",
    "DingTalk callbacks received, by tenant and outcome (queued, check_url, rejected_*)",
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
LAST_SUCCESS = Gauge(
    "syncd_last_success_timestamp_seconds",
    "Unix time of the last successful reconcile per binding",
    ["tenant", "binding"],
    registry=REGISTRY,
)


def metrics_text() -> bytes:
    """The registry in Prometheus text exposition format."""
    return generate_latest(REGISTRY)


def configure_logging(
    fmt: Literal["json", "console"] = "console", level: str = "info", *, stream: object = None
) -> None:
    """Set up structlog (and stdlib logging beneath it) once, at the process edge."""
    log_level = getattr(logging, level.upper(), logging.INFO)
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(log_level),
        logger_factory=structlog.PrintLoggerFactory(file=stream or sys.stderr),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=max(log_level, logging.WARNING), stream=sys.stderr)
