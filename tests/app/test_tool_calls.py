"""tool-calls webhooks through the gateway to an emulated RunPod (issue #2's must-shows)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from app.settings import DEFAULT_FALLBACK
from devstack.emulator import Behavior
from tests.app.conftest import stack, tool_calls_message


async def wait_for(predicate: Any, within_s: float = 3.0) -> bool:
    end = time.monotonic() + within_s
    while time.monotonic() < end:
        if predicate():
            return True
        await asyncio.sleep(0.02)
    return predicate()


def jobs(emulator: Any) -> list[Any]:
    return emulator.jobs()


async def test_a_tool_call_returns_the_worker_text_with_the_exact_id() -> None:
    """One tool call becomes one job; the reply carries the job's text under the same id."""
    async with stack() as s:
        r = await s.client.post(
            "/vapi/webhook", json=tool_calls_message(("call_A1", "lookup_rent", {"unit": "4B"}))
        )
        assert r.status_code == 200
        assert r.json() == {
            "results": [
                {
                    "name": "lookup_rent",
                    "toolCallId": "call_A1",
                    "result": 'Emulated result of lookup_rent for {"unit": "4B"}.',
                }
            ]
        }
        [job] = jobs(s.emulator)
        assert job.input["type"] == "tool" and job.input["tool"]["name"] == "lookup_rent"
        assert job.input["v"] == 1 and job.input["call_id"] == "call-test"


async def test_two_tool_calls_run_concurrently() -> None:
    """Two 1-second jobs in one webhook take about one second, not two; order is kept."""
    async with stack(lambda _input: Behavior(run_s=1.0)) as s:
        started = time.monotonic()
        r = await s.client.post(
            "/vapi/webhook",
            json=tool_calls_message(
                ("c1", "lookup_rent", {"unit": "1"}),
                ("c2", "report_maintenance", {"issue": "leak"}),
            ),
        )
        elapsed = time.monotonic() - started
        assert [x["toolCallId"] for x in r.json()["results"]] == ["c1", "c2"]
        assert all("Emulated result" in x["result"] for x in r.json()["results"])
        assert elapsed < 1.7, f"two 1 s jobs took {elapsed:.2f} s"
        assert len(jobs(s.emulator)) == 2


async def test_a_job_past_the_budget_gets_the_fallback_in_time_and_is_cancelled() -> None:
    """A 30 s job under a 1.5 s budget: a speakable fallback by 1.6 s, the job cancelled."""
    async with stack(lambda _input: Behavior(run_s=30), TOOL_BUDGET_MS="1500") as s:
        started = time.monotonic()
        r = await s.client.post(
            "/vapi/webhook", json=tool_calls_message(("c1", "lookup_rent", {"unit": "4B"}))
        )
        elapsed = time.monotonic() - started
        assert r.status_code == 200
        assert r.json()["results"][0]["result"] == DEFAULT_FALLBACK
        assert elapsed <= 1.6, f"reply took {elapsed:.3f} s against a 1.5 s budget"
        assert await wait_for(lambda: jobs(s.emulator)[0].status == "CANCELLED")


async def test_a_budget_under_runsyncs_minimum_uses_run_and_polling() -> None:
    """Under RunPod's 1 s wait minimum the job goes through /run and /status."""
    async with stack(lambda _input: Behavior(run_s=0.3), TOOL_BUDGET_MS="1200") as s:
        r = await s.client.post(
            "/vapi/webhook", json=tool_calls_message(("c1", "lookup_rent", {"unit": "9"}))
        )
        assert "Emulated result" in r.json()["results"][0]["result"]
        counts = s.emulator.stats()["requests"]
        assert counts.get("run", 0) == 1 and counts.get("runsync", 0) == 0
        assert counts.get("status", 0) >= 1


async def test_runsync_returning_early_is_followed_by_status_polling() -> None:
    """runsync returns IN_PROGRESS when its wait ends; polling /status gets the result."""
    async with stack(
        lambda _input: Behavior(run_s=1.6), TOOL_BUDGET_MS="3000", RUNPOD_WAIT_MARGIN_MS="1900"
    ) as s:
        r = await s.client.post(
            "/vapi/webhook", json=tool_calls_message(("c1", "lookup_rent", {"unit": "2"}))
        )
        assert "Emulated result" in r.json()["results"][0]["result"]
        counts = s.emulator.stats()["requests"]
        assert counts.get("runsync") == 1 and counts.get("status", 0) >= 1


async def test_a_failed_job_gets_the_fallback_not_an_error() -> None:
    """A FAILED job still gives the caller a spoken sentence, as a 200."""
    async with stack(lambda _input: Behavior(status="FAILED", error="CUDA OOM")) as s:
        r = await s.client.post(
            "/vapi/webhook", json=tool_calls_message(("c1", "lookup_rent", {"unit": "2"}))
        )
        assert r.status_code == 200
        assert r.json()["results"][0] == {
            "name": "lookup_rent",
            "toolCallId": "c1",
            "result": DEFAULT_FALLBACK,
        }


async def test_transient_status_errors_are_retried() -> None:
    """Two 503s on /status reads do not lose the job's result."""
    async with stack(
        lambda _input: Behavior(run_s=0.3, status_errors=2), TOOL_BUDGET_MS="1200"
    ) as s:
        r = await s.client.post(
            "/vapi/webhook", json=tool_calls_message(("c1", "lookup_rent", {"unit": "3"}))
        )
        assert "Emulated result" in r.json()["results"][0]["result"]


async def test_a_429_on_submit_is_retried_after_retry_after() -> None:
    """RunPod's 429 is the one submit error that is safe to retry; the job then runs once."""
    async with stack(
        lambda _input: Behavior(submit_status=429, retry_after=0.1, submit_errors=1)
    ) as s:
        r = await s.client.post(
            "/vapi/webhook", json=tool_calls_message(("c1", "lookup_rent", {"unit": "5"}))
        )
        assert "Emulated result" in r.json()["results"][0]["result"]
        assert len(jobs(s.emulator)) == 1


async def test_a_5xx_on_submit_is_never_resubmitted() -> None:
    """A 500 on submit may have queued a job (no idempotency key): fallback, no second job."""
    async with stack(lambda _input: Behavior(submit_status=500)) as s:
        r = await s.client.post(
            "/vapi/webhook", json=tool_calls_message(("c1", "lookup_rent", {"unit": "5"}))
        )
        assert r.json()["results"][0]["result"] == DEFAULT_FALLBACK
        assert s.emulator.stats()["requests"].get("runsync") == 1


INFORMATIONAL = [
    {"type": "status-update", "status": "in-progress", "call": {"id": "c"}},
    {"type": "transcript", "role": "user", "transcriptType": "final", "transcript": "hi"},
    {"type": "conversation-update", "messages": [], "messagesOpenAIFormatted": []},
    {"type": "speech-update", "status": "started", "role": "assistant", "turn": 2},
    {"type": "hang", "call": {"id": "c"}},
    {"type": "end-of-call-report", "endedReason": "hangup", "artifact": {}, "analysis": {}},
    {"type": "some-future-type", "payload": 1},
]


async def test_informational_messages_are_acked_without_any_job() -> None:
    """Status, transcript, report and unknown messages get 200 {} and never reach RunPod."""
    async with stack() as s:
        for message in INFORMATIONAL:
            r = await s.client.post("/vapi/webhook", json={"message": message})
            assert (r.status_code, r.json()) == (200, {}), message["type"]
        assert jobs(s.emulator) == []
        counts = s.emulator.stats()["requests"]
        assert not counts.get("run") and not counts.get("runsync")


async def test_malformed_bodies_get_clear_4xx_errors() -> None:
    """Invalid JSON and bodies without message.type get 400 with a JSON reason; no job runs."""
    async with stack() as s:
        for body in (b"{not json", b"[]", b'{"message": {}}', b'{"message": {"type": 7}}'):
            r = await s.client.post(
                "/vapi/webhook", content=body, headers={"content-type": "application/json"}
            )
            assert r.status_code == 400 and "error" in r.json(), body
        big = b'{"message": {"type": "tool-calls", "x": "' + b"a" * (2 << 20) + b'"}}'
        r = await s.client.post("/vapi/webhook", content=big)
        assert r.status_code == 413 and "error" in r.json()
        assert jobs(s.emulator) == []
