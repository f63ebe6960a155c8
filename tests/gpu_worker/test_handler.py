"""The handler against the engine simulator in-process: every input shape, both engine kinds."""

from __future__ import annotations

import json
import time

import pytest

from gpu_worker.contract import build_job_input, normalize_output

from .conftest import (
    JOB_FILES,
    KINDS,
    ON_MODULE_LOOP,
    check_output,
    job_file,
    load_job,
    run_job,
)

pytestmark = ON_MODULE_LOOP
HELLO = [{"role": "user", "content": "Hello, who am I talking to?"}]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("path", JOB_FILES, ids=lambda p: p.stem)
async def test_every_example_job_gets_its_answer(make_worker, kind, path):
    """Each example file returns what its ``expect`` says, on Ollama and OpenAI engines alike."""
    job = load_job(path)
    check_output(await run_job(make_worker(kind), job["input"]), job["expect"])


@pytest.mark.parametrize("kind", KINDS)
async def test_non_stream_job_yields_exactly_one_final_piece(make_worker, kind):
    """stream false: one piece with the whole text, done, model, usage and finish_reason."""
    pieces = await run_job(make_worker(kind), build_job_input(type="chat", messages=HELLO))
    (piece,) = pieces
    assert piece["done"] is True and piece["model"] == "pete-simulator"
    assert piece["finish_reason"] == "stop" and piece["usage"]["completion_tokens"] == 40
    assert len(piece["text"].split()) == 40 and "tool_calls" not in piece


@pytest.mark.parametrize("kind", KINDS)
async def test_stream_is_batched_and_the_first_piece_follows_the_first_token(
    sim, make_worker, kind
):
    """Pieces are a small fraction of tokens; the first comes within a small margin of TTFT."""
    sim.configure(ttft_ms=300, tokens_per_s=400, reply_tokens=120)
    worker = make_worker(kind)
    started = time.monotonic()
    arrivals, pieces = [], []
    async for piece in worker.handle(
        {"id": "s", "input": build_job_input(type="chat", messages=HELLO, stream=True)}
    ):
        arrivals.append(time.monotonic() - started)
        pieces.append(piece)
    text_pieces = [p for p in pieces if p.get("text")]
    print(
        f"{kind}: first piece {arrivals[0] * 1000:.0f} ms (TTFT 300), "
        f"{len(text_pieces)} text pieces for 120 tokens"
    )
    assert 0.29 <= arrivals[0] <= 0.45
    assert 2 <= len(text_pieces) <= 120 // 8
    assert pieces[-1] == {
        "text": "",
        "done": True,
        "model": "pete-simulator",
        "usage": pieces[-1]["usage"],
        "finish_reason": "stop",
    }
    assert pieces[-1]["usage"]["completion_tokens"] == 120
    whole = await run_job(worker, build_job_input(type="chat", messages=HELLO))
    assert normalize_output(pieces).text == whole[0]["text"]


async def test_ollama_requests_carry_keep_alive_and_num_predict(sim, make_worker):
    """The Ollama engine sends keep_alive and options.num_predict (job max_tokens or default)."""
    worker = make_worker("ollama", OLLAMA_KEEP_ALIVE="10m", DEFAULT_MAX_TOKENS="99")
    await run_job(
        worker, build_job_input(type="chat", messages=HELLO, max_tokens=7, temperature=0.2)
    )
    await run_job(worker, {"prompt": "hi"})
    await run_job(worker, {"v": 1, "type": "warmup"})
    bodies = [body for path, body in sim.state.requests if path == "/api/chat"]
    assert [b["options"]["num_predict"] for b in bodies] == [7, 99, 1]
    assert bodies[0]["options"]["temperature"] == 0.2
    assert all(b["keep_alive"] == "10m" and b["stream"] is True for b in bodies)


async def test_openai_requests_ask_for_usage_and_send_the_bearer_key(sim, make_worker):
    """The OpenAI engine asks for the usage chunk and caps max_tokens."""
    worker = make_worker("openai", ENGINE_API_KEY="sk-test")
    assert worker.engine.client.headers["authorization"] == "Bearer sk-test"
    await run_job(worker, build_job_input(type="chat", messages=HELLO, max_tokens=5))
    (body,) = [b for p, b in sim.state.requests if p == "/v1/chat/completions"]
    assert body["stream_options"] == {"include_usage": True} and body["max_tokens"] == 5


@pytest.mark.parametrize("kind", KINDS)
async def test_tool_calls_come_back_in_openai_shape(make_worker, kind):
    """A model tool call ends the reply with OpenAI-shaped tool_calls, finish_reason tool_calls."""
    job = job_file("v1_chat_tools")
    pieces = await run_job(make_worker(kind), job["input"])
    final = pieces[-1]
    assert final["finish_reason"] == "tool_calls"
    (call,) = final["tool_calls"]
    assert call["type"] == "function" and call["function"]["name"] == "check_availability"
    assert json.loads(call["function"]["arguments"]) == {"party_size": 1, "date": "simulated"}


async def test_openai_passthrough_stream_pieces_are_whole_sse_events(make_worker):
    """Streamed passthrough pieces end on event boundaries and fold to the reply text."""
    job = job_file("openai_chat")
    pieces = await run_job(make_worker("ollama"), job["input"])
    assert all(isinstance(p, str) and p.endswith("\n\n") for p in pieces)
    assert pieces[-1].endswith("data: [DONE]\n\n") and len(pieces) < 20
    assert normalize_output(pieces).usage["completion_tokens"] == 40


async def test_vapi_tool_calls_answer_each_call_with_its_id(make_worker):
    """Two VAPI tool calls get two results, same order, exact ids; bad arguments get an error."""
    message = {
        "type": "tool-calls",
        "toolCallList": [
            {
                "id": "a",
                "type": "function",
                "function": {"name": "hours", "arguments": {"day": "mon"}},
            },
            {"id": "b", "type": "function", "function": {"name": "menu", "arguments": "{broken"}},
        ],
    }
    (piece,) = await run_job(make_worker("openai"), {"type": "vapi_webhook", "message": message})
    first, second = piece["results"]
    assert (first["toolCallId"], first["name"]) == ("a", "hours") and first["result"]
    assert (second["toolCallId"], second["error"]) == ("b", "tool arguments are not valid JSON")
    assert piece["text"] == first["result"] and piece["usage"]["completion_tokens"] == 40


async def test_admin_status_reports_engine_and_concurrency(make_worker):
    """admin status reports readiness, engine kind, model and limits."""
    (piece,) = await run_job(make_worker("ollama"), {"type": "admin", "action": "status"})
    admin = piece["admin"]
    assert admin["ready"] is True and admin["engine"] == "ollama"
    assert admin["models"] == ["pete-simulator:latest"] and admin["max_concurrency"] == 8


async def test_module_handler_serves_the_installed_worker(make_worker):
    """gpu_worker.handler.handler (what the SDK calls) delegates to the installed Worker."""
    from gpu_worker import handler as module

    module.install(make_worker("ollama"))
    try:
        job = {"id": "h", "input": job_file("legacy_prompt")["input"]}
        pieces = [piece async for piece in module.handler(job)]
        assert normalize_output(pieces).text
        assert await module.collect(job) == pieces  # the --test_input form: the same list
        assert await module.collect({"id": "bad", "input": {}}) == {
            "error": "invalid input: input: unrecognised job input: expected contract v1 "
            "({'v': 1, 'type': ...}), 'prompt', 'messages', {'type': 'chat'|'vapi_webhook'|"
            "'admin'} or 'openai_route'"
        }
    finally:
        module.install(None)
