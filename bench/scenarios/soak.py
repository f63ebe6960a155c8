"""Load and soak: a sustained open-loop run near capacity, and a rate sweep to find the knee.

Order: fill the gateway's bounded caches, sweep, then soak (so both see the steady state).

*Soak*: tool-calls turns arrive at a fixed rate (80 % of the knee the sweep just found, or 50 %
of the closed-loop capacity when no rate was served cleanly) for ``soak_s``; pass means zero
errors and flat
memory: the gateway's ``VmRSS`` sampled every second, its least-squares slope over the second half
of the run reported in MB per minute. Latency is reported per 5 s window. The gateway's bounded
caches are filled first (``IDEMPOTENCY_MAX_ENTRIES`` + 10 % turns, closed loop): the idempotency
store keeps every answered tool call up to its cap (10,000 by default), so RSS climbs until it is
full and then must stay flat; the fill's RSS is reported apart.

*Sweep*: offered rates from a quarter to one and a half times the closed-loop capacity measured
by :mod:`bench.scenarios.throughput` in this run, ``sweep_s`` each,
open loop, latency measured from each request's scheduled send time. The knee is the last rate
whose achieved throughput is within 5 % of the offered rate and whose p50 (from the scheduled send
time) stays under 100 ms, i.e. no standing queue; p99 is reported but not used (on a shared
machine one stall moves it).
"""

from __future__ import annotations

import os
from typing import Any

from bench.goals import dig
from bench.harness import Bench
from bench.procs import RssSampler
from bench.scenarios.common import closed, ok_latencies, toolcalls_spec
from bench.stats import percentile, r3, slope_per_s, summary

SOAK_SHARE_OF_KNEE = 0.8
FALLBACK_SHARE = 0.5
WINDOW_S = 5.0


def run(bench: Bench) -> dict[str, Any]:
    entries = bench.profile.soak_cache_entries
    emulator = bench.start_emulator("emulator-soak", virtual=True)
    gateway = bench.start_gateway(
        "gateway-soak", emulator.url, IDEMPOTENCY_MAX_ENTRIES=str(entries)
    )
    with bench.running(gateway, emulator):
        capacity = bench.results.get("capacity") or dig(
            bench.results, "scenarios", "throughput", "cases", "16", "gateway-aiohttp",
            "turns_per_s", "median",
        )  # fmt: skip
        if not capacity:
            probe = closed(
                bench, toolcalls_spec(bench, gateway, tag="cap", concurrency=16,
                                      duration_s=3, max_s=30, warmup=100),
                label="capacity probe", server=gateway,
            )  # fmt: skip
            capacity = probe["rate"] or 100.0
        before = bench.server_stats(gateway)
        fill = closed(
            bench, toolcalls_spec(bench, gateway, tag="fill", concurrency=32,
                                  requests=entries + entries // 10, max_s=120),
            label="fill the idempotency store", server=gateway,
        )  # fmt: skip
        filled = bench.server_stats(gateway)
        sweep = _sweep(bench, gateway, capacity)
        knee_rate = sweep["knee_per_s"]
        rate = knee_rate * SOAK_SHARE_OF_KNEE if knee_rate else capacity * FALLBACK_SHARE
        basis = (
            f"{SOAK_SHARE_OF_KNEE:.0%} of the knee" if knee_rate
            else f"{FALLBACK_SHARE:.0%} of the closed-loop capacity (no knee)"
        )  # fmt: skip
        if os.environ.get("BENCH_SOAK_RATE"):  # re-run a soak at the rate of an earlier run
            rate, basis = float(os.environ["BENCH_SOAK_RATE"]), "BENCH_SOAK_RATE"
        soak = _soak(bench, gateway, rate)
        soak["rate_basis"] = basis
        soak["cache_fill"] = {
            "turns": fill["count"],
            "errors": fill["errors"],
            "idempotency_max_entries": entries,
            "rss_mb_before": round(before.get("VmRSS", 0) / 1024, 1),
            "rss_mb_after": round(filled.get("VmRSS", 0) / 1024, 1),
        }
    return {"capacity_turns_per_s": capacity, "soak": soak, "sweep": sweep}


def _soak(bench: Bench, gateway: Any, rate: float) -> dict[str, Any]:
    p = bench.profile
    rate = round(rate)
    bench.server_stats(gateway, reset=True)
    spec = toolcalls_spec(
        bench, gateway, tag="soak", mode="open", rate=rate, duration_s=p.soak_s, timeout_s=10,
    )  # fmt: skip
    with RssSampler(gateway.pid, 1.0) as rss:
        r = bench.loadgen.run(spec, label=f"soak {rate}/s", total=int(rate * p.soak_s))
    lag = bench.server_stats(gateway).get("lag_ms")
    errors = {k: v for k, v in r["classes"].items() if k != "model"}
    windows = []
    t_end = max(r["t"], default=0.0)
    start = 0.0
    while start < t_end:
        idx = [i for i, t in enumerate(r["t"]) if start <= t < start + WINDOW_S]
        lat = [r["sched"][i] for i in idx]
        windows.append(
            {
                "t_s": start,
                "turns": len(idx),
                "p50_ms": r3(percentile(lat, 50)),
                "p99_ms": r3(percentile(lat, 99)),
            }
        )
        start += WINDOW_S
    half = [(t, kb / 1024) for t, kb in rss.points if t >= p.soak_s / 2]
    slope = slope_per_s(half)
    mb = [kb / 1024 for _, kb in rss.points]
    result = {
        "rate_per_s": rate,
        "duration_s": p.soak_s,
        "turns": r["count"],
        "achieved_per_s": round(r["count"] / r["elapsed_s"], 1) if r["elapsed_s"] else None,
        "errors": errors,
        "error_count": sum(errors.values()),
        "dropped": r.get("dropped", 0),
        "latency_ms": summary(ok_latencies(r, "sched")),
        "windows": windows,
        "rss_mb_first": r3(mb[0]) if mb else None,
        "rss_mb_last": r3(mb[-1]) if mb else None,
        "rss_mb_max": r3(max(mb)) if mb else None,
        "rss_slope_mb_per_min_second_half": r3(slope * 60) if slope is not None else None,
        "rss_trace": rss.points,
        "lag_ms": lag,
    }
    bench.say(
        f"soak {rate}/s for {p.soak_s:g} s: {r['count']} turns, errors {result['error_count']},"
        f" RSS {result['rss_mb_first']} → {result['rss_mb_last']} MB"
    )
    return result


def _sweep(bench: Bench, gateway: Any, capacity: float) -> dict[str, Any]:
    p = bench.profile
    points = []
    for share in p.sweep_fractions:
        rate = max(1, round(capacity * share))
        spec = toolcalls_spec(
            bench, gateway, tag=f"sw{share}", mode="open", rate=rate, duration_s=p.sweep_s,
            timeout_s=10, max_inflight=5000,
        )  # fmt: skip
        r = bench.loadgen.run(spec, label=f"sweep {rate}/s", total=int(rate * p.sweep_s))
        ok = ok_latencies(r, "sched")
        points.append(
            {
                "share_of_capacity": share,
                "offered_per_s": rate,
                "achieved_per_s": round(len(ok) / r["elapsed_s"], 1) if r["elapsed_s"] else None,
                "errors": sum(v for k, v in r["classes"].items() if k != "model"),
                "dropped": r.get("dropped", 0),
                "p50_ms": r3(percentile(ok, 50)),
                "p99_ms": r3(percentile(ok, 99)),
            }
        )
        bench.say(
            f"sweep {rate}/s: achieved {points[-1]['achieved_per_s']}/s, "
            f"p99 {points[-1]['p99_ms']} ms, errors {points[-1]['errors']}"
        )
    return {"points": points, "knee_per_s": knee(points)}


KNEE_P50_MS = 100.0


def knee(points: list[dict[str, Any]]) -> float | None:
    best = None
    for pt in points:
        achieved, p50 = pt["achieved_per_s"] or 0, pt["p50_ms"]
        if achieved >= 0.95 * pt["offered_per_s"] and p50 is not None and p50 < KNEE_P50_MS:
            best = pt["offered_per_s"]
        else:
            break
    return best
