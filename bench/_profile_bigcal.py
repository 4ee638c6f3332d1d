"""Profile one-change reconciles of the big-calendar benchmark (pyinstrument, not a dependency).

``pip install pyinstrument`` into the venv, then
``python -m bench._profile_bigcal N ROUNDS``: seeds Radicale with N events, copies them into
the sandbox, then profiles ROUNDS one-change rounds of :mod:`bench.bigcal` (the reconcile
and the raw REPORT beside it) and prints each round's figures and the call tree.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from bench import bigcal
from bench._rig import first_slot, open_rig, seed_caldav


async def _profile(n: int, rounds: int) -> None:
    from pyinstrument import Profiler

    async with open_rig() as rig:
        seed_caldav(rig.calendar, n, first_slot())
        bigcal._raw_report(rig, "")
        started = time.perf_counter()
        await rig.reconcile(full=True)
        print(f"initial full sync: {time.perf_counter() - started:.0f} s", flush=True)
        for _ in range(3):
            if (await bigcal._run(rig))["written"] == 0:
                break
        profiler = Profiler(interval=0.001, async_mode="enabled")
        for r in range(rounds):
            profiler.start()
            result: dict[str, Any] = await bigcal._one_change(rig, n, r)
            profiler.stop()
            keys = ("wall_s", "raw_report_s", "ratio", "dingtalk", "caldav")
            print({k: result[k] for k in keys}, flush=True)
        print(profiler.output_text(unicode=False, color=False), flush=True)


if __name__ == "__main__":
    asyncio.run(_profile(int(sys.argv[1]), int(sys.argv[2])))
