"""Binding keys mirror, busy_title, filter and transform: loaded, checked, wired."""

from __future__ import annotations

import re
from pathlib import Path

from syncd.config import load_config
from syncd.sync.shaping import Shaping
from syncd.worker.wiring import policy_for, translation_context
from tests.unit.test_config_load import ENV, TENANT, problems, write

SHAPED = """\
    mirror: busy
    busy_title: Occupied
    filter:
      skip_declined: true
      skip_free: true
      exclude_summary: ["(?i)^private:", "standup$"]
    transform: {summary_prefix: "[DT] "}
"""


def tenant(extra: str) -> str:
    """TENANT with ``extra`` lines added to its first binding (alice-work)."""
    anchor = "    poll_interval: 5m\n"
    assert anchor in TENANT
    return TENANT.replace(anchor, anchor + extra, 1)


def test_defaults_shape_nothing(tmp_path: Path) -> None:
    """Without the keys a binding mirrors in full, filters nothing, marks nothing."""
    config = load_config(write(tmp_path, {"acme.yaml": TENANT}), ENV)
    binding = config.tenant("acme").binding("alice-work")
    assert (binding.mirror, binding.busy_title, binding.transform.summary_prefix) == (
        "full",
        "Busy",
        "",
    )
    policy = policy_for(config, binding)
    assert policy.shaping == Shaping()
    assert not policy.shaping.transforms
    assert not policy.shaping.filter.active


def test_keys_reach_the_planner_policy(tmp_path: Path) -> None:
    """Every key is read and turned into the binding's Shaping (the bound user's e-mail for
    skip_declined comes from the directory)."""
    config = load_config(write(tmp_path, {"acme.yaml": tenant(SHAPED)}), ENV)
    tenant_ = config.tenant("acme")
    binding = tenant_.binding("alice-work")
    shaping = policy_for(config, binding, ctx=translation_context(tenant_, binding)).shaping
    assert (shaping.mirror_busy, shaping.busy_title, shaping.summary_prefix) == (
        True,
        "Occupied",
        "[DT] ",
    )
    assert shaping.bound_email == "alice@acme.example"
    rules = shaping.filter
    assert (rules.skip_declined, rules.skip_free, rules.skip_all_day) == (True, True, False)
    assert [p.pattern for p in rules.exclude_summary] == ["(?i)^private:", "standup$"]
    assert all(isinstance(p, re.Pattern) for p in rules.exclude_summary)


def test_bad_values_are_check_problems_at_their_line(tmp_path: Path) -> None:
    """A bad regex, an unknown mirror and an unknown filter key: one FILE:LINE each."""
    bad = """\
    mirror: partial
    filter:
      skip_holidays: true
      exclude_summary: ["ok", "([unclosed"]
    busy_title: ""
"""
    root = write(tmp_path, {"acme.yaml": tenant(bad)})
    file = f"{root}/tenants/acme.yaml"
    assert problems(root) == (
        f"{file}:22: bindings.0.mirror: Input should be 'full' or 'busy'",
        f"{file}:24: bindings.0.filter.skip_holidays: unknown key (did you mean 'skip_all_day'?)",
        f"{file}:25: bindings.0.filter.exclude_summary.1: not a valid regular expression: "
        "unterminated character set at position 1",
        f"{file}:26: bindings.0.busy_title: String should have at least 1 character",
    )


def test_ics_binding_takes_the_keys_too(tmp_path: Path) -> None:
    """Filters and transforms apply to any binding, a feed's included."""
    text = TENANT.replace(
        "    ics: {url: https://example.org/holidays.ics, refresh: 2h}\n",
        "    ics: {url: https://example.org/holidays.ics, refresh: 2h}\n"
        '    transform: {summary_prefix: "[Holiday] "}\n'
        "    filter: {skip_all_day: false, exclude_summary: [Observance]}\n",
    )
    config = load_config(write(tmp_path, {"acme.yaml": text}), ENV)
    binding = config.tenant("acme").binding("bob-holidays")
    assert binding.transform.summary_prefix == "[Holiday] "
    assert policy_for(config, binding).shaping.filter.active
