"""Streaming: custom-LLM time to first token through the whole stack vs the engine's own TTFT.

Path: load generator → gateway ``POST /vapi/chat/completions`` (``stream: true``) → emulator
``/run`` + ``/stream`` → real SDK worker (``python -m gpu_worker``, RunPod production mode) →
engine simulator (OpenAI-compatible, fixed TTFT and token rate). Sequential turns, so each figure
is pure latency. The same request sent straight to the engine gives the engine's TTFT and total
time; the worker's own ``job_done`` log lines give its handler time and first-piece time per job,
hence the worker's overhead (handler − engine) and the gateway+RunPod share of the TTFT; the
emulator's ``delayTime`` per job (submitted → taken by the worker) is RunPod's queue share.
"""

from __future__ import annotations

import json
import statistics
from typing import Any

from bench.harness import Bench
from bench.procs import http_get
from bench.scenarios.common import chat_spec
from bench.stats import r3, summary

LLM_KEY = "bench-llm-key-0123456789"
TTFT_MS = 150.0
TOKENS_PER_S = 100.0
REPLY_TOKENS = 24


def run(bench: Bench) -> dict[str, Any]:
    p = bench.profile
    engine = bench.start_engine(
        ttft_ms=TTFT_MS, tokens_per_s=TOKENS_PER_S, reply_tokens=REPLY_TOKENS
    )
    emulator = bench.start_emulator("emulator-streaming", virtual=False)
    worker = bench.start_worker(emulator, engine)
    gateway = bench.start_gateway("gateway-streaming", emulator.url, LLM_API_KEY=LLM_KEY)
    with bench.running(gateway, worker, emulator, engine):
        n = p.stream_turns
        direct = bench.loadgen.run(
            chat_spec(
                f"{engine.url}/v1/chat/completions", key=None, model="pete-simulator",
                stream=True, mode="closed", concurrency=1, requests=n, warmup=2,
            ),
            label="engine TTFT (direct)", total=n,
        )  # fmt: skip
        lines_before = _job_lines(worker.log.read_text(errors="replace"))
        via = bench.loadgen.run(
            chat_spec(
                f"{gateway.url}/vapi/chat/completions", key=LLM_KEY, model="pete-simulator",
                stream=True, mode="closed", concurrency=1, requests=n, warmup=2,
            ),
            label="gateway TTFT (stream)", total=n,
        )  # fmt: skip
        jobs = _job_lines(worker.log.read_text(errors="replace"))[len(lines_before) + 2 :]
        status, body = http_get(f"{emulator.extra['root']}/_emulator/jobs")
        emulated = json.loads(body).get("jobs", []) if status == 200 else []
    taken = sorted(emulated, key=lambda j: j.get("submitted_at") or 0)[-n:]
    delay = [j["delayTime"] for j in taken if j.get("delayTime") is not None]
    engine_ttft = [t for t in direct["ttft"] if t is not None]
    engine_total = list(direct["lat"])
    gw_ttft = [t for t, c in zip(via["ttft"], via["cls"], strict=True) if t and c == "model"]
    gw_total = [t for t, c in zip(via["lat"], via["cls"], strict=True) if c == "model"]
    e_ttft = statistics.median(engine_ttft) if engine_ttft else None
    e_total = statistics.median(engine_total) if engine_total else None
    handler = [j["elapsed_ms"] for j in jobs if j.get("elapsed_ms") is not None]
    first_piece = [j["first_piece_ms"] for j in jobs if j.get("first_piece_ms") is not None]
    result = {
        "turns": n,
        "engine": {"ttft_ms": TTFT_MS, "tokens_per_s": TOKENS_PER_S, "reply_tokens": REPLY_TOKENS},
        "engine_ttft_ms": summary(engine_ttft),
        "engine_total_ms": summary(engine_total),
        "gateway_ttft_ms": summary(gw_ttft),
        "gateway_total_ms": summary(gw_total),
        "gateway_ttft_over_engine_ms": summary([t - e_ttft for t in gw_ttft] if e_ttft else []),
        "worker_jobs_seen": len(jobs),
        "runpod_delay_ms": summary(delay),
        "worker_handler_ms": summary(handler),
        "worker_first_piece_ms": summary(first_piece),
        "worker_overhead_ms": summary([h - e_total for h in handler] if e_total else []),
        "worker_first_piece_over_engine_ttft_ms": summary(
            [f - e_ttft for f in first_piece] if e_ttft else []
        ),
        "classes": via["classes"],
        "samples": {"engine_ttft": engine_ttft, "gateway_ttft": gw_ttft},
    }
    bench.say(
        f"streaming: engine TTFT p50 {r3(e_ttft)} ms, gateway TTFT p50 "
        f"{result['gateway_ttft_ms']['p50']} ms, worker overhead p50 "
        f"{result['worker_overhead_ms']['p50']} ms"
    )
    return result


def _job_lines(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        if '"job_done"' not in line:
            continue
        try:
            data = json.loads(line[line.index("{") :])
        except ValueError:
            continue
        if data.get("event") == "job_done":
            out.append(data)
    return out
