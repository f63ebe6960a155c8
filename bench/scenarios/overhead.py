"""Overhead: a tool-calls turn through the gateway vs the same job sent straight to the emulator.

The upstream is the RunPod emulator with its virtual worker (jobs complete at once, zero engine
time), so the difference is what the gateway adds: one more loopback hop plus its own work with
every production feature on (HMAC verification, metrics, JSON logs to a file). The minimal
reference gateway (:mod:`bench.reference`: the same hop, no features) is measured as a third side,
so the table also shows what the hop alone costs on this machine. Sequential, 16 and 64
concurrent; the order of the sides rotates per round; each round's p50/p99 and deltas are kept
and the headline is the median of rounds with the range beside it.
"""

from __future__ import annotations

from typing import Any

from bench.harness import Bench
from bench.scenarios.common import closed, direct_spec, ok_latencies, toolcalls_spec
from bench.stats import spread

SIDES = ["direct", "gateway", "reference"]


def run(bench: Bench) -> dict[str, Any]:
    p = bench.profile
    emulator = bench.start_emulator("emulator-overhead", virtual=True)
    gateway = bench.start_gateway("gateway-overhead", emulator.url)
    reference = bench.start_reference("reference-overhead", emulator.url)
    servers = {"gateway": gateway, "reference": reference}
    cases: dict[str, Any] = {}
    samples: dict[str, dict[str, list[float]]] = {}
    with bench.running(gateway, reference, emulator):
        for concurrency, requests in p.overhead_requests:
            rounds = []
            for i in range(p.overhead_rounds):
                warm = p.warmup if i == 0 else max(10, p.warmup // 4)
                specs = {
                    "direct": direct_spec(
                        emulator, concurrency=concurrency, requests=requests, warmup=warm
                    ),
                    **{
                        side: toolcalls_spec(
                            bench, server, tag=f"o{concurrency}-{i}",
                            concurrency=concurrency, requests=requests, warmup=warm,
                        )
                        for side, server in servers.items()
                    },
                }  # fmt: skip
                order = SIDES[i % 3 :] + SIDES[: i % 3]
                got: dict[str, Any] = {}
                for side in order:
                    label = f"overhead {side} c={concurrency} round {i + 1}/{p.overhead_rounds}"
                    got[side] = closed(bench, specs[side], label=label, server=servers.get(side))
                d, g = got["direct"]["summary"], got["gateway"]["summary"]
                ref = got["reference"]["summary"]
                rounds.append(
                    {
                        "direct": d,
                        "gateway": g,
                        "reference": ref,
                        "delta_p50": _minus(g["p50"], d["p50"]),
                        "delta_p99": _minus(g["p99"], d["p99"]),
                        "reference_delta_p50": _minus(ref["p50"], d["p50"]),
                        "reference_delta_p99": _minus(ref["p99"], d["p99"]),
                        "errors": {s: got[s]["errors"] for s in got if got[s]["errors"]},
                        "gateway_cpu_ms_per_turn": got["gateway"].get("server_cpu_ms_per_turn"),
                        "foreign_cores": max(
                            (got[s].get("foreign_cores") or 0.0 for s in got), default=None
                        ),
                    }
                )
                bench.say(
                    f"overhead c={concurrency} round {i + 1}: direct p50 {d['p50']} p99 {d['p99']}"
                    f" | gateway p50 {g['p50']} p99 {g['p99']}"
                    f" | reference p50 {ref['p50']} p99 {ref['p99']} ms"
                )
                if i == p.overhead_rounds - 1:
                    samples[str(concurrency)] = {s: ok_latencies(got[s]) for s in got}
            cases[str(concurrency)] = {
                "concurrency": concurrency,
                "requests_per_round": requests,
                "direct_p50_ms": spread(r["direct"]["p50"] for r in rounds),
                "direct_p99_ms": spread(r["direct"]["p99"] for r in rounds),
                "gateway_p50_ms": spread(r["gateway"]["p50"] for r in rounds),
                "gateway_p99_ms": spread(r["gateway"]["p99"] for r in rounds),
                "delta_p50_ms": spread(r["delta_p50"] for r in rounds),
                "delta_p99_ms": spread(r["delta_p99"] for r in rounds),
                "reference_p50_ms": spread(r["reference"]["p50"] for r in rounds),
                "reference_p99_ms": spread(r["reference"]["p99"] for r in rounds),
                "reference_delta_p50_ms": spread(r["reference_delta_p50"] for r in rounds),
                "reference_delta_p99_ms": spread(r["reference_delta_p99"] for r in rounds),
                "errors": sum(sum(e.values()) for r in rounds for e in r["errors"].values()),
                "foreign_cores": spread(r["foreign_cores"] for r in rounds),
                "rounds": rounds,
            }
    return {"cases": cases, "samples": samples, "gateway_env": gateway.extra["env"]}


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 3)
