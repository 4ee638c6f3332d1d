"""Benchmark — CLI start-up: how long ``syncd`` takes from exec to exit for light commands.

Each command runs as a fresh process of the installed console script (what an operator
types), ``repeat`` times, interleaved with the baselines so machine noise hits all alike:
a bare ``python -c pass`` (the interpreter's own start) and ``python -c "import syncd"``.
``syncd check`` validates the shipped ``config/`` (its ``${…}`` variables set);
``syncd status`` asks a real ``redis-server`` started for the run (``SYNCD_REDIS_URL``).
The target (issue 11 and 13) is 0.5 s for each command.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench._report import table
from bench._stats import median, percentile
from tests.fixtures.redis_server import start_redis

DEFAULTS: dict[str, Any] = {"startup_repeat": 15}
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


def _time_once(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr[-300:]!r}")
    return elapsed


async def run(opts: dict[str, Any]) -> dict[str, Any]:
    """Wall seconds per command, ``startup_repeat`` interleaved rounds."""
    repeat = int(opts.get("startup_repeat", DEFAULTS["startup_repeat"]))
    redis = start_redis()
    try:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **SHIPPED_ENV}
        env["SYNCD_REDIS_URL"] = redis.url
        samples: dict[str, list[float]] = {name: [] for name in COMMANDS}
        for argv in COMMANDS.values():  # one warm-up each (page cache, .pyc files)
            _time_once(argv, env)
        for _ in range(repeat):
            for name, argv in COMMANDS.items():
                samples[name].append(_time_once(argv, env))
    finally:
        redis.stop()
    base = median(samples[BASELINE])
    rows = [
        {
            "command": name,
            "median_s": round(median(values), 4),
            "p90_s": round(percentile(values, 90), 4),
            "min_s": round(min(values), 4),
            "over_baseline_s": round(median(values) - base, 4),
            "ratio": round(median(values) / base, 1),
            "meets_target": name == BASELINE or median(values) <= TARGET_S,
        }
        for name, values in samples.items()
    ]
    return {"repeat": repeat, "target_s": TARGET_S, "rows": rows}


def render(result: dict[str, Any]) -> str:
    """The Markdown table of one run."""
    rows = [
        [
            f"`{r['command']}`",
            f"{r['median_s'] * 1000:.0f} ms",
            f"{r['p90_s'] * 1000:.0f} ms",
            f"{r['min_s'] * 1000:.0f} ms",
            f"+{r['over_baseline_s'] * 1000:.0f} ms",
            f"{r['ratio']}×",
            "yes" if r["meets_target"] else "**no**",
        ]
        for r in result["rows"]
    ]
    head = ["command", "median", "p90", "min", "over bare python", "× bare python", "≤ 0.5 s"]
    return f"{result['repeat']} interleaved rounds.\n\n" + table(head, rows)
