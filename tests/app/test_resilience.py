"""Breaker, admission and upstream caps under failure and load (issue #4's must-shows)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from httpx_aiohttp import AiohttpTransport

from app.settings import DEFAULT_FALLBACK
from devstack.emulator import Behavior, OpLimit
from tests.app.conftest import stack, tool_calls_message

BODY = tool_calls_message(("c1", "lookup_rent", {"unit": "4B"}))
_ids = iter(range(1_000_000))


def fresh() -> dict[str, Any]:
    """A tool-calls message with a new toolCallId (the same id would be deduplicated)."""
    return tool_calls_message((f"c{next(_ids)}", "lookup_rent", {"unit": "4B"}))


class Switch:
    """A virtual worker whose behaviour the test flips between failing and healthy."""

    def __init__(self) -> None:
        self.failing = True

    def __call__(self, _input: Any) -> Behavior:
        return Behavior(status="FAILED", error="boom") if self.failing else Behavior()


async def test_breaker_opens_answers_fast_without_runpod_and_recovers() -> None:
    """After 3 failures turns answer in < 10 ms with no RunPod call; healthy again after reset."""
    switch = Switch()
    async with stack(switch, BREAKER_FAILURES="3", BREAKER_RESET_S="1", HEALTH_POLL_S="3600") as s:
        for _ in range(3):
            r = await s.client.post("/vapi/webhook", json=fresh())
            assert r.json()["results"][0]["result"] == DEFAULT_FALLBACK
        submits = dict(s.emulator.stats()["requests"])
        timings = []
        for _ in range(5):
            started = time.perf_counter()
            r = await s.client.post("/vapi/webhook", json=fresh())
            timings.append(time.perf_counter() - started)
            assert r.json()["results"][0]["result"] == DEFAULT_FALLBACK
        assert dict(s.emulator.stats()["requests"]) == submits, "breaker let a call through"
        assert sorted(timings)[len(timings) // 2] < 0.010, timings
        switch.failing = False
        await asyncio.sleep(1.05)
        r = await s.client.post("/vapi/webhook", json=fresh())
        assert "Emulated result" in r.json()["results"][0]["result"]
        assert s.app.state.services.breaker.state == "closed"


async def test_deadline_expiries_do_not_open_the_breaker() -> None:
    """Slow jobs that blow the caller's budget are not upstream failures."""
    async with stack(
        lambda _input: Behavior(run_s=5), TOOL_BUDGET_MS="300", BREAKER_FAILURES="2"
    ) as s:
        for _ in range(4):
            await s.client.post("/vapi/webhook", json=fresh())
        assert s.app.state.services.breaker.state == "closed"


async def test_turns_beyond_max_inflight_get_the_overloaded_fallback_at_once() -> None:
    """With MAX_INFLIGHT_TURNS=2, a third concurrent turn is answered immediately."""
    async with stack(
        lambda _input: Behavior(run_s=1.0),
        MAX_INFLIGHT_TURNS="2",
        FALLBACK_OVERLOADED="We're very busy, one moment.",
    ) as s:
        slow = [asyncio.create_task(s.client.post("/vapi/webhook", json=fresh())) for _ in range(2)]
        await asyncio.sleep(0.2)
        started = time.perf_counter()
        r = await s.client.post("/vapi/webhook", json=fresh())
        assert time.perf_counter() - started < 0.2
        assert r.json()["results"][0]["result"] == "We're very busy, one moment."
        for task in slow:
            assert "Emulated result" in (await task).json()["results"][0]["result"]


async def test_a_burst_of_1000_turns_stays_under_the_upstream_caps() -> None:
    """1,000 concurrent turns against a slow RunPod: caps hold, no 429s, all answered in budget."""
    caps = {
        "RUNPOD_RUNSYNC_CONCURRENCY": "100",
        "RUNPOD_RUN_CONCURRENCY": "50",
        "RUNPOD_STATUS_CONCURRENCY": "100",
    }
    # The emulator enforces the same caps as RunPod would: any excess shows up as a 429.
    limits = {
        "runsync": OpLimit(concurrent=100),
        "run": OpLimit(concurrent=50),
        "status": OpLimit(concurrent=100),
    }
    budget_s = 6.0
    async with stack(
        lambda _input: Behavior(run_s=0.4),
        emulator_config={"limits": limits},
        TOOL_BUDGET_MS=str(int(budget_s * 1000)),
        **caps,
    ) as s:
        pool = httpx.Limits(max_connections=1000, max_keepalive_connections=1000)
        # httpcore's pool is quadratic in queued requests: the load generator uses aiohttp too.
        transport = AiohttpTransport(limits=pool)
        async with httpx.AsyncClient(
            base_url=s.gateway_url, timeout=60, transport=transport
        ) as client:

            async def turn() -> tuple[float, httpx.Response]:
                started = time.monotonic()
                r = await client.post("/vapi/webhook", json=fresh())
                return time.monotonic() - started, r

            replies = await asyncio.gather(*(turn() for _ in range(1000)))
        assert all(r.status_code == 200 for _, r in replies)
        texts = [r.json()["results"][0]["result"] for _, r in replies]
        assert all(texts)
        stats = s.emulator.stats()
        assert sum(c.get("429", 0) for c in stats["responses"].values()) == 0, stats
        peaks = stats["peak_in_flight"]
        assert peaks.get("runsync", 0) <= 100 and peaks.get("run", 0) <= 50
        assert peaks.get("status", 0) <= 100
        # Client-observed, with client, gateway and RunPod sharing one event loop: generous slack.
        slowest = max(t for t, _ in replies)
        assert slowest < budget_s + 2.0, slowest
        # Server-side: every turn ended by the 8 s bucket (budget 6 s), reply or fallback.
        sample = s.app.state.metrics.registry.get_sample_value

        def turns(le: str) -> float:
            return sum(
                sample(
                    "pete_turn_duration_seconds_bucket",
                    {"route": "tool-calls", "outcome": outcome, "le": le},
                )
                or 0
                for outcome in ("ok", "fallback")
            )

        assert turns("+Inf") == turns("8.0") == 1000
