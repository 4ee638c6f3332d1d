"""Machine facts, result files and Markdown tables shared by the benchmarks."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
_PACKAGES = ("radicale", "caldav", "aiohttp", "arq", "redis", "icalendar")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _redis_version() -> str:
    from tests.fixtures.redis_server import redis_binary

    out = subprocess.run([redis_binary(), "--version"], capture_output=True, text=True)
    return out.stdout.split(" v=")[1].split()[0] if " v=" in out.stdout else out.stdout.strip()


def machine() -> dict[str, Any]:
    """Where and when the numbers were taken: date, cores, CPU, load, versions."""
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": _cpu_model(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "packages": {p: metadata.version(p) for p in _PACKAGES},
        "redis_server": _redis_version(),
    }


def save(name: str, result: dict[str, Any]) -> Path:
    """Write ``bench/results/NAME.json`` and return its path."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return path


def load(name: str) -> dict[str, Any] | None:
    """The last saved result of benchmark ``name``, if any."""
    path = RESULTS / f"{name}.json"
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def table(header: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def requests_text(counts: dict[str, int]) -> str:
    """``{'ListEvents': 1}`` as ``1 (ListEvents 1)``; an empty dict as ``0``."""
    total = sum(counts.values())
    if not counts:
        return "0"
    return f"{total} (" + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + ")"


def machine_line(info: dict[str, Any]) -> str:
    """One line naming the machine and date of a run."""
    load = "/".join(str(x) for x in info["loadavg_at_start"])
    return (
        f"{info['date']}, nproc={info['nproc']} ({info['cpu']}), load {load} at start, "
        f"Python {info['python']}, Radicale {info['packages']['radicale']}, "
        f"redis-server {info['redis_server']}"
    )
