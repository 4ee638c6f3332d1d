"""Shared fixtures: every server a test needs is started by the test run itself."""

pytest_plugins = [
    "tests.fixtures.redis_server",
    "tests.fixtures.caldav_servers",
    "tests.fixtures.sandbox",
    "tests.fixtures.spine",
    "tests.fixtures.processes",
    "tests.fixtures.feed_server",
]
