"""Benchmark 4c — the webhook against its baselines in interleaved rounds.

``python -m bench webhook-rounds`` starts every server at once — ``syncd web``, the bare
crypto-only receiver and the bare aiohttp 200 handler (``bench._bare_receiver``), and, with
``BENCH_WEBHOOK_BEFORE=/path/to/other/checkout``, ``syncd web`` from that tree — then
for each of ``--webhook-rounds`` rounds sends ``--round-pushes`` pushes per level (each
``--concurrency`` level, then ``--push-rate`` paced) to each server in turn (the order
rotates per round). On a shared machine whose load moves by minutes, a ratio taken within
one round (seconds apart) is far steadier than one between whole runs: the report gives
the median over rounds of each per-round ratio, pushes/s, ack p50/p99 and CPU per push.
Each push is checked as in benchmark 4 (replies decrypt to ``success``; dedupe keys stored).
"""

from __future__ import annotations

import os
from typing import Any

import aiohttp

from bench._report import table
from bench._stats import median, ms
from bench.webhook import WARM_UP, Webhook, _level, _send, push

DEFAULTS = {"rounds": 5, "round_pushes": 500}
SYNCD = "syncd web"
BEFORE = "syncd web (BENCH_WEBHOOK_BEFORE)"
CRYPTO = "bare crypto-only receiver"
PLAIN = "bare 200 handler"


def _servers() -> dict[str, tuple[Webhook, bool, bool]]:
    """Name -> (server, bare, plain): every server started, none waited for yet."""
    servers = {SYNCD: (Webhook(), False, False)}
    before = os.environ.get("BENCH_WEBHOOK_BEFORE")
    if before:
        servers[BEFORE] = (Webhook(checkout=before), False, False)
    servers[CRYPTO] = (Webhook(bare=True), True, False)
    plain = Webhook(bare=True)
    plain.url = plain.url.replace("/acme", "/plain")
    servers[PLAIN] = (plain, True, True)
    return servers


async def run(opts: dict[str, Any]) -> dict[str, Any]:
    """Every level on every server, round after round; raw results per round."""
    servers = _servers()
    levels: list[tuple[int, float]] = [(c, 0.0) for c in opts["concurrency"]]
    if opts.get("push_rate"):
        levels.append((0, opts["push_rate"]))
    n = opts["round_pushes"]
    out: dict[str, dict[str, list[dict[str, Any]]]] = {name: {} for name in servers}
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            for web, _, _ in servers.values():
                await web.ready(session)
                await _send(session, web.url, [push(i) for i in range(WARM_UP)], 4)
            names = list(servers)
            for r in range(opts["webhook_rounds"]):
                for c, rate in levels:
                    for name in names[r % len(names) :] + names[: r % len(names)]:
                        web, bare, plain = servers[name]
                        lv = await _level(web, session, n, c, bare=bare, rate=rate, plain=plain)
                        out[name].setdefault(str(lv["concurrency"]), []).append(lv)
    finally:
        for web, _, _ in servers.values():
            web.stop()
    return {
        "rounds": opts["webhook_rounds"],
        "round_pushes": n,
        "loadavg_at_end": list(os.getloadavg()),
        "servers": out,
    }


def _per_round(a: list[dict[str, Any]], b: list[dict[str, Any]], key: str) -> float:
    return median([x[key] / y[key] for x, y in zip(a, b, strict=True)])


def _reads(runs: list[dict[str, Any]]) -> str:
    """Median Redis reads per push (under 1: pushes shared a pipeline); — for baselines and
    results saved before the figure existed."""
    reads = [r["redis_reads_per_push"] for r in runs if r.get("redis_reads_per_push")]
    return f"{median(reads):.2f}" if reads else "—"


def render(result: dict[str, Any]) -> str:
    """Markdown table: per server and level, medians over the rounds."""
    servers = result["servers"]
    rows = []
    for name, by_level in servers.items():
        for level, runs in by_level.items():
            crypto, plain = servers[CRYPTO][level], servers[PLAIN][level]
            lat = [r["latency"] for r in runs]
            cpu = [r["webhook_cpu_ms_per_push"] for r in runs]
            rows.append(
                [
                    name,
                    level,
                    f"{result['rounds']} × {result['round_pushes']}",
                    f"{median([r['per_second'] for r in runs]):.0f}",
                    f"{_per_round(runs, crypto, 'per_second'):.2f}",
                    f"{_per_round(runs, plain, 'per_second'):.2f}",
                    ms(median([x["p50"] for x in lat])),
                    ms(median([x["p99"] for x in lat])),
                    f"{median(cpu):.2f} ms",
                    f"{_per_round(plain, runs, 'webhook_cpu_ms_per_push'):.2f}",
                    _reads(runs),
                ]
            )
    header = [
        "server",
        "senders (or paced rate)",
        "rounds × pushes",
        "pushes/s (median)",
        "vs crypto-only (median of per-round ratios)",
        "vs bare 200",
        "ack p50",
        "ack p99",
        "CPU per push",
        "bare 200's CPU per push ÷ this",
        "Redis socket reads per push",
    ]
    return table(header, rows)
