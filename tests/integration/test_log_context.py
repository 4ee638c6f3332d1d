"""Every line a reconcile job logs names its tenant, binding and job id (structlog context)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import structlog
from structlog.processors import CallsiteParameter, CallsiteParameterAdder
from structlog.testing import capture_logs

from syncd import queue
from tests.fixtures.sandbox import timed_event
from tests.fixtures.spine import REF, Spine
from tests.integration.test_cli_ops import RADICALE_ONLY

SYNCD = Path(__file__).resolve().parents[2] / "syncd"

# A VEVENT in a zone of its own making: translating it logs ``custom_timezone``.
CUSTOM_ZONE = """\
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//syncd tests//EN
BEGIN:VTIMEZONE
TZID:Office Time
BEGIN:STANDARD
DTSTART:19700101T000000
TZOFFSETFROM:+0800
TZOFFSETTO:+0800
END:STANDARD
END:VTIMEZONE
BEGIN:VEVENT
UID:log-context@test
DTSTAMP:20250101T000000Z
DTSTART;TZID=Office Time:20260110T100000
DTEND;TZID=Office Time:20260110T110000
SUMMARY:Custom zone
END:VEVENT
END:VCALENDAR
"""


@contextmanager
def job_lines() -> Iterator[list[dict[str, Any]]]:
    """The structlog lines logged by syncd's own job code inside the block, as processed
    in production (context merged), each with the file that logged it.

    The webhook and the sandbox serve requests in tasks of their own (no job): their
    lines are left out.
    """
    merge = structlog.contextvars.merge_contextvars
    where = CallsiteParameterAdder([CallsiteParameter.PATHNAME])
    with capture_logs(processors=[merge, where]) as logs:
        lines: list[dict[str, Any]] = []
        yield lines
    for entry in logs:
        path = Path(str(entry.get("pathname", "")))
        if path.is_relative_to(SYNCD) and path.parts[len(SYNCD.parts)] not in {
            "webhook",
            "sandbox",
        }:
            lines.append({**entry, "module": str(path.relative_to(SYNCD))})


async def _drop_callbacks(spine: Spine, rate: float) -> None:
    """Let the sandbox lose its pushes (so that only the job itself logs meanwhile)."""
    async with aiohttp.ClientSession() as session:
        url = f"{spine.sandbox.url}/_sandbox/faults"
        async with session.post(url, json={"callback_drop_rate": rate}) as resp:
            assert resp.status == 200


@RADICALE_ONLY  # logging does not depend on the CalDAV server
async def test_every_line_of_a_job_carries_tenant_binding_and_job_id(spine: Spine) -> None:
    """A real worker job copying both ways (adapters and translation logging as they go):
    each of its log lines has tenant, binding and the arq job id, none passed by hand."""
    await spine.api.create("u-alice", timed_event("From DingTalk", day=11))
    assert spine.calendar.put_raw("custom-zone.ics", CUSTOM_ZONE)[0] == 201
    await spine.settle()  # the push of the DingTalk create runs its job
    assert spine.calendar.put_raw("custom-zone.ics", CUSTOM_ZONE.replace("Custom", "New"))[0]
    await queue.request_reconcile(spine.pool, REF, "poll")
    await _drop_callbacks(spine, 1.0)  # our own write's push would queue (and log) more
    try:
        with job_lines() as lines:
            await spine.run_worker()
    finally:
        await _drop_callbacks(spine, 0.0)
    assert spine.dingtalk_events()[-1]["summary"] == "New zone"  # the job did copy it
    modules = {line["module"].split("/")[0] for line in lines}
    assert {"adapters", "translate", "reconcile"} <= modules, sorted(modules)
    (canonical,) = [line for line in lines if line["event"] == "reconciled"]
    job_id = canonical.get("job_id")
    assert str(job_id).startswith("syncd:acme:binding:alice-work:reconcile:")
    for line in lines:
        assert (line.get("tenant"), line.get("binding")) == ("acme", "acme/alice-work"), line
        assert line.get("job_id") == job_id, line
