"""``python -m bench [NAME ...] [options]``: run benchmarks, save JSON, print Markdown.

Names: idle, latency, initial, initial-vdirsyncer, webhook, webhook-rounds, redis-rtt, hostile,
stream, scrape, startup, directory, sustained, bigcal, fleet, caldav_latency (default: all,
in that order).
Results go to ``bench/results/NAME.json``; the Markdown summary goes to standard output.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from bench import (
    bigcal,
    caldav_latency,
    directory,
    fleet,
    hostile,
    idle,
    initial,
    latency,
    redis_roundtrip,
    scrape,
    startup,
    stream,
    sustained,
    webhook,
    webhook_rounds,
)
from bench._report import machine, machine_line, save
from syncd.observability import configure_logging

log = structlog.get_logger(__name__)

Run = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
Render = Callable[[dict[str, Any]], str]
BENCHMARKS: dict[str, tuple[Run, Render]] = {
    "idle": (idle.run, idle.render),
    "latency": (latency.run, latency.render),
    "initial": (initial.run, initial.render),
    "initial-vdirsyncer": (initial.run_baseline, initial.render_baseline),
    "webhook": (webhook.run, webhook.render),
    "webhook-rounds": (webhook_rounds.run, webhook_rounds.render),
    "redis-rtt": (redis_roundtrip.run, redis_roundtrip.render),
    "hostile": (hostile.run, hostile.render),
    "stream": (stream.run, stream.render),
    "scrape": (scrape.run, scrape.render),
    "startup": (startup.run, startup.render),
    "directory": (directory.run, directory.render),
    "sustained": (sustained.run, sustained.render),
    "bigcal": (bigcal.run, bigcal.render),
    "fleet": (fleet.run, fleet.render),
    "caldav_latency": (caldav_latency.run, caldav_latency.render),
}


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def parse(argv: list[str]) -> argparse.Namespace:
    """Command-line options; every size has a small default."""
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"benchmarks to run: {', '.join(BENCHMARKS)} (default: all)",
    )
    p.add_argument(
        "--sizes",
        type=_ints,
        default=idle.DEFAULTS["sizes"],
        help="idle, bigcal: calendar sizes N, comma-separated (default 100,1000)",
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=idle.DEFAULTS["repeat"],
        help="idle: idle runs per tool and size (default 10); bigcal: rounds per size",
    )
    p.add_argument(
        "--full-repeat",
        type=int,
        default=idle.DEFAULTS["full_repeat"],
        help="idle: full reconciles per size (default 3)",
    )
    p.add_argument(
        "--changes",
        type=int,
        default=latency.DEFAULTS["changes"],
        help="latency, stream: changes per series (default 20)",
    )
    p.add_argument(
        "--poll-delays",
        type=_floats,
        default=latency.DEFAULTS["poll_delays"],
        help="latency: arq worker poll_delay values to run DingTalk → CalDAV with "
        "(default: as shipped in syncd.worker.settings)",
    )
    p.add_argument(
        "--n",
        type=int,
        default=initial.DEFAULTS["n"],
        help="initial: events to copy each way (default 1000)",
    )
    p.add_argument(
        "--levels",
        type=_ints,
        default=initial.DEFAULTS["levels"],
        help="initial: binding concurrency levels, comma-separated (default 1,4)",
    )
    p.add_argument(
        "--servers",
        type=lambda text: [x for x in text.split(",") if x.strip()],
        default=initial.DEFAULTS["servers"],
        help="initial: CalDAV servers for DingTalk → CalDAV (default radicale,xandikos)",
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=initial.DEFAULTS["rounds"],
        help="initial: rounds of every configuration (default 3)",
    )
    p.add_argument(
        "--paced-n",
        type=int,
        default=initial.DEFAULTS["paced_n"],
        help="initial: events copied into DingTalk at the default dingtalk.qps (default 300)",
    )
    p.add_argument(
        "--api-latency-ms",
        type=float,
        default=initial.DEFAULTS["api_latency_ms"],
        help="initial: sandbox answer delay for the latency runs (--paced-n events), 0: none"
        " (default 50)",
    )
    p.add_argument(
        "--directions",
        type=lambda text: [x for x in text.split(",") if x.strip()],
        default=initial.DEFAULTS["directions"],
        help="initial: caldav (DingTalk → --servers) and/or dingtalk (Radicale → DingTalk)"
        " (default caldav,dingtalk)",
    )
    p.add_argument(
        "--latency-n",
        type=int,
        default=initial.DEFAULTS["latency_n"],
        help="initial: events of the --api-latency-ms runs (default: --paced-n)",
    )
    p.add_argument(
        "--baseline-n",
        type=int,
        default=None,
        help="initial-vdirsyncer: events vdirsyncer copies (default: --n)",
    )
    p.add_argument(
        "--callbacks",
        type=int,
        default=webhook.DEFAULTS["callbacks"],
        help="webhook: pushes per concurrency level (default 2000)",
    )
    p.add_argument(
        "--concurrency",
        type=_ints,
        default=webhook.DEFAULTS["concurrency"],
        help="webhook: concurrent senders, comma-separated (default 1,16)",
    )
    p.add_argument(
        "--users",
        type=int,
        default=directory.DEFAULTS["users"],
        help="directory: people in the seeded organisation (default 2000)",
    )
    p.add_argument(
        "--repeat-dir",
        type=int,
        default=directory.DEFAULTS["repeat"],
        help="directory: imports per shape (default 5)",
    )
    p.add_argument(
        "--load-bindings",
        type=int,
        default=sustained.DEFAULTS["bindings"],
        help="sustained: bindings (users and calendars) (default 50)",
    )
    for opt, help_ in (
        ("rate", "sustained: DingTalk changes per second"),
        ("duration", "sustained: seconds of sustained load"),
        ("burst", "sustained: changes in the one-second burst"),
        ("qps", "sustained: the tenant's dingtalk.qps, 0 for syncd's default"),
        ("workers", "sustained: syncd worker processes"),
    ):
        default = sustained.DEFAULTS[opt]
        p.add_argument(
            f"--{opt}", type=type(default), default=default, help=f"{help_} (default {default:g})"
        )
    p.add_argument(
        "--push-rate",
        type=float,
        default=webhook.DEFAULTS["push_rate"],
        help="webhook: pushes/s of the paced level, 0 for none (default 500)",
    )
    p.add_argument(
        "--webhook-rounds",
        type=int,
        default=webhook_rounds.DEFAULTS["rounds"],
        help="webhook-rounds, redis-rtt: interleaved rounds (default 5)",
    )
    p.add_argument(
        "--round-pushes",
        type=int,
        default=webhook_rounds.DEFAULTS["round_pushes"],
        help="webhook-rounds: pushes per level, server and round; redis-rtt: calls (default 500)",
    )
    p.add_argument(
        "--bindings",
        type=int,
        default=scrape.DEFAULTS["bindings"],
        help="scrape: bindings whose state /metrics and /status show (default 500)",
    )
    p.add_argument(
        "--scrapes",
        type=int,
        default=scrape.DEFAULTS["scrapes"],
        help="scrape: timed requests per path (default 50)",
    )
    p.add_argument(
        "--startup-repeat",
        type=int,
        default=startup.DEFAULTS["startup_repeat"],
        help="startup: interleaved rounds of every command (default 15)",
    )
    p.add_argument(
        "--startup-compare",
        default=None,
        metavar="SYNCD",
        help="startup: also time this other `syncd` script (e.g. another checkout's venv)",
    )
    cdl = caldav_latency.DEFAULTS
    p.add_argument(
        "--cdl-bindings",
        dest="load_bindings_cdl",
        type=int,
        default=cdl["bindings"],
        help=f"caldav_latency: bindings (default {cdl['bindings']})",
    )
    p.add_argument(
        "--idle-s",
        type=float,
        default=cdl["idle"],
        help=f"caldav_latency: seconds the idle rate is counted over (default {cdl['idle']:g})",
    )
    p.add_argument(
        "--spread-s",
        type=float,
        default=cdl["spread"],
        help=f"caldav_latency: first edits start within this many s (default {cdl['spread']:g})",
    )
    p.add_argument(
        "--followups",
        type=int,
        default=cdl["followups"],
        help=f"caldav_latency: edits after the first, 5-20 s apart (default {cdl['followups']})",
    )
    p.add_argument(
        "--before-ref",
        default=cdl["before_ref"],
        help=f"caldav_latency: git commit of the 'before' worker (default {cdl['before_ref']})",
    )
    p.add_argument(
        "--variants",
        default=cdl["variants"],
        help=f"caldav_latency: which workers to run (default {cdl['variants']})",
    )
    p.add_argument(
        "--fleet-sizes",
        type=_ints,
        default=fleet.DEFAULTS["sizes"],
        help="fleet: numbers of idle bindings, comma-separated (default 1000)",
    )
    for opt, help_ in (
        ("events", "fleet: items in each calendar"),
        ("window", "fleet: seconds the idle worker is measured"),
        ("poll_interval", "fleet: every binding's poll_interval in seconds"),
        ("concurrency", "fleet: bindings reconciled at once in the initial sync"),
        ("synced", "fleet: bindings synced first (first in config order), 0 for all"),
        ("qps", "fleet: the worker's dingtalk.qps, 0 for syncd's default"),
        ("listed", "fleet: 1 to record the synced bindings' DingTalk listings as fresh"),
        ("workers", "fleet: syncd worker processes"),
    ):
        default = fleet.DEFAULTS[opt]
        p.add_argument(
            f"--fleet-{opt.replace('_', '-')}",
            type=type(default),
            default=default,
            help=f"{help_} (default {default:g})",
        )
    p.add_argument(
        "--label",
        default="",
        help="save results as bench/results/NAME-LABEL.json (runs with non-default options)",
    )
    args = p.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        p.error(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(BENCHMARKS)}")
    return args


async def _run_one(name: str, opts: dict[str, Any]) -> str:
    runner, render = BENCHMARKS[name]
    info = machine()
    started = time.monotonic()
    result = await runner(opts)
    result["machine"] = info
    result["runtime_s"] = round(time.monotonic() - started, 1)
    result["command"] = "python -m bench " + " ".join([name, *opts["argv"]])
    path = save(f"{name}-{opts['label']}" if opts["label"] else name, result)
    log.warning("benchmark_done", name=name, seconds=result["runtime_s"], saved=str(path))
    return (
        f"## {name}\n\n{machine_line(info)}; took {result['runtime_s']} s\n"
        f"`{result['command']}`\n\n{render(result)}\n"
    )


def main(argv: list[str]) -> int:
    """Run the chosen benchmarks one after another."""
    configure_logging("console", "warning")
    args = parse(argv)
    opts = {k: v for k, v in vars(args).items() if k != "names"}
    opts["argv"] = [a for a in argv if a not in BENCHMARKS]
    for name in args.names or list(BENCHMARKS):
        sys.stdout.write(asyncio.run(_run_one(name, opts)) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
