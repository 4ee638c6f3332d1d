"""Stdlib logging (what libraries use) goes through syncd's structlog renderer."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from syncd.observability import configure_logging


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Put the root logger and structlog back as they were after the test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    saved = structlog.get_config()
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.configure(**saved)


def _lines(buffer: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


@pytest.mark.usefixtures("restore_logging")
def test_library_warnings_become_json_lines_with_their_logger() -> None:
    """A library's stdlib warning is one JSON line with level, logger and timestamp."""
    out = io.StringIO()
    configure_logging("json", "info", stream=out)
    logging.getLogger("caldav").warning("No authentication object was provided.\nSecond line")
    structlog.get_logger("syncd.test").info("own_event", n=1)
    first, second = _lines(out)
    assert first["event"] == "No authentication object was provided.\nSecond line"
    assert (first["level"], first["logger"]) == ("warning", "caldav")
    assert first["timestamp"]
    assert (second["event"], second["n"]) == ("own_event", 1)


@pytest.mark.usefixtures("restore_logging")
def test_library_info_stays_out_and_reconfiguring_keeps_one_handler() -> None:
    """Libraries' info records are dropped; configuring twice does not double the lines."""
    first, second = io.StringIO(), io.StringIO()
    configure_logging("json", "info", stream=first)
    configure_logging("json", "info", stream=second)
    logging.getLogger("urllib3.connectionpool").info("Starting new HTTP connection")
    logging.getLogger("niquests").error("boom")
    assert first.getvalue() == ""
    assert [(e["event"], e["logger"]) for e in _lines(second)] == [("boom", "niquests")]


@pytest.mark.usefixtures("restore_logging")
def test_console_format_renders_library_records_too(capsys: pytest.CaptureFixture[str]) -> None:
    """Without a stream, library records go to the stderr of the moment, console-rendered."""
    configure_logging("console", "warning")
    logging.getLogger("caldav").warning("server said no")
    err = capsys.readouterr().err
    assert "server said no" in err
    assert "[warning  ]" in err
    assert "WARNING:caldav" not in err  # not the stdlib's own format
