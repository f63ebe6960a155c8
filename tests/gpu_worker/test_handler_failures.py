"""Engine failures become exactly one ``{"error"}`` piece; cancellation closes the engine stream."""

from __future__ import annotations

import asyncio
import socket

import pytest

from gpu_worker.contract import build_job_input
from gpu_worker.engines import create_engine
from gpu_worker.handler import Worker
from gpu_worker.settings import Settings

from .conftest import KINDS, ON_MODULE_LOOP, run_job

pytestmark = ON_MODULE_LOOP
HELLO = [{"role": "user", "content": "Hello there"}]


def errors_of(pieces: list) -> list[str]:
    """The error strings, after checking there is exactly one and it is the last piece."""
    errors = [p["error"] for p in pieces if isinstance(p, dict) and "error" in p]
    assert len(errors) == 1 and "error" in pieces[-1], pieces
    assert isinstance(errors[0], str)
    return errors


@pytest.mark.parametrize("kind", KINDS)
async def test_engine_down_is_one_error(kind):
    """Nothing listening at ENGINE_URL: one error saying the engine is unreachable."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}" + ("/v1" if kind == "openai" else "")
    settings = Settings.from_env({"ENGINE_KIND": kind, "ENGINE_URL": url, "MODEL": "m"})
    worker = Worker(settings, create_engine(settings))
    try:
        for stream in (False, True):
            job = build_job_input(type="chat", messages=HELLO, stream=stream)
            (error,) = errors_of(await run_job(worker, job))
            assert error.startswith("engine unreachable at http://127.0.0.1:")
    finally:
        await worker.engine.aclose()


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("http500", "engine answered HTTP 500"),
        ("malformed", "engine sent malformed JSON"),
        ("cut", "engine connection broke mid-response"),
        ("stall", "engine sent nothing for 0.5 s"),
        ("slow", "engine sent nothing for 0.5 s"),
    ],
)
async def test_scripted_engine_faults_are_one_error(
    sim, make_worker, kind, stream, fault, expected
):
    """500, broken JSON, a cut or a stalled stream, a slow first token: one error, no raise."""
    sim.configure(fault=fault, fault_after=3, slow_ttft_ms=3000)
    worker = make_worker(kind, ENGINE_READ_TIMEOUT_S="0.5")
    pieces = await run_job(worker, build_job_input(type="chat", messages=HELLO, stream=stream))
    (error,) = errors_of(pieces)
    assert error.startswith(expected), error
    if not stream:
        assert len(pieces) == 1


async def test_unknown_model_is_one_error_naming_the_engine_reply(make_worker):
    """A job for a model the engine lacks fails with the engine's 404 reason."""
    job = build_job_input(type="chat", messages=HELLO, model="not-pulled")
    (error,) = errors_of(await run_job(make_worker("ollama"), job))
    assert "HTTP 404" in error and "not-pulled" in error


async def test_a_reply_slower_than_the_request_bound_is_one_error(sim, make_worker):
    """ENGINE_REQUEST_TIMEOUT_S bounds the whole reply even while tokens keep coming."""
    sim.configure(ttft_ms=50, tokens_per_s=20)
    worker = make_worker("openai", ENGINE_REQUEST_TIMEOUT_S="0.4")
    pieces = await run_job(worker, build_job_input(type="chat", messages=HELLO, stream=True))
    assert errors_of(pieces) == ["engine did not finish within 0.4 s"]
    assert any(p.get("text") for p in pieces[:-1])  # what arrived in time was streamed


async def test_invalid_input_is_one_error_without_touching_the_engine(sim, make_worker):
    """A bad job names the field and never reaches the engine."""
    pieces = await run_job(make_worker("ollama"), {"v": 1, "type": "chat", "messages": "hi"})
    assert errors_of(pieces) == [
        "invalid input: messages: must be a list of {role, content} objects"
    ]
    assert not sim.state.requests


async def test_a_job_without_input_is_one_error(make_worker):
    """Even a malformed RunPod job (no input object) yields one error."""
    worker = make_worker("ollama")
    assert errors_of([p async for p in worker.handle({"id": "x"})])
    assert errors_of([p async for p in worker.handle("not a job")])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
async def test_cancellation_propagates_and_closes_the_engine_request(
    sim, make_worker, kind, stream
):
    """CancelledError (RunPod /cancel) re-raises from the handler and the engine sees a hang-up."""
    sim.configure(ttft_ms=50, tokens_per_s=20, reply_tokens=200)
    worker = make_worker(kind)
    job = {"id": "c", "input": build_job_input(type="chat", messages=HELLO, stream=stream)}
    started = asyncio.Event()

    async def consume() -> None:
        async for _ in worker.handle(job):
            started.set()

    task = asyncio.create_task(consume())
    if stream:
        await asyncio.wait_for(started.wait(), 2)
    else:
        await asyncio.sleep(0.3)
    assert sim.state.counts["streams"] == 1 and not sim.state.disconnects
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(100):
        if sim.state.disconnects:
            break
        await asyncio.sleep(0.02)
    assert sim.state.disconnects == 1 and not sim.state.counts["completed"]
    assert worker.in_flight == 0


async def test_vapi_tool_calls_fail_as_one_error_when_the_engine_answers_none(sim, make_worker):
    """If the engine answers no tool call at all, the job fails (the gateway falls back)."""
    sim.configure(fault="http500")
    call = {"id": "a", "type": "function", "function": {"name": "hours", "arguments": {}}}
    message = {"type": "tool-calls", "toolCallList": [call, {**call, "id": "b"}]}
    pieces = await run_job(make_worker("ollama"), {"type": "vapi_webhook", "message": message})
    (error,) = errors_of(pieces)
    assert error.startswith("engine answered HTTP 500")
