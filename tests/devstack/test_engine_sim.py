"""The engine simulator speaks Ollama's and OpenAI's wire formats, on time, and fails on cue."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from devstack.engine_sim import EngineSimConfig, SimState, create_engine_sim
from devstack.serve import serve

USER = [{"role": "user", "content": "What time do you open tomorrow?"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city"],
        },
    },
}


pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sim_server() -> AsyncIterator[tuple[httpx.AsyncClient, SimState]]:
    app = create_engine_sim(EngineSimConfig(ttft_ms=120, tokens_per_s=200, reply_tokens=12))
    async with serve(app) as base_url, httpx.AsyncClient(base_url=base_url, timeout=5) as client:
        yield client, app.state.sim


@pytest_asyncio.fixture(loop_scope="module")
async def sim(sim_server) -> AsyncIterator[tuple[httpx.AsyncClient, SimState]]:
    """One server for the module, reset before each test (its config, models and counters)."""
    client, state = sim_server
    await client.post("/_sim/reset")
    yield client, state
    for _ in range(100):  # let streams a test abandoned finish before the next reset
        if not state.active:
            break
        await asyncio.sleep(0.02)


async def _lines(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> list[str]:
    async with client.stream("POST", path, json=body) as response:
        assert response.status_code == 200
        return [line async for line in response.aiter_lines() if line]


def _sse(lines: list[str]) -> list[Any]:
    assert lines[-1] == "data: [DONE]"
    return [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]


async def test_ollama_housekeeping_routes_answer_like_ollama(sim):
    """GET /, /api/version, /api/tags and /api/show answer in Ollama's shapes."""
    client, _ = sim
    assert (await client.get("/")).text == "Ollama is running"
    assert "version" in (await client.get("/api/version")).json()
    tags = (await client.get("/api/tags")).json()
    assert [m["name"] for m in tags["models"]] == ["pete-simulator:latest"]
    shown = await client.post("/api/show", json={"model": "pete-simulator"})
    assert shown.status_code == 200 and "capabilities" in shown.json()
    assert (await client.post("/api/show", json={"model": "nope"})).status_code == 404


async def test_ollama_chat_streams_ndjson_then_a_done_line(sim):
    """/api/chat streams by default: content lines, then done with counts and done_reason."""
    client, _ = sim
    lines = [
        json.loads(x)
        for x in await _lines(client, "/api/chat", {"model": "pete-simulator", "messages": USER})
    ]
    assert all(not x["done"] and x["message"]["role"] == "assistant" for x in lines[:-1])
    final = lines[-1]
    assert final["done"] is True and final["done_reason"] == "stop"
    assert final["eval_count"] == 12 == len(lines) - 1
    assert {"total_duration", "prompt_eval_count", "created_at", "model"} <= set(final)


async def test_ollama_num_predict_caps_the_reply_and_stream_false_gives_one_object(sim):
    """options.num_predict cuts the reply (done_reason length); stream false gives one object."""
    client, _ = sim
    body = {
        "model": "pete-simulator",
        "messages": USER,
        "stream": False,
        "keep_alive": -1,
        "options": {"num_predict": 5},
    }
    reply = (await client.post("/api/chat", json=body)).json()
    assert reply["done"] is True and reply["done_reason"] == "length" and reply["eval_count"] == 5
    assert len(reply["message"]["content"].split()) == 5


async def test_ollama_generate_streams_response_pieces(sim):
    """/api/generate streams ``response`` pieces and ends with a done line."""
    client, _ = sim
    lines = [
        json.loads(x)
        for x in await _lines(client, "/api/generate", {"model": "pete-simulator", "prompt": "hi"})
    ]
    assert "".join(x["response"] for x in lines).split() and lines[-1]["done"] is True


async def test_ollama_pull_streams_status_and_makes_the_model_available(sim):
    """/api/pull streams NDJSON status lines ending in success, then the model is listed."""
    client, _ = sim
    assert (
        await client.post("/api/chat", json={"model": "other", "messages": USER})
    ).status_code == 404
    statuses = [
        json.loads(x)["status"] for x in await _lines(client, "/api/pull", {"model": "other"})
    ]
    assert statuses[0] == "pulling manifest" and statuses[-1] == "success"
    names = [m["name"] for m in (await client.get("/api/tags")).json()["models"]]
    assert "other:latest" in names


async def test_ollama_tool_call_when_the_user_names_a_tool(sim):
    """A request with tools whose last user message names one gets message.tool_calls."""
    client, _ = sim
    body = {
        "model": "pete-simulator",
        "tools": [WEATHER_TOOL],
        "messages": [{"role": "user", "content": "call get_weather for Paris"}],
    }
    lines = [json.loads(x) for x in await _lines(client, "/api/chat", body)]
    calls = [c for x in lines for c in x["message"].get("tool_calls", [])]
    assert calls[0]["function"]["name"] == "get_weather"
    assert calls[0]["function"]["arguments"] == {"city": "simulated"}


async def test_openai_stream_has_role_first_deltas_finish_usage_and_done(sim):
    """SSE chunks: choices everywhere, role first, content, finish_reason, usage, [DONE]."""
    client, _ = sim
    body = {
        "model": "pete-simulator",
        "messages": USER,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    chunks = _sse(await _lines(client, "/v1/chat/completions", body))
    assert all(c["object"] == "chat.completion.chunk" and "choices" in c for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 12
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks[:-1])
    assert len(text.split()) == 12


async def test_openai_non_stream_is_a_chat_completion_with_usage(sim):
    """stream false gives one chat.completion; max_tokens cuts it with finish_reason length."""
    client, _ = sim
    body = {"model": "pete-simulator", "messages": USER, "max_tokens": 4}
    reply = (await client.post("/v1/chat/completions", json=body)).json()
    assert reply["object"] == "chat.completion" and reply["usage"]["completion_tokens"] == 4
    assert reply["choices"][0]["finish_reason"] == "length"
    models = (await client.get("/v1/models")).json()
    assert models["data"][0]["id"] == "pete-simulator"
    assert (await client.get("/health")).status_code == 200


async def test_openai_tool_call_streams_as_delta_tool_calls(sim):
    """A named tool comes back as delta.tool_calls with finish_reason tool_calls."""
    client, _ = sim
    body = {
        "messages": [{"role": "user", "content": "get_weather in Oslo"}],
        "stream": True,
        "tools": [WEATHER_TOOL],
    }
    chunks = _sse(await _lines(client, "/v1/chat/completions", body))
    fragments = [tc for c in chunks for tc in c["choices"][0]["delta"].get("tool_calls", [])]
    assert fragments[0]["function"]["name"] == "get_weather"
    assert json.loads("".join(f["function"]["arguments"] for f in fragments)) == {
        "city": "simulated"
    }
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


async def test_same_input_gives_the_same_text(sim):
    """The reply is a function of the last user message."""
    client, _ = sim
    body = {"model": "pete-simulator", "messages": USER, "stream": False}
    first = (await client.post("/api/chat", json=body)).json()["message"]["content"]
    second = (await client.post("/api/chat", json=body)).json()["message"]["content"]
    other = {**body, "messages": [{"role": "user", "content": "Something else entirely"}]}
    third = (await client.post("/api/chat", json=other)).json()["message"]["content"]
    assert first == second != third


async def test_streaming_timing_roughly_honours_ttft_and_rate(sim):
    """First token after ~ttft_ms; the rest at ~tokens_per_s."""
    client, _ = sim
    started = time.monotonic()
    arrivals = []
    async with client.stream(
        "POST", "/api/chat", json={"model": "pete-simulator", "messages": USER}
    ) as response:
        async for line in response.aiter_lines():
            if line:
                arrivals.append(time.monotonic() - started)
    assert 0.11 <= arrivals[0] <= 0.3
    assert 0.05 <= arrivals[-1] - arrivals[0] <= 0.3  # 11 gaps at 200 tokens/s = 55 ms


@pytest.mark.parametrize("path", ["/api/chat", "/v1/chat/completions"])
async def test_http500_fault(sim, path):
    """fault http500: the generation routes answer 500 with the engine's error body."""
    client, _ = sim
    await client.post("/_sim/config", json={"fault": "http500"})
    response = await client.post(path, json={"model": "pete-simulator", "messages": USER})
    assert response.status_code == 500 and "error" in response.text
    assert (await client.get("/api/tags")).status_code == 200  # health stays up


@pytest.mark.parametrize("path", ["/api/chat", "/v1/chat/completions"])
async def test_malformed_fault_sends_broken_json_after_n_pieces(sim, path):
    """fault malformed: a line that is not JSON after fault_after pieces."""
    client, _ = sim
    await client.post("/_sim/config", json={"fault": "malformed", "fault_after": 2})
    lines = await _lines(
        client, path, {"model": "pete-simulator", "messages": USER, "stream": True}
    )
    with pytest.raises(ValueError):
        json.loads(lines[2].removeprefix("data: "))


async def test_cut_fault_drops_the_connection_mid_stream(sim):
    """fault cut: the client sees an incomplete body after fault_after pieces."""
    client, state = sim
    await client.post("/_sim/config", json={"fault": "cut", "fault_after": 3})
    seen = []
    with pytest.raises(httpx.RemoteProtocolError):
        async with client.stream(
            "POST", "/api/chat", json={"model": "pete-simulator", "messages": USER}
        ) as response:
            async for line in response.aiter_lines():
                seen.append(line)
    assert len([x for x in seen if x]) == 3 and state.counts["cuts"] == 1


async def test_stall_fault_holds_and_records_the_disconnect(sim):
    """fault stall: nothing after fault_after pieces; the client giving up is recorded."""
    client, state = sim
    await client.post("/_sim/config", json={"fault": "stall", "fault_after": 2})
    with pytest.raises(httpx.ReadTimeout):
        async with client.stream(
            "POST",
            "/v1/chat/completions",
            timeout=httpx.Timeout(2, read=0.4),
            json={"messages": USER, "stream": True},
        ) as response:
            async for _ in response.aiter_lines():
                pass
    for _ in range(100):
        if state.disconnects:
            break
        await asyncio.sleep(0.02)
    assert state.counts["stalls"] == 1 and state.disconnects == 1


async def test_slow_fault_delays_the_first_token(sim):
    """fault slow: the first token waits slow_ttft_ms."""
    client, _ = sim
    await client.post("/_sim/config", json={"fault": "slow", "slow_ttft_ms": 500})
    started = time.monotonic()
    reply = await client.post(
        "/api/chat", json={"model": "pete-simulator", "messages": USER, "stream": False}
    )
    assert reply.status_code == 200 and time.monotonic() - started >= 0.5


async def test_sim_config_rejects_unknown_keys_and_faults(sim):
    """/_sim/config refuses what it does not know."""
    client, _ = sim
    assert (await client.post("/_sim/config", json={"nope": 1})).status_code == 400
    assert (await client.post("/_sim/config", json={"fault": "explode"})).status_code == 400
    assert (await client.get("/_sim/config")).json()["model"] == "pete-simulator"


async def test_sim_reset_restores_the_start_config_models_and_counters(sim):
    """/_sim/reset undoes runtime config changes, pulls and counts."""
    client, state = sim
    await client.post("/_sim/config", json={"fault": "cut", "ttft_ms": 1})
    await client.post("/api/pull", json={"model": "extra", "stream": False})
    config = (await client.post("/_sim/reset")).json()
    assert (config["fault"], config["ttft_ms"]) == ("none", 120)
    assert state.models == {"pete-simulator:latest"} and not state.counts
