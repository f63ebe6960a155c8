"""POST /api/chat: the ancestor's one-question API, as one budgeted RunPod job (issue #6)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from app.settings import DEFAULT_FALLBACK
from devstack.emulator import Behavior
from tests.app.conftest import Stack, stack

pytestmark = pytest.mark.asyncio(loop_scope="module")

SLOW = "Still thinking; let me get back to you."
FAILED = "That did not work just now."


def script(job_input: dict[str, Any]) -> Behavior:
    """The worker: the user's text decides what the emulated job does."""
    said = job_input["messages"][-1]["content"]
    if said == "be slow":
        return Behavior(run_s=2.0)
    if said == "fail":
        return Behavior(status="FAILED", error="CUDA out of memory")
    if said == "say nothing":
        return Behavior(output={"text": "  "})
    return Behavior()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def chat() -> AsyncIterator[Stack]:
    env = {"CHAT_BUDGET_MS": "600", "FALLBACK_SLOW": SLOW, "FALLBACK_FAILED": FAILED}
    async with stack(script, **env) as s:
        yield s


async def fallbacks(s: Stack, reason: str) -> float:
    text = (await s.client.get("/metrics")).text
    prefix = f'pete_fallback_replies_total{{reason="{reason}"}} '
    values = [float(line[len(prefix) :]) for line in text.splitlines() if line.startswith(prefix)]
    return values[0] if values else 0.0


async def test_a_message_gets_the_workers_answer(chat: Stack) -> None:
    """A message becomes one chat job; the reply has the text, model, job id and latency."""
    chat.emulator.reset()
    r = await chat.client.post("/api/chat", json={"message": "Is unit 4B available?"})
    assert r.status_code == 200
    body = r.json()
    assert body["response"] == "You said: Is unit 4B available?"
    assert body["model"] == "emulator" and body["fallback"] is None
    assert isinstance(body["latency_ms"], int) and body["latency_ms"] >= 0
    [job] = chat.emulator.jobs()
    assert body["job_id"] == job.id
    assert job.input["type"] == "chat" and job.input["v"] == 1
    assert job.input["messages"] == [{"role": "user", "content": "Is unit 4B available?"}]


async def test_model_temperature_and_max_tokens_reach_the_job(chat: Stack) -> None:
    """The optional fields are passed into the job input."""
    chat.emulator.reset()
    r = await chat.client.post(
        "/api/chat",
        json={"message": "hi", "model": "pete-7b", "temperature": 0.2, "max_tokens": 64},
    )
    assert r.status_code == 200
    [job] = chat.emulator.jobs()
    assert (job.input["model"], job.input["temperature"], job.input["max_tokens"]) == (
        "pete-7b",
        0.2,
        64,
    )


@pytest.mark.parametrize(
    ("message", "reason", "sentence"),
    [
        pytest.param("be slow", "slow", SLOW, id="budget-exceeded"),
        pytest.param("fail", "failed", FAILED, id="job-failed"),
        pytest.param("say nothing", "failed", FAILED, id="empty-output"),
    ],
)
async def test_runpod_trouble_gets_the_fallback_sentence(
    chat: Stack, message: str, reason: str, sentence: str
) -> None:
    """Past CHAT_BUDGET_MS or on a failed job the reply is the fallback, counted by reason."""
    before = await fallbacks(chat, reason)
    r = await chat.client.post("/api/chat", json={"message": message})
    assert r.status_code == 200
    assert (r.json()["response"], r.json()["fallback"]) == (sentence, reason)
    assert r.json()["latency_ms"] < 1500
    assert await fallbacks(chat, reason) == before + 1


async def test_a_full_gateway_answers_with_the_overloaded_fallback() -> None:
    """Beyond MAX_INFLIGHT_TURNS a chat is answered at once with the fallback."""
    async with stack(lambda _: Behavior(run_s=0.5), MAX_INFLIGHT_TURNS="1") as s:
        first = asyncio.create_task(s.client.post("/api/chat", json={"message": "one"}))
        await asyncio.sleep(0.2)
        second = await s.client.post("/api/chat", json={"message": "two"})
        assert (await first).json()["fallback"] is None
    body = second.json()
    assert (body["response"], body["fallback"], body["job_id"]) == (
        DEFAULT_FALLBACK,
        "overloaded",
        None,
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({}, "message", id="no-message"),
        pytest.param({"message": "   "}, "message", id="blank-message"),
        pytest.param({"message": 42}, "message", id="message-not-text"),
        pytest.param({"message": "hi", "temperature": 3}, "temperature", id="hot"),
        pytest.param({"message": "hi", "max_tokens": 0}, "max_tokens", id="no-tokens"),
        pytest.param({"message": "hi", "model": 7}, "model", id="model-not-text"),
        pytest.param(["hi"], "body", id="not-an-object"),
    ],
)
async def test_invalid_bodies_are_422_naming_the_field(chat: Stack, body: Any, field: str) -> None:
    """A body that breaks the contract is 422 with the offending field, and no job runs."""
    chat.emulator.reset()
    r = await chat.client.post("/api/chat", json=body)
    assert r.status_code == 422
    assert r.json()["field"] == field
    assert chat.emulator.jobs() == []


async def test_bad_json_is_400(chat: Stack) -> None:
    """A body that is not JSON is 400."""
    r = await chat.client.post("/api/chat", content=b"{message: hi")
    assert r.status_code == 400 and "JSON" in r.json()["error"]
