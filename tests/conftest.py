"""Shared fixtures: every server a test needs is started by the test run itself."""

import pytest

pytest_plugins = [
    "tests.fixtures.redis_server",
    "tests.fixtures.redis_clients",
    "tests.fixtures.caldav_servers",
    "tests.fixtures.sandbox",
    "tests.fixtures.spine",
    "tests.fixtures.processes",
    "tests.fixtures.feed_server",
    "tests.fixtures.listing",
    "tests.fixtures.dingtalk_side",
    "tests.fixtures.calendar_sides",
    "tests.fixtures.webhook",
]

SLOW_TIMEOUT_S = 900
"""Per-test timeout of tests marked ``slow`` or ``corpus`` (others: ``timeout`` in pyproject)."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give slow and corpus tests the longer timeout, unless they name their own."""
    for item in items:
        slow = item.get_closest_marker("slow") or item.get_closest_marker("corpus")
        if slow and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(SLOW_TIMEOUT_S))
