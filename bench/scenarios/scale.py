"""Scale: 2,000 tool-calls turns in flight at once in one gateway process, each job 2 s upstream.

The emulator's virtual worker holds every job 2 s (a fault mix with a constant run time). The
gateway's client-side RunPod caps (400 concurrent ``/runsync`` by default, RunPod's documented
figure) are lifted for this run so all 2,000 turns really are in flight upstream at once; what is
measured is the gateway process: every turn answered, peak RSS (``VmHWM``, reset just before the
burst, plus ``VmRSS`` sampled every 50 ms), and event-loop lag p99 from the in-process sampler.
"""

from __future__ import annotations

from typing import Any

from bench.harness import Bench
from bench.procs import RssSampler
from bench.scenarios.common import closed, ok_latencies, toolcalls_spec
from bench.stats import spread, summary

CAPS = "100000"
PHASES = {
    "arrival": "from the first request sent to the last one sent (the gateway admits the burst)",
    "held": "from the last request sent to the first answer (2,000 turns waiting upstream)",
    "answers": "from the first answer to the last",
}


def lag_phases(load: dict[str, Any], raw: list[list[float]]) -> dict[str, Any]:
    """Loop-lag percentiles per phase of the burst, by CLOCK_MONOTONIC shared across processes."""
    if not raw or "t0_abs" not in load or not load["t"]:
        return {}
    t0 = load["t0_abs"]
    sent = [t0 + t for t in load["t"]]
    done = [t0 + t + lat / 1000 for t, lat in zip(load["t"], load["lat"], strict=True)]
    bounds = {
        "arrival": (min(sent), max(sent)),
        "held": (max(sent), min(done)),
        "answers": (min(done), max(done)),
    }
    return {
        name: {"span_s": round(hi - lo, 3), **summary([v for t, v in raw if lo <= t <= hi])}
        for name, (lo, hi) in bounds.items()
    }


def run(bench: Bench) -> dict[str, Any]:
    p = bench.profile
    emulator = bench.start_emulator(
        "emulator-scale", virtual=True, faults={"seed": 1, "run": p.scale_job_s}
    )
    caps = {f"RUNPOD_{op}_CONCURRENCY": CAPS for op in ("RUNSYNC", "RUN", "STATUS", "STREAM")}
    gateway = bench.start_gateway(
        "gateway-scale", emulator.url, RUNPOD_MAX_CONNECTIONS="8192", **caps
    )
    rounds: list[dict[str, Any]] = []
    rss_trace: list[tuple[float, int]] = []
    last_latencies: list[float] = []
    with bench.running(gateway, emulator):
        closed(
            bench, toolcalls_spec(bench, gateway, tag="warm", concurrency=100, requests=200),
            label="scale warm-up",
        )  # fmt: skip
        for i in range(p.scale_rounds):
            idle = bench.server_stats(gateway, reset=True)
            spec = toolcalls_spec(
                bench, gateway, tag=f"s{i}", concurrency=p.scale_turns,
                requests=p.scale_turns, timeout_s=30, max_s=60,
            )  # fmt: skip
            with RssSampler(gateway.pid, 0.05) as rss:
                r = closed(bench, spec, label=f"scale {p.scale_turns} in flight", server=gateway)
            after = bench.server_stats(gateway, raw=True)
            phases = lag_phases(r, after.pop("lag_raw", []))
            lat = ok_latencies(r)
            answered = sum(1 for c in r["cls"] if c in ("model", "fallback"))
            rounds.append(
                {
                    "turns": p.scale_turns,
                    "answered": answered,
                    "model_replies": r["classes"].get("model", 0),
                    "fallbacks": r["classes"].get("fallback", 0),
                    "errors": r["errors"],
                    "wall_s": r["elapsed_s"],
                    "latency_ms": summary(lat),
                    "rss_idle_mb": round(idle.get("VmRSS", 0) / 1024, 1),
                    "rss_peak_mb": round(max(after.get("VmHWM", 0), rss.peak_kb or 0) / 1024, 1),
                    "lag_ms": after.get("lag_ms"),
                    "lag_by_phase_ms": phases,
                    "gateway_cpu_s": r["server_cpu_s"],
                }
            )
            rss_trace, last_latencies = rss.points, lat
            last = rounds[-1]
            lag_p99 = (last["lag_ms"] or {}).get("p99")
            bench.say(
                f"scale round {i + 1}: {answered}/{p.scale_turns} answered, peak RSS "
                f"{last['rss_peak_mb']} MB, loop lag p99 {lag_p99} ms"
            )
    return {
        "lag_phases": PHASES,
        "turns": p.scale_turns,
        "job_s": p.scale_job_s,
        "all_answered": all(r["answered"] == r["turns"] for r in rounds),
        "rss_peak_mb": spread(r["rss_peak_mb"] for r in rounds),
        "lag_p99_ms": spread((r["lag_ms"] or {}).get("p99") for r in rounds),
        "lag_max_ms": spread((r["lag_ms"] or {}).get("max") for r in rounds),
        "rounds": rounds,
        "rss_trace": rss_trace,
        "samples": {"latency": last_latencies},
    }
