"""RUNPOD_JOB_FORMAT: the gateway talks to workers it did not build, each scripted in the local
RunPod with the input it accepts and the output and stream shapes it produces (runpod.md §4)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import openai
import pytest

from devstack.emulator import Behavior
from gpu_worker.formats import to_worker_input
from tests.app.conftest import stack, tool_calls_message

TEXT = "Unit 4B owes nothing; rent is due on the first."


def sse_split(text: str, sizes: int = 23) -> list[str]:
    """worker-vllm streams raw SSE bytes cut at arbitrary boundaries."""
    events = ""
    for i, word in enumerate(text.split(" ")):
        delta = {"content": (" " if i else "") + word}
        chunk = {
            "id": "c",
            "object": "chat.completion.chunk",
            "model": "vllm",
            "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
        }
        events += f"data: {json.dumps(chunk)}\n\n"
    end = {
        "id": "c",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
    }
    events += f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n"
    return [events[i : i + sizes] for i in range(0, len(events), sizes)]


def ndjson_lines(text: str) -> list[str]:
    lines = [
        json.dumps(
            {
                "model": "llama3.2",
                "message": {"role": "assistant", "content": w + " "},
                "done": False,
            }
        )
        + "\n"
        for w in text.split(" ")
    ]
    lines.append(
        json.dumps(
            {
                "model": "llama3.2",
                "message": {"role": "assistant", "content": ""},
                "done": True,
                "done_reason": "stop",
            }
        )
        + "\n"
    )
    return lines


def worker_vllm(job: Mapping[str, Any]) -> Behavior:
    assert job["openai_route"] == "/v1/chat/completions", job
    body = job["openai_input"]
    assert body["messages"] and body["model"] == "served-model"
    if body["stream"]:
        return Behavior(stream=tuple((0.01, piece) for piece in sse_split(TEXT)))
    return Behavior(
        output=[
            {
                "object": "chat.completion",
                "model": "served-model",
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": TEXT},
                    }
                ],
            }
        ]
    )


def worker_ollama(job: Mapping[str, Any]) -> Behavior:
    assert job["model"] == "served-model" and job["messages"], job
    assert "openai_route" not in job and "v" not in job
    if job["stream"]:
        return Behavior(stream=tuple((0.01, line) for line in ndjson_lines(TEXT)))
    return Behavior(
        output=[
            {"model": "llama3.2", "done": True, "message": {"role": "assistant", "content": TEXT}}
        ]
    )


def worker_prompt(job: Mapping[str, Any]) -> Behavior:
    assert set(job) == {"prompt"} and job["prompt"].endswith("assistant:"), job
    return Behavior(output={"response": TEXT})


WORKERS: dict[str, Callable[[Mapping[str, Any]], Behavior]] = {
    "openai": worker_vllm,
    "ollama": worker_ollama,
    "prompt": worker_prompt,
}


@pytest.mark.parametrize("fmt", list(WORKERS), ids=list(WORKERS))
async def test_tool_calls_reach_each_worker_kind_in_its_own_shape(fmt: str) -> None:
    """A tool call becomes that worker's input and its output comes back as the result."""
    async with stack(WORKERS[fmt], RUNPOD_JOB_FORMAT=fmt, RUNPOD_MODEL="served-model") as s:
        r = await s.client.post(
            "/vapi/webhook", json=tool_calls_message(("t1", "lookup_rent", {"unit": "4B"}))
        )
        assert r.json()["results"][0]["result"].split() == TEXT.split()
        [job] = s.emulator.jobs()
        assert "lookup_rent" in json.dumps(job.input)  # the tool instruction travelled


@pytest.mark.parametrize("fmt", ["openai", "ollama"])
async def test_custom_llm_streams_from_each_streaming_worker_kind(fmt: str) -> None:
    """Raw SSE (worker-vllm) and NDJSON lines (worker-ollama) stream out as OpenAI chunks."""
    async with stack(WORKERS[fmt], RUNPOD_JOB_FORMAT=fmt, RUNPOD_MODEL="served-model") as s:
        client = openai.AsyncOpenAI(base_url=f"{s.gateway_url}/vapi", api_key="unused")
        stream = await client.chat.completions.create(
            model="served-model",
            stream=True,
            messages=[{"role": "user", "content": "What do I owe?"}],
        )
        text = "".join([e.choices[0].delta.content or "" async for e in stream])
        assert text.split() == TEXT.split()
        await client.close()


def test_pete_format_is_the_v1_input_unchanged() -> None:
    """Our own worker gets contract v1 as built."""
    v1 = {"v": 1, "type": "chat", "messages": [{"role": "user", "content": "hi"}]}
    assert to_worker_input(v1, "pete") is v1
    with pytest.raises(ValueError, match="unknown job format"):
        to_worker_input(v1, "grpc")
