"""Throughput: turns per second of one gateway process, closed loop at 16 and 64 concurrent.

Three servers run side by side on the gateway CPU against one virtual-worker emulator: the
gateway over aiohttp (the default), the gateway over httpx's own client
(``RUNPOD_HTTP_TRANSPORT=httpx``), and the minimal reference gateway (:mod:`bench.reference`).
Rounds interleave them (the order rotates) so drift on a shared machine hits all three alike;
ratios are taken per round, then the median. The gateway's own CPU time per turn is read from
``/proc`` too: when the load generator's CPU is the limit, ``turns/s ÷ CPU share`` says what one
full core of gateway would do (reported as a projection, not as a measurement).
"""

from __future__ import annotations

from typing import Any

from bench.harness import Bench
from bench.scenarios.common import closed, toolcalls_spec
from bench.stats import ratio, spread

VARIANTS = ("gateway-aiohttp", "gateway-httpx", "reference")


def run(bench: Bench) -> dict[str, Any]:
    p = bench.profile
    emulator = bench.start_emulator("emulator-throughput", virtual=True)
    servers = {
        "gateway-aiohttp": bench.start_gateway("gateway-aiohttp", emulator.url),
        "gateway-httpx": bench.start_gateway("gateway-httpx", emulator.url, transport="httpx"),
        "reference": bench.start_reference("reference", emulator.url),
    }
    runs: dict[str, dict[int, list[dict[str, Any]]]] = {
        v: {c: [] for c in p.throughput_concurrency} for v in VARIANTS
    }
    with bench.running(*servers.values(), emulator):
        for name, server in servers.items():
            closed(
                bench,
                toolcalls_spec(bench, server, tag="warm", concurrency=16, requests=p.warmup * 2),
                label=f"warm-up {name}",
            )
        for i in range(p.throughput_rounds):
            for c in p.throughput_concurrency:
                order = VARIANTS[i % 3 :] + VARIANTS[: i % 3]
                for name in order:
                    server = servers[name]
                    spec = toolcalls_spec(
                        bench, server, tag=f"t{c}-{i}", concurrency=c,
                        duration_s=p.throughput_s, max_s=p.throughput_s + 30, warmup=c * 4,
                    )  # fmt: skip
                    label = f"throughput {name} c={c} round {i + 1}/{p.throughput_rounds}"
                    r = closed(bench, spec, label=label, server=server)
                    runs[name][c].append(r)
                    bench.say(
                        f"{label}: {r['rate']} turns/s, gateway CPU {r['server_cpu_util']:.0%},"
                        f" p99 {r['summary']['p99']} ms, errors {r['errors'] or 0}"
                    )
    cases: dict[str, Any] = {}
    for c in p.throughput_concurrency:
        case: dict[str, Any] = {}
        for name in VARIANTS:
            rs = runs[name][c]
            case[name] = {
                "turns_per_s": spread(r["rate"] for r in rs),
                "p50_ms": spread(r["summary"]["p50"] for r in rs),
                "p99_ms": spread(r["summary"]["p99"] for r in rs),
                "cpu_util": spread(r["server_cpu_util"] for r in rs),
                "cpu_ms_per_turn": spread(r["server_cpu_ms_per_turn"] for r in rs),
                "projected_turns_per_s_one_core": spread(
                    1000 / r["server_cpu_ms_per_turn"] if r["server_cpu_ms_per_turn"] else None
                    for r in rs
                ),
                "errors": sum(sum(r["errors"].values()) for r in rs),
                "foreign_cores": spread(r.get("foreign_cores") for r in rs),
            }
        n = len(runs["reference"][c])
        case["ratio_gateway_to_reference"] = spread(
            ratio(runs["gateway-aiohttp"][c][k]["rate"], runs["reference"][c][k]["rate"])
            for k in range(n)
        )
        case["ratio_httpx_to_aiohttp"] = spread(
            ratio(runs["gateway-httpx"][c][k]["rate"], runs["gateway-aiohttp"][c][k]["rate"])
            for k in range(n)
        )
        case["cpu_ratio_gateway_to_reference"] = spread(
            ratio(
                runs["gateway-aiohttp"][c][k]["server_cpu_ms_per_turn"],
                runs["reference"][c][k]["server_cpu_ms_per_turn"],
            )
            for k in range(n)
        )
        cases[str(c)] = case
    first = str(p.throughput_concurrency[0])
    bench.results["capacity"] = cases[first]["gateway-aiohttp"]["turns_per_s"]["median"]
    return {"cases": cases, "duration_s": p.throughput_s, "rounds": p.throughput_rounds}
