"""Faults: a realistic RunPod fault mix replayed over hundreds of tool-calls turns.

The emulator draws each job from a seeded :class:`~devstack.emulator.faults.FaultMix`: warm run
times log-normal (median 0.3 s, p95 1.2 s), 10 % cold starts of 2–30 s, 5 % failed jobs, 2 %
stalled jobs (never finish). Turns arrive open-loop at a fixed rate (VAPI does not wait for our
previous answer). A turn is *within budget* when the caller got HTTP 200 with a speakable result
no later than ``TOOL_BUDGET_MS`` plus a 100 ms allowance for the loopback hop; model replies and
fallback sentences are told apart by text, and the gateway's ``pete_fallback_replies_total{reason}``
counters (scraped before and after) say why each fallback happened.
"""

from __future__ import annotations

import re
from typing import Any

from bench.harness import Bench
from bench.procs import http_get
from bench.scenarios.common import toolcalls_spec
from bench.stats import summary

HOP_ALLOWANCE_MS = 100
_COUNTER = re.compile(
    r'^pete_fallback_replies_total\{reason="(?P<reason>[^"]+)"\} (?P<value>[0-9.e+]+)$'
)


def fault_mix(bench: Bench) -> dict[str, Any]:
    low, high = bench.profile.fault_cold_s
    return {
        "seed": 7,
        "run": {"median_s": 0.3, "p95_s": 1.2},
        "cold_start_rate": 0.10,
        "cold_start_s": [low, high],
        "failure_rate": 0.05,
        "stall_rate": 0.02,
    }


def fallback_counts(url: str) -> dict[str, float]:
    status, body = http_get(f"{url}/metrics")
    counts: dict[str, float] = {}
    if status != 200:
        return counts
    for line in body.decode().splitlines():
        m = _COUNTER.match(line)
        if m:
            counts[m.group("reason")] = float(m.group("value"))
    return counts


def run(bench: Bench) -> dict[str, Any]:
    p = bench.profile
    mix = fault_mix(bench)
    budget = p.fault_budget_ms
    emulator = bench.start_emulator("emulator-faults", virtual=True, faults=mix)
    gateway = bench.start_gateway("gateway-faults", emulator.url, TOOL_BUDGET_MS=str(budget))
    with bench.running(gateway, emulator):
        before = fallback_counts(gateway.url)
        duration = p.fault_turns / p.fault_rate
        spec = toolcalls_spec(
            bench, gateway, tag="f", mode="open", rate=p.fault_rate, duration_s=duration,
            requests=p.fault_turns, timeout_s=budget / 1000 + 20,
        )  # fmt: skip
        r = bench.loadgen.run(spec, label="faults", total=p.fault_turns)
        after = fallback_counts(gateway.url)
        lag = bench.server_stats(gateway).get("lag_ms")
    limit = budget + HOP_ALLOWANCE_MS
    spoken = [(lat, c) for lat, c in zip(r["lat"], r["cls"], strict=True)]
    within = sum(1 for lat, c in spoken if c in ("model", "fallback") and lat <= limit)
    model = [lat for lat, c in spoken if c == "model"]
    fallback = [lat for lat, c in spoken if c == "fallback"]
    reasons = {k: int(v - before.get(k, 0)) for k, v in after.items() if v - before.get(k, 0)}
    n = len(spoken)
    bench.say(f"faults: {within}/{n} within budget, {len(fallback)} fallbacks, reasons {reasons}")
    return {
        "turns": n,
        "rate_per_s": p.fault_rate,
        "budget_ms": budget,
        "limit_ms": limit,
        "mix": mix,
        "within_budget": within,
        "within_budget_share": round(within / n, 4) if n else None,
        "model_replies": len(model),
        "fallbacks": len(fallback),
        "fallback_share": round(len(fallback) / n, 4) if n else None,
        "fallback_reasons": reasons,
        "other": {k: v for k, v in r["classes"].items() if k not in ("model", "fallback")},
        "model_latency_ms": summary(model),
        "fallback_latency_ms": summary(fallback),
        "max_latency_ms": max(r["lat"]) if r["lat"] else None,
        "lag_ms": lag,
        "samples": {"model": model, "fallback": fallback},
    }
