"""Every RunPod fault the emulator can replay: the caller still gets a VAPI-valid reply in time,
the right fallback reason is counted, and the job is cancelled where it should be (issue #4)."""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from app.main import create_app
from app.settings import Settings
from devstack.emulator import Behavior
from devstack.serve import serve
from tests.app.conftest import stack, tool_calls_message
from tests.vapi_schema import assert_valid_reply

BUDGET_S = 1.5
BODY = tool_calls_message(("c1", "lookup_rent", {"unit": "4B"}))


@dataclass(frozen=True)
class Fault:
    behavior: Behavior
    reason: str | None  # the fallback reason counted, None when the model's reply arrives
    cancelled: bool = False  # whether the gateway must have cancelled the job


FAULTS = {
    "slow-job": Fault(Behavior(run_s=20), "slow", cancelled=True),
    "stuck-in-queue": Fault(Behavior(queue_s=60), "slow", cancelled=True),
    "failed": Fault(Behavior(status="FAILED", error="CUDA error"), "failed"),
    "timed-out": Fault(Behavior(status="TIMED_OUT"), "failed"),
    "429-burst-beyond-budget": Fault(Behavior(submit_status=429, retry_after=5), "failed"),
    "503-on-submit": Fault(Behavior(submit_status=503), "failed"),
    "dropped-connection": Fault(Behavior(drop_connection=True), "failed"),
    "malformed-body": Fault(Behavior(malformed=True), "failed"),
    "status-5xx-then-ok": Fault(Behavior(run_s=0.2, status_errors=3), None),
    "empty-output": Fault(Behavior(output={}), "failed"),
}


def fallback_count(app: Any, reason: str) -> float:
    value = app.state.metrics.registry.get_sample_value(
        "pete_fallback_replies_total", {"reason": reason}
    )
    return value or 0.0


@pytest.mark.parametrize("name", list(FAULTS), ids=list(FAULTS))
async def test_each_fault_still_gets_a_timely_vapi_valid_reply(name: str) -> None:
    """HTTP 200, a valid tool-calls reply within budget + 100 ms, the right reason counted."""
    fault = FAULTS[name]
    async with stack(
        lambda _input: fault.behavior,
        TOOL_BUDGET_MS=str(int(BUDGET_S * 1000)),
        RUNPOD_POLL_INITIAL_MS="50",
        HEALTH_POLL_S="3600",
    ) as s:
        started = time.monotonic()
        r = await s.client.post("/vapi/webhook", json=BODY)
        elapsed = time.monotonic() - started
        assert r.status_code == 200
        assert_valid_reply("tool-calls", r.json())
        assert elapsed <= BUDGET_S + 0.1, f"{name}: {elapsed:.3f} s"
        [result] = r.json()["results"]
        assert result["toolCallId"] == "c1" and result["result"].strip()
        if fault.reason is None:
            assert result["result"].startswith("Emulated result")
        else:
            assert fallback_count(s.app, fault.reason) == 1, name
        if fault.cancelled:
            for _ in range(100):
                if all(j.status == "CANCELLED" for j in s.emulator.jobs()):
                    break
                await asyncio.sleep(0.02)
            assert [j.status for j in s.emulator.jobs()] == ["CANCELLED"]


async def test_cold_start_answers_early_and_leaves_the_job_to_warm_a_worker() -> None:
    """/health shows a queue and no worker: fallback after COLD_START_BUDGET_MS, no cancel."""
    async with stack(
        no_worker=True,
        TOOL_BUDGET_MS="6000",
        COLD_START_BUDGET_MS="800",
        HEALTH_POLL_S="0.2",
    ) as s:
        # One queued job makes the endpoint look cold (inQueue > 0, no worker serving).
        first = asyncio.create_task(s.client.post("/vapi/webhook", json=BODY))
        health = s.app.state.services.health
        for _ in range(100):
            if health.cold:
                break
            await asyncio.sleep(0.05)
        assert health.cold
        started = time.monotonic()
        second = tool_calls_message(("c2", "lookup_rent", {"unit": "7"}))
        r = await s.client.post("/vapi/webhook", json=second)
        elapsed = time.monotonic() - started
        assert_valid_reply("tool-calls", r.json())
        assert elapsed <= 0.8 + 0.1, elapsed
        assert fallback_count(s.app, "slow") >= 1
        await asyncio.sleep(0.3)
        assert all(j.status == "IN_QUEUE" for j in s.emulator.jobs()), "cold jobs were cancelled"
        first.cancel()


async def test_connection_refused_is_retried_then_answered_with_the_fallback() -> None:
    """Nothing listening: the submit is retried (no byte left us), then the fallback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}/v2/gone"
    app = create_app(
        Settings.from_env(
            {"RUNPOD_ENDPOINT_URL": closed, "TOOL_BUDGET_MS": "1000", "HEALTH_POLL_S": "3600"}
        ),
        registry=CollectorRegistry(),
    )
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as client:
        started = time.monotonic()
        r = await client.post("/vapi/webhook", json=BODY)
        assert time.monotonic() - started <= 1.1
        assert_valid_reply("tool-calls", r.json())
        assert fallback_count(app, "failed") + fallback_count(app, "slow") == 1
        attempts = sum(
            app.state.metrics.registry.get_sample_value(
                "pete_runpod_requests_total", {"op": op, "code": code}
            )
            or 0
            for op in ("runsync", "run")
            for code in ("error", "timeout")
        )
        assert attempts >= 2, attempts


async def test_keep_warm_submits_a_cheap_warmup_job() -> None:
    """KEEP_WARM_INTERVAL_S queues a v1 warmup job through /run, so a worker stays up."""
    async with stack(KEEP_WARM_INTERVAL_S="60", HEALTH_POLL_S="0.1") as s:
        for _ in range(100):
            if s.emulator.jobs():
                break
            await asyncio.sleep(0.02)
        [job] = s.emulator.jobs()
        assert job.input["type"] == "warmup" and job.kind == "run"
