"""Benchmark 5 — hostile iCalendar: how long translating each hostile resource takes.

Every case of ``tests/fixtures/hostile.py`` goes through ``event_from_ical`` (and, when it
is read, ``event_to_dingtalk``) ``REPEAT`` times in this process; the table gives the
median and the slowest wall time per case, its size and its outcome. The unit tests bound
the same cases by counted work (function calls); this measures seconds.
"""

from __future__ import annotations

import time
from typing import Any

from bench._report import table
from bench._stats import median
from syncd.errors import TranslationError
from syncd.translate import event_from_ical, event_to_dingtalk
from tests.fixtures.dingtalk_shapes import CTX
from tests.fixtures.hostile import CASES

REPEAT = 5


def _outcome(text: str) -> str:
    try:
        event = event_to_dingtalk(event_from_ical(text, CTX), CTX)
    except TranslationError as exc:
        return f"{type(exc).__name__}: {str(exc)[:70]}"
    return f"read ({len(event)} fields for DingTalk)"


async def run(opts: dict[str, Any]) -> dict[str, Any]:
    """Seconds per case (``opts`` is unused: the cases and repeat count are fixed)."""
    rows = []
    for case in CASES:
        text = case.build()
        seconds = []
        outcome = ""
        for _ in range(REPEAT):
            started = time.perf_counter()
            outcome = _outcome(text)
            seconds.append(time.perf_counter() - started)
        rows.append(
            {
                "case": case.name,
                "bytes": len(text.encode()),
                "median_s": round(median(seconds), 4),
                "max_s": round(max(seconds), 4),
                "outcome": outcome,
            }
        )
    return {"repeat": REPEAT, "cases": rows}


def render(result: dict[str, Any]) -> str:
    """The Markdown table of one run."""
    rows = [
        [
            r["case"],
            f"{r['bytes']:,}",
            f"{r['median_s'] * 1000:.1f}",
            f"{r['max_s'] * 1000:.1f}",
            r["outcome"],
        ]
        for r in result["cases"]
    ]
    header = ["case", "bytes", "median ms", "max ms", "outcome"]
    return f"{result['repeat']} runs per case.\n\n" + table(header, rows)
