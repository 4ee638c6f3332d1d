"""Benchmark — CLI start-up: how long ``syncd`` takes from exec to exit for light commands.

Each command runs as a fresh process of the installed console script (what an operator
types), ``repeat`` times, interleaved with the baselines so machine noise hits all alike:
a bare ``python -c pass`` (the interpreter's own start) and ``python -c "import syncd"``.
``syncd check`` validates the shipped ``config/`` (its ``${…}`` variables set);
``syncd status`` asks a real ``redis-server`` started for the run (``SYNCD_REDIS_URL``).
The target (issue 11 and 13) is 0.5 s for each command.

Besides wall time, each run's CPU time (user + system, from ``getrusage`` of the waited
child) is recorded: start-up is CPU-bound, so on a machine shared with other work (load
above the core count) the CPU time is the better estimate of the wall time on an idle
machine, while the wall time there is what an operator waits.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench._report import table
from bench._stats import median, percentile
from tests.fixtures.redis_server import start_redis

DEFAULTS: dict[str, Any] = {"startup_repeat": 15, "startup_compare": None}
TARGET_S = 0.5
ROOT = Path(__file__).resolve().parents[1]
SYNCD = str(Path(sys.executable).parent / "syncd")
SHIPPED_ENV = {
    "ACME_APP_SECRET": "s3cret-for-bench",
    "ACME_CALLBACK_TOKEN": "tok-for-bench",
    "ACME_CALLBACK_AES_KEY": "Yue0EfdN5900c1ce5cf6A152c63DDe1808a60c5ecd7",
    "ALICE_DAV_PASSWORD": "alice-dav-pw",
}
CONFIG = ["--config", str(ROOT / "config")]
COMMANDS: dict[str, list[str]] = {
    "python -c pass (baseline)": [sys.executable, "-c", "pass"],
    "python -c 'import syncd'": [sys.executable, "-c", "import syncd"],
    "syncd --version": [SYNCD, "--version"],
    "syncd --help": [SYNCD, "--help"],
    "syncd status --help": [SYNCD, "status", "--help"],
    "syncd check": [SYNCD, "check", *CONFIG],
    "syncd status": [SYNCD, "status", *CONFIG],
    "syncd --config DIR --debug status": [SYNCD, *CONFIG, "--debug", "status"],
}
BASELINE = "python -c pass (baseline)"
# The commands timed for another installation too (--startup-compare): those every
# version of syncd accepts.
COMPARED = ("syncd --version", "syncd --help", "syncd status --help", "syncd check", "syncd status")


def _commands(other: str | None) -> dict[str, list[str]]:
    """What to time: COMMANDS, and with ``other`` (a ``syncd`` script of another
    installation, e.g. the main branch's venv) the COMPARED ones run by it."""
    if not other:
        return dict(COMMANDS)
    extra = {f"{name} [{other}]": [other, *COMMANDS[name][1:]] for name in COMPARED}
    return {**COMMANDS, **extra}


def _cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _time_once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of one run of ``argv``."""
    cpu_before = _cpu_of_children()
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr[-300:]!r}")
    return elapsed, _cpu_of_children() - cpu_before


async def run(opts: dict[str, Any]) -> dict[str, Any]:
    """Wall seconds per command, ``startup_repeat`` interleaved rounds."""
    repeat = int(opts.get("startup_repeat", DEFAULTS["startup_repeat"]))
    commands = _commands(opts.get("startup_compare"))
    redis = start_redis()
    try:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **SHIPPED_ENV}
        env["SYNCD_REDIS_URL"] = redis.url
        samples: dict[str, list[float]] = {name: [] for name in commands}
        cpu: dict[str, list[float]] = {name: [] for name in commands}
        for argv in commands.values():  # one warm-up each (page cache, .pyc files)
            _time_once(argv, env)
        for _ in range(repeat):
            for name, argv in commands.items():
                wall, used = _time_once(argv, env)
                samples[name].append(wall)
                cpu[name].append(used)
    finally:
        redis.stop()
    base = median(samples[BASELINE])
    rows = [
        {
            "command": name,
            "median_s": round(median(values), 4),
            "p90_s": round(percentile(values, 90), 4),
            "min_s": round(min(values), 4),
            "cpu_median_s": round(median(cpu[name]), 4),
            "over_baseline_s": round(median(values) - base, 4),
            "ratio": round(median(values) / base, 1),
            "meets_target": name == BASELINE or median(values) <= TARGET_S,
        }
        for name, values in samples.items()
    ]
    return {
        "repeat": repeat,
        "target_s": TARGET_S,
        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        "rows": rows,
    }


def render(result: dict[str, Any]) -> str:
    """The Markdown table of one run."""
    rows = [
        [
            f"`{r['command']}`",
            f"{r['median_s'] * 1000:.0f} ms",
            f"{r['p90_s'] * 1000:.0f} ms",
            f"{r['min_s'] * 1000:.0f} ms",
            f"{r['cpu_median_s'] * 1000:.0f} ms",
            f"+{r['over_baseline_s'] * 1000:.0f} ms",
            f"{r['ratio']}×",
            "yes" if r["meets_target"] else "**no**",
        ]
        for r in result["rows"]
    ]
    head = [
        "command",
        "wall median",
        "wall p90",
        "wall min",
        "CPU median",
        "over bare python",
        "× bare python",
        "wall ≤ 0.5 s",
    ]
    load = result.get("loadavg_at_end")
    return f"{result['repeat']} interleaved rounds; load average at the end {load}.\n\n" + table(
        head, rows
    )
