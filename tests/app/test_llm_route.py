"""The custom-LLM route (vapi.md §6) under the budgets of issue #4, read by real clients."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import openai
import pytest

from app.settings import DEFAULT_FALLBACK
from devstack.emulator import Behavior
from devstack.emulator.behavior import stream_text
from tests.app.conftest import stack

MESSAGES = [
    {"role": "system", "content": "You are a property manager."},
    {"role": "user", "content": "When is rent due?"},
]


def streaming(text: str = "Rent is due on the first of the month.", total_s: float = 0.3) -> Any:
    return lambda _input: Behavior(stream=stream_text(text, pieces=4, total_s=total_s))


async def read_sse(client: httpx.AsyncClient, path: str, body: dict[str, Any], **kw: Any) -> Any:
    """Every SSE event with its arrival time; asserts the OpenAI chunk shape as it reads."""
    events: list[tuple[float, Any]] = []
    started = time.monotonic()
    async with client.stream("POST", path, json=body, **kw) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        async for line in r.aiter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                events.append((time.monotonic() - started, "[DONE]"))
                continue
            obj = json.loads(data)
            assert isinstance(obj["choices"], list) and obj["choices"], obj
            assert obj["object"] == "chat.completion.chunk"
            events.append((time.monotonic() - started, obj))
    return events


def text_of(events: list[tuple[float, Any]]) -> str:
    return "".join(
        e["choices"][0]["delta"].get("content") or "" for _, e in events if isinstance(e, dict)
    )


async def test_official_openai_client_streams_the_reply() -> None:
    """openai's AsyncOpenAI, pointed at {PUBLIC_URL}/vapi, streams the worker's text."""
    async with stack(streaming()) as s:
        client = openai.AsyncOpenAI(base_url=f"{s.gateway_url}/vapi", api_key="unused")
        stream = await client.chat.completions.create(model="pete", messages=MESSAGES, stream=True)
        parts, finish = [], None
        async for event in stream:
            assert event.choices
            parts.append(event.choices[0].delta.content or "")
            finish = event.choices[0].finish_reason or finish
        assert "".join(parts) == "Rent is due on the first of the month."
        assert finish == "stop"
        await client.close()


async def test_official_openai_client_non_streaming() -> None:
    """A non-streaming request gets a chat.completion the openai client parses."""
    async with stack() as s:
        client = openai.AsyncOpenAI(base_url=f"{s.gateway_url}/v1", api_key="unused")
        reply = await client.chat.completions.create(model="pete", messages=MESSAGES)
        assert reply.choices[0].message.content == "You said: When is rent due?"
        assert reply.choices[0].finish_reason == "stop"
        await client.close()


async def test_raw_sse_every_chunk_has_choices_and_ends_with_done() -> None:
    """A raw reader sees a role chunk first, content, a finish chunk, then [DONE]."""
    async with stack(streaming()) as s:
        events = await read_sse(
            s.client,
            "/vapi/chat/completions",
            {"model": "pete", "messages": MESSAGES, "stream": True},
        )
        assert events[0][1]["choices"][0]["delta"]["role"] == "assistant"
        assert events[-1][1] == "[DONE]"
        assert events[-2][1]["choices"][0]["finish_reason"] == "stop"
        assert text_of(events) == "Rent is due on the first of the month."


async def test_doubled_path_from_the_docs_is_served() -> None:
    """VAPI's docs sometimes produce /chat/completions/chat/completions: it works too."""
    async with stack(streaming()) as s:
        events = await read_sse(
            s.client,
            "/vapi/chat/completions/chat/completions",
            {"messages": MESSAGES, "stream": True},
        )
        assert text_of(events) == "Rent is due on the first of the month."


async def test_a_silent_upstream_gets_the_filler_then_the_fallback_in_time() -> None:
    """No token: the filler by FIRST_TOKEN_BUDGET_MS + 100 ms, the end by TURN_BUDGET_MS + 100."""
    async with stack(
        lambda _input: Behavior(stall=True),
        FIRST_TOKEN_BUDGET_MS="500",
        TURN_BUDGET_MS="1500",
    ) as s:
        events = await read_sse(
            s.client, "/vapi/chat/completions", {"messages": MESSAGES, "stream": True}
        )
        contents = [
            (t, e["choices"][0]["delta"].get("content"))
            for t, e in events
            if isinstance(e, dict) and e["choices"][0]["delta"].get("content")
        ]
        (t_filler, filler), (_, fallback) = contents
        assert filler.strip() == "One moment." and t_filler <= 0.6
        assert fallback.strip() == DEFAULT_FALLBACK
        assert events[-1][0] <= 1.6
        [job] = s.emulator.jobs()
        for _ in range(100):
            if job.status == "CANCELLED":
                break
            await asyncio.sleep(0.02)
        assert job.status == "CANCELLED"


async def test_a_stream_that_stalls_mid_sentence_is_closed_with_the_fallback() -> None:
    """Text, then silence past STREAM_GAP_MS: the turn ends with the fallback, not dead air."""
    pieces = ((0.05, {"text": "Rent is due"}), (30.0, {"text": " never", "done": True}))
    async with stack(lambda _input: Behavior(stream=pieces), STREAM_GAP_MS="400") as s:
        events = await read_sse(
            s.client, "/vapi/chat/completions", {"messages": MESSAGES, "stream": True}
        )
        assert text_of(events) == "Rent is due " + DEFAULT_FALLBACK
        assert events[-1][0] < 1.5


async def test_model_tool_calls_leave_as_delta_tool_calls() -> None:
    """A tool call from the model streams as delta.tool_calls with finish_reason tool_calls."""
    call = {
        "id": "call_T1",
        "type": "function",
        "function": {"name": "transferCall", "arguments": '{"destination": "+15550100"}'},
    }
    pieces = (
        (0.05, {"text": "", "done": True, "tool_calls": [call], "finish_reason": "tool_calls"}),
    )
    async with stack(lambda _input: Behavior(stream=pieces)) as s:
        client = openai.AsyncOpenAI(base_url=f"{s.gateway_url}/vapi", api_key="unused")
        stream = await client.chat.completions.create(
            model="pete",
            messages=MESSAGES,
            stream=True,
            tools=[{"type": "function", "function": {"name": "transferCall", "parameters": {}}}],
        )
        calls, finish = [], None
        async for event in stream:
            calls.extend(event.choices[0].delta.tool_calls or [])
            finish = event.choices[0].finish_reason or finish
        assert finish == "tool_calls"
        assert [(c.id, c.function.name, c.function.arguments) for c in calls] == [
            ("call_T1", "transferCall", '{"destination": "+15550100"}')
        ]
        [job] = s.emulator.jobs()
        assert job.input["tools"][0]["function"]["name"] == "transferCall"
        await client.close()


async def test_llm_api_key_is_enforced_when_set() -> None:
    """With LLM_API_KEY: 401 (OpenAI error shape) without or with a wrong key, 200 with it."""
    async with stack(streaming(), LLM_API_KEY="llm-key-1") as s:
        body = {"messages": MESSAGES}
        for headers in ({}, {"Authorization": "Bearer nope"}):
            r = await s.client.post("/vapi/chat/completions", json=body, headers=headers)
            assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
        r = await s.client.post(
            "/vapi/chat/completions", json=body, headers={"Authorization": "Bearer llm-key-1"}
        )
        assert r.status_code == 200


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{oops", 400),
        (b"[]", 422),
        (b'{"messages": []}', 422),
        (b'{"messages": [{"role": "wizard", "content": "x"}]}', 422),
    ],
    ids=["bad-json", "not-object", "no-messages", "bad-role"],
)
async def test_invalid_requests_get_openai_shaped_errors(body: bytes, status: int) -> None:
    """Bad bodies are refused with a clear error naming the field, and no job runs."""
    async with stack() as s:
        r = await s.client.post("/vapi/chat/completions", content=body)
        assert r.status_code == status and r.json()["error"]["message"]
        assert not s.emulator.jobs()
