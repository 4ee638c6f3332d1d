"""Shared fixtures: every server a test needs is started by the test run itself."""

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
