"""Profile one initial sync (issue 13, target 4) under py-spy (not a dependency).

``pip install py-spy`` into the venv, then
``py-spy record --format raw -o OUT -- python -m bench._profile_initial DIRECTION N``:
DIRECTION ``caldav`` copies N sandbox events into an empty Radicale calendar, ``dingtalk``
N Radicale events into an empty DingTalk calendar (``dingtalk.qps`` 10,000, so the pace
never waits); prints the reconcile's wall time. ``python -m bench._profile_initial
--summary OUT`` prints the functions with the most samples (inclusive) from the raw output.
"""

from __future__ import annotations

import asyncio
import collections
import re
import sys
import time

from bench._rig import first_slot, open_rig, seed_caldav, seed_dingtalk
from syncd.observability import configure_logging


async def _copy(direction: str, n: int) -> None:
    async with open_rig(qps=10_000.0) as rig:
        if direction == "caldav":
            await seed_dingtalk(rig.api, n, first_slot())
        else:
            seed_caldav(rig.calendar, n, first_slot())
        started = time.perf_counter()
        report = await rig.reconcile(full=True)
        print(f"{direction} {n}: {time.perf_counter() - started:.1f} s {report.counts}", flush=True)


def _summary(path: str, top: int = 45) -> None:
    """Inclusive samples per function (each function once per stack), most first."""
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    with open(path) as raw:
        for line in raw:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            frames = {re.sub(r":\d+\)$", ")", f) for f in stack.split(";")}
            total += int(count)
            for frame in frames:
                inclusive[frame] += int(count)
    for frame, samples in inclusive.most_common(top):
        print(f"{100 * samples / total:5.1f}%  {frame}")


if __name__ == "__main__":
    if sys.argv[1] == "--summary":
        _summary(sys.argv[2])
    else:
        configure_logging("console", "warning")  # as the benchmarks run
        asyncio.run(_copy(sys.argv[1], int(sys.argv[2])))
