"""deploy/grafana/syncd-dashboard.json: parses, lays out cleanly, queries only real metrics.

The metric and label names every PromQL expression uses are compared with what syncd's
own registry (``syncd/observability.py``) can expose, so a renamed metric or a panel for
a metric that does not exist yet fails here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration import deploy_files as files
from tests.integration.deploy_checks import registry


def _dashboard() -> dict[str, Any]:
    data = json.loads(files.DASHBOARD.read_text())
    assert isinstance(data, dict)
    return data


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def _problems(expr: str, known: dict[str, set[str]]) -> list[str]:
    """What is wrong with one expression: unknown metrics, labels no used metric has."""
    metrics, labels = files.promql_names(expr)
    problems = [f"unknown metric {m}" for m in sorted(metrics - set(known))]
    if not metrics:
        problems.append("no metric at all")
    allowed = set().union(*(known.get(m, set()) for m in metrics))
    problems += [f"unknown label {label}" for label in sorted(labels - allowed)]
    return problems


def test_every_query_uses_real_metrics_and_labels() -> None:
    """Each panel's PromQL names only metrics and labels syncd's registry defines."""
    known = registry()
    assert "syncd_reconciles_total" in known
    exprs = [
        (panel["title"], target["expr"])
        for panel in _panels(_dashboard()["panels"])
        for target in panel.get("targets", [])
    ]
    assert len(exprs) >= 12
    problems = [f"{title}: {p}" for title, expr in exprs for p in _problems(expr, known)]
    assert problems == []
    used = set().union(*(files.promql_names(e)[0] for _, e in exprs))
    families = {re.sub(r"_(total|bucket|sum|count|created)$", "", m) for m in used}
    exported = {re.sub(r"_(total|bucket|sum|count|created)$", "", m) for m in known}
    assert families == exported  # every metric syncd exports has a panel


@pytest.mark.parametrize(
    ("expr", "problem"),
    [
        ("sum(rate(syncd_queue_length[5m]))", "unknown metric syncd_queue_length"),
        (
            'sum by (binding) (rate(syncd_callbacks_total{tenant=~"$tenant"}[5m]))',
            "unknown label binding",
        ),
        ('syncd_actions_total{kind="create", sides="dingtalk"}', "unknown label sides"),
        ("sum(rate(process_cpu_seconds_total[5m]))", "unknown metric process_cpu_seconds_total"),
    ],
)
def test_query_check_is_not_vacuous(expr: str, problem: str) -> None:
    """Metrics syncd does not export, and labels its metrics lack, are caught."""
    assert problem in _problems(expr, registry())


def test_template_variables_use_real_metrics() -> None:
    """The tenant variable reads its values from a real metric's tenant label."""
    variables = {v["name"]: v for v in _dashboard()["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"
    query = variables["tenant"]["query"]["query"]
    match = re.fullmatch(r"label_values\((\w+), (\w+)\)", query)
    assert match is not None
    assert match[2] in registry()[match[1]]


def test_layout_ids_and_rows() -> None:
    """Unique ids, no two panels overlap, rows span the width."""
    panels = list(_panels(_dashboard()["panels"]))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    cells: dict[tuple[int, int], str] = {}
    for panel in _dashboard()["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]
    rows = [p for p in _dashboard()["panels"] if p["type"] == "row"]
    assert all(r["gridPos"]["w"] == 24 for r in rows)
    for panel in panels:
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
