"""The whole demo: work dir, the running stack, the narrated scenario, then wait.

:func:`run_demo` returns once the scenario is done (``once``) or runs until it is
cancelled (the CLI cancels it on SIGINT/SIGTERM). Either way every child process is
stopped and a temporary work dir removed before it returns or raises.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from syncd_lab.demo import _config
from syncd_lab.demo.children import Children
from syncd_lab.demo.scenario import Results, run_scenario
from syncd_lab.demo.stack import Ports, Stack, running_stack

Echo = Callable[[str], None]
WATCH_INTERVAL_S = 1.0


@dataclass(frozen=True)
class DemoOptions:
    """``syncd demo``'s options."""

    workdir: Path | None = None  # None: a temporary directory, removed at the end
    once: bool = False  # run the scenario and stop, instead of running until Ctrl-C
    timeout: float = 30.0  # seconds any one step may take
    port_base: int | None = None  # Redis, Radicale, sandbox, syncd on base .. base + 3


def _started(stack: Stack, echo: Echo) -> None:
    echo(f"syncd demo: work dir {stack.workdir}")
    echo(f"  Redis     pid {stack.redis.pid}, redis://127.0.0.1:{stack.redis.port}/0")
    echo(f"  Radicale  pid {stack.radicale.pid}, {stack.radicale_url} (CalDAV server)")
    echo(f"  Sandbox   {stack.sandbox_url} (DingTalk Open API stand-in, in this process)")
    echo(f"  syncd     {stack.syncd_url} (webhook + worker, in this process)")
    echo(f"  Webhook   {stack.webhook_url} registered with DingTalk, check_url answered")


def _urls(stack: Stack, echo: Echo) -> None:
    echo("\nEverything is running:")
    echo(f"  CalDAV calendar   {stack.calendar_url}")
    echo(f"                    user {_config.CALDAV_USER}, any password")
    echo(f"  Radicale web UI   {stack.radicale_url}.web/")
    echo(f"  DingTalk sandbox  {stack.sandbox_url}")
    echo("                    events: /_sandbox/state, counters: /_sandbox/stats")
    echo(f"                    appKey {_config.APP_KEY}, appSecret {stack.creds.app_secret}")
    echo(f"  Webhook           {stack.webhook_url}")
    echo(f"  Metrics           {stack.syncd_url}/metrics   (health: /healthz, /readyz)")
    echo(f"  Status page       {stack.syncd_url}/status")
    echo(f"  Config            {stack.config_dir}  (syncd status --config {stack.config_dir})")
    echo(f"  Logs              {stack.workdir}/redis.log, {stack.workdir}/radicale.log")
    _clients(stack, echo)


def _clients(stack: Stack, echo: Echo) -> None:
    """Settings for a real calendar client on this machine (everything is on loopback)."""
    echo("\nA calendar client on this machine:")
    echo("  Thunderbird  Calendar > New Calendar > On the Network")
    echo(f"               Username {_config.CALDAV_USER}, Location {stack.calendar_url}")
    echo("               (any password; pick the calendar 'work')")
    echo("  DAVx5        Add account > Login with URL and user name")
    echo(f"               Base URL {stack.radicale_url}, user {_config.CALDAV_USER}, any password")
    echo(f"               (a phone reaches this machine's loopback via adb reverse tcp:"
         f"{stack.radicale.port} tcp:{stack.radicale.port})")  # fmt: skip
    echo("  Fixed ports across restarts: --port-base N; keep the calendar data: --keep DIR")


async def _keep_running(stack: Stack) -> NoReturn:
    """Until cancelled; raises if a child or the worker dies on its own."""
    while True:
        await asyncio.sleep(WATCH_INTERVAL_S)
        stack.alive()


def _workdir(chosen: Path | None) -> tuple[Path, bool]:
    if chosen is not None:
        chosen.mkdir(parents=True, exist_ok=True)
        return chosen.resolve(), False
    return Path(tempfile.mkdtemp(prefix="syncd-demo-")), True


async def run_demo(options: DemoOptions, echo: Echo) -> Results:
    """Start everything, run the scenario, then stop (``once``) or run until cancelled."""
    workdir, temporary = _workdir(options.workdir)
    try:
        with Children() as children:
            ports = Ports.from_base(options.port_base)
            async with running_stack(workdir, children, options.timeout, ports) as stack:
                _started(stack, echo)
                results = await run_scenario(stack, echo, options.timeout)
                _urls(stack, echo)
                if options.once:
                    echo("\n--once: stopping everything.")
                    return results
                keep = "removed" if temporary else "kept"
                echo(f"\nPress Ctrl-C to stop (the work dir is {keep} then).")
                await _keep_running(stack)
    finally:
        if temporary:
            shutil.rmtree(workdir, ignore_errors=True)
