"""Small statistics and timing helpers (no third-party code)."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Mapping, Sequence


def median(values: Sequence[float]) -> float:
    """The median (0.0 for no values)."""
    return statistics.median(values) if values else 0.0


def percentile(values: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile by the nearest-rank method (0.0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def summary(values: Sequence[float]) -> dict[str, float]:
    """Median, p95, p99, min and max of ``values`` (seconds stay seconds), and the count."""
    return {
        "n": len(values),
        "median": median(values),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "min": min(values) if values else 0.0,
        "max": max(values) if values else 0.0,
    }


def delta(after: Mapping[str, int], before: Mapping[str, int]) -> dict[str, int]:
    """Per-key increase from ``before`` to ``after`` (keys that did not move are left out)."""
    out = Counter(after)
    out.subtract(before)
    return {k: v for k, v in sorted(out.items()) if v}


def ms(seconds: float) -> str:
    """Seconds as a rounded millisecond string."""
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"
