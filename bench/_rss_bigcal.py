"""Peak RSS of ``syncd sync --full`` at N events, before/after checkouts interleaved.

``python -m bench._rss_bigcal N QUEUE``: seeds Radicale with N events, copies them into the
sandbox (the slow part: ≈ 12 min at 10,000), then follows the file QUEUE: each line
``ROUNDS CHECKOUT...`` appended to it is run ROUNDS times, for each CHECKOUT in turn (a
directory holding a ``syncd`` package, e.g. an extracted ``git archive`` of the baseline
commit, and this checkout): ``syncd sync --full`` and ``syncd sync`` carrying one change,
with that checkout first on ``PYTHONPATH``, measured like :mod:`bench.bigcal` (a small
wrapper process, ``os.wait4``): exit status, peak RSS, wall time. A line ``stop`` ends it.
So the slow setup is paid once while the code changes. One JSON line per run on stdout.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import bigcal
from bench._rig import Rig, first_slot, open_rig, seed_caldav
from tests.fixtures.spine import REF


def _child(checkout: str, argv: list[str]) -> tuple[int, float, float]:
    env = {**os.environ, "PYTHONPATH": checkout}
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", bigcal._MEASURE, *argv],
        env=env,
        capture_output=True,
        check=True,
    )
    wall = time.perf_counter() - started
    code, kib = out.stdout.split()
    return int(code), int(kib) / 1024, wall


async def _one(rig: Rig, checkout: str, n: int, full: bool, round_no: int) -> dict[str, Any]:
    if not full:
        bigcal._edit(rig, (round_no * 7919 + 13) % (n * 8 // 10), 5000 + round_no)
    exe = Path(sys.executable).with_name("syncd")
    flags = ["--full"] if full else []
    argv = [str(exe), "sync", "--config", str(rig.root / "config"), *flags, REF.tenant]
    argv.append(REF.binding)
    code, rss, wall = await asyncio.to_thread(_child, checkout, argv)
    return {"checkout": checkout, "full": full, "status": code, "rss_mb": rss, "wall_s": wall}


async def _main(n: int, queue: str) -> None:
    async with open_rig() as rig:
        seed_caldav(rig.calendar, n, first_slot())
        bigcal._raw_report(rig, "")
        started = time.perf_counter()
        await rig.reconcile(full=True)
        print(json.dumps({"initial_s": time.perf_counter() - started}), flush=True)
        for _ in range(3):
            if (await bigcal._run(rig))["written"] == 0:
                break
        done, round_no = 0, 0
        while True:
            lines = (await asyncio.to_thread(Path(queue).read_text)).splitlines()[done:]
            if not lines:
                await asyncio.sleep(2)
                continue
            done += 1
            if lines[0].strip() == "stop":
                return
            rounds, *checkouts = lines[0].split()
            for _ in range(int(rounds)):
                round_no += 1
                for checkout in checkouts:
                    for full in (True, False):
                        result = await _one(rig, checkout, n, full, round_no)
                        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    asyncio.run(_main(int(sys.argv[1]), sys.argv[2]))
